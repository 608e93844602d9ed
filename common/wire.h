/*
 * wire - the one protobuf-c adapter: Frames in and out of byte buffers
 *
 * Every ZeroMQ data part in Backstop is one serialized Backstop__Frame
 * (proto/backstop.proto, proto/PROTOCOL.md). This module is the only caller
 * of protobuf-c: it packs frames (stamping the protocol version) and unpacks
 * untrusted bytes into frames that are safe to use.
 *
 * What wire_unpack promises about a frame it returns: at most WIRE_MAX_FRAME
 * bytes on the wire, version == WIRE_VERSION, a body set, every required field
 * present, every enum a value the schema names, every string valid UTF-8 and
 * within its limit (WIRE_MAX_TEXT for text, WIRE_MAX_ID for ids and site
 * names), every repeated field within its count limit, client IPs 4 or 16
 * bytes. Anything else is refused with a wire_err_t the caller counts under
 * wire_err_name(); wire_unpack never logs, aborts or leaks on bad input.
 * Unknown fields (from newer writers) are ignored.
 *
 * wire_pack applies the same checks before packing, so a sender learns
 * locally that its peer would drop a frame instead of losing it silently.
 *
 * An EventBatch carries its events either as rows (one Event message per event) or as
 * columns (EventColumns: packed arrays and text blobs, far cheaper to decode); never both.
 * Columns are checked directly, column by column, with the same promises as rows plus:
 * every column has exactly the length its counts say and every blob exactly the length its
 * per-element lengths add up to (else garbage), each key text is valid UTF-8 without NUL on
 * its own. Nobody else reads or writes either form: wire_events_open/next show a checked
 * batch of either form as one flat wire_event_t per event (pointers into the frame, text
 * lengths known), and wire_batch_t builds one (as columns for an aggregator that announces
 * WIRE_FEATURE_COLUMNS in its heartbeats, as rows otherwise).
 *
 * Ownership: wire_unpack returns a frame the caller frees with wire_free
 * (wire_unpack_in: one the arena frees with wire_arena_reset);
 * wire_pack returns a buffer the caller frees with free()/xfree(). Frames the
 * caller builds itself (wire_frame_init) stay the caller's.
 */
#ifndef BS_WIRE_H
#define BS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backstop.pb-c.h"

#define WIRE_VERSION      1              /* Frame.version this code writes and accepts */
#define WIRE_MAX_FRAME    (1024 * 1024)  /* bytes of one serialized frame */
#define WIRE_MAX_EVENTS   1024           /* events in one EventBatch */
#define WIRE_MAX_KEYS     16             /* keys in one Event */
#define WIRE_MAX_RULES    32             /* rule labels in one Event */
#define WIRE_MAX_SHARES   64             /* site shares in one Evidence */
#define WIRE_MAX_SNAPSHOT 4096           /* decisions (or changes) in one SnapshotReply */
#define WIRE_MAX_SHARED   1024           /* entries in one SharedReply */
#define WIRE_MAX_TEXT     256            /* bytes of key text, values, reasons, errors */
#define WIRE_MAX_ID       64             /* bytes of ids, site/sensor names, rule labels */
#define WIRE_MAX_JSON     WIRE_MAX_FRAME /* ControlReply.json: bounded by the frame */

/* Heartbeat.features bits: what the publishing aggregator accepts. */
#define WIRE_FEATURE_COLUMNS 0x1u /* EventBatch.columns (EventColumns batches) */
/* keeps a key's text from the event that brought it: a sender may leave it out a while
 * (wire_textmem_t) */
#define WIRE_FEATURE_TEXT_ONCE 0x2u

/* Why a frame was refused; each value has a counter name (wire_err_name). The values are
 * stable: the aggregator's drop reasons mirror them one to one, so add new ones just before
 * WIRE_ERR__COUNT and never reorder. */
typedef enum {
    WIRE_OK = 0,
    WIRE_ERR_EMPTY,    /* zero bytes */
    WIRE_ERR_OVERSIZE, /* more than WIRE_MAX_FRAME bytes */
    WIRE_ERR_GARBAGE,  /* not a parseable Frame (truncated, corrupt, required field missing) */
    WIRE_ERR_VERSION,  /* Frame.version is not WIRE_VERSION */
    WIRE_ERR_NOBODY,   /* no body in the oneof, or a NULL body/required message when packing */
    WIRE_ERR_LIMIT,    /* a repeated field or a string longer than its limit */
    WIRE_ERR_VALUE,    /* unknown enum value, invalid UTF-8, client IP not 4 or 16 bytes */
    WIRE_ERR__COUNT    /* number of values, for counter arrays */
} wire_err_t;

/* Short lower-case name of e for drop counters and logs ("oversize", "garbage", ...). */
const char *wire_err_name(wire_err_t e);

/* Name of a body case for logs and counters ("events", "update", ...; "none" when unset). */
const char *wire_body_name(Backstop__Frame__BodyCase body_case);

/* Initialises *frame (version WIRE_VERSION) around body, borrowed, of the given case. */
void wire_frame_init(Backstop__Frame *frame, Backstop__Frame__BodyCase body_case, void *body);

/* Initialises *rq, the request a follower joins with (PROTOCOL.md 4.2): site and sensor
 * (borrowed), and with a position held (epoch non-zero) the changes since since_seq. */
void wire_snapshot_request_init(Backstop__SnapshotRequest *rq, const char *site, const char *sensor,
                                uint64_t epoch, uint64_t since_seq);

/* Checks a frame against the limits above, as wire_unpack does; WIRE_OK when it may be sent. */
wire_err_t wire_check(const Backstop__Frame *frame);

/* Serialized size of frame (version included), without packing it. */
size_t wire_packed_size(Backstop__Frame *frame);

/* Sets frame->version, checks and packs it into a new buffer owned by the caller; NULL + *err
 * (err may be NULL) when the frame breaks a limit or packs to more than WIRE_MAX_FRAME. */
uint8_t *wire_pack(Backstop__Frame *frame, size_t *len_out, wire_err_t *err);

/* Parses and checks len untrusted bytes; a frame for wire_free, or NULL + *err (may be NULL). */
Backstop__Frame *wire_unpack(const void *buf, size_t len, wire_err_t *err);

/* Frees a frame from wire_unpack; sets *frame_p = NULL; safe on NULL and twice. */
void wire_free(Backstop__Frame **frame_p);

/* An arena to unpack into: a busy receiver's frames cost no malloc and free per field.
 * Frames unpacked into it stay valid until wire_arena_reset(), which frees them all at
 * once (never wire_free them). Memory is kept for the next frames, up to a bound. */
typedef struct wire_arena wire_arena_t;
wire_arena_t *wire_arena_new(void);
/* Frees the arena and everything in it; sets *self_p = NULL; safe on NULL and twice. */
void wire_arena_destroy(wire_arena_t **self_p);
/* Frees every frame unpacked into the arena. */
void wire_arena_reset(wire_arena_t *self);
/* wire_unpack() into arena (NULL: as wire_unpack). */
Backstop__Frame *wire_unpack_in(wire_arena_t *arena, const void *buf, size_t len, wire_err_t *err);

/* ---- events of a batch, either form ---- */

/* One key of an event. */
typedef struct {
    int scope;        /* Backstop__Scope value */
    uint64_t fp;      /* fingerprint of the text */
    const char *text; /* its text, NOT NUL-terminated (columns); NULL when it has none */
    size_t text_len;  /* bytes of text; 0 when it has none */
} wire_key_t;

/* One event, flat. From wire_events_next() every pointer is into the frame (valid while it
 * is); for wire_batch_add() every pointer is the caller's and is copied. */
typedef struct {
    uint64_t seq;             /* sensor sequence number */
    int64_t time_ms;          /* when the sensor saw it */
    const uint8_t *client_ip; /* 4 or 16 bytes, network order; NULL when unknown */
    size_t client_ip_len;     /* 4, 16, or 0 */
    int msg_class;            /* Backstop__MsgClass value */
    const wire_key_t *keys;   /* its keys */
    size_t nkeys;             /* how many */
    const char *const *rules; /* labels of the content rules that matched (NUL-terminated) */
    size_t nrules;            /* how many */
    int original;             /* Backstop__Original value */
    bool ledger_hit;          /* the outbound ledger vouched for it */
    int enforced;             /* Backstop__Action the sensor applied, 0 none */
    const char *decision_id;  /* the decision it enforced (NUL-terminated), or NULL */
} wire_event_t;

/* A cursor over the events of a checked batch (from wire_unpack or passing wire_check). */
typedef struct {
    const Backstop__EventBatch *batch; /* the batch */
    size_t n;                          /* its events */
    size_t i;                          /* the next one */
    size_t key_at;                     /* columns: the next event's first key */
    size_t text_at;                    /* columns: its first key text byte */
    size_t ip_at;                      /* columns: its first address byte */
    size_t rule_at;                    /* columns: its first rule label */
    size_t id_at;                      /* columns: the next decision id */
    uint64_t seq;                      /* columns: the previous event's seq */
    uint64_t time_ms;                  /* columns: the previous event's time (two's complement) */
} wire_events_t;

/* Starts a cursor over b's events, rows or columns; returns how many there are. */
size_t wire_events_open(wire_events_t *it, const Backstop__EventBatch *b);

/* The next event into *ev, its keys into keys (room for WIRE_MAX_KEYS); false at the end. */
bool wire_events_next(wire_events_t *it, wire_event_t *ev, wire_key_t *keys);

/* Events in b, rows or columns. */
size_t wire_batch_events(const Backstop__EventBatch *b);

/* True when b carries its events as columns. */
bool wire_batch_is_columnar(const Backstop__EventBatch *b);

/* A batch being built: events are copied in, then packed as rows or columns. */
typedef struct wire_batch wire_batch_t;

/* An empty batch builder. */
wire_batch_t *wire_batch_new(void);
/* Frees it; sets *self_p = NULL; safe on NULL and twice. */
void wire_batch_destroy(wire_batch_t **self_p);
/* Forgets the events (keeps the memory for the next batch). */
void wire_batch_reset(wire_batch_t *self);
/* Appends a copy of ev (text_len bytes of each key text, each rule label and the decision id
 * up to their NUL). Limits are checked when packing. */
void wire_batch_add(wire_batch_t *self, const wire_event_t *ev);
/* Events added since the last reset. */
size_t wire_batch_count(const wire_batch_t *self);
/* Packs the events as one Frame{events} of site and sensor, as columns (columns true) or
 * rows, into a new buffer the caller frees; NULL + *err (may be NULL) as wire_pack. */
uint8_t *wire_batch_pack(wire_batch_t *self, const char *site, const char *sensor, bool columns,
                         size_t *len_out, wire_err_t *err);

/* ---- what an aggregator reads ---- */

/* Keeps, in order, the keys[] (n of them) of the scopes whose bits are set in scopes (an
 * aggregator's Heartbeat.scopes; 0: every scope) and returns how many are kept: the keys a
 * sensor sends it (PROTOCOL.md 5.5). */
size_t wire_keys_read(wire_key_t *keys, size_t n, uint32_t scopes);

/* ---- key texts sent lately ---- */

/* What a sender remembers of the key texts it sent lately (PROTOCOL.md 5.5). An aggregator
 * announcing WIRE_FEATURE_TEXT_ONCE keeps a key's display text from the first event that
 * carries it, so sending it again with every event of the key is waste: about half of an
 * event's bytes, decoded, copied and dropped. wire_textmem_strip() leaves out the text of a
 * key whose text went out within ttl_ms (shorter than any window, so the aggregator still
 * holds the key) and remembers the others as sent now. Only texts the aggregator merely
 * shows lose out: subject and orig_subject, and client_ip and client_net in an event with
 * its address (the aggregator's allowlist judges those by the address). subject_ip,
 * sender_domain and any other scope keep theirs: allowlist matching reads them.
 *
 * A text goes once a minute per key and per kind of event: its class, whether a content rule
 * matched, whether the ledger vouched for it. The aggregator decides by these whether and
 * under which of its event filters (tallies) an event counts, and it keeps a text per key and
 * filter: an event of another kind may start a key the earlier ones never counted under.
 *
 * One slot per key, direct-mapped by fingerprint: a key whose slot another took is merely
 * sent with its text again. The caller clears the memory whenever texts it sent may not
 * have arrived (a send refused, a new connection, another aggregator). Not thread-safe. */
typedef struct wire_textmem wire_textmem_t;

#define WIRE_TEXTMEM_SLOTS  (1u << 18) /* the sensor's: 4 MB, touched only as used */
#define WIRE_TEXTMEM_TTL_MS 60000      /* a text goes again after a minute */

/* A memory of slots slots (rounded up to a power of two) whose texts go again after ttl_ms. */
wire_textmem_t *wire_textmem_new(size_t slots, int64_t ttl_ms);
/* Frees it; sets *self_p = NULL; safe on NULL and twice. */
void wire_textmem_destroy(wire_textmem_t **self_p);
/* Forgets every text: each goes again with the key's next event. */
void wire_textmem_clear(wire_textmem_t *self);
/* Leaves out (text NULL, text_len 0) the texts of ev's keys that may go without at now_ms
 * (any clock, the same one every call): keys is the array ev->keys points at (ev->nkeys of
 * them), changed in place. Returns how many texts it left out. */
size_t wire_textmem_strip(wire_textmem_t *self, const wire_event_t *ev, wire_key_t *keys,
                          int64_t now_ms);

#endif
