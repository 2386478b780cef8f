/*
 * metrics.c - process-wide counters, updated from the worker threads with
 * relaxed atomics, and their rendering in the Prometheus text format.
 * Free of libevent: the renderer takes the runtime it reports on, so the
 * unit tests link this file alone.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "mtlsproxy.h"

/* The refusal codes of the log (tls.c, session.c), in the documented order. */
static const char *const metrics_reasons[] = {
	"no_cert", "unknown_ca", "expired", "not_yet_valid", "revoked",
	"crl_expired", "crl_not_yet_valid", "crl_missing", "wrong_purpose",
	"chain_too_long", "path_length", "weak_crypto", "bad_signature",
	"invalid_ca", "policy", "tls_error", "handshake_timeout", "verify_failed"
};
#define METRICS_NREASONS \
	(sizeof(metrics_reasons) / sizeof(metrics_reasons[0]))
#define METRICS_OTHER		(METRICS_NREASONS - 1)	/* verify_failed */

/* Counters of one listener; every field is touched with __atomic only. */
struct metrics_listener {
	uint64_t	active;
	uint64_t	conns;
	uint64_t	hs_ok;
	uint64_t	refused[METRICS_NREASONS];
	uint64_t	bytes_in;	/* client -> backend */
	uint64_t	bytes_out;	/* backend -> client */
	uint64_t	backend_fail;
	uint64_t	vc_hit, vc_miss; /* verify cache */
	uint64_t	http[5];	/* 1xx .. 5xx */
	int		backend_up;	/* last readiness probe; -1: none yet */
};

/* Set before the workers start, freed after they are joined. */
static struct metrics_listener	*mx;
static char			**mx_names;	/* owned */
static size_t			 mx_n;
static int64_t			 mx_start;	/* seconds since the epoch */
static uint64_t			 mx_reload_ok, mx_reload_failed;
static int64_t			 mx_reload_last;

#define INC(p)		__atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define ADD(p, n)	__atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define GET(p)		__atomic_load_n((p), __ATOMIC_RELAXED)

/* Size the counters for n listeners named names[i]; before any worker runs. */
void
metrics_init(const char *const *names, size_t n)
{
	size_t	i;

	metrics_free();
	mx = xcalloc(n, sizeof(*mx));
	mx_names = xcalloc(n, sizeof(*mx_names));
	for (i = 0; i < n; i++) {
		mx_names[i] = xstrdup(names[i]);
		mx[i].backend_up = -1;
	}
	mx_n = n;
	mx_start = (int64_t)time(NULL);
	mx_reload_ok = mx_reload_failed = 0;
	/* The configuration loaded at start counts as the last success. */
	mx_reload_last = mx_start;
}

/* Free the counters; after every worker has stopped. */
void
metrics_free(void)
{
	size_t	i;

	for (i = 0; i < mx_n; i++)
		free(mx_names[i]);
	free(mx_names);
	free(mx);
	mx_names = NULL;
	mx = NULL;
	mx_n = 0;
}

/* A connection was accepted on listener li. */
void
metrics_conn_open(size_t li)
{
	if (li >= mx_n)
		return;
	INC(&mx[li].active);
	INC(&mx[li].conns);
}

/* A connection of listener li closed after moving these bytes. */
void
metrics_conn_close(size_t li, uint64_t bytes_in, uint64_t bytes_out)
{
	if (li >= mx_n)
		return;
	__atomic_fetch_sub(&mx[li].active, 1, __ATOMIC_RELAXED);
	if (bytes_in != 0)
		ADD(&mx[li].bytes_in, bytes_in);
	if (bytes_out != 0)
		ADD(&mx[li].bytes_out, bytes_out);
}

/* A handshake ended: code NULL is a success, else the refusal code. */
void
metrics_handshake(size_t li, const char *code)
{
	size_t	i;

	if (li >= mx_n)
		return;
	if (code == NULL) {
		INC(&mx[li].hs_ok);
		return;
	}
	for (i = 0; i < METRICS_NREASONS; i++)
		if (strcmp(code, metrics_reasons[i]) == 0)
			break;
	/* A code this table does not know yet still counts as refused. */
	INC(&mx[li].refused[i < METRICS_NREASONS ? i : METRICS_OTHER]);
}

/* A client chain was (hit) or was not (miss) found verified already. */
void
metrics_verify_cache(size_t li, bool hit)
{
	if (li >= mx_n)
		return;
	INC(hit ? &mx[li].vc_hit : &mx[li].vc_miss);
}

/* One connect to a backend address of listener li failed. */
void
metrics_backend_fail(size_t li)
{
	if (li >= mx_n)
		return;
	INC(&mx[li].backend_fail);
}

/* An HTTP response with this status went to a client of listener li. */
void
metrics_http_status(size_t li, int status)
{
	if (li >= mx_n || status < 100 || status > 599)
		return;
	INC(&mx[li].http[status / 100 - 1]);
}

/* The readiness probe found a backend of listener li reachable, or none. */
void
metrics_backend_up(size_t li, bool up)
{
	if (li >= mx_n)
		return;
	__atomic_store_n(&mx[li].backend_up, up ? 1 : 0, __ATOMIC_RELAXED);
}

/* A reload finished (main thread). */
void
metrics_reload(bool ok)
{
	if (ok) {
		INC(&mx_reload_ok);
		__atomic_store_n(&mx_reload_last, (int64_t)time(NULL),
		    __ATOMIC_RELAXED);
	} else
		INC(&mx_reload_failed);
}

/* ------------------------------------------------------------ rendering */

struct mbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void PRINTF_LIKE(2, 3)
mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatalx("metrics: bad format");
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	b->len += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped. */
static void
mb_label(struct mbuf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\\')
			mb_printf(b, "\\\\");
		else if (*s == '"')
			mb_printf(b, "\\\"");
		else if (*s == '\n')
			mb_printf(b, "\\n");
		else
			mb_printf(b, "%c", *s);
	}
}

static void
mb_family(struct mbuf *b, const char *name, const char *type,
    const char *help)
{
	mb_printf(b, "# HELP mtlsproxy_%s %s\n# TYPE mtlsproxy_%s %s\n", name,
	    help, name, type);
}

/* name{listener="L"[,k="v"]} value */
static void
mb_sample(struct mbuf *b, const char *name, const char *listener,
    const char *k, const char *v, uint64_t value)
{
	mb_printf(b, "mtlsproxy_%s{listener=\"", name);
	mb_label(b, listener);
	if (k != NULL) {
		mb_printf(b, "\",%s=\"", k);
		mb_label(b, v);
	}
	mb_printf(b, "\"} %llu\n", (unsigned long long)value);
}

static int64_t
metrics_asn1_time(const ASN1_TIME *t, bool *ok)
{
	struct tm	tm;

	*ok = t != NULL && ASN1_TIME_to_tm(t, &tm) == 1;
	return *ok ? (int64_t)timegm(&tm) : 0;
}

/* Per backend address: passed over (several addresses), connections. */
static void
metrics_render_addrs(struct mbuf *b, const struct runtime *rt)
{
	const struct cfg_backend	*be;
	uint64_t			 now = monotonic_ms(), until;
	size_t				 i, j;

	mb_family(b, "backend_address_passed_over", "gauge", "1 while a "
	    "backend address whose connect failed is passed over (for "
	    "backend.fail_timeout, while another address of the listener has "
	    "not failed), else 0; only for listeners with several addresses.");
	for (i = 0; rt != NULL && rt->backends != NULL && i < rt->nservers;
	    i++) {
		be = &rt->servers[i].cfg->backend;
		for (j = 0; be->naddrs > 1 && j < be->naddrs; j++) {
			until = __atomic_load_n(&rt->backends[i]->down_until[j],
			    __ATOMIC_RELAXED);
			mb_sample(b, "backend_address_passed_over",
			    rt->servers[i].cfg->name, "address",
			    be->addrs[j].text, until > now ? 1 : 0);
		}
	}
	mb_family(b, "backend_address_connections", "gauge", "Connections "
	    "to a backend address in use by clients now (kept idle ones "
	    "not counted), including those made before a reload that kept "
	    "the address.");
	for (i = 0; rt != NULL && rt->backends != NULL && i < rt->nservers;
	    i++) {
		be = &rt->servers[i].cfg->backend;
		for (j = 0; j < be->naddrs; j++)
			mb_sample(b, "backend_address_connections",
			    rt->servers[i].cfg->name, "address",
			    be->addrs[j].text, (uint64_t)__atomic_load_n(
			    &rt->backends[i]->active[j], __ATOMIC_RELAXED));
	}
}

/* The client CA certificates of every listener of rt. */
static void
metrics_render_cas(struct mbuf *b, const struct runtime *rt)
{
	size_t	i;
	int	j;

	mb_family(b, "ca_certificate_not_after_seconds", "gauge",
	    "notAfter of each certificate in the listener's client_auth.ca "
	    "store, in seconds since the epoch.");
	for (i = 0; rt != NULL && i < rt->nservers; i++) {
		const struct tls_server *srv = &rt->servers[i];
		X509_STORE *store;
		STACK_OF(X509_OBJECT) *objs;

		if (srv->ctx == NULL ||
		    (store = SSL_CTX_get_cert_store(srv->ctx)) == NULL)
			continue;
		X509_STORE_lock(store);
		objs = X509_STORE_get0_objects(store);
		for (j = 0; j < sk_X509_OBJECT_num(objs); j++) {
			X509_OBJECT *o = sk_X509_OBJECT_value(objs, j);
			X509 *x = X509_OBJECT_get0_X509(o);
			BIGNUM *bn;
			char *subject, *serial = NULL;
			int64_t when;
			bool ok;

			if (X509_OBJECT_get_type(o) != X509_LU_X509 ||
			    x == NULL)
				continue;
			when = metrics_asn1_time(X509_get0_notAfter(x), &ok);
			if (!ok)
				continue;
			subject = x509_name_rfc4514(X509_get_subject_name(x));
			bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x),
			    NULL);
			if (bn != NULL)
				serial = BN_bn2hex(bn);
			/* serial: a renewed CA may keep its subject. */
			mb_printf(b, "mtlsproxy_ca_certificate_not_after_"
			    "seconds{listener=\"");
			mb_label(b, srv->cfg->name);
			mb_printf(b, "\",subject=\"");
			mb_label(b, subject);
			mb_printf(b, "\",serial=\"");
			mb_label(b, serial);
			mb_printf(b, "\"} %lld\n", (long long)when);
			OPENSSL_free(serial);
			BN_free(bn);
			free(subject);
		}
		X509_STORE_unlock(store);
	}
}

/* The nextUpdate of the CRLs of every listener; the latest per issuer. */
static void
metrics_render_crls(struct mbuf *b, const struct runtime *rt)
{
	size_t	i;
	int	j, k;

	mb_family(b, "crl_next_update_seconds", "gauge",
	    "nextUpdate of the newest CRL from each issuer in the listener's "
	    "client_auth.crl, in seconds since the epoch.");
	for (i = 0; rt != NULL && i < rt->nservers; i++) {
		const struct tls_server *srv = &rt->servers[i];
		X509_STORE *store;
		STACK_OF(X509_OBJECT) *objs;

		if (srv->ctx == NULL ||
		    (store = SSL_CTX_get_cert_store(srv->ctx)) == NULL)
			continue;
		X509_STORE_lock(store);
		objs = X509_STORE_get0_objects(store);
		for (j = 0; j < sk_X509_OBJECT_num(objs); j++) {
			X509_OBJECT *o = sk_X509_OBJECT_value(objs, j);
			X509_CRL *crl = X509_OBJECT_get0_X509_CRL(o);
			const X509_NAME *iss;
			int64_t when, w2;
			char *issuer;
			bool ok, later = false;

			if (X509_OBJECT_get_type(o) != X509_LU_CRL ||
			    crl == NULL)
				continue;
			when = metrics_asn1_time(X509_CRL_get0_nextUpdate(crl),
			    &ok);
			if (!ok)
				continue;
			iss = X509_CRL_get_issuer(crl);
			/* One series per issuer: OpenSSL uses the newest. */
			for (k = 0; k < sk_X509_OBJECT_num(objs) && !later;
			    k++) {
				X509_OBJECT *o2 = sk_X509_OBJECT_value(objs, k);
				X509_CRL *c2 = X509_OBJECT_get0_X509_CRL(o2);

				if (k == j || X509_OBJECT_get_type(o2) !=
				    X509_LU_CRL || c2 == NULL ||
				    X509_NAME_cmp(iss,
				    X509_CRL_get_issuer(c2)) != 0)
					continue;
				w2 = metrics_asn1_time(
				    X509_CRL_get0_nextUpdate(c2), &ok);
				later = ok && (w2 > when || (w2 == when &&
				    k < j));
			}
			if (later)
				continue;
			issuer = x509_name_rfc4514(iss);
			mb_printf(b, "mtlsproxy_crl_next_update_seconds"
			    "{listener=\"");
			mb_label(b, srv->cfg->name);
			mb_printf(b, "\",issuer=\"");
			mb_label(b, issuer);
			mb_printf(b, "\"} %lld\n", (long long)when);
			free(issuer);
		}
		X509_STORE_unlock(store);
	}
}

/*
 * Everything in the Prometheus text format (version 0.0.4): the counters,
 * and the certificate and CRL gauges of rt (the current runtime; NULL: none).
 * Returns a NUL-terminated string to free, its length in *len.
 */
char *
metrics_render(const struct runtime *rt, size_t *len)
{
	static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx",
	    "5xx" };
	struct mbuf	 b = { NULL, 0, 0 };
	uint64_t	 refused;
	size_t		 i, r;

	b.cap = 4096 + mx_n * 2048;
	b.p = xmalloc(b.cap);
	b.p[0] = '\0';

	mb_family(&b, "build_info", "gauge", "Version of mtlsproxy and of the "
	    "OpenSSL it runs with; always 1.");
	mb_printf(&b, "mtlsproxy_build_info{version=\"");
	mb_label(&b, MTLSPROXY_VERSION);
	mb_printf(&b, "\",openssl=\"");
	mb_label(&b, OpenSSL_version(OPENSSL_VERSION));
	mb_printf(&b, "\"} 1\n");
	mb_family(&b, "process_start_time_seconds", "gauge",
	    "Start time of the process in seconds since the epoch.");
	mb_printf(&b, "mtlsproxy_process_start_time_seconds %lld\n",
	    (long long)mx_start);

	mb_family(&b, "connections_active", "gauge", "Client connections open "
	    "now (handshaking, established or closing).");
	for (i = 0; i < mx_n; i++)
		mb_sample(&b, "connections_active", mx_names[i], NULL, NULL,
		    GET(&mx[i].active));
	mb_family(&b, "connections_total", "counter", "Client connections "
	    "accepted.");
	for (i = 0; i < mx_n; i++)
		mb_sample(&b, "connections_total", mx_names[i], NULL, NULL,
		    GET(&mx[i].conns));
	mb_family(&b, "handshakes_total", "counter", "TLS handshakes "
	    "finished, by result: ok (verified and allowed) or refused.");
	for (i = 0; i < mx_n; i++) {
		for (refused = 0, r = 0; r < METRICS_NREASONS; r++)
			refused += GET(&mx[i].refused[r]);
		mb_sample(&b, "handshakes_total", mx_names[i], "result", "ok",
		    GET(&mx[i].hs_ok));
		mb_sample(&b, "handshakes_total", mx_names[i], "result",
		    "refused", refused);
	}
	mb_family(&b, "verify_cache_total", "counter", "Client chain checks "
	    "by result: hit (a chain verified before, remembered) or miss "
	    "(verified by OpenSSL now).");
	for (i = 0; i < mx_n; i++) {
		mb_sample(&b, "verify_cache_total", mx_names[i], "result", "hit",
		    GET(&mx[i].vc_hit));
		mb_sample(&b, "verify_cache_total", mx_names[i], "result",
		    "miss", GET(&mx[i].vc_miss));
	}
	mb_family(&b, "refusals_total", "counter", "Refused handshakes by "
	    "reason: the code= of the refused log line.");
	for (i = 0; i < mx_n; i++)
		for (r = 0; r < METRICS_NREASONS; r++)
			mb_sample(&b, "refusals_total", mx_names[i], "reason",
			    metrics_reasons[r], GET(&mx[i].refused[r]));
	mb_family(&b, "bytes_received_total", "counter", "Bytes received "
	    "from clients and sent to the backend, counted when a connection "
	    "closes.");
	for (i = 0; i < mx_n; i++)
		mb_sample(&b, "bytes_received_total", mx_names[i], NULL, NULL,
		    GET(&mx[i].bytes_in));
	mb_family(&b, "bytes_sent_total", "counter", "Bytes sent to clients "
	    "(backend responses and the proxy's own), counted when a "
	    "connection closes.");
	for (i = 0; i < mx_n; i++)
		mb_sample(&b, "bytes_sent_total", mx_names[i], NULL, NULL,
		    GET(&mx[i].bytes_out));
	mb_family(&b, "backend_connect_failures_total", "counter", "Failed "
	    "connects to a backend address (each address tried counts).");
	for (i = 0; i < mx_n; i++)
		mb_sample(&b, "backend_connect_failures_total", mx_names[i],
		    NULL, NULL, GET(&mx[i].backend_fail));
	mb_family(&b, "backend_up", "gauge", "1 when the admin endpoint's last "
	    "probe reached at least one backend address of the listener, else "
	    "0; absent until the first probe has finished.");
	for (i = 0; i < mx_n; i++)
		if (GET(&mx[i].backend_up) >= 0)
			mb_sample(&b, "backend_up", mx_names[i], NULL, NULL,
			    (uint64_t)GET(&mx[i].backend_up));
	metrics_render_addrs(&b, rt);
	mb_family(&b, "http_requests_total", "counter", "HTTP requests "
	    "answered (http mode), by status class of the response.");
	for (i = 0; i < mx_n; i++)
		for (r = 0; r < 5; r++)
			mb_sample(&b, "http_requests_total", mx_names[i],
			    "code", classes[r], GET(&mx[i].http[r]));

	mb_family(&b, "reloads_total", "counter", "Configuration reloads, by "
	    "result.");
	mb_printf(&b, "mtlsproxy_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)GET(&mx_reload_ok));
	mb_printf(&b, "mtlsproxy_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)GET(&mx_reload_failed));
	mb_family(&b, "last_reload_success_timestamp_seconds", "gauge",
	    "When the configuration in use was loaded (start or last "
	    "successful reload), in seconds since the epoch.");
	mb_printf(&b, "mtlsproxy_last_reload_success_timestamp_seconds %lld\n",
	    (long long)GET(&mx_reload_last));

	mb_family(&b, "server_certificate_not_after_seconds", "gauge",
	    "notAfter of the listener's server certificate, in seconds since "
	    "the epoch.");
	for (i = 0; rt != NULL && i < rt->nservers; i++) {
		const struct tls_server *srv = &rt->servers[i];

		if (srv->cfg == NULL || srv->cert_not_after == 0)
			continue;
		mb_printf(&b, "mtlsproxy_server_certificate_not_after_seconds"
		    "{listener=\"");
		mb_label(&b, srv->cfg->name);
		mb_printf(&b, "\"} %lld\n", (long long)srv->cert_not_after);
	}
	metrics_render_cas(&b, rt);
	metrics_render_crls(&b, rt);
	*len = b.len;
	return b.p;
}
