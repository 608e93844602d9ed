/*
 * cli_key - the canonical key text an operator means, and its fingerprint
 *
 * See cli_key.h. The normalisers are the sensor's own (keytext.c), so a key typed
 * at the CLI and a key counted from mail are the same bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli_key.h"
#include "fp.h"
#include "keytext.h"
#include "wire.h"
#include "xalloc.h"

int cli_key_scope_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "ip") == 0)
        return BS_SCOPE_CLIENT_IP;
    if (strcmp(name, "net") == 0 || strcmp(name, "network") == 0)
        return BS_SCOPE_CLIENT_NET;
    if (strcmp(name, "domain") == 0)
        return BS_SCOPE_SENDER_DOMAIN;
    int v = bs_enums_scope_parse(name);
    return v <= 0 ? -1 : v;
}

int cli_key_site_valid(const char *name)
{
    return keytext_site_valid(name);
}

/* A sender domain: lower case, no trailing dot, labels of [a-z0-9-] (or UTF-8). */
static char *s_domain(const char *value, char *err, size_t errlen)
{
    size_t n = strlen(value);
    if (n > 0 && value[n - 1] == '.')
        n--;
    if (n == 0 || n > 253) {
        snprintf(err, errlen, "invalid domain \"%s\"", value);
        return NULL;
    }
    char *d = xstrndup(value, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        d[i] = (char)tolower(c);
        if (!(isalnum(c) || c == '-' || c == '.' || c >= 0x80) ||
            (c == '.' && (i == 0 || d[i - 1] == '.'))) {
            snprintf(err, errlen, "invalid domain \"%s\"", value);
            xfree(d);
            return NULL;
        }
    }
    return d;
}

/* cli_key_text, with keyed: a net must be one mail is keyed by (keytext_net). */
static char *s_text(bs_scope_t scope, const char *value, bool keyed, char *err, size_t errlen)
{
    char *out = NULL;

    if (value == NULL || value[0] == '\0') {
        snprintf(err, errlen, "empty value");
        return NULL;
    }
    switch (scope) {
    case BS_SCOPE_SUBJECT:
    case BS_SCOPE_ORIG_SUBJECT:
        out = keytext_subject(value, err, errlen);
        break;
    case BS_SCOPE_CLIENT_IP:
        out = keytext_ip(value, err, errlen);
        break;
    case BS_SCOPE_CLIENT_NET:
        out = keytext_net(value, keyed, err, errlen);
        break;
    case BS_SCOPE_SUBJECT_IP:
        out = keytext_subject_ip(value, err, errlen);
        break;
    case BS_SCOPE_SENDER_DOMAIN:
        out = s_domain(value, err, errlen);
        break;
    case BS_SCOPE_SITE:
        if (!cli_key_site_valid(value))
            snprintf(err, errlen, "invalid site name \"%s\" ([A-Za-z0-9._-], 1 to 64)", value);
        else
            out = xstrdup(value);
        break;
    default:
        snprintf(err, errlen, "unknown scope");
        break;
    }
    if (out && strlen(out) > WIRE_MAX_TEXT) {
        snprintf(err, errlen, "key text longer than %d bytes", WIRE_MAX_TEXT);
        xfree(out);
        out = NULL;
    }
    return out;
}

char *cli_key_text(bs_scope_t scope, const char *value, char *err, size_t errlen)
{
    return s_text(scope, value, false, err, errlen);
}

char *cli_key_decision_text(bs_scope_t scope, const char *value, char *err, size_t errlen)
{
    return s_text(scope, value, true, err, errlen);
}

/* Bytes of the control character at p (C0, DEL, or C1 in UTF-8), 0 if none. */
static size_t s_control_at(const unsigned char *p)
{
    if (*p < 0x20 || *p == 0x7f)
        return 1;
    return *p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}

int cli_key_line_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if (s_control_at(p))
            return 0;
    return 1;
}

void cli_key_line_mask(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (p && *p) {
        size_t n = s_control_at(p);
        if (n == 0) {
            p++;
            continue;
        }
        memset(p, '?', n);
        p += n;
    }
}

uint64_t cli_key_fp(const char *canonical)
{
    return fp_text(canonical);
}
