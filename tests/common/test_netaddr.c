/*
 * test_netaddr - address parsing in every Postfix form, formatting, client
 * networks (/24, /64), CIDR blocks, wire form, and bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

/* Accepted text, its canonical form, its family and its client network. */
static const struct {
    const char *text;    /* input */
    const char *canon;   /* netaddr_format */
    int family;          /* AF_INET / AF_INET6 */
    const char *network; /* netaddr_network_text */
} s_good[] = {
    {"192.0.2.1", "192.0.2.1", AF_INET, "192.0.2.0/24"},
    {"[192.0.2.77]", "192.0.2.77", AF_INET, "192.0.2.0/24"},
    {"0.0.0.0", "0.0.0.0", AF_INET, "0.0.0.0/24"},
    {"255.255.255.255", "255.255.255.255", AF_INET, "255.255.255.0/24"},
    {"2001:db8:1:2::1", "2001:db8:1:2::1", AF_INET6, "2001:db8:1:2::/64"},
    {"2001:DB8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6", AF_INET6, "2001:db8:1:2::/64"},
    {"IPv6:2001:db8::1", "2001:db8::1", AF_INET6, "2001:db8::/64"},
    {"ipv6:2001:db8::1", "2001:db8::1", AF_INET6, "2001:db8::/64"},
    {"[IPv6:2001:db8:ffff:1:2::]", "2001:db8:ffff:1:2::", AF_INET6, "2001:db8:ffff:1::/64"},
    {"[::1]", "::1", AF_INET6, "::/64"},
    /* mapped IPv4 is the IPv4 client */
    {"::ffff:198.51.100.9", "198.51.100.9", AF_INET, "198.51.100.0/24"},
    {"IPv6:::ffff:198.51.100.9", "198.51.100.9", AF_INET, "198.51.100.0/24"},
};

static void test_good_addresses_parse_and_format(void **state)
{
    for (size_t i = 0; i < sizeof(s_good) / sizeof(s_good[0]); i++) {
        netaddr_t a;
        char buf[NETADDR_STRLEN], net[NETADDR_CIDRLEN];
        if (netaddr_parse(&a, s_good[i].text) != 0)
            fail_msg("\"%s\" rejected", s_good[i].text);
        assert_int_equal(a.family, s_good[i].family);
        assert_int_equal(netaddr_format(&a, buf, sizeof(buf)), 0);
        if (strcmp(buf, s_good[i].canon) != 0)
            fail_msg("\"%s\" formats as \"%s\"", s_good[i].text, buf);
        assert_int_equal(netaddr_network_text(&a, net, sizeof(net)), 0);
        if (strcmp(net, s_good[i].network) != 0)
            fail_msg("\"%s\" network \"%s\"", s_good[i].text, net);
    }
}

static const char *const s_bad[] = {
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "[1.2.3.4",
    "1.2.3.4]",
    "[]",
    "[",
    "IPv6:",
    "IPv6:1.2.3.4",
    "2001:db8::1::2",
    "2001:db8:0:0:0:0:0:0:1",
    "fe80::1%eth0",
    "gggg::1",
    "example.com",
    "unknown",
    "1.2.3.4/24",
    "1111111111111111111111111111111111111111111111111111111111111111111111111",
    "\xff\xfe",
};

static void test_bad_addresses_are_rejected(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad) / sizeof(s_bad[0]); i++) {
        netaddr_t a;
        memset(&a, 0x55, sizeof(a));
        if (netaddr_parse(&a, s_bad[i]) != -1)
            fail_msg("\"%s\" accepted", s_bad[i]);
        assert_int_equal(a.family, 0);
    }
    netaddr_t a;
    assert_int_equal(netaddr_parse(&a, NULL), -1);
}

static void test_invalid_value_does_not_format(void **state)
{
    netaddr_t a = {0};
    char buf[NETADDR_STRLEN];
    netaddr_cidr_t net;
    const uint8_t *w;
    assert_int_equal(netaddr_format(&a, buf, sizeof(buf)), -1);
    assert_int_equal(netaddr_network(&a, &net), -1);
    assert_int_equal(netaddr_network_text(&a, buf, sizeof(buf)), -1);
    assert_int_equal(netaddr_to_wire(&a, &w), 0);
}

static void test_small_buffer_is_an_error(void **state)
{
    netaddr_t a;
    char buf[8];
    assert_int_equal(netaddr_parse(&a, "2001:db8::1"), 0);
    assert_int_equal(netaddr_format(&a, buf, sizeof(buf)), -1);
    assert_int_equal(netaddr_parse(&a, "192.0.2.1"), 0);
    assert_int_equal(netaddr_network_text(&a, buf, sizeof(buf)), -1);
}

/* A block, an address, and whether the block contains it. */
static const struct {
    const char *cidr; /* block */
    const char *addr; /* address */
    bool inside;      /* netaddr_cidr_contains */
} s_contains[] = {
    {"192.0.2.0/24", "192.0.2.255", true},
    {"192.0.2.0/24", "192.0.3.0", false},
    {"10.0.0.0/8", "10.200.1.1", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"192.0.2.128/25", "192.0.2.129", true},
    {"192.0.2.128/25", "192.0.2.127", false},
    {"0.0.0.0/0", "203.0.113.5", true},
    {"0.0.0.0/0", "2001:db8::1", false},
    {"192.0.2.7", "192.0.2.7", true},
    {"192.0.2.7", "192.0.2.8", false},
    {"[192.0.2.7]/32", "192.0.2.7", true},
    {"2001:db8::/32", "2001:db8:ffff::1", true},
    {"2001:db8::/32", "2001:db9::1", false},
    {"[2001:db8::]/32", "IPv6:2001:db8::5", true},
    {"2001:db8:1:2::/64", "2001:db8:1:2:ffff::1", true},
    {"2001:db8:1:2::/64", "2001:db8:1:3::1", false},
    {"::1", "::1", true},
    {"::/0", "192.0.2.1", false},
    {"::ffff:192.0.2.0/120", "192.0.2.9", true},
    {"192.0.2.0/24", "::ffff:192.0.2.9", true},
};

static void test_cidr_contains(void **state)
{
    for (size_t i = 0; i < sizeof(s_contains) / sizeof(s_contains[0]); i++) {
        netaddr_cidr_t c;
        netaddr_t a;
        if (netaddr_cidr_parse(&c, s_contains[i].cidr) != 0)
            fail_msg("block \"%s\" rejected", s_contains[i].cidr);
        assert_int_equal(netaddr_parse(&a, s_contains[i].addr), 0);
        if (netaddr_cidr_contains(&c, &a) != s_contains[i].inside)
            fail_msg("%s in %s: want %d", s_contains[i].addr, s_contains[i].cidr,
                     s_contains[i].inside);
    }
}

static const struct {
    const char *text;  /* input */
    const char *canon; /* netaddr_cidr_format */
} s_cidr_format[] = {
    {"192.0.2.0/24", "192.0.2.0/24"},         {"192.0.2.1", "192.0.2.1/32"},
    {"2001:DB8::/32", "2001:db8::/32"},       {"::1", "::1/128"},
    {"::ffff:192.0.2.0/120", "192.0.2.0/24"}, {"0.0.0.0/0", "0.0.0.0/0"},
};

static void test_cidr_formats_canonically(void **state)
{
    for (size_t i = 0; i < sizeof(s_cidr_format) / sizeof(s_cidr_format[0]); i++) {
        netaddr_cidr_t c;
        char buf[NETADDR_CIDRLEN];
        assert_int_equal(netaddr_cidr_parse(&c, s_cidr_format[i].text), 0);
        assert_int_equal(netaddr_cidr_format(&c, buf, sizeof(buf)), 0);
        assert_string_equal(buf, s_cidr_format[i].canon);
    }
}

static const char *const s_bad_cidr[] = {
    "",
    "/24",
    "192.0.2.0/",
    "192.0.2.0/33",
    "192.0.2.0/-1",
    "192.0.2.0/2x",
    "192.0.2.0/0024",
    "192.0.2.1/24", /* host bits */
    "2001:db8::1/64",
    "2001:db8::/129",
    "192.0.2.0/24/1",
    "[192.0.2.0/24]",
    "example.com/24",
    "IPv6:192.0.2.0/24",
};

static void test_bad_cidr_is_rejected(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad_cidr) / sizeof(s_bad_cidr[0]); i++) {
        netaddr_cidr_t c;
        if (netaddr_cidr_parse(&c, s_bad_cidr[i]) != -1)
            fail_msg("\"%s\" accepted", s_bad_cidr[i]);
    }
    netaddr_cidr_t c;
    assert_int_equal(netaddr_cidr_parse(&c, NULL), -1);
    netaddr_t a;
    assert_int_equal(netaddr_parse(&a, "192.0.2.1"), 0);
    assert_false(netaddr_cidr_contains(&c, &a)); /* a zeroed block contains nothing */
}

static void test_client_network_is_a_block_containing_it(void **state)
{
    netaddr_t a, b;
    netaddr_cidr_t net;
    assert_int_equal(netaddr_parse(&a, "2001:db8:aa:bb:cc::1"), 0);
    assert_int_equal(netaddr_network(&a, &net), 0);
    assert_int_equal(net.prefix, 64);
    assert_true(netaddr_cidr_contains(&net, &a));
    assert_int_equal(netaddr_parse(&b, "2001:db8:aa:bc::1"), 0);
    assert_false(netaddr_cidr_contains(&net, &b));
    assert_int_equal(netaddr_parse(&a, "198.51.100.200"), 0);
    assert_int_equal(netaddr_network(&a, &net), 0);
    assert_int_equal(net.prefix, 24);
    assert_int_equal(net.addr.bytes[3], 0);
}

static void test_wire_round_trip(void **state)
{
    static const char *const texts[] = {"192.0.2.1", "2001:db8::1", "::1", "0.0.0.0"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        netaddr_t a, b;
        const uint8_t *w;
        assert_int_equal(netaddr_parse(&a, texts[i]), 0);
        size_t n = netaddr_to_wire(&a, &w);
        assert_int_equal(n, a.family == AF_INET ? 4 : 16);
        assert_int_equal(netaddr_from_wire(&b, w, n), 0);
        assert_true(netaddr_equal(&a, &b));
    }
}

static void test_wire_rejects_bad_length_and_unmaps(void **state)
{
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    netaddr_t a, b;
    assert_int_equal(netaddr_from_wire(&a, mapped, 0), -1);
    assert_int_equal(netaddr_from_wire(&a, mapped, 5), -1);
    assert_int_equal(netaddr_from_wire(&a, mapped, 17), -1);
    assert_int_equal(netaddr_from_wire(&a, NULL, 4), -1);
    assert_int_equal(netaddr_from_wire(&a, mapped, 16), 0);
    assert_int_equal(netaddr_parse(&b, "192.0.2.1"), 0);
    assert_true(netaddr_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_addresses_parse_and_format),
        cmocka_unit_test(test_bad_addresses_are_rejected),
        cmocka_unit_test(test_invalid_value_does_not_format),
        cmocka_unit_test(test_small_buffer_is_an_error),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_cidr_formats_canonically),
        cmocka_unit_test(test_bad_cidr_is_rejected),
        cmocka_unit_test(test_client_network_is_a_block_containing_it),
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_wire_rejects_bad_length_and_unmaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
