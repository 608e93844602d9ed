/* milter_cmd - placeholder until the subcommand lands */
#include "sensor_cmds.h"

#include "msg.h"

int milter_cmd_main(int argc, char **argv)
{
    msg_error("milter: not implemented yet");
    return EX_SOFTWARE;
}
