/*
 * proxy_http.c - HTTP/1.1 mode: parse each request head with llhttp, strip
 * every identity header a client sent, add the proxy's own from the
 * verified certificate, and stream bodies both ways unchanged.  Responses
 * are forwarded as they arrive, less the backend's Keep-Alive lines; a
 * parser watches them for message boundaries (keep-alive, HEAD, 1xx, 101
 * upgrades) and the access log.
 */
#include <sys/socket.h>

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <llhttp.h>

#include "mtlsproxy.h"

/* Stop reading a side while the other side has this much unsent. */
#define HTTP_MAXBUF	(256 * 1024)
#define HTTP_PATH_LOG	1024

enum http_cstate {
	HTTP_C_HEAD,		/* reading a request head */
	HTTP_C_BODY,		/* forwarding a request body */
	HTTP_C_UPGRADE,		/* upgrade asked: wait for the answer */
	HTTP_C_TUNNEL,		/* after a 101: raw bytes */
	HTTP_C_STOP		/* no more requests are read */
};

/* A request forwarded to the backend whose response has not ended. */
struct http_req {
	uint8_t			 method;
	bool			 done;		/* whole request sent */
	bool			 replayable;	/* see http_replay_keep() */
	bool			 replayed;	/* sent again once already */
	char			*path;		/* owned; for the log */
	struct timeval		 start;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	STAILQ_ENTRY(http_req)	 entry;
};

struct http_hdr {
	uint32_t	name_off, name_len;
	uint32_t	val_off, val_len;
};

struct http {
	struct session		*s;		/* borrowed; owns this */
	llhttp_t		 reqp;
	llhttp_t		 resp;
	enum http_cstate	 cstate;
	bool			 resp_tunnel;	/* backend side is raw */
	bool			 resp_started;	/* bytes of this response seen */
	bool			 resp_counting;	/* pause at each response's end */
	int			 resp_final;	/* status of the paused response */
	bool			 backend_failed; /* answer 502 */
	bool			 closing;	/* close once output drained */
	bool			 in_value;
	bool			 too_large;	/* head over max_header_size */
	bool			 refused_upgrade;
	bool			 no_reuse;	/* a message ended keep-alive */
	bool			 client_close;	/* close after this answer */
	int			 deferred;	/* status to send once idle */
	const char		*close_why;
	/* the request head being read */
	char			*buf;		/* owned; url, names, values */
	size_t			 len, cap;
	uint32_t		 url_len;
	struct http_hdr		*hdrs;		/* owned */
	size_t			 nhdrs, hcap;
	size_t			 head_bytes;
	struct http_req		*cur;		/* request being received */
	struct http_req		*errreq;	/* owned; refused by the proxy */
	STAILQ_HEAD(, http_req)	 pending;
	char			*ident;		/* owned; identity header lines */
	size_t			 ident_len;
	char			 fwd_ip[64];	/* the client's address, no port */
	struct event		*btimer;	/* owns; timeouts.backend */
	bool			 conn_used;	/* this backend conn carried one */
	bool			 replaying;	/* connecting to send it again */
	char			*replay;	/* owned; the head as sent */
	size_t			 replay_len, replay_cap;
	/*
	 * Keep-Alive lines of the backend's response heads, left out: the
	 * backend's keep-alive timeout is no business of the client's (a
	 * hop-by-hop header, RFC 9110 7.6.1). Offsets are in the backend
	 * input of the read being parsed; a line may span its pieces.
	 */
	const char		*rchunk;	/* the piece being parsed */
	size_t			 rchunk_off;	/* its offset */
	bool			 rparsing;	/* inside http_backend_read_cb */
	bool			 rfield_new;	/* the next name piece starts one */
	char			 rname[12];	/* the name so far, cut short */
	size_t			 rname_len;
	size_t			 rline_off;	/* where the name began */
	size_t			 rvalue_end;	/* end of its value so far */
	struct http_cut { size_t off, len; } *cuts;	/* owned */
	size_t			 ncuts, cuts_cap;
};

static llhttp_settings_t	http_req_settings, http_resp_settings;

static void	http_error(struct http *, int, const char *);
static void	http_client_read_cb(struct bufferevent *, void *);
static void	http_backend_forget(struct http *);
static void	http_btimer_arm(struct http *);

/* ---------------------------------------------------------------- heads */

static int
http_append(struct http *h, const char *p, size_t n)
{
	/* Roughly the head's size on the wire: text, ": " and CRLFs. */
	if (h->len + n + 4 * h->nhdrs + 16 > h->s->srv->cfg->max_header_size) {
		h->too_large = true;
		return HPE_USER;
	}
	if (h->len + n > h->cap) {
		size_t cap = h->cap ? h->cap : 1024;

		while (cap < h->len + n)
			cap *= 2;
		h->buf = xreallocarray(h->buf, cap, 1);
		h->cap = cap;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	return 0;
}

static int
http_on_message_begin(llhttp_t *p)
{
	struct http	*h = p->data;

	h->len = h->url_len = 0;
	h->nhdrs = 0;
	h->in_value = false;
	return 0;
}

static int
http_on_url(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;

	h->url_len += (uint32_t)n;
	return http_append(h, at, n);
}

static int
http_on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;
	struct http_hdr	*hd;

	if (h->nhdrs == 0 || h->in_value) {
		if (h->nhdrs == h->hcap) {
			h->hcap = h->hcap ? h->hcap * 2 : 16;
			h->hdrs = xreallocarray(h->hdrs, h->hcap,
			    sizeof(*h->hdrs));
		}
		hd = &h->hdrs[h->nhdrs++];
		memset(hd, 0, sizeof(*hd));
		hd->name_off = (uint32_t)h->len;
		h->in_value = false;
	}
	h->hdrs[h->nhdrs - 1].name_len += (uint32_t)n;
	return http_append(h, at, n);
}

static int
http_on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;
	struct http_hdr	*hd = &h->hdrs[h->nhdrs - 1];

	if (!h->in_value) {
		hd->val_off = (uint32_t)h->len;
		h->in_value = true;
	}
	hd->val_len += (uint32_t)n;
	return http_append(h, at, n);
}

/*
 * RFC 9112 5.1: whitespace between a field name and the colon must be
 * refused; passed on, "X-Client-Subject :" could reach a backend that
 * trims it.
 */
static int
http_on_header_field_complete(llhttp_t *p)
{
	struct http	*h = p->data;
	struct http_hdr	*hd = &h->hdrs[h->nhdrs - 1];
	char		 c;

	if (hd->name_len == 0)
		return 0;
	c = h->buf[hd->name_off + hd->name_len - 1];
	if (c == ' ' || c == '\t') {
		llhttp_set_error_reason(p, "whitespace before the colon");
		return HPE_USER;
	}
	return 0;
}

static bool
http_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/*
 * The request head for the backend is written straight into space reserved
 * at the end of the backend's output buffer, sized beforehand (one chain, no
 * intermediate buffer, no per-piece calls).
 */
struct head {
	char	*p;
	char	*end;	/* only checked by assert: the size is computed */
};

static void
head_put(struct head *b, const void *v, size_t n)
{
	assert((size_t)(b->end - b->p) >= n);
	memcpy(b->p, v, n);
	b->p += n;
}

/* A header value with any CR, LF (obs-fold) or NUL turned into a space. */
static void
head_value(struct head *b, const char *v, size_t n)
{
	size_t	i;

	assert((size_t)(b->end - b->p) >= n);
	for (i = 0; i < n; i++)
		b->p[i] = v[i] == '\r' || v[i] == '\n' || v[i] == '\0' ?
		    ' ' : v[i];
	b->p += n;
}

static const char http_xfp[] = "\r\nX-Forwarded-Proto: https\r\n";

#define HTTP_CONN_LISTED	16	/* header names a Connection may list */

/*
 * The client's Connection header(s), read the way RFC 9110 7.6.1 asks of
 * a proxy: the options close, keep-alive and upgrade go on to the backend
 * (the connection to it mirrors the client's); any other token names a
 * header meant for this hop only, which is dropped, so that a client
 * cannot use "Connection: X-Forwarded-For" or the like to make a proxy
 * behind this one remove headers this one adds. Never the framing (Host,
 * Content-Length, Transfer-Encoding): dropping that would change where
 * the message ends.
 */
struct http_conn {
	char	 opts[sizeof("close, keep-alive, upgrade")];
	size_t	 opts_len;
	struct { const char *p; size_t n; } listed[HTTP_CONN_LISTED];
	size_t	 nlisted;
};

static void
http_conn_token(struct http_conn *c, const char *p, size_t n, unsigned *seen)
{
	static const char *const opts[] = { "close", "keep-alive", "upgrade" };
	size_t	i;

	for (i = 0; i < 3; i++) {
		if (!http_name_is(p, n, opts[i]))
			continue;
		if (*seen & (1U << i))
			return;
		*seen |= 1U << i;
		if (c->opts_len > 0) {
			memcpy(c->opts + c->opts_len, ", ", 2);
			c->opts_len += 2;
		}
		memcpy(c->opts + c->opts_len, opts[i], n);
		c->opts_len += n;
		return;
	}
	if (http_name_is(p, n, "host") || http_name_is(p, n, "content-length") ||
	    http_name_is(p, n, "transfer-encoding") ||
	    c->nlisted == HTTP_CONN_LISTED)
		return;
	c->listed[c->nlisted].p = p;
	c->listed[c->nlisted].n = n;
	c->nlisted++;
}

static void
http_conn_parse(struct http *h, struct http_conn *c)
{
	unsigned	seen = 0;
	size_t		i, j, k, e, n;
	const char	*v;

	c->opts_len = 0;
	c->nlisted = 0;
	for (i = 0; i < h->nhdrs; i++) {
		if (!http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "connection"))
			continue;
		v = h->buf + h->hdrs[i].val_off;
		n = h->hdrs[i].val_len;
		for (j = 0; j < n; j = k + 1) {
			while (j < n && (v[j] == ' ' || v[j] == '\t'))
				j++;
			for (k = j; k < n && v[k] != ','; k++)
				;
			e = k;
			while (e > j && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e > j)
				http_conn_token(c, v + j, e - j, &seen);
		}
	}
}

/* Whether the header is one the client's Connection header listed. */
static bool
http_conn_listed(const struct http_conn *c, const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < c->nlisted; i++)
		if (c->listed[i].n == len &&
		    strncasecmp(c->listed[i].p, name, len) == 0)
			return true;
	return false;
}

/*
 * A kept backend connection can be closed by the backend (its keep-alive
 * timeout) just as a request goes out on it: the request gets no answer
 * through no fault of its own. Such a request is sent again, once, on a
 * new connection, as nginx does, when that is safe: the connection had
 * carried a request before (a new one failing means the backend is
 * failing), the method is idempotent (RFC 9110 9.2.2), the request has no
 * body and is the only one outstanding, and no byte of an answer came.
 * Its head, as forwarded, is kept for that until the next request.
 */
static void
http_replay_keep(struct http *h, struct http_req *r, llhttp_t *p,
    const char *head, size_t len)
{
	bool	reused = h->s->backend_reused || h->conn_used;

	h->conn_used = true;
	h->replay_len = 0;
	switch (r->method) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_OPTIONS:
	case HTTP_TRACE:
	case HTTP_PUT:
	case HTTP_DELETE:
		break;
	default:
		return;
	}
	if (!reused || llhttp_get_upgrade(p) || (p->flags & F_CHUNKED) ||
	    p->content_length != 0 || STAILQ_FIRST(&h->pending) != r ||
	    STAILQ_NEXT(r, entry) != NULL)
		return;
	if (len > h->replay_cap) {
		h->replay = xreallocarray(h->replay, len, 1);
		h->replay_cap = len;
	}
	memcpy(h->replay, head, len);
	h->replay_len = len;
	r->replayable = true;
}

/*
 * The backend connection ended (why: "closed", or the error): send the
 * request again on a new connection if it is safe (see above). False: it
 * is not; the caller answers 502.
 */
static bool
http_replay(struct http *h, const char *why)
{
	struct session	*s = h->s;
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (r == NULL || STAILQ_NEXT(r, entry) != NULL || !r->replayable ||
	    r->replayed || !r->done || r->bytes_out != 0 || h->resp_started ||
	    h->resp_tunnel || h->closing || h->replay_len == 0 ||
	    s->client_eof || s->w->stopping)
		return false;
	log_info("listener \"%s\": backend %s %s a kept connection as "
	    "request \"%s %s\" went out; sending it again on a new "
	    "connection", s->srv->cfg->name, s->backend_addr, why,
	    llhttp_method_name((llhttp_method_t)r->method), r->path);
	r->replayed = true;
	h->replaying = true;
	http_backend_forget(h);
	s->backend_fresh = true;	/* not another kept one */
	session_connect(s);
	return true;
}

/* Connected again (http_start): the request goes out as it went before. */
static void
http_replay_send(struct http *h)
{
	struct session	*s = h->s;

	h->replaying = false;
	h->conn_used = true;
	(void)evbuffer_add(bufferevent_get_output(s->backend), h->replay,
	    h->replay_len);
	h->replay_len = 0;
	http_btimer_arm(h);
}

/*
 * The request head is complete: write the rewritten head to the backend.
 * Every identity header the client sent is dropped (a client must never
 * claim another identity), then the proxy's own are added.
 */
static int
http_on_headers_complete(llhttp_t *p)
{
	struct http		*h = p->data;
	struct session		*s = h->s;
	const struct cfg_headers *ch = &s->srv->cfg->headers;
	struct evbuffer		*out;
	struct evbuffer_iovec	 vec;
	struct head		 b;
	struct http_req		*r;
	const char		*xff = NULL, *host = NULL, *method;
	size_t			 i, xff_len = 0, host_len = 0, n, size, fwd_len;
	size_t			 before;
	char			 ver[] = " HTTP/1.1\r\n";
	bool			 hop = false;
	struct http_conn	 conn;

	r = xcalloc(1, sizeof(*r));
	r->method = (uint8_t)llhttp_get_method(p);
	if (!llhttp_should_keep_alive(p)) {
		/*
		 * The client closes after this request (HTTP/1.0, or
		 * Connection: close). With backend.keepalive the backend
		 * connection need not end with it, as with nginx's upstream
		 * keepalive: the request goes on as a keep-alive one (the
		 * client's Connection and Keep-Alive dropped, an HTTP/1.0
		 * request marked keep-alive, so the answer still comes with
		 * a length, never chunked), and the proxy closes the client
		 * connection once the answer is out.
		 */
		if (s->srv->cfg->backend.keepalive > 0 &&
		    !llhttp_get_upgrade(p))
			hop = true;
		else
			h->no_reuse = true; /* the backend closes after it */
	}
	n = h->url_len > HTTP_PATH_LOG ? HTTP_PATH_LOG : h->url_len;
	r->path = xmalloc(n + 1);
	memcpy(r->path, h->buf, n);
	r->path[n] = '\0';
	event_base_gettimeofday_cached(s->w->base, &r->start);
	if (h->backend_failed || r->method == HTTP_CONNECT) {
		/* Never forwarded: answered by the proxy itself. */
		h->errreq = r;
		if (h->backend_failed)
			http_error(h, 502, "backend_unavailable");
		else	/* a reverse proxy is no tunnel to elsewhere */
			http_error(h, 405, "connect_refused");
		return HPE_PAUSED;
	}
	STAILQ_INSERT_TAIL(&h->pending, r, entry);
	h->cur = r;
	h->client_close = hop;

	/* llhttp accepts only single-digit versions. */
	method = llhttp_method_name((llhttp_method_t)r->method);
	ver[6] = (char)('0' + p->http_major % 10);
	ver[8] = (char)('0' + p->http_minor % 10);
	fwd_len = strlen(h->fwd_ip);
	http_conn_parse(h, &conn);
	size = strlen(method) + 1 + h->url_len + sizeof(ver) +
	    sizeof("Connection: \r\n") + sizeof(conn.opts) + h->ident_len +
	    sizeof("X-Forwarded-For: , ") + fwd_len + sizeof(http_xfp) +
	    sizeof("X-Forwarded-Host: \r\n") + sizeof("\r\n");
	for (i = 0; i < h->nhdrs; i++)	/* xff and host: twice at most */
		size += 2 * ((size_t)h->hdrs[i].name_len + h->hdrs[i].val_len +
		    sizeof(": \r\n"));
	out = bufferevent_get_output(s->backend);
	before = evbuffer_get_length(out);
	if (evbuffer_reserve_space(out, (ev_ssize_t)size, &vec, 1) != 1)
		fatalx("out of memory");	/* as xmalloc */
	b.p = vec.iov_base;
	b.end = b.p + size;
	head_put(&b, method, strlen(method));
	head_put(&b, " ", 1);
	head_put(&b, h->buf, h->url_len);
	head_put(&b, ver, sizeof(ver) - 1);
	for (i = 0; i < h->nhdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];
		const char *name = h->buf + hd->name_off;

		if (hdr_is_reserved(s->srv->hdrs, name, hd->name_len))
			continue;
		/* Hop-by-hop: the Connection header goes on rewritten. */
		if (http_name_is(name, hd->name_len, "connection") ||
		    http_name_is(name, hd->name_len, "keep-alive") ||
		    http_name_is(name, hd->name_len, "proxy-connection") ||
		    http_conn_listed(&conn, name, hd->name_len))
			continue;
		if (ch->forwarded && http_name_is(name, hd->name_len,
		    "x-forwarded-for")) {
			/* Appended to below, with the client's address. */
			xff = h->buf + hd->val_off;
			xff_len = hd->val_len;
			continue;
		}
		if (http_name_is(name, hd->name_len, "host")) {
			host = h->buf + hd->val_off;
			host_len = hd->val_len;
		}
		head_put(&b, name, hd->name_len);
		head_put(&b, ": ", 2);
		head_value(&b, h->buf + hd->val_off, hd->val_len);
		head_put(&b, "\r\n", 2);
	}
	if (hop && p->http_major == 1 && p->http_minor == 0)
		head_put(&b, "Connection: keep-alive\r\n", 24);
	else if (!hop && conn.opts_len > 0) {
		head_put(&b, "Connection: ", 12);
		head_put(&b, conn.opts, conn.opts_len);
		head_put(&b, "\r\n", 2);
	}
	head_put(&b, h->ident, h->ident_len);
	if (ch->forwarded) {
		head_put(&b, "X-Forwarded-For: ", 17);
		if (xff != NULL && xff_len > 0) {
			head_value(&b, xff, xff_len);
			head_put(&b, ", ", 2);
		}
		head_put(&b, h->fwd_ip, fwd_len);
		head_put(&b, http_xfp, sizeof(http_xfp) - 1);
		if (host != NULL) {
			head_put(&b, "X-Forwarded-Host: ", 18);
			head_value(&b, host, host_len);
			head_put(&b, "\r\n", 2);
		}
	}
	head_put(&b, "\r\n", 2);
	vec.iov_len = (size_t)(b.p - (char *)vec.iov_base);
	http_replay_keep(h, r, p, vec.iov_base, vec.iov_len);
	evbuffer_commit_space(out, &vec, 1);
	session_kick_write(s, s->backend, before);
	/* Stop here so the caller knows where the body starts. */
	return HPE_PAUSED;
}

static int
http_on_message_complete(llhttp_t *p)
{
	struct http	*h = p->data;

	if (h->cur != NULL)
		h->cur->done = true;
	h->cur = NULL;
	/* Stop here so the caller knows where this message ends. */
	return HPE_PAUSED;
}

/* ------------------------------------------------------------ responses */

static void
http_log_request(struct http *h, struct http_req *r, int status)
{
	struct session	*s = h->s;
	struct timeval	 now, d;
	char		 st[8], in[24], out[24], ms[24];
	struct log_field f[] = {
		{ "listener", s->srv->cfg->name, false },
		{ "peer", s->peer, false },
		{ "method", llhttp_method_name((llhttp_method_t)r->method),
		    false },
		{ "path", r->path, false },
		{ "status", st, true },
		{ "bytes_in", in, true },
		{ "bytes_out", out, true },
		{ "duration_ms", ms, true },
		{ "subject", session_ident(s)->subject, false },
		{ "sha256", session_ident(s)->sha256, false },
	};

	metrics_http_status(s->li, status);
	if (!s->rt->cfg->log_access)
		return;
	event_base_gettimeofday_cached(s->w->base, &now);
	timersub(&now, &r->start, &d);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(in, sizeof(in), "%" PRIu64, r->bytes_in);
	snprintf(out, sizeof(out), "%" PRIu64, r->bytes_out);
	snprintf(ms, sizeof(ms), "%" PRIu64,
	    (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000);
	log_event(LOG_LEVEL_INFO, "request", f, sizeof(f) / sizeof(f[0]));
}

static void
http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r);
}

/* Pop the oldest pending request: its response has ended. */
static void
http_req_done(struct http *h, int status)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (r == NULL)
		return;
	STAILQ_REMOVE_HEAD(&h->pending, entry);
	if (h->cur == r)
		h->cur = NULL;
	http_log_request(h, r, status);
	http_req_free(r);
}

static int
http_on_resp_begin(llhttp_t *p)
{
	struct http	*h = p->data;

	h->resp_started = true;
	return 0;
}

/* Where at lies in the backend input being parsed. */
static size_t
http_roff(const struct http *h, const char *at)
{
	return h->rchunk_off + (size_t)(at - h->rchunk);
}

/* A response (or trailer) header name begins after the previous line. */
static int
http_on_resp_line_start(llhttp_t *p)
{
	struct http	*h = p->data;

	h->rfield_new = true;
	return 0;
}

/* A piece of a response header name. */
static int
http_on_resp_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;
	size_t		 k;

	if (!h->rparsing)
		return 0;
	if (h->rfield_new) {
		h->rfield_new = false;
		h->rline_off = http_roff(h, at);
		h->rname_len = 0;
		h->rvalue_end = SIZE_MAX;
	}
	k = sizeof(h->rname) - h->rname_len;
	if (k > n)
		k = n;
	memcpy(h->rname + h->rname_len, at, k);
	h->rname_len += k;
	if (n > k)	/* longer than any name wanted */
		h->rname_len = sizeof(h->rname);
	return 0;
}

/* A piece of its value: remember where it ends. */
static int
http_on_resp_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;

	if (h->rparsing)
		h->rvalue_end = http_roff(h, at + n);
	return 0;
}

/* The value is complete: a Keep-Alive line, CRLF included, is cut. */
static int
http_on_resp_header_value_complete(llhttp_t *p)
{
	struct http	*h = p->data;
	struct http_req	*r = STAILQ_FIRST(&h->pending);
	size_t		 len;

	h->rfield_new = true;
	if (!h->rparsing || h->rvalue_end == SIZE_MAX ||
	    h->rname_len != 10 || strncasecmp(h->rname, "keep-alive", 10) != 0)
		return 0;
	len = h->rvalue_end + 2 - h->rline_off;
	if (h->ncuts == h->cuts_cap) {
		h->cuts_cap = h->cuts_cap ? 2 * h->cuts_cap : 8;
		h->cuts = xreallocarray(h->cuts, h->cuts_cap,
		    sizeof(*h->cuts));
	}
	h->cuts[h->ncuts].off = h->rline_off;
	h->cuts[h->ncuts].len = len;
	h->ncuts++;
	if (r != NULL)
		r->bytes_out -= len;
	return 0;
}

/* Send len bytes of the backend input to the client, minus the cuts. */
static void
http_send_cut(struct http *h, struct evbuffer *in, size_t len)
{
	struct session	*s = h->s;
	size_t		 pos = 0;
	size_t		 i;

	for (i = 0; i < h->ncuts; i++) {
		struct evbuffer_ptr	ep;
		char			crlf[2];

		/* Cut only a whole line: in order, ending with CRLF. */
		if (h->cuts[i].off < pos || h->cuts[i].len < 2 ||
		    h->cuts[i].off + h->cuts[i].len > len ||
		    evbuffer_ptr_set(in, &ep, h->cuts[i].off + h->cuts[i].len -
		    2 - pos, EVBUFFER_PTR_SET) == -1 ||
		    evbuffer_copyout_from(in, &ep, crlf, 2) != 2 ||
		    crlf[0] != '\r' || crlf[1] != '\n')
			continue;
		if (h->cuts[i].off > pos)
			session_send(s, s->client, in, h->cuts[i].off - pos);
		evbuffer_drain(in, h->cuts[i].len);
		s->bytes_out -= h->cuts[i].len;
		pos = h->cuts[i].off + h->cuts[i].len;
	}
	if (len > pos)
		session_send(s, s->client, in, len - pos);
	h->ncuts = 0;
}

static int
http_on_resp_headers_complete(llhttp_t *p)
{
	struct http	*h = p->data;
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (p->status_code == 101) {
		/* Switching protocols: raw bytes both ways from here on. */
		h->resp_tunnel = true;
		if (h->cstate == HTTP_C_UPGRADE)
			h->cstate = HTTP_C_TUNNEL;
		return 2;
	}
	if (r != NULL && r->method == HTTP_HEAD)
		return 1;
	return 0;
}

static void	http_resp_done(struct http *, int);

static int
http_on_resp_complete(llhttp_t *p)
{
	struct http	*h = p->data;
	int		 status = p->status_code;

	h->resp_started = false;
	/* 1xx other than 101 are interim: the final response follows. */
	if (status >= 100 && status < 200 && status != 101)
		return 0;
	/*
	 * Inside http_backend_read_cb: stop the parser here so the bytes of
	 * this response are known exactly (several responses can come in
	 * one read); it finishes the response and resumes parsing, or
	 * after a 101 passes the rest on raw.
	 */
	if (h->resp_counting) {
		h->resp_final = status;
		return HPE_PAUSED;
	}
	http_resp_done(h, status);
	return 0;
}

/* A final response is complete: log it, decide about reuse and upgrades. */
static void
http_resp_done(struct http *h, int status)
{
	llhttp_t	*p = &h->resp;

	if (!llhttp_should_keep_alive(p))
		h->no_reuse = true;
	http_req_done(h, status);
	if (h->cstate == HTTP_C_UPGRADE && status != 101) {
		/*
		 * The upgrade was refused.  What the client sent after it
		 * was never parsed, so it must never reach the backend.
		 */
		h->cstate = HTTP_C_STOP;
		h->refused_upgrade = true;
	}
}

/* -------------------------------------------------------------- plumbing */

/* Whole-module set-up of the parser callbacks. */
static void
http_settings_set(void)
{
	llhttp_settings_init(&http_req_settings);
	http_req_settings.on_message_begin = http_on_message_begin;
	http_req_settings.on_url = http_on_url;
	http_req_settings.on_header_field = http_on_header_field;
	http_req_settings.on_header_value = http_on_header_value;
	http_req_settings.on_header_field_complete =
	    http_on_header_field_complete;
	http_req_settings.on_headers_complete = http_on_headers_complete;
	http_req_settings.on_message_complete = http_on_message_complete;
	llhttp_settings_init(&http_resp_settings);
	http_resp_settings.on_message_begin = http_on_resp_begin;
	http_resp_settings.on_header_field = http_on_resp_header_field;
	http_resp_settings.on_header_value = http_on_resp_header_value;
	http_resp_settings.on_header_value_complete =
	    http_on_resp_header_value_complete;
	http_resp_settings.on_status_complete = http_on_resp_line_start;
	http_resp_settings.on_headers_complete = http_on_resp_headers_complete;
	http_resp_settings.on_message_complete = http_on_resp_complete;
}

/* Once, whichever worker thread comes first. */
static void
http_settings_init(void)
{
	static pthread_once_t	once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, http_settings_set);
}

static void
http_btimer_arm(struct http *h)
{
	struct timeval	tv = ms_timeval(h->s->srv->cfg->backend_timeout_ms);

	evtimer_add(h->btimer, &tv);
}

/* Waiting for the backend: a request was sent whole, no answer ended. */
static void
http_btimer_update(struct http *h)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (h->closing)
		return;
	if (r != NULL && r->done && !h->resp_tunnel)
		http_btimer_arm(h);
	else
		evtimer_del(h->btimer);
}

static void
http_close_when_flushed(struct http *h, const char *why)
{
	struct session	*s = h->s;

	h->closing = true;
	h->close_why = why;
	h->cstate = HTTP_C_STOP;
	session_read(s, s->client, false);
	if (s->backend != NULL)
		session_read(s, s->backend, false);
	/* Never free here: callers are inside parser loops. */
	if (session_client_flushed(s)) {
		struct timeval now = { 0, 0 };

		evtimer_add(h->btimer, &now);
	} else
		evtimer_del(h->btimer);
}

static const char *
http_reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 502:
		return "Bad Gateway";
	case 504:
		return "Gateway Timeout";
	default:
		return "Error";
	}
}

/* Send a response of our own with Connection: close, then close. */
static void
http_send_error(struct http *h, int status, const char *why)
{
	struct session	*s = h->s;
	struct evbuffer	*out = bufferevent_get_output(s->client);
	size_t		 before = evbuffer_get_length(out);
	const char	*reason = http_reason(status);
	struct http_req	*r;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%d %s\n", status, reason,
	    strlen(reason) + 5, status, reason);
	/* The request that caused it, if it got as far as a head. */
	if ((r = h->errreq) != NULL) {
		h->errreq = NULL;
		r->bytes_out = evbuffer_get_length(out);
		http_log_request(h, r, status);
		http_req_free(r);
	} else if ((r = STAILQ_FIRST(&h->pending)) != NULL) {
		r->bytes_out += (uint64_t)evbuffer_get_length(out);
		http_req_done(h, status);
	} else
		metrics_http_status(s->li, status);	/* no head parsed */
	s->bytes_out += evbuffer_get_length(out);
	session_kick_write(s, s->client, before);
	http_close_when_flushed(h, why);
}

/*
 * A request cannot go on.  Responses to earlier requests come first, so
 * the error waits until they have ended.
 */
static void
http_error(struct http *h, int status, const char *why)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	h->cstate = HTTP_C_STOP;
	session_read(h->s, h->s->client, false);
	if (r != NULL) {
		h->deferred = status;
		h->close_why = why;
		return;
	}
	http_send_error(h, status, why);
}

static void
http_check_deferred(struct http *h)
{
	if (h->deferred != 0 && STAILQ_EMPTY(&h->pending))
		http_send_error(h, h->deferred, h->close_why);
}

/*
 * The client's last request asked to close the connection and was sent
 * whole; once its answer has ended, close the client side (after the
 * answer is out). The backend connection, still good, can be kept.
 */
static void
http_check_client_close(struct http *h)
{
	if (h->client_close && !h->closing && h->deferred == 0 &&
	    h->cstate == HTTP_C_STOP && STAILQ_EMPTY(&h->pending))
		http_close_when_flushed(h, "connection_close");
}

/* Backpressure: pause src while dst holds too much. */
static void
http_pressure(struct session *s, struct bufferevent *src,
    struct bufferevent *dst)
{
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= HTTP_MAXBUF) {
		session_read(s, src, false);
		bufferevent_setwatermark(dst, EV_WRITE, HTTP_MAXBUF / 2, 0);
	}
}

/* Move n raw bytes of client input to the backend. */
static void
http_forward_raw(struct http *h, struct evbuffer *in, size_t n)
{
	struct session	*s = h->s;

	session_send(s, s->backend, in, n);
	s->bytes_in += n;
	if (h->cur != NULL)
		h->cur->bytes_in += n;
}

/* Parse and forward what the client sent. */
static void
http_client_input(struct http *h)
{
	struct session		*s = h->s;
	struct evbuffer		*in = bufferevent_get_input(s->client);
	struct evbuffer_iovec	 v;
	llhttp_errno_t		 err;
	size_t			 used;
	bool			 kick = false;

	while (!h->closing) {
		if (evbuffer_get_length(in) == 0 && !kick)
			break;
		if (s->backend == NULL && !h->backend_failed &&
		    h->cstate == HTTP_C_HEAD) {
			/* The backend connection went away: connect again. */
			session_connect(s);
			return;
		}
		if (h->cstate == HTTP_C_STOP || h->cstate == HTTP_C_UPGRADE) {
			/* Keep the rest until the answer says what it is. */
			session_read(s, s->client, false);
			http_check_client_close(h);
			return;
		}
		if (h->cstate == HTTP_C_TUNNEL) {
			http_forward_raw(h, in, evbuffer_get_length(in));
			break;
		}
		if (evbuffer_get_length(in) == 0) {
			/* A message without a body ends with no more input. */
			v.iov_base = (void *)"";
			v.iov_len = 0;
		} else if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		kick = false;
		err = llhttp_execute(&h->reqp, v.iov_base, v.iov_len);
		used = (err == HPE_OK) ? v.iov_len :
		    (size_t)(llhttp_get_error_pos(&h->reqp) -
		    (const char *)v.iov_base);
		if (h->closing || h->cstate == HTTP_C_STOP)
			return;		/* a callback answered already */
		if (err != HPE_OK && err != HPE_PAUSED &&
		    err != HPE_PAUSED_UPGRADE) {
			if (h->too_large)
				http_error(h, 431, "header_too_large");
			else if (h->cstate == HTTP_C_HEAD) {
				log_debug("%s: bad request: %s (%s)", s->peer,
				    llhttp_errno_name(err),
				    llhttp_get_error_reason(&h->reqp));
				http_error(h, 400, "bad_request");
			} else
				http_close_when_flushed(h, "bad_request_body");
			return;
		}
		if (h->cstate == HTTP_C_HEAD) {
			h->head_bytes += used;
			evbuffer_drain(in, used);
			if (err == HPE_PAUSED) {
				/* on_headers_complete wrote the new head. */
				h->cur->bytes_in = h->head_bytes;
				s->bytes_in += h->head_bytes;
				h->head_bytes = 0;
				h->cstate = HTTP_C_BODY;
				free(h->buf);
				h->buf = NULL;
				h->len = h->cap = 0;
				kick = true;
			}
		} else {
			if (used > 0)
				http_forward_raw(h, in, used);
			if (err == HPE_PAUSED) {
				/*
				 * on_message_complete: the next request,
				 * unless this one asked to close.
				 */
				h->cstate = llhttp_get_upgrade(&h->reqp) ?
				    HTTP_C_UPGRADE : h->client_close ?
				    HTTP_C_STOP : HTTP_C_HEAD;
				http_btimer_update(h);
			}
		}
		if (err == HPE_PAUSED)
			llhttp_resume(&h->reqp);
		else if (err == HPE_PAUSED_UPGRADE)
			llhttp_resume_after_upgrade(&h->reqp);
	}
	http_check_client_close(h);
	if (s->backend != NULL && !h->closing)
		http_pressure(s, s->client, s->backend);
}

static void
http_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	session_read_more(s);
	session_touch(s);
	http_client_input(s->http);
}

/* Forward what the backend sent, watching message boundaries. */
static void
http_backend_read_cb(struct bufferevent *bev, void *arg)
{
	struct session		*s = arg;
	struct http		*h = s->http;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 vec[16];
	struct http_req		*r;
	llhttp_errno_t		 err;
	size_t			 len = evbuffer_get_length(in);
	int			 i, nv;

	session_touch(s);
	if (len == 0)
		return;
	if (!h->resp_tunnel) {
		/*
		 * started: the response being parsed began before this read
		 * (some of it is already with the client); done: the bytes
		 * of this read up to the end of the last complete response.
		 */
		bool	 started = h->resp_started;
		size_t	 off = 0, done = 0;

		nv = evbuffer_peek(in, -1, NULL, vec, 16);
		h->ncuts = 0;
		h->rparsing = true;
		for (i = 0; i < nv && i < 16 && !h->resp_tunnel; i++) {
			const char	*at = vec[i].iov_base, *end;
			size_t		 left = vec[i].iov_len, used;

			h->rchunk = vec[i].iov_base;
			h->rchunk_off = off;

			/* Each response's bytes go to its own request. */
			for (;;) {
				h->resp_counting = true;
				err = llhttp_execute(&h->resp, at, left);
				h->resp_counting = false;
				used = left;
				if (err == HPE_PAUSED &&
				    (end = llhttp_get_error_pos(&h->resp)) !=
				    NULL && end >= at && end <= at + left)
					used = (size_t)(end - at);
				if ((r = STAILQ_FIRST(&h->pending)) != NULL &&
				    (err == HPE_OK || err == HPE_PAUSED))
					r->bytes_out += used;
				if (err != HPE_PAUSED)
					break;
				http_resp_done(h, h->resp_final);
				if (h->resp_tunnel) {
					/* 101: raw bytes from here on. */
					err = HPE_PAUSED_UPGRADE;
					break;
				}
				llhttp_resume(&h->resp);
				at += used;
				left -= used;
				done = off + (size_t)(at -
				    (const char *)vec[i].iov_base);
				started = false;
				if (left == 0) {
					err = HPE_OK;
					break;
				}
			}
			if (err == HPE_PAUSED_UPGRADE)
				break;
			if (err != HPE_OK) {
				h->rparsing = false;
				h->ncuts = 0;	/* what goes out goes as it is */
				log_warnx("listener \"%s\": bad response from "
				    "backend %s: %s (%s)", s->srv->cfg->name,
				    s->backend_addr, llhttp_errno_name(err),
				    llhttp_get_error_reason(&h->resp));
				/* Complete responses before it still go out. */
				if (done > 0) {
					s->bytes_out += done;
					session_send(s, s->client, in, done);
				}
				evbuffer_drain(in, len - done);
				if (!started) {
					http_send_error(h, 502,
					    "bad_backend_response");
				} else
					http_close_when_flushed(h,
					    "bad_backend_response");
				return;
			}
			off += vec[i].iov_len;
		}
		h->rparsing = false;
	}
	s->bytes_out += len;
	http_send_cut(h, in, len);
	http_btimer_update(h);
	http_check_deferred(h);
	http_check_client_close(h);
	if (h->refused_upgrade && !h->closing) {
		http_close_when_flushed(h, "upgrade_refused");
		return;
	}
	if (h->closing)
		return;
	if (h->cstate == HTTP_C_TUNNEL && !s->client_eof) {
		session_read(s, s->client, true);
		http_client_input(h);
	}
	if (!h->closing)
		http_pressure(s, s->backend, s->client);
}

/* Output drained: resume the other side; finish a close. */
static void
http_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	struct http	*h = s->http;

	session_touch(s);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (bev == s->client && h->closing) {
		if (session_client_flushed(s))
			session_close(s, h->close_why);
		return;
	}
	if (h->closing)
		return;
	if (bev == s->backend && s->client_eof && !s->backend_shut &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
		s->backend_shut = true;
	}
	if (bev == s->client && s->backend != NULL && !s->backend_eof)
		session_read(s, s->backend, true);
	if (bev != s->client && (h->cstate == HTTP_C_HEAD ||
	    h->cstate == HTTP_C_BODY || h->cstate == HTTP_C_TUNNEL) &&
	    !s->client_eof)
		session_read(s, s->client, true);
}

/*
 * Whether the client's connection can outlive its backend connection: it
 * is between requests (every request answered in full, nothing of the
 * next one forwarded yet, no upgrade), the client has not ended its side,
 * and neither its last request nor the last answer said to close the
 * connection (no_reuse; an answer with Connection: close reached the
 * client as it was, so the client expects the close).
 */
static bool
http_between_messages(const struct http *h)
{
	return http_backend_idle(h) && h->cstate == HTTP_C_HEAD &&
	    !h->s->client_eof && !h->closing && h->deferred == 0;
}

/* Close the backend connection between requests; the client stays. */
static void
http_backend_forget(struct http *h)
{
	session_backend_drop(h->s);
	h->conn_used = false;
	evtimer_del(h->btimer);
	llhttp_init(&h->resp, HTTP_RESPONSE, &http_resp_settings);
	h->resp.data = h;
	h->resp_counting = false;
}

/*
 * The backend closed its idle connection (a backend's keep-alive timeout:
 * Node.js 5 s, gunicorn 2 s), or it broke, between two requests: the
 * client keeps its connection, as with nginx, and its next request
 * connects again (from backend.keepalive's pool when it has one).
 */
static void
http_backend_detach(struct http *h, const char *why)
{
	struct session	*s = h->s;

	log_debug("session %" PRIu64 ": backend %s %s between requests; the "
	    "next request connects again", s->id, s->backend_addr, why);
	http_backend_forget(h);
	/* A request already under way connects now. */
	if (evbuffer_get_length(bufferevent_get_input(s->client)) > 0)
		http_client_input(h);
}

/*
 * Out of descriptors (upstream.c): close the backend connection of a
 * client that is between requests, so that another client's request can
 * have the descriptor; this client's next request connects again.
 */
bool
http_backend_release(struct session *s)
{
	struct http	*h = s->http;

	if (h == NULL || s->backend == NULL || s->state != SESSION_PROXYING ||
	    s->backend_eof || !http_between_messages(h) ||
	    evbuffer_get_length(bufferevent_get_input(s->backend)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(s->backend)) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(s->client)) != 0)
		return false;
	log_debug("session %" PRIu64 ": backend connection closed between "
	    "requests to free a descriptor", s->id);
	http_backend_forget(h);
	return true;
}

static void
http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	struct http	*h = s->http;
	int		 err = EVUTIL_SOCKET_ERROR();
	char		 why[160];

	if (bev == s->client) {
		if (what & BEV_EVENT_EOF) {
			/* Anything the client sent before its end goes on. */
			http_client_input(h);
			if (h->closing)
				return;
			s->client_eof = true;
			session_read(s, bev, false);
			bufferevent_enable(bev, EV_WRITE);
			if (STAILQ_EMPTY(&h->pending) && !h->resp_tunnel) {
				http_close_when_flushed(h, "client_closed");
				return;
			}
			/* Let the backend finish the answers it owes. */
			if (s->backend != NULL && !s->backend_shut &&
			    evbuffer_get_length(bufferevent_get_output(
			    s->backend)) == 0) {
				(void)shutdown(bufferevent_getfd(s->backend),
				    SHUT_WR);
				s->backend_shut = true;
			}
			return;
		}
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		session_close(s, "client_error: connection lost");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->backend_eof = true;
		http_backend_read_cb(bev, s);
		if (h->closing)
			return;
		if (http_between_messages(h)) {
			http_backend_detach(h, "closed");
			return;
		}
		if (http_replay(h, "closed"))
			return;
		/* A response that runs until close ends here. */
		if (!h->resp_tunnel && llhttp_finish(&h->resp) == HPE_OK &&
		    h->resp_started)
			http_req_done(h, h->resp.status_code);
		if (!STAILQ_EMPTY(&h->pending) && !h->resp_tunnel) {
			struct http_req *r = STAILQ_FIRST(&h->pending);

			if (r->bytes_out == 0) {
				http_send_error(h, 502, "backend_closed");
				return;
			}
		}
		http_close_when_flushed(h, "backend_closed");
		return;
	}
	snprintf(why, sizeof(why), "failed (%s)", err != 0 ?
	    evutil_socket_error_to_string(err) : "connection lost");
	if (http_between_messages(h)) {
		http_backend_detach(h, why);
		return;
	}
	if (http_replay(h, why))
		return;
	snprintf(why, sizeof(why), "backend_error: %s",
	    err != 0 ? evutil_socket_error_to_string(err) : "connection lost");
	if (!h->resp_started && !STAILQ_EMPTY(&h->pending) &&
	    STAILQ_FIRST(&h->pending)->bytes_out == 0) {
		http_send_error(h, 502, "backend_error");
		return;
	}
	session_close(s, why);
}

static void
http_btimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	(void)fd;
	(void)what;
	if (h->closing) {
		/* Else the write callback closes once it is out. */
		if (session_client_flushed(h->s))
			session_close(h->s, h->close_why);
		return;
	}
	log_warnx("listener \"%s\": backend %s did not answer within %" PRIu64
	    " ms (timeouts.backend)", h->s->srv->cfg->name,
	    h->s->backend_addr, h->s->srv->cfg->backend_timeout_ms);
	if (r != NULL && r->bytes_out == 0)
		http_send_error(h, 504, "backend_timeout");
	else
		http_close_when_flushed(h, "backend_timeout");
}

static struct http *
http_new(struct session *s)
{
	struct http	*h;
	SSL		*ssl = bufferevent_openssl_get_ssl(s->client);
	char		*colon;

	http_settings_init();
	h = xcalloc(1, sizeof(*h));
	h->s = s;
	STAILQ_INIT(&h->pending);
	llhttp_init(&h->reqp, HTTP_REQUEST, &http_req_settings);
	llhttp_init(&h->resp, HTTP_RESPONSE, &http_resp_settings);
	h->reqp.data = h;
	h->resp.data = h;
	h->btimer = evtimer_new(s->w->base, http_btimer_cb, h);
	h->ident = hdr_identity_block(s->srv->hdrs,
	    SSL_get0_peer_certificate(ssl), &h->ident_len);
	if (h->ident == NULL) {
		h->ident = xstrdup("");
		h->ident_len = 0;
	}
	/* For X-Forwarded-For, the peer without its port: 1.2.3.4 or ::1. */
	snprintf(h->fwd_ip, sizeof(h->fwd_ip), "%s", s->peer[0] == '[' ?
	    s->peer + 1 : s->peer);
	if ((colon = strrchr(h->fwd_ip, ':')) != NULL)
		*colon = '\0';
	if ((colon = strrchr(h->fwd_ip, ']')) != NULL)
		*colon = '\0';
	return h;
}

static void
http_setcb(struct session *s)
{
	bufferevent_setcb(s->client, http_client_read_cb, http_write_cb,
	    http_event_cb, s);
	if (s->backend != NULL)
		bufferevent_setcb(s->backend, http_backend_read_cb,
		    http_write_cb, http_event_cb, s);
}

/* Both sides are connected (again): proxy HTTP requests. */
void
http_start(struct session *s)
{
	if (s->http == NULL)
		s->http = http_new(s);
	http_setcb(s);
	bufferevent_enable(s->backend, EV_WRITE);
	session_read(s, s->backend, true);
	session_client_enable(s, EV_READ | EV_WRITE);
	if (s->http->replaying)
		http_replay_send(s->http);
	http_client_input(s->http);
}

/* No backend could be reached: answer the waiting request with 502. */
void
http_start_failed(struct session *s)
{
	if (s->http == NULL)
		s->http = http_new(s);
	s->http->backend_failed = true;
	s->state = SESSION_PROXYING;
	http_setcb(s);
	session_client_enable(s, EV_READ | EV_WRITE);
	if (s->http->replaying) {
		/* The request sent again found no backend. */
		s->http->replaying = false;
		http_send_error(s->http, 502, "backend_unavailable");
		return;
	}
	http_client_input(s->http);
}

/*
 * Whether the backend connection is between messages and may carry other
 * clients' requests (backend.keepalive): every request forwarded has been
 * answered in full, nothing is being sent, and neither side asked to close
 * or switched protocols.
 */
bool
http_backend_idle(const struct http *h)
{
	return h != NULL && !h->no_reuse && !h->backend_failed &&
	    !h->resp_tunnel && !h->resp_started && h->cur == NULL &&
	    (h->cstate == HTTP_C_HEAD || h->cstate == HTTP_C_STOP) &&
	    STAILQ_EMPTY(&h->pending);
}

/* Free the HTTP state of a session (from session_close). */
void
http_free(struct http *h)
{
	struct http_req	*r;

	if (h == NULL)
		return;
	while ((r = STAILQ_FIRST(&h->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&h->pending, entry);
		http_req_free(r);
	}
	http_req_free(h->errreq);
	if (h->btimer != NULL)
		event_free(h->btimer);
	free(h->buf);
	free(h->hdrs);
	free(h->cuts);
	free(h->ident);
	free(h->replay);
	free(h);
}
