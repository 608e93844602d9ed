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
 * Ownership: wire_unpack returns a frame the caller frees with wire_free
 * (wire_unpack_in: one the arena frees with wire_arena_reset);
 * wire_pack returns a buffer the caller frees with free()/xfree(). Frames the
 * caller builds itself (wire_frame_init) stay the caller's.
 */
#ifndef BS_WIRE_H
#define BS_WIRE_H

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
#define WIRE_MAX_TEXT     256            /* bytes of key text, values, reasons, errors */
#define WIRE_MAX_ID       64             /* bytes of ids, site/sensor names, rule labels */
#define WIRE_MAX_JSON     WIRE_MAX_FRAME /* ControlReply.json: bounded by the frame */

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

#endif
