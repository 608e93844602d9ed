/*
 * NAME
 *   bench_noop_milter - a libmilter filter that does nothing (benchmark baseline)
 *
 * SYNOPSIS
 *   bench_noop_milter SOCKET
 *
 * DESCRIPTION
 *   Accepts every message. It asks for the same callbacks and negotiates away
 *   the same replies as the Backstop sensor, so that a benchmark of Postfix
 *   with the sensor against Postfix with this filter measures the sensor's own
 *   work and nothing of the milter protocol's cost. SOCKET is a libmilter
 *   connection spec (unix:/path or inet:PORT@127.0.0.1); a unix socket is
 *   created with umask 000 so that Postfix's user can reach it.
 *
 * DIAGNOSTICS
 *   Exit status 64 on a usage error, 69 when the socket cannot be opened.
 */
#include <libmilter/mfapi.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

static sfsistat s_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                            unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                            unsigned long *pf2, unsigned long *pf3)
{
    unsigned long want = SMFIP_NOHELO | SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                         SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NOUNKNOWN |
                         SMFIP_NODATA | SMFIP_HDR_LEADSPC;
    *pf0 = f0 & SMFIF_ADDHDRS;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat s_continue_conn(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    return SMFIS_CONTINUE;
}

static sfsistat s_continue_argv(SMFICTX *ctx, char **argv)
{
    return SMFIS_CONTINUE;
}

static sfsistat s_continue_header(SMFICTX *ctx, char *name, char *value)
{
    return SMFIS_CONTINUE;
}

static sfsistat s_continue_ctx(SMFICTX *ctx)
{
    return SMFIS_CONTINUE;
}

static sfsistat s_continue_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
    return SMFIS_CONTINUE;
}

static sfsistat s_accept(SMFICTX *ctx)
{
    return SMFIS_ACCEPT;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_noop_milter SOCKET\n");
        return EX_USAGE;
    }
    struct smfiDesc desc;
    memset(&desc, 0, sizeof(desc));
    desc.xxfi_name = "noop";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS;
    desc.xxfi_connect = s_continue_conn;
    desc.xxfi_envfrom = s_continue_argv;
    desc.xxfi_envrcpt = s_continue_argv;
    desc.xxfi_header = s_continue_header;
    desc.xxfi_eoh = s_continue_ctx;
    desc.xxfi_body = s_continue_body;
    desc.xxfi_eom = s_accept;
    desc.xxfi_negotiate = s_negotiate;
    umask(0);
    if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE ||
        smfi_opensocket(1) == MI_FAILURE) {
        fprintf(stderr, "bench_noop_milter: cannot open %s\n", argv[1]);
        return EX_UNAVAILABLE;
    }
    return smfi_main() == MI_SUCCESS ? 0 : EX_SOFTWARE;
}
