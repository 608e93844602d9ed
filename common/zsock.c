/*
 * zsock - ZeroMQ sockets the Backstop way; see zsock.h and proto/PROTOCOL.md.
 *
 * Frames are packed by wire_pack into a heap buffer that ZeroMQ takes over
 * (zmq_msg_init_data with xfree as the release function), so a send copies
 * nothing. A multipart message is accepted by ZeroMQ as a whole once its
 * first part is, so the envelope parts are sent first only after the frame
 * packed successfully, and an EAGAIN can only happen on the first part.
 *
 * The ZAP handler follows RFC 27 (ZAP 1.0): every request gets exactly one
 * reply, even a malformed one (500), because a REP socket that skips a reply
 * wedges the handshakes of every later client.
 */
#include "zsock.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <zmq.h>

#include "msg.h"
#include "xalloc.h"

#define S_ZAP_ENDPOINT  "inproc://zeromq.zap.01"
#define S_ZAP_MAX_PARTS 10 /* a CURVE request has 7; more is refused */

/* A refused key's log line: when it was said, and the refusals not said since. */
typedef struct {
    char key[ZSOCK_Z85_LEN + 1]; /* the client key (Z85); "" for a free slot */
    char addr[64];               /* the address of its latest refusal */
    int64_t said_ms;             /* when its line was last said (monotonic; 0: never) */
    uint64_t unsaid;             /* refusals since that line */
} s_zap_refusal_t;

struct zsock_zap {
    void *rep;                                    /* REP bound to inproc://zeromq.zap.01 */
    zsock_zap_lookup_fn fn;                       /* public key -> site */
    void *arg;                                    /* fn's first argument */
    uint64_t accepted;                            /* requests answered 200 */
    uint64_t refused;                             /* requests answered 400 or 500 */
    const bs_clock_t *clock;                      /* times the refusal lines */
    s_zap_refusal_t refusals[ZSOCK_ZAP_LOG_KEYS]; /* refused keys, each its own line */
    s_zap_refusal_t others;                       /* keys beyond those, one line for all */
};

/* ---- sockets ---- */

static int s_setint(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof(value)) < 0) {
        msg_error("zsock: op=setsockopt option=%s: error=%s", name, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int s_type(void *sock)
{
    int type = -1;
    size_t len = sizeof(type);
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &len) < 0)
        return -1;
    return type;
}

void *zsock_new(void *ctx, int type)
{
    assert(ctx);
    void *sock = zmq_socket(ctx, type);
    if (sock == NULL) {
        msg_error("zsock: op=socket type=%d: error=%s", type, zmq_strerror(errno));
        return NULL;
    }
    int64_t maxmsg = WIRE_MAX_FRAME;
    int snd, rcv, rc = 0;
    switch (type) {
    case ZMQ_PUSH:
        snd = rcv = ZSOCK_HWM_PUSH;
        break;
    case ZMQ_PULL:
        snd = rcv = ZSOCK_HWM_PULL;
        break;
    case ZMQ_PUB:
    case ZMQ_XPUB:
        snd = rcv = ZSOCK_HWM_PUB;
        break;
    case ZMQ_SUB:
    case ZMQ_XSUB:
        snd = rcv = ZSOCK_HWM_SUB;
        break;
    default:
        snd = rcv = ZSOCK_HWM_REQREP;
        break;
    }
    rc |= s_setint(sock, ZMQ_LINGER, ZSOCK_LINGER_MS, "linger");
    rc |= s_setint(sock, ZMQ_SNDHWM, snd, "sndhwm");
    rc |= s_setint(sock, ZMQ_RCVHWM, rcv, "rcvhwm");
    /* ZMTP heartbeats only on the request sockets (snapshot, control). A receiver whose
     * queue is full stops reading its connection, so it sees neither PING nor PONG:
     *  - on the event path (PUSH/PULL) a 3 s stall of a busy aggregator would reset healthy
     *    sensor connections, losing the frames in flight and mixing the old connection's
     *    queue with the new one's (beyond dedup's window);
     *  - on the decision feed (PUB/SUB) a slow subscriber's reset can meet the pending read
     *    and abort the process in libzmq 4.3.4 (assert !_io_error, zeromq/libzmq#4364,
     *    #4767): the sensor, which runs inside the MTA's milter.
     * Both have application liveness instead: the feed's own Heartbeat every second, whose
     * silence makes the sensor reconnect its SUB and PUSH. TCP keepalive still ends
     * connections to hosts that vanished without a reset. */
    if (type == ZMQ_DEALER || type == ZMQ_ROUTER || type == ZMQ_REQ || type == ZMQ_REP) {
        rc |= s_setint(sock, ZMQ_HEARTBEAT_IVL, ZSOCK_HEARTBEAT_MS, "heartbeat_ivl");
        rc |= s_setint(sock, ZMQ_HEARTBEAT_TIMEOUT, ZSOCK_HEARTBEAT_TTL, "heartbeat_timeout");
    }
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE, 1, "tcp_keepalive");
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE_IDLE, ZSOCK_KEEPALIVE_IDLE_S, "tcp_keepalive_idle");
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE_INTVL, ZSOCK_KEEPALIVE_INTVL_S, "tcp_keepalive_intvl");
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0) {
        msg_error("zsock: op=setsockopt option=maxmsgsize: error=%s", zmq_strerror(errno));
        rc = -1;
    }
    if (type == ZMQ_PUSH || type == ZMQ_DEALER)
        rc |= s_setint(sock, ZMQ_IMMEDIATE, 1, "immediate");
    if (type == ZMQ_ROUTER)
        rc |= s_setint(sock, ZMQ_ROUTER_MANDATORY, 1, "router_mandatory");
    if (rc != 0) {
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

void zsock_close(void **sock_p)
{
    assert(sock_p);
    if (*sock_p) {
        zmq_close(*sock_p);
        *sock_p = NULL;
    }
}

/* Whether an ipc path may be bound: nothing there, or a socket no one listens on (a crashed
 * daemon's). libzmq unlinks whatever the path names before it binds, so a second daemon
 * given the same path would take the name from a running one, and unlink it at its stop.
 * 0, or -1 with errno and why (len bytes). */
static int s_ipc_free(const char *path, char *why, size_t len)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0; /* nothing there (or a path bind will refuse with its own error) */
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(why, len, "the path exists and is not a socket");
        errno = EEXIST;
        return -1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return 0; /* too long for any socket: bind says so */
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (rc < 0 && (e == ECONNREFUSED || e == ENOENT))
        return 0; /* stale: no one listens */
    if (rc == 0)
        snprintf(why, len,
                 "in use: a running process listens on it (another daemon "
                 "with this endpoint?)");
    else
        snprintf(why, len, "cannot tell whether it is in use: %s", strerror(e));
    errno = EADDRINUSE;
    return -1;
}

void zsock_ipc_file(const char *endpoint, zsock_ipc_file_t *f)
{
    struct stat st;
    assert(endpoint && f);
    memset(f, 0, sizeof(*f));
    if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' && stat(endpoint + 6, &st) == 0) {
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    }
}

int zsock_ipc_remove(const char *endpoint, const zsock_ipc_file_t *f)
{
    zsock_ipc_file_t now;
    assert(endpoint && f);
    zsock_ipc_file(endpoint, &now);
    if (f->ino == 0 || now.ino != f->ino || now.dev != f->dev)
        return 0;
    return unlink(endpoint + 6) == 0;
}

int zsock_bind(void *sock, const char *endpoint, mode_t mode, gid_t gid)
{
    assert(sock && endpoint);
    int is_ipc = strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@';
    const char *path = endpoint + 6;
    mode_t old = 0;
    char why[128];

    if (is_ipc && s_ipc_free(path, why, sizeof(why)) < 0) {
        int e = errno;
        msg_error("zsock: op=bind endpoint=%s: error=%s", endpoint, why);
        errno = e;
        return -1;
    }

    /* tight umask during bind: the file never exists with looser permissions */
    if (is_ipc && mode)
        old = umask((mode_t)(~mode & 0777));
    int rc = zmq_bind(sock, endpoint);
    int saved = errno;
    if (is_ipc && mode)
        umask(old);
    if (rc < 0) {
        msg_error("zsock: op=bind endpoint=%s: error=%s", endpoint, zmq_strerror(saved));
        return -1;
    }
    if (is_ipc && mode && chmod(path, mode) < 0) {
        msg_error("zsock: op=chmod path=%s: error=%s", path, strerror(errno));
        return -1;
    }
    if (is_ipc && gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
        msg_error("zsock: op=chown path=%s gid=%ld: error=%s", path, (long)gid, strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_connect(void *sock, const char *endpoint)
{
    assert(sock && endpoint);
    if (zmq_connect(sock, endpoint) < 0) {
        msg_error("zsock: op=connect endpoint=%s: error=%s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

char *zsock_bound_endpoint(void *sock)
{
    char buf[1024];
    size_t len = sizeof(buf);
    assert(sock);
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, buf, &len) < 0) {
        msg_error("zsock: op=last_endpoint: error=%s", zmq_strerror(errno));
        return NULL;
    }
    buf[sizeof(buf) - 1] = '\0';
    return buf[0] ? xstrdup(buf) : NULL;
}

int zsock_endpoint_is_local(const char *endpoint)
{
    char host[256];
    struct in_addr a4;
    struct in6_addr a6;

    assert(endpoint);
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return 1;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return 0;
    const char *h = endpoint + 6, *end;
    /* "tcp://src;host:port": the part after ';' is what is bound/connected */
    const char *semi = strchr(h, ';');
    if (semi)
        h = semi + 1;
    if (*h == '[') {
        h++;
        end = strchr(h, ']');
    } else {
        end = strrchr(h, ':');
    }
    if (end == NULL || (size_t)(end - h) >= sizeof(host))
        return 0;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    if (strcmp(host, "localhost") == 0 || strcmp(host, "lo") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* Whether text is an IPv6 address, with or without a zone ("fe80::1%eth0"). */
static int s_ipv6_ok(const char *text)
{
    char a[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;
    size_t n = strcspn(text, "%");
    if (n >= sizeof(a) || (text[n] == '%' && text[n + 1] == '\0'))
        return 0;
    memcpy(a, text, n);
    a[n] = '\0';
    return inet_pton(AF_INET6, a, &a6) == 1;
}

/* Whether h (n bytes) is a host for a tcp endpoint: an IPv4 or IPv6 address (in brackets
 * or not, with a zone or not), a name of letters, digits, '.', '-' and '_', or (bind) "*". */
static int s_host_ok(const char *h, size_t n, int bind)
{
    char host[256];
    if (n == 0 || n >= sizeof(host))
        return 0;
    if (n == 1 && h[0] == '*')
        return bind;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return 0;
        memcpy(host, h + 1, n - 2);
        host[n - 2] = '\0';
        return s_ipv6_ok(host);
    }
    if (memchr(h, ':', n)) {
        /* an IPv6 address without brackets, as libzmq takes it too */
        memcpy(host, h, n);
        host[n] = '\0';
        return s_ipv6_ok(host);
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
            return 0;
    return 1;
}

/* What is wrong with hp (n bytes), "HOST:PORT" (or, for a source, "HOST" alone when
 * !need_port), or NULL when nothing is. */
static const char *s_hostport(const char *hp, size_t n, int bind, int need_port)
{
    size_t hn = n;
    const char *port = NULL;
    if (n && hp[0] == '[') {
        const char *close = memchr(hp, ']', n);
        if (close == NULL)
            return "has an IPv6 address without its ]";
        hn = (size_t)(close - hp) + 1;
        if (hn < n && hp[hn] != ':')
            return "has no :PORT after its IPv6 address";
    } else {
        const char *colon = memrchr(hp, ':', n);
        if (colon)
            hn = (size_t)(colon - hp);
    }
    if (hn < n)
        port = hp + hn + 1;
    if (!s_host_ok(hp, hn, bind))
        return bind ? "has no host, address, interface or * to bind"
                    : "has no host or address to connect to";
    if (port == NULL)
        return need_port ? "has no :PORT" : NULL;
    size_t pn = n - hn - 1;
    if (bind && pn == 1 && port[0] == '*')
        return NULL;
    long v = 0;
    for (size_t i = 0; i < pn && v <= 65535; i++) {
        if (!isdigit((unsigned char)port[i]))
            return bind ? "has no port (0-65535 or *)" : "has no port (1-65535)";
        v = v * 10 + (port[i] - '0');
    }
    /* port 0 binds to a port the system picks, as a source port does */
    if (pn == 0 || v < (bind ? 0 : 1) || v > 65535)
        return bind ? "has no port (0-65535 or *)" : "has no port (1-65535)";
    return NULL;
}

/* The host (brackets off, lower case) and port of a tcp bind endpoint; port -1 for "*".
 * 0, or -1 when it is not one. */
static int s_tcp_split(const char *endpoint, char *host, size_t hlen, long *port)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return -1;
    const char *h = endpoint + 6, *colon = strrchr(h, ':');
    if (colon == NULL || colon == h)
        return -1;
    size_t n = (size_t)(colon - h);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)h[i]);
    host[n] = '\0';
    if (strcmp(colon + 1, "*") == 0) {
        *port = -1;
        return 0;
    }
    char *end = NULL;
    *port = strtol(colon + 1, &end, 10);
    return end && *end == '\0' ? 0 : -1;
}

/* A host's address in a comparable form (16 bytes, IPv4 as mapped); 1 for an address,
 * 2 for a wildcard, 0 for a name (compared as text). */
static int s_host_addr(const char *host, uint8_t out[16])
{
    struct in_addr a4;
    memset(out, 0, 16);
    if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        return 2;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4) == 1) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 1;
    }
    return inet_pton(AF_INET6, host, out) == 1 ? 1 : 0;
}

int zsock_bind_clash(const char *a, const char *b)
{
    char ha[256], hb[256];
    long pa, pb;
    uint8_t xa[16], xb[16];
    assert(a && b);
    if ((strncmp(a, "ipc://", 6) == 0 && strncmp(b, "ipc://", 6) == 0) ||
        (strncmp(a, "inproc://", 9) == 0 && strncmp(b, "inproc://", 9) == 0))
        return strcmp(a, b) == 0;
    if (s_tcp_split(a, ha, sizeof(ha), &pa) < 0 || s_tcp_split(b, hb, sizeof(hb), &pb) < 0)
        return 0;
    if (pa <= 0 || pb <= 0 || pa != pb)
        return 0;
    int ka = s_host_addr(ha, xa), kb = s_host_addr(hb, xb);
    if (ka == 2 || kb == 2)
        return 1;
    if (ka == 1 && kb == 1)
        return memcmp(xa, xb, 16) == 0;
    return ka == 0 && kb == 0 && strcmp(ha, hb) == 0;
}

int zsock_endpoint_check(const char *endpoint, int bind, char *why, size_t len)
{
    assert(endpoint);
    const char *what = NULL;
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        if (endpoint[6] == '\0')
            what = "has no path";
    } else if (strncmp(endpoint, "inproc://", 9) == 0) {
        if (endpoint[9] == '\0')
            what = "has no name";
    } else if (strncmp(endpoint, "tcp://", 6) != 0) {
        what = "is not an endpoint (tcp://HOST:PORT, ipc://PATH)";
    } else {
        const char *h = endpoint + 6, *semi = strchr(h, ';');
        /* "tcp://source;host:port": a connection's source address, a port optional */
        if (semi) {
            what = bind ? "names a source address, which only a connect takes"
                        : s_hostport(h, (size_t)(semi - h), 1, 0);
            h = semi + 1;
        }
        if (what == NULL)
            what = s_hostport(h, strlen(h), bind, 1);
    }
    if (what == NULL)
        return 0;
    if (len)
        snprintf(why, len, "%s", what);
    return -1;
}

int zsock_site_topic(char *buf, size_t size, const char *site)
{
    assert(buf && site);
    size_t len = strlen(site);
    if (len == 0 || len > WIRE_MAX_ID || strchr(site, '/'))
        return -1;
    int n = snprintf(buf, size, "S/%s/", site);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int zsock_subscribe(void *sock, const char *topic)
{
    assert(sock && topic);
    if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, topic, strlen(topic)) < 0) {
        msg_error("zsock: op=subscribe topic=%s: error=%s", topic, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* libzmq may fail any call with EINTR when a signal lands in its bookkeeping (the daemons
 * read theirs with signalfd; libFuzzer's timers do not). A message's later parts must go, or
 * be taken, whole (else the next message's parts would be read as this one's rest), and a
 * ZMQ_DONTWAIT call cannot block: those are tried again. A blocking first part gives EINTR
 * back, so a signal still ends a wait. */
static bool s_again(int rc, int flags, bool first)
{
    return rc < 0 && errno == EINTR && (!first || (flags & ZMQ_DONTWAIT));
}

static int s_send_part(void *sock, const void *buf, size_t len, int flags, bool first)
{
    int rc;
    do
        rc = zmq_send(sock, buf, len, flags);
    while (s_again(rc, flags, first));
    return rc;
}

static int s_recv_part(zmq_msg_t *part, void *sock, int flags, bool first)
{
    int rc;
    do
        rc = zmq_msg_recv(part, sock, flags);
    while (s_again(rc, flags, first));
    return rc;
}

static void s_xfree_hint(void *data, void *hint)
{
    (void)hint;
    xfree(data);
}

/* Sends one part (the message's first, or not) that takes over buf (an xmalloc'd buffer). */
static int s_send_owned(void *sock, uint8_t *buf, size_t len, int flags, bool first)
{
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, buf, len, s_xfree_hint, NULL) < 0) {
        xfree(buf);
        return -1;
    }
    int rc;
    do
        rc = zmq_msg_send(&msg, sock, flags);
    while (s_again(rc, flags, first));
    if (rc < 0) {
        int saved = errno;
        zmq_msg_close(&msg); /* frees buf */
        errno = saved;
        return -1;
    }
    return 0;
}

static uint8_t *s_pack(Backstop__Frame *frame, size_t *len)
{
    wire_err_t err;
    uint8_t *buf = wire_pack(frame, len, &err);
    if (buf == NULL)
        errno = EMSGSIZE;
    return buf;
}

/* Packs frame and sends it behind its envelope: the part env (when not NULL), then an
 * empty delimiter (with delim). On failure nothing of the frame is left queued. */
static int s_send_frame(void *sock, const void *env, size_t env_len, bool delim,
                        Backstop__Frame *frame, int flags)
{
    size_t len;
    uint8_t *buf = s_pack(frame, &len);
    if (buf == NULL)
        return -1;
    if ((env && s_send_part(sock, env, env_len, flags | ZMQ_SNDMORE, true) < 0) ||
        (delim && s_send_part(sock, "", 0, flags | ZMQ_SNDMORE, env == NULL) < 0)) {
        int saved = errno;
        xfree(buf);
        errno = saved;
        return -1;
    }
    return s_send_owned(sock, buf, len, flags, env == NULL && !delim);
}

int zsock_send(void *sock, Backstop__Frame *frame, int flags)
{
    assert(sock && frame);
    return s_send_frame(sock, NULL, 0, s_type(sock) == ZMQ_DEALER, frame, flags);
}

int zsock_publish(void *sock, const char *topic, Backstop__Frame *frame, int flags)
{
    assert(sock && topic && frame);
    return s_send_frame(sock, topic, strlen(topic), false, frame, flags);
}

int zsock_reply(void *sock, const zsock_meta_t *to, Backstop__Frame *frame, int flags)
{
    assert(sock && to && frame && to->id_len > 0);
    return s_send_frame(sock, to->id, to->id_len, true, frame, flags);
}

int zsock_send_raw(void *sock, const void *buf, size_t len, int flags)
{
    assert(sock && (buf || len == 0));
    return s_send_part(sock, buf, len, flags, true) < 0 ? -1 : 0;
}

/* Copies a message property (ZAP User-Id, Peer-Address) into out; "" when absent. */
static void s_property(zmq_msg_t *msg, const char *name, char *out, size_t size)
{
    const char *v = zmq_msg_gets(msg, name);
    out[0] = '\0';
    if (v)
        snprintf(out, size, "%s", v);
}

int zsock_recv(void *sock, int flags, Backstop__Frame **frame, zsock_meta_t *meta, wire_err_t *err)
{
    return zsock_recv_in(sock, flags, NULL, frame, meta, err);
}

int zsock_recv_in(void *sock, int flags, wire_arena_t *arena, Backstop__Frame **frame,
                  zsock_meta_t *meta, wire_err_t *err)
{
    zsock_meta_t dummy_meta;
    wire_err_t dummy_err;
    zmq_msg_t part;
    int type = s_type(sock), nparts = 0, bad = 0;

    assert(sock && frame);
    if (meta == NULL)
        meta = &dummy_meta;
    if (err == NULL)
        err = &dummy_err;
    *frame = NULL;
    *err = WIRE_OK;
    meta->id_len = 0;
    meta->topic[0] = meta->user[0] = meta->peer[0] = '\0';

    zmq_msg_init(&part);
    if (s_recv_part(&part, sock, flags, true) < 0) {
        int saved = errno;
        zmq_msg_close(&part);
        errno = saved;
        return -1;
    }
    /* every part before the last is envelope; the rest of a message is already here */
    while (zmq_msg_more(&part)) {
        size_t size = zmq_msg_size(&part);
        if (size == 0) {
            /* the delimiter: nothing to keep */
        } else if (nparts == 0 && type == ZMQ_ROUTER && size <= sizeof(meta->id)) {
            memcpy(meta->id, zmq_msg_data(&part), size);
            meta->id_len = size;
        } else if (nparts == 0 && type == ZMQ_SUB && size < sizeof(meta->topic)) {
            memcpy(meta->topic, zmq_msg_data(&part), size);
            meta->topic[size] = '\0';
        } else {
            bad = 1;
        }
        nparts++;
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        if (s_recv_part(&part, sock, 0, false) < 0) {
            int saved = errno;
            zmq_msg_close(&part);
            errno = saved;
            return -1;
        }
    }
    if (nparts > 2 || (type == ZMQ_SUB && meta->topic[0] == '\0'))
        bad = 1;
    s_property(&part, "User-Id", meta->user, sizeof(meta->user));
    s_property(&part, "Peer-Address", meta->peer, sizeof(meta->peer));
    if (bad) {
        *err = WIRE_ERR_GARBAGE;
    } else {
        *frame = wire_unpack_in(arena, zmq_msg_data(&part), zmq_msg_size(&part), err);
    }
    zmq_msg_close(&part);
    return *frame ? 1 : 0;
}

/* ---- CURVE keys ---- */

int zsock_has_curve(void)
{
    return zmq_has("curve") ? 1 : 0;
}

int zsock_key_valid(const char *z85)
{
    uint8_t bin[32];
    if (z85 == NULL || strlen(z85) != ZSOCK_Z85_LEN)
        return 0;
    return zmq_z85_decode(bin, z85) != NULL;
}

int zsock_keys_generate(zsock_keys_t *keys)
{
    assert(keys);
    if (zmq_curve_keypair(keys->public_key, keys->secret_key) < 0) {
        msg_error("zsock: op=curve_keypair: error=%s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_keys_save(const char *path, const zsock_keys_t *keys, int with_secret)
{
    assert(path && keys);
    with_secret = with_secret && keys->secret_key[0];
    mode_t mode = with_secret ? 0600 : 0644;
    char text[200];
    int n = snprintf(text, sizeof(text),
                     "# Backstop CURVE key%s (Z85), made by zmq_curve_keypair\npublic = %s\n",
                     with_secret ? " pair" : ", public part", keys->public_key);
    if (with_secret)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "secret = %s\n", keys->secret_key);
    /* the callers (a CLI, --genkey) say what failed in their own words: no line here */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    /* the umask may have been looser or tighter: the mode is part of the contract */
    ssize_t w = 0;
    if (fchmod(fd, mode) < 0 || (w = write(fd, text, (size_t)n)) != n || fsync(fd) < 0) {
        int e = w >= 0 && w != n ? EIO : errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    if (close(fd) < 0) {
        int e = errno;
        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

/* Trims spaces and tabs at both ends, in place. */
static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

int zsock_keys_load(const char *path, zsock_keys_t *keys)
{
    char line[256];
    struct stat st;
    int lineno = 0;

    assert(path && keys);
    memset(keys, 0, sizeof(*keys));
    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        msg_error("zsock: op=keys_load file=%s: error=%s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
        msg_error("zsock: op=keys_load file=%s: error=not a regular file", path);
        fclose(fp);
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            msg_error("zsock: op=keys_load file=%s:%d: error=line too long", path, lineno);
            goto fail;
        }
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            msg_error("zsock: op=keys_load file=%s:%d: error=expected name = value", path, lineno);
            goto fail;
        }
        *eq = '\0';
        char *name = s_trim(s), *value = s_trim(eq + 1);
        char *dst;
        if (strcmp(name, "public") == 0) {
            dst = keys->public_key;
        } else if (strcmp(name, "secret") == 0) {
            dst = keys->secret_key;
        } else {
            msg_error("zsock: op=keys_load file=%s:%d: error=unknown name \"%s\"", path, lineno,
                      name);
            goto fail;
        }
        if (!zsock_key_valid(value)) {
            msg_error("zsock: op=keys_load file=%s:%d: error=%s is not a 40-character Z85 key",
                      path, lineno, name);
            goto fail;
        }
        memcpy(dst, value, ZSOCK_Z85_LEN + 1);
    }
    if (ferror(fp)) {
        msg_error("zsock: op=keys_load file=%s: error=%s", path, strerror(errno));
        goto fail;
    }
    if (keys->public_key[0] == '\0') {
        msg_error("zsock: op=keys_load file=%s: error=no public key", path);
        goto fail;
    }
    if (keys->secret_key[0]) {
        char derived[ZSOCK_Z85_LEN + 1];
        if (st.st_mode & 077) {
            msg_error("zsock: op=keys_load file=%s: error=secret key readable by group or others "
                      "(mode %03o, want 0600)",
                      path, (unsigned)(st.st_mode & 0777));
            goto fail;
        }
        if (zmq_curve_public(derived, keys->secret_key) < 0 ||
            strcmp(derived, keys->public_key) != 0) {
            msg_error("zsock: op=keys_load file=%s: error=public key does not match secret key",
                      path);
            goto fail;
        }
    }
    fclose(fp);
    return 0;
fail:
    fclose(fp);
    memset(keys, 0, sizeof(*keys));
    return -1;
}

static int s_setkey(void *sock, int opt, const char *z85, const char *name)
{
    if (!zsock_key_valid(z85)) {
        msg_error("zsock: op=curve option=%s: error=not a 40-character Z85 key", name);
        return -1;
    }
    if (zmq_setsockopt(sock, opt, z85, ZSOCK_Z85_LEN) < 0) {
        msg_error("zsock: op=curve option=%s: error=%s", name, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_curve_server(void *sock, const zsock_keys_t *server)
{
    assert(sock && server);
    if (s_setint(sock, ZMQ_CURVE_SERVER, 1, "curve_server") < 0 ||
        s_setkey(sock, ZMQ_CURVE_SECRETKEY, server->secret_key, "curve_secretkey") < 0)
        return -1;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZSOCK_ZAP_DOMAIN, strlen(ZSOCK_ZAP_DOMAIN)) < 0) {
        msg_error("zsock: op=curve option=zap_domain: error=%s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int zsock_curve_client(void *sock, const zsock_keys_t *client, const char *server_public)
{
    assert(sock && client && server_public);
    if (s_setkey(sock, ZMQ_CURVE_SERVERKEY, server_public, "curve_serverkey") < 0 ||
        s_setkey(sock, ZMQ_CURVE_PUBLICKEY, client->public_key, "curve_publickey") < 0 ||
        s_setkey(sock, ZMQ_CURVE_SECRETKEY, client->secret_key, "curve_secretkey") < 0)
        return -1;
    return 0;
}

/* ---- ZAP ---- */

zsock_zap_t *zsock_zap_new(void *ctx, zsock_zap_lookup_fn lookup, void *arg)
{
    assert(ctx && lookup);
    void *rep = zmq_socket(ctx, ZMQ_REP);
    if (rep == NULL) {
        msg_error("zsock: op=zap_socket: error=%s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(rep, S_ZAP_ENDPOINT) < 0) {
        msg_error("zsock: op=bind endpoint=%s: error=%s", S_ZAP_ENDPOINT, zmq_strerror(errno));
        zmq_close(rep);
        return NULL;
    }
    zsock_zap_t *self = xcalloc(1, sizeof(*self));
    self->rep = rep;
    self->fn = lookup;
    self->arg = arg;
    self->clock = bs_clock_system();
    return self;
}

void zsock_zap_set_clock(zsock_zap_t *self, const bs_clock_t *clock)
{
    assert(self && clock);
    self->clock = clock;
}

/* Says r's line: the refusals of its key since its last line. */
static void s_zap_refusal_say(const s_zap_refusal_t *r, bool others)
{
    msg_warn("zsock: zap: refused client_key=%s address=%s refusals=%llu%s: unknown key%s", r->key,
             r->addr, (unsigned long long)r->unsaid, others ? " keys=others" : "",
             others ? " (more keys refused in a minute than are counted each: these "
                      "together, this the latest)"
                    : "");
}

/* Counts a refusal of key (Z85) from addr, and logs it when its line is due. */
static void s_zap_refusal(zsock_zap_t *self, const char *key, const char *addr)
{
    int64_t now = bs_clock_mono_ms(self->clock);
    s_zap_refusal_t *r = NULL, *stale = NULL;
    for (size_t i = 0; i < ZSOCK_ZAP_LOG_KEYS && r == NULL; i++) {
        s_zap_refusal_t *x = &self->refusals[i];
        if (strcmp(x->key, key) == 0)
            r = x;
        else if (x->key[0] == '\0' || now - x->said_ms >= ZSOCK_ZAP_LOG_MS)
            stale = stale ? stale : x;
    }
    if (r == NULL && stale) {
        /* a slot free, or one whose line is a minute old: what it has not said yet is
         * said now (its line was due), then it counts key */
        if (stale->key[0] && stale->unsaid)
            s_zap_refusal_say(stale, false);
        r = stale;
        memset(r, 0, sizeof(*r));
        snprintf(r->key, sizeof(r->key), "%s", key);
    }
    bool others = r == NULL;
    if (others) {
        r = &self->others;
        snprintf(r->key, sizeof(r->key), "%s", key);
    }
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    r->unsaid++;
    if (msg_due(&r->said_ms, now, ZSOCK_ZAP_LOG_MS)) {
        s_zap_refusal_say(r, others);
        r->unsaid = 0;
    }
}

void *zsock_zap_socket(zsock_zap_t *self)
{
    assert(self);
    return self->rep;
}

/* Sends the six-part ZAP reply. */
static int s_zap_reply(void *rep, zmq_msg_t *request_id, const char *code, const char *text,
                       const char *user)
{
    size_t idlen = request_id ? zmq_msg_size(request_id) : 0;
    const void *id = request_id ? zmq_msg_data(request_id) : "";
    /* every part tried again on EINTR, the first too: the request is taken, and a REP
     * that does not answer it answers no other (its send never blocks: replies over the
     * high-water mark are dropped) */
    if (s_send_part(rep, "1.0", 3, ZMQ_SNDMORE, false) < 0 ||
        s_send_part(rep, id, idlen, ZMQ_SNDMORE, false) < 0 ||
        s_send_part(rep, code, strlen(code), ZMQ_SNDMORE, false) < 0 ||
        s_send_part(rep, text, strlen(text), ZMQ_SNDMORE, false) < 0 ||
        s_send_part(rep, user, strlen(user), ZMQ_SNDMORE, false) < 0 ||
        s_send_part(rep, "", 0, 0, false) < 0)
        return -1;
    return 0;
}

static int s_part_is(zmq_msg_t *part, const char *text)
{
    size_t len = strlen(text);
    return zmq_msg_size(part) == len && memcmp(zmq_msg_data(part), text, len) == 0;
}

/* Answers one request whose parts are in parts[0..n). */
static int s_zap_answer(zsock_zap_t *self, zmq_msg_t *parts, int n)
{
    /* 0 version, 1 request id, 2 domain, 3 address, 4 routing id, 5 mechanism, 6.. credentials */
    if (n < 6 || !s_part_is(&parts[0], "1.0")) {
        self->refused++;
        msg_warn("zsock: zap: malformed request parts=%d", n);
        return s_zap_reply(self->rep, n > 1 ? &parts[1] : NULL, "500", "malformed request", "");
    }
    if (!s_part_is(&parts[5], "CURVE") || n != 7 || zmq_msg_size(&parts[6]) != 32) {
        self->refused++;
        return s_zap_reply(self->rep, &parts[1], "400", "mechanism not allowed", "");
    }
    char z85[ZSOCK_Z85_LEN + 1];
    if (zmq_z85_encode(z85, zmq_msg_data(&parts[6]), 32) == NULL) {
        self->refused++;
        return s_zap_reply(self->rep, &parts[1], "500", "cannot encode key", "");
    }
    const char *site = self->fn(self->arg, z85);
    if (site == NULL || site[0] == '\0' || strlen(site) > WIRE_MAX_ID) {
        char addr[64];
        size_t alen = zmq_msg_size(&parts[3]);
        if (alen >= sizeof(addr))
            alen = sizeof(addr) - 1;
        memcpy(addr, zmq_msg_data(&parts[3]), alen);
        addr[alen] = '\0';
        self->refused++;
        s_zap_refusal(self, z85, addr);
        return s_zap_reply(self->rep, &parts[1], "400", "unknown key", "");
    }
    self->accepted++;
    return s_zap_reply(self->rep, &parts[1], "200", "OK", site);
}

int zsock_zap_handle(zsock_zap_t *self)
{
    int answered = 0;
    assert(self);
    for (;;) {
        zmq_msg_t parts[S_ZAP_MAX_PARTS];
        int n = 0, more = 1, rc = 0;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (s_recv_part(&part, self->rep, n == 0 ? ZMQ_DONTWAIT : 0, n == 0) < 0) {
                int saved = errno;
                zmq_msg_close(&part);
                for (int i = 0; i < n && i < S_ZAP_MAX_PARTS; i++)
                    zmq_msg_close(&parts[i]);
                if (n == 0 && saved == EAGAIN)
                    return answered;
                errno = saved;
                return -1;
            }
            more = zmq_msg_more(&part);
            if (n < S_ZAP_MAX_PARTS) {
                zmq_msg_init(&parts[n]);
                zmq_msg_move(&parts[n], &part);
            }
            zmq_msg_close(&part);
            n++;
        }
        rc = s_zap_answer(self, parts, n < S_ZAP_MAX_PARTS ? n : 0);
        for (int i = 0; i < n && i < S_ZAP_MAX_PARTS; i++)
            zmq_msg_close(&parts[i]);
        if (rc < 0) {
            msg_error("zsock: op=zap_reply: error=%s", zmq_strerror(errno));
            return -1;
        }
        answered++;
    }
}

uint64_t zsock_zap_accepted(const zsock_zap_t *self)
{
    assert(self);
    return self->accepted;
}

uint64_t zsock_zap_refused(const zsock_zap_t *self)
{
    assert(self);
    return self->refused;
}

void zsock_zap_destroy(zsock_zap_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        /* unbind first: a closed socket gives up its inproc name only later, in the reaper */
        zmq_unbind((*self_p)->rep, S_ZAP_ENDPOINT);
        zmq_close((*self_p)->rep);
        xfree(*self_p);
        *self_p = NULL;
    }
}
