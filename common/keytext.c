/*
 * keytext - the key text mail is counted and matched by, from what a person types
 *
 * See keytext.h. The normalisers are the classifier's own (subject.c, netaddr.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "keytext.h"
#include "netaddr.h"
#include "subject.h"
#include "wire.h"
#include "xalloc.h"

char *keytext_subject(const char *value, char *err, size_t errlen)
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

char *keytext_ip(const char *value, char *err, size_t errlen)
{
    netaddr_t a;
    char buf[NETADDR_STRLEN];
    if (netaddr_parse(&a, value) < 0 || netaddr_format(&a, buf, sizeof(buf)) < 0) {
        snprintf(err, errlen, "invalid IP address \"%s\"", value);
        return NULL;
    }
    return xstrdup(buf);
}

char *keytext_net(const char *value, bool keyed, char *err, size_t errlen)
{
    netaddr_cidr_t c, net;
    char buf[NETADDR_CIDRLEN];
    if (netaddr_cidr_parse(&c, value) < 0 || netaddr_cidr_format(&c, buf, sizeof(buf)) < 0) {
        snprintf(err, errlen, "invalid network \"%s\" (ADDR/PREFIX with no host bits set)", value);
        return NULL;
    }
    if (keyed && (netaddr_network(&c.addr, &net) < 0 || net.prefix != c.prefix ||
                  !netaddr_equal(&net.addr, &c.addr))) {
        snprintf(err, errlen,
                 "network \"%s\" would match no mail: sensors key a client by its /24 (IPv4) "
                 "or /64 (IPv6); block those, or the addresses",
                 buf);
        return NULL;
    }
    return xstrdup(buf);
}

char *keytext_subject_ip(const char *value, char *err, size_t errlen)
{
    const char *bar = strrchr(value, '|');
    if (bar == NULL) {
        snprintf(err, errlen, "subject_ip value \"%s\" is not SUBJECT|IP", value);
        return NULL;
    }
    char *subject = xstrndup(value, (size_t)(bar - value));
    const char *ip = bar + 1;
    while (isspace((unsigned char)*ip))
        ip++;
    char *sk = keytext_subject(subject, err, errlen);
    char *ik = sk ? keytext_ip(ip, err, errlen) : NULL;
    char *key = ik ? xasprintf("%s|%s", sk, ik) : NULL;
    xfree(ik);
    xfree(sk);
    xfree(subject);
    return key;
}

bool keytext_site_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > WIRE_MAX_ID)
        return false;
    /* spelled out, not isalnum(): the same set whatever the locale */
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}
