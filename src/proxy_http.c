/*
 * proxy_http.c - HTTP/1.1 mode: parse each request head with llhttp, strip
 * every identity header a client sent, add the proxy's own from the
 * verified certificate, and stream bodies both ways unchanged.  Responses
 * are forwarded as they arrive, less their hop-by-hop headers (a head is
 * held until it is complete); a parser watches them for message boundaries
 * (keep-alive, HEAD, 1xx, 101 upgrades) and the access log.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>

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
/* A backend's response head may be this long; a longer one gets 502. */
#define HTTP_RESP_HEAD_MAX	(64 * 1024)

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
	bool			 http10;	/* an HTTP/1.0 request */
	bool			 done;		/* whole request sent */
	bool			 replayable;	/* see http_replay_keep() */
	bool			 replayed;	/* sent again once already */
	char			*path;		/* owned; for the log */
	struct timeval		 start;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;	/* of the answer, as parsed */
	uint64_t		 bytes_cut;	/* ... of which not sent */
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
	bool			 field_seen;	/* a byte of this header's name */
	bool			 url_long;	/* too_large in the target */
	const char		*bad_why;	/* a head refused by a callback */
	bool			 refused_upgrade;
	bool			 no_reuse;	/* a message ended keep-alive */
	bool			 client_close;	/* close after this answer */
	bool			 resp_close;	/* an answer said close */
	bool			 bclose_kept;	/* ... the client's conn stays */
	bool			 drained;	/* ... because of a stop */
	bool			 chunk_last;	/* paused at the last chunk */
	bool			 trailers;	/* reading them: not forwarded */
	int			 deferred;	/* status to send once idle */
	const char		*close_why;
	/* the request head being read */
	char			*buf;		/* owned; url, names, values */
	size_t			 len, cap;
	uint32_t		 url_len;
	uint32_t		 tgt_off, tgt_len;	/* origin-form */
	uint32_t		 auth_off, auth_len;	/* absolute-form's */
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
	int			 boutq;		/* backend send queue, at arming */
	bool			 conn_used;	/* this backend conn carried one */
	bool			 replaying;	/* connecting to send it again */
	char			*replay;	/* owned; the head as sent */
	size_t			 replay_len, replay_cap;
	/*
	 * The hop-by-hop headers of the backend's response heads are left
	 * out (RFC 9110 7.6.1): Keep-Alive (the backend's idle timeout is no
	 * business of the client's), Proxy-Connection, and the headers the
	 * response's Connection header lists. A head is held back until it
	 * is complete, since Connection may come after the headers it names.
	 * Positions count the bytes read on this backend connection; a line
	 * may span the pieces of a read, and a held head several reads.
	 */
	const char		*rchunk;	/* the piece being parsed */
	uint64_t		 rchunk_pos;	/* its position */
	size_t			 rchunk_len;	/* its length */
	uint64_t		 rbase;		/* position of the input's start */
	size_t			 rheld;		/* input parsed but held */
	uint64_t		 rmsg_end;	/* where the last response ended */
	uint64_t		 rhead_pos;	/* where the held head begins */
	bool			 rin_head;	/* a head begun, not complete */
	bool			 rhead_big;	/* over HTTP_RESP_HEAD_MAX */
	const char		*rbad_why;	/* a response refused, why */
	bool			 rparsing;	/* inside http_backend_read_cb */
	bool			 rfield_new;	/* the next name piece starts one */
	char			 rname[18];	/* the name so far, cut short */
	size_t			 rname_len;	/* its whole length */
	uint64_t		 rline_pos;	/* where the name began */
	uint64_t		 rvalue_pos;	/* where its value began */
	uint64_t		 rvalue_end;	/* end of its value so far */
	struct http_rline {
		uint64_t	 pos;		/* the name's first byte */
		uint64_t	 vpos;		/* the value's; vend if none */
		uint64_t	 vend;		/* UINT64_MAX: empty value */
		uint32_t	 name_len;
		uint8_t		 kind;		/* enum http_rkind */
	}			*rlines;	/* owned; the head's lines */
	size_t			 nrlines, rlines_cap;
	struct http_cut {
		size_t		 off, len;	/* bytes left out */
		const char	*ins;		/* or a line put in at off */
	}			*cuts;		/* owned */
	size_t			 ncuts, cuts_cap;
};

enum http_rkind {
	HTTP_RK_OTHER,		/* dropped if Connection lists it */
	HTTP_RK_DROP,		/* Keep-Alive, Proxy-Connection */
	HTTP_RK_CONN,		/* Connection */
	HTTP_RK_FRAME		/* Content-Length, Transfer-Encoding: kept */
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
	int		 rc;

	h->url_len += (uint32_t)n;
	if ((rc = http_append(h, at, n)) != 0)
		h->url_long = true;
	return rc;
}

static int
http_on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;
	struct http_hdr	*hd;

	if (h->cstate != HTTP_C_HEAD)	/* trailers: dropped */
		return 0;
	if (n > 0)
		h->field_seen = true;
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
	struct http_hdr	*hd;

	if (h->cstate != HTTP_C_HEAD)
		return 0;
	hd = &h->hdrs[h->nhdrs - 1];
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
	struct http_hdr	*hd;
	char		 c;
	uint32_t	 i;

	if (h->cstate != HTTP_C_HEAD)
		return 0;
	/*
	 * ": value" (RFC 9110 5.1: a name is a token of one byte or more);
	 * without this its value would be taken as more of the line before.
	 */
	if (!h->field_seen) {
		h->bad_why = "empty header name";
		return HPE_USER;
	}
	h->field_seen = false;
	hd = &h->hdrs[h->nhdrs - 1];
	c = h->buf[hd->name_off + hd->name_len - 1];
	if (c == ' ' || c == '\t') {
		/* llhttp puts its own reason over one set here. */
		h->bad_why = "whitespace before the colon";
		return HPE_USER;
	}
	/*
	 * A name is a token (RFC 9110 5.1). llhttp 8 lets a space or a
	 * control byte inside one pass ("Bad Header: x"); a backend could
	 * read such a line some other way than the proxy did.
	 */
	for (i = 0; i < hd->name_len; i++)
		if (!is_tchar((unsigned char)h->buf[hd->name_off + i])) {
			h->bad_why = "a header name with a character that "
			    "is not allowed in one";
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
	size_t	 nlisted;	/* how many header names it lists */
	uint8_t	 order[3];	/* the options, in the order seen */
	size_t	 nopts;
};

static const char *const http_conn_opts[] = { "close", "keep-alive",
    "upgrade" };
#define HTTP_CONN_UPGRADE	2

static void
http_conn_token(struct http_conn *c, const char *p, size_t n, unsigned *seen)
{
	size_t	i;

	for (i = 0; i < 3; i++) {
		if (!http_name_is(p, n, http_conn_opts[i]))
			continue;
		if (*seen & (1U << i))
			return;
		*seen |= 1U << i;
		c->order[c->nopts++] = (uint8_t)i;
		return;
	}
	c->nlisted++;
}

/* The options to forward, in the order seen; upgrade only if kept. */
static void
http_conn_opts_put(struct http_conn *c, bool upgrade)
{
	const char	*o;
	size_t		 i, n;

	c->opts_len = 0;
	for (i = 0; i < c->nopts; i++) {
		if (c->order[i] == HTTP_CONN_UPGRADE && !upgrade)
			continue;
		o = http_conn_opts[c->order[i]];
		n = strlen(o);
		if (c->opts_len > 0) {
			memcpy(c->opts + c->opts_len, ", ", 2);
			c->opts_len += 2;
		}
		memcpy(c->opts + c->opts_len, o, n);
		c->opts_len += n;
	}
}

/* Whether the Connection headers list the upgrade option. */
static bool
http_conn_upgrade(const struct http_conn *c)
{
	size_t	i;

	for (i = 0; i < c->nopts; i++)
		if (c->order[i] == HTTP_CONN_UPGRADE)
			return true;
	return false;
}

/*
 * The next element of a comma-separated header value (RFC 9110 5.6.1) at or
 * after *pos, without the spaces and tabs around it: its offset, its length
 * in *len (0 for an empty element). False at the end of the value.
 */
static bool
http_list_next(const char *v, size_t n, size_t *pos, size_t *off,
    size_t *len)
{
	size_t	j = *pos, k, e;

	if (j >= n)
		return false;
	while (j < n && (v[j] == ' ' || v[j] == '\t'))
		j++;
	for (k = j; k < n && v[k] != ','; k++)
		;
	e = k;
	while (e > j && (v[e - 1] == ' ' || v[e - 1] == '\t'))
		e--;
	*pos = k + 1;
	*off = j;
	*len = e - j;
	return true;
}

static void
http_conn_parse(struct http *h, struct http_conn *c)
{
	unsigned	seen = 0;
	size_t		i, j, off, len, n;
	const char	*v;

	c->opts_len = 0;
	c->nlisted = 0;
	c->nopts = 0;
	for (i = 0; i < h->nhdrs; i++) {
		if (!http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "connection"))
			continue;
		v = h->buf + h->hdrs[i].val_off;
		n = h->hdrs[i].val_len;
		j = 0;
		while (http_list_next(v, n, &j, &off, &len))
			if (len > 0)
				http_conn_token(c, v + off, len, &seen);
	}
}

/* Whether a Connection token is an option (close, keep-alive, upgrade). */
static bool
http_conn_option(const char *p, size_t n)
{
	return http_name_is(p, n, "close") || http_name_is(p, n, "keep-alive") ||
	    http_name_is(p, n, "upgrade");
}

/* Whether the comma-separated list v (n bytes) has the element name. */
static bool
http_list_has(const char *v, size_t n, const char *name, size_t len)
{
	size_t	j = 0, off, elen;

	while (http_list_next(v, n, &j, &off, &elen))
		if (elen == len && strncasecmp(v + off, name, len) == 0)
			return true;
	return false;
}

/*
 * Whether the header is one the client's Connection headers list (never
 * an option, nor Host, Content-Length or Transfer-Encoding).
 */
static bool
http_conn_listed(const struct http *h, const struct http_conn *c,
    const char *name, size_t len)
{
	size_t	i;

	if (c->nlisted == 0 || http_name_is(name, len, "host") ||
	    http_name_is(name, len, "content-length") ||
	    http_name_is(name, len, "transfer-encoding") ||
	    http_conn_option(name, len))
		return false;
	for (i = 0; i < h->nhdrs; i++)
		if (http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "connection") &&
		    http_list_has(h->buf + h->hdrs[i].val_off,
		    h->hdrs[i].val_len, name, len))
			return true;
	return false;
}

/*
 * Whether an Upgrade header of the request lists websocket (RFC 6455 4.1;
 * tokens compared in any case).
 */
static bool
http_upgrade_ws(const struct http *h)
{
	size_t	i;

	for (i = 0; i < h->nhdrs; i++)
		if (http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "upgrade") &&
		    http_list_has(h->buf + h->hdrs[i].val_off,
		    h->hdrs[i].val_len, "websocket", 9))
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
 * Transfer-Encoding (RFC 9112 6.1, 6.3): the proxy frames only chunked
 * bodies. Any other coding (identity, gzip, xchunked) is refused before
 * the head goes on, or the backend and the proxy could disagree on where
 * the body ends; 501 as nginx answers.
 */
static int
http_head_te(struct http *h, llhttp_t *p)
{
	size_t		 i, j, off, len;
	const char	*v;

	for (i = 0; i < h->nhdrs; i++) {
		if (!http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "transfer-encoding"))
			continue;
		v = h->buf + h->hdrs[i].val_off;
		j = 0;
		while (http_list_next(v, h->hdrs[i].val_len, &j, &off, &len))
			if (len > 0 && !http_name_is(v + off, len,
			    "chunked")) {
				log_info("%s: bad request: Transfer-Encoding "
				    "\"%.*s\" is not supported (only chunked)",
				    h->s->peer, (int)(len > 64 ? 64 : len),
				    v + off);
				return 501;
			}
	}
	if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED)) {
		log_info("%s: bad request: Transfer-Encoding does not end in "
		    "chunked", h->s->peer);
		return 400;
	}
	return 0;
}

/*
 * Whether v is a uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2):
 * reg-name, IP literal or IPv4 characters only. No space, "/", "?", "#",
 * "@" or control byte, which a backend building URLs from Host (or the
 * X-Forwarded-Host copied from it) would take as a path or user.
 */
static bool
http_host_ok(const char *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' &&
		    strchr("-._~!$&'()*+,;=:[]%", c) != NULL))
			continue;
		return false;
	}
	return true;
}

/*
 * An absolute-form target (RFC 9112 3.2.2): "http://authority/path?q".
 * It goes on in origin-form, with the authority as Host; h->auth_len is 0
 * for any other form. -1: a scheme other than http(s), or a bad authority.
 */
static int
http_target(struct http *h)
{
	const char	*u = h->buf;
	size_t		 n = h->url_len, k, a;

	h->auth_len = 0;
	h->tgt_off = 0;
	h->tgt_len = n;
	if (n == 0 || u[0] == '/' || (n == 1 && u[0] == '*'))
		return 0;
	if (n > 7 && strncasecmp(u, "http://", 7) == 0)
		a = 7;
	else if (n > 8 && strncasecmp(u, "https://", 8) == 0)
		a = 8;
	else if (memchr(u, '/', n) == NULL)
		return 0;	/* authority-form: CONNECT, refused later */
	else
		return -1;
	for (k = a; k < n && u[k] != '/' && u[k] != '?' && u[k] != '#'; k++)
		;
	if (k == a || !http_host_ok(u + a, k - a))
		return -1;
	h->auth_off = (uint32_t)a;
	h->auth_len = (uint32_t)(k - a);
	h->tgt_off = (uint32_t)k;
	h->tgt_len = (uint32_t)(n - k);
	return 0;
}

/*
 * Whether a request head can go on: 0, or the status to answer with (the
 * reason logged here).
 */
static int
http_head_check(struct http *h, llhttp_t *p)
{
	size_t	i, n;

	/* llhttp reads HTTP/2.0 too; only 1.x is spoken here. */
	if (p->http_major != 1) {
		log_info("%s: bad request: HTTP/%d.%d is not supported",
		    h->s->peer, p->http_major, p->http_minor);
		return 505;
	}
	if (http_target(h) == -1) {
		log_info("%s: bad request: a request target that is neither "
		    "a path nor an http(s) URL with a valid host", h->s->peer);
		return 400;
	}
	for (i = 0; i < h->nhdrs; i++)
		if (http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "host") &&
		    !http_host_ok(h->buf + h->hdrs[i].val_off,
		    h->hdrs[i].val_len)) {
			log_info("%s: bad request: a Host header that is not "
			    "host[:port]", h->s->peer);
			return 400;
		}

	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one before. */
	for (i = 0, n = 0; i < h->nhdrs; i++)
		if (http_name_is(h->buf + h->hdrs[i].name_off,
		    h->hdrs[i].name_len, "host"))
			n++;
	if (n > 1 || (n == 0 && p->http_major == 1 && p->http_minor >= 1)) {
		log_info("%s: bad request: %s", h->s->peer, n > 1 ?
		    "more than one Host header" :
		    "HTTP/1.1 request without a Host header");
		return 400;
	}
	return http_head_te(h, p);
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
	const char		*host = NULL, *method;
	size_t			 i, host_len = 0, n, size, fwd_len;
	size_t			 before;
	char			 ver[] = " HTTP/1.1\r\n";
	bool			 hop = false, ws, slash, host_seen = false;
	struct http_conn	 conn;

	r = xcalloc(1, sizeof(*r));
	r->method = (uint8_t)llhttp_get_method(p);
	r->http10 = p->http_major == 1 && p->http_minor == 0;
	/*
	 * Only an upgrade to WebSocket is forwarded, and only when Connection
	 * lists upgrade (RFC 9110 7.8). An upgrade to anything else (h2c) that
	 * a backend accepted would make the connection a raw tunnel, in which
	 * the client's next requests or frames reach the backend with
	 * identity headers of the client's own making. Otherwise Upgrade and
	 * the upgrade option are dropped: the request is plain HTTP/1.1.
	 */
	http_conn_parse(h, &conn);
	ws = r->method != HTTP_CONNECT && http_conn_upgrade(&conn) &&
	    http_upgrade_ws(h);
	http_conn_opts_put(&conn, ws);
	if (!ws && r->method != HTTP_CONNECT)
		p->upgrade = 0;
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
	if ((i = (size_t)http_head_check(h, p)) != 0) {
		h->errreq = r;
		http_error(h, (int)i, i == 400 ? "bad_request" : i == 505 ?
		    "version_not_supported" : "not_implemented");
		return HPE_PAUSED;
	}
	/* An absolute-form path may lack its "/" ("http://x?q"). */
	slash = h->auth_len > 0 && (h->tgt_len == 0 ||
	    h->buf[h->tgt_off] != '/');
	if (h->auth_len > 0) {
		/* Logged as it goes on, in origin-form. */
		n = h->tgt_len > HTTP_PATH_LOG ? HTTP_PATH_LOG : h->tgt_len;
		free(r->path);
		r->path = xmalloc(n + 2);
		r->path[0] = '/';
		memcpy(r->path + slash, h->buf + h->tgt_off, n);
		r->path[n + slash] = '\0';
	}
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
	/*
	 * Connection: close or HTTP/1.0 without keep-alive: the client's
	 * connection ends after this answer (RFC 9112 9.6), whether or not
	 * the backend connection is kept.
	 */
	h->client_close = hop || (!llhttp_should_keep_alive(p) &&
	    !llhttp_get_upgrade(p));
	if (!hop && s->w->stopping) {
		/* Stopping: the last request on this connection. */
		h->client_close = true;
		h->drained = true;
	}

	/* llhttp accepts only single-digit versions. */
	method = llhttp_method_name((llhttp_method_t)r->method);
	ver[6] = (char)('0' + p->http_major % 10);
	ver[8] = (char)('0' + p->http_minor % 10);
	fwd_len = strlen(h->fwd_ip);
	size = strlen(method) + 2 + h->url_len + sizeof(ver) +
	    sizeof("Host: \r\n") + 2 * (size_t)h->auth_len +
	    sizeof("Connection: \r\n") + sizeof(conn.opts) +
	    sizeof("Upgrade: websocket\r\n") + h->ident_len +
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
	if (slash)
		head_put(&b, "/", 1);
	head_put(&b, h->buf + h->tgt_off, h->tgt_len);
	head_put(&b, ver, sizeof(ver) - 1);
	for (i = 0; i < h->nhdrs; i++) {
		const struct http_hdr *hd = &h->hdrs[i];
		const char *name = h->buf + hd->name_off;

		if (hdr_is_reserved(s->srv->hdrs, name, hd->name_len))
			continue;
		/*
		 * Hop-by-hop (RFC 9110 7.6.1; TE as nginx clears it): the
		 * Connection header goes on rewritten.
		 */
		if (http_name_is(name, hd->name_len, "connection") ||
		    http_name_is(name, hd->name_len, "upgrade") ||
		    http_name_is(name, hd->name_len, "te") ||
		    http_name_is(name, hd->name_len, "keep-alive") ||
		    http_name_is(name, hd->name_len, "proxy-connection") ||
		    http_conn_listed(h, &conn, name, hd->name_len))
			continue;
		if (ch->forwarded && http_name_is(name, hd->name_len,
		    "x-forwarded-for"))
			continue;	/* appended to below */
		if (http_name_is(name, hd->name_len, "host")) {
			/* RFC 9112 3.2.2: an absolute-form's authority. */
			host_seen = true;
			host = h->auth_len > 0 ? h->buf + h->auth_off :
			    h->buf + hd->val_off;
			host_len = h->auth_len > 0 ? h->auth_len :
			    hd->val_len;
			head_put(&b, name, hd->name_len);
			head_put(&b, ": ", 2);
			head_value(&b, host, host_len);
			head_put(&b, "\r\n", 2);
			continue;
		}
		head_put(&b, name, hd->name_len);
		head_put(&b, ": ", 2);
		head_value(&b, h->buf + hd->val_off, hd->val_len);
		head_put(&b, "\r\n", 2);
	}
	if (!host_seen && h->auth_len > 0) {
		/* HTTP/1.0 without Host: the target's authority is one. */
		host = h->buf + h->auth_off;
		host_len = h->auth_len;
		head_put(&b, "Host: ", 6);
		head_value(&b, host, host_len);
		head_put(&b, "\r\n", 2);
	}
	if (hop && p->http_major == 1 && p->http_minor == 0)
		head_put(&b, "Connection: keep-alive\r\n", 24);
	else if (!hop && conn.opts_len > 0) {
		head_put(&b, "Connection: ", 12);
		head_put(&b, conn.opts, conn.opts_len);
		head_put(&b, "\r\n", 2);
	}
	if (ws)
		head_put(&b, "Upgrade: websocket\r\n", 20);
	head_put(&b, h->ident, h->ident_len);
	if (ch->forwarded) {
		/*
		 * Every X-Forwarded-For line the client sent, in order, as
		 * one list (RFC 9110 5.3), then the client's address.
		 */
		head_put(&b, "X-Forwarded-For: ", 17);
		for (i = 0; i < h->nhdrs; i++) {
			const struct http_hdr *hd = &h->hdrs[i];
			const char *v = h->buf + hd->val_off;
			size_t vl = hd->val_len;

			while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 && (v[vl - 1] == ' ' ||
			    v[vl - 1] == '\t'))
				vl--;
			if (vl == 0 || !http_name_is(h->buf + hd->name_off,
			    hd->name_len, "x-forwarded-for") ||
			    http_conn_listed(h, &conn, h->buf + hd->name_off,
			    hd->name_len))
				continue;
			head_value(&b, v, vl);
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

/*
 * The last chunk of a chunked request: pause, so that what comes after it,
 * the trailer section, is known. Trailers are not forwarded (nginx does
 * not forward them either): a backend that merged them into the headers
 * would take a client's "X-Client-Subject" trailer for the proxy's header.
 */
static int
http_on_chunk_header(llhttp_t *p)
{
	struct http	*h = p->data;

	if (p->content_length != 0 || h->cstate != HTTP_C_BODY)
		return 0;
	h->chunk_last = true;
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
http_log_request(struct http *h, struct http_req *r, int status,
    const char *why)
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
		{ "close", why, false },
	};

	metrics_http_status(s->li, status);
	if (!s->rt->cfg->log_access)
		return;
	event_base_gettimeofday_cached(s->w->base, &now);
	timersub(&now, &r->start, &d);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(in, sizeof(in), "%" PRIu64, r->bytes_in);
	snprintf(out, sizeof(out), "%" PRIu64, r->bytes_out > r->bytes_cut ?
	    r->bytes_out - r->bytes_cut : 0);
	snprintf(ms, sizeof(ms), "%" PRIu64,
	    (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000);
	log_event(LOG_LEVEL_INFO, "request", f, sizeof(f) / sizeof(f[0]) -
	    (why == NULL ? 1 : 0));
}

static void
http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r);
}

/*
 * The oldest pending request ends: its request line (why: see
 * http_unanswered), then it is freed.
 */
static void
http_req_end(struct http *h, int status, const char *why)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (r == NULL)
		return;
	STAILQ_REMOVE_HEAD(&h->pending, entry);
	if (h->cur == r)
		h->cur = NULL;
	http_log_request(h, r, status, why);
	http_req_free(r);
}

/* Pop the oldest pending request: its response has ended. */
static void
http_req_done(struct http *h, int status)
{
	http_req_end(h, status, NULL);
}

static int
http_on_resp_begin(llhttp_t *p)
{
	struct http	*h = p->data;

	h->resp_started = true;
	if (h->rparsing && !h->rin_head) {
		h->rin_head = true;
		h->rhead_pos = h->rmsg_end;
		h->nrlines = 0;
	}
	return 0;
}

/* Where at lies in the bytes read on this backend connection. */
static uint64_t
http_rpos(const struct http *h, const char *at)
{
	return h->rchunk_pos + (uint64_t)(at - h->rchunk);
}

/* Whether the head being read runs past HTTP_RESP_HEAD_MAX at end. */
static bool
http_resp_head_big(struct http *h, const char *end)
{
	if (!h->rin_head || http_rpos(h, end) - h->rhead_pos <=
	    HTTP_RESP_HEAD_MAX)
		return false;
	h->rhead_big = true;
	return true;
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
	if (http_resp_head_big(h, at + n))
		return HPE_USER;
	if (h->rfield_new) {
		h->rfield_new = false;
		h->rline_pos = http_rpos(h, at);
		h->rname_len = 0;
		h->rvalue_end = UINT64_MAX;
	}
	k = h->rname_len < sizeof(h->rname) ? sizeof(h->rname) - h->rname_len :
	    0;
	if (k > n)
		k = n;
	memcpy(h->rname + h->rname_len, at, k);
	h->rname_len += n;
	return 0;
}

/* A piece of its value: remember where it begins and ends. */
static int
http_on_resp_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct http	*h = p->data;

	/* llhttp reports an empty value as a piece of none after its CRLF. */
	if (!h->rparsing || n == 0)
		return 0;
	if (http_resp_head_big(h, at + n))
		return HPE_USER;
	if (h->rvalue_end == UINT64_MAX)
		h->rvalue_pos = http_rpos(h, at);
	h->rvalue_end = http_rpos(h, at + n);
	return 0;
}

/* A line of a response head is complete: note where it is, and its kind. */
static int
http_on_resp_header_value_complete(llhttp_t *p)
{
	struct http		*h = p->data;
	struct http_rline	*l;
	size_t			 n = h->rname_len;
	const char		*nm = h->rname;

	h->rfield_new = true;
	/* Trailers (no head is being read) go as they are. */
	if (!h->rparsing || !h->rin_head)
		return 0;
	if (h->nrlines == h->rlines_cap) {
		h->rlines_cap = h->rlines_cap ? 2 * h->rlines_cap : 16;
		h->rlines = xreallocarray(h->rlines, h->rlines_cap,
		    sizeof(*h->rlines));
	}
	l = &h->rlines[h->nrlines++];
	l->pos = h->rline_pos;
	l->vend = h->rvalue_end;
	l->vpos = h->rvalue_end == UINT64_MAX ? UINT64_MAX : h->rvalue_pos;
	l->name_len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	l->kind = HTTP_RK_OTHER;
	switch (n) {	/* most names have none of these lengths */
	case 10:
		if (strncasecmp(nm, "keep-alive", n) == 0)
			l->kind = HTTP_RK_DROP;
		else if (strncasecmp(nm, "connection", n) == 0)
			l->kind = HTTP_RK_CONN;
		break;
	case 14:
		if (strncasecmp(nm, "content-length", n) == 0)
			l->kind = HTTP_RK_FRAME;
		break;
	case 16:
		if (strncasecmp(nm, "proxy-connection", n) == 0)
			l->kind = HTTP_RK_DROP;
		break;
	case 17:
		if (strncasecmp(nm, "transfer-encoding", n) == 0)
			l->kind = HTTP_RK_FRAME;
		break;
	}
	return 0;
}

/* Copy n bytes at position pos of the backend input; false if not there. */
static bool
http_rcopy(struct http *h, uint64_t pos, char *dst, size_t n)
{
	struct evbuffer		*in = bufferevent_get_input(h->s->backend);
	struct evbuffer_ptr	 ep;

	/* Mostly in the piece being parsed. */
	if (pos >= h->rchunk_pos && pos - h->rchunk_pos <= h->rchunk_len &&
	    n <= h->rchunk_len - (pos - h->rchunk_pos)) {
		memcpy(dst, h->rchunk + (pos - h->rchunk_pos), n);
		return true;
	}
	return pos >= h->rbase && pos - h->rbase <= SIZE_MAX &&
	    evbuffer_ptr_set(in, &ep, (size_t)(pos - h->rbase),
	    EVBUFFER_PTR_SET) == 0 &&
	    evbuffer_copyout_from(in, &ep, dst, n) == (ssize_t)n;
}

/* The length of the line at pos, CRLF included; 0 if none is found. */
static size_t
http_rline_len(struct http *h, const struct http_rline *l)
{
	struct evbuffer		*in = bufferevent_get_input(h->s->backend);
	struct evbuffer_ptr	 ep;
	size_t			 eol = 0;

	if (l->vend != UINT64_MAX)
		return (size_t)(l->vend - l->pos) + 2;
	/* An empty value: the line ends at the first CRLF after the name. */
	if (evbuffer_ptr_set(in, &ep, (size_t)(l->pos - h->rbase) +
	    l->name_len, EVBUFFER_PTR_SET) == -1)
		return 0;
	ep = evbuffer_search_eol(in, &ep, &eol, EVBUFFER_EOL_CRLF_STRICT);
	if (ep.pos == -1 || (uint64_t)ep.pos < l->pos - h->rbase)
		return 0;
	return (size_t)ep.pos + eol - (size_t)(l->pos - h->rbase);
}

/*
 * How many header names the Connection headers' values (joined,
 * comma-separated) list: close, keep-alive and upgrade are options, not
 * names (the Upgrade header of a 101 stays; Keep-Alive goes anyway).
 */
static size_t
http_rlist_names(const char *list, size_t n)
{
	size_t	j = 0, off, len, nt = 0;

	while (http_list_next(list, n, &j, &off, &len))
		if (len > 0 && !http_conn_option(list + off, len))
			nt++;
	return nt;
}

/* Whether line l's header is one of the names the list has. */
static bool
http_rlisted(struct http *h, const char *list, size_t n,
    const struct http_rline *l)
{
	char	name[256];

	if (l->name_len > sizeof(name) ||
	    !http_rcopy(h, l->pos, name, l->name_len) ||
	    http_conn_option(name, l->name_len))
		return false;
	return http_list_has(list, n, name, l->name_len);
}

/*
 * Note a cut (len bytes left out at pos: a whole line), a line put in at
 * pos (ins), or len bytes at pos replaced with ins.
 */
static void
http_cut_push(struct http *h, uint64_t pos, size_t len, const char *ins)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	if (pos < h->rbase || (ins == NULL && len < 2))
		return;
	if (h->ncuts == h->cuts_cap) {
		h->cuts_cap = h->cuts_cap ? 2 * h->cuts_cap : 8;
		h->cuts = xreallocarray(h->cuts, h->cuts_cap,
		    sizeof(*h->cuts));
	}
	h->cuts[h->ncuts].off = (size_t)(pos - h->rbase);
	h->cuts[h->ncuts].len = len;
	h->cuts[h->ncuts].ins = ins;
	h->ncuts++;
	if (r == NULL)
		return;
	/* The line may be in a piece not yet added to bytes_out. */
	if (ins != NULL)
		r->bytes_out += strlen(ins);
	r->bytes_cut += len;
}

/* Where the status line of the head being read ends; 0 if not found. */
static uint64_t
http_rstatus_end(struct http *h)
{
	struct evbuffer		*in = bufferevent_get_input(h->s->backend);
	struct evbuffer_ptr	 ep;
	size_t			 eol = 0;

	if (h->rhead_pos < h->rbase || evbuffer_ptr_set(in, &ep,
	    (size_t)(h->rhead_pos - h->rbase), EVBUFFER_PTR_SET) == -1)
		return 0;
	ep = evbuffer_search_eol(in, &ep, &eol, EVBUFFER_EOL_LF);
	if (ep.pos == -1)
		return 0;
	return h->rbase + (uint64_t)ep.pos + eol;
}

/*
 * A response head is complete: its Keep-Alive and Proxy-Connection lines
 * and the lines its Connection header names are cut, in order. The
 * framing (Content-Length, Transfer-Encoding) stays whatever the list
 * says. With close (the final answer before mtlsproxy closes the
 * client's connection), Connection becomes "Connection: close" whatever
 * the backend said; with bclose_kept (the backend closes, the client's
 * connection stays), the backend's Connection goes.
 */
static void
http_resp_head_done(struct http *h, bool close, bool v10)
{
	char		 small[128], *list = small, *big = NULL;
	size_t		 n = 0, nt = 0, i, len;
	uint64_t	 eol;

	if (!h->rparsing || !h->rin_head)
		return;
	h->rin_head = false;
	/*
	 * An HTTP/1.0 answer goes on as HTTP/1.1, mtlsproxy's own version
	 * (RFC 9110 6.2); its framing is the same (Content-Length, or the
	 * close, which then comes with Connection: close).
	 */
	if (v10 && http_rcopy(h, h->rhead_pos, small, 8) &&
	    memcmp(small, "HTTP/1.0", 8) == 0)
		http_cut_push(h, h->rhead_pos, 8, "HTTP/1.1");
	for (i = 0; i < h->nrlines; i++) {
		const struct http_rline *l = &h->rlines[i];

		if (l->kind != HTTP_RK_CONN || l->vend == UINT64_MAX)
			continue;
		len = (size_t)(l->vend - l->vpos);
		if (n + len + 1 > sizeof(small)) {
			/* Long or many Connection headers: rare. */
			if (big == NULL) {
				big = xmalloc(n + len + 1);
				memcpy(big, small, n);
			} else
				big = xreallocarray(big, n + len + 1, 1);
			list = big;
		}
		if (!http_rcopy(h, l->vpos, list + n, len))
			continue;
		n += len;
		list[n++] = ',';
	}
	if (n > 0)
		nt = http_rlist_names(list, n);
	if (close && (eol = http_rstatus_end(h)) != 0)
		http_cut_push(h, eol, 0, "Connection: close\r\n");
	else if (h->bclose_kept && STAILQ_FIRST(&h->pending) != NULL &&
	    STAILQ_FIRST(&h->pending)->http10 &&
	    (eol = http_rstatus_end(h)) != 0)
		/* An HTTP/1.0 client keeps its connection only if told. */
		http_cut_push(h, eol, 0, "Connection: keep-alive\r\n");
	for (i = 0; i < h->nrlines; i++) {
		const struct http_rline *l = &h->rlines[i];

		if (l->kind == HTTP_RK_DROP || (l->kind == HTTP_RK_OTHER &&
		    nt > 0 && http_rlisted(h, list, n, l)) ||
		    ((close || h->bclose_kept) && l->kind == HTTP_RK_CONN))
			http_cut_push(h, l->pos, http_rline_len(h, l), NULL);
	}
	free(big);
	h->nrlines = 0;
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

		if (h->cuts[i].ins != NULL) {
			struct evbuffer	*out = bufferevent_get_output(s->client);
			size_t		 n = strlen(h->cuts[i].ins), before;

			if (h->cuts[i].off < pos ||
			    h->cuts[i].off + h->cuts[i].len > len)
				continue;
			if (h->cuts[i].off > pos)
				session_send(s, s->client, in,
				    h->cuts[i].off - pos);
			pos = h->cuts[i].off + h->cuts[i].len;
			if (h->cuts[i].len > 0) {
				/* Replaced: the version of a status line. */
				evbuffer_drain(in, h->cuts[i].len);
				s->bytes_out -= h->cuts[i].len;
			}
			before = evbuffer_get_length(out);
			evbuffer_add(out, h->cuts[i].ins, n);
			s->bytes_out += n;
			session_kick_write(s, s->client, before);
			continue;
		}
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
	bool		 final, nobody, v11, bclose, eof, last;

	final = p->status_code >= 200 && p->status_code != 101;
	nobody = (r != NULL && r->method == HTTP_HEAD) ||
	    p->status_code / 100 == 1 || p->status_code == 204 ||
	    p->status_code == 304;
	v11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
	/* The backend closes after this answer; eof: its end is the close. */
	bclose = v11 ? (p->flags & F_CONNECTION_CLOSE) != 0 :
	    (p->flags & F_CONNECTION_KEEP_ALIVE) == 0;
	eof = !nobody && llhttp_message_needs_eof(p);
	last = r != NULL && STAILQ_NEXT(r, entry) == NULL;
	/*
	 * A backend that closes after every answer (gunicorn's sync workers,
	 * Python's http.server, HTTP/1.0 servers) need not close the client's
	 * connection, which costs it a new mTLS handshake: when the answer
	 * has a length and is owed to the only request forwarded, whole, the
	 * client keeps its connection (its next request waits, then connects
	 * again), as with nginx.
	 */
	h->bclose_kept = final && bclose && !eof && last && r->done &&
	    h->cur == NULL && h->cstate == HTTP_C_HEAD && !h->client_close &&
	    !h->s->client_eof && h->deferred == 0;
	/*
	 * The final answer to the last request before the client's
	 * connection is closed says so (RFC 9112 9.6): because the client
	 * asked, or because the backend closes and the client's connection
	 * cannot outlive it.
	 */
	http_resp_head_done(h, final && ((h->client_close &&
	    h->cstate == HTTP_C_STOP && last) ||
	    ((bclose || eof) && !h->bclose_kept)), !v11 && p->http_major == 1);
	if (p->status_code == 101 && (h->cstate != HTTP_C_UPGRADE ||
	    r == NULL || STAILQ_NEXT(r, entry) != NULL)) {
		/*
		 * Only the WebSocket request the proxy forwarded may be
		 * answered with 101: any other would make the connection a
		 * tunnel the proxy no longer reads.
		 */
		h->rbad_why = "101 Switching Protocols to a request that did "
		    "not ask to upgrade";
		return HPE_USER;
	}
	if (p->status_code == 101) {
		/* Switching protocols: raw bytes both ways from here on. */
		h->resp_tunnel = true;
		if (h->cstate == HTTP_C_UPGRADE)
			h->cstate = HTTP_C_TUNNEL;
		return 2;
	}
	/*
	 * No body, whatever Content-Length says: an answer to HEAD, 1xx,
	 * 204 and 304 (RFC 9112 6.3; a 304 may carry the Content-Length its
	 * 200 would have had, and llhttp would wait for that many bytes).
	 */
	if ((r != NULL && r->method == HTTP_HEAD) || p->status_code / 100 == 1 ||
	    p->status_code == 204 || p->status_code == 304)
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

	if (!llhttp_should_keep_alive(p)) {
		h->no_reuse = true;
		/*
		 * The backend closes after this answer: requests pipelined
		 * behind it on this connection will get none. The client's
		 * connection is closed once the answer is out, so that the
		 * client sends them again (RFC 9112 9.3.2), rather than
		 * getting a 502 for requests the backend never refused.
		 */
		if (status != 101 && !h->bclose_kept)
			h->resp_close = true;
	}
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
	http_req_settings.on_chunk_header = http_on_chunk_header;
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

#define HTTP_UPLOAD_QUEUED	(64 * 1024)	/* see http_btimer_arm() */

/* Bytes sent to the backend that it has not acknowledged yet, or -1. */
static int
http_backend_outq(const struct http *h)
{
	int	n;

	if (h->s->backend == NULL ||
	    ioctl(bufferevent_getfd(h->s->backend), SIOCOUTQ, &n) == -1)
		return -1;
	return n;
}

static void
http_btimer_arm(struct http *h)
{
	struct timeval	 tv = ms_timeval(h->s->srv->cfg->backend_timeout_ms);
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	/*
	 * Only an upload can leave much in the send queue: no system call
	 * for the others (every keep-alive request comes here).
	 */
	h->boutq = r != NULL && r->bytes_in > HTTP_UPLOAD_QUEUED ?
	    http_backend_outq(h) : -1;
	evtimer_add(h->btimer, &tv);
}

/*
 * Waiting for the backend: a request was sent whole, no answer ended.
 * The time runs from when the backend has taken the whole request (none
 * of it left in the buffer for it), as nginx's proxy_read_timeout does:
 * a backend still reading a large upload slowly is not silent. The
 * backend's write callback arms it when that buffer empties.
 */
static void
http_btimer_update(struct http *h)
{
	struct http_req	*r = STAILQ_FIRST(&h->pending);
	struct session	*s = h->s;

	if (h->closing)
		return;
	if (r != NULL && r->done && !h->resp_tunnel && (s->backend == NULL ||
	    evbuffer_get_length(bufferevent_get_output(s->backend)) == 0))
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
	case 414:
		return "URI Too Long";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
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

	/* RFC 9110 15.5.6: a 405 (CONNECT) says what is allowed. */
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n%s"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%d %s\n", status, reason,
	    status == 405 ? "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, "
	    "PATCH\r\n" : "", strlen(reason) + 5, status, reason);
	/* The request that caused it, if it got as far as a head. */
	if ((r = h->errreq) != NULL) {
		h->errreq = NULL;
		r->bytes_out = evbuffer_get_length(out);
		http_log_request(h, r, status, NULL);
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
	if (h->resp_close && !h->closing && h->deferred == 0) {
		http_close_when_flushed(h, "backend_closed");
		return;
	}
	if (h->client_close && !h->closing && h->deferred == 0 &&
	    h->cstate == HTTP_C_STOP && STAILQ_EMPTY(&h->pending))
		http_close_when_flushed(h, h->drained ? "drained" :
		    "connection_close");
}

/*
 * mtlsproxy is stopping (SIGTERM): a keep-alive connection between
 * requests is closed now; one with a request in progress gets its answer,
 * with "Connection: close", and is closed after it. A request head only
 * begun is read and answered the same way; upgraded connections run on
 * until the drain deadline.
 */
void
http_drain(struct http *h)
{
	struct session	*s = h->s;

	if (h->closing || h->client_close)
		return;
	if (h->cstate == HTTP_C_BODY) {
		h->client_close = h->drained = true;
		return;
	}
	if (h->cstate != HTTP_C_HEAD || h->head_bytes > 0 ||
	    evbuffer_get_length(bufferevent_get_input(s->client)) > 0)
		return;		/* a head begun: see on_headers_complete */
	h->client_close = h->drained = true;
	h->cstate = HTTP_C_STOP;
	if (STAILQ_EMPTY(&h->pending) && h->deferred == 0 &&
	    !h->resp_started)
		http_close_when_flushed(h, "drained");
	else
		http_check_client_close(h);
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
http_forward_raw(struct http *h, struct http_req *r, struct evbuffer *in,
    size_t n)
{
	struct session	*s = h->s;

	session_send(s, s->backend, in, n);
	s->bytes_in += n;
	if (r != NULL)
		r->bytes_in += n;
}

/* A chunked body whose trailers were dropped ends with a blank line. */
static void
http_forward_end(struct http *h)
{
	struct session	*s = h->s;
	struct evbuffer	*out = bufferevent_get_output(s->backend);
	size_t		 before = evbuffer_get_length(out);

	evbuffer_add(out, "\r\n", 2);
	session_kick_write(s, s->backend, before);
}

/*
 * llhttp knows a fixed list of methods: a request line that is well formed
 * (token SP target SP HTTP/x.y) but for a method not on it names a method
 * this proxy does not implement (RFC 9110 9.1: 501), not a malformed
 * request.
 */
static bool
http_method_token(struct http *h)
{
	struct evbuffer		*in = bufferevent_get_input(h->s->client);
	struct evbuffer_ptr	 ep;
	char			 m[2048], *sp, *sp2;
	size_t			 eol = 0, i, n;

	if (h->head_bytes != 0)
		return false;
	ep = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF_STRICT);
	if (ep.pos <= 0 || (size_t)ep.pos >= sizeof(m))
		return false;
	n = (size_t)ep.pos;
	if (evbuffer_copyout(in, m, n) != (ev_ssize_t)n)
		return false;
	m[n] = '\0';
	if (strlen(m) != n || (sp = strchr(m, ' ')) == NULL || sp == m ||
	    (sp2 = strchr(sp + 1, ' ')) == NULL || sp2 == sp + 1 ||
	    strchr(sp2 + 1, ' ') != NULL || strlen(sp2 + 1) != 8 ||
	    strncmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' ||
	    sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return false;
	for (i = 0; m + i < sp; i++)
		if (!is_tchar((unsigned char)m[i]))
			return false;
	return true;
}

/*
 * A request body cannot be parsed (a bad chunk size, a bare LF) after its
 * head went on: the backend connection cannot carry another request. If
 * nothing of the answer has reached the client, it gets 400; else the
 * connection is closed. Either way the log says why.
 */
static void
http_bad_body(struct http *h, llhttp_errno_t err)
{
	struct session	*s = h->s;
	struct http_req	*r = STAILQ_FIRST(&h->pending);

	log_info("%s: bad request body: %s (%s)", s->peer,
	    llhttp_errno_name(err), llhttp_get_error_reason(&h->reqp));
	h->no_reuse = true;
	if (r != NULL && r == h->cur && !h->resp_started)
		http_send_error(h, 400, "bad_request_body");
	else
		http_close_when_flushed(h, "bad_request_body");
}

/* Parse and forward what the client sent. */
static void
http_client_input(struct http *h)
{
	struct session		*s = h->s;
	struct evbuffer		*in = bufferevent_get_input(s->client);
	struct evbuffer_iovec	 v;
	struct http_req		*rq;
	llhttp_errno_t		 err;
	size_t			 used;
	bool			 kick = false;

	while (!h->closing) {
		if (evbuffer_get_length(in) == 0 && !kick)
			break;
		if (h->bclose_kept) {
			/* Held until the backend's last answer is out. */
			session_read(s, s->client, false);
			return;
		}
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
			http_forward_raw(h, h->cur, in,
			    evbuffer_get_length(in));
			break;
		}
		if (evbuffer_get_length(in) == 0) {
			/* A message without a body ends with no more input. */
			v.iov_base = (void *)"";
			v.iov_len = 0;
		} else if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		kick = false;
		/* on_message_complete forgets h->cur; its last bytes count. */
		rq = h->cur;
		err = llhttp_execute(&h->reqp, v.iov_base, v.iov_len);
		used = (err == HPE_OK) ? v.iov_len :
		    (size_t)(llhttp_get_error_pos(&h->reqp) -
		    (const char *)v.iov_base);
		if (h->closing || h->cstate == HTTP_C_STOP)
			return;		/* a callback answered already */
		if (err != HPE_OK && err != HPE_PAUSED &&
		    err != HPE_PAUSED_UPGRADE) {
			if (h->too_large && h->url_long) {
				log_info("%s: bad request: request target over "
				    "max_header_size (%zu bytes)", s->peer,
				    (size_t)s->srv->cfg->max_header_size);
				http_error(h, 414, "uri_too_long");
			} else if (h->too_large) {
				log_info("%s: bad request: head over "
				    "max_header_size (%zu bytes)", s->peer,
				    (size_t)s->srv->cfg->max_header_size);
				http_error(h, 431, "header_too_large");
			} else if (h->cstate == HTTP_C_HEAD &&
			    err == HPE_INVALID_METHOD && http_method_token(h)) {
				log_info("%s: bad request: unknown method",
				    s->peer);
				http_error(h, 501, "not_implemented");
			}
			else if (h->cstate == HTTP_C_HEAD && h->bad_why) {
				log_info("%s: bad request: %s", s->peer,
				    h->bad_why);
				http_error(h, 400, "bad_request");
			} else if (h->cstate == HTTP_C_HEAD &&
			    err == HPE_PAUSED_H2_UPGRADE) {
				/* "PRI * HTTP/2.0": HTTP/2 by prior knowledge. */
				log_info("%s: bad request: the client sent the "
				    "HTTP/2 connection preface without agreeing "
				    "on h2 in the TLS handshake (ALPN); this "
				    "listener (backend mode: http) speaks "
				    "HTTP/1.1", s->peer);
				http_error(h, 400, "bad_request");
			} else if (h->cstate == HTTP_C_HEAD) {
				log_info("%s: bad request: %s (%s)", s->peer,
				    llhttp_errno_name(err),
				    llhttp_get_error_reason(&h->reqp));
				http_error(h, 400, "bad_request");
			} else
				http_bad_body(h, err);
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
			if (used > 0 && h->trailers) {
				/* The trailer section, and the blank line. */
				evbuffer_drain(in, used);
				s->bytes_in += used;
				if (rq != NULL)
					rq->bytes_in += used;
			} else if (used > 0)
				http_forward_raw(h, rq, in, used);
			if (err == HPE_PAUSED && h->chunk_last) {
				/* Up to "0\r\n" forwarded; trailers next. */
				h->chunk_last = false;
				h->trailers = true;
			} else if (err == HPE_PAUSED) {
				if (h->trailers) {
					http_forward_end(h);
					h->trailers = false;
				}
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

/*
 * The backend's answer cannot be parsed: the complete responses before it
 * (done bytes of the input) still go out; then a 502 if nothing of this
 * one reached the client, else the connection is closed.
 */
static void
http_bad_response(struct http *h, struct evbuffer *in, size_t done,
    bool started)
{
	struct session	*s = h->s;
	struct http_req	*r;

	h->rparsing = false;
	h->rin_head = false;
	if (done > 0) {
		s->bytes_out += done;
		http_send_cut(h, in, done);
	}
	h->ncuts = 0;
	evbuffer_drain(in, evbuffer_get_length(in));
	h->rheld = 0;
	if (!started) {
		/* What was parsed of this answer never reached the client. */
		if ((r = STAILQ_FIRST(&h->pending)) != NULL)
			r->bytes_out = r->bytes_cut = 0;
		http_send_error(h, 502, "bad_backend_response");
	} else
		http_close_when_flushed(h, "bad_backend_response");
}

/*
 * The backend's answer said it closes the connection after it, and the
 * client's connection stays (bclose_kept): the answer is out, the backend
 * connection goes, and the client's next request, held until now, connects
 * again.
 */
static void
http_backend_closes(struct http *h)
{
	struct session	*s = h->s;

	log_debug("session %" PRIu64 ": backend %s closes its connection after "
	    "each answer; the client's connection stays, and its next request "
	    "connects again", s->id, s->backend_addr);
	http_backend_forget(h);
	if (evbuffer_get_length(bufferevent_get_input(s->client)) > 0) {
		if (!s->client_eof)
			session_read(s, s->client, true);
		http_client_input(h);
	} else if (s->client_eof)
		http_close_when_flushed(h, "client_closed");
	else
		session_read(s, s->client, true);
}

/* Forward what the backend sent, watching message boundaries. */
static void
http_backend_read_cb(struct bufferevent *bev, void *arg)
{
	struct session		*s = arg;
	struct http		*h = s->http;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 vec[16];
	struct evbuffer_ptr	 ep;
	struct http_req		*r;
	llhttp_errno_t		 err = HPE_OK;
	size_t			 len = evbuffer_get_length(in), send = len;
	int			 i, nv;

	session_touch(s);
	if (len == 0 || len == h->rheld)
		return;
	if (!h->resp_tunnel) {
		/*
		 * started: some of the response being parsed is already with
		 * the client; done: the bytes of the input up to the end of
		 * the last complete response. The first rheld bytes, a head
		 * held back, were parsed in an earlier read.
		 */
		bool	 started = h->resp_started && !h->rin_head;
		size_t	 pos = h->rheld, done = 0;

		h->ncuts = 0;
		h->rparsing = true;
		if (!h->rin_head)
			h->rmsg_end = h->rbase;
		while (pos < len && !h->resp_tunnel && err == HPE_OK) {
			if (evbuffer_ptr_set(in, &ep, pos,
			    EVBUFFER_PTR_SET) == -1)
				break;
			nv = evbuffer_peek(in, (ev_ssize_t)(len - pos), &ep,
			    vec, 16);
			if (nv > 16)
				nv = 16;
			for (i = 0; i < nv && !h->resp_tunnel; i++) {
				const char	*at = vec[i].iov_base, *end;
				size_t		 left = vec[i].iov_len, used;

				h->rchunk = vec[i].iov_base;
				h->rchunk_len = vec[i].iov_len;
				h->rchunk_pos = h->rbase + pos;

				/* Each response's bytes go to its request. */
				for (;;) {
					h->resp_counting = true;
					err = llhttp_execute(&h->resp, at,
					    left);
					h->resp_counting = false;
					used = left;
					if (err == HPE_PAUSED && (end =
					    llhttp_get_error_pos(&h->resp)) !=
					    NULL && end >= at &&
					    end <= at + left)
						used = (size_t)(end - at);
					if ((r = STAILQ_FIRST(&h->pending)) !=
					    NULL && (err == HPE_OK ||
					    err == HPE_PAUSED))
						r->bytes_out += used;
					if (err != HPE_PAUSED)
						break;
					http_resp_done(h, h->resp_final);
					if (h->resp_tunnel) {
						/* 101: raw bytes from here. */
						err = HPE_PAUSED_UPGRADE;
						break;
					}
					llhttp_resume(&h->resp);
					at += used;
					left -= used;
					done = pos + (size_t)(at -
					    (const char *)vec[i].iov_base);
					h->rmsg_end = h->rbase + done;
					started = false;
					if (left == 0) {
						err = HPE_OK;
						break;
					}
				}
				if (err == HPE_PAUSED_UPGRADE)
					break;
				if (err != HPE_OK && h->rhead_big)
					log_warnx("listener \"%s\": bad response "
					    "from backend %s: its head is over "
					    "%d KiB", s->srv->cfg->name,
					    s->backend_addr,
					    HTTP_RESP_HEAD_MAX / 1024);
				else if (err != HPE_OK && h->rbad_why != NULL)
					log_warnx("listener \"%s\": bad response "
					    "from backend %s: %s",
					    s->srv->cfg->name,
					    s->backend_addr, h->rbad_why);
				else if (err != HPE_OK)
					log_warnx("listener \"%s\": bad response "
					    "from backend %s: %s (%s)",
					    s->srv->cfg->name,
					    s->backend_addr,
					    llhttp_errno_name(err),
					    llhttp_get_error_reason(&h->resp));
				if (err != HPE_OK) {
					http_bad_response(h, in, done,
					    started);
					return;
				}
				pos += vec[i].iov_len;
			}
		}
		h->rparsing = false;
		if (h->rin_head && !h->resp_tunnel) {
			/* Hold the head back until it is complete. */
			send = (size_t)(h->rhead_pos - h->rbase);
			if (len - send > HTTP_RESP_HEAD_MAX) {
				log_warnx("listener \"%s\": bad response from "
				    "backend %s: its head is over %d KiB",
				    s->srv->cfg->name, s->backend_addr,
				    HTTP_RESP_HEAD_MAX / 1024);
				http_bad_response(h, in, send, false);
				return;
			}
		}
	}
	h->rheld = len - send;
	s->bytes_out += send;
	http_send_cut(h, in, send);
	h->rbase += send;
	http_btimer_update(h);
	http_check_deferred(h);
	http_check_client_close(h);
	if (h->refused_upgrade && !h->closing) {
		http_close_when_flushed(h, "upgrade_refused");
		return;
	}
	if (h->closing)
		return;
	if (h->bclose_kept && STAILQ_EMPTY(&h->pending) && !h->resp_started) {
		http_backend_closes(h);
		return;
	}
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
	if (bev == s->backend && !evtimer_pending(h->btimer, NULL))
		http_btimer_update(h);
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
	h->no_reuse = false;		/* it ended that connection only */
	h->bclose_kept = false;
	evtimer_del(h->btimer);
	llhttp_init(&h->resp, HTTP_RESPONSE, &http_resp_settings);
	h->resp.data = h;
	h->resp_counting = false;
	h->rbase = 0;
	h->rheld = 0;
	h->rin_head = false;
	h->rhead_big = false;
	h->nrlines = 0;
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
	bool		 started;
	llhttp_errno_t	 fin;

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
		if (h->closing || s->backend == NULL)
			return;		/* closed, or the answer ended: gone */
		if (http_between_messages(h)) {
			http_backend_detach(h, "closed");
			return;
		}
		if (http_replay(h, "closed"))
			return;
		/* A response that runs until close ends here. */
		started = h->resp_started && !h->rin_head;
		fin = h->resp_tunnel ? HPE_OK : llhttp_finish(&h->resp);
		if (!h->resp_tunnel && fin == HPE_OK && h->resp_started)
			http_req_done(h, h->resp.status_code);
		else if (fin != HPE_OK && started) {
			/* Content-Length 100, 10 bytes, then the close. */
			log_warnx("listener \"%s\": backend %s closed the "
			    "connection before its answer was complete",
			    s->srv->cfg->name, s->backend_addr);
			http_req_done(h, h->resp.status_code);
		}
		/* No byte of the final answer out (a 100 Continue may be). */
		if (!STAILQ_EMPTY(&h->pending) && !h->resp_tunnel &&
		    (!h->resp_started || h->rin_head)) {
			http_send_error(h, 502, "backend_closed");
			return;
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
	if ((!h->resp_started || h->rin_head) &&
	    !STAILQ_EMPTY(&h->pending)) {
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
	/*
	 * Still taking the request (the socket's send queue shrank since
	 * the timer was armed): a slow reader of an upload, not a silent
	 * backend. The time starts again.
	 */
	if (r != NULL && r->done && !h->resp_started && h->boutq > 0) {
		int q = http_backend_outq(h);

		if (q >= 0 && q < h->boutq) {
			http_btimer_arm(h);
			return;
		}
	}
	log_warnx("listener \"%s\": backend %s did not answer within %" PRIu64
	    " ms (timeouts.backend)", h->s->srv->cfg->name,
	    h->s->backend_addr, h->s->srv->cfg->backend_timeout_ms);
	if (r != NULL && (!h->resp_started || h->rin_head))
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

/*
 * The connection closes (why: the access line's close value) with requests
 * whose answers did not end: each still gets its request line, with the
 * status of an answer already begun, else 0, and close=why. They were
 * pipelined behind an answer after which the backend closed, or the
 * client left before its answer (nginx's 499), or the backend broke off.
 */
void
http_unanswered(struct http *h, const char *why)
{
	bool	first = true;

	while (!STAILQ_EMPTY(&h->pending)) {
		http_req_end(h, first && h->resp_started && !h->rin_head &&
		    !h->resp_tunnel ? h->resp.status_code : 0, why);
		first = false;
	}
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
	free(h->rlines);
	free(h->ident);
	free(h->replay);
	free(h);
}
