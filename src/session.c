/*
 * session.c - one client connection from accept to close: the TLS handshake,
 * the refusal line, handshake and idle timeouts, and the one close path that
 * writes the access line and frees everything.
 */
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "mtlsproxy.h"

static void	session_client_event_cb(struct bufferevent *, short, void *);
static void	session_timer_cb(evutil_socket_t, short, void *);
static void	session_linger(struct session *);

#define SESSION_LINGER_SEC	2

static void
session_timer_arm(struct session *s, uint64_t ms)
{
	struct timeval	tv = ms_timeval(ms);

	evtimer_add(s->timer, &tv);
}

#define SESSION_READ_MAX	(64 * 1024)	/* a small read, copied */
#define SESSION_READ_BULK	(256 * 1024)	/* a large read, in place */
#define SESSION_READ_BIG	(16 * 1024)	/* from here on: no copy */
#define SESSION_READ_SMALL	(4 * 1024)	/* below: copy again */

/* Where small backend reads land first (one per worker thread). */
static _Thread_local char read_scratch[SESSION_READ_MAX];

/*
 * Read from the backend ourselves: libevent 2.1's socket bufferevent reads
 * at most 4 KiB per call, which turns a bulk transfer into 4 KiB TLS
 * records and a syscall storm. Then the backend bufferevent's usual
 * callbacks run. Once a read brings 16 KiB or more (a bulk answer) reads
 * of up to 256 KiB go straight into space reserved in the bufferevent's
 * input, never copied, until one brings less than 4 KiB (256 KiB rather
 * than 64: 8 % less proxy CPU per MiB, fewer reads and loop passes); small
 * reads (the answers of keep-alive requests, a few hundred bytes each) go
 * into a 64 KiB per-thread buffer and are copied from there, which costs
 * less than a fresh chain allocated and freed per read.
 */
static void
session_backend_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	struct bufferevent	*bev = s->backend;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 v[2];
	bufferevent_data_cb	 readcb;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;
	ssize_t			 r;
	int			 n = 0;

	(void)what;
	bufferevent_getcb(bev, &readcb, NULL, &eventcb, &cbarg);
	if (!s->bread_big)
		r = read(fd, read_scratch, sizeof(read_scratch));
	else if ((n = evbuffer_reserve_space(in, SESSION_READ_BULK, v,
	    2)) < 1) {
		eventcb(bev, BEV_EVENT_READING | BEV_EVENT_ERROR, cbarg);
		return;
	} else	/* struct evbuffer_iovec is laid out as struct iovec. */
		r = readv(fd, (struct iovec *)v, n);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		if (n > 0)
			evbuffer_commit_space(in, v, 0);
		eventcb(bev, BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF :
		    BEV_EVENT_ERROR), cbarg);
		return;
	}
	if (n == 0) {
		if (evbuffer_add(in, read_scratch, (size_t)r) == -1) {
			eventcb(bev, BEV_EVENT_READING | BEV_EVENT_ERROR,
			    cbarg);
			return;
		}
	} else {
		if ((size_t)r <= v[0].iov_len) {
			v[0].iov_len = (size_t)r;
			n = 1;
		} else
			v[1].iov_len = (size_t)r - v[0].iov_len;
		evbuffer_commit_space(in, v, n);
	}
	if ((size_t)r >= SESSION_READ_BIG)
		s->bread_big = true;
	else if ((size_t)r < SESSION_READ_SMALL)
		s->bread_big = false;
	if (readcb != NULL)
		readcb(bev, cbarg);
}

/*
 * Data was just queued on bev's output: run its write handler later in this
 * same loop pass instead of after the next epoll_wait. The socket is nearly
 * always writable, so the write completes there and the handler drops its
 * write interest again in the same pass, and libevent's change list then
 * makes no epoll_ctl call at all; a write that waits for EPOLLOUT costs two
 * per message on each side. When the socket is full the handler keeps its
 * interest and the write finishes when epoll says so, as before. before:
 * the output's length before the caller added to it.
 */
void
session_kick_write(struct session *s, struct bufferevent *bev, size_t before)
{
	/*
	 * Only when the output was empty before: with a backlog the socket
	 * was full last time, the handler already waits for EPOLLOUT, and
	 * trying again now would mostly cost a write that fails.
	 */
	if (bev == NULL || before != 0 || s->state != SESSION_PROXYING ||
	    !(bufferevent_get_enabled(bev) & EV_WRITE) ||
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		return;
	event_active(&bev->ev_write, EV_WRITE, 1);
}

/*
 * Whether everything written to the client is on the wire: its output is
 * empty and no TLS record is held back (tlsout.c).
 */
bool
session_client_flushed(const struct session *s)
{
	return s->client != NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->client)) == 0 &&
	    !tlsout_pending(s);
}

/* Move n bytes from src to dst's output (chains, no copy), and write. */
void
session_send(struct session *s, struct bufferevent *dst, struct evbuffer *src,
    size_t n)
{
	struct evbuffer	*out = bufferevent_get_output(dst);
	size_t		 before = evbuffer_get_length(out);

	evbuffer_remove_buffer(src, out, n);
	session_kick_write(s, dst, before);
}

/*
 * The client's TLS connection reads ahead: one read() takes in whatever the
 * socket holds (several records, a whole request) instead of OpenSSL's two
 * reads per record, one for the 5-byte header and one for the body. But
 * libevent 2.1's OpenSSL bufferevent only asks OpenSSL again while
 * SSL_pending() says decrypted bytes are left, so records already read and
 * not yet decrypted would wait for the socket to become readable again,
 * which it may never do. Every client read callback and every place that
 * turns client reading on calls this: it runs the read handler again in
 * this loop pass when OpenSSL holds unread bytes.
 */
void
session_read_more(struct session *s)
{
	SSL	*ssl;

	if (s->client == NULL ||
	    !(bufferevent_get_enabled(s->client) & EV_READ) ||
	    (ssl = bufferevent_openssl_get_ssl(s->client)) == NULL ||
	    !SSL_has_pending(ssl))
		return;
	event_active(&s->client->ev_read, EV_READ, 1);
}

/* Turn client reading on, including what OpenSSL already holds. */
void
session_client_enable(struct session *s, short what)
{
	bufferevent_enable(s->client, what);
	if (what & EV_READ)
		session_read_more(s);
}

/* Start or stop reading one side of a session. */
void
session_read(struct session *s, struct bufferevent *bev, bool on)
{
	if (bev == NULL)
		return;
	if (bev != s->backend) {
		if (on)
			session_client_enable(s, EV_READ);
		else
			bufferevent_disable(bev, EV_READ);
		return;
	}
	if (s->bread == NULL) {
		bufferevent_disable(bev, EV_READ);
		s->bread = event_new(s->w->base, bufferevent_getfd(bev),
		    EV_READ | EV_PERSIST, session_backend_read_cb, s);
		if (s->bread == NULL)
			return;
	}
	if (on)
		event_add(s->bread, NULL);
	else
		event_del(s->bread);
}

/*
 * Close the backend connection and forget it, the client staying (http
 * mode, between messages): the next request connects again.
 */
void
session_backend_drop(struct session *s)
{
	if (s->bread != NULL) {
		event_free(s->bread);
		s->bread = NULL;
	}
	if (s->backend != NULL)
		bufferevent_free(upstream_detach(s));
	s->backend_eof = false;
	s->backend_shut = false;
	s->bread_big = false;
}

/*
 * The client's identity, worked out on first use (the access line, HTTP
 * logs, re-authorization), not on every handshake.
 */
const struct identity *
session_ident(struct session *s)
{
	SSL	*ssl;
	X509	*peer;

	if (!s->ident_done && s->client != NULL &&
	    (ssl = bufferevent_openssl_get_ssl(s->client)) != NULL &&
	    (peer = SSL_get0_peer_certificate(ssl)) != NULL) {
		identity_from_cert(&s->ident, peer);
		s->ident_done = true;
	}
	return &s->ident;
}

/* Note activity for the idle timeout. */
void
session_touch(struct session *s)
{
	event_base_gettimeofday_cached(s->w->base, &s->last_active);
}

/* Accept a connection on listener li: start the TLS handshake. */
void
session_new(struct worker *w, size_t li, int fd, struct sockaddr *sa,
    socklen_t salen)
{
	struct session	*s;
	SSL		*ssl;

	s = xcalloc(1, sizeof(*s));
	s->w = w;
	s->li = li;
	s->id = ++w->next_id;
	s->state = SESSION_HANDSHAKE;
	s->linger_fd = -1;
	s->rt = runtime_current();
	s->srv = &s->rt->servers[li];
	metrics_conn_open(li);
	sockaddr_str(sa, salen, s->peer, sizeof(s->peer));
	event_base_gettimeofday_cached(w->base, &s->start);
	s->last_active = s->start;
	TAILQ_INSERT_TAIL(&w->sessions, s, entry);
	__atomic_add_fetch(&w->nsessions, 1, __ATOMIC_RELAXED);

	if ((ssl = tls_ssl_new(s->srv, &s->verdict)) == NULL) {
		ERR_clear_error();
		close(fd);
		session_close(s, "out of memory");
		return;
	}
	if (!tlsout_attach(s, ssl, fd)) {
		SSL_free(ssl);
		ERR_clear_error();
		close(fd);
		session_close(s, "out of memory");
		return;
	}
	s->client = bufferevent_openssl_socket_new(w->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(w->base, session_timer_cb, s);
	if (s->client == NULL || s->timer == NULL) {
		if (s->client == NULL) {
			SSL_free(ssl);
			close(fd);
		}
		session_close(s, "out of memory");
		return;
	}
	/* Many clients close without close_notify; that is an EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(s->client, 1);
	bufferevent_setcb(s->client, NULL, NULL, session_client_event_cb, s);
	bufferevent_enable(s->client, EV_READ | EV_WRITE);
	session_timer_arm(s, s->srv->cfg->handshake_timeout_ms);
}

static void
session_expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	const struct identity	*id = session_ident(s);
	struct log_field f[] = {
		{ "listener", s->srv->cfg->name, false },
		{ "peer", s->peer, false },
		{ "subject", id->subject, false },
	};

	(void)fd;
	(void)what;
	log_event(LOG_LEVEL_INFO, "client certificate expired during the "
	    "connection", f, sizeof(f) / sizeof(f[0]));
	session_close(s, "client_cert_expired");
}

/*
 * Close the connection when the client's certificate (or a CA in its
 * verified chain) passes its notAfter: a long-lived connection must not
 * outlive the credential that opened it.
 */
static int
session_expiry_arm(struct session *s, SSL *ssl)
{
	struct timeval	 tv;
	time_t		 end = tls_peer_chain_end(ssl), now = time(NULL);

	if (end == 0)
		return 0;
	/* A resumed session skips verification: it may have expired since. */
	if (end <= now)
		return -1;
	if ((s->expiry = evtimer_new(s->w->base, session_expiry_cb, s)) ==
	    NULL)
		return 0;
	tv.tv_sec = end > now ? end - now : 0;
	tv.tv_usec = 0;
	evtimer_add(s->expiry, &tv);
	return 0;
}

/*
 * After a reload: verify the client's stored chain again under the
 * current runtime (CA, CRL, allow lists) and close it if it is no longer
 * allowed.
 */
static void
session_reauth(struct session *s, struct runtime *rt)
{
	struct tls_verdict	 v;
	SSL			*ssl = bufferevent_openssl_get_ssl(s->client);
	STACK_OF(X509)		*sent;
	X509			*leaf;
	char			 why[64];
	int			 ok;

	if (ssl == NULL || (leaf = SSL_get0_peer_certificate(ssl)) == NULL ||
	    s->li >= rt->nservers)
		return;
	memset(&v, 0, sizeof(v));
	/* A resumed session's intermediates come from its ticket. */
	sent = tls_peer_intermediates(ssl);
	ok = tls_verify_offline(&rt->servers[s->li], leaf, sent, &v, NULL);
	sk_X509_pop_free(sent, X509_free);
	if (ok == 1) {
		tls_verdict_clear(&v);
		return;
	}
	{
		const struct identity *id = session_ident(s);
		struct log_field f[] = {
			{ "listener", s->srv->cfg->name, false },
			{ "peer", s->peer, false },
			{ "code", v.code, false },
			{ "reason", v.reason, false },
			{ "subject", id->subject, false },
			{ "issuer", id->issuer, false },
		};

		log_event(LOG_LEVEL_WARN, "closed after reload", f,
		    sizeof(f) / sizeof(f[0]));
	}
	snprintf(why, sizeof(why), "reauth_refused: %s", v.code ? v.code :
	    "?");
	tls_verdict_clear(&v);
	session_close(s, why);
}

/*
 * The worker stops accepting: in http mode a connection waiting for its
 * first request is closed now, and the others close between requests
 * (http_drain). tcp connections run on until they end or the drain
 * deadline passes.
 */
void
session_drain(struct session *s)
{
	SSL	*ssl;

	if (s->srv->cfg->backend.mode != BACKEND_HTTP || s->client == NULL)
		return;
	if (s->http != NULL) {
		if (s->state == SESSION_PROXYING)
			http_drain(s->http);
		return;
	}
	ssl = bufferevent_openssl_get_ssl(s->client);
	if (s->state == SESSION_WAITING &&
	    evbuffer_get_length(bufferevent_get_input(s->client)) == 0 &&
	    (ssl == NULL || !SSL_has_pending(ssl)))
		session_close(s, "drained");
}

/* Re-authorize every established connection of this worker. */
void
session_reauth_all(struct worker *w)
{
	struct session	*s, *next;
	struct runtime	*rt = runtime_current();

	if (rt == NULL)
		return;
	upstream_pool_prune(w, rt);
	for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if ((s->state == SESSION_WAITING ||
		    s->state == SESSION_CONNECTING ||
		    s->state == SESSION_PROXYING) && s->client != NULL)
			session_reauth(s, rt);
	}
	runtime_unref(rt);
}

/* Log why a handshake was refused, then free the session. */
static void
session_refused(struct session *s)
{
	struct log_field f[] = {
		{ "listener", s->srv->cfg->name, false },
		{ "peer", s->peer, false },
		{ "code", s->verdict.code, false },
		{ "reason", s->verdict.reason, false },
		{ "subject", s->verdict.subject, false },
		{ "issuer", s->verdict.issuer, false },
	};

	log_event(LOG_LEVEL_WARN, "refused", f, sizeof(f) / sizeof(f[0]));
	metrics_handshake(s->li, s->verdict.code);
	session_linger(s);
}

static void
session_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	char		 buf[4096];
	ssize_t		 n;

	if (what & EV_TIMEOUT) {
		session_close(s, NULL);
		return;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		session_close(s, NULL);
}

/*
 * After a refusal, read and drop what the client still sends for a moment
 * before closing: closing with unread data makes the kernel send a reset,
 * which can reach the client before the TLS alert that says why (a TLS 1.3
 * client sends its request before it learns its certificate was refused).
 */
static void
session_linger(struct session *s)
{
	struct timeval	tv = { SESSION_LINGER_SEC, 0 };
	int		fd = -1;

	if (s->client != NULL)
		fd = dup(bufferevent_getfd(s->client));
	if (fd == -1) {
		session_close(s, NULL);
		return;
	}
	tlsout_detach(bufferevent_openssl_get_ssl(s->client));
	bufferevent_free(s->client);	/* the alert is already sent */
	s->client = NULL;
	evtimer_del(s->timer);
	(void)shutdown(fd, SHUT_WR);
	s->state = SESSION_LINGER;
	s->linger_fd = fd;
	s->linger_ev = event_new(s->w->base, fd, EV_READ | EV_PERSIST,
	    session_linger_cb, s);
	if (s->linger_ev == NULL || event_add(s->linger_ev, &tv) == -1)
		session_close(s, NULL);
}

static void	session_client_event_cb(struct bufferevent *, short, void *);
static void	session_waiting_read_cb(struct bufferevent *, void *);

/*
 * Verified (or, in http mode, a request after the backend connection went
 * away): connect to the backend, the client waiting meanwhile.
 */
void
session_connect(struct session *s)
{
	s->state = SESSION_CONNECTING;
	bufferevent_disable(s->client, EV_READ);
	evtimer_del(s->timer);
	upstream_connect(s);
}

static void
session_handshake_done(struct session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->client);
	X509	*peer = SSL_get0_peer_certificate(ssl);

	if (peer == NULL) {
		/* Impossible with SSL_VERIFY_FAIL_IF_NO_PEER_CERT. */
		s->verdict.code = "no_cert";
		snprintf(s->verdict.reason, sizeof(s->verdict.reason),
		    "no client certificate");
		session_refused(s);
		return;
	}
	metrics_handshake(s->li, NULL);
	if (session_expiry_arm(s, ssl) == -1) {
		char when[64];

		s->verdict.code = "expired";
		if (X509_cmp_current_time(X509_get0_notAfter(peer)) < 0)
			snprintf(s->verdict.reason, sizeof(s->verdict.reason),
			    "certificate expired on %s (resumed session)",
			    tls_time_str(X509_get0_notAfter(peer), when,
			    sizeof(when)));
		else
			snprintf(s->verdict.reason, sizeof(s->verdict.reason),
			    "a CA certificate of its chain has expired "
			    "(resumed session)");
		free(s->verdict.subject);
		s->verdict.subject = x509_name_rfc4514(
		    X509_get_subject_name(peer));
		session_refused(s);
		return;
	}
	log_debug("session %" PRIu64 ": %s verified \"%s\" (%s)", s->id,
	    s->peer, session_ident(s)->subject, SSL_get_version(ssl));
	if (s->srv->cfg->backend.mode == BACKEND_HTTP) {
		/*
		 * http: connect to the backend when the first request comes,
		 * as an HTTP proxy does; a client that holds its connection
		 * open without asking anything costs no backend connection.
		 */
		s->state = SESSION_WAITING;
		bufferevent_setcb(s->client, session_waiting_read_cb, NULL,
		    session_client_event_cb, s);
		session_touch(s);
		session_timer_arm(s, s->srv->cfg->idle_timeout_ms);
		session_client_enable(s, EV_READ);
		return;
	}
	session_connect(s);
}

/* The first bytes of a request are in (http): now connect the backend. */
static void
session_waiting_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_connect(arg);
}

static void
session_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	SSL		*ssl;
	unsigned long	 e, err = 0;

	if (what & BEV_EVENT_CONNECTED) {
		session_handshake_done(s);
		return;
	}
	if (s->state != SESSION_HANDSHAKE) {
		/* The client left while the backend was being connected. */
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		session_close(s, (what & BEV_EVENT_EOF) ? "client_closed" :
		    "client_error: connection lost");
		return;
	}
	/* Handshake failed: keep the most telling OpenSSL error. */
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (err == 0 || ERR_GET_LIB(e) == ERR_LIB_SSL)
			err = e;
	if (err == 0 && (what & BEV_EVENT_ERROR) && errno != 0 &&
	    s->verdict.code == NULL) {
		s->verdict.code = "tls_error";
		snprintf(s->verdict.reason, sizeof(s->verdict.reason),
		    "connection error during the TLS handshake: %s",
		    strerror(errno));
	}
	ssl = bufferevent_openssl_get_ssl(bev);
	if (err == 0 && s->verdict.code == NULL && ssl != NULL &&
	    BIO_number_read(SSL_get_rbio(ssl)) == 0) {
		/* A port probe (health check, scanner): nothing was sent. */
		log_debug("%s closed before sending anything", s->peer);
		session_close(s, NULL);
		return;
	}
	tls_verdict_from_errors(&s->verdict, ssl, err);
	session_refused(s);
}

/*
 * How long ago (ms) the peer on fd last took data from the kernel's queue:
 * data went out and was acknowledged. UINT64_MAX when fd is not TCP.
 * Both must be recent: a peer that answers window probes but reads
 * nothing sends acknowledgements without data going out; one that is gone
 * gets retransmissions without acknowledgements.
 */
static uint64_t
session_peer_took_ago(int fd)
{
	struct tcp_info	ti;
	socklen_t	len = sizeof(ti);

	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    len < sizeof(ti))
		return UINT64_MAX;
	return ti.tcpi_last_data_sent > ti.tcpi_last_ack_recv ?
	    ti.tcpi_last_data_sent : ti.tcpi_last_ack_recv;
}

/*
 * The proxy's own reads and writes can stop for longer than timeouts.idle
 * while a slow client (or backend) reads at its pace from the megabytes
 * the kernel queued for it, which the proxy never sees (a download, an
 * upload; in tcp and http mode alike); that is traffic, not silence. Returns how long ago a peer last took
 * data, or UINT64_MAX.
 */
static uint64_t
session_kernel_active_ago(struct session *s)
{
	uint64_t	a, b;

	if (s->client == NULL)
		return UINT64_MAX;
	a = session_peer_took_ago(bufferevent_getfd(s->client));
	b = s->backend != NULL ?
	    session_peer_took_ago(bufferevent_getfd(s->backend)) : UINT64_MAX;
	return a < b ? a : b;
}

static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	struct timeval	 now, diff;
	uint64_t	 idle, ms, ago;

	(void)fd;
	(void)what;
	if (s->state == SESSION_CONNECTING) {
		/* Waited for a descriptor (upstream.c): try again. */
		upstream_next(s);
		return;
	}
	if (s->state == SESSION_HANDSHAKE) {
		s->verdict.code = "handshake_timeout";
		snprintf(s->verdict.reason, sizeof(s->verdict.reason),
		    "TLS handshake not completed within %" PRIu64 " ms "
		    "(timeouts.handshake)", s->srv->cfg->handshake_timeout_ms);
		session_refused(s);
		return;
	}
	idle = s->srv->cfg->idle_timeout_ms;
	event_base_gettimeofday_cached(s->w->base, &now);
	timersub(&now, &s->last_active, &diff);
	ms = (uint64_t)diff.tv_sec * 1000 + (uint64_t)diff.tv_usec / 1000;
	if (ms >= idle) {
		if ((ago = session_kernel_active_ago(s)) >= idle) {
			session_close(s, "idle_timeout");
			return;
		}
		/* Data still flows out of the kernel's queue: not idle. */
		diff = ms_timeval(ago);
		timersub(&now, &diff, &s->last_active);
		ms = ago;
	}
	session_timer_arm(s, idle - ms);
}

/* The backend is connected: start moving bytes. */
void
session_proxy_start(struct session *s)
{
	s->state = SESSION_PROXYING;
	s->backend_fresh = false;
	session_touch(s);
	session_timer_arm(s, s->srv->cfg->idle_timeout_ms);
	if (s->srv->cfg->backend.mode == BACKEND_HTTP)
		http_start(s);
	else
		tcp_start(s);
}

/* No backend address answered. */
void
session_backend_failed(struct session *s)
{
	if (s->srv->cfg->backend.mode != BACKEND_HTTP) {
		/* tcp: a clean TLS close is all the client can be told. */
		session_close(s, "backend_unavailable");
		return;
	}
	/* http: read the request, then answer 502 Bad Gateway. */
	s->state = SESSION_PROXYING;
	s->backend_fresh = false;
	session_touch(s);
	session_timer_arm(s, s->srv->cfg->idle_timeout_ms);
	http_start_failed(s);
}

/* The application protocol the client and the proxy agreed on, or NULL. */
static const char *
session_alpn(struct session *s, char *buf, size_t len)
{
	const unsigned char	*p = NULL;
	unsigned		 n = 0;
	SSL			*ssl;

	if (s->client == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(s->client)) == NULL)
		return NULL;
	SSL_get0_alpn_selected(ssl, &p, &n);
	if (n == 0)
		return NULL;
	(void)snprintf(buf, len, "%.*s", (int)n, (const char *)p);
	return buf;
}

static void
session_log_access(struct session *s, const char *why)
{
	const struct identity *id = session_ident(s);
	struct timeval	now, d;
	char		in[24], out[24], ms[24], alpn[256];
	struct log_field f[] = {
		{ "listener", s->srv->cfg->name, false },
		{ "peer", s->peer, false },
		{ "subject", id->subject, false },
		{ "issuer", id->issuer, false },
		{ "serial", id->serial, false },
		{ "sha256", id->sha256, false },
		{ "backend", s->backend_addr[0] ? s->backend_addr : NULL,
		    false },
		{ "alpn", session_alpn(s, alpn, sizeof(alpn)), false },
		{ "bytes_in", in, true },
		{ "bytes_out", out, true },
		{ "duration_ms", ms, true },
		{ "close", why, false },
	};

	event_base_gettimeofday_cached(s->w->base, &now);
	timersub(&now, &s->start, &d);
	snprintf(in, sizeof(in), "%" PRIu64, s->bytes_in);
	snprintf(out, sizeof(out), "%" PRIu64, s->bytes_out);
	snprintf(ms, sizeof(ms), "%" PRIu64,
	    (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000);
	log_event(LOG_LEVEL_INFO, "access", f, sizeof(f) / sizeof(f[0]));
}

/*
 * The one close path: write the access line (why == NULL: the refusal was
 * logged already), send close_notify if the handshake finished, free all.
 * The session must not be touched after this returns.
 */
void
session_close(struct session *s, const char *why)
{
	struct worker	*w = s->w;

	if (s->http != NULL)
		http_unanswered(s->http, why != NULL ? why : "closed");
	if (why != NULL && s->state != SESSION_HANDSHAKE &&
	    s->state != SESSION_LINGER && s->rt->cfg->log_access)
		session_log_access(s, why);
	if (s->client != NULL) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->client);

		if (s->state != SESSION_HANDSHAKE &&
		    s->state != SESSION_LINGER && !s->client_shut &&
		    ssl != NULL)
			(void)SSL_shutdown(ssl);
		ERR_clear_error();
		tlsout_detach(ssl);
		bufferevent_free(s->client);
	}
	if (s->bread != NULL)
		event_free(s->bread);
	if (s->backend != NULL && !upstream_pool_put(s))
		bufferevent_free(upstream_detach(s));
	if (s->linger_ev != NULL)
		event_free(s->linger_ev);
	if (s->expiry != NULL)
		event_free(s->expiry);
	if (s->linger_fd >= 0)
		close(s->linger_fd);
	http_free(s->http);
	if (s->timer != NULL)
		event_free(s->timer);
	TAILQ_REMOVE(&w->sessions, s, entry);
	listener_conn_done(s->li);
	metrics_conn_close(s->li, s->bytes_in, s->bytes_out);
	identity_clear(&s->ident);
	tls_verdict_clear(&s->verdict);
	runtime_unref(s->rt);
	free(s);
	worker_session_gone(w);
}
