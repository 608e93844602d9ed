/*
 * wire - the one protobuf-c adapter; see wire.h.
 *
 * protobuf-c already refuses truncated and corrupt input and frames missing a
 * required field. What it does not check is the schema's meaning: enum values
 * it does not know, string lengths, repeated-field counts, UTF-8, address
 * lengths. Those checks are done by one walk over the message descriptors, so
 * a field added to backstop.proto later is checked without code here: strings
 * default to WIRE_MAX_TEXT, repeated fields to WIRE_MAX_SHARES, and the table
 * s_limits names the fields with other bounds.
 *
 * The walk only reads; it never allocates. Depth is bounded although the
 * schema has no recursive message, so that a future one cannot overflow the
 * stack.
 */
#include "wire.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "msg.h"
#include "xalloc.h"

#define S_MAX_DEPTH        8 /* nesting of messages the walk accepts */
#define S_DEFAULT_REPEATED WIRE_MAX_SHARES
#define S_IP               ((size_t)-1) /* bytes value meaning "exactly 4 or 16" */

/* A field whose bounds are not the defaults; 0 keeps a default. */
typedef struct {
    const ProtobufCMessageDescriptor *msg; /* message holding the field */
    const char *field;                     /* field name as in backstop.proto */
    size_t bytes;                          /* bytes of a string/bytes value (each element) */
    size_t count;                          /* elements of a repeated field */
    const ProtobufCFieldDescriptor *fd;    /* resolved once, compared by pointer in the walk */
} s_limit_t;

static s_limit_t s_limits[] = {
    {&backstop__event_batch__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__event_batch__descriptor, "sensor", WIRE_MAX_ID, 0, NULL},
    {&backstop__event_batch__descriptor, "events", 0, WIRE_MAX_EVENTS, NULL},
    {&backstop__event__descriptor, "keys", 0, WIRE_MAX_KEYS, NULL},
    {&backstop__event__descriptor, "rules", WIRE_MAX_ID, WIRE_MAX_RULES, NULL},
    {&backstop__event__descriptor, "client_ip", S_IP, 0, NULL},
    {&backstop__event__descriptor, "decision_id", WIRE_MAX_ID, 0, NULL},
    {&backstop__site_share__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__evidence__descriptor, "rule", WIRE_MAX_ID, 0, NULL},
    {&backstop__evidence__descriptor, "shares", 0, WIRE_MAX_SHARES, NULL},
    {&backstop__decision__descriptor, "id", WIRE_MAX_ID, 0, NULL},
    {&backstop__decision__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__decision__descriptor, "origin_who", WIRE_MAX_ID, 0, NULL},
    {&backstop__snapshot_request__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__snapshot_request__descriptor, "sensor", WIRE_MAX_ID, 0, NULL},
    {&backstop__snapshot_reply__descriptor, "decisions", 0, WIRE_MAX_SNAPSHOT, NULL},
    {&backstop__snapshot_reply__descriptor, "changes", 0, WIRE_MAX_SNAPSHOT, NULL},
    {&backstop__sensor_status__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__sensor_status__descriptor, "sensor", WIRE_MAX_ID, 0, NULL},
    {&backstop__control_request__descriptor, "site", WIRE_MAX_ID, 0, NULL},
    {&backstop__control_request__descriptor, "who", WIRE_MAX_ID, 0, NULL},
    {&backstop__control_reply__descriptor, "json", WIRE_MAX_JSON, 0, NULL},
};
#define S_NLIMITS (sizeof(s_limits) / sizeof(s_limits[0]))

static pthread_once_t s_limits_once = PTHREAD_ONCE_INIT;

static void s_limits_resolve(void)
{
    for (size_t i = 0; i < S_NLIMITS; i++) {
        s_limits[i].fd =
            protobuf_c_message_descriptor_get_field_by_name(s_limits[i].msg, s_limits[i].field);
        if (s_limits[i].fd == NULL)
            msg_panic("wire: limit table names unknown field %s.%s", s_limits[i].msg->name,
                      s_limits[i].field);
    }
}

/* The byte bound of field f's values. */
static size_t s_bytes_limit(const ProtobufCFieldDescriptor *f)
{
    for (size_t i = 0; i < S_NLIMITS; i++)
        if (s_limits[i].fd == f && s_limits[i].bytes)
            return s_limits[i].bytes;
    return WIRE_MAX_TEXT;
}

/* The element bound of repeated field f. */
static size_t s_count_limit(const ProtobufCFieldDescriptor *f)
{
    for (size_t i = 0; i < S_NLIMITS; i++)
        if (s_limits[i].fd == f && s_limits[i].count)
            return s_limits[i].count;
    return S_DEFAULT_REPEATED;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int s_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

static wire_err_t s_check_message(const ProtobufCMessage *m, int depth);

/* Checks one value of field f stored at member. */
static wire_err_t s_check_value(const ProtobufCFieldDescriptor *f, const void *member, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)member;
        if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) == NULL)
            return WIRE_ERR_VALUE;
        return WIRE_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)member;
        if (s == NULL)
            return WIRE_OK; /* protobuf-c packs NULL as "" */
        size_t max = s_bytes_limit(f);
        size_t len = strnlen(s, max + 1);
        if (len > max)
            return WIRE_ERR_LIMIT;
        return s_utf8_valid((const unsigned char *)s, len) ? WIRE_OK : WIRE_ERR_VALUE;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = member;
        size_t max = s_bytes_limit(f);
        if (max == S_IP)
            return (b->len == 4 || b->len == 16) ? WIRE_OK : WIRE_ERR_VALUE;
        return b->len > max ? WIRE_ERR_LIMIT : WIRE_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
        if (sub == NULL)
            return WIRE_ERR_NOBODY;
        return s_check_message(sub, depth + 1);
    }
    default:
        return WIRE_OK; /* integers and bools: any value is well-formed */
    }
}

/* Size of one element of a repeated field of f's type, 0 for types we do not check. */
static size_t s_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0;
    }
}

static wire_err_t s_check_message(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;

    if (depth > S_MAX_DEPTH)
        return WIRE_ERR_LIMIT;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *member = base + f->offset;
        wire_err_t e;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n > s_count_limit(f))
                return WIRE_ERR_LIMIT;
            size_t sz = s_elem_size(f);
            const char *arr = *(char *const *)member;
            if (sz == 0 || n == 0)
                continue;
            if (arr == NULL)
                return WIRE_ERR_NOBODY;
            for (size_t j = 0; j < n; j++)
                if ((e = s_check_value(f, arr + j * sz, depth)) != WIRE_OK)
                    return e;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
                if (*(void *const *)member == NULL)
                    continue;
            } else if (f->quantifier_offset != 0 &&
                       !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
                continue;
            }
        }
        if ((e = s_check_value(f, member, depth)) != WIRE_OK)
            return e;
    }
    return WIRE_OK;
}

const char *wire_err_name(wire_err_t e)
{
    switch (e) {
    case WIRE_OK:
        return "ok";
    case WIRE_ERR_EMPTY:
        return "empty";
    case WIRE_ERR_OVERSIZE:
        return "oversize";
    case WIRE_ERR_GARBAGE:
        return "garbage";
    case WIRE_ERR_VERSION:
        return "version";
    case WIRE_ERR_NOBODY:
        return "nobody";
    case WIRE_ERR_LIMIT:
        return "limit";
    case WIRE_ERR_VALUE:
        return "value";
    default:
        return "unknown";
    }
}

const char *wire_body_name(Backstop__Frame__BodyCase body_case)
{
    switch (body_case) {
    case BACKSTOP__FRAME__BODY_EVENTS:
        return "events";
    case BACKSTOP__FRAME__BODY_UPDATE:
        return "update";
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST:
        return "snapshot_request";
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY:
        return "snapshot_reply";
    case BACKSTOP__FRAME__BODY_HEARTBEAT:
        return "heartbeat";
    case BACKSTOP__FRAME__BODY_STATUS:
        return "status";
    case BACKSTOP__FRAME__BODY_CONTROL_REQUEST:
        return "control_request";
    case BACKSTOP__FRAME__BODY_CONTROL_REPLY:
        return "control_reply";
    default:
        return "none";
    }
}

void wire_frame_init(Backstop__Frame *frame, Backstop__Frame__BodyCase body_case, void *body)
{
    assert(frame);
    backstop__frame__init(frame);
    frame->version = WIRE_VERSION;
    frame->body_case = body_case;
    switch (body_case) {
    case BACKSTOP__FRAME__BODY_EVENTS:
        frame->events = body;
        break;
    case BACKSTOP__FRAME__BODY_UPDATE:
        frame->update = body;
        break;
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST:
        frame->snapshot_request = body;
        break;
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY:
        frame->snapshot_reply = body;
        break;
    case BACKSTOP__FRAME__BODY_HEARTBEAT:
        frame->heartbeat = body;
        break;
    case BACKSTOP__FRAME__BODY_STATUS:
        frame->status = body;
        break;
    case BACKSTOP__FRAME__BODY_CONTROL_REQUEST:
        frame->control_request = body;
        break;
    case BACKSTOP__FRAME__BODY_CONTROL_REPLY:
        frame->control_reply = body;
        break;
    default:
        assert(body == NULL);
        frame->body_case = BACKSTOP__FRAME__BODY__NOT_SET;
        break;
    }
}

wire_err_t wire_check(const Backstop__Frame *frame)
{
    assert(frame && frame->base.descriptor == &backstop__frame__descriptor);
    pthread_once(&s_limits_once, s_limits_resolve);
    if (frame->version != WIRE_VERSION)
        return WIRE_ERR_VERSION;
    if (frame->body_case == BACKSTOP__FRAME__BODY__NOT_SET)
        return WIRE_ERR_NOBODY;
    return s_check_message(&frame->base, 0);
}

size_t wire_packed_size(Backstop__Frame *frame)
{
    assert(frame && frame->base.descriptor == &backstop__frame__descriptor);
    frame->version = WIRE_VERSION;
    return backstop__frame__get_packed_size(frame);
}

uint8_t *wire_pack(Backstop__Frame *frame, size_t *len_out, wire_err_t *err)
{
    wire_err_t dummy;
    if (err == NULL)
        err = &dummy;
    assert(frame && len_out);
    frame->version = WIRE_VERSION;
    *len_out = 0;
    if ((*err = wire_check(frame)) != WIRE_OK)
        return NULL;
    size_t len = backstop__frame__get_packed_size(frame);
    if (len > WIRE_MAX_FRAME) {
        *err = WIRE_ERR_OVERSIZE;
        return NULL;
    }
    uint8_t *buf = xmalloc(len);
    size_t done = backstop__frame__pack(frame, buf);
    assert(done == len);
    *len_out = done;
    return buf;
}

/* Arena chunks: the usual size, and how much an idle arena keeps. */
#define S_ARENA_CHUNK (64 * 1024)
#define S_ARENA_KEEP  (4 * S_ARENA_CHUNK)

/* Largest single allocation: far beyond what a WIRE_MAX_FRAME frame unpacks to. */
#define S_ARENA_MAX_ALLOC ((size_t)64 * WIRE_MAX_FRAME)

typedef struct s_chunk {
    struct s_chunk *next; /* next chunk in its list */
    size_t size;          /* bytes in data */
    size_t used;          /* bytes handed out */
    max_align_t data[];   /* the memory */
} s_chunk_t;

struct wire_arena {
    s_chunk_t *cur;           /* the chunk being handed out */
    s_chunk_t *full;          /* chunks handed out before it */
    s_chunk_t *spare;         /* kept by the last reset, empty */
    ProtobufCAllocator alloc; /* protobuf-c's view of us */
};

static void *s_arena_alloc(void *arg, size_t size)
{
    wire_arena_t *a = arg;
    if (size > S_ARENA_MAX_ALLOC)
        return NULL; /* protobuf-c fails the unpack */
    size_t align = _Alignof(max_align_t);
    size = (size + align - 1) / align * align;
    s_chunk_t *c = a->cur;
    if (c == NULL || c->size - c->used < size) {
        if (c) {
            c->next = a->full;
            a->full = c;
        }
        if (a->spare && a->spare->size >= size) {
            c = a->spare;
            a->spare = c->next;
        } else {
            size_t want = size > S_ARENA_CHUNK ? size : S_ARENA_CHUNK;
            c = xmalloc(sizeof(*c) + want);
            c->size = want;
        }
        c->used = 0;
        c->next = NULL;
        a->cur = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void s_arena_free(void *arg, void *p)
{
    (void)arg; /* everything goes at wire_arena_reset() */
    (void)p;
}

wire_arena_t *wire_arena_new(void)
{
    wire_arena_t *a = xcalloc(1, sizeof(*a));
    a->alloc.alloc = s_arena_alloc;
    a->alloc.free = s_arena_free;
    a->alloc.allocator_data = a;
    return a;
}

/* Frees every chunk of list. */
static void s_chunks_free(s_chunk_t *c)
{
    while (c) {
        s_chunk_t *next = c->next;
        xfree(c);
        c = next;
    }
}

void wire_arena_reset(wire_arena_t *self)
{
    /* every chunk is empty again: keep up to S_ARENA_KEEP bytes of them as spares */
    s_chunk_t *all = self->cur;
    if (all)
        all->next = self->full;
    else
        all = self->full;
    self->cur = self->full = NULL;
    size_t kept = 0;
    for (s_chunk_t *c = self->spare; c; c = c->next)
        kept += c->size;
    while (all) {
        s_chunk_t *c = all;
        all = c->next;
        if (kept + c->size <= S_ARENA_KEEP) {
            kept += c->size;
            c->next = self->spare;
            self->spare = c;
        } else {
            xfree(c);
        }
    }
}

void wire_arena_destroy(wire_arena_t **self_p)
{
    assert(self_p);
    wire_arena_t *a = *self_p;
    if (a == NULL)
        return;
    s_chunks_free(a->cur);
    s_chunks_free(a->full);
    s_chunks_free(a->spare);
    xfree(a);
    *self_p = NULL;
}

Backstop__Frame *wire_unpack(const void *buf, size_t len, wire_err_t *err)
{
    return wire_unpack_in(NULL, buf, len, err);
}

Backstop__Frame *wire_unpack_in(wire_arena_t *arena, const void *buf, size_t len, wire_err_t *err)
{
    wire_err_t dummy;
    if (err == NULL)
        err = &dummy;
    if (buf == NULL || len == 0) {
        *err = WIRE_ERR_EMPTY;
        return NULL;
    }
    if (len > WIRE_MAX_FRAME) {
        *err = WIRE_ERR_OVERSIZE;
        return NULL;
    }
    Backstop__Frame *frame = backstop__frame__unpack(arena ? &arena->alloc : NULL, len, buf);
    if (frame == NULL) {
        *err = WIRE_ERR_GARBAGE;
        return NULL;
    }
    if ((*err = wire_check(frame)) != WIRE_OK) {
        if (arena == NULL)
            wire_free(&frame);
        return NULL;
    }
    return frame;
}

void wire_free(Backstop__Frame **frame_p)
{
    assert(frame_p);
    if (*frame_p) {
        backstop__frame__free_unpacked(*frame_p, NULL);
        *frame_p = NULL;
    }
}
