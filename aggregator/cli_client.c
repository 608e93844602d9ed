/*
 * cli_client - one control request to the aggregator, one reply, bounded wait
 *
 * See cli_client.h. The socket and its context live for one call: a CLI run
 * makes one request, and a fresh context means no state leaks between calls
 * in tests.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli_client.h"
#include "xalloc.h"
#include "zsock.h"

/* Milliseconds on the monotonic clock. */
static long long s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Trims blanks at both ends in place. */
static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* The endpoint a logical line (a key's line and its continuations) sets, or NULL. */
static char *s_endpoint_of(char *logical)
{
    char *s = s_trim(logical);
    if (strncmp(s, "control_endpoint", 16) != 0)
        return NULL;
    char *rest = s_trim(s + 16);
    if (rest[0] != '=')
        return NULL;
    rest = s_trim(rest + 1);
    return rest[0] ? xstrdup(rest) : NULL;
}

char *cli_client_endpoint(const char *config_path, char *err, size_t errlen)
{
    char line[1024];
    char *found = NULL;
    FILE *fp = fopen(config_path ? config_path : CLI_CONFIG_DEFAULT, "r");

    if (fp == NULL) {
        if (config_path == NULL)
            return xstrdup(CLI_ENDPOINT_DEFAULT);
        snprintf(err, errlen, "cannot read %s: %s", config_path, strerror(errno));
        return NULL;
    }
    /* logical lines: a line starting with blanks continues the one before (main.cf) */
    char logical[4096] = "";
    while (found == NULL && fgets(line, sizeof(line), fp)) {
        if ((line[0] == ' ' || line[0] == '\t') && logical[0]) {
            char *more = s_trim(line);
            if (more[0] && more[0] != '#') {
                size_t n = strlen(logical);
                snprintf(logical + n, sizeof(logical) - n, " %s", more);
            }
            continue;
        }
        found = s_endpoint_of(logical);
        char *s = s_trim(line);
        if (s[0] == '[')
            break; /* only the global key matters here */
        snprintf(logical, sizeof(logical), "%s", s[0] == '#' ? "" : s);
    }
    if (found == NULL)
        found = s_endpoint_of(logical);
    fclose(fp);
    return found ? found : xstrdup(CLI_ENDPOINT_DEFAULT);
}

/* Whether something listens on the socket file of an ipc:// endpoint: a connect() is taken
 * into the listener's backlog by the kernel even while the process holding it is stopped or
 * stuck, so a CLI whose request went unanswered can say "running but not answering" rather
 * than "not running". */
static bool s_ipc_listening(const char *endpoint)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strncmp(endpoint, "ipc://", 6) != 0 || strlen(endpoint + 6) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, endpoint + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

int cli_client_call(const char *endpoint, int timeout_ms, Backstop__ControlRequest *req,
                    Backstop__Frame **reply_frame, char *err, size_t errlen)
{
    Backstop__Frame frame;
    int rc = EX_UNAVAILABLE;
    long long deadline = s_mono_ms() + timeout_ms;
    const char *why = "no answer";

    *reply_frame = NULL;
    wire_frame_init(&frame, BACKSTOP__FRAME__BODY_CONTROL_REQUEST, req);
    wire_err_t werr = wire_check(&frame);
    if (werr != WIRE_OK) {
        snprintf(err, errlen, "request refused before sending (%s)", wire_err_name(werr));
        return EX_DATAERR;
    }
    /* an ipc socket file that is not there will not appear within a CLI's patience */
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        struct stat st;
        if (stat(endpoint + 6, &st) < 0 && errno != EACCES) {
            snprintf(err, errlen,
                     "cannot reach the aggregator at %s: is backstop-aggregator running? (%s)",
                     endpoint, strerror(errno));
            return EX_UNAVAILABLE;
        }
        /* a socket we may not write to would only time out: say why at once */
        if (access(endpoint + 6, W_OK) < 0 && errno == EACCES) {
            snprintf(err, errlen,
                     "cannot reach the aggregator at %s: permission denied (the control socket "
                     "is for the aggregator's group; try sudo)",
                     endpoint);
            return EX_NOPERM;
        }
    }

    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zsock_new(ctx, ZMQ_DEALER) : NULL;
    if (sock == NULL || zsock_connect(sock, endpoint) < 0) {
        snprintf(err, errlen, "cannot use the control endpoint \"%s\"", endpoint);
        goto out;
    }
    /* ZMQ_IMMEDIATE: a blocking send waits for the connection, at most the timeout */
    if (zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms)) < 0 ||
        zsock_send(sock, &frame, 0) < 0) {
        why = errno == EAGAIN ? "no connection" : zmq_strerror(errno);
        goto unreachable;
    }
    for (;;) {
        long long left = deadline - s_mono_ms();
        if (left <= 0)
            goto unreachable;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto unreachable;
        Backstop__Frame *got = NULL;
        wire_err_t e = WIRE_OK;
        int r = zsock_recv(sock, ZMQ_DONTWAIT, &got, NULL, &e);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "the aggregator at %s sent a reply that cannot be read (%s)",
                     endpoint, r == 0 ? wire_err_name(e) : zmq_strerror(errno));
            rc = EX_PROTOCOL;
            goto out;
        }
        if (got->body_case != BACKSTOP__FRAME__BODY_CONTROL_REPLY) {
            snprintf(err, errlen, "the aggregator at %s answered with a %s frame", endpoint,
                     wire_body_name(got->body_case));
            wire_free(&got);
            rc = EX_PROTOCOL;
            goto out;
        }
        *reply_frame = got;
        rc = 0;
        goto out;
    }
unreachable:
    if (s_ipc_listening(endpoint))
        snprintf(err, errlen,
                 "the aggregator at %s holds its socket but did not answer within %d ms (%s): "
                 "it is busy, stopped or hung; see its log",
                 endpoint, timeout_ms, why);
    else
        snprintf(err, errlen,
                 "cannot reach the aggregator at %s: is backstop-aggregator running? (%s after "
                 "%d ms)",
                 endpoint, why, timeout_ms);
    rc = EX_UNAVAILABLE;
out:
    zsock_close(&sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
