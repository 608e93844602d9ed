/*
 * milter - the libmilter adapter; see milter.h.
 */
#include "milter.h"

#include "msg.h"
#include "xalloc.h"

#include <libmilter/mfapi.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static milter_engine_t *s_engine; /* set once before smfi_main, read-only after */

/* The shutdown gate. libmilter neither joins its worker threads nor closes the sessions it holds
 * when smfi_main returns (this build parks idle sessions in a worker pool that just stops), so
 * a callback may be running, or about to run, when the engine is to be freed. Both are static:
 * a thread that arrives late can still read them, which it could not do with engine fields. */
static _Atomic long s_inflight; /* callbacks running now that may use the engine */
static _Atomic bool s_draining; /* milter_drain began: callbacks entering now leave it alone */

/* Per-connection private data. */
typedef struct {
    milter_conn_t *conn;  /* what we collected */
    milter_snap_t *snap;  /* the configuration the current message began with, or NULL */
    unsigned long pflags; /* protocol flags the MTA accepted (SMFIP_NR_*, SMFIP_SKIP) */
    bool counted;         /* milter_engine_conn_begin was called */
    bool overload;        /* over max_connections: let mail pass unexamined */
    bool chghdrs;         /* the MTA lets us delete headers (SMFIF_CHGHDRS) */
    unsigned tag_headers; /* X-Backstop headers the current message came with */
} s_priv_t;

static const unsigned long s_wanted = SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NR_CONN |
                                      SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR |
                                      SMFIP_SKIP;

/* Enters the gate; false once milter_drain began (the engine may be gone). Counts first, then
 * looks: milter_drain sets the gate, then reads the count, so either it waits for this callback
 * or this callback sees the gate. */
static bool s_enter(void)
{
    atomic_fetch_add(&s_inflight, 1);
    if (!atomic_load(&s_draining))
        return true;
    atomic_fetch_sub(&s_inflight, 1);
    return false;
}

/* Leaves the gate (after s_enter or s_priv returned true/non-NULL); returns rc. */
static sfsistat s_leave(sfsistat rc)
{
    atomic_fetch_sub(&s_inflight, 1);
    return rc;
}

/* Enters the gate and returns the connection's private data, made at its first callback; NULL
 * when stopping (the caller then answers without the engine: the MTA's default, fail open). */
static s_priv_t *s_priv(SMFICTX *ctx)
{
    if (!s_enter())
        return NULL;
    s_priv_t *p = smfi_getpriv(ctx);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->conn = milter_conn_new();
        p->counted = true;
        p->overload = !milter_engine_conn_begin(s_engine);
        smfi_setpriv(ctx, p);
    }
    return p;
}

/* The reply of a callback while stopping: none when we negotiated it away, else ACCEPT (the
 * rest of the message goes unexamined: fail open). */
static sfsistat s_stopping(SMFICTX *ctx, unsigned long nr_flag)
{
    const s_priv_t *p = smfi_getpriv(ctx);
    return p && (p->pflags & nr_flag) ? SMFIS_NOREPLY : SMFIS_ACCEPT;
}

/* The reply for a callback whose reply we negotiated away, or CONTINUE. */
static sfsistat s_noreply(const s_priv_t *p, unsigned long nr_flag)
{
    return (p->pflags & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat s_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                            unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                            unsigned long *pf2, unsigned long *pf3)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return SMFIS_REJECT; /* stopping: no filter for this connection */
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
    p->chghdrs = (*pf0 & SMFIF_CHGHDRS) != 0;
    *pf1 = f1 & s_wanted;
    *pf2 = 0;
    *pf3 = 0;
    p->pflags = *pf1;
    if (f0 & SMFIF_SETSYMLIST) {
        smfi_setsymlist(ctx, SMFIM_CONNECT, "{client_addr} {client_name} {daemon_name}");
        smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {client_addr} {client_name}");
        smfi_setsymlist(ctx, SMFIM_EOM, "i");
    }
    return s_leave(SMFIS_CONTINUE);
}

static void s_addr_text(const _SOCK_ADDR *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

static sfsistat s_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, SMFIP_NR_CONN);
    char ip[64];
    s_addr_text(addr, ip, sizeof(ip));
    const char *mac = smfi_getsymval(ctx, "{client_addr}");
    milter_conn_set_client(p->conn, mac && *mac ? mac : ip, host);
    milter_conn_set_daemon(p->conn, smfi_getsymval(ctx, "{daemon_name}"));
    return s_leave(s_noreply(p, SMFIP_NR_CONN));
}

static sfsistat s_helo(SMFICTX *ctx, char *helo)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, SMFIP_NR_HELO);
    milter_conn_set_helo(p->conn, helo);
    return s_leave(s_noreply(p, SMFIP_NR_HELO));
}

static sfsistat s_envfrom(SMFICTX *ctx, char **argv)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, SMFIP_NR_MAIL);
    p->tag_headers = 0;
    /* the message keeps this configuration to its end, whatever a reload does meanwhile */
    milter_snap_release(&p->snap);
    p->snap = milter_engine_snap(s_engine);
    const sensor_config_t *cfg = milter_snap_config(p->snap);
    milter_msg_t *m = milter_conn_begin(p->conn, (size_t)cfg->message_limit);
    milter_msg_set_from(m, argv && argv[0] ? argv[0] : NULL);
    milter_msg_set_queue_id(m, smfi_getsymval(ctx, "i"));
    const char *auth = smfi_getsymval(ctx, "{auth_authen}");
    m->auth = auth && *auth;
    /* the client as the MTA knows it now (XCLIENT may have replaced it since connect) */
    const char *mac = smfi_getsymval(ctx, "{client_addr}");
    if (mac && *mac)
        milter_conn_set_client(p->conn, mac, smfi_getsymval(ctx, "{client_name}"));
    return s_leave(s_noreply(p, SMFIP_NR_MAIL));
}

static sfsistat s_envrcpt(SMFICTX *ctx, char **argv)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, SMFIP_NR_RCPT);
    if (p->conn->msg && argv && argv[0])
        milter_msg_add_rcpt(p->conn->msg, argv[0]);
    return s_leave(s_noreply(p, SMFIP_NR_RCPT));
}

static sfsistat s_header(SMFICTX *ctx, char *name, char *value)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, SMFIP_NR_HDR);
    if (p->conn->msg && !p->overload)
        milter_msg_add_header(p->conn->msg, name, value);
    if (name && strcasecmp(name, MILTER_TAG_HEADER) == 0)
        p->tag_headers++;
    return s_leave(s_noreply(p, SMFIP_NR_HDR));
}

static sfsistat s_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, 0);
    if (!p->conn->msg || p->overload)
        return s_leave((p->pflags & SMFIP_SKIP) ? SMFIS_SKIP : SMFIS_CONTINUE);
    bool more = milter_msg_add_body(p->conn->msg, data, len);
    if (!more && (p->pflags & SMFIP_SKIP))
        return s_leave(SMFIS_SKIP);
    return s_leave(SMFIS_CONTINUE);
}

static sfsistat s_verdict(SMFICTX *ctx, const milter_verdict_t *v, const char *qid)
{
    switch (v->kind) {
    case MILTER_VERDICT_REJECT:
    case MILTER_VERDICT_TEMPFAIL:
        if (smfi_setreply(ctx, (char *)v->rcode, (char *)v->xcode, (char *)v->text) != MI_SUCCESS)
            msg_warn("%s: smfi_setreply failed code=%s", qid, v->rcode);
        return v->kind == MILTER_VERDICT_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    case MILTER_VERDICT_TAG:
        if (smfi_addheader(ctx, (char *)v->header_name, (char *)v->header_value) != MI_SUCCESS)
            msg_warn("%s: smfi_addheader failed header=%s", qid, v->header_name);
        return SMFIS_ACCEPT;
    default:
        return SMFIS_ACCEPT;
    }
}

static sfsistat s_eom(SMFICTX *ctx)
{
    s_priv_t *p = s_priv(ctx);
    if (!p)
        return s_stopping(ctx, 0);
    milter_msg_t *m = p->conn->msg;
    milter_verdict_t v;
    if (m)
        milter_msg_set_queue_id(m, smfi_getsymval(ctx, "i"));
    const char *qid = m ? m->queue_id : "NOQUEUE";
    if (p->overload) {
        milter_engine_fail(s_engine, MILTER_FAIL_OVERLOAD, qid, &v);
    } else if (!m) {
        milter_engine_fail(s_engine, MILTER_FAIL_INTERNAL, qid, &v);
    } else {
        milter_msg_end_header(m);
        milter_engine_eom(s_engine, p->snap, p->conn, &v);
    }
    if (p->tag_headers && (v.kind == MILTER_VERDICT_ACCEPT || v.kind == MILTER_VERDICT_TAG)) {
        /* the last first: each deletion renumbers the ones after it */
        unsigned n = p->tag_headers, removed = 0;
        for (unsigned i = n; i >= 1 && p->chghdrs; i--)
            removed += smfi_chgheader(ctx, (char *)MILTER_TAG_HEADER, (int)i, NULL) == MI_SUCCESS;
        msg_info("%s: header=%s arrived=%u removed=%u", qid, MILTER_TAG_HEADER, n, removed);
    }
    p->tag_headers = 0;
    sfsistat rc = s_verdict(ctx, &v, qid);
    milter_conn_end(p->conn);
    milter_snap_release(&p->snap);
    return s_leave(rc);
}

/* (touches only the connection's own data and a snapshot, which outlives the engine while
 * referenced, so it runs when stopping too) */
static sfsistat s_abort(SMFICTX *ctx)
{
    s_priv_t *p = smfi_getpriv(ctx);
    if (p) {
        p->tag_headers = 0;
        milter_conn_end(p->conn);
        milter_snap_release(&p->snap);
    }
    return SMFIS_CONTINUE;
}

static sfsistat s_close(SMFICTX *ctx)
{
    s_priv_t *p = smfi_getpriv(ctx);
    if (!p)
        return SMFIS_CONTINUE;
    if (p->counted && s_enter()) { /* when stopping, the engine's count no longer matters */
        milter_engine_conn_end(s_engine);
        (void)s_leave(SMFIS_CONTINUE);
    }
    milter_conn_destroy(&p->conn);
    milter_snap_release(&p->snap);
    xfree(p);
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

int milter_open(const sensor_config_t *cfg)
{
    struct smfiDesc desc;
    memset(&desc, 0, sizeof(desc));
    desc.xxfi_name = "backstop";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    desc.xxfi_connect = s_connect;
    desc.xxfi_helo = s_helo;
    desc.xxfi_envfrom = s_envfrom;
    desc.xxfi_envrcpt = s_envrcpt;
    desc.xxfi_header = s_header;
    desc.xxfi_body = s_body;
    desc.xxfi_eom = s_eom;
    desc.xxfi_abort = s_abort;
    desc.xxfi_close = s_close;
    desc.xxfi_negotiate = s_negotiate;
    if (smfi_setconn(cfg->milter_socket) == MI_FAILURE) {
        msg_error("milter: bad socket spec %s", cfg->milter_socket);
        return EX_CONFIG;
    }
    smfi_settimeout((int)(cfg->milter_timeout_ms / 1000));
    if (smfi_register(desc) == MI_FAILURE) {
        msg_error("milter: smfi_register failed");
        return EX_SOFTWARE;
    }
    mode_t old = umask((mode_t)strtol(cfg->milter_umask, NULL, 8));
    int rc = smfi_opensocket(1);
    umask(old);
    if (rc == MI_FAILURE) {
        msg_error("milter: cannot open socket %s", cfg->milter_socket);
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

int milter_run(milter_engine_t *engine)
{
    const sensor_config_t *cfg = milter_engine_config(engine);
    s_engine = engine;
    msg_info("milter: listening socket=%s site=%s sensor=%s", cfg->milter_socket, cfg->site,
             cfg->sensor_id);
    return smfi_main() == MI_SUCCESS ? EX_OK : EX_SOFTWARE;
}

void milter_stop(void)
{
    smfi_stop();
}

int milter_drain(int64_t timeout_ms)
{
    atomic_store(&s_draining, true);
    long n = atomic_load(&s_inflight);
    if (n == 0)
        return 0;
    msg_info("milter: waiting for callbacks=%ld to finish (up to %lldms)", n,
             (long long)timeout_ms);
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (int64_t waited = 0; waited < timeout_ms; waited += 10) {
        nanosleep(&tick, NULL);
        if ((n = atomic_load(&s_inflight)) == 0) {
            msg_info("milter: callbacks finished");
            return 0;
        }
    }
    msg_warn("milter: callbacks=%ld still running after %lldms; leaving without freeing what they "
             "use",
             n, (long long)timeout_ms);
    return -1;
}
