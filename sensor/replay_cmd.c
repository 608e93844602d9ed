/* replay_cmd - placeholder until the subcommand lands */
#include "sensor_cmds.h"

#include "msg.h"

int replay_cmd_main(int argc, char **argv)
{
    msg_error("replay: not implemented yet");
    return EX_SOFTWARE;
}
