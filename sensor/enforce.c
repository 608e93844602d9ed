/*
 * enforce - which decision, if any, a message meets; see enforce.h.
 */
#include "enforce.h"

#include "fp.h"
#include "xalloc.h"

#include <string.h>

/* Strength of an action: a higher number wins. */
static int s_strength(int action)
{
    switch (action) {
    case DCACHE_ACTION_REJECT:
        return 3;
    case DCACHE_ACTION_TEMPFAIL:
        return 2;
    case DCACHE_ACTION_TAG:
        return 1;
    default:
        return 0;
    }
}

static bool s_automatic(int origin)
{
    return origin == DCACHE_ORIGIN_RULE || origin == DCACHE_ORIGIN_LOCAL;
}

static void s_spare(enforce_verdict_t *out, const dcache_entry_t *d)
{
    if (!out->spared_id[0])
        memcpy(out->spared_id, d->id, sizeof(out->spared_id));
}

void enforce_decide(dcache_t *cache, const enforce_input_t *in, int64_t now_ms,
                    enforce_verdict_t *out)
{
    memset(out, 0, sizeof(*out));
    dcache_entry_t found[8];
    for (size_t k = 0; k < in->nkeys; k++) {
        size_t n = dcache_lookup(cache, in->keys[k].scope, in->keys[k].fp, now_ms, found,
                                 sizeof(found) / sizeof(found[0]));
        if (n > sizeof(found) / sizeof(found[0]))
            n = sizeof(found) / sizeof(found[0]);
        for (size_t i = 0; i < n; i++) {
            const dcache_entry_t *d = &found[i];
            if (!in->class_enforced && !d->all_mail) {
                out->spared_class = true;
                s_spare(out, d);
                continue;
            }
            if (in->ledger_hit && s_automatic(d->origin) && d->action != DCACHE_ACTION_TAG) {
                out->spared_ledger = true;
                s_spare(out, d);
                continue;
            }
            if (d->observe) {
                if (!out->observed) {
                    out->observed = true;
                    out->observe = *d;
                }
                continue;
            }
            if (s_strength(d->action) > s_strength(out->action)) {
                out->action = d->action;
                out->decision = *d;
            }
        }
    }
}

void enforce_add_key(enforce_input_t *in, int scope, uint64_t fp, const char *text)
{
    if (in->nkeys >= ENFORCE_MAX_KEYS)
        return;
    in->keys[in->nkeys].scope = scope;
    in->keys[in->nkeys].fp = fp;
    in->keys[in->nkeys].text = text;
    in->nkeys++;
}

void enforce_keys_from(const classify_result_t *cr, enforce_input_t *in, char **subject_ip)
{
    *subject_ip = NULL;
    const char *sk = classify_result_subject_key(cr);
    const char *ok = classify_result_orig_subject_key(cr);
    if (ok && *ok)
        enforce_add_key(in, DCACHE_SCOPE_ORIG_SUBJECT, classify_result_orig_subject_fp(cr), ok);
    if (sk && *sk)
        enforce_add_key(in, DCACHE_SCOPE_SUBJECT, classify_result_subject_fp(cr), sk);
    const char *ip = classify_result_client_ip(cr);
    if (!ip || !*ip)
        return;
    if (sk && *sk) {
        *subject_ip = xasprintf("%s|%s", sk, ip);
        enforce_add_key(in, DCACHE_SCOPE_SUBJECT_IP, fp_text(*subject_ip), *subject_ip);
    }
    enforce_add_key(in, DCACHE_SCOPE_CLIENT_IP, fp_text(ip), ip);
    const char *net = classify_result_client_net(cr);
    if (net && *net)
        enforce_add_key(in, DCACHE_SCOPE_CLIENT_NET, fp_text(net), net);
}
