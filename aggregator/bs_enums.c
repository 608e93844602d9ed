/*
 * bs_enums - names of the aggregator's mirrored wire enums
 *
 * Tables indexed by enum value; parse is a linear search (a handful of names,
 * called at config load and by the CLI only). No protobuf-c here: the wire
 * adapter is the place to assert that the mirrored values match.
 */
#include <string.h>

#include "bs_enums.h"

static const char *const s_class[] = {"unknown", "normal", "bounce", "autoreply", "mdn", "arf"};
static const char *const s_scope[] = {"unknown",    "subject",    "orig_subject",  "client_ip",
                                      "client_net", "subject_ip", "sender_domain", "site"};
static const char *const s_action[] = {"none", "reject", "tempfail", "tag"};
static const char *const s_reach[] = {"unknown", "fleet", "local"};
static const char *const s_mode[] = {"enforce", "observe"};
static const char *const s_origin[] = {"unknown", "rule", "cli"};

#define S_COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static const char *s_name(const char *const *names, int count, int value)
{
    if (value < 0 || value >= count)
        return "unknown";
    return names[value];
}

static int s_parse(const char *const *names, int count, const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *bs_enums_class_name(int value)
{
    return s_name(s_class, S_COUNT(s_class), value);
}

const char *bs_enums_scope_name(int value)
{
    return s_name(s_scope, S_COUNT(s_scope), value);
}

const char *bs_enums_action_name(int value)
{
    return s_name(s_action, S_COUNT(s_action), value);
}

const char *bs_enums_reach_name(int value)
{
    return s_name(s_reach, S_COUNT(s_reach), value);
}

const char *bs_enums_mode_name(int value)
{
    return s_name(s_mode, S_COUNT(s_mode), value);
}

const char *bs_enums_origin_name(int value)
{
    return s_name(s_origin, S_COUNT(s_origin), value);
}

int bs_enums_class_parse(const char *name)
{
    return s_parse(s_class, S_COUNT(s_class), name);
}

int bs_enums_scope_parse(const char *name)
{
    return s_parse(s_scope, S_COUNT(s_scope), name);
}

int bs_enums_action_parse(const char *name)
{
    return s_parse(s_action, S_COUNT(s_action), name);
}

int bs_enums_reach_parse(const char *name)
{
    return s_parse(s_reach, S_COUNT(s_reach), name);
}

int bs_enums_mode_parse(const char *name)
{
    return s_parse(s_mode, S_COUNT(s_mode), name);
}
