/*
 * subject - Subject decoding and key normalisation
 *
 * Decoding goes through the MIME adapter (mime.h) unless the value is plain
 * ASCII without encoded words, the common case, which is copied directly.
 * Normalisation works on lowercased UTF-8 bytes: every prefix and phrase
 * table below is lowercase, and multi-byte characters are never split
 * because only ASCII bytes are ever inspected as delimiters.
 */
#include "subject.h"

#include "mime.h"
#include "xalloc.h"

#include <stddef.h>
#include <string.h>

/* Whole bounce subjects or leading bounce phrases, longest first where one is
   a prefix of another. What follows them (after ':' or '-') is usually the
   original subject. */
static const char *const s_bounce_prefixes[] = {
    "undelivered mail returned to sender",
    "returned mail: see transcript for details",
    "returned mail: user unknown",
    "returned mail: host unknown",
    "returned mail: service unavailable",
    "returned mail: data format error",
    "returned mail: unable to deliver mail",
    "returned mail: mailbox full",
    "returned mail: local configuration error",
    "returned mail: cannot send message for 5 days",
    "returned mail: could not send message",
    "returned mail: delivery problems",
    "returned mail: quota exceeded",
    "returned mail",
    "warning: could not send message for past 4 hours",
    "warning: could not send message for past 1 hour",
    "warning: could not send message",
    "could not send message for past 4 hours",
    "could not send message",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery status notification (success)",
    "delivery status notification",
    "delivery notification: delivery has failed",
    "delivery notification: delivery has been delayed",
    "delivery notification",
    "mail delivery failed: returning message to sender",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery problem",
    "mail delivery warning",
    "mail delivery error",
    "email delivery error",
    "mail not delivered",
    "message not delivered",
    "automatically rejected mail",
    "non delivery report",
    "non-delivery",
    "nameserver error report",
    "error during delivery",
    "failed mail",
    "mail failed",
    "returning to sender",
    "returning message to sender",
    "mail error",
    "mail delivery system",
    "mail system error - returned mail",
    "mail could not be delivered",
    "message could not be delivered",
    "message not delivered",
    "message undeliverable",
    "message delivery failure",
    "delayed mail (still being retried)",
    "delayed mail",
    "delivery delayed",
    "warning: message delayed",
    "message delayed",
    "failure notice",
    "failed delivery",
    "delivery failure",
    "delivery failed",
    "delivery report",
    "delivery status",
    "delivery problem",
    "non-delivery report",
    "non-delivery notification",
    "nondeliverable mail",
    "nondeliverable",
    "non-deliverable",
    "undeliverable mail",
    "undeliverable message",
    "undeliverable",
    "undelivered mail",
    "undelivered message",
    "undelivered",
    "returned message",
    "mail failure",
    "bounced mail",
    "mail returned",
    "nicht zustellbar",
    "unzustellbare nachricht",
    "unzustellbar",
    "benachrichtigung zum übermittlungsstatus (fehlgeschlagen)",
    "benachrichtigung zum übermittlungsstatus (verzögert)",
    "benachrichtigung zum übermittlungsstatus",
    "übermittlungsfehler",
    "zustellung fehlgeschlagen",
    "fehlgeschlagene zustellung",
    "message non remis",
    "non remis",
    "non distribuable",
    "échec de la remise",
    "notification d'état de remise (échec)",
    "notification d'état de remise",
    "rapport de non-remise",
    "no se puede entregar",
    "no se pudo entregar",
    "notificación de estado de entrega (error)",
    "notificación de estado de entrega",
    "correo devuelto",
    "no entregado",
    "onbestelbaar",
    "niet bezorgd",
    "non recapitabile",
    "mancato recapito",
    "impossibile recapitare",
    "não entregue",
    "não é possível entregar",
    "notificação de status de entrega (falha)",
    "niedostarczalne",
    "niedostarczona",
    "olevererbart",
    "ej levererbart",
    "kan ikke leveres",
    "nedoručitelné",
    "не доставлено",
    "недоставлено",
    "не удается доставить",
    "невозможно доставить",
    "配信不能",
    "无法投递",
    "無法傳遞",
    "배달되지 않음",
    "teslim edilemiyor",
    "kézbesíthetetlen",
    "ei voida toimittaa",
    "nie można dostarczyć",
    "δεν είναι δυνατή η παράδοση",
};

/* Auto-reply subject prefixes (stripped from keys, and detected). */
static const char *const s_autoreply_prefixes[] = {
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "out of office reply",
    "out of office autoreply",
    "out of office",
    "out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "automatisch antwoord",
    "autosvar",
    "automatyczna odpowiedź",
    "automatyczna odpowiedz",
    "vacation reply",
    "on vacation",
};

/* Words and phrases that mark a bounce's subject anywhere in it. */
static const char *const s_bounce_words[] = {
    "undeliverable",
    "undelivered",
    "could not send message",
    "couldn't be delivered",
    "could not be delivered",
    "delivery failed",
    "delivery failure",
    "delivery report",
    "delivery status",
    "delivery warning",
    "delivery notification",
    "delivery problem",
    "failure delivery",
    "failed delivery",
    "failure notice",
    "hasn't been delivered",
    "not delivered",
    "mail failure",
    "returned mail",
    "returned message",
    "returning to sender",
    "returning message to sender",
    "failed mail",
    "mail failed",
    "not yet been delivered",
    "not been delivered",
    "mail delivery",
    "nondeliverable",
    "non-deliverable",
    "non-delivery",
    "delayed mail",
    "message delayed",
    "delivery delayed",
    "bounced mail",
    "mail system error",
    "blocked message",
    "message blocked",
    "rejected message",
    "message rejected",
    "unzustellbar",
    "nicht zustellbar",
    "übermittlungsstatus",
    "zustellung fehlgeschlagen",
    "non remis",
    "non distribuable",
    "échec de la remise",
    "no se puede entregar",
    "no se pudo entregar",
    "estado de entrega",
    "onbestelbaar",
    "non recapitabile",
    "mancato recapito",
    "não entregue",
    "niedostarcz",
    "olevererbar",
    "nedoručiteln",
    "не доставлено",
    "недоставлено",
    "не удается доставить",
    "não é possível entregar",
    "kan ikke leveres",
    "ej levererbart",
    "配信不能",
    "无法投递",
    "無法傳遞",
    "배달되지 않음",
    "teslim edilemiyor",
    "kézbesíthetetlen",
    "ei voida toimittaa",
    "nie można dostarczyć",
    "δεν είναι δυνατή η παράδοση",
};

/* Reply and forward markers, compared before a ':' (after an optional
   counter such as "[2]" or "^3"). */
static const char *const s_reply_words[] = {
    "re",   "fw",   "fwd",  "aw",  "wg",     "tr",   "sv",      "vs",     "antw",  "antwort",
    "rif",  "r",    "ref",  "res", "enc",    "odp",  "pd",      "ynt",    "fs",    "vb",
    "rv",   "atb",  "vl",   "réf", "ré",     "отв",  "ответ",   "пересл", "回复",  "答复",
    "转发", "轉寄", "回覆", "wtf", "doorst", "read", "gelesen", "lu",     "leído", "lido",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int s_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int s_is_ascii_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int s_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int s_is_hex(unsigned char c)
{
    return s_is_digit(c) || (c >= 'a' && c <= 'f');
}

/* 1 if s is plain printable-or-space ASCII with no encoded word. */
static int s_plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || (*p == '=' && p[1] == '?'))
            return 0;
    return 1;
}

/* Unfolds and replaces control characters with spaces, in place. */
static void s_clean_controls(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* Collapses white space (ASCII, NBSP U+00A0, ideographic U+3000) to single
   spaces and trims, in place. */
static void s_squeeze(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;
    int pending = 0;
    while (*r) {
        size_t sp = 0;
        if (s_is_space(*r))
            sp = 1;
        else if (r[0] == 0xc2 && r[1] == 0xa0)
            sp = 2;
        else if (r[0] == 0xe3 && r[1] == 0x80 && r[2] == 0x80)
            sp = 3;
        if (sp) {
            pending = 1;
            r += sp;
            continue;
        }
        if (pending && w != (unsigned char *)s)
            *w++ = ' ';
        pending = 0;
        *w++ = *r++;
    }
    *w = 0;
}

char *subject_decode(const char *raw)
{
    if (!raw)
        return xstrdup("");
    char *out;
    if (s_plain_ascii(raw)) {
        out = xstrdup(raw);
    } else {
        /* unfold first so encoded words split over lines decode */
        char *tmp = xstrdup(raw);
        s_clean_controls(tmp);
        out = mime_header_decode(tmp);
        xfree(tmp);
    }
    s_clean_controls(out);
    s_squeeze(out);
    return out;
}

/* Lowercase: ASCII directly, anything else through the Unicode tables. */
static char *s_lower(const char *s)
{
    if (s_plain_ascii(s)) {
        char *d = xstrdup(s);
        for (char *p = d; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        return d;
    }
    return mime_utf8_lower(s);
}

/* If s starts with word w ending at a boundary, returns its length, else 0. */
static size_t s_starts_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(s, w, n) != 0)
        return 0;
    unsigned char c = (unsigned char)s[n];
    if (s_is_ascii_alnum(c) && s_is_ascii_alnum((unsigned char)w[n - 1]))
        return 0;
    return n;
}

/* After a prefix: skips a separator (':', '-', full-width colon) and spaces.
   Returns the bytes skipped; require_colon makes the ':' mandatory (0 if none). */
static size_t s_skip_separator(const char *s, int require_colon)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    if (*p == ':' || (*p == '-' && !require_colon))
        p++;
    else if (!strncmp(p, "\xef\xbc\x9a", 3))
        p += 3;
    else if (require_colon)
        return 0;
    while (*p == ' ')
        p++;
    return (size_t)(p - s);
}

/* Length of a reply/forward prefix at s ("re:", "aw: ", "re[2]:", "fwd^3:"), or 0. */
static size_t s_reply_prefix(const char *s)
{
    for (size_t i = 0; i < COUNT(s_reply_words); i++) {
        size_t n = strlen(s_reply_words[i]);
        if (strncmp(s, s_reply_words[i], n) != 0)
            continue;
        const char *p = s + n;
        if (*p == '[' || *p == '(' || *p == '^') {
            char close = *p == '[' ? ']' : *p == '(' ? ')' : 0;
            p++;
            while (s_is_digit((unsigned char)*p))
                p++;
            if (close) {
                if (*p != close)
                    continue;
                p++;
            }
        }
        size_t sep = s_skip_separator(p, 1);
        if (sep)
            return (size_t)(p - s) + sep;
    }
    return 0;
}

/* Length of a leading tag: "[anything short]", "{spam?}", "***spam***". */
static size_t s_tag_prefix(const char *s)
{
    if (*s == '[' || *s == '{') {
        char close = *s == '[' ? ']' : '}';
        const char *e = strchr(s, close);
        if (e && e - s <= 40 && e[1] != 0)
            return (size_t)(e - s) + 1;
    }
    if (*s == '*') {
        const char *p = s;
        while (*p == '*')
            p++;
        const char *e = strchr(p, '*');
        if (e && e - p <= 20 && e[1] == '*') {
            while (*e == '*')
                e++;
            return (size_t)(e - s);
        }
    }
    return 0;
}

/* Length of a leading bounce or auto-reply phrase and its separator, or 0. */
static size_t s_phrase_prefix(const char *s)
{
    for (size_t i = 0; i < COUNT(s_bounce_prefixes); i++) {
        size_t n = s_starts_word(s, s_bounce_prefixes[i]);
        if (n)
            return n + s_skip_separator(s + n, 0);
    }
    for (size_t i = 0; i < COUNT(s_autoreply_prefixes); i++) {
        size_t n = s_starts_word(s, s_autoreply_prefixes[i]);
        if (n)
            return n + s_skip_separator(s + n, 0);
    }
    /* short auto-reply marker only with its colon: "auto:" */
    size_t n = s_starts_word(s, "auto");
    if (n) {
        size_t sep = s_skip_separator(s + n, 1);
        if (sep)
            return n + sep;
    }
    return 0;
}

/* What bounce phrases leave behind before the address or subject they
   announce: "(failure)", "(delay)", "for", "to", "from". */
static size_t s_status_leftover(const char *s)
{
    if (*s == '(') {
        const char *e = strchr(s, ')');
        if (e && e - s <= 20)
            return (size_t)(e - s) + 1;
    }
    static const char *const words[] = {"for ", "to ", "from ", "of "};
    for (size_t i = 0; i < COUNT(words); i++)
        if (!strncmp(s, words[i], strlen(words[i])))
            return strlen(words[i]);
    return 0;
}

/* 1 if s is a whole-subject report that names only the failed recipient:
   Lotus Domino's "DELIVERY FAILURE: User jschmidt (jschmidt@example.com) not
   listed in Domino Directory" (one key per recipient would split the wave). */
static int s_recipient_report(const char *s)
{
    size_t n = s_starts_word(s, "delivery failure");
    if (!n)
        return 0;
    s += n + s_skip_separator(s + n, 1);
    return n && !strncmp(s, "user ", 5) && strstr(s, " not listed") != NULL;
}

/* 1 if s holds a letter (ASCII, or any non-ASCII character). */
static int s_has_letter(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p >= 0x80)
            return 1;
    return 0;
}

/* Length of a dash-joined id at s (an Exim message id "1qXyZa-0004Ab-Cd", a
   UUID, "2024-05-14"): three or more alphanumeric groups joined by '-', 6
   bytes or more, two groups or more holding a digit; 0 if none. Words stay
   ("covid-19", "2-factor", "e-mail", "4.12-rc5"). */
static size_t s_dashed_id(const char *s, size_t len)
{
    size_t i = 0, groups = 0, numbered = 0;
    while (i < len) {
        size_t g = i, digits = 0;
        while (i < len && s_is_ascii_alnum((unsigned char)s[i]))
            digits += s_is_digit((unsigned char)s[i++]);
        if (i == g)
            break;
        groups++;
        numbered += digits > 0;
        if (i + 1 < len && s[i] == '-' && s_is_ascii_alnum((unsigned char)s[i + 1]))
            i++;
        else
            break;
    }
    /* glued to non-ASCII letters it is part of a word */
    if (i < len && (unsigned char)s[i] >= 0x80)
        return 0;
    return groups >= 3 && numbered >= 2 && i >= 6 ? i : 0;
}

/* Appends the masked form of one space-free word to out at *w. */
static void s_mask_word(const char *word, size_t len, char *out, size_t *w)
{
    const char *at = memchr(word, '@', len);
    if (at && at > word && at < word + len - 1) {
        out[(*w)++] = '@';
        return;
    }
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)word[i];
        if (!s_is_ascii_alnum(c)) {
            out[(*w)++] = (char)c;
            i++;
            continue;
        }
        size_t id = (i == 0 || word[i - 1] != '-') ? s_dashed_id(word + i, len - i) : 0;
        if (id) {
            out[(*w)++] = '#';
            i += id;
            continue;
        }
        size_t j = i, digits = 0, hex = 0;
        while (j < len && s_is_ascii_alnum((unsigned char)word[j])) {
            digits += s_is_digit((unsigned char)word[j]);
            hex += s_is_hex((unsigned char)word[j]);
            j++;
        }
        size_t run = j - i;
        /* a digit-free run not followed by non-ASCII letters is a word */
        int glued = j < len && (unsigned char)word[j] >= 0x80;
        if (digits == run || (digits && run >= 8) || (hex == run && run >= 12 && !glued)) {
            out[(*w)++] = '#';
        } else if (digits) {
            for (size_t k = i; k < j; k++) {
                if (s_is_digit((unsigned char)word[k])) {
                    if (!*w || out[*w - 1] != '#')
                        out[(*w)++] = '#';
                } else {
                    out[(*w)++] = word[k];
                }
            }
        } else {
            memcpy(out + *w, word + i, run);
            *w += run;
        }
        i = j;
    }
}

/* Joins "#.#", "#,#", "#:#", "#/#", "#-#" into "#", in place. */
static void s_join_numbers(char *s)
{
    char *r = s, *w = s;
    while (*r) {
        if (r[0] == '#' && r[1] && strchr(".,:/-", r[1]) && r[2] == '#' && w > s && w[-1] == '#') {
            r += 2;
            continue;
        }
        if (r[0] == '#' && w > s && w[-1] == '#') {
            r++;
            continue;
        }
        if (r[0] && strchr(".,:/-", r[0]) && r[1] == '#' && w > s && w[-1] == '#') {
            r += 2;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
}

char *subject_key(const char *decoded)
{
    if (!decoded || !*decoded)
        return xstrdup("");
    char *low = s_lower(decoded);
    s_clean_controls(low);
    s_squeeze(low);

    /* strip prefixes until none is left */
    const char *p = low;
    int stripped = 0;
    for (;;) {
        while (*p == ' ' || *p == ':' || *p == '-' || *p == '"' || *p == '\'' || *p == '>' ||
               *p == '.' || *p == ',' || *p == ';')
            p++;
        if (s_recipient_report(p)) {
            p += strlen(p);
            break;
        }
        size_t n = s_reply_prefix(p);
        if (!n)
            n = s_tag_prefix(p);
        if (!n && (n = s_phrase_prefix(p)) != 0)
            stripped = 1;
        else if (!n && stripped)
            n = s_status_leftover(p);
        if (!n)
            break;
        p += n;
    }

    /* mask word by word */
    size_t len = strlen(p);
    char *out = xmalloc(len + 1);
    size_t w = 0;
    while (*p) {
        if (*p == ' ') {
            out[w++] = ' ';
            p++;
            continue;
        }
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        s_mask_word(p, (size_t)(e - p), out, &w);
        p = e;
    }
    out[w] = 0;
    xfree(low);
    s_join_numbers(out);
    /* trailing quote or separator left by a stripped phrase */
    s_squeeze(out);
    size_t n = strlen(out);
    while (n && strchr(" \"':-", out[n - 1]))
        out[--n] = 0;
    /* only masks and punctuation left ("@", "# #"): nothing to count */
    if (!s_has_letter(out))
        out[0] = 0;
    return out;
}

/* 1 if phrase occurs in s at word boundaries. */
static int s_contains_phrase(const char *s, const char *phrase)
{
    size_t n = strlen(phrase);
    for (const char *p = strstr(s, phrase); p; p = strstr(p + 1, phrase)) {
        int left_ok = p == s || !s_is_ascii_alnum((unsigned char)p[-1]);
        int right_ok = !s_is_ascii_alnum((unsigned char)p[n]);
        if (left_ok && right_ok)
            return 1;
    }
    return 0;
}

const char *subject_bounce_word(const char *decoded)
{
    if (!decoded || !*decoded)
        return NULL;
    char *low = s_lower(decoded);
    const char *hit = NULL;
    for (size_t i = 0; i < COUNT(s_bounce_words) && !hit; i++)
        if (s_contains_phrase(low, s_bounce_words[i]))
            hit = s_bounce_words[i];
    xfree(low);
    return hit;
}

int subject_is_bounce(const char *decoded)
{
    return subject_bounce_word(decoded) != NULL;
}

int subject_is_reply(const char *decoded)
{
    if (!decoded || !*decoded)
        return 0;
    char *low = s_lower(decoded);
    const char *p = low;
    /* past leading tags, as subject_key() strips them: "[list] Re: ...",
       "[Ticket#123] Re: ...", "[SPAM] Fwd: ..." */
    for (int tags = 0; tags < 8; tags++) {
        while (*p == ' ')
            p++;
        size_t n = s_tag_prefix(p);
        if (!n)
            break;
        p += n;
    }
    while (*p == ' ')
        p++;
    int hit = s_reply_prefix(p) != 0;
    xfree(low);
    return hit;
}

int subject_is_autoreply(const char *decoded)
{
    if (!decoded || !*decoded)
        return 0;
    char *low = s_lower(decoded);
    s_squeeze(low);
    int hit = 0;
    for (size_t i = 0; i < COUNT(s_autoreply_prefixes) && !hit; i++)
        hit = s_contains_phrase(low, s_autoreply_prefixes[i]);
    if (!hit)
        hit = s_starts_word(low, "auto") && s_skip_separator(low + 4, 1);
    xfree(low);
    return hit;
}
