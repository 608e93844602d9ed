/*
 * zsock - ZeroMQ sockets the Backstop way (proto/PROTOCOL.md sections 1, 2, 7)
 *
 * Thin helpers shared by the sensor, the aggregator and the CLI, so that the
 * socket options, envelopes, CURVE keys and the ZAP handler are written once:
 *
 *  - zsock_new applies the standard options: ZMQ_LINGER, ZMQ_MAXMSGSIZE =
 *    WIRE_MAX_FRAME, bounded high-water marks, ZMQ_IMMEDIATE on PUSH and
 *    DEALER, ZMQ_ROUTER_MANDATORY on ROUTER, ZMTP heartbeats on the request
 *    sockets only (not PUSH/PULL, PUB/SUB: see zsock.c), TCP keepalive;
 *  - zsock_send / zsock_publish / zsock_reply pack a Frame with wire_pack and
 *    send it with the envelope of the socket's pattern; zsock_recv receives one
 *    whole message, unpacks the last part and returns the envelope and the
 *    authenticated site (ZAP User-Id) in a zsock_meta_t;
 *  - CURVE key files (zsock_keys_*) and server/client setup;
 *  - the ZAP handler the aggregator's event loop polls (zsock_zap_*).
 *
 * Envelopes: PUSH/PULL carry [frame]; PUB/SUB [topic][frame]; DEALER -> ROUTER
 * [empty][frame] (a REQ client adds the empty part itself); ROUTER -> DEALER
 * [routing id][empty][frame].
 *
 * Errors: the send and receive functions never block unless the caller passes
 * flags without ZMQ_DONTWAIT, and return -1 with errno (EAGAIN: queue full or
 * nothing to read) without logging: the caller counts. Set-up functions
 * (zsock_new, bind, connect, key files, CURVE, ZAP) log one msg_error line and
 * return NULL/-1; callers at start-up turn that into msg_fatal.
 *
 * Sockets are ZeroMQ's: not thread-safe, closed with zsock_close. Strings
 * returned as char * are the caller's (xfree).
 */
#ifndef BS_ZSOCK_H
#define BS_ZSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bs_clock.h"
#include "wire.h"

#define ZSOCK_LINGER_MS 100  /* ZMQ_LINGER of every socket */
#define ZSOCK_HWM_PUSH  1000 /* frames a sensor queues to the aggregator */
#define ZSOCK_HWM_PULL                                                                             \
    1000                               /* frames the aggregator queues per sensor connection:      \
                                          a flood back-pressures sensors (they spool) */
#define ZSOCK_HWM_PUB           100000 /* updates queued per subscriber */
#define ZSOCK_HWM_SUB           100000 /* updates a sensor queues */
#define ZSOCK_HWM_REQREP        1000   /* DEALER/ROUTER/REQ/REP both ways */
#define ZSOCK_HEARTBEAT_MS      1000   /* ZMTP ping interval */
#define ZSOCK_HEARTBEAT_TTL     3000   /* ZMTP: peer gone after this long without traffic */
#define ZSOCK_KEEPALIVE_IDLE_S  60     /* TCP keepalive: probes after this long idle */
#define ZSOCK_KEEPALIVE_INTVL_S 10     /* ... this far apart (the kernel's count: 9) */
#define ZSOCK_TOPIC_MAX         (WIRE_MAX_ID + 4) /* "S/" + site + "/" + NUL */
#define ZSOCK_ZAP_DOMAIN        "backstop"
#define ZSOCK_Z85_LEN           40 /* a CURVE key in Z85 text */

/* Topics of the decision publisher (PROTOCOL.md 1.2). */
#define ZSOCK_TOPIC_FLEET     "F"
#define ZSOCK_TOPIC_HEARTBEAT "H"

/* What came with a received frame besides the frame. */
typedef struct {
    uint8_t id[256];             /* ROUTER: the peer's routing id */
    size_t id_len;               /* its length, 0 when not a ROUTER */
    char topic[ZSOCK_TOPIC_MAX]; /* SUB: the topic part ("" otherwise) */
    char user[WIRE_MAX_ID + 1];  /* ZAP User-Id: the authenticated site, "" in plain mode */
    char peer[64];               /* Peer-Address for logs ("" when unknown, e.g. ipc) */
} zsock_meta_t;

/* Creates a socket of type (ZMQ_PUSH, ...) with the standard options; NULL + log on error. */
void *zsock_new(void *ctx, int type);

/* Closes sock (linger ZSOCK_LINGER_MS); sets *sock_p = NULL; safe on NULL and twice. */
void zsock_close(void **sock_p);

/* Binds; for ipc:// endpoints the file gets mode (e.g. 0660) and group gid ((gid_t)-1: keep).
 * mode 0 leaves an ipc file as the umask made it. With a mode it narrows the process umask for
 * the bind, so bind ipc endpoints before starting threads. An ipc:// path that a live process
 * listens on (a connect to it succeeds), or that is not a socket, is refused (errno
 * EADDRINUSE or EEXIST): libzmq would unlink it and take its name from under its owner. A
 * stale socket file (a crashed daemon's: connect refused) is replaced. 0, or -1 + log. */
int zsock_bind(void *sock, const char *endpoint, mode_t mode, gid_t gid);

/* The file of a bound ipc:// endpoint, as it was when bound (zsock_ipc_file). */
typedef struct {
    dev_t dev; /* its device */
    ino_t ino; /* its inode; 0: none */
} zsock_ipc_file_t;

/* Records which file the ipc:// endpoint's path is now (f->ino 0 for another transport, or
 * no file). */
void zsock_ipc_file(const char *endpoint, zsock_ipc_file_t *f);

/* Removes the socket file of an ipc:// endpoint at stop, but only if its path is still the
 * file f recorded: one that another process bound since (ours was removed and replaced) is
 * left alone. 1 removed, 0 left alone. */
int zsock_ipc_remove(const char *endpoint, const zsock_ipc_file_t *f);

/* Connects (ZeroMQ connects in the background and reconnects by itself). 0, or -1 + log. */
int zsock_connect(void *sock, const char *endpoint);

/* The endpoint the socket last bound, with the real port of "tcp://127.0.0.1:*"; NULL on error. */
char *zsock_bound_endpoint(void *sock);

/* True for tcp endpoints on a loopback address (127.0.0.0/8, ::1, localhost) and for ipc and
 * inproc, which never leave the machine: plain mode may bind only these. */
int zsock_endpoint_is_local(const char *endpoint);

/* Whether endpoint is one ZeroMQ can take, as far as its text says: ipc://PATH,
 * inproc://NAME, or tcp://[SOURCE;]HOST:PORT where HOST is an IPv4 address, an IPv6 one
 * (in brackets), a host or interface name, or (bind only) "*", and PORT is 1-65535 or
 * (bind only) "*". Names are not resolved. 0, or -1 with why it is not (one phrase) in
 * why (len bytes). */
int zsock_endpoint_check(const char *endpoint, int bind, char *why, size_t len);

/* Whether binding a and then b (both passed zsock_endpoint_check() for a bind) would
 * fail because they take one address: the same ipc path or inproc name, or tcp endpoints
 * on one port (not 0 or *, which the system picks) whose hosts are the same address
 * (127.0.0.1 and 127.000.000.001, [::1] and ::1, localhost and 127.0.0.1) or of which one
 * is a wildcard (*, 0.0.0.0, ::). Names are not resolved: other names never clash. */
int zsock_bind_clash(const char *a, const char *b);

/* Topic of the decisions for one site: "S/<site>/" into buf (ZSOCK_TOPIC_MAX); -1 if site
 * is empty, too long or contains '/'. */
int zsock_site_topic(char *buf, size_t size, const char *site);

/* Subscribes a SUB socket to a topic prefix. 0 or -1. */
int zsock_subscribe(void *sock, const char *topic);

/* Packs frame and sends it alone (a DEALER prepends the empty delimiter). flags: ZMQ_DONTWAIT.
 * -1 with errno EAGAIN (queue full), EMSGSIZE (frame refused by wire_pack) or zmq's. */
int zsock_send(void *sock, Backstop__Frame *frame, int flags);

/* PUB: sends [topic][frame]. Returns as zsock_send. */
int zsock_publish(void *sock, const char *topic, Backstop__Frame *frame, int flags);

/* ROUTER: sends [to->id][empty][frame] to the peer a zsock_recv returned. Returns as zsock_send;
 * EHOSTUNREACH when the peer is gone. */
int zsock_reply(void *sock, const zsock_meta_t *to, Backstop__Frame *frame, int flags);

/* Sends len raw bytes as one part (tests, load tools). Returns as zsock_send. */
int zsock_send_raw(void *sock, const void *buf, size_t len, int flags);

/* Receives one whole message. 1: *frame is a checked frame (wire_free it), meta (may be NULL)
 * filled. 0: a message arrived and was dropped, *err (may be NULL) says why (count it).
 * -1: nothing received, errno EAGAIN (ZMQ_DONTWAIT, nothing there), EINTR or ETERM. */
int zsock_recv(void *sock, int flags, Backstop__Frame **frame, zsock_meta_t *meta, wire_err_t *err);
/* zsock_recv() unpacking into arena (wire_unpack_in): the frame lives until
 * wire_arena_reset(arena), never wire_free it. */
int zsock_recv_in(void *sock, int flags, wire_arena_t *arena, Backstop__Frame **frame,
                  zsock_meta_t *meta, wire_err_t *err);

/* ---- CURVE ---- */

/* A CURVE key pair in Z85 text; secret is "" when only the public key is known. */
typedef struct {
    char public_key[ZSOCK_Z85_LEN + 1]; /* 40 characters of Z85 and a NUL */
    char secret_key[ZSOCK_Z85_LEN + 1]; /* the same, or "" for a public-only file */
} zsock_keys_t;

/* True when this libzmq can do CURVE (built with libsodium). */
int zsock_has_curve(void);

/* Makes a new key pair (zmq_curve_keypair). 0, or -1 + log. */
int zsock_keys_generate(zsock_keys_t *keys);

/* Writes keys to a new file path (fails if it exists): both lines and mode 0600 when the secret
 * is set and with_secret, else the public line only, mode 0644. 0, or -1 with errno (EEXIST:
 * the file exists) and no log line: the caller says what failed, once. */
int zsock_keys_save(const char *path, const zsock_keys_t *keys, int with_secret);

/* Reads a key file: "public = Z85" and, optionally, "secret = Z85"; '#' comments. A file with a
 * secret that group or others can read is refused. 0, or -1 + log naming file and line. */
int zsock_keys_load(const char *path, zsock_keys_t *keys);

/* True when text is a 40-character Z85 key that decodes to 32 bytes. */
int zsock_key_valid(const char *z85);

/* Makes sock a CURVE server with the given pair (secret required), ZAP domain "backstop".
 * Call before zsock_bind. 0, or -1 + log. */
int zsock_curve_server(void *sock, const zsock_keys_t *server);

/* Makes sock a CURVE client of the server with public key server_public (Z85) using the pair
 * client (secret required). Call before zsock_connect. 0, or -1 + log. */
int zsock_curve_client(void *sock, const zsock_keys_t *client, const char *server_public);

/* ---- ZAP (RFC 27) ---- */

/* Maps a client's public key (Z85) to its site name (borrowed, at most WIRE_MAX_ID bytes),
 * or NULL when the key is not registered. */
typedef const char *(*zsock_zap_lookup_fn)(void *arg, const char *client_public_z85);

typedef struct zsock_zap zsock_zap_t;

/* A refused key's log line is said at most once this often, with the refusals since. */
#define ZSOCK_ZAP_LOG_MS 60000
/* Refused keys counted each; refusals of more keys than this in an interval share a line. */
#define ZSOCK_ZAP_LOG_KEYS 32

/* Binds the context's ZAP handler socket (inproc://zeromq.zap.01, REP); lookup(arg, key) decides.
 * NULL + log when another handler is bound. Create it before any CURVE server binds.
 * A refused key is logged ("zsock: zap: refused client_key=K address=A refusals=N: unknown
 * key") at its first refusal and then at most once per ZSOCK_ZAP_LOG_MS, N the refusals
 * of K since its last line (this one included): a sensor with a revoked key, or anyone
 * reaching a CURVE socket, cannot fill the log. Past ZSOCK_ZAP_LOG_KEYS keys refused in an
 * interval, the others are counted together (keys=others in their line). */
zsock_zap_t *zsock_zap_new(void *ctx, zsock_zap_lookup_fn lookup, void *arg);

/* The clock the refusal lines are timed by (monotonic; borrowed, must outlive self);
 * bs_clock_system() until set. */
void zsock_zap_set_clock(zsock_zap_t *self, const bs_clock_t *clock);

/* The REP socket, for zmq_poll (ZMQ_POLLIN). */
void *zsock_zap_socket(zsock_zap_t *self);

/* Answers every pending request without blocking: 200 + User-Id = site, or 400.
 * Returns the number answered, or -1 on a socket error. */
int zsock_zap_handle(zsock_zap_t *self);

/* Requests answered 200 / refused, for status and tests. */
uint64_t zsock_zap_accepted(const zsock_zap_t *self);
uint64_t zsock_zap_refused(const zsock_zap_t *self);

/* Closes the handler; sets *self_p = NULL; safe on NULL and twice. */
void zsock_zap_destroy(zsock_zap_t **self_p);

#endif
