/*
 * classify - the bounce classifier
 *
 * Works in three steps, cheapest first:
 *   1. the top-level header block is parsed here, in place (no copies): From,
 *      Subject, Content-Type, Return-Path, Auto-Submitted and friends give
 *      most of the signals, and for the great majority of mail (not a
 *      bounce, no bounce signal in the headers) the verdict is "normal"
 *      without looking at the body at all;
 *   2. only messages with some bounce or report signal get their body looked
 *      at: multiparts through the GMime adapter (mime.h), single parts by
 *      undoing the transfer encoding;
 *   3. the decision rules below, structural evidence first (RFC 3464/5965/
 *      8098 report types and parts, X-Failed-Recipients), then heuristics
 *      that need two independent signals (a bounce sender or the null sender,
 *      a bounce subject, an MTA's NDR wording, an enclosed original), the
 *      way rspamd's rules/bounce.lua combines them.
 * Auto-replies (RFC 3834 Auto-Submitted: auto-replied, X-Autoreply,
 * Precedence: auto_reply, out-of-office subjects) are kept apart from bounces
 * unless the sender is a mailer daemon: Postfix and Exim mark their own
 * bounces auto-replied too.
 *
 * No static mutable state: all scratch lives in the call's frame or result.
 */
#include "classify.h"

#include "fp.h"
#include "hdrs.h"
#include "mime.h"
#include "netaddr.h"
#include "subject.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct classify_result {
    classify_class_t cls;                /* the verdict */
    classify_orig_t orig;                /* how much of the original is enclosed */
    char *reasons[CLASSIFY_MAX_REASONS]; /* why, short "key=value" strings */
    size_t nreasons;                     /* reasons used */
    char *subject;                       /* own Subject, decoded */
    char *subject_key;                   /* its key text */
    uint64_t subject_fp;                 /* fingerprint of subject_key, 0 if empty */
    char *orig_subject;                  /* original's Subject, decoded, or NULL */
    char *orig_subject_key;              /* its key text, or NULL */
    uint64_t orig_subject_fp;            /* its fingerprint, 0 if none */
    char *orig_message_id;               /* original's Message-ID without <>, or NULL */
    char *orig_from;                     /* original's From, decoded, or NULL */
    char *orig_to;                       /* original's To, decoded, or NULL */
    char *reporting_mta;                 /* DSN Reporting-MTA, or NULL */
    char *final_recipient;               /* DSN Final-Recipient, or NULL */
    char *action;                        /* DSN Action, lowercase, or NULL */
    char *status;                        /* DSN Status, or NULL */
    char *diagnostic_code;               /* DSN Diagnostic-Code, or NULL */
    char *client_ip;                     /* client address as given, or NULL */
    char *client_net;                    /* its /24 or /64, or NULL */
};

/* Most body bytes scanned for NDR wording and quoted originals, per text. */
#define S_SCAN_BYTES (16 * 1024)
/* Most text parts scanned. */
#define S_MAX_TEXTS 8

static void s_lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Lowercase ASCII copy of at most max bytes (positions map 1:1 to the source). */
static char *s_lower_copy(const char *s, size_t len, size_t max)
{
    if (len > max)
        len = max;
    char *d = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (c == 0 ? ' ' : c);
    }
    d[len] = 0;
    return d;
}

/* ---- result helpers ---- */

/* Adds the reason key followed by value (when not NULL). */
static void s_reason(classify_result_t *r, const char *key, const char *value)
{
    if (r->nreasons >= CLASSIFY_MAX_REASONS)
        return;
    char *s = value ? xasprintf("%s%s", key, value) : xstrdup(key);
    /* one token per reason: the CLI joins them with commas */
    for (char *p = s; *p; p++)
        if (*p == ' ' || *p == ',')
            *p = '-';
    r->reasons[r->nreasons++] = s;
}

/* Sets *field to value (taking it) unless already set or value is empty;
   the stored text is always valid UTF-8. */
static void s_set(char **field, char *value)
{
    if (*field || !value || !*value) {
        xfree(value);
        return;
    }
    size_t len = strlen(value);
    if (!mime_utf8_valid(value, len)) {
        char *v = mime_to_utf8(NULL, value, len);
        xfree(value);
        value = v;
    }
    *field = value;
}

/* "type; value" -> "value" (DSN address and diagnostic types). */
static char *s_strip_type(char *v)
{
    if (!v)
        return NULL;
    char *semi = strchr(v, ';');
    if (semi && semi - v < 16) {
        char *s = semi + 1;
        while (*s == ' ')
            s++;
        memmove(v, s, strlen(s) + 1);
    }
    return v;
}

/* "<id@host>" or "id@host" -> "id@host". */
static char *s_msgid(char *v)
{
    if (!v)
        return NULL;
    char *lt = strchr(v, '<');
    if (lt) {
        char *gt = strchr(lt, '>');
        if (gt) {
            memmove(v, lt + 1, (size_t)(gt - lt - 1));
            v[gt - lt - 1] = 0;
        }
    }
    return v;
}

/* ---- the sender ---- */

static const char *const s_bounce_locals[] = {
    "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon",
    "maildaemon",    "postmaster",    "mdaemon",
};

/* Names a mailer signs with: the whole display name, the whole "(comment)"
   after an address, or a quoted local part ("System Administrator"@host). */
static const char *const s_bounce_names[] = {
    "mail delivery system",
    "mail delivery subsystem",
    "mail delivery service",
    "mail delivery",
    "mailer-daemon",
    "mailer daemon",
    "postmaster",
    "delivery subsystem",
    "mail administrator",
    "system administrator",
    "post office",
    "mail system",
    "delivery status notification",
};

/* Trims spaces, tabs and quotes (double, and Google Groups' single ones)
   around the len bytes at *s. */
static void s_trim_name(const char **s, size_t *len)
{
    while (*len && strchr(" \t\"'", **s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && strchr(" \t\"'", (*s)[*len - 1]))
        (*len)--;
}

/* The bounce local part ("mailer-daemon") of the address that len bytes at s
   are ("MAILER-DAEMON@mx.example.net", no spaces), or NULL. */
static const char *s_bounce_local(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(s_bounce_locals) / sizeof(*s_bounce_locals); i++) {
        size_t n = strlen(s_bounce_locals[i]);
        if (n < len && !strncmp(s, s_bounce_locals[i], n) && s[n] == '@' &&
            !memchr(s + n + 1, ' ', len - n - 1))
            return s_bounce_locals[i];
    }
    return NULL;
}

/* The bounce name that len bytes at s are, whole (around spaces and quotes), or NULL.
   A list that rewrites From: for DMARC names the author "<name> via <list>"
   (Mailman, Google Groups: "'Mail Delivery Subsystem' via Users",
   "MAILER-DAEMON@mx.example.net via Users"): the name before " via " is the
   author's, and an address there with a bounce local part counts like a
   bounce name (a name still: sender_by_name). */
static const char *s_bounce_name(const char *s, size_t len)
{
    s_trim_name(&s, &len);
    const char *via = len > 5 ? memmem(s, len, " via ", 5) : NULL;
    if (via && via > s) {
        len = (size_t)(via - s);
        s_trim_name(&s, &len);
    }
    for (size_t i = 0; i < sizeof(s_bounce_names) / sizeof(*s_bounce_names); i++)
        if (strlen(s_bounce_names[i]) == len && !strncmp(s, s_bounce_names[i], len))
            return s_bounce_names[i];
    return s_bounce_local(s, len);
}

/* The bounce-sender token From: matches ("mailer-daemon", "postmaster",
   a display name such as "mail delivery subsystem"), or NULL. *by_name (may
   be NULL) is set to 1 when only a name matched, not the address: anyone can
   call himself "Post Office", only a mailer sends as MAILER-DAEMON@. */
static const char *s_bounce_sender(const char *from, int *by_name)
{
    if (by_name)
        *by_name = 0;
    if (!from)
        return NULL;
    char *low = xstrdup(from);
    s_lower_ascii(low);
    const char *hit = NULL;
    /* the address: inside <>, else the first word */
    const char *a = strchr(low, '<');
    const char *addr = a ? a + 1 : low;
    while (*addr == ' ' || *addr == '"')
        addr++;
    for (size_t i = 0; i < sizeof(s_bounce_locals) / sizeof(*s_bounce_locals) && !hit; i++) {
        size_t n = strlen(s_bounce_locals[i]);
        if (!strncmp(addr, s_bounce_locals[i], n) && strchr("@>\" +\\", addr[n]) != NULL)
            hit = s_bounce_locals[i];
    }
    /* "<>": the null address in From: is a mailer talking */
    if (!hit && a && a[1] == '>')
        hit = "<>";
    if (!hit) {
        /* the display name before "<", a "(comment)", or a quoted local part */
        const char *paren = strchr(low, '(');
        const char *close = paren ? strchr(paren, ')') : NULL;
        const char *q = a && a[1] == '"' ? strchr(a + 2, '"') : NULL;
        if (a)
            hit = s_bounce_name(low, (size_t)(a - low));
        if (!hit && close)
            hit = s_bounce_name(paren + 1, (size_t)(close - paren - 1));
        if (!hit && q)
            hit = s_bounce_name(a + 2, (size_t)(q - a - 2));
        if (by_name)
            *by_name = hit != NULL;
    }
    xfree(low);
    return hit;
}

/* 1 for senders that are software (MAILER-DAEMON, "Mail Delivery System",
   the null address) rather than a role a person answers (postmaster,
   "System Administrator"): their word alone is worth more. */
static int s_daemon_sender(const char *sender)
{
    return sender && strcmp(sender, "postmaster") != 0 &&
           strcmp(sender, "system administrator") != 0 &&
           strcmp(sender, "mail administrator") != 0 && strcmp(sender, "post office") != 0;
}

/* ---- body wording ---- */

typedef struct {
    const char *phrase; /* lowercase text an MTA's report contains */
    const char *label;  /* reason value */
} s_phrase_t;

/* Template sentences of MTAs' non-delivery reports: strong evidence. */
static const s_phrase_t s_ndr_phrases[] = {
    {"this is the mail system at host", "postfix"},
    {"i'm sorry to have to inform you that your message could not", "postfix"},
    {"this is the qmail-send program", "qmail"},
    {"i wasn't able to deliver your message to the following", "qmail"},
    {"this message was created automatically by mail delivery software", "exim"},
    {"a message that you sent could not be delivered to one or more of", "exim"},
    {"message that you sent has not yet been delivered", "exim-delay"},
    {"the following addresses had permanent fatal errors", "sendmail"},
    {"transcript of session follows", "sendmail"},
    {"the original message was received at", "sendmail"},
    {"delivery to the following recipients failed", "exchange"},
    {"delivery to the following recipient failed", "exchange"},
    {"delivery has failed to these recipients or groups", "exchange"},
    {"your message did not reach some or all of the intended recipients", "exchange"},
    {"did not reach the following recipient", "exchange"},
    {"could not be delivered to one or more recipients", "ndr"},
    {"could not be delivered to the following", "ndr"},
    {"the following recipient(s) could not be reached", "ndr"},
    {"the following recipient(s) cannot be reached", "lotus"},
    {"sorry, we were unable to deliver your message", "yahoo"},
    {"i'm afraid i wasn't able to deliver your message", "yahoo"},
    {"this is an automatically generated delivery status notification", "gmail"},
    {"delivery to the following recipient has been delayed", "delay"},
    {"delivery to the following recipients has been delayed", "delay"},
    {"your mail message to the following", "ndr"},
    {"undeliverable to the following", "ndr"},
    {"permanent fatal errors", "ndr"},
    {"by mail delivery software", "ndr"},
    {"could not deliver message to the following", "ndr"},
    {"failed recipients", "ndr"},
    {"failed addresses follow", "ndr"},
};

/* Plain words of a failed delivery: in a report, or in a person's mail about one. */
static const s_phrase_t s_ndr_plain[] = {
    {"your message was not delivered", "ndr"},
    {"was not delivered to", "ndr"},
    {"message could not be delivered", "ndr"},
    {"unable to deliver your message", "ndr"},
    {"unable to deliver message", "ndr"},
    {"has not been delivered", "ndr"},
    {"could not deliver mail to", "ndr"},
    {"message was undeliverable", "ndr"},
    {"error during delivery", "ndr"},
    {"delivery status notification", "dsn"},
    {"non-delivery report", "ndr"},
    {"delivery failure", "ndr"},
    {"mail delivery failed", "ndr"},
    {"failed to deliver", "ndr"},
    {"returned to sender", "ndr"},
};

/* Diagnostics a report quotes: weaker, but enough next to a bounce sender. */
static const s_phrase_t s_diag_phrases[] = {
    {"user unknown", "user-unknown"},
    {"not a valid user", "user-unknown"},
    {"invalid recipient", "user-unknown"},
    {"unknown recipient", "user-unknown"},
    {"recipient unknown", "user-unknown"},
    {"no such address", "user-unknown"},
    {"unknown user", "user-unknown"},
    {"no such user", "user-unknown"},
    {"mailbox unavailable", "mailbox-unavailable"},
    {"mailbox full", "mailbox-full"},
    {"over quota", "over-quota"},
    {"quota exceeded", "over-quota"},
    {"recipient address rejected", "rejected"},
    {"address rejected", "rejected"},
    {"does not exist", "no-such-address"},
    {"host unknown", "host-unknown"},
    {"relay access denied", "relay-denied"},
    {"550 5.", "smtp-5xx"},
    {"550-5.", "smtp-5xx"},
    {"554 5.", "smtp-5xx"},
    {"553 5.", "smtp-5xx"},
    {"552 5.", "smtp-5xx"},
    {"permanent error", "permanent"},
    {"delivery has been delayed", "delayed"},
    {"will continue trying", "delayed"},
    {"still trying", "delayed"},
    {"undeliverable", "undeliverable"},
    {"undelivered", "undelivered"},
    {"not be delivered", "not-delivered"},
    {"blocked", "blocked"},
};

/* Lines after which an NDR quotes the original's headers or whole text. */
static const char *const s_orig_markers[] = {
    "below this line is a copy of the message",
    "this is a copy of the message",
    "this is a copy of the headers",
    "copy of the message",
    "original message follows",
    "original message headers",
    "headers of the original message",
    "original message",
    "message headers follow",
    "your message reads",
    "returned message",
    "included is a copy",
    "unsent message below",
};

static const char *s_scan(const char *low, const s_phrase_t *tab, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(low, tab[i].phrase))
            return tab[i].label;
    return NULL;
}

/* 1 if the line holding low[at] is quoted ("> ..." after indentation). */
static int s_in_quote(const char *low, const char *at)
{
    const char *ls = at;
    while (ls > low && ls[-1] != '\n')
        ls--;
    while (ls < at && (*ls == ' ' || *ls == '\t'))
        ls++;
    return *ls == '>' || *ls == '|';
}

/* Like s_scan, but a phrase found only on quoted lines ("> This is the mail
   system at host...", a person quoting a report) is returned in *quoted. */
static const char *s_scan_unquoted(const char *low, const s_phrase_t *tab, size_t n,
                                   const char **quoted)
{
    for (size_t i = 0; i < n; i++)
        for (const char *m = strstr(low, tab[i].phrase); m; m = strstr(m + 1, tab[i].phrase)) {
            if (!s_in_quote(low, m))
                return tab[i].label;
            if (!*quoted)
                *quoted = tab[i].label;
        }
    return NULL;
}

/* ---- what a message shows ---- */

typedef struct {
    const char *text; /* decoded text (borrowed, or own) */
    size_t len;       /* its length */
    char *own;        /* text converted to UTF-8 from its charset, or NULL */
    char *low;        /* lowercase copy, at most S_SCAN_BYTES */
} s_text_t;

typedef struct {
    classify_result_t *r;     /* where reasons and fields go */
    const char *sender;       /* bounce-sender token, or NULL */
    int sender_by_name;       /* sender matched by a display name only, not the address */
    int null_sender;          /* envelope or Return-Path is <> */
    int person;               /* envelope sender known, not <> and no mailer's address */
    const char *subject_word; /* bounce word in the subject, or NULL */
    const char *autoreply;    /* first RFC 3834 marker seen (reason text), or NULL */
    int reply;                /* the subject starts with Re:/Fwd:/AW:... */
    int quoted;               /* a text body quotes a header block (Received: + Subject:) */
    int bulk;                 /* Precedence: bulk or junk */
    int list;                 /* list mail: List-Id or Precedence: list */
    int digest;               /* a multipart/digest (of list posts) */
    int dsn_part;             /* a message/delivery-status part */
    int mdn_part;             /* a message/disposition-notification part */
    int arf_part;             /* a message/feedback-report part */
    int rfc822_part;          /* a message/rfc822 part */
    int headers_part;         /* a text/rfc822-headers part */
    char *disposition;        /* MDN Disposition, lowercase, or NULL */
    const char *ndr_phrase;   /* label of an NDR template sentence, or NULL */
    int ndr_template;         /* (a person's envelope) a mailer's own sentence, not plain words */
    const char *diag_phrase;  /* label of a diagnostic phrase, or NULL */
    s_text_t texts[S_MAX_TEXTS]; /* text bodies to scan */
    size_t ntexts;               /* texts used */
} s_signals_t;

/* 1 for a charset whose text needs converting before it is read: not
   ASCII or UTF-8, and the text has 8-bit bytes or escapes (ISO-2022-JP is
   7-bit). */
static int s_needs_convert(const char *charset, const char *text, size_t len)
{
    if (!charset || !strcasecmp(charset, "us-ascii") || !strcasecmp(charset, "ascii") ||
        !strcasecmp(charset, "utf-8") || !strcasecmp(charset, "utf8"))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80 || text[i] == 0x1b)
            return 1;
    return 0;
}

/* Adds a text body to scan, in UTF-8: a legacy charset's head (what is
   scanned, cut at a line end so no character is split) is converted, so
   quoted original subjects read right. */
static void s_add_text(s_signals_t *sg, const char *text, size_t len, const char *charset)
{
    if (sg->ntexts >= S_MAX_TEXTS || !text || !len)
        return;
    s_text_t *t = &sg->texts[sg->ntexts++];
    t->text = text;
    t->len = len;
    t->own = NULL;
    t->low = NULL;
    size_t head = len > S_SCAN_BYTES ? S_SCAN_BYTES : len;
    if (!s_needs_convert(charset, text, head))
        return;
    if (head < len) {
        const char *nl = memrchr(text, '\n', head);
        if (nl)
            head = (size_t)(nl - text) + 1;
    }
    t->own = mime_to_utf8(charset, text, head);
    t->text = t->own;
    t->len = strlen(t->own);
}

/* The lowercase copy of a text, made on first use. */
static const char *s_text_low(s_text_t *t)
{
    if (!t->low)
        t->low = s_lower_copy(t->text, t->len, S_SCAN_BYTES);
    return t->low;
}

/* Fills the DSN fields from a message/delivery-status body: groups of
   fields separated by blank lines, per-message first. */
static void s_dsn_fields(classify_result_t *r, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    hdrs_t *hs = xmalloc(sizeof(*hs));
    for (int group = 0; p < end && group < 32; group++) {
        while (p < end && (*p == '\r' || *p == '\n' || *p == ' ' || *p == '\t'))
            p++;
        if (p >= end)
            break;
        hdrs_parse(p, (size_t)(end - p), hs);
        if (hs->count == 0 && hs->body == p)
            break;
        s_set(&r->reporting_mta, s_strip_type(hdrs_get(hs, "Reporting-MTA")));
        s_set(&r->final_recipient, s_strip_type(hdrs_get(hs, "Final-Recipient")));
        if (!r->final_recipient)
            s_set(&r->final_recipient, s_strip_type(hdrs_get(hs, "Original-Recipient")));
        char *action = hdrs_get(hs, "Action");
        if (action)
            s_lower_ascii(action);
        s_set(&r->action, action);
        char *status = hdrs_get(hs, "Status");
        if (status)
            status[strcspn(status, " (")] = 0;
        s_set(&r->status, status);
        s_set(&r->diagnostic_code, s_strip_type(hdrs_get(hs, "Diagnostic-Code")));
        if (hs->body <= p)
            break;
        p = hs->body;
    }
    xfree(hs);
}

/* Takes Subject, Message-ID, From, To from an enclosed header block; blank
   lines before it (some MTAs start a text/rfc822-headers part with one) are
   skipped. */
static int s_orig_from_headers(classify_result_t *r, const char *text, size_t len)
{
    for (;;) {
        size_t i = 0;
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
            i++;
        if (i >= len || text[i] != '\n')
            break;
        text += i + 1;
        len -= i + 1;
    }
    hdrs_t *hs = xmalloc(sizeof(*hs));
    hdrs_parse(text, len, hs);
    int found = 0;
    char *subj = hdrs_get(hs, "Subject");
    if (subj) {
        s_set(&r->orig_subject, subject_decode(subj));
        xfree(subj);
        found = 1;
    }
    char *mid = s_msgid(hdrs_get(hs, "Message-ID"));
    if (mid && *mid)
        found = 1;
    s_set(&r->orig_message_id, mid);
    char *from = hdrs_get(hs, "From");
    if (from) {
        s_set(&r->orig_from, subject_decode(from));
        xfree(from);
    }
    char *to = hdrs_get(hs, "To");
    if (to) {
        s_set(&r->orig_to, subject_decode(to));
        xfree(to);
    }
    xfree(hs);
    return found;
}

/* Names NDRs give the original's subject when they quote it in prose. */
static const char *const s_subject_names[] = {
    "subject:",
    "betreff:",
    "objet :",
    "objet:",
    "asunto:",
    "oggetto:",
    "onderwerp:",
    "assunto:",
    "temat:",
    "ämne:",
    "emne:",
    "тема:",
    "the subject of the message is:",
};

/* The value of an inline "Name: value" line at line start (after quoting and
   indentation), searched in low from offset start; NULL if none. */
static char *s_inline_field(s_text_t *t, size_t start, const char *name)
{
    size_t n = strlen(name);
    const char *low = s_text_low(t);
    size_t lowlen = strlen(low);
    for (size_t i = start; i < lowlen;) {
        size_t ls = i;
        while (i < lowlen && (low[i] == ' ' || low[i] == '\t' || low[i] == '>' || low[i] == '|'))
            i++;
        int indented = i > ls;
        if (!strncmp(low + i, name, n)) {
            size_t vs = i + n;
            size_t ve = vs;
            while (ve < lowlen && low[ve] != '\n')
                ve++;
            /* a folded value continues on lines that start with white space
               and are not themselves "Field:" lines */
            while (!indented && ve + 1 < lowlen && (low[ve + 1] == ' ' || low[ve + 1] == '\t')) {
                size_t k = ve + 1;
                while (k < lowlen && (low[k] == ' ' || low[k] == '\t'))
                    k++;
                size_t w = k;
                while (w < lowlen && (hdrs_is_name_char((unsigned char)low[w]) && low[w] != ' '))
                    w++;
                if (w < lowlen && low[w] == ':' && w > k)
                    break;
                ve = k;
                while (ve < lowlen && low[ve] != '\n')
                    ve++;
            }
            char *v = hdrs_unfold(t->text + vs, ve - vs);
            if (*v)
                return v;
            xfree(v);
        }
        while (i < lowlen && low[i] != '\n')
            i++;
        i++;
    }
    return NULL;
}

/* 1 if a text quotes a header block: a Received: line and a Subject: or
   Message-ID: line, each at a line start (after quoting). */
static int s_quotes_headers(s_text_t *t)
{
    char *v = s_inline_field(t, 0, "received:");
    if (!v)
        return 0;
    xfree(v);
    v = s_inline_field(t, 0, "subject:");
    if (!v)
        v = s_inline_field(t, 0, "message-id:");
    xfree(v);
    return v != NULL;
}

/* Looks for the original's headers quoted in a text body. */
static int s_orig_inline(classify_result_t *r, s_signals_t *sg)
{
    for (size_t ti = 0; ti < sg->ntexts; ti++) {
        s_text_t *t = &sg->texts[ti];
        const char *low = s_text_low(t);
        size_t start = 0;
        const char *best = NULL;
        for (size_t i = 0; i < sizeof(s_orig_markers) / sizeof(*s_orig_markers); i++) {
            const char *m = strstr(low, s_orig_markers[i]);
            if (m && (!best || m < best))
                best = m;
        }
        if (best)
            start = (size_t)(best - low);
        char *subj = NULL, *mid = NULL;
        for (int pass = 0; pass < 2 && !subj && !mid; pass++) {
            if (pass == 1) {
                if (!start)
                    break;
                start = 0;
            }
            for (size_t i = 0; i < sizeof(s_subject_names) / sizeof(*s_subject_names) && !subj; i++)
                subj = s_inline_field(t, start, s_subject_names[i]);
            mid = s_inline_field(t, start, "message-id:");
        }
        if (!subj && !mid)
            continue;
        if (subj) {
            s_set(&r->orig_subject, subject_decode(subj));
            xfree(subj);
        }
        s_set(&r->orig_message_id, s_msgid(mid));
        char *from = s_inline_field(t, start, "from:");
        if (from) {
            s_set(&r->orig_from, subject_decode(from));
            xfree(from);
        }
        char *to = s_inline_field(t, start, "to:");
        if (to) {
            s_set(&r->orig_to, subject_decode(to));
            xfree(to);
        }
        return 1;
    }
    return 0;
}

/* Records what the MIME parts show. */
static void s_walk_parts(s_signals_t *sg, const mime_tree_t *tree)
{
    classify_result_t *r = sg->r;
    for (size_t i = 0; i < mime_tree_count(tree); i++) {
        const mime_part_t *p = mime_tree_part(tree, i);
        if (!strcmp(p->type, "multipart") && !strcmp(p->subtype, "digest")) {
            sg->digest = 1;
        } else if (strcmp(p->type, "message") == 0) {
            if (!strcmp(p->subtype, "delivery-status") ||
                !strcmp(p->subtype, "global-delivery-status")) {
                sg->dsn_part = 1;
                if (p->body)
                    s_dsn_fields(r, p->body, p->body_len);
            } else if (!strcmp(p->subtype, "disposition-notification") ||
                       !strcmp(p->subtype, "global-disposition-notification")) {
                sg->mdn_part = 1;
                if (p->body && !sg->disposition) {
                    hdrs_t *hs = xmalloc(sizeof(*hs));
                    hdrs_parse(p->body, p->body_len, hs);
                    sg->disposition = hdrs_get(hs, "Disposition");
                    if (sg->disposition)
                        s_lower_ascii(sg->disposition);
                    xfree(hs);
                }
            } else if (!strcmp(p->subtype, "feedback-report")) {
                sg->arf_part = 1;
            } else if (!strcmp(p->subtype, "rfc822") || !strcmp(p->subtype, "global")) {
                if (!sg->rfc822_part && p->body && p->body_len &&
                    s_orig_from_headers(r, p->body, p->body_len)) {
                    sg->rfc822_part = 1 + (p->enclosed_body ? 1 : 0);
                } else if (!sg->rfc822_part && p->body && p->body_len) {
                    sg->rfc822_part = 1 + (p->enclosed_body ? 1 : 0);
                }
            } else if (!strcmp(p->subtype, "rfc822-headers") ||
                       !strcmp(p->subtype, "global-headers")) {
                if (p->body && s_orig_from_headers(r, p->body, p->body_len))
                    sg->headers_part = 1;
            }
        } else if (!strcmp(p->type, "text")) {
            if (!strcmp(p->subtype, "rfc822-headers")) {
                if (p->body && s_orig_from_headers(r, p->body, p->body_len))
                    sg->headers_part = 1;
            } else if (p->body && (!strcmp(p->subtype, "plain") || !strcmp(p->subtype, "html"))) {
                s_add_text(sg, p->body, p->body_len, p->charset);
            }
        }
    }
}

/* Quick look at a multipart's raw body: does it mention a report part or an
   enclosed message? Decides whether the full MIME parse is worth it. */
static int s_raw_mentions_report(const char *body, size_t len)
{
    static const char *const needles[] = {
        "elivery-status", "ELIVERY-STATUS", "rfc822",
        "RFC822",         "eedback-report", "isposition-notification",
    };
    for (size_t i = 0; i < sizeof(needles) / sizeof(*needles); i++)
        if (memmem(body, len, needles[i], strlen(needles[i])))
            return 1;
    return 0;
}

/* ---- client address ---- */

/* The client's address and network as keys, in the canonical text the aggregator and the
 * CLI use (netaddr_format): an MTA's own forms ("IPv6:2001:db8::1" in Postfix's
 * {client_addr}, "[192.0.2.1]", "::ffff:192.0.2.1") would never meet a decision made on
 * the address. No address key at all when it is not an address. */
static void s_client(classify_result_t *r, const char *ip)
{
    netaddr_t a;
    char buf[NETADDR_CIDRLEN];
    if (!ip || netaddr_parse(&a, ip) < 0 || netaddr_format(&a, buf, sizeof(buf)) < 0)
        return;
    r->client_ip = xstrdup(buf);
    if (netaddr_network_text(&a, buf, sizeof(buf)) == 0)
        r->client_net = xstrdup(buf);
}

/* ---- the decision ---- */

/* 1 if the subject, past leading "[list]" tags, starts with its bounce word
   (a report's own subject, "[Users] Undelivered Mail Returned to Sender",
   not a question about one). */
static int s_subject_leads(const char *subject, const char *word)
{
    if (!subject || !word)
        return 0;
    char *low = xstrdup(subject);
    s_lower_ascii(low);
    const char *p = low;
    for (int tags = 0; tags < 8; tags++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *close = *p == '[' ? strchr(p, ']') : NULL;
        if (!close)
            break;
        p = close + 1;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    int hit = !strncmp(p, word, strlen(word));
    xfree(low);
    return hit;
}

/* 1 if an MTA's template sentence opens a text: on one of its first three
   non-blank lines, neither quoted nor indented. A report starts with its
   template; a person who posts one says something first, or quotes it. */
static int s_template_opens(s_signals_t *sg)
{
    for (size_t ti = 0; ti < sg->ntexts; ti++) {
        const char *low = s_text_low(&sg->texts[ti]);
        const char *limit = low;
        for (int lines = 0; *limit && lines < 3;) {
            const char *eol = strchr(limit, '\n');
            const char *end = eol ? eol : limit + strlen(limit);
            if (strspn(limit, " \t\r") < (size_t)(end - limit))
                lines++;
            limit = eol ? eol + 1 : end;
        }
        for (size_t i = 0; i < sizeof(s_ndr_phrases) / sizeof(*s_ndr_phrases); i++) {
            const char *m = strstr(low, s_ndr_phrases[i].phrase);
            if (!m || m >= limit)
                continue;
            const char *ls = m;
            while (ls > low && ls[-1] != '\n')
                ls--;
            if (*ls != ' ' && *ls != '\t' && !s_in_quote(low, m))
                return 1;
        }
    }
    return 0;
}

/* 1 if a text quotes the original's Subject: or Message-ID: inline (Domino's
   "Your message\n\n  Subject: ...", GWAVA's notice), as s_orig_inline finds it. */
static int s_inline_original(s_signals_t *sg)
{
    classify_result_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    int found = s_orig_inline(&tmp, sg);
    xfree(tmp.orig_subject);
    xfree(tmp.orig_message_id);
    xfree(tmp.orig_from);
    xfree(tmp.orig_to);
    return found;
}

/* The sender and subject signals, for a verdict structure already settled. */
static void s_side_reasons(s_signals_t *sg)
{
    if (sg->sender)
        s_reason(sg->r, "from=", sg->sender);
    if (sg->subject_word)
        s_reason(sg->r, "subject=", sg->subject_word);
}

static void s_decide(s_signals_t *sg, const char *report_type, const char *auto_submitted,
                     int x_failed, int mddsn)
{
    classify_result_t *r = sg->r;

    if ((report_type && !strcmp(report_type, "feedback-report")) || sg->arf_part) {
        s_reason(r, report_type ? "ct=multipart/report;report-type=" : "part=",
                 report_type ? report_type : "message/feedback-report");
        r->cls = CLASSIFY_ARF;
        return;
    }
    if ((report_type && (!strcmp(report_type, "delivery-status") ||
                         !strcmp(report_type, "global-delivery-status"))) ||
        sg->dsn_part) {
        if (report_type)
            s_reason(r, "ct=multipart/report;report-type=", report_type);
        if (sg->dsn_part)
            s_reason(r, "part=message/delivery-status", NULL);
        s_side_reasons(sg);
        r->cls = CLASSIFY_BOUNCE;
        return;
    }
    if ((report_type && !strcmp(report_type, "disposition-notification")) || sg->mdn_part) {
        s_reason(r, "ct=multipart/report;report-type=", "disposition-notification");
        /* RFC 5429 Sieve "reject" answers with an MDN from the mail system:
           that refuses delivery, it is a bounce */
        int rejected = (auto_submitted && strstr(auto_submitted, "rejected")) ||
                       (sg->disposition &&
                        (strstr(sg->disposition, "deleted") || strstr(sg->disposition, "reject") ||
                         strstr(sg->disposition, "failed")));
        if (sg->sender && (rejected || (sg->subject_word && sg->null_sender))) {
            s_reason(r, "from=", sg->sender);
            s_reason(r, "mdn=rejected", NULL);
            r->cls = CLASSIFY_BOUNCE;
            return;
        }
        r->cls = CLASSIFY_MDN;
        return;
    }
    if (x_failed) {
        s_reason(r, "x-failed-recipients", NULL);
        s_side_reasons(sg);
        r->cls = CLASSIFY_BOUNCE;
        return;
    }
    if (mddsn) {
        s_reason(r, "x-mddsn-message", NULL);
        r->cls = CLASSIFY_BOUNCE;
        return;
    }
    if (sg->autoreply && !sg->sender) {
        s_reason(r, sg->autoreply, NULL);
        r->cls = CLASSIFY_AUTOREPLY;
        return;
    }

    /* two independent signals. Who sent it weighs first: a mailer's address
       in From: (MAILER-DAEMON@, the null address) or the null envelope sender
       need one more signal, also when a list or forwarder relays the bounce
       with its own envelope. A person's envelope outweighs a From: that is only
       a name ("Post Office", "System Administrator") or a role a person answers
       (postmaster@). Not bounces, whatever they quote: a person's reply or
       forward (Re:, Fwd:, also after a "[list]" tag) and a digest of list
       posts, unless the null sender or a mailer sent them. Without a mailer's
       sender, plain words are enough only while the envelope is unknown (a
       message in a file): a person's own mail about a failed delivery ("Email
       not delivered", a courier's "returned to sender") is worded the same.
       From a person's envelope (a content filter's notice often comes from
       one; a list or forwarder relays bounces with its own) it takes the
       original attached under a bounce subject; a role's From: with a bounce
       subject and the original enclosed, or, from a role's address
       (Postmaster@: Domino, GWAVA), only its Subject: quoted in the text; or
       a mailer's own sentence, not "> "-quoted, with the original attached
       or a bounce subject. In a list's post (List-Id, Precedence: list) the
       last needs a mailer's name in From: (a list that rewrites From: for
       DMARC relays "Mail Delivery System via Users") or the post to be the
       report itself: the subject starts with its bounce word, past list tags,
       and the sentence opens the text unindented. A person who posts a report
       asks about it first, or indents or quotes it */
    int enclosed = sg->rfc822_part || sg->headers_part || sg->quoted;
    int attached = sg->rfc822_part || sg->headers_part;
    int daemon = s_daemon_sender(sg->sender) && !sg->sender_by_name;
    int from_counts = sg->sender && (!sg->person || daemon);
    int bounce = 0;
    if (sg->reply && !sg->null_sender && !daemon)
        bounce = 0;
    else if (sg->digest && !sg->null_sender && !daemon)
        bounce = 0;
    else if (from_counts && (sg->subject_word || sg->ndr_phrase || enclosed))
        bounce = 1;
    else if (from_counts && s_daemon_sender(sg->sender) && sg->diag_phrase)
        bounce = 1;
    else if (sg->null_sender && (sg->subject_word || sg->ndr_phrase || enclosed))
        bounce = 1;
    else if (sg->person)
        bounce = (attached && (sg->subject_word || sg->ndr_template)) ||
                 (sg->ndr_template && sg->subject_word &&
                  (!sg->list || sg->sender ||
                   (s_subject_leads(sg->r->subject, sg->subject_word) && s_template_opens(sg)))) ||
                 (sg->sender && sg->subject_word && enclosed) ||
                 (sg->sender && !sg->sender_by_name && sg->subject_word && s_inline_original(sg));
    else if (!sg->reply && sg->ndr_phrase && (sg->subject_word || enclosed))
        bounce = 1;
    else if (!sg->reply && sg->subject_word && enclosed)
        bounce = 1;
    if (bounce) {
        if (sg->sender)
            s_reason(r, "from=", sg->sender);
        if (sg->null_sender)
            s_reason(r, "sender=<>", NULL);
        if (sg->subject_word)
            s_reason(r, "subject=", sg->subject_word);
        if (sg->ndr_phrase)
            s_reason(r, "body=", sg->ndr_phrase);
        else if (sg->diag_phrase)
            s_reason(r, "diag=", sg->diag_phrase);
        if (sg->rfc822_part)
            s_reason(r, "part=message/rfc822", NULL);
        else if (sg->headers_part)
            s_reason(r, "part=text/rfc822-headers", NULL);
        else if (sg->quoted)
            s_reason(r, "quoted=headers", NULL);
        r->cls = CLASSIFY_BOUNCE;
        return;
    }
    if (sg->autoreply) {
        s_reason(r, sg->autoreply, NULL);
        r->cls = CLASSIFY_AUTOREPLY;
        return;
    }
    /* pre-RFC 5965 feedback loops (Hotmail's) and Outlook's TNEF read
       receipts have no report type, only their wording */
    char *low = xstrdup(r->subject);
    s_lower_ascii(low);
    if (!strncmp(low, "complaint about message from ", 29)) {
        s_reason(r, "subject=complaint-about-message", NULL);
        r->cls = CLASSIFY_ARF;
    } else if (sg->null_sender && !strncmp(low, "read: ", 6)) {
        s_reason(r, "sender=<>", NULL);
        s_reason(r, "subject=read", NULL);
        r->cls = CLASSIFY_MDN;
    } else if (sg->null_sender && sg->bulk) {
        /* RFC 3834 responders send from <> and mark their answers bulk */
        s_reason(r, "sender=<>", NULL);
        s_reason(r, "precedence=bulk", NULL);
        r->cls = CLASSIFY_AUTOREPLY;
    } else {
        r->cls = CLASSIFY_NORMAL;
    }
    xfree(low);
}

/* The first auto-reply marker of RFC 3834 or a vacation program, as reason
   text, or NULL. */
static const char *s_autoreply_marker(const hdrs_t *hs, const char *as, const char *precedence,
                                      const char *subject)
{
    if (as && !strncmp(as, "auto-replied", 12))
        return "auto-submitted=auto-replied";
    static const char *const names[][2] = {
        {"X-Autoreply", "header=x-autoreply"},
        {"X-Autorespond", "header=x-autorespond"},
        {"X-Autoresponder", "header=x-autoresponder"},
        {"X-Vacation", "header=x-vacation"},
        {"X-AutoReply-From", "header=x-autoreply-from"},
        {"X-Mail-Autoreply", "header=x-mail-autoreply"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (hdrs_find(hs, names[i][0]))
            return names[i][1];
    if (precedence && !strncmp(precedence, "auto_reply", 10))
        return "precedence=auto_reply";
    if (subject_is_autoreply(subject))
        return "subject=autoreply";
    return NULL;
}

classify_result_t *classify_message(const classify_input_t *in)
{
    classify_result_t *r = xcalloc(1, sizeof(*r));
    s_signals_t sg;
    memset(&sg, 0, sizeof(sg));
    sg.r = r;
    r->cls = CLASSIFY_NORMAL;
    s_client(r, in ? in->client_ip : NULL);

    const char *msg = in && in->msg ? in->msg : "";
    size_t len = in && in->msg ? in->len : 0;
    hdrs_t *hs = xmalloc(sizeof(*hs));
    hdrs_parse(msg, len, hs);

    /* the subject and its key, for every message */
    char *raw_subject = hdrs_get(hs, "Subject");
    r->subject = subject_decode(raw_subject);
    xfree(raw_subject);
    r->subject_key = subject_key(r->subject);
    r->subject_fp = *r->subject_key ? fp_text(r->subject_key) : 0;

    /* header signals */
    char *from = hdrs_get(hs, "From");
    sg.sender = s_bounce_sender(from, &sg.sender_by_name);
    xfree(from);
    if (in && in->env_from) {
        sg.null_sender = in->env_from[0] == 0 || !strcmp(in->env_from, "<>");
        sg.person = !sg.null_sender && !s_bounce_sender(in->env_from, NULL);
    } else {
        char *rp = hdrs_get(hs, "Return-Path");
        sg.null_sender = rp && (!strcmp(rp, "<>") || !strcmp(rp, "< >"));
        sg.person = rp && !sg.null_sender && !s_bounce_sender(rp, NULL);
        xfree(rp);
    }
    sg.subject_word = subject_bounce_word(r->subject);
    char *as = hdrs_get(hs, "Auto-Submitted");
    if (as)
        s_lower_ascii(as);
    char *precedence = hdrs_get(hs, "Precedence");
    if (precedence)
        s_lower_ascii(precedence);
    sg.autoreply = s_autoreply_marker(hs, as, precedence, r->subject);
    sg.reply = subject_is_reply(r->subject);
    sg.bulk = precedence && (!strncmp(precedence, "bulk", 4) || !strncmp(precedence, "junk", 4));
    sg.list = hdrs_find(hs, "List-Id") != NULL || (precedence && !strncmp(precedence, "list", 4));
    int x_failed = hdrs_find(hs, "X-Failed-Recipients") != NULL;
    int mddsn = hdrs_find(hs, "X-MDDSN-Message") != NULL;

    char *ctype = NULL, *csub = NULL, *report_type = NULL;
    char *ct = hdrs_get(hs, "Content-Type");
    if (ct)
        mime_content_type(ct, &ctype, &csub, &report_type);
    xfree(ct);
    if (report_type && ctype && strcmp(ctype, "multipart") != 0) {
        xfree(report_type);
        report_type = NULL;
    }
    int multipart = ctype && (!strcmp(ctype, "multipart") || !strcmp(ctype, "message"));

    /* the body, only when some signal makes it worth reading */
    int candidate = sg.sender || sg.null_sender || sg.subject_word || x_failed || mddsn ||
                    report_type || (multipart && s_raw_mentions_report(hs->body, hs->body_len));
    mime_tree_t *tree = NULL;
    char *single = NULL;
    if (candidate) {
        if (multipart) {
            tree = mime_tree_parse(msg, len);
            s_walk_parts(&sg, tree);
        } else if (hs->body_len) {
            char *cte = hdrs_get(hs, "Content-Transfer-Encoding");
            size_t n = 0;
            size_t blen = hs->body_len > 4 * S_SCAN_BYTES ? 4 * S_SCAN_BYTES : hs->body_len;
            single = mime_transfer_decode(cte, hs->body, blen, &n);
            xfree(cte);
            char *ctv = hdrs_get(hs, "Content-Type");
            char *charset = ctv ? mime_content_charset(ctv) : NULL;
            s_add_text(&sg, single, n, charset);
            xfree(charset);
            xfree(ctv);
        }
    }
    /* wording matters only where the structure did not already decide */
    int structural = x_failed || mddsn || report_type || sg.dsn_part || sg.arf_part || sg.mdn_part;
    if (candidate && !structural) {
        const char *quoted = NULL;
        for (size_t i = 0; i < sg.ntexts && !sg.ndr_phrase; i++)
            sg.ndr_phrase =
                s_scan_unquoted(s_text_low(&sg.texts[i]), s_ndr_phrases,
                                sizeof(s_ndr_phrases) / sizeof(*s_ndr_phrases), &quoted);
        /* a quoted report is a person's words about one */
        sg.ndr_template = sg.ndr_phrase != NULL;
        if (!sg.ndr_phrase)
            sg.ndr_phrase = quoted;
        for (size_t i = 0; i < sg.ntexts && !sg.ndr_phrase; i++)
            sg.ndr_phrase = s_scan(s_text_low(&sg.texts[i]), s_ndr_plain,
                                   sizeof(s_ndr_plain) / sizeof(*s_ndr_plain));
        for (size_t i = 0; i < sg.ntexts && !sg.diag_phrase; i++)
            sg.diag_phrase = s_scan(s_text_low(&sg.texts[i]), s_diag_phrases,
                                    sizeof(s_diag_phrases) / sizeof(*s_diag_phrases));
        for (size_t i = 0; i < sg.ntexts && !sg.quoted; i++)
            sg.quoted = s_quotes_headers(&sg.texts[i]);
    }

    s_decide(&sg, report_type, as, x_failed, mddsn);

    if (r->cls == CLASSIFY_BOUNCE) {
        if (sg.rfc822_part == 2)
            r->orig = CLASSIFY_ORIG_RFC822;
        else if (sg.rfc822_part || sg.headers_part)
            r->orig = CLASSIFY_ORIG_HEADERS;
        else if (s_orig_inline(r, &sg)) {
            r->orig = CLASSIFY_ORIG_HEADERS;
            s_reason(r, "orig=inline", NULL);
        }
        if (r->orig == CLASSIFY_ORIG_NONE) {
            /* an original seen but not used for the verdict is still the original */
            xfree(r->orig_subject);
            r->orig_subject = NULL;
        }
        if (r->orig_subject) {
            r->orig_subject_key = subject_key(r->orig_subject);
            r->orig_subject_fp = *r->orig_subject_key ? fp_text(r->orig_subject_key) : 0;
        }
    } else {
        /* originals belong to bounces only */
        xfree(r->orig_subject);
        xfree(r->orig_message_id);
        xfree(r->orig_from);
        xfree(r->orig_to);
        r->orig_subject = r->orig_message_id = r->orig_from = r->orig_to = NULL;
    }

    for (size_t i = 0; i < sg.ntexts; i++) {
        xfree(sg.texts[i].low);
        xfree(sg.texts[i].own);
    }
    xfree(sg.disposition);
    xfree(single);
    mime_tree_destroy(&tree);
    xfree(ctype);
    xfree(csub);
    xfree(report_type);
    xfree(as);
    xfree(precedence);
    xfree(hs);
    return r;
}

void classify_result_destroy(classify_result_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    classify_result_t *r = *self_p;
    for (size_t i = 0; i < r->nreasons; i++)
        xfree(r->reasons[i]);
    xfree(r->subject);
    xfree(r->subject_key);
    xfree(r->orig_subject);
    xfree(r->orig_subject_key);
    xfree(r->orig_message_id);
    xfree(r->orig_from);
    xfree(r->orig_to);
    xfree(r->reporting_mta);
    xfree(r->final_recipient);
    xfree(r->action);
    xfree(r->status);
    xfree(r->diagnostic_code);
    xfree(r->client_ip);
    xfree(r->client_net);
    xfree(r);
    *self_p = NULL;
}

classify_class_t classify_result_class(const classify_result_t *r)
{
    return r->cls;
}

const char *classify_class_name(classify_class_t c)
{
    switch (c) {
    case CLASSIFY_NORMAL:
        return "normal";
    case CLASSIFY_BOUNCE:
        return "bounce";
    case CLASSIFY_AUTOREPLY:
        return "autoreply";
    case CLASSIFY_MDN:
        return "mdn";
    case CLASSIFY_ARF:
        return "arf";
    default:
        return "unknown";
    }
}

const char *classify_orig_name(classify_orig_t o)
{
    switch (o) {
    case CLASSIFY_ORIG_RFC822:
        return "rfc822";
    case CLASSIFY_ORIG_HEADERS:
        return "headers";
    default:
        return "none";
    }
}

size_t classify_result_reason_count(const classify_result_t *r)
{
    return r->nreasons;
}

const char *classify_result_reason(const classify_result_t *r, size_t i)
{
    return i < r->nreasons ? r->reasons[i] : NULL;
}

classify_orig_t classify_result_original(const classify_result_t *r)
{
    return r->orig;
}

const char *classify_result_subject(const classify_result_t *r)
{
    return r->subject;
}

const char *classify_result_subject_key(const classify_result_t *r)
{
    return r->subject_key;
}

uint64_t classify_result_subject_fp(const classify_result_t *r)
{
    return r->subject_fp;
}

const char *classify_result_orig_subject(const classify_result_t *r)
{
    return r->orig_subject;
}

const char *classify_result_orig_subject_key(const classify_result_t *r)
{
    return r->orig_subject_key;
}

uint64_t classify_result_orig_subject_fp(const classify_result_t *r)
{
    return r->orig_subject_fp;
}

const char *classify_result_orig_message_id(const classify_result_t *r)
{
    return r->orig_message_id;
}

const char *classify_result_orig_from(const classify_result_t *r)
{
    return r->orig_from;
}

const char *classify_result_orig_to(const classify_result_t *r)
{
    return r->orig_to;
}

const char *classify_result_reporting_mta(const classify_result_t *r)
{
    return r->reporting_mta;
}

const char *classify_result_final_recipient(const classify_result_t *r)
{
    return r->final_recipient;
}

const char *classify_result_action(const classify_result_t *r)
{
    return r->action;
}

const char *classify_result_status(const classify_result_t *r)
{
    return r->status;
}

const char *classify_result_diagnostic_code(const classify_result_t *r)
{
    return r->diagnostic_code;
}

const char *classify_result_client_ip(const classify_result_t *r)
{
    return r->client_ip;
}

const char *classify_result_client_net(const classify_result_t *r)
{
    return r->client_net;
}

int classify_check_mail(const char *msg, size_t len, const char **why)
{
    if (!msg || len == 0) {
        *why = "empty";
        return -1;
    }
    size_t head = len < 4096 ? len : 4096;
    size_t ctl = 0;
    for (size_t i = 0; i < head; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == 0) {
            *why = "binary data";
            return -1;
        }
        if (c < 32 && c != '\r' && c != '\n' && c != '\t' && c != '\f' && c != 0x1b)
            ctl++;
    }
    if (ctl * 20 > head) {
        *why = "binary data";
        return -1;
    }
    hdrs_t *hs = xmalloc(sizeof(*hs));
    hdrs_parse(msg, len, hs);
    int rc = 0;
    if (hs->count == 0 || (hs->bad_line && hs->count < 2 && !hdrs_find(hs, "From") &&
                           !hdrs_find(hs, "Subject") && !hdrs_find(hs, "Received"))) {
        *why = "no header block";
        rc = -1;
    } else if (!hs->terminated && !hs->bad_line && len && msg[len - 1] != '\n') {
        *why = "truncated header block";
        rc = -1;
    }
    xfree(hs);
    return rc;
}
