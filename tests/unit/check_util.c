/* check_util.c - durations, addresses, hex. */
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include <check.h>

#include "mtlsproxy.h"
#include "check_suites.h"

static uint64_t
dur(const char *s)
{
	const char	*why = NULL;
	uint64_t	 ms = 0;

	ck_assert_msg(duration_parse(s, &ms, &why) == 0, "%s: %s", s, why);
	return ms;
}

static const char *
dur_err(const char *s)
{
	const char	*why = NULL;
	uint64_t	 ms = 0;

	ck_assert_int_eq(duration_parse(s, &ms, &why), -1);
	return why;
}

START_TEST(test_duration_units)
{
	ck_assert_uint_eq(dur("10s"), 10000);
	ck_assert_uint_eq(dur("10"), 10000);
	ck_assert_uint_eq(dur("250ms"), 250);
	ck_assert_uint_eq(dur("5m"), 300000);
	ck_assert_uint_eq(dur("2h"), 7200000);
	ck_assert_uint_eq(dur("1d"), 86400000);
	ck_assert_uint_eq(dur("0s"), 0);
	ck_assert_uint_eq(dur("1.5s"), 1500);
	ck_assert_uint_eq(dur("0.25m"), 15000);
	ck_assert_uint_eq(dur("1.5"), 1500);
	ck_assert_uint_eq(dur("2.000h"), 7200000);
	/* units in any case, as sizes and enums */
	ck_assert_uint_eq(dur("5S"), 5000);
	ck_assert_uint_eq(dur("250MS"), 250);
	ck_assert_uint_eq(dur("1Ms"), 1);
	ck_assert_uint_eq(dur("5M"), 300000);
	ck_assert_uint_eq(dur("2H"), 7200000);
	ck_assert_uint_eq(dur("1D"), 86400000);
}
END_TEST

START_TEST(test_duration_errors)
{
	ck_assert_str_eq(dur_err("10x"), "unknown unit (use ms, s, m, h or d)");
	ck_assert_str_eq(dur_err("s"), "must start with a number");
	ck_assert_str_eq(dur_err("-5s"), "must start with a number");
	ck_assert_str_eq(dur_err("10 s"), "unknown unit (use ms, s, m, h or d)");
	ck_assert_str_eq(dur_err("99999999999999999999999s"), "too large");
	ck_assert_str_eq(dur_err("1.s"), "a digit must follow the decimal point");
	ck_assert_str_eq(dur_err("1.0005s"), "finer than a millisecond");
	ck_assert_str_eq(dur_err("0.5ms"), "finer than a millisecond");
}
END_TEST

START_TEST(test_addr_ipv4)
{
	struct addr		 a;
	const char		*why = NULL;
	struct sockaddr_in	*sin;

	ck_assert_int_eq(addr_parse("127.0.0.1:8080", 0, &a, &why), 0);
	sin = (struct sockaddr_in *)&a.ss;
	ck_assert_int_eq(a.kind, ADDR_INET);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
	ck_assert(addr_is_loopback(&a));
	ck_assert_str_eq(a.text, "127.0.0.1:8080");
	addr_free(&a);

	ck_assert_int_eq(addr_parse("10.1.2.3:80", 0, &a, &why), 0);
	ck_assert(!addr_is_loopback(&a));
	addr_free(&a);
}
END_TEST

START_TEST(test_addr_ipv6)
{
	struct addr		 a;
	const char		*why = NULL;
	struct sockaddr_in6	*sin6;
	char			 buf[64];

	ck_assert_int_eq(addr_parse("[::1]:8443", 0, &a, &why), 0);
	sin6 = (struct sockaddr_in6 *)&a.ss;
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 8443);
	ck_assert(addr_is_loopback(&a));
	ck_assert_str_eq(sockaddr_str((struct sockaddr *)&a.ss, a.sslen, buf,
	    sizeof(buf)), "[::1]:8443");
	addr_free(&a);

	/* An IPv4-mapped address is taken as the IPv4 address it holds. */
	ck_assert_int_eq(addr_parse("[::ffff:127.0.0.1]:9443",
	    ADDR_ALLOW_WILDCARD, &a, &why), 0);
	ck_assert_int_eq(a.ss.ss_family, AF_INET);
	ck_assert_uint_eq(a.sslen, sizeof(struct sockaddr_in));
	ck_assert(addr_is_loopback(&a));
	ck_assert_str_eq(sockaddr_str((struct sockaddr *)&a.ss, a.sslen, buf,
	    sizeof(buf)), "127.0.0.1:9443");
	addr_free(&a);

	ck_assert_int_eq(addr_parse("::1:8443", 0, &a, &why), -1);
	ck_assert_str_eq(why, "an IPv6 address must be in brackets: [::1]:port");
	ck_assert_int_eq(addr_parse("[::1]8443", 0, &a, &why), -1);
	ck_assert_str_eq(why, "expected [IPv6]:port");
}
END_TEST

START_TEST(test_addr_wildcard_unix_systemd)
{
	struct addr	 a;
	const char	*why = NULL;

	ck_assert_int_eq(addr_parse("0.0.0.0:8443", 0, &a, &why), -1);
	ck_assert_str_eq(why, "a wildcard address is not allowed here");
	ck_assert_int_eq(addr_parse("0.0.0.0:8443", ADDR_ALLOW_WILDCARD, &a,
	    &why), 0);
	addr_free(&a);
	ck_assert_int_eq(addr_parse("[::]:8443", ADDR_ALLOW_WILDCARD, &a,
	    &why), 0);
	addr_free(&a);

	ck_assert_int_eq(addr_parse("unix:/run/app.sock", 0, &a, &why), -1);
	ck_assert_str_eq(why, "a unix socket is not allowed here");
	ck_assert_int_eq(addr_parse("unix:/run/app.sock", ADDR_ALLOW_UNIX, &a,
	    &why), 0);
	ck_assert_int_eq(a.kind, ADDR_UNIX);
	ck_assert(addr_is_loopback(&a));
	ck_assert_str_eq(((struct sockaddr_un *)&a.ss)->sun_path,
	    "/run/app.sock");
	addr_free(&a);
	ck_assert_int_eq(addr_parse("unix:run/app.sock", ADDR_ALLOW_UNIX, &a,
	    &why), -1);

	ck_assert_int_eq(addr_parse("systemd:api", ADDR_ALLOW_SYSTEMD, &a,
	    &why), 0);
	ck_assert_int_eq(a.kind, ADDR_SYSTEMD);
	ck_assert_str_eq(a.name, "api");
	addr_free(&a);
}
END_TEST

START_TEST(test_addr_errors)
{
	struct addr	 a;
	const char	*why = NULL;

	ck_assert_int_eq(addr_parse("127.0.0.1", 0, &a, &why), -1);
	ck_assert_str_eq(why, "expected host:port");
	ck_assert_int_eq(addr_parse("127.0.0.1:http", 0, &a, &why), -1);
	ck_assert_str_eq(why, "port must be a number from 1 to 65535");
	ck_assert_int_eq(addr_parse("127.0.0.1:70000", 0, &a, &why), -1);
	ck_assert_str_eq(why, "port must be a number from 1 to 65535");
	ck_assert_int_eq(addr_parse("127.0.0.1:0", 0, &a, &why), -1);
	ck_assert_str_eq(why, "port 0 is not allowed (it means any free "
	    "port); ports go from 1 to 65535");
	ck_assert_int_eq(addr_parse(":80", 0, &a, &why), -1);
	ck_assert_str_eq(why, "missing host before the port");
}
END_TEST

START_TEST(test_hex_decode)
{
	unsigned char	b[4];

	ck_assert_int_eq(hex_decode("DEADbeef", b, 4), 0);
	ck_assert_uint_eq(b[0], 0xde);
	ck_assert_uint_eq(b[3], 0xef);
	ck_assert_int_eq(hex_decode("de:ad:be:ef", b, 4), 0);
	ck_assert_int_eq(hex_decode("deadbe", b, 4), -1);
	ck_assert_int_eq(hex_decode("deadbeef00", b, 4), -1);
	ck_assert_int_eq(hex_decode("deadbeeg", b, 4), -1);
	ck_assert_int_eq(hex_decode("deadbee", b, 4), -1);
}
END_TEST

START_TEST(test_reload_retry_delay)
{
	static const unsigned	want[] = { 1, 2, 4, 8, 16, 30, 30, 30, 30, 30 };
	unsigned		i;

	ck_assert_uint_eq(RELOAD_RETRIES, 10);
	for (i = 0; i < RELOAD_RETRIES; i++)
		ck_assert_uint_eq(reload_retry_delay(i + 1), want[i]);
	ck_assert_uint_eq(reload_retry_delay(0), 0);
	ck_assert_uint_eq(reload_retry_delay(RELOAD_RETRIES + 1), 0);
}
END_TEST

START_TEST(test_log_due)
{
	time_t	last = 0;

	/* The first time is due; the same minute again is not. */
	ck_assert(log_due(&last, 60));
	ck_assert(last != 0);
	ck_assert(!log_due(&last, 60));
	ck_assert(!log_due(&last, 60));
	/* A minute later it is due again. */
	last -= 60;
	ck_assert(log_due(&last, 60));
	ck_assert(!log_due(&last, 60));
}
END_TEST

Suite *
util_suite(void)
{
	Suite	*s = suite_create("util");
	TCase	*tc = tcase_create("parse");

	tcase_add_test(tc, test_duration_units);
	tcase_add_test(tc, test_duration_errors);
	tcase_add_test(tc, test_addr_ipv4);
	tcase_add_test(tc, test_addr_ipv6);
	tcase_add_test(tc, test_addr_wildcard_unix_systemd);
	tcase_add_test(tc, test_addr_errors);
	tcase_add_test(tc, test_hex_decode);
	tcase_add_test(tc, test_reload_retry_delay);
	tcase_add_test(tc, test_log_due);
	suite_add_tcase(s, tc);
	return s;
}
