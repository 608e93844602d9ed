/* placeholder main: replaced by the component's real program */
#include "msg.h"

int main(void)
{
    msg_open("backstop", MSG_TO_STDERR);
    msg_fatal(EX_SOFTWARE, "not implemented yet");
}
