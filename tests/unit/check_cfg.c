/* check_cfg.c - config loading: values, defaults, and every error message. */
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>
#include <unistd.h>

#include <check.h>

#include "mtlsproxy.h"
#include "check_suites.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static struct errlist	 errs;
static struct cfg	*cfg;

static void
setup(void)
{
	memset(&errs, 0, sizeof(errs));
	cfg = NULL;
}

static void
teardown(void)
{
	cfg_free(cfg);
	cfg = NULL;
	errlist_free(&errs);
}

/*
 * Load a config that must fail with exactly these messages, in order: file
 * order (errlist_add sorts by line and column).
 */
static void
expect_errors(const char *path, const char *const *want, size_t n)
{
	size_t	i;

	cfg = cfg_load(path, &errs);
	ck_assert_ptr_null(cfg);
	for (i = 0; i < n && i < errs.n; i++)
		ck_assert_str_eq(errs.v[i], want[i]);
	for (; i < errs.n; i++)
		ck_abort_msg("unexpected extra error: %s", errs.v[i]);
	ck_assert_uint_eq(errs.n, n);
}

#define EXPECT(path, ...) do {						\
	const char *const want_[] = { __VA_ARGS__ };			\
	expect_errors(path, want_, NITEMS(want_));			\
} while (0)

/* Load a config that must succeed. */
static struct cfg *
load_ok(const char *path)
{
	cfg = cfg_load(path, &errs);
	ck_assert_msg(cfg != NULL, "%s: %s", path,
	    errs.n > 0 ? errs.v[0] : "NULL without an error");
	ck_assert_uint_eq(errs.n, 0);
	return cfg;
}

static unsigned
port_of(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static unsigned
ncpus(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

START_TEST(test_full_config)
{
	const struct cfg_listener	*l;
	const struct cfg_allow		*a;
	static const unsigned char	 fp0[FINGERPRINT_LEN] = {
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89
	};
	static const unsigned char	 fp1[FINGERPRINT_LEN] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff
	};

	load_ok("data/good_full.yaml");
	ck_assert_str_eq(cfg->path, "data/good_full.yaml");
	ck_assert_uint_eq(cfg->workers, 3);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 45000);
	ck_assert_uint_eq(cfg->ticket_rotation_ms, 2 * 3600 * 1000);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);
	ck_assert(!cfg->log_access);
	ck_assert_uint_eq(cfg->nlisteners, 2);

	l = &cfg->listeners[0];
	ck_assert_str_eq(l->name, "api");
	ck_assert_uint_eq(l->loc.line, 9);
	ck_assert_uint_eq(l->loc.col, 5);
	ck_assert_int_eq(l->listen.kind, ADDR_INET);
	ck_assert_str_eq(l->listen.text, "0.0.0.0:8443");
	ck_assert_int_eq(l->listen.ss.ss_family, AF_INET);
	ck_assert_uint_eq(port_of(&l->listen), 8443);
	ck_assert_uint_eq(l->listen_loc.line, 10);
	ck_assert_uint_eq(l->listen_loc.col, 13);

	/* Relative paths: from the config's directory, except passphrases. */
	ck_assert_str_eq(l->tls.cert.path, "data/certs/server.crt");
	ck_assert_uint_eq(l->tls.cert.loc.line, 12);
	ck_assert_uint_eq(l->tls.cert.loc.col, 13);
	ck_assert_str_eq(l->tls.key.path, "/etc/mtlsproxy/server.key");
	ck_assert_str_eq(l->tls.key_passphrase_file.path, "key.pass");
	ck_assert_ptr_null(l->tls.pkcs12.path);
	ck_assert_ptr_null(l->tls.pkcs12_passphrase_file.path);
	ck_assert_int_eq(l->tls.min_version, TLS1_3_VERSION);
	ck_assert_str_eq(l->tls.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
	ck_assert_uint_eq(l->tls.ciphers_loc.line, 16);
	ck_assert_uint_eq(l->tls.ciphers_loc.col, 16);
	ck_assert_str_eq(l->tls.ciphersuites, "TLS_AES_256_GCM_SHA384");
	ck_assert_str_eq(l->tls.groups, "X25519:P-256");
	ck_assert(!l->tls.session_tickets);
	ck_assert_uint_eq(l->tls.loc.line, 12);
	ck_assert_uint_eq(l->tls.loc.col, 7);

	ck_assert_str_eq(l->client_auth.ca.path, "data/client-ca.pem");
	ck_assert_uint_eq(l->client_auth.n_trusted_certs, 2);
	ck_assert_str_eq(l->client_auth.trusted_certs[0].path,
	    "data/partner.crt");
	ck_assert_uint_eq(l->client_auth.trusted_certs[0].loc.line, 22);
	ck_assert_uint_eq(l->client_auth.trusted_certs[0].loc.col, 23);
	ck_assert_str_eq(l->client_auth.trusted_certs[1].path,
	    "/etc/mtlsproxy/other.crt");
	ck_assert_str_eq(l->client_auth.crl.path,
	    "/etc/mtlsproxy/client-ca.crl");
	ck_assert_int_eq(l->client_auth.verify_depth, 2);
	ck_assert(l->client_auth.partial_chain);
	ck_assert_int_eq(l->client_auth.client_eku, CLIENT_EKU_REQUIRED);

	a = &l->client_auth.allow;
	ck_assert_uint_eq(a->loc.line, 28);
	ck_assert_uint_eq(a->subject_cn.n, 2);
	ck_assert_str_eq(a->subject_cn.v[0], "orders");
	ck_assert_str_eq(a->subject_cn.v[1], "billing");
	ck_assert_uint_eq(a->subject_ou.n, 1);
	ck_assert_str_eq(a->subject_ou.v[0], "ops");
	ck_assert_uint_eq(a->subject_o.n, 0);
	ck_assert_uint_eq(a->san_dns.n, 1);
	ck_assert_str_eq(a->san_dns.v[0], "orders.internal");
	ck_assert_uint_eq(a->san_uri.n, 1);
	ck_assert_str_eq(a->san_uri.v[0], "spiffe://corp.example/ns/prod/*");
	ck_assert_uint_eq(a->san_email.n, 0);
	ck_assert_uint_eq(a->n_fingerprint_sha256, 2);
	ck_assert_mem_eq(a->fingerprint_sha256[0], fp0, FINGERPRINT_LEN);
	ck_assert_mem_eq(a->fingerprint_sha256[1], fp1, FINGERPRINT_LEN);
	/* Each list's place, for `mtlsproxy check` warnings. */
	ck_assert_uint_eq(a->subject_cn_loc.line, 28);
	ck_assert_uint_eq(a->subject_cn_loc.col, 21);
	ck_assert_uint_eq(a->subject_ou_loc.line, 29);
	ck_assert_uint_eq(a->san_uri_loc.line, 32);
	ck_assert_uint_eq(a->san_uri_loc.col, 18);
	ck_assert_uint_eq(a->fingerprint_sha256_loc.line, 35);
	ck_assert_uint_eq(a->san_email_loc.line, 33);

	ck_assert_uint_eq(l->backend.naddrs, 3);
	ck_assert_int_eq(l->backend.addrs[0].kind, ADDR_INET);
	ck_assert_uint_eq(port_of(&l->backend.addrs[0]), 8080);
	ck_assert_int_eq(l->backend.addrs[1].kind, ADDR_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&l->backend.addrs[1].ss)->
	    sun_path, "/run/app.sock");
	ck_assert_int_eq(l->backend.addrs[2].kind, ADDR_INET);
	ck_assert_int_eq(l->backend.addrs[2].ss.ss_family, AF_INET6);
	ck_assert_uint_eq(port_of(&l->backend.addrs[2]), 9090);
	ck_assert(!l->backend.remote);
	ck_assert_int_eq(l->backend.mode, BACKEND_TCP);
	ck_assert(l->backend.proxy_protocol);
	ck_assert_uint_eq(l->backend.connect_timeout_ms, 250);
	ck_assert_uint_eq(l->handshake_timeout_ms, 5000);
	ck_assert_uint_eq(l->idle_timeout_ms, 120000);
	ck_assert_uint_eq(l->backend_timeout_ms, 90000);
	ck_assert_uint_eq(l->max_connections, 500);
	ck_assert_uint_eq(l->max_header_size, 8192);

	/* The second listener leaves most keys to their defaults. */
	l = &cfg->listeners[1];
	ck_assert_str_eq(l->name, "partner");
	ck_assert_int_eq(l->listen.kind, ADDR_SYSTEMD);
	ck_assert_str_eq(l->listen.name, "partner");
	ck_assert_ptr_null(l->tls.cert.path);
	ck_assert_ptr_null(l->tls.key.path);
	ck_assert_str_eq(l->tls.pkcs12.path, "/etc/mtlsproxy/server.p12");
	ck_assert_str_eq(l->tls.pkcs12_passphrase_file.path, "p12.pass");
	ck_assert_int_eq(l->tls.min_version, TLS1_2_VERSION);
	ck_assert_ptr_null(l->tls.ciphers);
	ck_assert(l->tls.session_tickets);
	ck_assert_ptr_null(l->client_auth.ca.path);
	ck_assert_uint_eq(l->client_auth.n_trusted_certs, 1);
	ck_assert_str_eq(l->client_auth.trusted_certs[0].path,
	    "data/partner.crt");
	ck_assert_int_eq(l->client_auth.verify_depth, 4);
	ck_assert(!l->client_auth.partial_chain);
	ck_assert_int_eq(l->client_auth.client_eku, CLIENT_EKU_IF_PRESENT);
	ck_assert_uint_eq(l->client_auth.allow.subject_cn.n, 0);
	ck_assert_uint_eq(l->client_auth.allow.n_fingerprint_sha256, 0);
	ck_assert_uint_eq(l->backend.naddrs, 1);
	ck_assert_str_eq(l->backend.addrs[0].text, "10.0.0.5:8080");
	ck_assert(l->backend.remote);
	ck_assert_uint_eq(l->backend.connect_timeout_ms, 5000);
	ck_assert_uint_eq(l->handshake_timeout_ms, 10000);
	ck_assert_uint_eq(l->idle_timeout_ms, 300000);
	ck_assert_uint_eq(l->max_connections, 10000);
}
END_TEST

START_TEST(test_defaults)
{
	const struct cfg_listener	*l;

	load_ok("data/good_minimal.yaml");
	ck_assert_uint_eq(cfg->workers, ncpus());
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	ck_assert(cfg->log_access);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->ticket_rotation_ms, 3600 * 1000);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	l = &cfg->listeners[0];
	ck_assert_uint_eq(l->loc.line, 2);
	ck_assert_uint_eq(l->loc.col, 5);
	ck_assert_uint_eq(port_of(&l->listen), 8443);
	ck_assert_int_eq(l->tls.min_version, TLS1_2_VERSION);
	ck_assert(l->tls.session_tickets);
	ck_assert_ptr_null(l->tls.ciphers);
	ck_assert_ptr_null(l->tls.ciphersuites);
	ck_assert_ptr_null(l->tls.groups);
	ck_assert_ptr_null(l->tls.key_passphrase_file.path);
	ck_assert_uint_eq(l->client_auth.n_trusted_certs, 0);
	ck_assert_ptr_null(l->client_auth.crl.path);
	ck_assert_int_eq(l->client_auth.verify_depth, 4);
	ck_assert(!l->client_auth.partial_chain);
	ck_assert_int_eq(l->client_auth.client_eku, CLIENT_EKU_IF_PRESENT);
	ck_assert_uint_eq(l->backend.naddrs, 1);
	ck_assert(!l->backend.remote);
	ck_assert_int_eq(l->backend.mode, BACKEND_TCP);
	ck_assert(!l->backend.proxy_protocol);
	ck_assert_uint_eq(l->backend.connect_timeout_ms, 5000);
	ck_assert_uint_eq(l->handshake_timeout_ms, 10000);
	ck_assert_uint_eq(l->idle_timeout_ms, 300000);
	ck_assert_uint_eq(l->backend_timeout_ms, 60000);
	ck_assert_uint_eq(l->max_connections, 10000);
	ck_assert_uint_eq(l->max_header_size, 16384);
	ck_assert_int_eq(l->headers.preset, HEADERS_DEFAULT);
	ck_assert(l->headers.forwarded);
	ck_assert_ptr_null(l->headers.verify);
	ck_assert_ptr_null(l->headers.subject);
	ck_assert_ptr_null(l->headers.issuer);
	ck_assert_ptr_null(l->headers.serial);
	ck_assert_ptr_null(l->headers.fingerprint);
	ck_assert_ptr_null(l->headers.san_dns);
	ck_assert_ptr_null(l->headers.san_uri);
	ck_assert_ptr_null(l->headers.cert);
	ck_assert_ptr_null(l->headers.xfcc);
}
END_TEST

START_TEST(test_http_config)
{
	const struct cfg_listener	*l;

	load_ok("data/good_http.yaml");
	ck_assert_uint_eq(cfg->nlisteners, 4);

	l = &cfg->listeners[0];
	ck_assert_int_eq(l->backend.mode, BACKEND_HTTP);
	ck_assert(!l->backend.proxy_protocol);
	ck_assert_int_eq(l->headers.preset, HEADERS_NGINX);
	ck_assert_uint_eq(l->headers.loc.line, 15);
	ck_assert_uint_eq(l->headers.loc.col, 7);
	ck_assert_str_eq(l->headers.subject, "X-Subject-DN");
	ck_assert_str_eq(l->headers.cert, "");		/* not sent */
	ck_assert_str_eq(l->headers.issuer, "");	/* empty: not sent */
	ck_assert_str_eq(l->headers.san_uri, "X-SSL-Client-SAN-URI");
	ck_assert_ptr_null(l->headers.verify);		/* the preset's */
	ck_assert_ptr_null(l->headers.xfcc);
	ck_assert(!l->headers.forwarded);
	ck_assert_uint_eq(l->backend_timeout_ms, 120000);
	ck_assert_uint_eq(l->max_header_size, 64 * 1024);

	l = &cfg->listeners[1];
	ck_assert_int_eq(l->headers.preset, HEADERS_ENVOY);
	ck_assert_str_eq(l->headers.xfcc, "X-Client-XFCC");
	ck_assert(l->headers.forwarded);
	ck_assert_uint_eq(l->backend_timeout_ms, 60000);
	ck_assert_uint_eq(l->max_header_size, 1024 * 1024);

	l = &cfg->listeners[2];
	ck_assert_int_eq(l->headers.preset, HEADERS_DEFAULT);
	ck_assert(l->headers.forwarded);
	ck_assert_ptr_null(l->headers.subject);
	ck_assert_uint_eq(l->max_header_size, 1024);

	l = &cfg->listeners[3];
	ck_assert_int_eq(l->backend.mode, BACKEND_HTTP);
	ck_assert_uint_eq(l->max_header_size, 32 * 1024);
}
END_TEST

START_TEST(test_fd_need)
{
	struct cfg_listener	ls[2];
	struct cfg		c;

	memset(&c, 0, sizeof(c));
	memset(ls, 0, sizeof(ls));
	c.workers = 2;
	c.listeners = ls;
	c.nlisteners = 2;
	ls[0].backend.mode = BACKEND_TCP;
	ls[0].max_connections = 100;
	ls[1].backend.mode = BACKEND_HTTP;
	ls[1].max_connections = 50;
	ls[1].backend.keepalive = 8;
	/*
	 * Reserve, 4 per worker; per listener one listening socket per worker
	 * and per connection two in tcp mode (client and backend), one in
	 * http mode (backend connections come and go with requests), plus
	 * each worker's idle backend pool.
	 */
	ck_assert_uint_eq(cfg_fd_per_conn(&ls[0]), 2);
	ck_assert_uint_eq(cfg_fd_per_conn(&ls[1]), 1);
	ck_assert_uint_eq(cfg_fd_fixed(&c), CFG_FD_RESERVE + 8 + 2 + (2 + 16));
	ck_assert_uint_eq(cfg_fd_need(&c), CFG_FD_RESERVE + 8 + (200 + 2) +
	    (50 + 2 + 16));
	c.nlisteners = 0;
	ck_assert_uint_eq(cfg_fd_need(&c), CFG_FD_RESERVE + 8);
}
END_TEST

START_TEST(test_mode_http)
{
	/* mode: http alone: the default preset, forwarded headers on. */
	load_ok("data/mode_http.yaml");
	ck_assert_int_eq(cfg->listeners[0].backend.mode, BACKEND_HTTP);
	ck_assert_int_eq(cfg->listeners[0].headers.preset, HEADERS_DEFAULT);
	ck_assert(cfg->listeners[0].headers.forwarded);
	ck_assert_uint_eq(cfg->listeners[0].max_header_size, 16384);
}
END_TEST

START_TEST(test_proxy_protocol)
{
	load_ok("data/proxy_protocol.yaml");
	ck_assert_int_eq(cfg->listeners[0].backend.mode, BACKEND_TCP);
	ck_assert(cfg->listeners[0].backend.proxy_protocol);
}
END_TEST

START_TEST(test_booleans)
{
	load_ok("data/good_booleans.yaml");
	ck_assert(!cfg->log_access);
	ck_assert(!cfg->listeners[0].tls.session_tickets);
	ck_assert(cfg->listeners[0].client_auth.partial_chain);
	ck_assert(cfg->listeners[0].backend.remote);
	ck_assert(cfg->listeners[1].tls.session_tickets);
	ck_assert(!cfg->listeners[1].client_auth.partial_chain);
	ck_assert_int_eq(cfg->listeners[1].listen.ss.ss_family, AF_INET6);
}
END_TEST

START_TEST(test_relative_to_cwd)
{
	/* A config named without a directory: paths stay as written. */
	ck_assert_int_eq(chdir("data"), 0);
	cfg = cfg_load("good_full.yaml", &errs);
	ck_assert_int_eq(chdir(".."), 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->listeners[0].tls.cert.path, "certs/server.crt");
	ck_assert_str_eq(cfg->listeners[0].client_auth.ca.path,
	    "client-ca.pem");
}
END_TEST

START_TEST(test_cfg_error_format)
{
	struct cfg_loc	loc;

	load_ok("data/good_minimal.yaml");
	loc = cfg->listeners[0].tls.key.loc;
	cfg_error(&errs, cfg, loc, "key does not match certificate %s",
	    "server.crt");
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.v[0], "data/good_minimal.yaml:6:12: key does "
	    "not match certificate server.crt");
}
END_TEST

START_TEST(test_example_config)
{
	/* The shipped, documented example must load as it is. */
	load_ok("../../conf/mtlsproxy.yaml");
	ck_assert_uint_eq(cfg->nlisteners, 1);
	ck_assert_str_eq(cfg->listeners[0].tls.cert.path,
	    "/etc/mtlsproxy/server.crt");
	ck_assert_uint_eq(cfg->listeners[0].max_connections, 10000);
	ck_assert_int_eq(cfg->listeners[0].backend.mode, BACKEND_HTTP);
	ck_assert_int_eq(cfg->listeners[0].headers.preset, HEADERS_DEFAULT);
	ck_assert_ptr_null(cfg->listeners[0].headers.subject);
	ck_assert(cfg->listeners[0].headers.forwarded);
	ck_assert_uint_eq(cfg->listeners[0].backend_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->listeners[0].max_header_size, 16384);
}
END_TEST

START_TEST(test_free_null)
{
	cfg_free(NULL);
}
END_TEST

START_TEST(test_unreadable)
{
	EXPECT("data/does_not_exist.yaml",
	    "data/does_not_exist.yaml: cannot read config: No such file or "
	    "directory");
	errlist_free(&errs);
	EXPECT("data", "data: cannot read config: Is a directory");
}
END_TEST

START_TEST(test_syntax_error)
{
	EXPECT("data/syntax.yaml",
	    "data/syntax.yaml:4:4: YAML syntax error: did not find expected "
	    "'-' indicator while parsing a block collection that started at "
	    "line 2 (check the indentation of this line and the one before, "
	    "and for an unclosed quote)");
}
END_TEST

START_TEST(test_syntax_mapping)
{
	EXPECT("data/syntax_mapping.yaml",
	    "data/syntax_mapping.yaml:3:22: YAML syntax error: mapping values "
	    "are not allowed in this context (check the indentation of this "
	    "line and the one before, and for an unclosed quote)");
}
END_TEST

/* libyaml reads UTF-16 with a byte order mark; without one it is noise. */
START_TEST(test_utf16)
{
	EXPECT("data/utf16_nobom.yaml",
	    "data/utf16_nobom.yaml:1:1: the file is UTF-16 (without a byte "
	    "order mark); save it as UTF-8");
	teardown();
	load_ok("data/utf16_bom.yaml");
	ck_assert_str_eq(cfg->listeners[0].name, "api");
}
END_TEST

START_TEST(test_syntax_tab)
{
	EXPECT("data/syntax_tab.yaml",
	    "data/syntax_tab.yaml:3:1: YAML syntax error: found a tab "
	    "character that violates indentation while scanning a plain "
	    "scalar that started at line 2 (indent with spaces: YAML does "
	    "not allow tabs)");
}
END_TEST

START_TEST(test_empty)
{
	EXPECT("data/empty.yaml",
	    "data/empty.yaml:1:1: the config is empty; it needs at least "
	    "\"listeners\"");
}
END_TEST

START_TEST(test_root_not_mapping)
{
	EXPECT("data/root_list.yaml",
	    "data/root_list.yaml:1:1: the config must be a mapping of keys "
	    "(workers, log, drain_timeout, session_ticket_rotation, listeners, "
	    "reload, user, group, admin), got a list");
}
END_TEST

/* "<<" is a plain key to libyaml: the keys it would merge are missing. */
START_TEST(test_merge_key)
{
	EXPECT("data/merge_key.yaml",
	    "data/merge_key.yaml:2:1: unknown key \"x-common\" at top level; "
	    "valid keys are: workers, log, drain_timeout, "
	    "session_ticket_rotation, listeners, reload, user, group, admin",
	    "data/merge_key.yaml:8:5: YAML merge keys (<<) are not supported; "
	    "write the keys out");
}
END_TEST

START_TEST(test_admin_empty)
{
	EXPECT("data/admin_empty.yaml",
	    "data/admin_empty.yaml:1:8: missing required key \"listen\" in "
	    "\"admin\"");
}
END_TEST

START_TEST(test_two_documents)
{
	EXPECT("data/two_documents.yaml",
	    "data/two_documents.yaml:11:1: only one YAML document is "
	    "allowed; remove this \"---\" and what follows");
}
END_TEST

START_TEST(test_unknown_key)
{
	EXPECT("data/unknown_key.yaml",
	    "data/unknown_key.yaml:7:5: unknown key \"lisen\" in listener "
	    "\"api\" (did you mean \"listen\"?)");
}
END_TEST

START_TEST(test_unknown_key_top)
{
	EXPECT("data/unknown_key_top.yaml",
	    "data/unknown_key_top.yaml:1:1: unknown key \"frobnicate\" at top "
	    "level; valid keys are: workers, log, drain_timeout, "
	    "session_ticket_rotation, listeners, reload, user, group, admin");
}
END_TEST

START_TEST(test_unknown_key_nested)
{
	EXPECT("data/unknown_key_nested.yaml",
	    "data/unknown_key_nested.yaml:5:7: unknown key \"cert_file\" in "
	    "\"tls\" of listener \"api\" (did you mean \"cert\"?)",
	    "data/unknown_key_nested.yaml:11:9: unknown key \"subject_dn\" in "
	    "\"client_auth.allow\" of listener \"api\" (did you mean "
	    "\"subject_cn\"?)",
	    "data/unknown_key_nested.yaml:15:3: unknown key \"levle\" in "
	    "\"log\" (did you mean \"level\"?)");
}
END_TEST

START_TEST(test_duplicate_key)
{
	EXPECT("data/duplicate_key.yaml",
	    "data/duplicate_key.yaml:4:5: duplicate key \"listen\" (first set "
	    "at line 3); keep only one");
}
END_TEST

START_TEST(test_alpn)
{
	load_ok("data/alpn.yaml");
	ck_assert_uint_eq(cfg->listeners[0].tls.alpn.n, 2);
	ck_assert_str_eq(cfg->listeners[0].tls.alpn.v[0], "h2");
	ck_assert_str_eq(cfg->listeners[0].tls.alpn.v[1], "http/1.1");
	/* One name alone is a list of one. */
	ck_assert_uint_eq(cfg->listeners[1].tls.alpn.n, 1);
	ck_assert_str_eq(cfg->listeners[1].tls.alpn.v[0], "http/1.1");
}
END_TEST

START_TEST(test_alpn_errors)
{
	EXPECT("data/bad_alpn.yaml",
	    "data/bad_alpn.yaml:7:14: \"alpn\": \"HTTP/1.1\" would never "
	    "match: clients send \"http/1.1\" (protocol names are compared "
	    "byte for byte)",
	    "data/bad_alpn.yaml:7:24: \"alpn\": one protocol per entry, as a "
	    "list: alpn: [h2, http/1.1]",
	    "data/bad_alpn.yaml:7:39: \"alpn\": \"h2c\" is HTTP/2 without TLS, "
	    "which no client offers over TLS; HTTP/2 clients (gRPC too) send "
	    "\"h2\"",
	    "data/bad_alpn.yaml:7:44: \"alpn\": gRPC clients offer \"h2\" "
	    "(gRPC runs over HTTP/2)",
	    "data/bad_alpn.yaml:7:62: \"alpn\": \"acme-tls/1\" is listed twice",
	    "data/bad_alpn.yaml:17:24: listener \"web\": tls.alpn \"h2\": mode: "
	    "http speaks HTTP/1.1 to clients, so only http/1.1 and http/1.0 "
	    "can be offered; for an HTTP/2 or gRPC backend use mode: tcp with "
	    "alpn: [h2]");
}
END_TEST

START_TEST(test_admin_reload_errors)
{
	EXPECT("data/admin_reload.yaml",
	    "data/admin_reload.yaml:2:11: admin endpoint \"0.0.0.0:9901\" is "
	    "not on loopback: it is plain HTTP without authentication; use "
	    "127.0.0.1, ::1 or a unix socket, or set \"remote: true\" in "
	    "admin",
	    "data/admin_reload.yaml:3:9: \"reload\" must be watch or signal, "
	    "got \"sometimes\"");
}
END_TEST

START_TEST(test_ops_keys)
{
	struct errlist	 e = { NULL, 0 };
	struct cfg	*c;

	c = cfg_load("data/good_ops.yaml", &e);
	ck_assert_msg(c != NULL, "%s", e.n ? e.v[0] : "?");
	ck_assert_int_eq(c->admin.listen.kind, ADDR_UNIX);
	ck_assert_str_eq(c->admin.listen.text,
	    "unix:/run/mtlsproxy/admin.sock");
	ck_assert_int_eq(c->reload, RELOAD_SIGNAL);
	ck_assert_str_eq(c->user, "mtlsproxy");
	ck_assert_str_eq(c->group, "mtlsproxy");
	ck_assert_str_eq(c->listeners[0].tls.session_ticket_key_file.path,
	    "data/tickets.key");
	cfg_free(c);
	errlist_free(&e);

	c = cfg_load("data/good_minimal.yaml", &e);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->reload, RELOAD_WATCH);
	ck_assert_ptr_null(c->admin.listen.text);
	ck_assert_ptr_null(c->user);
	cfg_free(c);
	errlist_free(&e);
}
END_TEST

START_TEST(test_bad_int)
{
	EXPECT("data/bad_int.yaml",
	    "data/bad_int.yaml:11:22: \"max_connections\" must be a positive "
	    "integer, got \"lots\"");
}
END_TEST

START_TEST(test_bad_bool)
{
	EXPECT("data/bad_bool.yaml",
	    "data/bad_bool.yaml:7:24: \"session_tickets\" must be true or "
	    "false, got \"maybe\"");
}
END_TEST

START_TEST(test_bad_enums)
{
	EXPECT("data/bad_enums.yaml",
	    "data/bad_enums.yaml:1:10: \"workers\" must be \"auto\" or a "
	    "positive integer, got \"many\"",
	    "data/bad_enums.yaml:3:10: \"level\" must be error, warn, info or "
	    "debug, got \"verbose\"",
	    "data/bad_enums.yaml:4:11: \"format\" must be text or json, got "
	    "\"xml\"",
	    "data/bad_enums.yaml:11:20: \"min_version\" must be TLSv1.2 or "
	    "TLSv1.3, got \"TLSv1.1\"",
	    "data/bad_enums.yaml:14:19: \"client_eku\" must be if_present or "
	    "required, got \"always\"",
	    "data/bad_enums.yaml:15:21: \"verify_depth\" must be an integer "
	    "from 0 to 100, got \"101\"");
}
END_TEST

START_TEST(test_listeners_not_list)
{
	EXPECT("data/listeners_not_list.yaml",
	    "data/listeners_not_list.yaml:2:3: \"listeners\" must be a list, "
	    "got a mapping");
}
END_TEST

START_TEST(test_listeners_missing)
{
	EXPECT("data/missing_listeners.yaml",
	    "data/missing_listeners.yaml:1:1: missing required key "
	    "\"listeners\"");
}
END_TEST

START_TEST(test_listeners_empty)
{
	EXPECT("data/listeners_empty.yaml",
	    "data/listeners_empty.yaml:2:12: \"listeners\" is empty; define at "
	    "least one listener");
}
END_TEST

START_TEST(test_missing_backend)
{
	EXPECT("data/missing_backend.yaml",
	    "data/missing_backend.yaml:2:5: listener \"api\": missing required "
	    "key \"backend\"");
}
END_TEST

START_TEST(test_missing_name)
{
	EXPECT("data/missing_name.yaml",
	    "data/missing_name.yaml:2:5: listener #1: missing required key "
	    "\"name\"");
}
END_TEST

START_TEST(test_missing_tls_client_auth)
{
	EXPECT("data/missing_many.yaml",
	    "data/missing_many.yaml:2:5: listener \"api\": missing required "
	    "key \"tls\"",
	    "data/missing_many.yaml:2:5: listener \"api\": missing required "
	    "key \"client_auth\"");
}
END_TEST

START_TEST(test_duplicate_name)
{
	EXPECT("data/duplicate_name.yaml",
	    "data/duplicate_name.yaml:11:11: duplicate listener name \"api\" "
	    "(the listener at line 2 has it too); give each listener its own "
	    "name");
}
END_TEST

START_TEST(test_duplicate_listen)
{
	EXPECT("data/duplicate_listen.yaml",
	    "data/duplicate_listen.yaml:12:13: listen address "
	    "\"127.0.0.1:8443\" is already used by the listener at line 2; "
	    "each listener needs its own");
}
END_TEST

/*
 * A wildcard address takes its port on every address of its family, so the
 * second bind would fail at start.  IPv6 sockets are v6only: [::] and
 * 0.0.0.0 on one port are two sockets that both bind.
 */
START_TEST(test_overlap_listen)
{
	EXPECT("data/overlap_listen.yaml",
	    "data/overlap_listen.yaml:12:13: listen address \"0.0.0.0:8443\" "
	    "overlaps the listener \"api\" at line 2 (\"127.0.0.1:8443\"): a "
	    "wildcard address takes the port on every address; give one of "
	    "them another port",
	    "data/overlap_listen.yaml:30:13: listen address \"[::1]:8443\" "
	    "overlaps the listener \"v6\" at line 20 (\"[::]:8443\"): a "
	    "wildcard address takes the port on every address; give one of "
	    "them another port");
}
END_TEST

START_TEST(test_tls_both)
{
	EXPECT("data/tls_both.yaml",
	    "data/tls_both.yaml:7:15: \"pkcs12\" cannot be used together with "
	    "\"cert\"/\"key\": use either cert + key or pkcs12, not both");
}
END_TEST

START_TEST(test_tls_cert_no_key)
{
	EXPECT("data/tls_cert_no_key.yaml",
	    "data/tls_cert_no_key.yaml:5:7: listener \"api\": \"tls\" has "
	    "\"cert\" but no \"key\"; add \"key\" (the certificate's private "
	    "key file)");
}
END_TEST

START_TEST(test_tls_key_no_cert)
{
	EXPECT("data/tls_key_no_cert.yaml",
	    "data/tls_key_no_cert.yaml:5:7: listener \"api\": \"tls\" has "
	    "\"key\" but no \"cert\"; add \"cert\" (the server certificate "
	    "file)");
}
END_TEST

START_TEST(test_tls_none)
{
	EXPECT("data/tls_none.yaml",
	    "data/tls_none.yaml:5:7: listener \"api\": \"tls\" needs \"cert\" "
	    "and \"key\" (PEM files), or \"pkcs12\"");
}
END_TEST

START_TEST(test_tls_key_pass_with_pkcs12)
{
	EXPECT("data/tls_key_pass_with_pkcs12.yaml",
	    "data/tls_key_pass_with_pkcs12.yaml:6:28: \"key_passphrase_file\" "
	    "is only used with \"key\"; for \"pkcs12\" use "
	    "\"pkcs12_passphrase_file\"");
}
END_TEST

START_TEST(test_tls_pkcs12_pass_with_key)
{
	EXPECT("data/tls_pkcs12_pass_with_key.yaml",
	    "data/tls_pkcs12_pass_with_key.yaml:7:31: "
	    "\"pkcs12_passphrase_file\" is only used with \"pkcs12\"; for "
	    "\"key\" use \"key_passphrase_file\"");
}
END_TEST

START_TEST(test_client_auth_none)
{
	EXPECT("data/client_auth_none.yaml",
	    "data/client_auth_none.yaml:8:7: listener \"api\": "
	    "\"client_auth\" needs \"ca\" (the CA certificates that sign "
	    "client certificates) or \"trusted_certs\" (exact client "
	    "certificates), or both");
}
END_TEST

START_TEST(test_backend_no_address)
{
	EXPECT("data/backend_no_address.yaml",
	    "data/backend_no_address.yaml:10:7: listener \"api\": missing "
	    "required key \"address\" in \"backend\"");
}
END_TEST

START_TEST(test_headers_tcp)
{
	EXPECT("data/headers_tcp.yaml",
	    "data/headers_tcp.yaml:12:7: listener \"api\": \"headers\" apply "
	    "to mode: http, but the backend has mode: tcp; set \"mode: http\" "
	    "in backend, or remove \"headers\"");
}
END_TEST

START_TEST(test_proxy_protocol_http)
{
	EXPECT("data/proxy_protocol_http.yaml",
	    "data/proxy_protocol_http.yaml:12:23: proxy_protocol applies to "
	    "mode: tcp, but this backend has mode: http (which sends the "
	    "client identity in headers); remove proxy_protocol or set it to "
	    "false");
}
END_TEST

START_TEST(test_bad_headers)
{
	EXPECT("data/bad_headers.yaml",
	    "data/bad_headers.yaml:11:13: \"mode\" must be tcp or http, got "
	    "\"websocket\"",
	    "data/bad_headers.yaml:13:15: \"preset\" must be default, nginx or "
	    "envoy, got \"apache\"",
	    "data/bad_headers.yaml:14:18: \"forwarded\" must be true or false, "
	    "got \"sometimes\"",
	    "data/bad_headers.yaml:16:18: header name \"X Client Subject\" for "
	    "\"subject\" is not an HTTP token: use letters, digits and "
	    "!#$%&'*+-.^_`|~ only, no spaces or colons (or \"\" to not send "
	    "this header)",
	    "data/bad_headers.yaml:17:17: header name \"X-Client-Issuer:\" for "
	    "\"issuer\" is not an HTTP token: use letters, digits and "
	    "!#$%&'*+-.^_`|~ only, no spaces or colons (or \"\" to not send "
	    "this header)",
	    "data/bad_headers.yaml:18:17: \"serial\" must be a header name or "
	    "\"\", got a list",
	    "data/bad_headers.yaml:19:9: unknown key \"fingerprnt\" in "
	    "\"headers.names\" of listener \"api\" (did you mean "
	    "\"fingerprint\"?)",
	    "data/bad_headers.yaml:32:17: header name \"content-length\" for "
	    "\"serial\" is one that HTTP or the proxy itself uses; choose "
	    "another name",
	    /* x_client_subject is X-Client-Subject to the proxy */
	    "data/bad_headers.yaml:33:17: header name \"x_client_subject\" for "
	    "\"verify\" is already the name for \"subject\" in this preset; "
	    "give each header its own name",
	    "data/bad_headers.yaml:35:18: header name \"x-san\" for "
	    "\"san_uri\" is already the name for \"san_dns\"; give each "
	    "header its own name",
	    "data/bad_headers.yaml:36:15: header name \"X-Forwarded-Proto\" for "
	    "\"xfcc\" is one that HTTP or the proxy itself uses; choose "
	    "another name",
	    "data/bad_headers.yaml:49:14: \"names\" must be a mapping, got "
	    "\"X-Forwarded-Client-Cert\"");
}
END_TEST

START_TEST(test_bad_sizes)
{
	EXPECT("data/bad_sizes.yaml",
	    "data/bad_sizes.yaml:13:16: \"backend\" must be longer than 0 (use "
	    "e.g. 30s, 5m), got \"0\"",
	    "data/bad_sizes.yaml:14:22: \"max_header_size\" must be a size "
	    "from 1024 to 1048576 bytes (e.g. 16384, 16k, 64KiB, 1m), got "
	    "\"lots\"",
	    "data/bad_sizes.yaml:26:16: \"backend\" is not a duration (use "
	    "e.g. 30s, 5m): \"soon\"",
	    "data/bad_sizes.yaml:27:22: \"max_header_size\" must be a size "
	    "from 1024 to 1048576 bytes (e.g. 16384, 16k, 64KiB, 1m), got "
	    "\"2m\"",
	    "data/bad_sizes.yaml:38:22: \"max_header_size\" must be a size "
	    "from 1024 to 1048576 bytes (e.g. 16384, 16k, 64KiB, 1m), got "
	    "\"1023\"",
	    "data/bad_sizes.yaml:49:22: \"max_header_size\" must be a size "
	    "from 1024 to 1048576 bytes (e.g. 16384, 16k, 64KiB, 1m), got "
	    "\"16q\"");
}
END_TEST

START_TEST(test_bad_duration)
{
	EXPECT("data/bad_duration.yaml",
	    "data/bad_duration.yaml:1:26: \"session_ticket_rotation\" must be "
	    "at least 1000 ms (use e.g. 1h, 30m), got \"200ms\"",
	    "data/bad_duration.yaml:13:13: \"idle\" is not a duration (use "
	    "e.g. 30s, 5m): \"abc\"",
	    "data/bad_duration.yaml:14:18: \"handshake\" must be longer than 0 "
	    "(use e.g. 30s, 5m), got \"0\"");
}
END_TEST

/* Units in any case; nothing finer than a millisecond. */
START_TEST(test_duration_case)
{
	EXPECT("data/duration_case.yaml",
	    "data/duration_case.yaml:12:24: \"connect_timeout\" is not a "
	    "duration: \"1.5ms\" is finer than a millisecond (durations are "
	    "whole milliseconds at most precise: use e.g. 2ms or 1.5s)",
	    "data/duration_case.yaml:15:13: \"idle\" is not a duration: "
	    "\"0.0005s\" is finer than a millisecond (durations are whole "
	    "milliseconds at most precise: use e.g. 2ms or 1.5s)");
	errlist_free(&errs);
	cfg = cfg_load_partial("data/duration_case.yaml", &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 5000);
	ck_assert_uint_eq(cfg->listeners[0].backend.keepalive_timeout_ms, 250);
	ck_assert_uint_eq(cfg->listeners[0].handshake_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->listeners[0].backend_timeout_ms, 120000);
}
END_TEST

START_TEST(test_bad_address)
{
	EXPECT("data/bad_address.yaml",
	    "data/bad_address.yaml:3:13: invalid listen address "
	    "\"unix:/run/mtlsproxy.sock\": a unix socket is not allowed here "
	    "(use e.g. \"0.0.0.0:8443\", \"[::]:8443\" or \"systemd:NAME\")",
	    "data/bad_address.yaml:10:17: invalid backend address "
	    "\"127.0.0.1\": expected host:port (use e.g. \"127.0.0.1:8080\", "
	    "\"[::1]:8080\" or \"unix:/run/app.sock\")");
}
END_TEST

/* Port 0 would bind a random port (one per worker), or connect nowhere. */
START_TEST(test_port_zero)
{
	EXPECT("data/port_zero.yaml",
	    "data/port_zero.yaml:2:11: invalid admin listen address "
	    "\"127.0.0.1:0\": port 0 is not allowed (it means any free "
	    "port); ports go from 1 to 65535 (use e.g. \"127.0.0.1:9901\" "
	    "or \"unix:/run/mtlsproxy/admin.sock\")",
	    "data/port_zero.yaml:5:13: invalid listen address "
	    "\"127.0.0.1:0\": port 0 is not allowed (it means any free "
	    "port); ports go from 1 to 65535 (use e.g. \"0.0.0.0:8443\", "
	    "\"[::]:8443\" or \"systemd:NAME\")",
	    "data/port_zero.yaml:12:35: invalid backend address "
	    "\"127.0.0.1:0\": port 0 is not allowed (it means any free "
	    "port); ports go from 1 to 65535 (use e.g. \"127.0.0.1:8080\", "
	    "\"[::1]:8080\" or \"unix:/run/app.sock\")",
	    "data/port_zero.yaml:12:50: invalid backend address "
	    "\"127.0.0.1:65536\": port must be a number from 1 to 65535 "
	    "(use e.g. \"127.0.0.1:8080\", \"[::1]:8080\" or "
	    "\"unix:/run/app.sock\")");
}
END_TEST

START_TEST(test_backend_not_local)
{
	EXPECT("data/backend_not_local.yaml",
	    "data/backend_not_local.yaml:10:16: backend \"10.0.0.5:8080\" is "
	    "not a loopback address or a unix socket: the plaintext traffic "
	    "to it can leave the machine unencrypted; set \"remote: true\" "
	    "in backend to allow it");
}
END_TEST

START_TEST(test_backend_not_local_list)
{
	EXPECT("data/backend_not_local_list.yaml",
	    "data/backend_not_local_list.yaml:12:11: backend "
	    "\"192.0.2.7:8080\" is not a loopback address or a unix socket: "
	    "the plaintext traffic to it can leave the machine unencrypted; "
	    "set \"remote: true\" in backend to allow it");
}
END_TEST

START_TEST(test_bad_allow)
{
	EXPECT("data/bad_allow.yaml",
	    "data/bad_allow.yaml:10:30: \"fingerprint_sha256\" entry "
	    "\"ab:cd:ef\" is not a SHA-256 fingerprint: use 64 hex digits, "
	    "colons optional (see openssl x509 -noout -fingerprint -sha256 "
	    "-in CERT)",
	    "data/bad_allow.yaml:11:54: san_uri \"spiffe://x/ns*\": \"*\" must "
	    "be a whole path segment, as in "
	    "\"spiffe://corp.example/ns/*/sa/web\" (it matches exactly one "
	    "segment; it cannot match part of a segment or the host)",
	    "data/bad_allow.yaml:11:72: san_uri \"spiffe://*/ns/a\": \"*\" "
	    "must be a whole path segment, as in "
	    "\"spiffe://corp.example/ns/*/sa/web\" (it matches exactly one "
	    "segment; it cannot match part of a segment or the host)",
	    "data/bad_allow.yaml:12:30: each \"subject_cn\" entry must be a "
	    "non-empty string, got a mapping");
}
END_TEST

START_TEST(test_many_errors)
{
	EXPECT("data/many_errors.yaml",
	    "data/many_errors.yaml:2:10: \"workers\" must be \"auto\" or a "
	    "positive integer, got \"lots\"",
	    "data/many_errors.yaml:4:10: \"level\" must be error, warn, info "
	    "or debug, got \"loud\"",
	    "data/many_errors.yaml:9:7: listener \"api\": \"tls\" has \"cert\" "
	    "but no \"key\"; add \"key\" (the certificate's private key file)",
	    "data/many_errors.yaml:12:21: \"verify_depth\" must be an integer "
	    "from 0 to 100, got \"-1\"",
	    "data/many_errors.yaml:14:16: backend \"10.1.2.3:80\" is not a "
	    "loopback address or a unix socket: the plaintext traffic to it "
	    "can leave the machine unencrypted; set \"remote: true\" in "
	    "backend to allow it",
	    "data/many_errors.yaml:16:7: unknown key \"idel\" in \"timeouts\" "
	    "of listener \"api\" (did you mean \"idle\"?)",
	    "data/many_errors.yaml:18:5: unknown key \"lissten\" in listener "
	    "\"web\" (did you mean \"listen\"?)",
	    "data/many_errors.yaml:25:24: \"connect_timeout\" is not a "
	    "duration (use e.g. 30s, 5m): \"soon\"");
}
END_TEST

/* Messages come out in file order, whatever order they were found in. */
START_TEST(test_errors_sorted)
{
	static const char *const	 want[] = {
		"a.yaml: cannot read config: No such file or directory",
		"a.yaml: listener \"x\" was removed: 1:2:3: its address",
		"a.yaml:2:9: second",
		"a.yaml:10:3: third, found first",
		"a.yaml:10:3: fourth, the same place as the third",
		"a.yaml:10:12: fifth 1:1: digits in the text",
		"a.yaml:100:1: last",
	};
	size_t				 i;

	errlist_add(&errs, "%s", want[3]);
	errlist_add(&errs, "%s", want[6]);
	errlist_add(&errs, "%s", want[0]);
	errlist_add(&errs, "%s", want[5]);
	errlist_add(&errs, "%s", want[2]);
	errlist_add(&errs, "%s", want[1]);
	errlist_add(&errs, "%s", want[4]);
	ck_assert_uint_eq(errs.n, NITEMS(want));
	for (i = 0; i < NITEMS(want); i++)
		ck_assert_str_eq(errs.v[i], want[i]);
}
END_TEST

START_TEST(test_errors_appended)
{
	/* Earlier messages in errs are kept; only new ones fail the load. */
	errlist_add(&errs, "earlier");
	cfg = cfg_load("data/good_minimal.yaml", &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(errs.n, 1);
}
END_TEST

Suite *
cfg_suite(void)
{
	Suite	*s = suite_create("cfg");
	TCase	*ok = tcase_create("valid");
	TCase	*bad = tcase_create("errors");

	tcase_add_checked_fixture(ok, setup, teardown);
	tcase_add_test(ok, test_full_config);
	tcase_add_test(ok, test_defaults);
	tcase_add_test(ok, test_http_config);
	tcase_add_test(ok, test_mode_http);
	tcase_add_test(ok, test_proxy_protocol);
	tcase_add_test(ok, test_alpn);
	tcase_add_test(ok, test_booleans);
	tcase_add_test(ok, test_relative_to_cwd);
	tcase_add_test(ok, test_cfg_error_format);
	tcase_add_test(ok, test_example_config);
	tcase_add_test(ok, test_free_null);
	tcase_add_test(ok, test_errors_appended);
	suite_add_tcase(s, ok);

	tcase_add_checked_fixture(bad, setup, teardown);
	tcase_add_test(bad, test_unreadable);
	tcase_add_test(bad, test_syntax_error);
	tcase_add_test(bad, test_syntax_tab);
	tcase_add_test(bad, test_syntax_mapping);
	tcase_add_test(bad, test_utf16);
	tcase_add_test(bad, test_empty);
	tcase_add_test(bad, test_root_not_mapping);
	tcase_add_test(bad, test_two_documents);
	tcase_add_test(bad, test_unknown_key);
	tcase_add_test(bad, test_unknown_key_top);
	tcase_add_test(bad, test_unknown_key_nested);
	tcase_add_test(bad, test_duplicate_key);
	tcase_add_test(bad, test_admin_reload_errors);
	tcase_add_test(bad, test_alpn_errors);
	tcase_add_test(bad, test_ops_keys);
	tcase_add_test(bad, test_bad_int);
	tcase_add_test(bad, test_bad_bool);
	tcase_add_test(bad, test_bad_enums);
	tcase_add_test(bad, test_listeners_not_list);
	tcase_add_test(bad, test_listeners_missing);
	tcase_add_test(bad, test_listeners_empty);
	tcase_add_test(bad, test_missing_backend);
	tcase_add_test(bad, test_missing_name);
	tcase_add_test(bad, test_missing_tls_client_auth);
	tcase_add_test(bad, test_duplicate_name);
	tcase_add_test(bad, test_duplicate_listen);
	tcase_add_test(bad, test_tls_both);
	tcase_add_test(bad, test_tls_cert_no_key);
	tcase_add_test(bad, test_tls_key_no_cert);
	tcase_add_test(bad, test_tls_none);
	tcase_add_test(bad, test_tls_key_pass_with_pkcs12);
	tcase_add_test(bad, test_tls_pkcs12_pass_with_key);
	tcase_add_test(bad, test_client_auth_none);
	tcase_add_test(bad, test_backend_no_address);
	tcase_add_test(bad, test_headers_tcp);
	tcase_add_test(bad, test_proxy_protocol_http);
	tcase_add_test(bad, test_bad_headers);
	tcase_add_test(bad, test_bad_sizes);
	tcase_add_test(bad, test_bad_duration);
	tcase_add_test(bad, test_bad_address);
	tcase_add_test(bad, test_port_zero);
	tcase_add_test(bad, test_overlap_listen);
	tcase_add_test(bad, test_backend_not_local);
	tcase_add_test(bad, test_backend_not_local_list);
	tcase_add_test(bad, test_bad_allow);
	tcase_add_test(bad, test_many_errors);
	tcase_add_test(bad, test_errors_sorted);
	tcase_add_test(bad, test_merge_key);
	tcase_add_test(bad, test_duration_case);
	tcase_add_test(bad, test_admin_empty);
	tcase_add_test(ok, test_fd_need);
	suite_add_tcase(s, bad);
	return s;
}
