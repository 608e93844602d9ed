/*
 * fuzz_dcache - libFuzzer target: the sensor's state loading from any stored contents
 *
 * The sensor keeps its decision cache and outbound ledger in kv stores
 * (LevelDB) under state_directory and loads them back at start; its operator
 * may also give it a decision_file. LevelDB's own file format is LevelDB's to
 * check (it detects corrupt blocks by checksum), so what is fuzzed here is what
 * our code does with the records a store hands back, whatever they hold.
 *
 * The first input byte picks the mode:
 *   bit 0 clear: the rest is a list of records, each a type byte, a key length
 *     byte, a value length byte, then the key and value bytes (bit 0 of the
 *     type prefixes the key with "d/", bit 1 with "h/", so the fuzzer reaches the
 *     decision and ledger prefixes easily). They are written into an emptied
 *     store, which dcache_new() then loads; every loaded decision is read back
 *     (dcache_get, dcache_lookup), the cache is changed (expire, upsert,
 *     remove, replace_feed, set_position) and loaded once more: what it wrote
 *     through must load back to the same count. Then ledger_new() loads the
 *     same store and is queried.
 *   bit 0 set: the rest is a decision_file, loaded by
 *     milter_engine_load_decisions() into a memory-only cache (through a memfd).
 * Logging goes to /dev/null unless BACKSTOP_FUZZ_LOG is set.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dcache.h"
#include "kv.h"
#include "ledger.h"
#include "milter_engine.h"
#include "msg.h"
#include "xalloc.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW_MS 1700000000000LL /* "now" for every run: results do not depend on the clock */

static char s_dir[64];
static char *s_path; /* the store, s_dir/state */

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static void s_cleanup(void)
{
    fuzz_rmtree(s_dir);
    xfree(s_path);
}

static void s_init(void)
{
    fuzz_quiet();
    snprintf(s_dir, sizeof(s_dir), "/tmp/fuzz_dcache.XXXXXX");
    fuzz_mkdtemp(s_dir);
    s_path = xasprintf("%s/state", s_dir);
    atexit(s_cleanup);
}

/* Empties the store and writes the records of the input into it. */
static void s_write_store(const uint8_t *data, size_t size)
{
    kv_t *kv = kv_open(s_path, 1, NULL);
    if (!kv)
        abort();
    kv_batch_t *b = kv_batch_new();
    kv_iter_t *it = kv_iter_new(kv, "", 0);
    while (kv_iter_next(it) == 1) {
        size_t klen;
        const void *k = kv_iter_key(it, &klen);
        kv_batch_del(b, k, klen);
    }
    kv_iter_destroy(&it);
    while (size >= 3) {
        uint8_t type = data[0];
        size_t klen = data[1], vlen = data[2];
        data += 3;
        size -= 3;
        if (klen > size)
            klen = size;
        uint8_t key[2 + 256];
        size_t off = 0;
        if (type & 3) {
            memcpy(key, (type & 1) ? "d/" : "h/", 2);
            off = 2;
        }
        memcpy(key + off, data, klen);
        data += klen;
        size -= klen;
        if (vlen > size)
            vlen = size;
        kv_batch_put(b, key, off + klen, data, vlen);
        data += vlen;
        size -= vlen;
    }
    if (kv_batch_write(kv, b, 0) != 0)
        abort();
    kv_batch_destroy(&b);
    kv_close(&kv);
}

static size_t s_entry(dcache_t *dc, const dcache_entry_t *e)
{
    size_t sink = strlen(e->id) + strlen(e->value) + strlen(dcache_scope_name(e->scope)) +
                  strlen(dcache_action_name(e->action)) + (size_t)e->observe + (size_t)e->all_mail +
                  (size_t)e->origin;
    dcache_entry_t out[4];
    size_t n = dcache_lookup(dc, e->scope, e->fp, S_NOW_MS, out, 4);
    for (size_t i = 0; i < n && i < 4; i++)
        sink += strlen(out[i].id) + strlen(out[i].value);
    return sink + n;
}

static size_t s_records(const uint8_t *data, size_t size)
{
    size_t sink = 0;
    char err[512];
    s_write_store(data, size);
    dcache_t *dc = dcache_new(s_path, err, sizeof(err));
    if (!dc)
        abort();
    sink += dcache_count(dc);
    /* every id a record could have given: the key text after "d/", up to 64 bytes */
    const uint8_t *p = data;
    size_t left = size;
    while (left >= 3) {
        size_t klen = p[1] < left - 3 ? p[1] : left - 3;
        char id[DCACHE_ID_SIZE];
        snprintf(id, sizeof(id), "%.*s", (int)klen, (const char *)p + 3);
        dcache_entry_t e;
        if (dcache_get(dc, id, &e) == 0)
            sink += s_entry(dc, &e);
        size_t vlen = p[2] < left - 3 - klen ? p[2] : left - 3 - klen;
        p += 3 + klen + vlen;
        left -= 3 + klen + vlen;
    }
    uint64_t epoch, seq;
    dcache_position(dc, &epoch, &seq);
    sink += (size_t)(epoch ^ seq);
    sink += dcache_expire(dc, S_NOW_MS);

    /* changes written through, then loaded again */
    dcache_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "FUZZ1");
    e.scope = DCACHE_SCOPE_SUBJECT;
    e.fp = 42;
    e.action = DCACHE_ACTION_REJECT;
    e.origin = DCACHE_ORIGIN_RULE;
    e.created_ms = S_NOW_MS;
    e.expires_ms = S_NOW_MS + 3600000;
    snprintf(e.value, sizeof(e.value), "cheap meds #");
    dcache_upsert(dc, &e);
    dcache_entry_t file = e;
    snprintf(file.id, sizeof(file.id), "FUZZ2");
    file.origin = DCACHE_ORIGIN_FILE;
    dcache_replace_origin(dc, DCACHE_ORIGIN_FILE, &file, 1);
    sink += (size_t)dcache_remove(dc, "FUZZ1");
    dcache_replace_feed(dc, &e, 1, epoch + 1, seq + 1);
    size_t before = dcache_count(dc);
    dcache_destroy(&dc);

    dc = dcache_new(s_path, err, sizeof(err));
    if (!dc)
        abort();
    /* what was written through loads back to the same set */
    if (dcache_count(dc) != before)
        __builtin_trap();
    dcache_position(dc, &epoch, &seq);
    sink += (size_t)(epoch ^ seq);
    dcache_destroy(&dc);

    ledger_t *lg = ledger_new(s_path, 7 * 86400000LL, err, sizeof(err));
    if (lg) {
        sink += ledger_count(lg);
        sink += (size_t)ledger_has_message_id(lg, "<abc@example.org>", S_NOW_MS);
        sink += (size_t)ledger_has_sender(lg, "sender@example.org", S_NOW_MS);
        ledger_add(lg, "<abc@example.org>", "sender@example.org", S_NOW_MS);
        sink += ledger_expire(lg, S_NOW_MS);
        ledger_destroy(&lg);
    } else {
        sink += strlen(err);
    }
    return sink;
}

/* The input as an operator's decision_file. */
static size_t s_decision_file(const uint8_t *data, size_t size)
{
    size_t sink = 0;
    char path[64];
    int fd = fuzz_memfd("fuzz_dcache", data, size, path, sizeof(path));
    if (fd < 0)
        return 0;
    char err[1024];
    dcache_t *dc = dcache_new(NULL, err, sizeof(err));
    if (milter_engine_load_decisions(dc, path, S_NOW_MS, err, sizeof(err)) != 0) {
        sink += strlen(err);
    } else {
        sink += dcache_count(dc);
        sink += dcache_expire(dc, S_NOW_MS + 60000);
    }
    dcache_destroy(&dc);
    close(fd);
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!s_path)
        s_init();
    if (data[0] & 1)
        s_sink = s_decision_file(data + 1, size - 1);
    else
        s_sink = s_records(data + 1, size - 1);
    return 0;
}
