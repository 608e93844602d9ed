/*
 * sensor_cmds - the subcommands of backstop-sensor
 *
 * backstop-sensor.c only dispatches; each subcommand lives in its own module
 * and takes the argv that follows the subcommand name (argv[0] is the
 * subcommand). Each returns the process exit status (sysexits.h codes).
 */
#ifndef BS_SENSOR_CMDS_H
#define BS_SENSOR_CMDS_H

int classify_cmd_main(int argc, char **argv); /* classify_cmd.c */
int milter_cmd_main(int argc, char **argv);   /* milter_cmd.c */
int replay_cmd_main(int argc, char **argv);   /* replay_cmd.c */

#endif
