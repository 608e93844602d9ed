/*
 * fuzz_subject - libFuzzer target: Subject decoding and normalisation on any bytes
 *
 * The input is a raw header value as it stands in a message (folds, RFC 2047
 * encoded words, raw 8-bit text in any charset, invalid UTF-8). The first
 * byte picks the extra paths: bit 0 runs the value through hdrs_unfold()
 * first, as the classifier does with a parsed field; bit 1 also parses
 * "Subject: <value>" as a header block and reads it back with hdrs_get().
 * Every output is read to its end, so a string left unterminated or dangling
 * is caught by AddressSanitizer, and every decoder output is checked to be
 * valid UTF-8 as subject.h promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdrs.h"
#include "mime.h"
#include "subject.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

/* Reads s to its end; aborts when the decoder broke its UTF-8 promise. */
static size_t s_read_utf8(const char *s)
{
    size_t n = strlen(s);
    if (!mime_utf8_valid(s, n))
        abort();
    return n;
}

/* Everything subject.h offers on one decoded value. */
static size_t s_normalise(const char *decoded)
{
    size_t sink = s_read_utf8(decoded);
    char *key = subject_key(decoded);
    sink += s_read_utf8(key);
    /* the key of a key is itself: normalising twice changes nothing more */
    char *again = subject_key(key);
    sink += strlen(again);
    xfree(again);
    xfree(key);
    sink += (size_t)subject_is_bounce(decoded) + (size_t)subject_is_reply(decoded) +
            (size_t)subject_is_autoreply(decoded);
    const char *word = subject_bounce_word(decoded);
    if (word)
        sink += strlen(word);
    char *lower = mime_utf8_lower(decoded);
    sink += s_read_utf8(lower);
    xfree(lower);
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t how = data[0];
    data++;
    size--;
    /* the decoders take C strings: an embedded NUL ends the value, as it would there */
    char *raw = xmalloc(size + 1);
    memcpy(raw, data, size);
    raw[size] = '\0';

    size_t sink = 0;
    char *dec = subject_decode(raw);
    sink += s_normalise(dec);
    xfree(dec);

    char *mdec = mime_header_decode(raw);
    sink += s_read_utf8(mdec);
    xfree(mdec);

    if (how & 1) {
        char *unf = hdrs_unfold((const char *)data, size);
        sink += strlen(unf);
        char *udec = subject_decode(unf);
        sink += s_normalise(udec);
        xfree(udec);
        xfree(unf);
    }
    if (how & 2) {
        size_t blen = sizeof("Subject: ") - 1 + size + 2;
        char *block = xmalloc(blen);
        memcpy(block, "Subject: ", sizeof("Subject: ") - 1);
        memcpy(block + sizeof("Subject: ") - 1, data, size);
        memcpy(block + blen - 2, "\n\n", 2);
        hdrs_t *hs = xmalloc(sizeof(*hs));
        hdrs_parse(block, blen, hs);
        for (size_t i = 0; i < hs->count; i++)
            sink += hs->h[i].name_len + hs->h[i].value_len;
        char *v = hdrs_get(hs, "subject");
        if (v) {
            char *vdec = subject_decode(v);
            sink += s_normalise(vdec);
            xfree(vdec);
            xfree(v);
        }
        xfree(hs);
        xfree(block);
    }
    char *u8 = mime_to_utf8((how & 4) ? "iso-8859-1" : NULL, (const char *)data, size);
    sink += s_read_utf8(u8);
    xfree(u8);
    xfree(raw);
    s_sink = sink;
    return 0;
}
