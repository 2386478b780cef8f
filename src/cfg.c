/*
 * cfg.c - read the YAML config into a validated struct cfg, reporting every
 * problem as "file:line:col: what to do".  Free of libevent and of crypto:
 * files named in the config are only loaded later, by tls.c.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "mtlsproxy.h"

#define CFG_MAX_SIZE		(4 * 1024 * 1024)
#define CFG_WORKERS_AUTO	0	/* resolved to the number of CPUs */
#define CFG_WORKERS_AUTO_MAX	64
#define CFG_WORKERS_MAX		1024
#define CFG_MAX_CONNECTIONS	1000000
#define CFG_VERIFY_DEPTH_MAX	100
#define CFG_MAX_KEYS		64	/* keys of one mapping, for a bitmask */
#define CFG_HEADER_SIZE_MIN	1024
#define CFG_HEADER_SIZE_MAX	(1024 * 1024)

/*
 * Defaults, all in one place.  Anything not listed is 0, false or NULL.
 */
static const struct cfg cfg_default = {
	.workers = CFG_WORKERS_AUTO,
	.log_level = LOG_LEVEL_INFO,
	.log_format = LOG_FORMAT_TEXT,
	.log_access = true,
	.drain_timeout_ms = 30 * 1000,
	.ticket_rotation_ms = 60 * 60 * 1000,
};

static const struct cfg_listener cfg_listener_default = {
	.tls = {
		.min_version = TLS1_2_VERSION,
		.session_tickets = true,
	},
	.client_auth = {
		.verify_depth = 4,
		.partial_chain = false,
		.client_eku = CLIENT_EKU_IF_PRESENT,
	},
	.backend = {
		.remote = false,
		.mode = BACKEND_TCP,
		.proxy_protocol = false,
		.connect_timeout_ms = 5 * 1000,
		.fail_timeout_ms = 10 * 1000,
		.keepalive_timeout_ms = 1000,
	},
	.handshake_timeout_ms = 10 * 1000,
	.idle_timeout_ms = 300 * 1000,
	.backend_timeout_ms = 60 * 1000,
	.max_header_size = 16 * 1024,
	.headers = {
		.preset = HEADERS_DEFAULT,
		.forwarded = true,
	},
	.max_connections = 10000,
};

/* State of one cfg_load(). */
struct cfg_parser {
	struct cfg	*cfg;
	struct errlist	*errs;
	yaml_document_t	*doc;
	char		*dir;		/* owned; config's directory, or NULL */
	char		*label;		/* owned; "listener \"api\"" or NULL */
};

enum cfg_type {
	CFG_T_BOOL,		/* bool */
	CFG_T_UINT,		/* unsigned, min..max */
	CFG_T_INT,		/* int, min..max */
	CFG_T_DURATION,		/* uint64_t milliseconds, at least min */
	CFG_T_SIZE,		/* size_t bytes, 16k/1m suffixes, min..max */
	CFG_T_ENUM,		/* int, one of values */
	CFG_T_STRING,		/* char *, its cfg_loc at loc_off */
	CFG_T_FILE,		/* struct cfg_file, relative to the config */
	CFG_T_FILE_ASIS,	/* struct cfg_file, as written */
	CFG_T_STRLIST,		/* struct strlist; one string or a list */
	CFG_T_FUNC,		/* fn does it all */
	CFG_T_UNAVAILABLE	/* in the design, not in this version */
};

#define CFG_REQUIRED	0x1

struct cfg_enum {
	const char	*name;
	int		 value;
};

struct cfg_key {
	const char		*name;
	enum cfg_type		 type;
	int			 flags;
	size_t			 off;		/* the field in the object */
	size_t			 loc_off;	/* STRING, STRLIST: its location */
	long long		 min;
	long long		 max;
	const struct cfg_enum	*values;	/* CFG_T_ENUM; name NULL ends */
	void			(*fn)(struct cfg_parser *,
				    const struct cfg_key *, yaml_node_t *,
				    void *);
};

/* Fields of type enum are written through an int. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum client_eku) == sizeof(int), "enum size");
_Static_assert(sizeof(enum backend_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum header_preset) == sizeof(int), "enum size");

static void	cfg_workers(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_log(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_listeners(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_name(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_listen(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_admin(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_admin_listen(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_tls(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_alpn(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_client_auth(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_trusted_certs(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_allow(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_san_uri(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_fingerprints(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_backend(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_backend_address(struct cfg_parser *,
		    const struct cfg_key *, yaml_node_t *, void *);
static void	cfg_timeouts(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_headers(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_header_names(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);
static void	cfg_header_name(struct cfg_parser *, const struct cfg_key *,
		    yaml_node_t *, void *);

static const struct cfg_enum cfg_log_levels[] = {
	{ "error", LOG_LEVEL_ERROR },
	{ "warn", LOG_LEVEL_WARN },
	{ "info", LOG_LEVEL_INFO },
	{ "debug", LOG_LEVEL_DEBUG },
	{ .name = NULL }
};

static const struct cfg_enum cfg_log_formats[] = {
	{ "text", LOG_FORMAT_TEXT },
	{ "json", LOG_FORMAT_JSON },
	{ .name = NULL }
};

static const struct cfg_enum cfg_tls_versions[] = {
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
	{ .name = NULL }
};

static const struct cfg_enum cfg_client_ekus[] = {
	{ "if_present", CLIENT_EKU_IF_PRESENT },
	{ "required", CLIENT_EKU_REQUIRED },
	{ .name = NULL }
};

static const struct cfg_enum cfg_backend_modes[] = {
	{ "tcp", BACKEND_TCP },
	{ "http", BACKEND_HTTP },
	{ .name = NULL }
};

static const struct cfg_enum cfg_backend_balances[] = {
	{ "failover", BALANCE_FAILOVER },
	{ "round_robin", BALANCE_ROUND_ROBIN },
	{ "least_conn", BALANCE_LEAST_CONN },
	{ .name = NULL }
};

static const struct cfg_enum cfg_reload_modes[] = {
	{ "watch", RELOAD_WATCH },
	{ "signal", RELOAD_SIGNAL },
	{ .name = NULL }
};

static const struct cfg_enum cfg_header_presets[] = {
	{ "default", HEADERS_DEFAULT },
	{ "nginx", HEADERS_NGINX },
	{ "envoy", HEADERS_ENVOY },
	{ .name = NULL }
};

#define C(f)	offsetof(struct cfg, f)
#define L(f)	offsetof(struct cfg_listener, f)
#define T(f)	offsetof(struct cfg_tls, f)
#define A(f)	offsetof(struct cfg_client_auth, f)
#define W(f)	offsetof(struct cfg_allow, f)
#define B(f)	offsetof(struct cfg_backend, f)
#define H(f)	offsetof(struct cfg_headers, f)

/* The schema: one table per mapping, in the order the docs list them. */
static const struct cfg_key cfg_top_keys[] = {
	{ "workers", CFG_T_FUNC, .fn = cfg_workers },
	{ "log", CFG_T_FUNC, .fn = cfg_log },
	{ "drain_timeout", CFG_T_DURATION, .off = C(drain_timeout_ms) },
	{ "session_ticket_rotation", CFG_T_DURATION,
	    .off = C(ticket_rotation_ms), .min = 1000 },
	{ "listeners", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_listeners },
	{ "reload", CFG_T_ENUM, .off = C(reload), .values = cfg_reload_modes },
	{ "user", CFG_T_STRING, .off = C(user), .loc_off = C(user_loc) },
	{ "group", CFG_T_STRING, .off = C(group), .loc_off = C(group_loc) },
	{ "admin", CFG_T_FUNC, .fn = cfg_admin },
	{ .name = NULL }
};

#define M(f)	offsetof(struct cfg_admin, f)
static const struct cfg_key cfg_admin_keys[] = {
	{ "listen", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_admin_listen },
	{ "remote", CFG_T_BOOL, .off = M(remote) },
	{ .name = NULL }
};

static const struct cfg_key cfg_log_keys[] = {
	{ "level", CFG_T_ENUM, .off = C(log_level), .values = cfg_log_levels },
	{ "format", CFG_T_ENUM, .off = C(log_format),
	    .values = cfg_log_formats },
	{ "access", CFG_T_BOOL, .off = C(log_access) },
	{ .name = NULL }
};

static const struct cfg_key cfg_listener_keys[] = {
	{ "name", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_name },
	{ "listen", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_listen },
	{ "tls", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_tls },
	{ "client_auth", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_client_auth },
	{ "backend", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_backend },
	{ "headers", CFG_T_FUNC, .fn = cfg_headers },
	{ "timeouts", CFG_T_FUNC, .fn = cfg_timeouts },
	{ "max_connections", CFG_T_UINT, .off = L(max_connections), .min = 1,
	    .max = CFG_MAX_CONNECTIONS },
	{ "max_header_size", CFG_T_SIZE, .off = L(max_header_size),
	    .min = CFG_HEADER_SIZE_MIN, .max = CFG_HEADER_SIZE_MAX },
	{ .name = NULL }
};

static const struct cfg_key cfg_tls_keys[] = {
	{ "cert", CFG_T_FILE, .off = T(cert) },
	{ "key", CFG_T_FILE, .off = T(key) },
	{ "key_passphrase_file", CFG_T_FILE_ASIS,
	    .off = T(key_passphrase_file) },
	{ "pkcs12", CFG_T_FILE, .off = T(pkcs12) },
	{ "session_ticket_key_file", CFG_T_FILE,
	    .off = T(session_ticket_key_file) },
	{ "pkcs12_passphrase_file", CFG_T_FILE_ASIS,
	    .off = T(pkcs12_passphrase_file) },
	{ "min_version", CFG_T_ENUM, .off = T(min_version),
	    .values = cfg_tls_versions },
	{ "ciphers", CFG_T_STRING, .off = T(ciphers),
	    .loc_off = T(ciphers_loc) },
	{ "ciphersuites", CFG_T_STRING, .off = T(ciphersuites),
	    .loc_off = T(ciphersuites_loc) },
	{ "groups", CFG_T_STRING, .off = T(groups), .loc_off = T(groups_loc) },
	{ "session_tickets", CFG_T_BOOL, .off = T(session_tickets) },
	{ "alpn", CFG_T_FUNC, .fn = cfg_alpn },
	{ .name = NULL }
};

static const struct cfg_key cfg_client_auth_keys[] = {
	{ "ca", CFG_T_FILE, .off = A(ca) },
	{ "trusted_certs", CFG_T_FUNC, .fn = cfg_trusted_certs },
	{ "crl", CFG_T_FILE, .off = A(crl) },
	{ "verify_depth", CFG_T_INT, .off = A(verify_depth), .min = 0,
	    .max = CFG_VERIFY_DEPTH_MAX },
	{ "partial_chain", CFG_T_BOOL, .off = A(partial_chain) },
	{ "client_eku", CFG_T_ENUM, .off = A(client_eku),
	    .values = cfg_client_ekus },
	{ "allow", CFG_T_FUNC, .fn = cfg_allow },
	{ .name = NULL }
};

static const struct cfg_key cfg_allow_keys[] = {
	{ "subject_cn", CFG_T_STRLIST, .off = W(subject_cn),
	    .loc_off = W(subject_cn_loc) },
	{ "subject_ou", CFG_T_STRLIST, .off = W(subject_ou),
	    .loc_off = W(subject_ou_loc) },
	{ "subject_o", CFG_T_STRLIST, .off = W(subject_o),
	    .loc_off = W(subject_o_loc) },
	{ "san_dns", CFG_T_STRLIST, .off = W(san_dns),
	    .loc_off = W(san_dns_loc) },
	{ "san_uri", CFG_T_FUNC, .fn = cfg_san_uri },
	{ "san_email", CFG_T_STRLIST, .off = W(san_email),
	    .loc_off = W(san_email_loc) },
	{ "fingerprint_sha256", CFG_T_FUNC, .fn = cfg_fingerprints },
	{ .name = NULL }
};

static const struct cfg_key cfg_backend_keys[] = {
	{ "address", CFG_T_FUNC, CFG_REQUIRED, .fn = cfg_backend_address },
	{ "remote", CFG_T_BOOL, .off = B(remote) },
	{ "mode", CFG_T_ENUM, .off = B(mode), .values = cfg_backend_modes },
	{ "balance", CFG_T_ENUM, .off = B(balance),
	    .values = cfg_backend_balances },
	{ "proxy_protocol", CFG_T_BOOL, .off = B(proxy_protocol) },
	{ "fail_timeout", CFG_T_DURATION, .off = B(fail_timeout_ms) },
	{ "connect_timeout", CFG_T_DURATION, .off = B(connect_timeout_ms),
	    .min = 1 },
	{ "keepalive", CFG_T_UINT, .off = B(keepalive), .min = 0,
	    .max = 4096 },
	{ "keepalive_timeout", CFG_T_DURATION, .off = B(keepalive_timeout_ms),
	    .min = 1 },
	{ .name = NULL }
};

/* The object of these keys is the listener. */
static const struct cfg_key cfg_timeout_keys[] = {
	{ "handshake", CFG_T_DURATION, .off = L(handshake_timeout_ms),
	    .min = 1 },
	{ "idle", CFG_T_DURATION, .off = L(idle_timeout_ms), .min = 1 },
	{ "backend", CFG_T_DURATION, .off = L(backend_timeout_ms), .min = 1 },
	{ .name = NULL }
};

/* The object of these keys is the listener's cfg_headers. */
static const struct cfg_key cfg_headers_keys[] = {
	{ "preset", CFG_T_ENUM, .off = H(preset),
	    .values = cfg_header_presets },
	{ "names", CFG_T_FUNC, .fn = cfg_header_names },
	{ "forwarded", CFG_T_BOOL, .off = H(forwarded) },
	{ .name = NULL }
};

/* One per identity fact, in hdr.c's order; the value is a header name. */
static const struct cfg_key cfg_header_name_keys[] = {
	{ "verify", CFG_T_FUNC, .off = H(verify), .fn = cfg_header_name },
	{ "subject", CFG_T_FUNC, .off = H(subject), .fn = cfg_header_name },
	{ "issuer", CFG_T_FUNC, .off = H(issuer), .fn = cfg_header_name },
	{ "serial", CFG_T_FUNC, .off = H(serial), .fn = cfg_header_name },
	{ "fingerprint", CFG_T_FUNC, .off = H(fingerprint),
	    .fn = cfg_header_name },
	{ "san_dns", CFG_T_FUNC, .off = H(san_dns), .fn = cfg_header_name },
	{ "san_uri", CFG_T_FUNC, .off = H(san_uri), .fn = cfg_header_name },
	{ "cert", CFG_T_FUNC, .off = H(cert), .fn = cfg_header_name },
	{ "xfcc", CFG_T_FUNC, .off = H(xfcc), .fn = cfg_header_name },
	{ .name = NULL }
};

#define CFG_NHEADER_NAMES \
	(sizeof(cfg_header_name_keys) / sizeof(cfg_header_name_keys[0]) - 1)

/*
 * Each preset's header names, in the order of cfg_header_name_keys; NULL:
 * not sent.  The same table as in hdr.c (which sends them), kept here to
 * report a name clash at load.
 */
static const char *const cfg_preset_names[][CFG_NHEADER_NAMES] = {
	[HEADERS_DEFAULT] = { "X-Client-Verify", "X-Client-Subject",
	    "X-Client-Issuer", "X-Client-Serial",
	    "X-Client-Fingerprint-SHA256", "X-Client-SAN-DNS",
	    "X-Client-SAN-URI", "X-Client-Cert", NULL },
	[HEADERS_NGINX] = { "X-SSL-Client-Verify", "X-SSL-Client-S-DN",
	    "X-SSL-Client-I-DN", "X-SSL-Client-Serial",
	    "X-SSL-Client-Fingerprint", NULL, NULL, "X-SSL-Client-Cert",
	    NULL },
	[HEADERS_ENVOY] = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	    "X-Forwarded-Client-Cert" },
};

/*
 * Names an identity header may not take: HTTP's own framing and hop-by-hop
 * headers (a client's Content-Length would be removed and replaced), and
 * those the proxy sets itself.
 */
static const char *const cfg_header_taken[] = {
	"Host", "Content-Length", "Transfer-Encoding", "Connection",
	"Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade",
	"Expect", "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto",
	"X-Forwarded-Host", NULL
};

#undef C
#undef L
#undef T
#undef A
#undef W
#undef B
#undef H

/* Report a problem at a config location, as "path:line:col: message". */
void
cfg_error(struct errlist *errs, const struct cfg *cfg, struct cfg_loc loc,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	msg = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	(void)vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	errlist_add(errs, "%s:%u:%u: %s", cfg->path, loc.line, loc.col, msg);
	free(msg);
}

static struct cfg_loc
cfg_loc(const yaml_node_t *node)
{
	struct cfg_loc	loc;

	loc.line = (unsigned)node->start_mark.line + 1;
	loc.col = (unsigned)node->start_mark.column + 1;
	return loc;
}

#define cfg_err(p, node, ...) \
	cfg_error((p)->errs, (p)->cfg, cfg_loc(node), __VA_ARGS__)

static yaml_node_t *
cfg_node(struct cfg_parser *p, int i)
{
	return yaml_document_get_node(p->doc, i);
}

/* A plain ~, null or nothing: YAML's null. */
static bool
cfg_is_null(const yaml_node_t *n)
{
	const char	*v;

	if (n->type != YAML_SCALAR_NODE)
		return false;
	if (n->data.scalar.length == 0)
		return true;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/*
 * What the user wrote, for "got ..." in messages: quoted, shortened, and
 * with control characters shown as '?' so that a message stays one line.
 */
static const char *
cfg_got(const yaml_node_t *n, char *buf, size_t len)
{
	const char	*v;
	size_t		 i, max = len - 6;	/* quotes, "...", NUL */

	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (cfg_is_null(n))
		return "an empty value";
	v = (const char *)n->data.scalar.value;
	buf[0] = '"';
	for (i = 0; v[i] != '\0' && i < max; i++)
		buf[i + 1] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ?
		    '?' : v[i];
	(void)snprintf(buf + i + 1, len - i - 1, "%s\"",
	    v[i] != '\0' ? "..." : "");
	return buf;
}

/* Report that the value of key must be what. */
static void
cfg_err_type(struct cfg_parser *p, const char *key, yaml_node_t *n,
    const char *what)
{
	char	buf[256];

	cfg_err(p, n, "\"%s\" must be %s, got %s", key, what,
	    cfg_got(n, buf, sizeof(buf)));
}

/* A non-empty scalar's text, or NULL after reporting that it must be what. */
static const char *
cfg_scalar(struct cfg_parser *p, const char *key, yaml_node_t *n,
    const char *what)
{
	if (n->type != YAML_SCALAR_NODE || cfg_is_null(n)) {
		cfg_err_type(p, key, n, what);
		return NULL;
	}
	if (strlen((const char *)n->data.scalar.value) !=
	    n->data.scalar.length) {
		cfg_err(p, n, "\"%s\" must not contain NUL characters", key);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

/* YAML 1.1 booleans. */
static int
cfg_bool_parse(const char *s, bool *b)
{
	static const char *const	 yes[] = { "true", "yes", "on" };
	static const char *const	 no[] = { "false", "no", "off" };
	size_t				 i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

static int
cfg_bool(struct cfg_parser *p, const char *key, yaml_node_t *n, bool *b)
{
	const char	*s;

	if ((s = cfg_scalar(p, key, n, "true or false")) == NULL)
		return -1;
	if (cfg_bool_parse(s, b) == -1) {
		cfg_err_type(p, key, n, "true or false");
		return -1;
	}
	return 0;
}

/* Plain decimal digits only: no sign, no spaces, no 0x. */
static int
cfg_number_parse(const char *s, unsigned long long *v)
{
	const char	*q;

	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (q = s; *q != '\0'; q++)
		if (*q < '0' || *q > '9')
			return -1;
	*v = strtoull(s, NULL, 10);
	return 0;
}

static int
cfg_number(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    long long *out)
{
	unsigned long long	 v;
	const char		*s, *what;
	char			 buf[128];
	bool			 positive = k->min == 1;

	if (positive)
		what = "a positive integer";
	else {
		(void)snprintf(buf, sizeof(buf), "an integer from %lld to %lld",
		    k->min, k->max);
		what = buf;
	}
	if ((s = cfg_scalar(p, k->name, n, what)) == NULL)
		return -1;
	if (cfg_number_parse(s, &v) == -1 || v < (unsigned long long)k->min ||
	    (!positive && v > (unsigned long long)k->max)) {
		cfg_err_type(p, k->name, n, what);
		return -1;
	}
	if (v > (unsigned long long)k->max) {
		cfg_err(p, n, "\"%s\" must be at most %lld, got \"%s\"",
		    k->name, k->max, s);
		return -1;
	}
	*out = (long long)v;
	return 0;
}

static int
cfg_duration(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    uint64_t *ms)
{
	const char	*s = NULL, *why;
	char		 buf[256];
	uint64_t	 v;

	if (n->type == YAML_SCALAR_NODE && !cfg_is_null(n) &&
	    (s = cfg_scalar(p, k->name, n, "a duration")) == NULL)
		return -1;	/* a NUL inside: reported */
	if (s == NULL || duration_parse(s, &v, &why) == -1) {
		/* 1.5ms looks like a duration: say why it is not one */
		if (s != NULL && strcmp(why, "finer than a millisecond") == 0)
			cfg_err(p, n, "\"%s\" is not a duration: %s is finer "
			    "than a millisecond (durations are whole "
			    "milliseconds at most precise: use e.g. 2ms or "
			    "1.5s)", k->name, cfg_got(n, buf, sizeof(buf)));
		else
			cfg_err(p, n, "\"%s\" is not a duration (use e.g. "
			    "30s, 5m): %s", k->name,
			    cfg_got(n, buf, sizeof(buf)));
		return -1;
	}
	if (v < (uint64_t)k->min) {
		if (k->min > 1)
			cfg_err(p, n, "\"%s\" must be at least %lld ms (use "
			    "e.g. 1h, 30m), got \"%s\"", k->name, k->min, s);
		else
			cfg_err(p, n, "\"%s\" must be longer than 0 (use e.g. "
			    "30s, 5m), got \"%s\"", k->name, s);
		return -1;
	}
	*ms = v;
	return 0;
}

/*
 * A size in bytes: decimal digits, then optionally a unit in any case,
 * with or without a space: b; k, kb, kib (1024); m, mb, mib (1024 * 1024).
 */
static int
cfg_size_parse(const char *s, unsigned long long *v)
{
	static const struct {
		const char		*unit;
		unsigned long long	 mult;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1024 }, { "kb", 1024 }, { "kib", 1024 },
		{ "m", 1024 * 1024 }, { "mb", 1024 * 1024 },
		{ "mib", 1024 * 1024 },
	};
	char			 digits[19];
	unsigned long long	 n;
	size_t			 len, i;

	if ((len = strspn(s, "0123456789")) == 0 || len >= sizeof(digits))
		return -1;
	memcpy(digits, s, len);
	digits[len] = '\0';
	if (cfg_number_parse(digits, &n) == -1)
		return -1;
	s += len;
	if (*s == ' ')
		s++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(s, units[i].unit) != 0)
			continue;
		if (n > ULLONG_MAX / units[i].mult)
			return -1;
		*v = n * units[i].mult;
		return 0;
	}
	return -1;
}

static int
cfg_size(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    size_t *out)
{
	unsigned long long	 v;
	const char		*s;
	char			 what[128];

	(void)snprintf(what, sizeof(what), "a size from %lld to %lld bytes "
	    "(e.g. 16384, 16k, 64KiB, 1m)", k->min, k->max);
	if ((s = cfg_scalar(p, k->name, n, what)) == NULL)
		return -1;
	if (cfg_size_parse(s, &v) == -1 || v < (unsigned long long)k->min ||
	    v > (unsigned long long)k->max) {
		cfg_err_type(p, k->name, n, what);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

/* Append to a string buffer, truncating. */
static void
cfg_append(char *buf, const char *s, size_t len)
{
	size_t	used = strlen(buf);

	if (used < len)
		(void)snprintf(buf + used, len - used, "%s", s);
}

/* "a, b or c" for an enum's names. */
static void
cfg_enum_names(const struct cfg_enum *e, char *buf, size_t len)
{
	size_t	i, n;

	buf[0] = '\0';
	for (n = 0; e[n].name != NULL; n++)
		;
	for (i = 0; i < n; i++) {
		if (i > 0)
			cfg_append(buf, i == n - 1 ? " or " : ", ", len);
		cfg_append(buf, e[i].name, len);
	}
}

static int
cfg_enum(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    int *out)
{
	const char	*s;
	char		 what[256];
	size_t		 i;

	cfg_enum_names(k->values, what, sizeof(what));
	if ((s = cfg_scalar(p, k->name, n, what)) == NULL)
		return -1;
	for (i = 0; k->values[i].name != NULL; i++) {
		if (strcasecmp(s, k->values[i].name) == 0) {
			*out = k->values[i].value;
			return 0;
		}
	}
	cfg_err_type(p, k->name, n, what);
	return -1;
}

/* Store a file path; relative ones are taken from the config's directory. */
static void
cfg_file_set(struct cfg_parser *p, const char *key, yaml_node_t *n,
    struct cfg_file *f, bool resolve)
{
	const char	*s;

	f->loc = cfg_loc(n);
	free(f->path);
	f->path = NULL;
	if ((s = cfg_scalar(p, key, n, "a file path")) == NULL)
		return;
	if (resolve && s[0] != '/' && p->dir != NULL)
		f->path = xasprintf("%s/%s", p->dir, s);
	else
		f->path = xstrdup(s);
}

/*
 * Call fn for each item of a list, or once for a lone scalar (a list of
 * one).  Returns the number of items, or -1 after reporting a mapping.
 */
static long
cfg_items(struct cfg_parser *p, const char *key, yaml_node_t *n,
    void (*fn)(struct cfg_parser *, const char *, yaml_node_t *, size_t,
    void *), void *arg)
{
	yaml_node_item_t	*it;
	size_t			 i;

	if (n->type == YAML_SCALAR_NODE) {
		if (cfg_is_null(n)) {
			cfg_err_type(p, key, n, "a list");
			return -1;
		}
		fn(p, key, n, 0, arg);
		return 1;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_err_type(p, key, n, "a list");
		return -1;
	}
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++)
		fn(p, key, cfg_node(p, *it), i, arg);
	return (long)i;
}

static size_t
cfg_nitems(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return (size_t)(n->data.sequence.items.top -
		    n->data.sequence.items.start);
	return 1;
}

static void
cfg_strlist_item(struct cfg_parser *p, const char *key, yaml_node_t *n,
    size_t i, void *arg)
{
	struct strlist	*l = arg;
	const char	*s;
	char		 buf[256];

	(void)i;
	if (n->type != YAML_SCALAR_NODE || cfg_is_null(n)) {
		cfg_err(p, n, "each \"%s\" entry must be a non-empty string, "
		    "got %s", key, cfg_got(n, buf, sizeof(buf)));
		return;
	}
	if ((s = cfg_scalar(p, key, n, "a string")) != NULL)
		strlist_add(l, s);
}

/* Store one value according to its key's type. */
static void
cfg_value(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	char		*field = (char *)obj + k->off;
	const char	*s;
	long long	 v;
	bool		 b;

	switch (k->type) {
	case CFG_T_BOOL:
		if (cfg_bool(p, k->name, n, &b) == 0)
			*(bool *)field = b;
		break;
	case CFG_T_UINT:
		if (cfg_number(p, k, n, &v) == 0)
			*(unsigned *)field = (unsigned)v;
		break;
	case CFG_T_INT:
		if (cfg_number(p, k, n, &v) == 0)
			*(int *)field = (int)v;
		break;
	case CFG_T_DURATION:
		(void)cfg_duration(p, k, n, (uint64_t *)field);
		break;
	case CFG_T_SIZE:
		(void)cfg_size(p, k, n, (size_t *)field);
		break;
	case CFG_T_ENUM:
		(void)cfg_enum(p, k, n, (int *)field);
		break;
	case CFG_T_STRING:
		*(struct cfg_loc *)((char *)obj + k->loc_off) = cfg_loc(n);
		if ((s = cfg_scalar(p, k->name, n, "a string")) != NULL) {
			free(*(char **)field);
			*(char **)field = xstrdup(s);
		}
		break;
	case CFG_T_FILE:
	case CFG_T_FILE_ASIS:
		cfg_file_set(p, k->name, n, (struct cfg_file *)field,
		    k->type == CFG_T_FILE);
		break;
	case CFG_T_STRLIST:
		if (k->loc_off != 0)	/* a location never comes first */
			*(struct cfg_loc *)((char *)obj + k->loc_off) =
			    cfg_loc(n);
		(void)cfg_items(p, k->name, n, cfg_strlist_item, field);
		break;
	case CFG_T_FUNC:
		k->fn(p, k, n, obj);
		break;
	case CFG_T_UNAVAILABLE:
		break;
	}
}

/* Edit distance, for "did you mean"; long words are never close. */
static size_t
cfg_distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, sub, d[33];
	size_t	prev, tmp;

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		d[j] = j;
	for (i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = d[j];
			sub = prev + (a[i - 1] != b[j - 1]);
			d[j] = (d[j] < d[j - 1] ? d[j] : d[j - 1]) + 1;
			if (sub < d[j])
				d[j] = sub;
			prev = tmp;
		}
	}
	return d[lb];
}

/* The valid key closest to word: edit distance <= 2, else a prefix. */
static const char *
cfg_suggest(const char *word, const struct cfg_key *keys)
{
	const struct cfg_key	*k;
	const char		*best = NULL;
	size_t			 d, bestd = 3, wl, kl;

	for (k = keys; k->name != NULL; k++) {
		if (k->type == CFG_T_UNAVAILABLE)
			continue;
		if ((d = cfg_distance(word, k->name)) < bestd) {
			bestd = d;
			best = k->name;
		}
	}
	if (best != NULL)
		return best;
	wl = strlen(word);
	if (wl < 2)
		return NULL;
	for (k = keys; k->name != NULL; k++) {
		if (k->type == CFG_T_UNAVAILABLE)
			continue;
		kl = strlen(k->name);
		if (strncmp(word, k->name, wl < kl ? wl : kl) == 0)
			return k->name;
	}
	return NULL;
}

/* " in \"tls\" of listener \"api\"": where a key is, for messages. */
static void
cfg_where(struct cfg_parser *p, const char *section, char *buf, size_t len)
{
	if (section != NULL && p->label != NULL)
		(void)snprintf(buf, len, " in \"%s\" of %s", section, p->label);
	else if (section != NULL)
		(void)snprintf(buf, len, " in \"%s\"", section);
	else if (p->label != NULL)
		(void)snprintf(buf, len, " in %s", p->label);
	else
		(void)snprintf(buf, len, " at top level");
}

/* "a, b, c": the names of a key table, for messages. */
static void
cfg_key_names(const struct cfg_key *keys, char *buf, size_t len)
{
	const struct cfg_key	*k;

	buf[0] = '\0';
	for (k = keys; k->name != NULL; k++) {
		if (k->type == CFG_T_UNAVAILABLE)
			continue;
		if (buf[0] != '\0')
			cfg_append(buf, ", ", len);
		cfg_append(buf, k->name, len);
	}
}

/* Report an unknown key; returns the key suggested instead, or NULL. */
static const char *
cfg_err_unknown(struct cfg_parser *p, yaml_node_t *kn, const char *section,
    const struct cfg_key *keys)
{
	const char		*name = (const char *)kn->data.scalar.value;
	const char		*sugg;
	char			 where[256], valid[512];

	cfg_where(p, section, where, sizeof(where));
	if ((sugg = cfg_suggest(name, keys)) != NULL) {
		cfg_err(p, kn, "unknown key \"%s\"%s (did you mean \"%s\"?)",
		    name, where, sugg);
		return sugg;
	}
	cfg_key_names(keys, valid, sizeof(valid));
	cfg_err(p, kn, "unknown key \"%s\"%s; valid keys are: %s", name,
	    where, valid);
	return NULL;
}

/* The value of key in a mapping, or NULL. */
static yaml_node_t *
cfg_map_get(struct cfg_parser *p, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*kn;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start;
	    pair < map->data.mapping.pairs.top; pair++) {
		kn = cfg_node(p, pair->key);
		if (kn != NULL && kn->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)kn->data.scalar.value, key) == 0)
			return cfg_node(p, pair->value);
	}
	return NULL;
}

/* True if key (which must be in keys) was seen. */
static bool
cfg_seen(const struct cfg_key *keys, uint64_t seen, const char *key)
{
	size_t	i;

	for (i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, key) == 0)
			return (seen & (UINT64_C(1) << i)) != 0;
	return false;
}

/*
 * Walk a mapping against its key table: store every known key, report
 * unknown, duplicate and missing required ones.  name is the key holding
 * the mapping (for type errors), section how messages call it.  Returns
 * false if node is not a mapping; seen gets a bit per key index.
 */
static bool
cfg_map(struct cfg_parser *p, yaml_node_t *node, const char *name,
    const char *section, const struct cfg_key *keys, void *obj,
    uint64_t *seen)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*kn, *vn;
	struct cfg_loc		 first[CFG_MAX_KEYS];
	const char		*ks, *sugg;
	char			 buf[256];
	size_t			 i;
	uint64_t		 typo = 0;	/* keys a typo stands for */
	bool			 merge = false;

	*seen = 0;
	if (node->type != YAML_MAPPING_NODE) {
		cfg_err_type(p, name, node, "a mapping");
		return false;
	}
	for (pair = node->data.mapping.pairs.start;
	    pair < node->data.mapping.pairs.top; pair++) {
		kn = cfg_node(p, pair->key);
		vn = cfg_node(p, pair->value);
		if (kn->type != YAML_SCALAR_NODE || cfg_is_null(kn) ||
		    strlen((const char *)kn->data.scalar.value) !=
		    kn->data.scalar.length) {
			cfg_err(p, kn, "a key must be a plain name, got %s",
			    cfg_got(kn, buf, sizeof(buf)));
			continue;
		}
		ks = (const char *)kn->data.scalar.value;
		for (i = 0; keys[i].name != NULL; i++)
			if (strcmp(keys[i].name, ks) == 0)
				break;
		if (keys[i].name == NULL && strcmp(ks, "<<") == 0) {
			/*
			 * libyaml does not merge: the keys "<<" would bring
			 * are missing, but are not reported as such.
			 */
			cfg_err(p, kn, "YAML merge keys (<<) are not "
			    "supported; write the keys out");
			merge = true;
			continue;
		}
		if (keys[i].name == NULL) {
			/*
			 * "lisen" for "listen": the typo's line says it all,
			 * so the key it stands for is not also reported as
			 * missing.
			 */
			if ((sugg = cfg_err_unknown(p, kn, section, keys)) !=
			    NULL)
				for (i = 0; keys[i].name != NULL; i++)
					if (keys[i].name == sugg)
						typo |= UINT64_C(1) << i;
			continue;
		}
		if (keys[i].type == CFG_T_UNAVAILABLE) {
			cfg_err(p, kn, "\"%s\" is not available in this "
			    "version; remove it", ks);
			continue;
		}
		if (*seen & (UINT64_C(1) << i)) {
			cfg_err(p, kn, "duplicate key \"%s\" (first set at "
			    "line %u); keep only one", ks, first[i].line);
			continue;
		}
		*seen |= UINT64_C(1) << i;
		first[i] = cfg_loc(kn);
		cfg_value(p, &keys[i], vn, obj);
	}
	for (i = 0; keys[i].name != NULL && !merge; i++) {
		if (!(keys[i].flags & CFG_REQUIRED) ||
		    ((*seen | typo) & (UINT64_C(1) << i)))
			continue;
		if (p->label != NULL && section != NULL)
			cfg_err(p, node, "%s: missing required key \"%s\" in "
			    "\"%s\"", p->label, keys[i].name, section);
		else if (p->label != NULL)
			cfg_err(p, node, "%s: missing required key \"%s\"",
			    p->label, keys[i].name);
		else if (section != NULL)
			cfg_err(p, node, "missing required key \"%s\" in "
			    "\"%s\"", keys[i].name, section);
		else
			cfg_err(p, node, "missing required key \"%s\"",
			    keys[i].name);
	}
	return true;
}

static void
cfg_workers(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg		*cfg = obj;
	unsigned long long	 v;
	const char		*s;
	const char		*what = "\"auto\" or a positive integer";

	if ((s = cfg_scalar(p, k->name, n, what)) == NULL)
		return;
	if (strcasecmp(s, "auto") == 0) {
		cfg->workers = CFG_WORKERS_AUTO;
		return;
	}
	if (cfg_number_parse(s, &v) == -1 || v == 0) {
		cfg_err_type(p, k->name, n, what);
		return;
	}
	if (v > CFG_WORKERS_MAX) {
		cfg_err(p, n, "\"workers\" must be at most %d, got \"%s\"",
		    CFG_WORKERS_MAX, s);
		return;
	}
	cfg->workers = (unsigned)v;
}

static void
cfg_log(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	uint64_t	seen;

	(void)cfg_map(p, n, k->name, "log", cfg_log_keys, obj, &seen);
}

static void
cfg_name(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_listener	*l = obj;
	const char		*s, *q;

	if ((s = cfg_scalar(p, k->name, n, "a string")) == NULL)
		return;
	for (q = s; *q != '\0'; q++) {
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' ||
		    *q == '.')
			continue;
		cfg_err(p, n, "listener name \"%s\" may only contain letters, "
		    "digits, \"-\", \"_\" and \".\"", s);
		return;
	}
	free(l->name);
	l->name = xstrdup(s);
}

static void
cfg_listen(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_listener	*l = obj;
	const char		*s, *why;

	l->listen_loc = cfg_loc(n);
	if ((s = cfg_scalar(p, k->name, n, "an address")) == NULL)
		return;
	if (addr_parse(s, ADDR_ALLOW_WILDCARD | ADDR_ALLOW_SYSTEMD,
	    &l->listen, &why) == -1) {
		addr_free(&l->listen);
		memset(&l->listen, 0, sizeof(l->listen));
		cfg_err(p, n, "invalid listen address \"%s\": %s (use e.g. "
		    "\"0.0.0.0:8443\", \"[::]:8443\" or \"systemd:NAME\")", s,
		    why);
	}
}

static void
cfg_admin_listen(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	struct cfg_admin	*a = obj;
	const char		*s, *why;

	a->listen_loc = cfg_loc(n);
	if ((s = cfg_scalar(p, k->name, n, "an address")) == NULL)
		return;
	if (addr_parse(s, ADDR_ALLOW_WILDCARD | ADDR_ALLOW_UNIX, &a->listen,
	    &why) == -1) {
		addr_free(&a->listen);
		memset(&a->listen, 0, sizeof(a->listen));
		cfg_err(p, n, "invalid admin listen address \"%s\": %s (use "
		    "e.g. \"127.0.0.1:9901\" or \"unix:/run/mtlsproxy/admin."
		    "sock\")", s, why);
	}
}

static void
cfg_admin(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg	*cfg = obj;
	yaml_node_t	*ln;
	uint64_t	 seen;

	cfg->admin.loc = cfg_loc(n);
	if (!cfg_map(p, n, k->name, "admin", cfg_admin_keys, &cfg->admin,
	    &seen))
		return;
	/* Metrics and health say a lot about the service: local by default. */
	if (cfg->admin.listen.text != NULL && !cfg->admin.remote &&
	    !addr_is_loopback(&cfg->admin.listen) &&
	    (ln = cfg_map_get(p, n, "listen")) != NULL)
		cfg_err(p, ln, "admin endpoint \"%s\" is not on loopback: it "
		    "is plain HTTP without authentication; use 127.0.0.1, ::1 "
		    "or a unix socket, or set \"remote: true\" in admin",
		    cfg->admin.listen.text);
}

/*
 * Protocol IDs from IANA's ALPN registry that a listener is likely to be
 * given. An entry is compared byte for byte with what clients send, so
 * "HTTP/1.1" or "http1.1" would never be chosen: those are refused, with
 * the spelling clients use.
 */
static const char *const cfg_alpn_known[] = {
	"h2", "http/1.1", "http/1.0", "http/0.9", "h3", "acme-tls/1", "imap",
	"pop3", "smtp", "ftp", "xmpp-client", "xmpp-server", "mqtt", "dot",
	"postgresql", "coap", NULL
};

/* Lower case, without '/', '.' and '-': "HTTP/1.1" and "http1.1" alike. */
static void
cfg_alpn_squeeze(const char *s, char *out, size_t len)
{
	size_t	j = 0;

	for (; *s != '\0' && j + 1 < len; s++)
		if (*s != '/' && *s != '.' && *s != '-')
			out[j++] = (char)tolower((unsigned char)*s);
	out[j] = '\0';
}

static void
cfg_alpn_item(struct cfg_parser *p, const char *key, yaml_node_t *n,
    size_t i, void *arg)
{
	struct cfg_tls	*t = arg;
	const char	*s, *hint = NULL;
	char		 a[64], b[64];
	size_t		 j, len;

	if ((s = cfg_scalar(p, key, n, "a protocol name such as h2 or "
	    "http/1.1")) == NULL)
		return;
	t->alpn_locs[t->alpn.n] = cfg_loc(n);
	len = strlen(s);
	if (len == 0 || len > 255) {
		cfg_err(p, n, "\"%s\" entry %zu: a protocol name is 1 to 255 "
		    "bytes long", key, i + 1);
		return;
	}
	if (strchr(s, ',') != NULL || strchr(s, ' ') != NULL) {
		cfg_err(p, n, "\"%s\": one protocol per entry, as a list: "
		    "alpn: [h2, http/1.1]", key);
		return;
	}
	cfg_alpn_squeeze(s, a, sizeof(a));
	if (strcmp(a, "http2") == 0)
		hint = "h2";
	for (j = 0; cfg_alpn_known[j] != NULL && hint == NULL; j++) {
		if (strcmp(s, cfg_alpn_known[j]) == 0)
			break;
		cfg_alpn_squeeze(cfg_alpn_known[j], b, sizeof(b));
		if (strcmp(a, b) == 0)
			hint = cfg_alpn_known[j];
	}
	if (hint != NULL) {
		cfg_err(p, n, "\"%s\": \"%s\" would never match: clients "
		    "send \"%s\" (protocol names are compared byte for byte)",
		    key, s, hint);
		return;
	}
	if (strcasecmp(s, "h2c") == 0) {
		cfg_err(p, n, "\"%s\": \"h2c\" is HTTP/2 without TLS, which no "
		    "client offers over TLS; HTTP/2 clients (gRPC too) send "
		    "\"h2\"", key);
		return;
	}
	if (strcasecmp(s, "grpc") == 0 || strcasecmp(s, "grpc-exp") == 0) {
		cfg_err(p, n, "\"%s\": gRPC clients offer \"h2\" (gRPC runs "
		    "over HTTP/2)", key);
		return;
	}
	for (j = 0; j < t->alpn.n; j++)
		if (strcmp(t->alpn.v[j], s) == 0) {
			cfg_err(p, n, "\"%s\": \"%s\" is listed twice", key, s);
			return;
		}
	strlist_add(&t->alpn, s);
}

/*
 * tls.alpn: the application protocols (ALPN, RFC 7301) the listener
 * accepts, preferred first.
 */
static void
cfg_alpn(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_tls	*t = obj;

	if (n->type == YAML_MAPPING_NODE || cfg_is_null(n)) {
		cfg_err_type(p, k->name, n, "a list of protocol names such as "
		    "[h2, http/1.1]");
		return;
	}
	strlist_free(&t->alpn);
	free(t->alpn_locs);
	t->alpn_locs = xcalloc(cfg_nitems(n), sizeof(*t->alpn_locs));
	(void)cfg_items(p, k->name, n, cfg_alpn_item, t);
}

static void
cfg_tls(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_listener	*l = obj;
	struct cfg_tls		*t = &l->tls;
	const struct cfg_key	*keys = cfg_tls_keys;
	uint64_t		 seen;
	bool			 cert, key, p12, kpf, ppf;
	size_t			 nerrs = p->errs->n;

	t->loc = cfg_loc(n);
	if (!cfg_map(p, n, k->name, "tls", keys, t, &seen))
		return;
	cert = cfg_seen(keys, seen, "cert");
	key = cfg_seen(keys, seen, "key");
	p12 = cfg_seen(keys, seen, "pkcs12");
	kpf = cfg_seen(keys, seen, "key_passphrase_file");
	ppf = cfg_seen(keys, seen, "pkcs12_passphrase_file");

	if (p12 && (cert || key))
		cfg_error(p->errs, p->cfg, t->pkcs12.loc, "\"pkcs12\" cannot "
		    "be used together with \"cert\"/\"key\": use either cert "
		    "+ key or pkcs12, not both");
	else if (!p12 && !cert && !key)
		cfg_err(p, n, "%s: \"tls\" needs \"cert\" and \"key\" (PEM "
		    "files), or \"pkcs12\"", p->label);
	else if (cert && !key)
		cfg_err(p, n, "%s: \"tls\" has \"cert\" but no \"key\"; add "
		    "\"key\" (the certificate's private key file)", p->label);
	else if (key && !cert)
		cfg_err(p, n, "%s: \"tls\" has \"key\" but no \"cert\"; add "
		    "\"cert\" (the server certificate file)", p->label);
	if (kpf && !key)
		cfg_error(p->errs, p->cfg, t->key_passphrase_file.loc,
		    "\"key_passphrase_file\" is only used with \"key\"; %s",
		    p12 ? "for \"pkcs12\" use \"pkcs12_passphrase_file\"" :
		    "remove it or add \"key\"");
	if (ppf && !p12)
		cfg_error(p->errs, p->cfg, t->pkcs12_passphrase_file.loc,
		    "\"pkcs12_passphrase_file\" is only used with \"pkcs12\"; "
		    "%s", key ? "for \"key\" use \"key_passphrase_file\"" :
		    "remove it or add \"pkcs12\"");
	l->tls_ok = p->errs->n == nerrs;
}

static void
cfg_trusted_cert(struct cfg_parser *p, const char *key, yaml_node_t *n,
    size_t i, void *arg)
{
	struct cfg_client_auth	*ca = arg;

	cfg_file_set(p, key, n, &ca->trusted_certs[i], true);
}

static void
cfg_trusted_certs(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	struct cfg_client_auth	*ca = obj;

	if (n->type == YAML_MAPPING_NODE || cfg_is_null(n)) {
		cfg_err_type(p, k->name, n, "a list of file paths");
		return;
	}
	ca->n_trusted_certs = cfg_nitems(n);
	ca->trusted_certs = xcalloc(ca->n_trusted_certs,
	    sizeof(*ca->trusted_certs));
	(void)cfg_items(p, k->name, n, cfg_trusted_cert, ca);
}

static void
cfg_client_auth(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	struct cfg_listener	*l = obj;
	struct cfg_client_auth	*ca = &l->client_auth;
	uint64_t		 seen;
	size_t			 nerrs = p->errs->n;

	ca->loc = cfg_loc(n);
	if (!cfg_map(p, n, k->name, "client_auth", cfg_client_auth_keys, ca,
	    &seen))
		return;
	if (!cfg_seen(cfg_client_auth_keys, seen, "ca") &&
	    ca->n_trusted_certs == 0)
		cfg_err(p, n, "%s: \"client_auth\" needs \"ca\" (the CA "
		    "certificates that sign client certificates) or "
		    "\"trusted_certs\" (exact client certificates), or both",
		    p->label);
	l->client_auth_ok = p->errs->n == nerrs;
}

static void
cfg_allow(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_client_auth	*ca = obj;
	uint64_t		 seen;

	ca->allow.loc = cfg_loc(n);
	(void)cfg_map(p, n, k->name, "client_auth.allow", cfg_allow_keys,
	    &ca->allow, &seen);
}

/*
 * "*" stands for exactly one path segment (policy.c): it must be a whole
 * segment, after "scheme://authority/" when there is an authority.
 */
static bool
cfg_uri_pattern_ok(const char *s)
{
	const char	*seg, *slash;
	size_t		 i, n, path = 1;

	if (strchr(s, '*') == NULL)
		return true;
	if ((slash = strstr(s, "://")) != NULL && slash > s &&
	    strchr(s, '/') == slash + 1)
		path = 3;
	for (i = 0, seg = s; seg != NULL; i++) {
		slash = strchr(seg, '/');
		n = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
		if (memchr(seg, '*', n) != NULL &&
		    (i < path || n != 1))
			return false;
		seg = slash != NULL ? slash + 1 : NULL;
	}
	return true;
}

static void
cfg_san_uri_item(struct cfg_parser *p, const char *key, yaml_node_t *n,
    size_t i, void *arg)
{
	struct strlist	*l = arg;
	size_t		 before = l->n;

	cfg_strlist_item(p, key, n, i, arg);
	if (l->n == before || cfg_uri_pattern_ok(l->v[before]))
		return;
	cfg_err(p, n, "san_uri \"%s\": \"*\" must be a whole path segment, "
	    "as in \"spiffe://corp.example/ns/*/sa/web\" (it matches exactly "
	    "one segment; it cannot match part of a segment or the host)",
	    l->v[before]);
}

static void
cfg_san_uri(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_allow	*a = obj;

	a->san_uri_loc = cfg_loc(n);
	(void)cfg_items(p, k->name, n, cfg_san_uri_item, &a->san_uri);
}

static void
cfg_fingerprint_item(struct cfg_parser *p, const char *key, yaml_node_t *n,
    size_t i, void *arg)
{
	struct cfg_allow	*a = arg;
	const char		*s;
	char			 buf[256];

	(void)i;
	if (n->type != YAML_SCALAR_NODE || cfg_is_null(n)) {
		cfg_err(p, n, "each \"%s\" entry must be a string of 64 hex "
		    "digits, got %s", key, cfg_got(n, buf, sizeof(buf)));
		return;
	}
	if ((s = cfg_scalar(p, key, n, "a string")) == NULL)
		return;
	if (hex_decode(s, a->fingerprint_sha256[a->n_fingerprint_sha256],
	    FINGERPRINT_LEN) == -1) {
		cfg_err(p, n, "\"%s\" entry \"%s\" is not a SHA-256 "
		    "fingerprint: use 64 hex digits, colons optional (see "
		    "openssl x509 -noout -fingerprint -sha256 -in CERT)", key,
		    s);
		return;
	}
	a->n_fingerprint_sha256++;
}

static void
cfg_fingerprints(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	struct cfg_allow	*a = obj;

	a->fingerprint_sha256_loc = cfg_loc(n);
	if (n->type == YAML_MAPPING_NODE || cfg_is_null(n)) {
		cfg_err_type(p, k->name, n, "a list");
		return;
	}
	a->fingerprint_sha256 = xcalloc(cfg_nitems(n),
	    sizeof(*a->fingerprint_sha256));
	(void)cfg_items(p, k->name, n, cfg_fingerprint_item, a);
}

static void
cfg_backend_address_item(struct cfg_parser *p, const char *key,
    yaml_node_t *n, size_t i, void *arg)
{
	struct cfg_backend	*b = arg;
	const char		*s, *why;

	if ((s = cfg_scalar(p, key, n, "an address")) == NULL)
		return;
	if (addr_parse(s, ADDR_ALLOW_UNIX, &b->addrs[i], &why) == -1) {
		addr_free(&b->addrs[i]);
		memset(&b->addrs[i], 0, sizeof(b->addrs[i]));
		cfg_err(p, n, "invalid backend address \"%s\": %s (use e.g. "
		    "\"127.0.0.1:8080\", \"[::1]:8080\" or "
		    "\"unix:/run/app.sock\")", s, why);
	}
}

static void
cfg_backend_address(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	struct cfg_backend	*b = obj;

	if (n->type == YAML_MAPPING_NODE || cfg_is_null(n)) {
		cfg_err_type(p, k->name, n,
		    "an address or a list of addresses");
		return;
	}
	if (cfg_nitems(n) == 0) {
		cfg_err(p, n, "\"address\" is an empty list; give at least one "
		    "backend address");
		return;
	}
	b->naddrs = cfg_nitems(n);
	b->addrs = xcalloc(b->naddrs, sizeof(*b->addrs));
	(void)cfg_items(p, k->name, n, cfg_backend_address_item, b);
}

static void
cfg_backend(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_listener	*l = obj;
	struct cfg_backend	*b = &l->backend;
	yaml_node_t		*an, *item, *pn;
	uint64_t		 seen;
	size_t			 i;

	b->loc = cfg_loc(n);
	if (!cfg_map(p, n, k->name, "backend", cfg_backend_keys, b, &seen))
		return;
	if (b->proxy_protocol && b->mode == BACKEND_HTTP &&
	    (pn = cfg_map_get(p, n, "proxy_protocol")) != NULL)
		cfg_err(p, pn, "proxy_protocol applies to mode: tcp, but this "
		    "backend has mode: http (which sends the client identity "
		    "in headers); remove proxy_protocol or set it to false");
	if (b->keepalive > 0 && b->mode != BACKEND_HTTP &&
	    (pn = cfg_map_get(p, n, "keepalive")) != NULL)
		cfg_err(p, pn, "keepalive applies to mode: http (idle backend "
		    "connections kept between requests of different clients), "
		    "but this backend has mode: tcp; remove keepalive");
	if (b->remote || (an = cfg_map_get(p, n, "address")) == NULL)
		return;
	/*
	 * The backend leg is plaintext: an address off this host would send
	 * the authenticated traffic unencrypted over the network, so that
	 * must be said explicitly.
	 */
	for (i = 0; i < b->naddrs; i++) {
		if (b->addrs[i].text == NULL || addr_is_loopback(&b->addrs[i]))
			continue;
		item = an;
		if (an->type == YAML_SEQUENCE_NODE)
			item = cfg_node(p, an->data.sequence.items.start[i]);
		cfg_err(p, item, "backend \"%s\" is not a loopback address or "
		    "a unix socket: the plaintext traffic to it can leave the "
		    "machine unencrypted; set \"remote: true\" in backend to "
		    "allow it", b->addrs[i].text);
	}
}

static void
cfg_timeouts(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	uint64_t	seen;

	(void)cfg_map(p, n, k->name, "timeouts", cfg_timeout_keys, obj, &seen);
}

/* RFC 9110 token: what a header name may be. */
static bool
cfg_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') ||
		    strchr("!#$%&'*+-.^_`|~", *s) != NULL)
			continue;
		return false;
	}
	return true;
}

/* Header names as the proxy compares them: any case, '_' as '-'. */
static bool
cfg_header_same(const char *a, const char *b)
{
	char	ca, cb;

	for (;; a++, b++) {
		ca = *a == '_' ? '-' : *a;
		cb = *b == '_' ? '-' : *b;
		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

/* A header name for one identity fact; "" (or an empty value): not sent. */
static void
cfg_header_name(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	char		**field = (char **)((char *)obj + k->off);
	const char	 *s;
	char		  buf[256];

	if (n->type == YAML_SCALAR_NODE && cfg_is_null(n)) {
		free(*field);
		*field = xstrdup("");
		return;
	}
	if ((s = cfg_scalar(p, k->name, n, "a header name or \"\"")) == NULL)
		return;
	if (!cfg_token(s)) {
		cfg_err(p, n, "header name %s for \"%s\" is not an HTTP "
		    "token: use letters, digits and !#$%%&'*+-.^_`|~ only, no "
		    "spaces or colons (or \"\" to not send this header)",
		    cfg_got(n, buf, sizeof(buf)), k->name);
		return;
	}
	free(*field);
	*field = xstrdup(s);
}

static void
cfg_header_names(struct cfg_parser *p, const struct cfg_key *k,
    yaml_node_t *n, void *obj)
{
	uint64_t	seen;

	if (cfg_is_null(n))
		return;		/* every entry commented out: no overrides */
	(void)cfg_map(p, n, k->name, "headers.names", cfg_header_name_keys,
	    obj, &seen);
}

/*
 * The names a listener sends must differ from each other, and from the
 * headers HTTP and the proxy use.  Only names set in headers.names (the
 * node names) can be wrong: the presets' own are fine.
 */
static void
cfg_header_check(struct cfg_parser *p, const struct cfg_headers *h,
    yaml_node_t *names)
{
	const struct cfg_key	*keys = cfg_header_name_keys;
	const char		*eff[CFG_NHEADER_NAMES];
	yaml_node_t		*vn, *other;
	size_t			 i, j;

	for (i = 0; i < CFG_NHEADER_NAMES; i++) {
		eff[i] = *(char *const *)((const char *)h + keys[i].off);
		if (eff[i] == NULL)
			eff[i] = cfg_preset_names[h->preset][i];
		if (eff[i] != NULL && eff[i][0] == '\0')
			eff[i] = NULL;
	}
	for (i = 0; i < CFG_NHEADER_NAMES; i++) {
		if (eff[i] == NULL ||
		    (vn = cfg_map_get(p, names, keys[i].name)) == NULL)
			continue;
		for (j = 0; cfg_header_taken[j] != NULL; j++)
			if (cfg_header_same(eff[i], cfg_header_taken[j]))
				break;
		if (cfg_header_taken[j] != NULL) {
			cfg_err(p, vn, "header name \"%s\" for \"%s\" is one "
			    "that HTTP or the proxy itself uses; choose another "
			    "name", eff[i], keys[i].name);
			continue;
		}
		/* A clash of two set names is reported at the second. */
		for (j = 0; j < CFG_NHEADER_NAMES; j++) {
			if (j == i || eff[j] == NULL ||
			    !cfg_header_same(eff[i], eff[j]))
				continue;
			other = cfg_map_get(p, names, keys[j].name);
			if (other != NULL && j > i)
				continue;
			cfg_err(p, vn, "header name \"%s\" for \"%s\" is "
			    "already the name for \"%s\"%s; give each header "
			    "its own name", eff[i], keys[i].name, keys[j].name,
			    other == NULL ? " in this preset" : "");
			break;
		}
	}
}

static void
cfg_headers(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg_listener	*l = obj;
	struct cfg_headers	*h = &l->headers;
	uint64_t		 seen;

	h->loc = cfg_loc(n);
	if (!cfg_map(p, n, k->name, "headers", cfg_headers_keys, h, &seen))
		return;
	cfg_header_check(p, h, cfg_map_get(p, n, "names"));
}

/* Two listeners on one address: the second bind would fail at start. */
static bool
cfg_addr_same(const struct addr *a, const struct addr *b)
{
	if (a->text == NULL || b->text == NULL || a->kind != b->kind)
		return false;
	if (a->kind == ADDR_SYSTEMD)
		return strcmp(a->name, b->name) == 0;
	return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* An IP address is the any address (0.0.0.0, ::). */
static bool
cfg_addr_any(const struct addr *a)
{
	static const struct in6_addr	any6 = IN6ADDR_ANY_INIT;

	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
	    &any6, sizeof(any6)) == 0;
}

/*
 * Two sockets that would not both bind: the same port of the same family,
 * on the same address or with either on the any address (which takes the
 * port on every address of its family).  IPv6 sockets are bound v6only
 * (listener.c, admin.c), so [::] and 0.0.0.0 do not clash.  For listeners
 * and the admin endpoint alike.
 */
static bool
cfg_addr_clash(const struct addr *a, const struct addr *b)
{
	in_port_t	pa, pb;

	if (cfg_addr_same(a, b))
		return true;
	if (a->text == NULL || b->text == NULL ||
	    a->kind != ADDR_INET || b->kind != ADDR_INET ||
	    a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		pa = ((const struct sockaddr_in *)&a->ss)->sin_port;
		pb = ((const struct sockaddr_in *)&b->ss)->sin_port;
	} else {
		pa = ((const struct sockaddr_in6 *)&a->ss)->sin6_port;
		pb = ((const struct sockaddr_in6 *)&b->ss)->sin6_port;
	}
	return pa == pb && (cfg_addr_any(a) || cfg_addr_any(b));
}

/* Checks across keys, once the whole tree is read. */
static void
cfg_check_tree(struct cfg *cfg, struct errlist *errs)
{
	size_t	i;

	if (cfg->group != NULL && cfg->user == NULL)
		cfg_error(errs, cfg, cfg->group_loc, "\"group\" needs \"user\" "
		    "as well (the group to switch to along with the user); add "
		    "\"user\", or remove \"group\"");
	for (i = 0; i < cfg->nlisteners && cfg->listeners != NULL; i++)
		if (cfg_addr_clash(&cfg->admin.listen,
		    &cfg->listeners[i].listen)) {
			cfg_error(errs, cfg, cfg->admin.listen_loc, "admin "
			    "listen address \"%s\" is taken by the listener "
			    "at line %u (\"%s\"); give the admin endpoint a "
			    "port of its own", cfg->admin.listen.text,
			    cfg->listeners[i].loc.line,
			    cfg->listeners[i].listen.text);
			break;
		}
}

/* The backend mapping says mode tcp, by default or as written. */
static bool
cfg_mode_is_tcp(struct cfg_parser *p, yaml_node_t *backend)
{
	yaml_node_t	*mode;

	if (backend == NULL || backend->type != YAML_MAPPING_NODE)
		return false;	/* reported */
	if ((mode = cfg_map_get(p, backend, "mode")) == NULL)
		return true;
	return mode->type == YAML_SCALAR_NODE &&
	    strcasecmp((const char *)mode->data.scalar.value, "tcp") == 0;
}

/* http mode speaks HTTP/1.x to clients: tls.alpn may only list that. */
static void
cfg_alpn_http(struct cfg_parser *p, const struct cfg_listener *l)
{
	const struct cfg_tls	*t = &l->tls;
	size_t			 i;

	for (i = 0; i < t->alpn.n; i++)
		if (strcmp(t->alpn.v[i], "http/1.1") != 0 &&
		    strcmp(t->alpn.v[i], "http/1.0") != 0)
			cfg_error(p->errs, p->cfg, t->alpn_locs[i], "%s: tls.alpn "
			    "\"%s\": mode: http speaks HTTP/1.1 to clients, so "
			    "only http/1.1 and http/1.0 can be offered; for an "
			    "HTTP/2 or gRPC backend use mode: tcp with alpn: "
			    "[h2]", p->label, t->alpn.v[i]);
}

static void
cfg_listener(struct cfg_parser *p, yaml_node_t *n, size_t idx)
{
	struct cfg		*cfg = p->cfg;
	struct cfg_listener	*l = &cfg->listeners[idx], *o;
	yaml_node_t		*name;
	char			 buf[256];
	uint64_t		 seen;
	size_t			 i;

	l->loc = cfg_loc(n);
	if (n->type != YAML_MAPPING_NODE) {
		cfg_err(p, n, "listener #%zu must be a mapping with name, "
		    "listen, tls, client_auth and backend, got %s", idx + 1,
		    cfg_got(n, buf, sizeof(buf)));
		return;
	}
	name = cfg_map_get(p, n, "name");
	if (name != NULL && name->type == YAML_SCALAR_NODE &&
	    !cfg_is_null(name))
		p->label = xasprintf("listener \"%s\"",
		    (const char *)name->data.scalar.value);
	else
		p->label = xasprintf("listener #%zu", idx + 1);
	(void)cfg_map(p, n, "listeners", NULL, cfg_listener_keys, l, &seen);
	if (cfg_seen(cfg_listener_keys, seen, "headers") &&
	    cfg_mode_is_tcp(p, cfg_map_get(p, n, "backend")))
		cfg_error(p->errs, p->cfg, l->headers.loc, "%s: \"headers\" "
		    "apply to mode: http, but the backend has mode: tcp; set "
		    "\"mode: http\" in backend, or remove \"headers\"",
		    p->label);
	if (l->backend.mode == BACKEND_HTTP)
		cfg_alpn_http(p, l);
	free(p->label);
	p->label = NULL;

	for (i = 0; i < idx; i++) {
		o = &cfg->listeners[i];
		if (l->name != NULL && o->name != NULL &&
		    strcmp(l->name, o->name) == 0)
			cfg_err(p, name, "duplicate listener name \"%s\" (the "
			    "listener at line %u has it too); give each "
			    "listener its own name", l->name, o->loc.line);
		if (cfg_addr_same(&l->listen, &o->listen))
			cfg_error(p->errs, p->cfg, l->listen_loc, "listen "
			    "address \"%s\" is already used by the listener "
			    "at line %u; each listener needs its own",
			    l->listen.text, o->loc.line);
		else if (cfg_addr_clash(&l->listen, &o->listen)) {
			if (o->name != NULL)
				(void)snprintf(buf, sizeof(buf), "\"%s\"",
				    o->name);
			else
				(void)snprintf(buf, sizeof(buf), "#%zu", i + 1);
			cfg_error(p->errs, p->cfg, l->listen_loc, "listen "
			    "address \"%s\" overlaps the listener %s at line "
			    "%u (\"%s\"): a wildcard address takes the port on "
			    "every address; give one of them another port",
			    l->listen.text, buf, o->loc.line, o->listen.text);
		}
	}
}

static void
cfg_listeners(struct cfg_parser *p, const struct cfg_key *k, yaml_node_t *n,
    void *obj)
{
	struct cfg		*cfg = obj;
	yaml_node_item_t	*it;
	size_t			 i;

	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_err_type(p, k->name, n, "a list");
		return;
	}
	cfg->nlisteners = cfg_nitems(n);
	if (cfg->nlisteners == 0) {
		cfg_err(p, n, "\"listeners\" is empty; define at least one "
		    "listener");
		return;
	}
	cfg->listeners = xcalloc(cfg->nlisteners, sizeof(*cfg->listeners));
	for (i = 0; i < cfg->nlisteners; i++)
		cfg->listeners[i] = cfg_listener_default;
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++)
		cfg_listener(p, cfg_node(p, *it), i);
}

/* Read a whole file; -1 with errno set. */
static int
cfg_read(const char *path, char **bufp, size_t *lenp)
{
	FILE	*f;
	char	*buf = NULL;
	size_t	 len = 0, n;
	int	 saved;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	buf = xmalloc(CFG_MAX_SIZE + 1);
	while ((n = fread(buf + len, 1, CFG_MAX_SIZE + 1 - len, f)) > 0) {
		len += n;
		if (len > CFG_MAX_SIZE)
			break;
	}
	if (ferror(f) || len > CFG_MAX_SIZE) {
		saved = ferror(f) ? errno : EFBIG;
		free(buf);
		(void)fclose(f);
		errno = saved;
		return -1;
	}
	(void)fclose(f);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* A byte offset into buf as a location (libyaml gives reader errors so). */
static struct cfg_loc
cfg_offset_loc(const char *buf, size_t len, size_t off)
{
	struct cfg_loc	loc = { 1, 1 };
	size_t		i;

	for (i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			loc.line++;
			loc.col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80)
			loc.col++;
	}
	return loc;
}

/* True if line (0-based) of buf is indented with a tab. */
static bool
cfg_line_has_tab(const char *buf, size_t len, size_t line)
{
	size_t	i = 0;

	while (line > 0 && i < len)
		if (buf[i++] == '\n')
			line--;
	for (; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++)
		if (buf[i] == '\t')
			return true;
	return false;
}

static void
cfg_syntax_error(struct cfg_parser *p, yaml_parser_t *y, const char *buf,
    size_t len)
{
	struct cfg_loc	 loc;
	char		 ctx[256] = "";
	const char	*hint = "";

	if (y->error == YAML_MEMORY_ERROR)
		fatalx("out of memory");
	if (y->error == YAML_READER_ERROR) {
		loc = cfg_offset_loc(buf, len, y->problem_offset);
		cfg_error(p->errs, p->cfg, loc, "YAML syntax error: %s; the "
		    "file must be UTF-8 text",
		    y->problem != NULL ? y->problem : "unreadable input");
		return;
	}
	loc.line = (unsigned)y->problem_mark.line + 1;
	loc.col = (unsigned)y->problem_mark.column + 1;
	if (y->context != NULL) {
		if (y->context_mark.line != y->problem_mark.line)
			(void)snprintf(ctx, sizeof(ctx), " %s that started at "
			    "line %u", y->context,
			    (unsigned)y->context_mark.line + 1);
		else
			(void)snprintf(ctx, sizeof(ctx), " %s", y->context);
	}
	if (cfg_line_has_tab(buf, len, y->problem_mark.line))
		hint = " (indent with spaces: YAML does not allow tabs)";
	else if (y->problem != NULL &&
	    (strncmp(y->problem, "did not find expected key", 25) == 0 ||
	    strncmp(y->problem, "did not find expected '-' indicator",
	    35) == 0 ||
	    strncmp(y->problem, "mapping values are not allowed", 30) == 0))
		/* what these usually are, though libyaml cannot say */
		hint = " (check the indentation of this line and the one "
		    "before, and for an unclosed quote)";
	cfg_error(p->errs, p->cfg, loc, "YAML syntax error: %s%s%s",
	    y->problem != NULL ? y->problem : "invalid YAML", ctx, hint);
}

/* The config's directory, for relative file names; NULL for ".". */
static char *
cfg_dir(const char *path)
{
	const char	*slash;

	if ((slash = strrchr(path, '/')) == NULL)
		return NULL;
	if (slash == path)
		return xstrdup("");	/* "/x.yaml": "" + "/" + name */
	return xasprintf("%.*s", (int)(slash - path), path);
}

static unsigned
cfg_ncpus(void)
{
	long	n;

	if ((n = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		return 1;
	if (n > CFG_WORKERS_AUTO_MAX)
		return CFG_WORKERS_AUTO_MAX;
	return (unsigned)n;
}

/*
 * Read and validate a config, adding every problem to errs. The config is
 * returned even when some were found (each listener says whether it was
 * read without one); NULL only when the file could not be read.
 */
struct cfg *
cfg_load_partial(const char *path, struct errlist *errs)
{
	struct cfg_parser	 p;
	struct cfg		*cfg;
	yaml_parser_t		 y;
	yaml_document_t		 doc, extra;
	yaml_node_t		*root;
	struct cfg_loc		 start = { 1, 1 };
	uint64_t		 seen;
	size_t			 nerrs = errs->n, len;
	char			*buf, got[256], keys[512];

	cfg = xcalloc(1, sizeof(*cfg));
	*cfg = cfg_default;
	cfg->path = xstrdup(path);
	if (cfg_read(path, &buf, &len) == -1) {
		errlist_add(errs, "%s: cannot read config: %s", path,
		    strerror(errno));
		cfg_free(cfg);
		return NULL;
	}

	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.errs = errs;
	p.doc = &doc;
	p.dir = cfg_dir(path);

	/*
	 * libyaml reads UTF-16 with a byte order mark.  Without one, a NUL
	 * in one of the first two bytes (never valid YAML) gives it away,
	 * where libyaml would only see control characters.
	 */
	if (len >= 2 && (buf[0] == '\0') != (buf[1] == '\0')) {
		cfg_error(errs, cfg, start, "the file is UTF-16 (without a "
		    "byte order mark); save it as UTF-8");
		free(buf);
		free(p.dir);
		goto check;
	}
	if (!yaml_parser_initialize(&y))
		fatalx("out of memory");
	yaml_parser_set_input_string(&y, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&y, &doc)) {
		cfg_syntax_error(&p, &y, buf, len);
		goto done;
	}
	if ((root = yaml_document_get_root_node(&doc)) == NULL)
		cfg_error(errs, cfg, start, "the config is empty; it needs at "
		    "least \"listeners\"");
	else if (root->type != YAML_MAPPING_NODE) {
		cfg_key_names(cfg_top_keys, keys, sizeof(keys));
		cfg_err(&p, root, "the config must be a mapping of keys (%s), "
		    "got %s", keys, cfg_got(root, got, sizeof(got)));
	} else
		(void)cfg_map(&p, root, NULL, NULL, cfg_top_keys, cfg, &seen);

	if (root != NULL) {
		if (!yaml_parser_load(&y, &extra))
			cfg_syntax_error(&p, &y, buf, len);
		else {
			if ((root = yaml_document_get_root_node(&extra)) !=
			    NULL)
				cfg_error(errs, cfg, (struct cfg_loc){
				    (unsigned)extra.start_mark.line + 1,
				    (unsigned)extra.start_mark.column + 1 },
				    "only one YAML document is allowed; "
				    "remove this \"---\" and what follows");
			yaml_document_delete(&extra);
		}
	}
	yaml_document_delete(&doc);
 done:
	yaml_parser_delete(&y);
	free(buf);
	free(p.dir);
 check:
	if (cfg->workers == CFG_WORKERS_AUTO)
		cfg->workers = cfg_ncpus();
	cfg_check_tree(cfg, errs);
	(void)nerrs;
	return cfg;
}

/* Read and validate a config; NULL after adding every problem to errs. */
struct cfg *
cfg_load(const char *path, struct errlist *errs)
{
	struct cfg	*cfg;
	size_t		 nerrs = errs->n;

	if ((cfg = cfg_load_partial(path, errs)) != NULL && errs->n > nerrs) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

static void
cfg_file_free(struct cfg_file *f)
{
	free(f->path);
	f->path = NULL;
}

static void
cfg_listener_free(struct cfg_listener *l)
{
	struct cfg_tls		*t = &l->tls;
	struct cfg_client_auth	*ca = &l->client_auth;
	struct cfg_allow	*a = &ca->allow;
	size_t			 i;

	free(l->name);
	addr_free(&l->listen);

	cfg_file_free(&t->cert);
	cfg_file_free(&t->key);
	cfg_file_free(&t->key_passphrase_file);
	cfg_file_free(&t->pkcs12);
	cfg_file_free(&t->session_ticket_key_file);
	cfg_file_free(&t->pkcs12_passphrase_file);
	free(t->ciphers);
	free(t->ciphersuites);
	free(t->groups);
	strlist_free(&t->alpn);
	free(t->alpn_locs);

	cfg_file_free(&ca->ca);
	for (i = 0; i < ca->n_trusted_certs; i++)
		cfg_file_free(&ca->trusted_certs[i]);
	free(ca->trusted_certs);
	cfg_file_free(&ca->crl);
	strlist_free(&a->subject_cn);
	strlist_free(&a->subject_ou);
	strlist_free(&a->subject_o);
	strlist_free(&a->san_dns);
	strlist_free(&a->san_uri);
	strlist_free(&a->san_email);
	free(a->fingerprint_sha256);

	for (i = 0; i < l->backend.naddrs; i++)
		addr_free(&l->backend.addrs[i]);
	free(l->backend.addrs);

	free(l->headers.verify);
	free(l->headers.subject);
	free(l->headers.issuer);
	free(l->headers.serial);
	free(l->headers.fingerprint);
	free(l->headers.san_dns);
	free(l->headers.san_uri);
	free(l->headers.cert);
	free(l->headers.xfcc);
}

/* Descriptors one client connection of listener l takes (its own socket,
 * and in tcp mode its backend connection; in http mode backend connections
 * are counted with the listener's idle pool). */
unsigned
cfg_fd_per_conn(const struct cfg_listener *l)
{
	return l->backend.mode == BACKEND_TCP ? 2 : 1;
}

/*
 * The descriptors cfg needs besides its client connections: a listening
 * socket per listener and worker, the idle backend connections each worker
 * keeps in http mode, the workers' event loops, and CFG_FD_RESERVE for the
 * rest (admin endpoint, file watch, logs).
 */
unsigned long
cfg_fd_fixed(const struct cfg *cfg)
{
	unsigned long	n = CFG_FD_RESERVE + 4UL * cfg->workers;
	size_t		i;

	for (i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		n += cfg->workers;
		if (l->backend.mode == BACKEND_HTTP)
			n += (unsigned long)l->backend.keepalive * cfg->workers;
	}
	return n;
}

/* About how many descriptors cfg needs with every listener at its
 * max_connections: cfg_fd_fixed() plus cfg_fd_per_conn() per connection. */
unsigned long
cfg_fd_need(const struct cfg *cfg)
{
	unsigned long	n = cfg_fd_fixed(cfg);
	size_t		i;

	for (i = 0; i < cfg->nlisteners; i++)
		n += (unsigned long)cfg_fd_per_conn(&cfg->listeners[i]) *
		    cfg->listeners[i].max_connections;
	return n;
}

/* Free a config and everything it owns; NULL is fine. */
void
cfg_free(struct cfg *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlisteners; i++)
		cfg_listener_free(&cfg->listeners[i]);
	free(cfg->listeners);
	free(cfg->user);
	free(cfg->group);
	addr_free(&cfg->admin.listen);
	free(cfg->path);
	free(cfg);
}
