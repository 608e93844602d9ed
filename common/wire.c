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
 *
 * EventColumns is the exception: the walk hands it to s_check_columns(), which
 * checks it directly (it is on every batch of the busiest socket, and a
 * descriptor walk would look at every element of every column through
 * function pointers). Enum values there are checked against bit masks built
 * once from the enum descriptors, so a value added to the schema is accepted
 * without code here too.
 */
#include "wire.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
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
    {&backstop__shared_entry__descriptor, "public_key", WIRE_MAX_ID, 0, NULL},
    {&backstop__shared_entry__descriptor, "who", WIRE_MAX_ID, 0, NULL},
    {&backstop__shared_request__descriptor, "name", WIRE_MAX_ID, 0, NULL},
    {&backstop__shared_reply__descriptor, "entries", 0, WIRE_MAX_SHARED, NULL},
};
#define S_NLIMITS (sizeof(s_limits) / sizeof(s_limits[0]))

/* EventColumns.flags: what each bit says (backstop.proto). */
#define S_FLAG_LEDGER_HIT     0x01u
#define S_FLAG_ORIGINAL_SHIFT 1
#define S_FLAG_ENFORCED_SHIFT 3
#define S_FLAG_TWO_BITS       0x3u
#define S_FLAG_DECISION_ID    0x20u
#define S_FLAG_KNOWN          0x3Fu

/* The values each enum of a column names, one bit each (values 0..31). */
static uint32_t s_class_mask, s_scope_mask, s_original_mask, s_action_mask;

static pthread_once_t s_limits_once = PTHREAD_ONCE_INIT;

/* Bit v set for every value v < 32 that d names. */
static uint32_t s_enum_mask(const ProtobufCEnumDescriptor *d)
{
    uint32_t m = 0;
    for (unsigned i = 0; i < d->n_values; i++)
        if (d->values[i].value >= 0 && d->values[i].value < 32)
            m |= 1u << d->values[i].value;
    return m;
}

/* Is v a value mask names? */
static inline bool s_enum_ok(uint32_t mask, uint32_t v)
{
    return v < 32 && (mask >> v & 1u);
}

static void s_limits_resolve(void)
{
    s_class_mask = s_enum_mask(&backstop__msg_class__descriptor);
    s_scope_mask = s_enum_mask(&backstop__scope__descriptor);
    s_original_mask = s_enum_mask(&backstop__original__descriptor);
    s_action_mask = s_enum_mask(&backstop__action__descriptor);
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

/* A key text of a column: valid UTF-8 and no NUL (a row's text cannot hold one either). */
static int s_text_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] < 0x80 && s[i] != 0)
        i++;
    if (i == len)
        return 1;
    return memchr(s + i, 0, len - i) == NULL && s_utf8_valid(s + i, len - i);
}

/* Is every byte of s in 1..127? Then every slice of it is a valid key text: the usual case,
 * checked once for the whole blob instead of text by text. */
static bool s_plain_ascii(const unsigned char *s, size_t len)
{
    /* eight bytes at a time: a byte >= 0x80 has its top bit set, a 0 byte gets it from
     * the subtraction (a borrow into the next byte needs a 0 byte, which is bad anyway) */
    const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
    uint64_t bad = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        bad |= (w | (w - ones)) & tops;
    }
    for (; i < len; i++)
        bad |= (unsigned char)(s[i] - 1) >= 0x7F;
    return bad == 0;
}

/* A string of a column (rule label, decision id): at most max bytes, valid UTF-8. */
static wire_err_t s_check_string(const char *s, size_t max)
{
    if (s == NULL)
        return WIRE_OK; /* protobuf-c packs NULL as "" */
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return WIRE_ERR_LIMIT;
    return s_utf8_valid((const unsigned char *)s, len) ? WIRE_OK : WIRE_ERR_VALUE;
}

/* EventColumns, directly: counts within limits (limit), enums named and flags known
 * (value), every column as long as its counts say and every blob as long as its lengths
 * add up to (garbage), texts valid (value). */
static wire_err_t s_check_columns(const Backstop__EventColumns *c)
{
    size_t n = c->n_seq;
    if (n > WIRE_MAX_EVENTS)
        return WIRE_ERR_LIMIT;
    if (c->n_time_ms != n || c->n_msg_class != n || c->n_flags != n || c->n_key_count != n ||
        (c->n_ip_len != 0 && c->n_ip_len != n) || (c->n_rule_count != 0 && c->n_rule_count != n))
        return WIRE_ERR_GARBAGE;
    size_t nkeys = 0, nrules = 0, nids = 0, iplen = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t f = c->flags[i];
        if (!s_enum_ok(s_class_mask, c->msg_class[i]) || (f & ~S_FLAG_KNOWN) ||
            !s_enum_ok(s_original_mask, f >> S_FLAG_ORIGINAL_SHIFT & S_FLAG_TWO_BITS) ||
            !s_enum_ok(s_action_mask, f >> S_FLAG_ENFORCED_SHIFT & S_FLAG_TWO_BITS))
            return WIRE_ERR_VALUE;
        nids += (f & S_FLAG_DECISION_ID) != 0;
        if (c->key_count[i] > WIRE_MAX_KEYS)
            return WIRE_ERR_LIMIT;
        nkeys += c->key_count[i];
    }
    for (size_t i = 0; i < c->n_ip_len; i++) {
        if (c->ip_len[i] != 0 && c->ip_len[i] != 4 && c->ip_len[i] != 16)
            return WIRE_ERR_VALUE;
        iplen += c->ip_len[i];
    }
    for (size_t i = 0; i < c->n_rule_count; i++) {
        if (c->rule_count[i] > WIRE_MAX_RULES)
            return WIRE_ERR_LIMIT;
        nrules += c->rule_count[i];
    }
    if (c->n_key_scope != nkeys || c->n_key_fp != nkeys || c->n_key_text_len != nkeys ||
        (c->has_client_ip ? c->client_ip.len : 0) != iplen || c->n_rules != nrules ||
        c->n_decision_id != nids)
        return WIRE_ERR_GARBAGE;
    size_t text = 0;
    for (size_t k = 0; k < nkeys; k++) {
        if (!s_enum_ok(s_scope_mask, c->key_scope[k]))
            return WIRE_ERR_VALUE;
        if (c->key_text_len[k] > WIRE_MAX_TEXT)
            return WIRE_ERR_LIMIT;
        text += c->key_text_len[k];
    }
    if ((c->has_key_text ? c->key_text.len : 0) != text)
        return WIRE_ERR_GARBAGE;
    const unsigned char *t = c->key_text.data;
    if (!s_plain_ascii(t, text))
        for (size_t k = 0; k < nkeys; t += c->key_text_len[k], k++)
            if (!s_text_valid(t, c->key_text_len[k]))
                return WIRE_ERR_VALUE;
    wire_err_t e;
    for (size_t r = 0; r < nrules; r++)
        if ((e = s_check_string(c->rules[r], WIRE_MAX_ID)) != WIRE_OK)
            return e;
    for (size_t r = 0; r < nids; r++)
        if ((e = s_check_string(c->decision_id[r], WIRE_MAX_ID)) != WIRE_OK)
            return e;
    return WIRE_OK;
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
    if (d == &backstop__event_columns__descriptor)
        return s_check_columns((const Backstop__EventColumns *)m);
    if (d == &backstop__event_batch__descriptor) {
        const Backstop__EventBatch *b = (const Backstop__EventBatch *)m;
        if (b->columns && b->n_events)
            return WIRE_ERR_VALUE; /* rows and columns: which ones are the batch? */
    }
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
    case BACKSTOP__FRAME__BODY_SHARED_REQUEST:
        return "shared_request";
    case BACKSTOP__FRAME__BODY_SHARED_REPLY:
        return "shared_reply";
    default:
        return "none";
    }
}

void wire_snapshot_request_init(Backstop__SnapshotRequest *rq, const char *site, const char *sensor,
                                uint64_t epoch, uint64_t since_seq)
{
    backstop__snapshot_request__init(rq);
    rq->site = (char *)site;
    rq->sensor = (char *)sensor;
    if (epoch) {
        rq->has_epoch = 1;
        rq->epoch = epoch;
        rq->has_since_seq = 1;
        rq->since_seq = since_seq;
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
    case BACKSTOP__FRAME__BODY_SHARED_REQUEST:
        frame->shared_request = body;
        break;
    case BACKSTOP__FRAME__BODY_SHARED_REPLY:
        frame->shared_reply = body;
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

/* ---- events of a batch, either form ---- */

size_t wire_batch_events(const Backstop__EventBatch *b)
{
    return b->columns ? b->columns->n_seq : b->n_events;
}

bool wire_batch_is_columnar(const Backstop__EventBatch *b)
{
    return b->columns != NULL;
}

size_t wire_events_open(wire_events_t *it, const Backstop__EventBatch *b)
{
    assert(it && b);
    *it = (wire_events_t){.batch = b, .n = wire_batch_events(b)};
    return it->n;
}

/* Event it->i of a row batch. */
static void s_row_next(wire_events_t *it, wire_event_t *ev, wire_key_t *keys)
{
    const Backstop__Event *e = it->batch->events[it->i];
    size_t nk = e->n_keys < WIRE_MAX_KEYS ? e->n_keys : WIRE_MAX_KEYS;
    for (size_t k = 0; k < nk; k++) {
        const Backstop__Key *key = e->keys[k];
        size_t len = key->text ? strlen(key->text) : 0;
        keys[k] = (wire_key_t){.scope = (int)key->scope,
                               .fp = key->fp,
                               .text = len ? key->text : NULL,
                               .text_len = len};
    }
    *ev = (wire_event_t){
        .seq = e->seq,
        .time_ms = e->time_ms,
        .client_ip = e->has_client_ip ? e->client_ip.data : NULL,
        .client_ip_len = e->has_client_ip ? e->client_ip.len : 0,
        .msg_class = (int)e->msg_class,
        .keys = keys,
        .nkeys = nk,
        .rules = (const char *const *)e->rules,
        .nrules = e->n_rules,
        .original = e->has_original ? (int)e->original : 0,
        .ledger_hit = e->has_ledger_hit && e->ledger_hit,
        .enforced = e->has_enforced ? (int)e->enforced : 0,
        .decision_id = e->decision_id,
    };
}

/* Event it->i of a column batch (checked: every index below is within its column). */
static void s_column_next(wire_events_t *it, wire_event_t *ev, wire_key_t *keys)
{
    const Backstop__EventColumns *c = it->batch->columns;
    size_t i = it->i;
    if (i == 0) {
        it->seq = c->seq[0];
        it->time_ms = (uint64_t)c->time_ms[0];
    } else {
        it->seq += c->seq[i];
        it->time_ms += (uint64_t)c->time_ms[i];
    }
    uint32_t f = c->flags[i];
    size_t nk = c->key_count[i];
    for (size_t k = 0; k < nk; k++) {
        size_t at = it->key_at + k;
        size_t len = c->key_text_len[at];
        keys[k] = (wire_key_t){.scope = (int)c->key_scope[at],
                               .fp = c->key_fp[at],
                               .text = len ? (const char *)c->key_text.data + it->text_at : NULL,
                               .text_len = len};
        it->text_at += len;
    }
    it->key_at += nk;
    size_t iplen = c->n_ip_len ? c->ip_len[i] : 0;
    size_t nrules = c->n_rule_count ? c->rule_count[i] : 0;
    *ev = (wire_event_t){
        .seq = it->seq,
        .time_ms = (int64_t)it->time_ms,
        .client_ip = iplen ? c->client_ip.data + it->ip_at : NULL,
        .client_ip_len = iplen,
        .msg_class = (int)c->msg_class[i],
        .keys = keys,
        .nkeys = nk,
        .rules = nrules ? (const char *const *)c->rules + it->rule_at : NULL,
        .nrules = nrules,
        .original = (int)(f >> S_FLAG_ORIGINAL_SHIFT & S_FLAG_TWO_BITS),
        .ledger_hit = (f & S_FLAG_LEDGER_HIT) != 0,
        .enforced = (int)(f >> S_FLAG_ENFORCED_SHIFT & S_FLAG_TWO_BITS),
        .decision_id = (f & S_FLAG_DECISION_ID) ? c->decision_id[it->id_at++] : NULL,
    };
    it->ip_at += iplen;
    it->rule_at += nrules;
}

bool wire_events_next(wire_events_t *it, wire_event_t *ev, wire_key_t *keys)
{
    assert(it && ev && keys);
    if (it->i >= it->n)
        return false;
    if (it->batch->columns)
        s_column_next(it, ev, keys);
    else
        s_row_next(it, ev, keys);
    it->i++;
    return true;
}

/* A growable array of elements of one type. */
#define S_GROW(arr, n, cap, want)                                                                  \
    do {                                                                                           \
        if ((n) + (want) > (cap)) {                                                                \
            (cap) = ((n) + (want)) * 2;                                                            \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
    } while (0)

struct wire_batch {
    size_t n, cap;              /* events, room */
    uint64_t *seq;              /* per event: absolute sequence numbers */
    int64_t *time_ms;           /* ... absolute times */
    uint32_t *msg_class;        /* ... MsgClass */
    uint32_t *flags;            /* ... EventColumns.flags */
    uint32_t *ip_len;           /* ... address bytes */
    uint32_t *key_count;        /* ... keys */
    uint32_t *rule_count;       /* ... rule labels */
    size_t nkeys, key_cap;      /* keys, room */
    uint32_t *key_scope;        /* per key: Scope */
    uint64_t *key_fp;           /* ... fingerprint */
    uint32_t *key_text_len;     /* ... text bytes */
    uint8_t *ip;                /* the addresses, concatenated */
    size_t ip_used, ip_cap;     /* bytes used, room */
    char *text;                 /* the key texts, concatenated */
    size_t text_used, text_cap; /* bytes used, room */
    char *str;                  /* rule labels, then decision ids, each with its NUL */
    size_t str_used, str_cap;   /* bytes used, room */
    size_t *rule_off;           /* per rule label: its offset in str */
    size_t nrules, rule_cap;    /* labels, room */
    size_t *id_off;             /* per decision id: its offset in str */
    size_t nids, id_cap;        /* ids, room */
    bool any_ip;                /* some event has an address */
    bool any_rule;              /* some event has a rule label */
};

wire_batch_t *wire_batch_new(void)
{
    return xcalloc(1, sizeof(wire_batch_t));
}

void wire_batch_destroy(wire_batch_t **self_p)
{
    assert(self_p);
    wire_batch_t *b = *self_p;
    if (b == NULL)
        return;
    xfree(b->seq);
    xfree(b->time_ms);
    xfree(b->msg_class);
    xfree(b->flags);
    xfree(b->ip_len);
    xfree(b->key_count);
    xfree(b->rule_count);
    xfree(b->key_scope);
    xfree(b->key_fp);
    xfree(b->key_text_len);
    xfree(b->ip);
    xfree(b->text);
    xfree(b->str);
    xfree(b->rule_off);
    xfree(b->id_off);
    xfree(b);
    *self_p = NULL;
}

void wire_batch_reset(wire_batch_t *self)
{
    self->n = self->nkeys = self->nrules = self->nids = 0;
    self->ip_used = self->text_used = self->str_used = 0;
    self->any_ip = self->any_rule = false;
}

size_t wire_batch_count(const wire_batch_t *self)
{
    return self->n;
}

/* Copies s with its NUL to the string area; returns its offset. */
static size_t s_batch_str(wire_batch_t *self, const char *s)
{
    size_t len = strlen(s) + 1;
    S_GROW(self->str, self->str_used, self->str_cap, len);
    memcpy(self->str + self->str_used, s, len);
    self->str_used += len;
    return self->str_used - len;
}

void wire_batch_add(wire_batch_t *self, const wire_event_t *ev)
{
    assert(self && ev);
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->seq = xrealloc(self->seq, self->cap * sizeof(*self->seq));
        self->time_ms = xrealloc(self->time_ms, self->cap * sizeof(*self->time_ms));
        self->msg_class = xrealloc(self->msg_class, self->cap * sizeof(*self->msg_class));
        self->flags = xrealloc(self->flags, self->cap * sizeof(*self->flags));
        self->ip_len = xrealloc(self->ip_len, self->cap * sizeof(*self->ip_len));
        self->key_count = xrealloc(self->key_count, self->cap * sizeof(*self->key_count));
        self->rule_count = xrealloc(self->rule_count, self->cap * sizeof(*self->rule_count));
    }
    size_t i = self->n++;
    self->seq[i] = ev->seq;
    self->time_ms[i] = ev->time_ms;
    self->msg_class[i] = (uint32_t)ev->msg_class;
    self->flags[i] = (ev->ledger_hit ? S_FLAG_LEDGER_HIT : 0) |
                     ((uint32_t)ev->original & S_FLAG_TWO_BITS) << S_FLAG_ORIGINAL_SHIFT |
                     ((uint32_t)ev->enforced & S_FLAG_TWO_BITS) << S_FLAG_ENFORCED_SHIFT |
                     (ev->decision_id ? S_FLAG_DECISION_ID : 0);
    /* a value two bits cannot hold must not pass as another: the pack refuses it (value) */
    if ((uint32_t)ev->original > S_FLAG_TWO_BITS || (uint32_t)ev->enforced > S_FLAG_TWO_BITS)
        self->flags[i] |= ~S_FLAG_KNOWN;
    /* an address that is not 4 or 16 bytes goes in as is: the pack refuses it (value) */
    self->ip_len[i] = ev->client_ip ? (uint32_t)ev->client_ip_len : 0;
    if (self->ip_len[i]) {
        S_GROW(self->ip, self->ip_used, self->ip_cap, ev->client_ip_len);
        memcpy(self->ip + self->ip_used, ev->client_ip, ev->client_ip_len);
        self->ip_used += ev->client_ip_len;
        self->any_ip = true;
    }
    self->key_count[i] = (uint32_t)ev->nkeys;
    if (self->nkeys + ev->nkeys > self->key_cap) {
        self->key_cap = (self->nkeys + ev->nkeys) * 2;
        self->key_scope = xrealloc(self->key_scope, self->key_cap * sizeof(*self->key_scope));
        self->key_fp = xrealloc(self->key_fp, self->key_cap * sizeof(*self->key_fp));
        self->key_text_len =
            xrealloc(self->key_text_len, self->key_cap * sizeof(*self->key_text_len));
    }
    for (size_t k = 0; k < ev->nkeys; k++) {
        const wire_key_t *key = &ev->keys[k];
        size_t len = key->text ? key->text_len : 0;
        self->key_scope[self->nkeys] = (uint32_t)key->scope;
        self->key_fp[self->nkeys] = key->fp;
        self->key_text_len[self->nkeys] = (uint32_t)len;
        self->nkeys++;
        S_GROW(self->text, self->text_used, self->text_cap, len);
        if (len)
            memcpy(self->text + self->text_used, key->text, len);
        self->text_used += len;
    }
    self->rule_count[i] = (uint32_t)ev->nrules;
    for (size_t r = 0; r < ev->nrules; r++) {
        size_t off = s_batch_str(self, ev->rules[r] ? ev->rules[r] : "");
        S_GROW(self->rule_off, self->nrules, self->rule_cap, 1);
        self->rule_off[self->nrules++] = off;
        self->any_rule = true;
    }
    if (ev->decision_id) {
        size_t off = s_batch_str(self, ev->decision_id);
        S_GROW(self->id_off, self->nids, self->id_cap, 1);
        self->id_off[self->nids++] = off;
    }
}

/* Packs frame, or refuses it as wire_pack does. */
static uint8_t *s_pack_events(Backstop__EventBatch *eb, size_t *len_out, wire_err_t *err)
{
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_EVENTS, eb);
    return wire_pack(&f, len_out, err);
}

/* The batch as columns. */
static uint8_t *s_batch_pack_columns(wire_batch_t *self, Backstop__EventBatch *eb, size_t *len_out,
                                     wire_err_t *err)
{
    size_t n = self->n;
    /* deltas in place of the absolute values, for the pack only */
    uint64_t *seq = xmalloc((n ? n : 1) * sizeof(*seq));
    int64_t *time_ms = xmalloc((n ? n : 1) * sizeof(*time_ms));
    char **rules = xmalloc((self->nrules ? self->nrules : 1) * sizeof(*rules));
    char **ids = xmalloc((self->nids ? self->nids : 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        seq[i] = i ? self->seq[i] - self->seq[i - 1] : self->seq[0];
        time_ms[i] = i ? (int64_t)((uint64_t)self->time_ms[i] - (uint64_t)self->time_ms[i - 1])
                       : self->time_ms[0];
    }
    for (size_t r = 0; r < self->nrules; r++)
        rules[r] = self->str + self->rule_off[r];
    for (size_t r = 0; r < self->nids; r++)
        ids[r] = self->str + self->id_off[r];
    Backstop__EventColumns c = BACKSTOP__EVENT_COLUMNS__INIT;
    c.n_seq = c.n_time_ms = c.n_msg_class = c.n_flags = c.n_key_count = n;
    c.seq = seq;
    c.time_ms = time_ms;
    c.msg_class = self->msg_class;
    c.flags = self->flags;
    c.key_count = self->key_count;
    if (self->any_ip) {
        c.n_ip_len = n;
        c.ip_len = self->ip_len;
        c.has_client_ip = 1;
        c.client_ip.len = self->ip_used;
        c.client_ip.data = self->ip;
    }
    c.n_key_scope = c.n_key_fp = c.n_key_text_len = self->nkeys;
    c.key_scope = self->key_scope;
    c.key_fp = self->key_fp;
    c.key_text_len = self->key_text_len;
    if (self->text_used) {
        c.has_key_text = 1;
        c.key_text.len = self->text_used;
        c.key_text.data = (uint8_t *)self->text;
    }
    if (self->any_rule) {
        c.n_rule_count = n;
        c.rule_count = self->rule_count;
        c.n_rules = self->nrules;
        c.rules = rules;
    }
    c.n_decision_id = self->nids;
    c.decision_id = ids;
    eb->columns = &c;
    uint8_t *buf = s_pack_events(eb, len_out, err);
    eb->columns = NULL;
    xfree(seq);
    xfree(time_ms);
    xfree(rules);
    xfree(ids);
    return buf;
}

/* The batch as rows (for aggregators without WIRE_FEATURE_COLUMNS, and the spool). */
static uint8_t *s_batch_pack_rows(wire_batch_t *self, Backstop__EventBatch *eb, size_t *len_out,
                                  wire_err_t *err)
{
    size_t n = self->n;
    Backstop__Event *evs = xcalloc(n ? n : 1, sizeof(*evs));
    Backstop__Event **evp = xcalloc(n ? n : 1, sizeof(*evp));
    Backstop__Key *keys = xcalloc(self->nkeys ? self->nkeys : 1, sizeof(*keys));
    Backstop__Key **keyp = xcalloc(self->nkeys ? self->nkeys : 1, sizeof(*keyp));
    char **rules = xcalloc(self->nrules ? self->nrules : 1, sizeof(*rules));
    /* the texts again, each with its NUL, as protobuf-c strings are */
    char *texts = xmalloc(self->text_used + self->nkeys + 1);
    size_t key_at = 0, text_at = 0, out_at = 0, ip_at = 0, rule_at = 0, id_at = 0;
    for (size_t i = 0; i < n; i++) {
        Backstop__Event *e = &evs[i];
        backstop__event__init(e);
        e->seq = self->seq[i];
        e->time_ms = self->time_ms[i];
        if (self->ip_len[i]) {
            e->has_client_ip = 1;
            e->client_ip.len = self->ip_len[i];
            e->client_ip.data = self->ip + ip_at;
            ip_at += self->ip_len[i];
        }
        e->msg_class = (Backstop__MsgClass)self->msg_class[i];
        e->n_keys = self->key_count[i];
        e->keys = keyp + key_at;
        for (size_t k = 0; k < e->n_keys; k++, key_at++) {
            Backstop__Key *key = &keys[key_at];
            backstop__key__init(key);
            key->scope = (Backstop__Scope)self->key_scope[key_at];
            key->fp = self->key_fp[key_at];
            size_t len = self->key_text_len[key_at];
            if (len) {
                key->text = texts + out_at;
                memcpy(texts + out_at, self->text + text_at, len);
                texts[out_at + len] = '\0';
                out_at += len + 1;
                text_at += len;
            }
            keyp[key_at] = key;
        }
        e->n_rules = self->rule_count[i];
        e->rules = rules + rule_at;
        for (size_t r = 0; r < e->n_rules; r++, rule_at++)
            rules[rule_at] = self->str + self->rule_off[rule_at];
        uint32_t f = self->flags[i];
        e->has_original = 1;
        e->original = (Backstop__Original)(f >> S_FLAG_ORIGINAL_SHIFT & S_FLAG_TWO_BITS);
        e->has_ledger_hit = 1;
        e->ledger_hit = (f & S_FLAG_LEDGER_HIT) != 0;
        if (f >> S_FLAG_ENFORCED_SHIFT & S_FLAG_TWO_BITS) {
            e->has_enforced = 1;
            e->enforced = (Backstop__Action)(f >> S_FLAG_ENFORCED_SHIFT & S_FLAG_TWO_BITS);
        }
        if (f & S_FLAG_DECISION_ID)
            e->decision_id = self->str + self->id_off[id_at++];
        if (f & ~S_FLAG_KNOWN)
            e->original = (Backstop__Original)-1; /* refused (value), as in columns */
        evp[i] = e;
    }
    eb->n_events = n;
    eb->events = evp;
    uint8_t *buf = s_pack_events(eb, len_out, err);
    eb->n_events = 0;
    eb->events = NULL;
    xfree(evs);
    xfree(evp);
    xfree(keys);
    xfree(keyp);
    xfree(rules);
    xfree(texts);
    return buf;
}

uint8_t *wire_batch_pack(wire_batch_t *self, const char *site, const char *sensor, bool columns,
                         size_t *len_out, wire_err_t *err)
{
    assert(self && site && sensor && len_out);
    Backstop__EventBatch eb = BACKSTOP__EVENT_BATCH__INIT;
    eb.site = (char *)site;
    eb.sensor = (char *)sensor;
    return columns ? s_batch_pack_columns(self, &eb, len_out, err)
                   : s_batch_pack_rows(self, &eb, len_out, err);
}

/* ---- what an aggregator reads ---- */

size_t wire_keys_read(wire_key_t *keys, size_t n, uint32_t scopes)
{
    if (scopes == 0)
        return n;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].scope > 0 && keys[i].scope < 32 && (scopes & (1u << keys[i].scope)))
            keys[kept++] = keys[i];
    return kept;
}

/* ---- key texts sent lately ---- */

typedef struct {
    uint64_t tag;    /* s_textmem_tag() of the key, 0: empty */
    int64_t sent_ms; /* when its text went */
} s_textslot_t;

struct wire_textmem {
    s_textslot_t *slots; /* mask + 1 of them */
    size_t mask;         /* slots - 1, a power of two less one */
    int64_t ttl_ms;      /* how long a sent text is taken as known */
};

wire_textmem_t *wire_textmem_new(size_t slots, int64_t ttl_ms)
{
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 30))
        n <<= 1;
    wire_textmem_t *self = xcalloc(1, sizeof(*self));
    self->slots = xcalloc(n, sizeof(*self->slots));
    self->mask = n - 1;
    self->ttl_ms = ttl_ms;
    return self;
}

void wire_textmem_destroy(wire_textmem_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    xfree((*self_p)->slots);
    xfree(*self_p);
    *self_p = NULL;
}

void wire_textmem_clear(wire_textmem_t *self)
{
    memset(self->slots, 0, (self->mask + 1) * sizeof(*self->slots));
}

/* Whether a key's text is only shown by the aggregator (see wire.h). */
static bool s_text_display_only(int scope, bool has_addr)
{
    switch (scope) {
    case BACKSTOP__SCOPE__SUBJECT:
    case BACKSTOP__SCOPE__ORIG_SUBJECT:
        return true;
    case BACKSTOP__SCOPE__CLIENT_IP:
    case BACKSTOP__SCOPE__CLIENT_NET:
        return has_addr;
    default:
        return false;
    }
}

/* The key (scope, fp) in events of this kind as a non-zero tag: fingerprints are hashes, so
 * mixing in the scope and the kind is enough to tell them apart. */
static uint64_t s_textmem_tag(int scope, uint64_t fp, uint32_t kind)
{
    uint64_t mix = (uint64_t)(unsigned)scope << 32 | kind;
    uint64_t t = (fp ^ (mix * 0x9E3779B97F4A7C15ULL)) * 0xD6E8FEB86659FD93ULL;
    t ^= t >> 32;
    return t ? t : 1;
}

size_t wire_textmem_strip(wire_textmem_t *self, const wire_event_t *ev, wire_key_t *keys,
                          int64_t now_ms)
{
    bool has_addr = ev->client_ip != NULL && ev->client_ip_len > 0;
    /* what the aggregator counts it by (wire.h) */
    uint32_t kind = (uint32_t)(ev->msg_class & 0xFF) | (ev->nrules > 0 ? 0x100u : 0) |
                    (ev->ledger_hit ? 0x200u : 0);
    size_t left_out = 0;
    for (size_t i = 0; i < ev->nkeys; i++) {
        wire_key_t *k = &keys[i];
        if (k->text == NULL || k->text_len == 0 || !s_text_display_only(k->scope, has_addr))
            continue;
        uint64_t tag = s_textmem_tag(k->scope, k->fp, kind);
        s_textslot_t *s = &self->slots[tag & self->mask];
        if (s->tag == tag && now_ms >= s->sent_ms && now_ms - s->sent_ms < self->ttl_ms) {
            k->text = NULL;
            k->text_len = 0;
            left_out++;
            continue;
        }
        s->tag = tag;
        s->sent_ms = now_ms;
    }
    return left_out;
}
