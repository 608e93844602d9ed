/*
 * milter - the libmilter adapter; see milter.h.
 */
#include "milter.h"

#include "msg.h"
#include "xalloc.h"

#include <libmilter/mfapi.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static milter_engine_t *s_engine; /* set once before smfi_main, read-only after */

/* Per-connection private data. */
typedef struct {
    milter_conn_t *conn;  /* what we collected */
    milter_snap_t *snap;  /* the configuration the current message began with, or NULL */
    unsigned long pflags; /* protocol flags the MTA accepted (SMFIP_NR_*, SMFIP_SKIP) */
    bool counted;         /* milter_engine_conn_begin was called */
    bool overload;        /* over max_connections: let mail pass unexamined */
} s_priv_t;

static const unsigned long s_wanted = SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NR_CONN |
                                      SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR |
                                      SMFIP_SKIP;

static s_priv_t *s_priv(SMFICTX *ctx)
{
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
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_SETSYMLIST);
    *pf1 = f1 & s_wanted;
    *pf2 = 0;
    *pf3 = 0;
    p->pflags = *pf1;
    if (f0 & SMFIF_SETSYMLIST) {
        smfi_setsymlist(ctx, SMFIM_CONNECT, "{client_addr} {client_name} {daemon_name}");
        smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {client_addr} {client_name}");
        smfi_setsymlist(ctx, SMFIM_EOM, "i");
    }
    return SMFIS_CONTINUE;
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
    char ip[64];
    s_addr_text(addr, ip, sizeof(ip));
    const char *mac = smfi_getsymval(ctx, "{client_addr}");
    milter_conn_set_client(p->conn, mac && *mac ? mac : ip, host);
    milter_conn_set_daemon(p->conn, smfi_getsymval(ctx, "{daemon_name}"));
    return s_noreply(p, SMFIP_NR_CONN);
}

static sfsistat s_helo(SMFICTX *ctx, char *helo)
{
    s_priv_t *p = s_priv(ctx);
    milter_conn_set_helo(p->conn, helo);
    return s_noreply(p, SMFIP_NR_HELO);
}

static sfsistat s_envfrom(SMFICTX *ctx, char **argv)
{
    s_priv_t *p = s_priv(ctx);
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
    return s_noreply(p, SMFIP_NR_MAIL);
}

static sfsistat s_envrcpt(SMFICTX *ctx, char **argv)
{
    s_priv_t *p = s_priv(ctx);
    if (p->conn->msg && argv && argv[0])
        milter_msg_add_rcpt(p->conn->msg, argv[0]);
    return s_noreply(p, SMFIP_NR_RCPT);
}

static sfsistat s_header(SMFICTX *ctx, char *name, char *value)
{
    s_priv_t *p = s_priv(ctx);
    if (p->conn->msg && !p->overload)
        milter_msg_add_header(p->conn->msg, name, value);
    return s_noreply(p, SMFIP_NR_HDR);
}

static sfsistat s_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
    s_priv_t *p = s_priv(ctx);
    if (!p->conn->msg || p->overload)
        return (p->pflags & SMFIP_SKIP) ? SMFIS_SKIP : SMFIS_CONTINUE;
    bool more = milter_msg_add_body(p->conn->msg, data, len);
    if (!more && (p->pflags & SMFIP_SKIP))
        return SMFIS_SKIP;
    return SMFIS_CONTINUE;
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
    sfsistat rc = s_verdict(ctx, &v, qid);
    milter_conn_end(p->conn);
    milter_snap_release(&p->snap);
    return rc;
}

static sfsistat s_abort(SMFICTX *ctx)
{
    s_priv_t *p = smfi_getpriv(ctx);
    if (p) {
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
    if (p->counted)
        milter_engine_conn_end(s_engine);
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
    desc.xxfi_flags = SMFIF_ADDHDRS;
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
