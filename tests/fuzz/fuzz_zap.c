/*
 * fuzz_zap - libFuzzer target: the ZAP handler (zsock_zap_handle) reading any request
 *
 * A ZAP request (RFC 27) comes from libzmq itself when a CURVE client
 * handshakes, so its parts are well formed in practice; but the handler
 * parses whatever arrives on inproc://zeromq.zap.01, and must answer every
 * request exactly once (a REP that skips a reply wedges every later
 * handshake). The first run makes a ZeroMQ context, the real handler
 * (zsock_zap_new) bound in it, and a DEALER connected to the handler's REP
 * standing for libzmq's side.
 *
 * The input is a sequence of request parts, each one selector byte, a 16-bit
 * big-endian length and that many bytes (fewer when the input ends first);
 * a part whose selector has bit 7 set ends a request, as does the input's
 * end. At most S_MAX_REQS requests; a request gets at most S_MAX_PARTS parts
 * (past the handler's 10). An input with no part sends one empty part. All
 * requests are sent (each after the empty delimiter a REP expects), then
 * zsock_zap_handle() runs once and answers them all.
 *
 * The lookup (public key in Z85 -> site) decodes the key again and answers by
 * the key's first byte modulo 4: 0 unknown (NULL), 1 "site-a", 2 "" and 3 a
 * name one byte longer than WIRE_MAX_ID, so a site the handler must refuse.
 *
 * Checked (the oracle; __builtin_trap() on a violation): zsock_zap_handle()
 * returns the number of requests; each gets one reply of six parts: version
 * "1.0", the request id (part 1; empty for a request of one part or of more
 * than 10), a status code and text, a User-Id and empty metadata. The code
 * is 500 for fewer than 6 parts, more than 10 or a version other than "1.0";
 * else 400 unless the mechanism is "CURVE" with exactly 7 parts and a 32-byte
 * key; else 200 with User-Id "site-a" when the lookup gives that site, 400
 * when it gives none or one unusable. User-Id is empty on every refusal;
 * accepted and refused grow by the 200s and the others. The key passed to the
 * lookup is the Z85 of the credentials part. A timer interrupts the calls with
 * a signal every 200 us (fuzz_interrupt_every).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wire.h"
#include "zsock.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_REQS      8
#define S_MAX_PARTS     12
#define S_HANDLER_PARTS 10 /* zsock.c S_ZAP_MAX_PARTS */

static void *s_ctx;
static zsock_zap_t *s_zap;
static void *s_dealer;
static char s_long_site[WIRE_MAX_ID + 2];
static uint8_t s_keys[S_MAX_REQS][32]; /* what the lookup was asked about, in order */
static int s_lookups;

static void s_cleanup(void)
{
    fuzz_interrupt_stop();
    zmq_close(s_dealer);
    zsock_zap_destroy(&s_zap);
    zmq_ctx_term(s_ctx);
}

static const char *s_lookup(void *arg, const char *z85)
{
    (void)arg;
    FUZZ_CHECK(z85 && strlen(z85) == ZSOCK_Z85_LEN);
    FUZZ_CHECK(s_lookups < S_MAX_REQS);
    uint8_t *key = s_keys[s_lookups++];
    FUZZ_CHECK(zmq_z85_decode(key, z85) != NULL);
    switch (key[0] & 3) {
    case 0:
        return NULL;
    case 1:
        return "site-a";
    case 2:
        return "";
    default:
        return s_long_site;
    }
}

static void s_init(void)
{
    fuzz_quiet();
    memset(s_long_site, 'x', WIRE_MAX_ID + 1);
    s_ctx = zmq_ctx_new();
    if (!s_ctx)
        abort();
    s_zap = zsock_zap_new(s_ctx, s_lookup, NULL);
    s_dealer = zmq_socket(s_ctx, ZMQ_DEALER);
    int linger = 0;
    if (!s_zap || !s_dealer || zmq_setsockopt(s_dealer, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_connect(s_dealer, "inproc://zeromq.zap.01") < 0)
        abort();
    atexit(s_cleanup);
    /* from now on EINTR in every run, on purpose (fuzz_lib.h): libFuzzer's timers caused it
     * rarely (the sockets' set-up above is no part of what is tested) */
    fuzz_interrupt_every(200);
}

typedef struct {
    const uint8_t *part[S_MAX_PARTS];
    size_t len[S_MAX_PARTS];
    int n;
} s_req_t;

static bool s_is(const uint8_t *p, size_t len, const char *text)
{
    return len == strlen(text) && memcmp(p, text, len) == 0;
}

/* Receives one part of the reply into buf (cap bytes, NUL-terminated); its size. */
static size_t s_part(char *buf, size_t cap, bool want_more)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    FUZZ_CHECK(fuzz_msg_recv(&m, s_dealer, ZMQ_DONTWAIT) >= 0);
    FUZZ_CHECK(!!zmq_msg_more(&m) == want_more);
    size_t n = zmq_msg_size(&m);
    FUZZ_CHECK(n < cap);
    memcpy(buf, zmq_msg_data(&m), n);
    buf[n] = '\0';
    zmq_msg_close(&m);
    return n;
}

/* Reads the reply to r and checks it; whether it was a 200. */
static bool s_check(const s_req_t *r, int *lookup)
{
    static char buf[65536 + 1];
    char code[8], text[64], user[WIRE_MAX_ID + 1];
    const uint8_t *id = (const uint8_t *)"";
    size_t idlen = 0;
    if (r->n > 1 && r->n <= S_HANDLER_PARTS - 1) {
        id = r->part[1];
        idlen = r->len[1];
    }
    FUZZ_CHECK(s_part(buf, sizeof(buf), true) == 0); /* the REP's delimiter */
    FUZZ_CHECK(s_part(buf, sizeof(buf), true) == 3 && strcmp(buf, "1.0") == 0);
    FUZZ_CHECK(s_part(buf, sizeof(buf), true) == idlen && memcmp(buf, id, idlen) == 0);
    s_part(code, sizeof(code), true);
    s_part(text, sizeof(text), true);
    s_part(user, sizeof(user), true);
    FUZZ_CHECK(s_part(buf, sizeof(buf), false) == 0);

    const char *want = "200";
    if (r->n < 6 || r->n >= S_HANDLER_PARTS || !s_is(r->part[0], r->len[0], "1.0"))
        want = "500";
    else if (r->n != 7 || !s_is(r->part[5], r->len[5], "CURVE") || r->len[6] != 32)
        want = "400";
    else {
        FUZZ_CHECK(*lookup < s_lookups && memcmp(s_keys[*lookup], r->part[6], 32) == 0);
        ++*lookup;
        if ((r->part[6][0] & 3) != 1)
            want = "400";
    }
    FUZZ_CHECK(strcmp(code, want) == 0);
    FUZZ_CHECK(text[0] != '\0');
    FUZZ_CHECK(strcmp(user, strcmp(want, "200") == 0 ? "site-a" : "") == 0);
    return strcmp(want, "200") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_ctx == NULL)
        s_init();
    s_req_t reqs[S_MAX_REQS];
    int nreqs = 0;
    memset(reqs, 0, sizeof(reqs));
    uint8_t sel;
    const uint8_t *buf;
    size_t len;
    while (nreqs < S_MAX_REQS && fuzz_step(&data, &size, &sel, &buf, &len)) {
        s_req_t *r = &reqs[nreqs];
        if (r->n < S_MAX_PARTS) {
            r->part[r->n] = buf;
            r->len[r->n++] = len;
        }
        if (sel & 0x80)
            nreqs++;
    }
    if (nreqs < S_MAX_REQS && reqs[nreqs].n > 0)
        nreqs++;
    if (nreqs == 0) {
        reqs[0].part[0] = (const uint8_t *)"";
        reqs[0].n = 1;
        nreqs = 1;
    }

    for (int i = 0; i < nreqs; i++) {
        if (fuzz_send(s_dealer, "", 0, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
            abort();
        for (int j = 0; j < reqs[i].n; j++)
            if (fuzz_send(s_dealer, reqs[i].part[j], reqs[i].len[j],
                          ZMQ_DONTWAIT | (j + 1 < reqs[i].n ? ZMQ_SNDMORE : 0)) < 0)
                abort();
    }
    uint64_t acc0 = zsock_zap_accepted(s_zap), ref0 = zsock_zap_refused(s_zap);
    s_lookups = 0;
    FUZZ_CHECK(zsock_zap_handle(s_zap) == nreqs);
    /* the replies in order, each with the key the lookup saw for its request */
    int ok = 0, lookup = 0;
    for (int i = 0; i < nreqs; i++)
        ok += s_check(&reqs[i], &lookup);
    FUZZ_CHECK(lookup == s_lookups);
    FUZZ_CHECK(zsock_zap_accepted(s_zap) - acc0 == (uint64_t)ok);
    FUZZ_CHECK(zsock_zap_refused(s_zap) - ref0 == (uint64_t)(nreqs - ok));

    zmq_msg_t rest;
    zmq_msg_init(&rest);
    FUZZ_CHECK(fuzz_msg_recv(&rest, s_dealer, ZMQ_DONTWAIT) < 0 && errno == EAGAIN);
    zmq_msg_close(&rest);
    return 0;
}
