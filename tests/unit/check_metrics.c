/*
 * check_metrics.c - the counters and their Prometheus text: every line well
 * formed, label values escaped, counters and gauges carrying the right
 * values, with certificates and CRLs built here with the OpenSSL API.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mtlsproxy.h"
#include "check_suites.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const names[] = { "api", "we\"b\\x\ny" };
#define API	"listener=\"api\""
#define WEB	"listener=\"we\\\"b\\\\x\\ny\""	/* as escaped */
static char	*text;
static size_t	 textlen;

static void
setup(void)
{
	metrics_init(names, NITEMS(names));
	text = NULL;
}

static void
teardown(void)
{
	free(text);
	metrics_free();
}

static void
render(const struct runtime *rt)
{
	free(text);
	text = metrics_render(rt, &textlen);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), textlen);
}

/* The rendered text holds this exact line. */
static void
has_line(const char *line)
{
	char	*want = xasprintf("\n%s\n", line);

	if (strstr(text, want) == NULL)
		fprintf(stderr, "rendered text:\n%s", text);
	ck_assert_msg(strstr(text, want) != NULL, "no line \"%.200s\"", line);
	free(want);
}

/* The line mtlsproxy_NAME{LABELS} VALUE is there. */
static void
has_sample(const char *name, const char *labels, long long value)
{
	char	*line = xasprintf("mtlsproxy_%s{%s} %lld", name, labels, value);

	has_line(line);
	free(line);
}

static void
lacks(const char *s)
{
	if (strstr(text, s) != NULL)
		fprintf(stderr, "rendered text:\n%s", text);
	ck_assert_msg(strstr(text, s) == NULL, "unexpected \"%.200s\"", s);
}

/* A label value as the exposition format wants it. */
static char *
esc(const char *s)
{
	char	*out = xmalloc(strlen(s) * 2 + 1), *p = out;

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			*p++ = '\\';
			*p++ = *s == '\n' ? 'n' : *s;
		} else
			*p++ = *s;
	}
	*p = '\0';
	return out;
}

START_TEST(test_counters)
{
	char	*line;

	metrics_conn_open(0);
	metrics_conn_open(0);
	metrics_conn_open(1);
	metrics_conn_close(0, 10, 20);
	metrics_conn_close(0, 5, 0);
	metrics_handshake(0, NULL);
	metrics_handshake(0, NULL);
	metrics_handshake(0, "policy");
	metrics_handshake(1, "handshake_timeout");
	metrics_handshake(1, "something-new");	/* counted as verify_failed */
	metrics_backend_fail(1);
	metrics_backend_fail(1);
	metrics_verify_cache(0, false);
	metrics_verify_cache(0, true);
	metrics_verify_cache(0, true);
	metrics_verify_cache(7, true);		/* past the table: ignored */
	metrics_http_status(0, 101);
	metrics_http_status(0, 204);
	metrics_http_status(0, 200);
	metrics_http_status(0, 404);
	metrics_http_status(0, 502);
	metrics_http_status(0, 0);		/* no status: ignored */
	metrics_http_status(0, 600);
	metrics_reload(true);
	metrics_reload(false);
	metrics_reload(false);
	metrics_backend_up(0, false);
	metrics_backend_up(0, true);
	/* An index past the table (a listener added later) is ignored. */
	metrics_conn_open(7);
	metrics_handshake(7, "policy");
	render(NULL);

	has_sample("connections_active", API, 0);
	has_sample("connections_active", WEB, 1);
	has_sample("connections_total", API, 2);
	has_sample("handshakes_total", API ",result=\"ok\"", 2);
	has_sample("handshakes_total", API ",result=\"refused\"", 1);
	has_sample("verify_cache_total", API ",result=\"hit\"", 2);
	has_sample("verify_cache_total", API ",result=\"miss\"", 1);
	has_sample("verify_cache_total", WEB ",result=\"hit\"", 0);
	has_sample("handshakes_total", WEB ",result=\"refused\"", 2);
	has_sample("refusals_total", API ",reason=\"policy\"", 1);
	has_sample("refusals_total", API ",reason=\"no_cert\"", 0);
	has_sample("refusals_total", WEB ",reason=\"handshake_timeout\"", 1);
	has_sample("refusals_total", WEB ",reason=\"verify_failed\"", 1);
	has_sample("bytes_received_total", API, 15);
	has_sample("bytes_sent_total", API, 20);
	has_sample("backend_connect_failures_total", API, 0);
	has_sample("backend_connect_failures_total", WEB, 2);
	has_sample("http_requests_total", API ",code=\"1xx\"", 1);
	has_sample("http_requests_total", API ",code=\"2xx\"", 2);
	has_sample("http_requests_total", API ",code=\"3xx\"", 0);
	has_sample("http_requests_total", API ",code=\"4xx\"", 1);
	has_sample("http_requests_total", API ",code=\"5xx\"", 1);
	has_sample("reloads_total", "result=\"ok\"", 1);
	has_sample("backend_up", API, 1);
	lacks("mtlsproxy_backend_up{listener=\"we");	/* not probed yet */
	has_sample("reloads_total", "result=\"failed\"", 2);
	line = xasprintf("mtlsproxy_build_info{version=\"%s\",openssl=\"%s\"} "
	    "1", MTLSPROXY_VERSION, OpenSSL_version(OPENSSL_VERSION));
	has_line(line);
	free(line);
	/* Without a runtime the gauge families are there, empty. */
	has_line("# TYPE mtlsproxy_server_certificate_not_after_seconds gauge");
	lacks("mtlsproxy_server_certificate_not_after_seconds{");
	lacks("mtlsproxy_ca_certificate_not_after_seconds{");
	lacks("mtlsproxy_crl_next_update_seconds{");
}
END_TEST

START_TEST(test_every_reason_declared)
{
	static const char *const codes[] = { "no_cert", "unknown_ca",
	    "expired", "not_yet_valid", "revoked", "crl_expired",
	    "crl_not_yet_valid", "crl_missing", "wrong_purpose",
	    "chain_too_long", "path_length", "weak_crypto", "bad_signature",
	    "invalid_ca", "policy", "tls_error", "handshake_timeout",
	    "verify_failed" };
	char	labels[128];
	size_t	i;

	for (i = 0; i < NITEMS(codes); i++)
		metrics_handshake(0, codes[i]);
	render(NULL);
	for (i = 0; i < NITEMS(codes); i++) {
		snprintf(labels, sizeof(labels), API ",reason=\"%s\"",
		    codes[i]);
		has_sample("refusals_total", labels, 1);
	}
	has_sample("handshakes_total", API ",result=\"refused\"", 18);
}
END_TEST

START_TEST(test_reload_timestamp)
{
	char	*p;
	long long t0, t1;

	render(NULL);
	p = strstr(text, "\nmtlsproxy_last_reload_success_timestamp_seconds ");
	ck_assert_ptr_nonnull(p);
	t0 = strtoll(strchr(p + 1, ' ') + 1, NULL, 10);
	/* Start counts as the last success. */
	ck_assert_int_ge(t0, (long long)time(NULL) - 5);
	metrics_reload(false);
	render(NULL);
	p = strstr(text, "\nmtlsproxy_last_reload_success_timestamp_seconds ");
	t1 = strtoll(strchr(p + 1, ' ') + 1, NULL, 10);
	ck_assert_int_eq(t0, t1);
	p = strstr(text, "\nmtlsproxy_process_start_time_seconds ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(strtoll(strchr(p + 1, ' ') + 1, NULL, 10), t0);
}
END_TEST

/*
 * Every line is a comment (# HELP / # TYPE for a family, each once and
 * before its samples) or a sample: name, optional {k="v",...} with escaped
 * values, one space, a number.
 */
START_TEST(test_text_format)
{
	regex_t	 sample, help, type;
	char	*copy, *line, *save, *name;
	char	 types[64][96];
	size_t	 ntypes = 0, i, nlines = 0;
	bool	 seen;

	metrics_conn_open(1);
	metrics_backend_up(1, false);
	render(NULL);
	ck_assert(textlen > 0 && text[textlen - 1] == '\n');
	ck_assert_int_eq(regcomp(&sample, "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
	    "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
	    "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\})?"
	    " -?[0-9]+(\\.[0-9]+)?$", REG_EXTENDED), 0);
	ck_assert_int_eq(regcomp(&help, "^# HELP mtlsproxy_[a-z_]+ [^\n]+$",
	    REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_int_eq(regcomp(&type, "^# TYPE (mtlsproxy_[a-z_]+) "
	    "(counter|gauge)$", REG_EXTENDED), 0);
	copy = xstrdup(text);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), nlines++) {
		regmatch_t m[2];

		if (strncmp(line, "# HELP ", 7) == 0) {
			ck_assert_msg(regexec(&help, line, 0, NULL, 0) == 0,
			    "bad HELP line: %s", line);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_msg(regexec(&type, line, 2, m, 0) == 0,
			    "bad TYPE line: %s", line);
			for (i = 0; i < ntypes; i++)
				ck_assert_msg(strncmp(types[i],
				    line + m[1].rm_so,
				    (size_t)(m[1].rm_eo - m[1].rm_so)) != 0 ||
				    types[i][m[1].rm_eo - m[1].rm_so] != '\0',
				    "TYPE twice: %s", line);
			ck_assert_uint_lt(ntypes, NITEMS(types));
			snprintf(types[ntypes++], sizeof(types[0]), "%.*s",
			    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
			continue;
		}
		ck_assert_msg(regexec(&sample, line, 2, m, 0) == 0,
		    "bad sample line: \"%s\"", line);
		name = xasprintf("%.*s", (int)(m[1].rm_eo - m[1].rm_so),
		    line + m[1].rm_so);
		for (seen = false, i = 0; i < ntypes; i++)
			seen = seen || strcmp(types[i], name) == 0;
		ck_assert_msg(seen, "sample before its TYPE line: %s", line);
		free(name);
	}
	ck_assert_uint_eq(ntypes, 19);
	ck_assert_uint_gt(nlines, 60);
	free(copy);
	regfree(&sample);
	regfree(&help);
	regfree(&type);
}
END_TEST

/* -- certificates and CRLs for the gauges -- */

static EVP_PKEY	*key;

static X509 *
make_ca(const char *cn, long serial, time_t not_after)
{
	X509		*x = X509_new();
	X509_NAME	*n = X509_NAME_new();

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x),
	    time(NULL) - 3600));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), not_after));
	X509_set_pubkey(x, key);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

static X509_CRL *
make_crl(X509 *ca, time_t next)
{
	X509_CRL	*crl = X509_CRL_new();
	ASN1_TIME	*t = ASN1_TIME_new();
	unsigned char	*der;
	const unsigned char *p;
	int		 len;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	ASN1_TIME_set(t, time(NULL) - 60);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, next);
	X509_CRL_set1_nextUpdate(crl, t);
	ASN1_TIME_free(t);
	ck_assert_int_gt(X509_CRL_sign(crl, key, EVP_sha256()), 0);
	/* Decoded, as from a file: the store tells CRLs apart by that hash. */
	der = NULL;
	len = i2d_X509_CRL(crl, &der);
	ck_assert_int_gt(len, 0);
	X509_CRL_free(crl);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, len);
	ck_assert_ptr_nonnull(crl);
	OPENSSL_free(der);
	return crl;
}

START_TEST(test_runtime_gauges)
{
	const time_t		 t_root = 2000000000, t_odd = 1900000000;
	const time_t		 t_crl_old = 1800000000, t_crl_new = 1800086400;
	struct cfg_listener	 l;
	struct tls_server	 srv;
	struct runtime		 rt;
	X509			*root, *odd;
	X509_CRL		*c1, *c2, *c3;
	X509_STORE		*store;
	char			*subj, *e, *line;

	key = EVP_EC_gen("prime256v1");
	ck_assert_ptr_nonnull(key);
	root = make_ca("Metrics Root", 1, t_root);
	/* A CN with a quote, a backslash and a newline in it. */
	odd = make_ca("Odd \"CA\" \\ with\nnewline", 2, t_odd);
	c1 = make_crl(root, t_crl_old);
	c2 = make_crl(root, t_crl_new);	/* same issuer, newer */
	c3 = make_crl(odd, t_crl_old);

	memset(&l, 0, sizeof(l));
	l.name = "we\"b\\x\ny";
	memset(&srv, 0, sizeof(srv));
	srv.ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(srv.ctx);
	srv.cfg = &l;
	srv.cert_not_after = 1234567890;
	store = SSL_CTX_get_cert_store(srv.ctx);
	X509_STORE_add_cert(store, root);
	X509_STORE_add_cert(store, odd);
	X509_STORE_add_crl(store, c1);
	X509_STORE_add_crl(store, c2);
	X509_STORE_add_crl(store, c3);
	memset(&rt, 0, sizeof(rt));
	rt.servers = &srv;
	rt.nservers = 1;

	render(&rt);
	has_line("mtlsproxy_server_certificate_not_after_seconds{listener="
	    "\"we\\\"b\\\\x\\ny\"} 1234567890");
	has_line("mtlsproxy_ca_certificate_not_after_seconds{listener="
	    "\"we\\\"b\\\\x\\ny\",subject=\"CN=Metrics Root\",serial=\"01\"} "
	    "2000000000");
	/* The subject as the log writes it (RFC 4514), escaped again. */
	subj = x509_name_rfc4514(X509_get_subject_name(odd));
	e = esc(subj);
	line = xasprintf("mtlsproxy_ca_certificate_not_after_seconds{listener="
	    "\"we\\\"b\\\\x\\ny\",subject=\"%s\",serial=\"02\"} 1900000000", e);
	has_line(line);
	free(line);
	/* One series per issuer, with the newest nextUpdate. */
	has_line("mtlsproxy_crl_next_update_seconds{listener=\"we\\\"b\\\\x"
	    "\\ny\",issuer=\"CN=Metrics Root\"} 1800086400");
	lacks("issuer=\"CN=Metrics Root\"} 1800000000");
	line = xasprintf("mtlsproxy_crl_next_update_seconds{listener=\"we\\\"b"
	    "\\\\x\\ny\",issuer=\"%s\"} 1800000000", e);
	has_line(line);
	free(line);
	free(e);
	free(subj);

	SSL_CTX_free(srv.ctx);
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	X509_CRL_free(c3);
	X509_free(root);
	X509_free(odd);
	EVP_PKEY_free(key);
	key = NULL;
}
END_TEST

/* Per backend address: passed over (listeners with several), in use. */
START_TEST(test_backend_passed_over)
{
	struct addr		 addrs[2];
	uint64_t		 down[2];
	int			 active[2] = { 3, 0 };
	struct cfg_listener	 l[2];
	struct tls_server	 srv[2];
	struct backend_state	 st[2];
	struct backend_state	*stp[2] = { &st[0], &st[1] };
	struct runtime		 rt;

	memset(addrs, 0, sizeof(addrs));
	addrs[0].text = "127.0.0.1:8081";
	addrs[1].text = "unix:/run/app.sock";
	memset(l, 0, sizeof(l));
	l[0].name = "api";
	l[0].backend.addrs = addrs;
	l[0].backend.naddrs = 2;
	l[1].name = "one";		/* a single address: no series */
	l[1].backend.addrs = addrs;
	l[1].backend.naddrs = 1;
	memset(srv, 0, sizeof(srv));
	srv[0].cfg = &l[0];
	srv[1].cfg = &l[1];
	down[0] = monotonic_ms() + 10000;	/* failed just now */
	down[1] = monotonic_ms() - 1;		/* failed over 10 s ago */
	memset(st, 0, sizeof(st));
	st[0].down_until = down;
	st[1].down_until = down;
	st[0].active = active;
	st[1].active = active;
	memset(&rt, 0, sizeof(rt));
	rt.servers = srv;
	rt.backends = stp;
	rt.nservers = 2;

	render(&rt);
	has_line("mtlsproxy_backend_address_passed_over{listener=\"api\","
	    "address=\"127.0.0.1:8081\"} 1");
	has_line("mtlsproxy_backend_address_passed_over{listener=\"api\","
	    "address=\"unix:/run/app.sock\"} 0");
	lacks("mtlsproxy_backend_address_passed_over{listener=\"one\"");
	/* Connections in use: every listener's addresses. */
	has_line("mtlsproxy_backend_address_connections{listener=\"api\","
	    "address=\"127.0.0.1:8081\"} 3");
	has_line("mtlsproxy_backend_address_connections{listener=\"api\","
	    "address=\"unix:/run/app.sock\"} 0");
	has_line("mtlsproxy_backend_address_connections{listener=\"one\","
	    "address=\"127.0.0.1:8081\"} 3");
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite	*s = suite_create("metrics");
	TCase	*tc = tcase_create("render");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_backend_passed_over);
	tcase_add_test(tc, test_every_reason_declared);
	tcase_add_test(tc, test_reload_timestamp);
	tcase_add_test(tc, test_text_format);
	tcase_add_test(tc, test_runtime_gauges);
	suite_add_tcase(s, tc);
	return s;
}
