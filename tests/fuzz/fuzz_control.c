/*
 * fuzz_control - libFuzzer target: the control channel from both ends
 *
 * Aggregator side: the input is a control socket message, one serialized
 * Frame. It is unpacked and checked (wire_unpack, as zsock_recv does for
 * server.c s_drain_control) and, when its body is a ControlRequest, answered
 * by control_handle() of a real server (its own store in a temp directory, a
 * fake clock, a few events counted and two decisions made beforehand), twice:
 * a repeated add or delete must be answered too. Every reply must be either a
 * status 0 with a JSON document or an error text, never both or neither; a
 * document is rendered by the CLI as the reply to every command. The server
 * is made anew for every input, so an input that fails fails alone.
 *
 * CLI side: a Frame whose body is a ControlReply has its JSON parsed as
 * backstop.c s_print() does and rendered (cli_render) as the reply to every
 * command; so are the input's bytes after the first, taken as the JSON
 * document itself, so that the renderer sees any JSON and not only JSON that
 * survived a protobuf mutation.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_config.h"
#include "bs_clock.h"
#include "cli_key.h"
#include "cli_render.h"
#include "control.h"
#include "ingest.h"
#include "msg.h"
#include "server.h"
#include "wire.h"
#include "xalloc.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW      (1700000000LL * 1000)
#define S_COMMANDS 13 /* ControlRequest.Command values */

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static FILE *s_null;

static char s_dir[64]; /* the servers' temp directory, made once */

/* The document rendered as the reply to every command (cli_render never fails on an
 * object). */
static void s_render(const json_t *doc)
{
    if (s_null == NULL && (s_null = fopen("/dev/null", "w")) == NULL)
        abort();
    for (int cmd = 0; cmd < S_COMMANDS; cmd++)
        if (cli_render(s_null, (Backstop__ControlRequest__Command)cmd, doc) != 0 &&
            json_is_object(doc))
            abort();
}

/* backstop.c s_print(): the reply's JSON text, parsed, then rendered. */
static void s_render_text(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text ? text : "{}", 0, &jerr);
    if (doc && json_is_object(doc))
        s_render(doc);
    json_decref(doc);
}

/* Removes s_dir when libFuzzer exits. */
static void s_cleanup(void)
{
    fuzz_rmtree(s_dir);
}

/* A server of its own in s_dir, with a fake clock at S_NOW: some events counted (a subject
 * from three sites, an address from one) and two decisions added, so that show, del, why
 * and top have something to find. */
static server_t *s_server(bs_clock_t **clock_p)
{
    char err[1024];
    if (s_dir[0] == '\0') {
        fuzz_quiet();
        snprintf(s_dir, sizeof(s_dir), "/tmp/fuzz_control.XXXXXX");
        fuzz_mkdtemp(s_dir);
        atexit(s_cleanup);
    }
    char *conf = xasprintf("%s/agg.conf", s_dir);
    FILE *fp = fopen(conf, "w");
    if (fp == NULL)
        abort();
    /* no fsync: the replies, not the disk, are under test */
    fprintf(fp,
            "event_endpoint = tcp://127.0.0.1:*\ndecision_endpoint = tcp://127.0.0.1:*\n"
            "snapshot_endpoint = tcp://127.0.0.1:*\ncontrol_endpoint = ipc://%s/ctl.sock\n"
            "data_dir = %s/db\nsync_decisions = no\n",
            s_dir, s_dir);
    fclose(fp);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    xfree(conf);
    if (cfg == NULL)
        abort();
    *clock_p = bs_clock_fake_new(S_NOW);
    server_t *srv = server_new(&cfg, NULL, *clock_p);
    if (srv == NULL)
        abort();
    ingest_t *in = server_ingest(srv);
    static const char *const sites[] = {"site-a", "site-b", "site-c"};
    const char *subject = "undelivered mail returned to sender";
    uint8_t ip[4] = {192, 0, 2, 7};
    for (uint64_t i = 0; i < 30; i++) {
        ingest_key_t keys[2] = {
            {BS_SCOPE_SUBJECT, cli_key_fp(subject), subject, strlen(subject)},
            {BS_SCOPE_CLIENT_IP, cli_key_fp("192.0.2.7"), "192.0.2.7", 9},
        };
        ingest_event_t ev = {.site = sites[i % 3],
                             .sensor = "s1",
                             .seq = i + 1,
                             .time_ms = S_NOW - 1000,
                             .msg_class = BS_CLASS_BOUNCE,
                             .client_ip = ip,
                             .client_ip_len = 4,
                             .keys = keys,
                             .nkeys = i % 3 ? 1 : 2};
        ingest_event(in, &ev, S_NOW);
    }
    static const struct {
        bs_scope_t scope;
        const char *value;
        const char *site;
    } adds[] = {{BS_SCOPE_SUBJECT, "cheap pills", NULL},
                {BS_SCOPE_CLIENT_NET, "198.51.100.0/24", "site-a"}};
    for (size_t i = 0; i < 2; i++) {
        Backstop__ControlRequest rq = BACKSTOP__CONTROL_REQUEST__INIT;
        rq.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
        rq.has_scope = 1;
        rq.scope = (Backstop__Scope)adds[i].scope;
        rq.value = (char *)adds[i].value;
        rq.site = (char *)adds[i].site;
        if (adds[i].site) {
            rq.has_reach = 1;
            rq.reach = BACKSTOP__REACH__LOCAL;
            /* no sensor of it reports here: a site the server does not know, taken */
            rq.has_force = 1;
            rq.force = 1;
        }
        rq.who = "fuzz";
        Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
        if (control_handle(srv, &rq, &reply) != 0)
            abort();
        free(reply.json);
        free(reply.error);
    }
    server_apply_changes(srv);
    return srv;
}

/* req answered by control_handle(); the reply is checked and rendered. */
static void s_answer(server_t *srv, const Backstop__ControlRequest *req)
{
    Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
    int status = control_handle(srv, req, &reply);
    if (status != reply.status || (status == 0) != (reply.json != NULL) ||
        (status == 0) == (reply.error != NULL))
        abort(); /* a reply the CLI could not read */
    if (reply.error)
        s_sink = strlen(reply.error);
    if (reply.json)
        s_render_text(reply.json);
    free(reply.json);
    free(reply.error);
    server_apply_changes(srv);
}

static void s_request(const Backstop__ControlRequest *req)
{
    bs_clock_t *clock = NULL;
    server_t *srv = s_server(&clock);
    s_sink = control_changes(req);
    s_answer(srv, req);
    s_answer(srv, req);
    server_destroy(&srv);
    bs_clock_destroy(&clock);
    char *db = xasprintf("%s/db", s_dir);
    fuzz_rmtree(db);
    xfree(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_err_t err = WIRE_OK;
    Backstop__Frame *f = wire_unpack(data, size, &err);
    if (f && f->body_case == BACKSTOP__FRAME__BODY_CONTROL_REQUEST)
        s_request(f->control_request);
    else if (f && f->body_case == BACKSTOP__FRAME__BODY_CONTROL_REPLY &&
             f->control_reply->status == 0)
        s_render_text(f->control_reply->json);
    wire_free(&f);
    /* the bytes after the first as a reply document */
    if (size > 1) {
        char *text = malloc(size);
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        s_render_text(text);
        free(text);
    }
    return 0;
}
