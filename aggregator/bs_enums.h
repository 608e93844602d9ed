/*
 * bs_enums - the aggregator's own copies of the wire enums
 *
 * The pure aggregator logic (window, rules, decision, allowlist, dedup,
 * ingest) does not depend on protobuf-c. These enums mirror the values in
 * proto/backstop.proto one to one, so the wire adapter converts by a cast;
 * the adapter (common/wire.c) is the place to _Static_assert that they match.
 * The name/parse helpers use the lower-case names the config and CLI use.
 */
#ifndef BS_ENUMS_H
#define BS_ENUMS_H

/* Message classification (proto MsgClass). */
typedef enum {
    BS_CLASS_UNKNOWN = 0,   /* not classified */
    BS_CLASS_NORMAL = 1,    /* ordinary mail */
    BS_CLASS_BOUNCE = 2,    /* DSN / non-delivery report */
    BS_CLASS_AUTOREPLY = 3, /* vacation, out-of-office */
    BS_CLASS_MDN = 4,       /* read receipt */
    BS_CLASS_ARF = 5,       /* feedback report */
} bs_class_t;

/* Number of class values; class masks are (1u << class). */
#define BS_CLASS_COUNT 6
/* Class mask with bounces only: the default for automatic rules. */
#define BS_CLASS_MASK_BOUNCE (1u << BS_CLASS_BOUNCE)

/* What a key is (proto Scope). */
typedef enum {
    BS_SCOPE_UNKNOWN = 0,       /* invalid */
    BS_SCOPE_SUBJECT = 1,       /* the bounce's own normalised subject */
    BS_SCOPE_ORIG_SUBJECT = 2,  /* the bounced original's subject */
    BS_SCOPE_CLIENT_IP = 3,     /* the reflecting server's address */
    BS_SCOPE_CLIENT_NET = 4,    /* its /24 or /64 */
    BS_SCOPE_SUBJECT_IP = 5,    /* subject key combined with the client address */
    BS_SCOPE_SENDER_DOMAIN = 6, /* sender domain (allowlists) */
    BS_SCOPE_SITE = 7,          /* a whole site (allowlists) */
} bs_scope_t;

/* Number of scope values. */
#define BS_SCOPE_COUNT 8

/* What a decision does (proto Action). */
typedef enum {
    BS_ACTION_NONE = 0,     /* nothing */
    BS_ACTION_REJECT = 1,   /* 550 5.7.1 */
    BS_ACTION_TEMPFAIL = 2, /* 451 4.7.1 */
    BS_ACTION_TAG = 3,      /* accept, add a header */
} bs_action_t;

/* Where a decision applies (proto Reach). */
typedef enum {
    BS_REACH_UNKNOWN = 0, /* invalid */
    BS_REACH_FLEET = 1,   /* every site */
    BS_REACH_LOCAL = 2,   /* only the decision's site */
} bs_reach_t;

/* Whether a decision acts (proto Mode). */
typedef enum {
    BS_MODE_ENFORCE = 0, /* act on it */
    BS_MODE_OBSERVE = 1, /* log what would happen, act on nothing */
} bs_mode_t;

/* Who made a decision (proto Origin). */
typedef enum {
    BS_ORIGIN_UNKNOWN = 0, /* invalid */
    BS_ORIGIN_RULE = 1,    /* a rule fired */
    BS_ORIGIN_CLI = 2,     /* an operator */
} bs_origin_t;

/* Lower-case names ("subject", "reject", ...); "unknown" for values out of range. */
const char *bs_enums_class_name(int value);
const char *bs_enums_scope_name(int value);
const char *bs_enums_action_name(int value);
const char *bs_enums_reach_name(int value);
const char *bs_enums_mode_name(int value);
const char *bs_enums_origin_name(int value);

/* Parse a lower-case name; returns the value or -1 when unknown. */
int bs_enums_class_parse(const char *name);
int bs_enums_scope_parse(const char *name);
int bs_enums_action_parse(const char *name);
int bs_enums_reach_parse(const char *name);
int bs_enums_mode_parse(const char *name);

#endif
