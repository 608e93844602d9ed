/*
 * cli_key - the canonical key text an operator means, and its fingerprint
 *
 * See cli_key.h. The normalisers are the sensor's own (subject.c, netaddr.c),
 * so a key typed at the CLI and a key counted from mail are the same bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli_key.h"
#include "fp.h"
#include "netaddr.h"
#include "subject.h"
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
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > WIRE_MAX_ID)
        return 0;
    /* spelled out, not isalnum(): the same set whatever the locale */
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* The normalised subject key of a typed subject; NULL + err when it is empty. */
static char *s_subject(const char *value, char *err, size_t errlen)
{
    char *decoded = subject_decode(value);
    char *key = subject_key(decoded);
    xfree(decoded);
    if (key[0] == '\0') {
        snprintf(err, errlen, "subject \"%s\" normalises to nothing (only a bounce phrase?)",
                 value);
        xfree(key);
        return NULL;
    }
    return key;
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

static char *s_ip(const char *value, char *err, size_t errlen)
{
    netaddr_t a;
    char buf[NETADDR_STRLEN];
    if (netaddr_parse(&a, value) < 0 || netaddr_format(&a, buf, sizeof(buf)) < 0) {
        snprintf(err, errlen, "invalid IP address \"%s\"", value);
        return NULL;
    }
    return xstrdup(buf);
}

static char *s_net(const char *value, char *err, size_t errlen)
{
    netaddr_cidr_t c;
    char buf[NETADDR_CIDRLEN];
    if (netaddr_cidr_parse(&c, value) < 0 || netaddr_cidr_format(&c, buf, sizeof(buf)) < 0) {
        snprintf(err, errlen, "invalid network \"%s\" (ADDR/PREFIX with no host bits set)", value);
        return NULL;
    }
    return xstrdup(buf);
}

static char *s_subject_ip(const char *value, char *err, size_t errlen)
{
    const char *bar = strrchr(value, '|');
    if (bar == NULL) {
        snprintf(err, errlen, "subject_ip value \"%s\" is not SUBJECT|IP", value);
        return NULL;
    }
    char *subj_in = xstrndup(value, (size_t)(bar - value));
    char *subj = s_subject(subj_in, err, errlen);
    xfree(subj_in);
    if (subj == NULL)
        return NULL;
    char *ip = s_ip(bar + 1, err, errlen);
    if (ip == NULL) {
        xfree(subj);
        return NULL;
    }
    char *out = xasprintf("%s|%s", subj, ip);
    xfree(subj);
    xfree(ip);
    return out;
}

char *cli_key_text(bs_scope_t scope, const char *value, char *err, size_t errlen)
{
    char *out = NULL;

    if (value == NULL || value[0] == '\0') {
        snprintf(err, errlen, "empty value");
        return NULL;
    }
    switch (scope) {
    case BS_SCOPE_SUBJECT:
    case BS_SCOPE_ORIG_SUBJECT:
        out = s_subject(value, err, errlen);
        break;
    case BS_SCOPE_CLIENT_IP:
        out = s_ip(value, err, errlen);
        break;
    case BS_SCOPE_CLIENT_NET:
        out = s_net(value, err, errlen);
        break;
    case BS_SCOPE_SUBJECT_IP:
        out = s_subject_ip(value, err, errlen);
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

char *cli_key_decision_text(bs_scope_t scope, const char *value, char *err, size_t errlen)
{
    char *out = cli_key_text(scope, value, err, errlen);
    netaddr_cidr_t c, keyed;
    if (out && scope == BS_SCOPE_CLIENT_NET && netaddr_cidr_parse(&c, out) == 0 &&
        (netaddr_network(&c.addr, &keyed) < 0 || c.prefix != keyed.prefix)) {
        snprintf(err, errlen,
                 "network \"%s\" would match no mail: sensors look up the client's /24 (IPv4) "
                 "or /64 (IPv6); block those, or the addresses",
                 out);
        xfree(out);
        out = NULL;
    }
    return out;
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
