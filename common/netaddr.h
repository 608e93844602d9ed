/*
 * netaddr - client IP addresses and networks, IPv4 and IPv6
 *
 * DESCRIPTION
 *   An address is a plain value (family + 16 bytes, IPv4 in the first 4) that
 *   can be copied, compared with memcmp-free helpers and put on the wire as 4
 *   or 16 bytes. Text input may come from Postfix macros and headers, so
 *   "1.2.3.4", "[1.2.3.4]", "2001:db8::1", "IPv6:2001:db8::1" and
 *   "[IPv6:2001:db8::1]" are all accepted. IPv4-mapped IPv6 addresses
 *   (::ffff:192.0.2.1) become the IPv4 address, so one client is one key
 *   whichever socket it came in on.
 *   A client's network is its /24 (IPv4) or /64 (IPv6); CIDR blocks serve
 *   allowlists and internal_networks.
 *
 * DIAGNOSTICS
 *   Invalid text, a wrong wire length or a too small buffer return -1; nothing
 *   here logs, allocates or crashes on bad input. Pure logic, thread-safe.
 */
#ifndef BS_NETADDR_H
#define BS_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text form of an address and of a CIDR block, with the NUL. */
#define NETADDR_STRLEN  46
#define NETADDR_CIDRLEN 50

/* An IPv4 or IPv6 address. */
typedef struct {
    int family;        /* AF_INET or AF_INET6; 0 in a zeroed (invalid) value */
    uint8_t bytes[16]; /* network byte order; IPv4 uses bytes[0..3], the rest zero */
} netaddr_t;

/* A network: address with host bits zero, and prefix length. */
typedef struct {
    netaddr_t addr; /* the network address */
    int prefix;     /* 0..32 for IPv4, 0..128 for IPv6 */
} netaddr_cidr_t;

/* Parses an address in any of the forms above; 0, or -1 (out zeroed). */
int netaddr_parse(netaddr_t *out, const char *text);

/* Formats the canonical text ("192.0.2.1", "2001:db8::1") into buf; 0 or -1. */
int netaddr_format(const netaddr_t *addr, char *buf, size_t len);

/* True when both are the same address. */
bool netaddr_equal(const netaddr_t *a, const netaddr_t *b);

/* The client network of addr: its /24 (IPv4) or /64 (IPv6); 0 or -1 if addr is invalid. */
int netaddr_network(const netaddr_t *addr, netaddr_cidr_t *out);

/* Formats the client network as text ("192.0.2.0/24", "2001:db8:1:2::/64"); 0 or -1. */
int netaddr_network_text(const netaddr_t *addr, char *buf, size_t len);

/*
 * Parses "ADDR/PREFIX" or a bare address (a host: /32 or /128); brackets and
 * "IPv6:" are accepted as in netaddr_parse. Host bits that are set make it
 * invalid (Postfix warns about them too: "1.2.3.4/24" is likely a typo). 0 or -1.
 */
int netaddr_cidr_parse(netaddr_cidr_t *out, const char *text);

/* Formats a block as "ADDR/PREFIX"; 0 or -1. */
int netaddr_cidr_format(const netaddr_cidr_t *cidr, char *buf, size_t len);

/* True when addr is inside the block (families must match). */
bool netaddr_cidr_contains(const netaddr_cidr_t *cidr, const netaddr_t *addr);

/* Reads the wire form: 4 bytes IPv4, 16 bytes IPv6 (mapped IPv4 becomes IPv4); 0 or -1. */
int netaddr_from_wire(netaddr_t *out, const uint8_t *buf, size_t len);

/* The wire form: *buf points into addr, returns its length (4 or 16), or 0 if invalid. */
size_t netaddr_to_wire(const netaddr_t *addr, const uint8_t **buf);

#endif
