/*
 * fuzz_control - libFuzzer target: the control channel from both ends
 *
 * Aggregator side: the input is a control socket message, one serialized
 * Frame. It is unpacked and checked (wire_unpack, as zsock_recv does for
 * server.c s_drain_control), its body must be a ControlRequest, and it goes
 * through what control_handle() does with a request before it touches the
 * server: control_changes(), and per command the same checks of its values
 * (cli_key_text, cli_key_fp, cli_key_site_valid, netaddr parsing for `why`,
 * allowlist_entry_parse for allowlist entries, entry ids) and the same
 * decision and allowlist entry built from them, looked up in and proposed to
 * a small decision table (decisions_find reads ids as operators type them).
 * The JSON control.c makes of them (control_json_decision, control_json_allow)
 * is then rendered by the CLI. control_handle() itself needs a whole server
 * (store, sockets), so it is not called.
 *
 * CLI side: a Frame whose body is a ControlReply has its JSON parsed as
 * backstop.c s_print() does and rendered (cli_render) as the reply to every
 * command; so are the input's bytes after the first, taken as the JSON
 * document itself, so that the renderer sees any JSON and not only JSON that
 * survived a protobuf mutation.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowlist.h"
#include "cli_key.h"
#include "cli_render.h"
#include "control.h"
#include "decisions.h"
#include "netaddr.h"
#include "wire.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW         (1700000000LL * 1000)
#define S_TTL_DEFAULT 3600         /* control.c: manual decision TTL when none is given */
#define S_TTL_MAX     (30 * 86400) /* control.c: longest manual decision */
#define S_COMMANDS    13           /* ControlRequest.Command values */

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static FILE *s_null;

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

/* A reply document as control.c builds it (json_dumps), rendered by the CLI. */
static void s_reply_doc(json_t *doc)
{
    if (doc == NULL)
        abort(); /* json_pack refused what control.c would pack: the reply is lost */
    json_object_set_new(doc, "now_ms", json_integer(S_NOW));
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(doc);
    if (text == NULL)
        abort();
    s_render_text(text);
    free(text);
}

/* A small decision table: what the id lookups and the adds go against. */
static decisions_t *s_table(void)
{
    decisions_t *t = decisions_new(7, 0, 16);
    static const char *const subjects[] = {"cheap pills", "undelivered mail"};
    for (size_t i = 0; i < 2; i++) {
        decision_t d;
        memset(&d, 0, sizeof(d));
        d.scope = BS_SCOPE_SUBJECT;
        d.fp = cli_key_fp(subjects[i]);
        strcpy(d.value, subjects[i]);
        d.action = BS_ACTION_REJECT;
        d.reach = i ? BS_REACH_LOCAL : BS_REACH_FLEET;
        if (i)
            strcpy(d.site, "site-a");
        d.expires_ms = S_NOW + 3600 * 1000;
        d.origin = BS_ORIGIN_CLI;
        decisions_propose(t, &d, 0, S_NOW, NULL);
    }
    return t;
}

/* control.c s_decision_add() up to the table. */
static void s_decision_add(const Backstop__ControlRequest *req, decisions_t *t,
                           const allowlist_t *al, const char *who)
{
    char kerr[256];
    if (!req->has_scope || req->value == NULL)
        return;
    bs_scope_t scope = (bs_scope_t)req->scope;
    if (scope < BS_SCOPE_SUBJECT || scope > BS_SCOPE_SUBJECT_IP)
        return;
    char *text = cli_key_text(scope, req->value, kerr, sizeof(kerr));
    if (text == NULL) {
        s_sink = strlen(kerr);
        return;
    }
    uint32_t ttl_s = req->has_ttl_s ? req->ttl_s : S_TTL_DEFAULT;
    bs_action_t action = req->has_action ? (bs_action_t)req->action : BS_ACTION_REJECT;
    bs_reach_t reach = req->has_reach ? (bs_reach_t)req->reach : BS_REACH_FLEET;
    if (ttl_s < 1 || ttl_s > S_TTL_MAX || action == BS_ACTION_NONE || reach == BS_REACH_UNKNOWN ||
        (reach == BS_REACH_LOCAL ? !cli_key_site_valid(req->site) : req->site && req->site[0])) {
        xfree(text);
        return;
    }
    decision_t d;
    memset(&d, 0, sizeof(d));
    d.scope = scope;
    d.fp = cli_key_fp(text);
    decisions_strlcpy(d.value, text, DECISION_VALUE_MAX);
    xfree(text);
    d.action = action;
    d.reach = reach;
    if (reach == BS_REACH_LOCAL)
        decisions_strlcpy(d.site, req->site, DECISION_NAME_MAX);
    if (req->reason && req->reason[0])
        decisions_strlcpy(d.reason, req->reason, DECISION_REASON_MAX);
    else
        snprintf(d.reason, sizeof(d.reason), "added by %s", who);
    d.expires_ms = S_NOW + (int64_t)ttl_s * 1000;
    d.origin = BS_ORIGIN_CLI;
    decisions_strlcpy(d.origin_who, who, DECISION_NAME_MAX);
    d.all_mail = req->has_all_mail && req->all_mail;
    if (allowlist_covers_decision(al, &d))
        return;
    const decision_t *out = NULL;
    decisions_result_t r = decisions_propose(t, &d, 0, S_NOW, &out);
    if (out == NULL)
        abort();
    static const char *const names[] = {"unchanged", "created", "extended"};
    s_reply_doc(json_pack("{s:s, s:o}", "result", names[r], "decision",
                          control_json_decision(out, S_NOW, true)));
}

/* control.c s_why() before it reads the tables: what the query is. */
static void s_why(const Backstop__ControlRequest *req, decisions_t *t)
{
    char kerr[256], buf[NETADDR_CIDRLEN];
    const char *q = req->query ? req->query : req->id;
    netaddr_t addr;
    netaddr_cidr_t cidr;
    size_t sink = 0;
    if (q == NULL || q[0] == '\0')
        return;
    const decision_t *d =
        strlen(q) <= DECISION_ID_LEN + 2 && !strchr(q, ' ') ? decisions_find(t, q) : NULL;
    if (d) {
        s_reply_doc(json_pack("{s:o}", "decision", control_json_decision(d, S_NOW, true)));
    } else if (netaddr_parse(&addr, q) == 0) {
        if (netaddr_format(&addr, buf, sizeof(buf)) != 0 ||
            netaddr_network_text(&addr, buf, sizeof(buf)) != 0)
            abort();
        sink += strlen(buf);
    } else if (strchr(q, '/') && netaddr_cidr_parse(&cidr, q) == 0) {
        if (netaddr_cidr_format(&cidr, buf, sizeof(buf)) != 0)
            abort();
        sink += strlen(buf);
    } else {
        const char *bar = strrchr(q, '|');
        bool subject_ip = bar && netaddr_parse(&addr, bar + 1) == 0;
        char *text = cli_key_text(subject_ip ? BS_SCOPE_SUBJECT_IP : BS_SCOPE_SUBJECT, q, kerr,
                                  sizeof(kerr));
        if (text) {
            sink += strlen(text) + (size_t)cli_key_fp(text);
            xfree(text);
        } else {
            sink += strlen(kerr);
        }
    }
    s_sink = sink;
}

/* control.c s_allow_entry(): the entry a request names; 0 or -1. */
static int s_allow_entry(const Backstop__ControlRequest *req, allow_entry_t *e)
{
    char kerr[256];
    memset(e, 0, sizeof(*e));
    if (!req->has_scope || req->value == NULL)
        return -1;
    bs_scope_t scope = (bs_scope_t)req->scope;
    char *text = scope == BS_SCOPE_SUBJECT_IP || scope == BS_SCOPE_UNKNOWN
                     ? NULL
                     : cli_key_text(scope, req->value, kerr, sizeof(kerr));
    if (text == NULL)
        return -1;
    int rc = 0;
    switch (scope) {
    case BS_SCOPE_CLIENT_IP:
        rc = allowlist_entry_parse(e, ALLOW_IP, text);
        break;
    case BS_SCOPE_CLIENT_NET:
        rc = allowlist_entry_parse(e, ALLOW_NET, text);
        break;
    case BS_SCOPE_SENDER_DOMAIN:
        rc = allowlist_entry_parse(e, ALLOW_DOMAIN, text);
        break;
    case BS_SCOPE_SITE:
        rc = allowlist_entry_parse(e, ALLOW_SITE, text);
        break;
    default:
        e->type = ALLOW_KEY;
        e->scope = scope;
        e->fp = cli_key_fp(text);
        decisions_strlcpy(e->text, text, ALLOW_TEXT_MAX);
        break;
    }
    xfree(text);
    return rc;
}

/* control.c s_allow_add() and s_allow_del() up to the allowlist. */
static void s_allow(const Backstop__ControlRequest *req, allowlist_t *al, decisions_t *t,
                    const char *who, bool add)
{
    allow_entry_t e;
    if (!add && req->id && req->id[0]) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(req->id, &end, 10);
        if (errno || *end || v == 0 || v > UINT32_MAX)
            return;
        s_sink = (size_t)v + (allowlist_find(al, (uint32_t)v) != NULL);
        return;
    }
    if (s_allow_entry(req, &e) != 0)
        return;
    if (!add)
        return;
    decisions_strlcpy(e.who, who, DECISION_NAME_MAX);
    if (req->reason)
        decisions_strlcpy(e.reason, req->reason, DECISION_REASON_MAX);
    e.created_ms = S_NOW;
    allowlist_ids_t covered = {0, NULL};
    uint32_t id = allowlist_add(al, &e, t, &covered);
    const allow_entry_t *got = allowlist_find(al, id);
    if (got == NULL)
        abort();
    json_t *revoked = json_array();
    for (size_t i = 0; i < covered.n; i++) {
        const decision_t *d = decisions_find(t, covered.id[i]);
        if (d == NULL)
            abort(); /* an id the table just gave */
        json_array_append_new(revoked, control_json_decision(d, S_NOW, false));
    }
    allowlist_ids_clear(&covered);
    s_reply_doc(json_pack("{s:s, s:o, s:o}", "result", "created", "entry", control_json_allow(got),
                          "revoked", revoked));
}

/* What control_handle() checks of a request before it touches the server. */
static void s_request(const Backstop__ControlRequest *req)
{
    decisions_t *t = s_table();
    allowlist_t *al = allowlist_new();
    const char *who = req->who && req->who[0] ? req->who : "-";
    size_t sink = control_changes(req);
    switch (req->command) {
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL:
        if (req->id && req->id[0]) {
            const decision_t *d = decisions_find(t, req->id);
            if (d) {
                decision_t copy = *d;
                if (req->command == BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL &&
                    decisions_remove(t, copy.id, DECISION_WHY_REVOKED, S_NOW) != 0)
                    abort();
                s_reply_doc(
                    json_pack("{s:o}", "decision", control_json_decision(&copy, S_NOW, true)));
            }
        }
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD:
        s_decision_add(req, t, al, who);
        /* the same again: unchanged or extended, never a second decision */
        s_decision_add(req, t, al, who);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__WHY:
        s_why(req, t);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD:
        s_allow(req, al, t, who, true);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL:
        s_allow(req, al, t, who, false);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD:
        sink += (size_t)cli_key_site_valid(req->id);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__TOP:
        if (req->has_scope)
            sink += (size_t)cli_key_scope_parse(bs_enums_scope_name((bs_scope_t)req->scope));
        break;
    default:
        break;
    }
    s_sink = sink;
    allowlist_destroy(&al);
    decisions_destroy(&t);
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
