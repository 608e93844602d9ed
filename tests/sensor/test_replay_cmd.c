/* test_replay_cmd - "backstop-sensor replay": a file's line says event=sent only when its
 * event went to the aggregator's connection (a real PULL socket here), event=unsent when it
 * did not; a --client-ip that is no address and an --events that is no endpoint are usage
 * errors (64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sensor_cmds.h"
#include "xalloc.h"
#include "zsock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <zmq.h>

/* A directory with a config, two bounces and a normal message. */
typedef struct {
    char dir[64]; /* mkdtemp */
    char *conf;   /* DIR/replay.conf */
    char *msgs;   /* DIR/msgs */
    char *out;    /* DIR/stdout, what replay printed */
    char *err;    /* DIR/stderr */
} s_dir_t;

static const char s_bounce[] = "From: MAILER-DAEMON@mx.example\n"
                               "To: victim@site.example\n"
                               "Subject: Undelivered Mail Returned to Sender\n"
                               "\n"
                               "This is the mail system at host mx.example.\n"
                               "I'm sorry to have to inform you that your message could not\n"
                               "be delivered to one or more recipients.\n"
                               "\n"
                               "--- original message ---\n"
                               "Subject: cheap watches\n"
                               "\n";

static void s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int s_setup(void **state)
{
    s_dir_t *d = xcalloc(1, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/test_replay_cmd.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    d->conf = xasprintf("%s/replay.conf", d->dir);
    d->msgs = xasprintf("%s/msgs", d->dir);
    d->out = xasprintf("%s/stdout", d->dir);
    d->err = xasprintf("%s/stderr", d->dir);
    char *conf = xasprintf("site = s1\nstate_directory = %s\n", d->dir);
    s_write(d->conf, conf);
    xfree(conf);
    assert_int_equal(mkdir(d->msgs, 0700), 0);
    char *p = xasprintf("%s/b1.eml", d->msgs);
    s_write(p, s_bounce);
    xfree(p);
    p = xasprintf("%s/b2.eml", d->msgs);
    s_write(p, s_bounce);
    xfree(p);
    p = xasprintf("%s/n.eml", d->msgs);
    s_write(p, "From: a@b.example\nSubject: lunch\n\nhello\n");
    xfree(p);
    *state = d;
    return 0;
}

static int s_teardown(void **state)
{
    s_dir_t *d = *state;
    char *cmd = xasprintf("rm -rf '%s'", d->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    xfree(d->conf);
    xfree(d->msgs);
    xfree(d->out);
    xfree(d->err);
    xfree(d);
    return 0;
}

/* Runs "replay -c CONF ARGS... MSGS"; its exit status, stdout in d->out, stderr in d->err. */
static int s_replay(s_dir_t *d, const char *a1, const char *a2)
{
    char *argv[8];
    int argc = 0;
    argv[argc++] = "replay";
    argv[argc++] = "-c";
    argv[argc++] = d->conf;
    if (a1)
        argv[argc++] = (char *)a1;
    if (a2)
        argv[argc++] = (char *)a2;
    argv[argc++] = d->msgs;
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    int fo = open(d->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(d->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0 && err >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = replay_cmd_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    return rc;
}

/* How many lines of file contain text. */
static int s_count(const char *file, const char *text)
{
    FILE *fp = fopen(file, "r");
    assert_non_null(fp);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, text) != NULL;
    fclose(fp);
    return n;
}

static void test_events_taken_are_said_sent(void **state)
{
    s_dir_t *d = *state;
    void *ctx = zmq_ctx_new();
    void *pull = zsock_new(ctx, ZMQ_PULL);
    assert_int_equal(zsock_bind(pull, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    char *ep = zsock_bound_endpoint(pull);
    assert_int_equal(s_replay(d, "--events", ep), EX_OK);
    assert_int_equal(s_count(d->out, "b1.eml class=bounce "), 1);
    assert_int_equal(s_count(d->out, " event=sent"), 2);
    assert_int_equal(s_count(d->out, "n.eml class=normal "), 1);
    assert_int_equal(s_count(d->out, " event=skipped"), 1);
    assert_int_equal(s_count(d->out, "replay: events=2 "), 1);
    zmq_pollitem_t it = {.socket = pull, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1); /* the batch is there */
    xfree(ep);
    zsock_close(&pull);
    zmq_ctx_term(ctx);
}

/* Nothing listens: the reviewer saw "event=sent" for each file, then events=0, exit 69. */
static void test_events_not_taken_are_not_said_sent(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_replay(d, "--events", "tcp://127.0.0.1:1"), EX_UNAVAILABLE);
    assert_int_equal(s_count(d->out, " event=sent"), 0);
    assert_int_equal(s_count(d->out, " event=unsent"), 2);
    assert_int_equal(s_count(d->out, " event=skipped"), 1);
    assert_int_equal(s_count(d->out, "replay: events=0 "), 1);
}

static void test_client_ip_must_be_an_address(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_replay(d, "--client-ip", "notanip"), EX_USAGE);
    assert_int_equal(s_count(d->err, "--client-ip notanip is not an IPv4 or IPv6 address"), 1);
    assert_int_equal(s_count(d->out, "event="), 0);
    assert_int_equal(s_replay(d, "--client-ip", "2001:db8::7"), EX_CONFIG); /* no endpoint */
    assert_int_equal(s_count(d->err, "--client-ip"), 0);
}

static void test_events_must_be_an_endpoint(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_replay(d, "--events", "127.0.0.1:35570"), EX_USAGE);
    assert_int_equal(s_count(d->err, "--events 127.0.0.1:35570 is not an endpoint"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_taken_are_said_sent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_events_not_taken_are_not_said_sent, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_client_ip_must_be_an_address, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_events_must_be_an_endpoint, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
