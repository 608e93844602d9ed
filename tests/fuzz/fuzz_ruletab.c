/*
 * fuzz_ruletab - libFuzzer target: Postfix-style rule tables on any text
 *
 * The input is table text, optionally followed by a NUL byte and a subject or
 * header text of the fuzzer's own. The table is parsed; when it compiles, it
 * is matched against a few fixed header lines and subjects, against the text
 * after the NUL, and against every line of the table itself (patterns that
 * match their own text reach the deeper paths of PCRE2). Matching runs under
 * the default limits the sensor uses: a pattern that makes PCRE2 backtrack
 * for seconds shows up as a libFuzzer timeout, which is a finding (ruletab.h
 * promises that a limit hit counts as "did not fire" instead). Every accessor
 * of a matching rule is read.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ruletab.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static const char *const s_fixed[] = {
    "Subject: Undeliverable: Cheap meds 123",
    "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)",
    "Subject: Delivery Status Notification (Failure)",
    "Received: from mx.example.net (mx.example.net [192.0.2.25])\n\tby mail.example.org",
    "X-Case: Exact",
    "Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?=",
    ("Subject: Gr\xc3\xbc\xc3\x9f"
     "e aus M\xc3\xbcnchen"),
    "Subject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
    "cheap meds #",
    "",
};

static size_t s_match(const ruletab_t *t, const char *line, size_t len)
{
    const ruletab_rule_t *r = ruletab_match(t, line, len);
    if (!r)
        return 0;
    size_t sink = (size_t)ruletab_rule_action(r) + (size_t)ruletab_rule_line(r);
    sink += strlen(ruletab_rule_action_word(r)) + strlen(ruletab_rule_text(r)) +
            strlen(ruletab_rule_label(r)) + strlen(ruletab_action_name(ruletab_rule_action(r)));
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the table is a C string: it ends at the first NUL; what follows is text to match */
    const uint8_t *nul = memchr(data, '\0', size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = xstrndup((const char *)data, tlen);
    const char *extra = nul ? (const char *)nul + 1 : NULL;
    size_t extra_len = nul ? size - tlen - 1 : 0;

    char err[512];
    err[0] = '\0';
    ruletab_t *t = ruletab_parse(text, "fuzz", err, sizeof(err));
    size_t sink = strlen(err);
    if (t) {
        sink += ruletab_count(t) + strlen(ruletab_name(t));
        for (size_t i = 0; i < sizeof(s_fixed) / sizeof(s_fixed[0]); i++)
            sink += s_match(t, s_fixed[i], strlen(s_fixed[i]));
        if (extra)
            sink += s_match(t, extra, extra_len);
        /* every line of the table, and the whole table as one multi-line text */
        const char *p = text;
        while (*p) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            sink += s_match(t, p, len);
            p += len + (eol ? 1 : 0);
        }
        sink += s_match(t, text, tlen);
        sink += (size_t)ruletab_limit_hits(t);
        ruletab_destroy(&t);
    }
    xfree(text);
    s_sink = sink;
    return 0;
}
