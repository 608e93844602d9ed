/* classify_cmd - placeholder until the subcommand lands */
#include "sensor_cmds.h"

#include "msg.h"

int classify_cmd_main(int argc, char **argv)
{
    msg_error("classify: not implemented yet");
    return EX_SOFTWARE;
}
