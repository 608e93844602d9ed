/*
 * cli_help - the backstop manual, printed by --help and `backstop help`
 *
 * See cli_help.h. The command sections are shared by the whole page and the
 * per-command help, so the two never disagree.
 */
#include <string.h>

#include "cli_help.h"

/* One command's section of the manual. */
typedef struct {
    const char *topic; /* first command word */
    const char *text;  /* its section, indented like the page */
} s_section_t;

static const char s_head[] =
    "NAME\n"
    "    backstop - operate the Backstop aggregator: status, decisions, allowlists, sites\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop [--socket ENDPOINT] [--config FILE] [--json] [--timeout MS] COMMAND [ARGS]\n"
    "    backstop COMMAND --help\n"
    "\n"
    "DESCRIPTION\n"
    "    backstop talks to a running backstop-aggregator over its local control socket\n"
    "    and shows the state of the whole fleet: the sensors and how far behind they\n"
    "    are, the block decisions in force and the evidence behind each one, the keys\n"
    "    closest to a rule's thresholds, and the allowlists and sites. It also adds and\n"
    "    revokes decisions, allowlist entries and sites. Changes are written to the\n"
    "    aggregator's database before they are published to the sensors.\n"
    "\n"
    "    Output is a table for people by default; --json prints the aggregator's reply\n"
    "    document unchanged, for scripts. Values are checked before anything is sent:\n"
    "    subjects are normalised the way the sensors normalise them (\"Undeliverable:\n"
    "    Cheap meds 123\" becomes \"cheap meds #\"), addresses and networks must parse.\n"
    "\n"
    "COMMANDS\n";

static const s_section_t s_sections[] = {
    {"status",
     "    status\n"
     "        Aggregator health (uptime, epoch, sequence), events per second, events\n"
     "        received and dropped by reason, keys tracked, decisions active, and every\n"
     "        sensor: site, sensor, last seen, applied sequence, lag (aggregator sequence\n"
     "        minus applied sequence) and whether it is stale. With a failover peer:\n"
     "        its state, the decisions mirrored, and whether the two hold the same\n"
     "        allowlist and sites.\n"},
    {"decisions",
     "    decisions [list] [--limit N]\n"
     "        Active decisions: id, scope, value, action, reach (fleet or the site),\n"
     "        time to expiry, origin (the rule, or cli and the operator). The first\n"
     "        1000 (--limit: 1 to 5000, as many as one reply holds); a last line says\n"
     "        how many more there are.\n"
     "    decisions show ID\n"
     "        Everything about one decision, including its evidence.\n"
     "    decisions add --scope SCOPE --value V [--ttl DURATION] [--action ACTION]\n"
     "                  [--reach fleet|site] [--site SITE] [--reason TEXT] [--all-mail]\n"
     "                  [--force]\n"
     "        Blocks a key by hand. SCOPE: subject, orig_subject, ip, net, subject_ip\n"
     "        (value SUBJECT|IP). A net is a /24 (IPv4) or /64 (IPv6): sensors look up\n"
     "        the client's network of that size, so no other matches any mail.\n"
     "        DURATION: 90s, 30m, 1h (default), 2d; at most 30d.\n"
     "        ACTION: reject (default, 550), tempfail (451), tag (X-Backstop header).\n"
     "        --reach site --site SITE blocks at one site only (--site alone implies it);\n"
     "        a SITE the aggregator does not know (not registered, and no sensor of it\n"
     "        has reported: a typo blocks nothing) is refused (exit 65) unless --force\n"
     "        is given (a site whose sensors have yet to report, in plain mode).\n"
     "        --all-mail applies the decision to all mail, not only to bounces.\n"
     "        The operator recorded is $SUDO_USER, else $USER.\n"
     "        On a key already blocked, add only strengthens: a later expiry, a\n"
     "        stronger action (tag < tempfail < reject) and --all-mail are taken; a\n"
     "        shorter TTL or a weaker action is not (the reply says what was kept).\n"
     "    decisions del ID [--reason TEXT]\n"
     "        Revokes a decision; the sensors drop it at once. A rule that still sees\n"
     "        its wave blocks the key again at the next event (the reply warns);\n"
     "        allow add keeps a key unblocked.\n"},
    {"why", "    why ID|IP|SUBJECT\n"
            "        For a decision id: the evidence behind it (rule, events, sites and their\n"
            "        shares, first and last seen, sample); for one no longer in force, why\n"
            "        (expired, revoked, allowlisted, superseded) and what it was, while the\n"
            "        change log holds it. For an address or a subject (quote it, or give\n"
            "        it as several words): the decisions on it, whether it is allowlisted,\n"
            "        and its counts in each rule's window against that rule's thresholds,\n"
            "        i.e. why it is not (yet) blocked.\n"},
    {"top", "    top [--scope SCOPE] [--limit N]\n"
            "        The keys nearest to a rule's thresholds now, nearest first (default 20\n"
            "        rows, at most 1000). SCOPE as for decisions add; default: every scope.\n"},
    {"allow", "    allow [list]\n"
              "        The allowlist entries.\n"
              "    allow add --type TYPE --value V [--reason TEXT] [--force]\n"
              "        Never block what matches. TYPE: ip, net, subject, orig_subject,\n"
              "        sender_domain, site. Adding an entry revokes the active decisions it\n"
              "        covers at once; the reply lists them. With a failover peer, the peer\n"
              "        takes the entry (and a removal) within a few seconds. A site the\n"
              "        aggregator does not know (not registered, no sensor reported) is\n"
              "        refused (exit 65) unless --force is given.\n"
              "    allow del ID | allow del --type TYPE --value V\n"
              "        Removes an entry.\n"},
    {"sites", "    sites [list]\n"
              "        Known sites, their public keys and their sensors: the registered ones,\n"
              "        and those known from their sensors only, marked \"not registered\"\n"
              "        (plain mode registers none) or \"removed\" (sites del) with when.\n"
              "    sites add NAME [--key-dir DIR]\n"
              "        Registers a site: makes a CurveZMQ key pair, registers the public key with\n"
              "        the aggregator and writes the key file for the site's sensors (public and\n"
              "        secret, mode 0600) as DIR/NAME.key (default: the current directory). Copy\n"
              "        it to the site's sensor_secret_key_file. NAME: [A-Za-z0-9._-], 1 to 64.\n"
              "    sites add NAME --public-key KEY\n"
              "        Registers a site with a public key made elsewhere (KEY, 40 characters of\n"
              "        Z85, as sites list shows it), and writes no key file.\n"
              "    sites del NAME\n"
              "        Revokes a site's key: new connections with it are refused at once.\n"
              "    With a failover peer, the peer takes every site registered or removed\n"
              "    here, with its key, within a few seconds: register a site on one\n"
              "    aggregator of the pair only.\n"},
    {NULL, NULL},
};

static const char s_tail[] =
    "    help [COMMAND]\n"
    "        This page, or one command's part of it.\n"
    "\n"
    "OPTIONS\n"
    "    --socket ENDPOINT\n"
    "        The aggregator's control endpoint. Default: control_endpoint from the\n"
    "        configuration file, else ipc:///run/backstop/aggregator.sock.\n"
    "    --config FILE\n"
    "        Where to read control_endpoint (default /etc/backstop/aggregator.conf,\n"
    "        which may be missing; a FILE given that cannot be read is exit 66).\n"
    "    --json\n"
    "        Print the reply as one JSON document instead of tables. A failure prints\n"
    "        {\"error\": TEXT, \"exit\": CODE} on stdout as well as the line on stderr.\n"
    "    --timeout MS\n"
    "        Give up waiting for the aggregator after MS milliseconds (default 5000).\n"
    "    -h, --help\n"
    "        Print this page; after a command, that command's part.\n"
    "    --version\n"
    "        Print the version.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   success\n"
    "    64  EX_USAGE: bad command line, or the aggregator refused the request\n"
    "    65  EX_DATAERR: an invalid value (address, subject, site name), an unknown\n"
    "        decision id, allowlist entry or site, or a site the aggregator does not\n"
    "        know without --force\n"
    "    66  EX_NOINPUT: the --config file cannot be read\n"
    "    69  EX_UNAVAILABLE: the aggregator did not answer within the timeout\n"
    "    70  EX_SOFTWARE: the aggregator failed internally\n"
    "    73  EX_CANTCREAT: sites add could not write the key file\n"
    "    76  EX_PROTOCOL: the reply could not be understood\n"
    "    77  EX_NOPERM: no permission to use the control socket\n"
    "    Other codes come from the aggregator's reply and follow sysexits.h. A --socket\n"
    "    that is not ipc://PATH or tcp://HOST:PORT is exit 64.\n"
    "\n"
    "EXAMPLES\n"
    "    backstop status\n"
    "    backstop decisions\n"
    "    backstop why 7K3M9Q2D\n"
    "    backstop why 'Undeliverable: Cheap meds 123'\n"
    "    backstop why 192.0.2.7\n"
    "    backstop decisions add --scope subject --value 'Cheap meds 123' --ttl 2h \\\n"
    "            --reason 'storm reported by customer'\n"
    "    backstop decisions add --scope ip --value 192.0.2.7 --action tempfail --site acme\n"
    "    backstop decisions del 7K3M9Q2D\n"
    "    backstop top --scope subject --limit 10\n"
    "    backstop allow add --type net --value 198.51.100.0/24 --reason 'our own relays'\n"
    "    backstop sites add acme --key-dir /etc/backstop/keys\n"
    "    backstop --json decisions | jq '.decisions[].id'\n"
    "\n"
    "SEE ALSO\n"
    "    backstop-aggregator(8), backstop-sensor(8), backstop-aggregator.conf(5),\n"
    "    proto/PROTOCOL.md (the control channel)\n";

int cli_help_print(FILE *fp, const char *topic)
{
    if (topic == NULL) {
        fputs(s_head, fp);
        for (const s_section_t *s = s_sections; s->topic; s++)
            fputs(s->text, fp);
        fputs(s_tail, fp);
        return 0;
    }
    for (const s_section_t *s = s_sections; s->topic; s++) {
        if (strcmp(s->topic, topic) == 0) {
            fprintf(fp, "backstop %s - part of backstop(1)\n\nSYNOPSIS AND DESCRIPTION\n%s\n",
                    topic, s->text);
            fputs("    Global options: --socket ENDPOINT, --config FILE, --json, --timeout MS.\n"
                  "    Exit status and examples: backstop --help.\n",
                  fp);
            return 0;
        }
    }
    return -1;
}

void cli_help_usage(FILE *fp)
{
    fputs("usage: backstop [--socket ENDPOINT] [--config FILE] [--json] [--timeout MS] COMMAND "
          "[ARGS]\n"
          "commands: status, decisions, why, top, allow, sites, help (backstop --help)\n",
          fp);
}
