/*
 * netaddr - client IP addresses and networks; see netaddr.h.
 *
 * Text goes through inet_pton/inet_ntop after the Postfix decorations
 * ("[...]", "IPv6:") are taken off, so the accepted syntax is exactly the
 * C library's (no zone ids, no shortened IPv4 like "10.1"). Inputs longer
 * than any address are rejected before they are copied.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const uint8_t s_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Turns an IPv4-mapped IPv6 address into IPv4 in place. */
static void s_unmap(netaddr_t *a)
{
    if (a->family == AF_INET6 && memcmp(a->bytes, s_mapped_prefix, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, a->bytes + 12, 4);
        memset(a->bytes, 0, sizeof(a->bytes));
        memcpy(a->bytes, v4, 4);
        a->family = AF_INET;
    }
}

/*
 * Copies text without "[...]" and "IPv6:" into buf; sets *v6_only when the
 * IPv6: tag was there. -1 when it is too long or malformed.
 */
static int s_undecorate(const char *text, char *buf, size_t len, bool *v6_only)
{
    size_t tl = strlen(text);
    *v6_only = false;
    if (tl > 0 && text[0] == '[') {
        if (tl < 2 || text[tl - 1] != ']')
            return -1;
        text++;
        tl -= 2;
    }
    if (tl >= 5 && strncasecmp(text, "IPv6:", 5) == 0) {
        text += 5;
        tl -= 5;
        *v6_only = true;
    }
    if (tl == 0 || tl >= len)
        return -1;
    memcpy(buf, text, tl);
    buf[tl] = '\0';
    return 0;
}

int netaddr_parse(netaddr_t *out, const char *text)
{
    char buf[NETADDR_STRLEN];
    bool v6_only;

    memset(out, 0, sizeof(*out));
    if (text == NULL || s_undecorate(text, buf, sizeof(buf), &v6_only) < 0)
        return -1;
    if (!v6_only && inet_pton(AF_INET, buf, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
        out->family = AF_INET6;
        s_unmap(out);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -1;
}

int netaddr_format(const netaddr_t *addr, char *buf, size_t len)
{
    if (addr->family != AF_INET && addr->family != AF_INET6)
        return -1;
    if (inet_ntop(addr->family, addr->bytes, buf, (socklen_t)len) == NULL)
        return -1;
    return 0;
}

bool netaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static int s_max_prefix(int family)
{
    return family == AF_INET ? 32 : family == AF_INET6 ? 128 : -1;
}

/* Zeroes the bits of a after prefix. */
static void s_mask(netaddr_t *a, int prefix)
{
    for (int i = 0; i < 16; i++) {
        int keep = prefix - i * 8;
        if (keep >= 8)
            continue;
        a->bytes[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

int netaddr_network(const netaddr_t *addr, netaddr_cidr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s_max_prefix(addr->family) < 0)
        return -1;
    out->addr = *addr;
    out->prefix = addr->family == AF_INET ? 24 : 64;
    s_mask(&out->addr, out->prefix);
    return 0;
}

int netaddr_cidr_format(const netaddr_cidr_t *cidr, char *buf, size_t len)
{
    char a[NETADDR_STRLEN];
    int max = s_max_prefix(cidr->addr.family);
    if (max < 0 || cidr->prefix < 0 || cidr->prefix > max)
        return -1;
    if (netaddr_format(&cidr->addr, a, sizeof(a)) < 0)
        return -1;
    int n = snprintf(buf, len, "%s/%d", a, cidr->prefix);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int netaddr_network_text(const netaddr_t *addr, char *buf, size_t len)
{
    netaddr_cidr_t net;
    if (netaddr_network(addr, &net) < 0)
        return -1;
    return netaddr_cidr_format(&net, buf, len);
}

int netaddr_cidr_parse(netaddr_cidr_t *out, const char *text)
{
    char buf[NETADDR_CIDRLEN + 8];
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return -1;
    size_t tl = strlen(text);
    if (tl == 0 || tl >= sizeof(buf))
        return -1;
    memcpy(buf, text, tl + 1);

    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        *slash++ = '\0';
        if (*slash == '\0' || strlen(slash) > 3)
            return -1;
        prefix = 0;
        for (const char *p = slash; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
    }
    /* parse without unmapping first: a mapped block's prefix must be shifted */
    netaddr_t a;
    char plain[NETADDR_STRLEN];
    bool v6_only;
    memset(&a, 0, sizeof(a));
    if (s_undecorate(buf, plain, sizeof(plain), &v6_only) < 0)
        return -1;
    if (!v6_only && inet_pton(AF_INET, plain, a.bytes) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, plain, a.bytes) == 1)
        a.family = AF_INET6;
    else
        return -1;
    int max = s_max_prefix(a.family);
    if (prefix < 0)
        prefix = max;
    if (prefix > max)
        return -1;
    if (a.family == AF_INET6 && prefix >= 96 && memcmp(a.bytes, s_mapped_prefix, 12) == 0) {
        s_unmap(&a);
        prefix -= 96;
    }
    netaddr_t masked = a;
    s_mask(&masked, prefix);
    if (!netaddr_equal(&masked, &a))
        return -1; /* host bits set */
    out->addr = a;
    out->prefix = prefix;
    return 0;
}

bool netaddr_cidr_contains(const netaddr_cidr_t *cidr, const netaddr_t *addr)
{
    int max = s_max_prefix(cidr->addr.family);
    if (max < 0 || addr->family != cidr->addr.family || cidr->prefix < 0 || cidr->prefix > max)
        return false;
    netaddr_t masked = *addr;
    s_mask(&masked, cidr->prefix);
    return netaddr_equal(&masked, &cidr->addr);
}

int netaddr_from_wire(netaddr_t *out, const uint8_t *buf, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || (len != 4 && len != 16))
        return -1;
    memcpy(out->bytes, buf, len);
    out->family = len == 4 ? AF_INET : AF_INET6;
    s_unmap(out);
    return 0;
}

size_t netaddr_to_wire(const netaddr_t *addr, const uint8_t **buf)
{
    *buf = addr->bytes;
    return addr->family == AF_INET ? 4 : addr->family == AF_INET6 ? 16 : 0;
}
