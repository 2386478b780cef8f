/*
 * tlsout.c - the client connection's TLS records reach the socket in large
 * writes: a bulk answer leaves as one write() per four 16 KiB records
 * instead of one per record.
 *
 * OpenSSL writes every record to its BIO on its own, and a socket BIO makes
 * that a write() each: 64 system calls and 64 TCP segments per MiB, each
 * waking the client once. On loopback that costs sender and receiver about
 * 0.15 ms more per MiB than writes of 32 KiB or more. This BIO writes small
 * records at once, as a socket BIO does (handshake messages, the answers of
 * keep-alive requests: no copy, no delay), but keeps full-size records back
 * (copied, up to four) and writes them together when the next would not
 * fit, or at the end of the current pass of the event loop, whichever comes
 * first: nothing waits for a later event. Alerts and handshake flights are
 * followed by BIO_flush, which writes at once too.
 *
 * The session's client output is only on the wire when this is empty as
 * well (session_client_flushed()); when a held-back write completes, the
 * client's write callback runs again so that a close waiting for the
 * output to drain goes on.
 */
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "mtlsproxy.h"

#define TLSOUT_FULL	16384		/* a record this size is held back */
#define TLSOUT_CAP	(4 * (16384 + 256))

struct tlsout {
	struct event	 ev;		/* EV_WRITE on the client's socket */
	size_t		 off;		/* written so far */
	size_t		 len;		/* held in buf */
	char		 buf[TLSOUT_CAP];
};

static BIO_METHOD	*tlsout_method;

static void	tlsout_cb(evutil_socket_t, short, void *);

/* The buffer goes once empty (idle connections hold none), or at close. */
static void
tlsout_free(struct session *s)
{
	if (s->tout == NULL)
		return;
	event_del(&s->tout->ev);
	free(s->tout);
	s->tout = NULL;
}

/* Write what is held; true once all of it is out. errno on false. */
static bool
tlsout_write(struct session *s)
{
	struct tlsout	*t = s->tout;
	ssize_t		 n;

	while (t->off < t->len) {
		n = write(s->client_fd, t->buf + t->off, t->len - t->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		t->off += (size_t)n;
	}
	t->off = t->len = 0;
	return true;
}

static bool
tlsout_retryable(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * End of the loop pass, or the socket became writable again: write what
 * is held. Once all of it is out the buffer goes (idle connections hold
 * none) and the client's write callback runs, its output being drained.
 */
static void
tlsout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	struct bufferevent	*bev = s->client;
	bufferevent_data_cb	 writecb;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;

	(void)fd;
	(void)what;
	if (!tlsout_write(s)) {
		if (tlsout_retryable(errno)) {
			(void)event_add(&s->tout->ev, NULL);
			return;
		}
		/* The client is gone: the same as a failed SSL_write. */
		s->tout_err = errno;
		tlsout_free(s);
		bufferevent_getcb(bev, NULL, NULL, &eventcb, &cbarg);
		if (eventcb != NULL) {
			errno = s->tout_err;
			eventcb(bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR,
			    cbarg);
		}
		return;
	}
	tlsout_free(s);
	bufferevent_getcb(bev, NULL, &writecb, NULL, &cbarg);
	if (writecb != NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		writecb(bev, cbarg);
}

static int
tlsout_bwrite(BIO *b, const char *data, int len)
{
	struct session	*s = BIO_get_data(b);
	struct tlsout	*t = s->tout;
	size_t		 n = (size_t)len;
	ssize_t		 w;

	BIO_clear_retry_flags(b);
	if (s->tout_err != 0) {
		errno = s->tout_err;
		return -1;
	}
	if (t != NULL && t->len > 0 && t->len + n > TLSOUT_CAP) {
		/* Full: out with what is held before taking more. */
		if (!tlsout_write(s)) {
			if (!tlsout_retryable(errno))
				return -1;
			(void)event_add(&t->ev, NULL);
			BIO_set_retry_write(b);
			return -1;
		}
	}
	if ((t == NULL || t->len == 0) && (n < TLSOUT_FULL || n > TLSOUT_CAP)) {
		/* Nothing held and a small record: straight out. */
		while ((w = write(s->client_fd, data, n)) < 0 && errno == EINTR)
			;
		if (w < 0 && tlsout_retryable(errno))
			BIO_set_retry_write(b);
		return (int)w;
	}
	if (t == NULL) {
		if ((t = malloc(sizeof(*t))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		t->off = t->len = 0;
		event_assign(&t->ev, s->w->base, s->client_fd, EV_WRITE,
		    tlsout_cb, s);
		s->tout = t;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	/* Written at the end of this loop pass at the latest. */
	event_active(&t->ev, EV_WRITE, 1);
	return len;
}

static long
tlsout_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct session	*s = BIO_get_data(b);

	(void)ptr;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = s->client_fd;
		return s->client_fd;
	case BIO_CTRL_GET_CLOSE:
		return BIO_get_shutdown(b);
	case BIO_CTRL_SET_CLOSE:
		BIO_set_shutdown(b, (int)num);
		return 1;
	case BIO_CTRL_WPENDING:
		return s->tout != NULL ? (long)(s->tout->len - s->tout->off) :
		    0;
	case BIO_CTRL_PENDING:
		return 0;
	case BIO_CTRL_FLUSH:
		BIO_clear_retry_flags(b);
		if (s->tout == NULL || s->tout->len == 0)
			return 1;
		if (tlsout_write(s))
			return 1;
		if (tlsout_retryable(errno)) {
			(void)event_add(&s->tout->ev, NULL);
			BIO_set_retry_write(b);
		}
		return 0;
	default:
		return 0;
	}
}

/* The socket itself is closed by the bufferevent (BEV_OPT_CLOSE_ON_FREE). */
static int
tlsout_destroy(BIO *b)
{
	struct session	*s = BIO_get_data(b);

	if (s != NULL)
		tlsout_free(s);
	BIO_set_data(b, NULL);
	BIO_set_init(b, 0);
	return 1;
}

static void
tlsout_method_init(void)
{
	BIO_METHOD	*m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
	    BIO_TYPE_DESCRIPTOR, "mtlsproxy client socket");
	if (m == NULL || !BIO_meth_set_write(m, tlsout_bwrite) ||
	    !BIO_meth_set_ctrl(m, tlsout_ctrl) ||
	    !BIO_meth_set_destroy(m, tlsout_destroy)) {
		BIO_meth_free(m);
		return;
	}
	tlsout_method = m;
}

/*
 * Give ssl its BIOs for the session's client socket fd: reads through a
 * plain socket BIO, writes through this one. False: out of memory.
 */
bool
tlsout_attach(struct session *s, SSL *ssl, int fd)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	BIO			*r, *w;

	(void)pthread_once(&once, tlsout_method_init);
	if (tlsout_method == NULL)
		return false;
	s->client_fd = fd;
	if ((r = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL)
		return false;
	if ((w = BIO_new(tlsout_method)) == NULL) {
		BIO_free(r);
		return false;
	}
	BIO_set_data(w, s);
	BIO_set_shutdown(w, BIO_NOCLOSE);
	BIO_set_init(w, 1);
	SSL_set_bio(ssl, r, w);
	return true;
}

/*
 * Before the client's bufferevent is freed (libevent frees the SSL later,
 * after the session is gone): drop what is held and put the socket BIO in
 * this one's place, so that nothing reaches back into the session.
 */
void
tlsout_detach(SSL *ssl)
{
	BIO	*r;

	if (ssl == NULL || (r = SSL_get_rbio(ssl)) == NULL ||
	    SSL_get_wbio(ssl) == r || !BIO_up_ref(r))
		return;
	SSL_set0_wbio(ssl, r);	/* frees this BIO: tlsout_destroy() */
}

/* Whether TLS records are still held back (not yet written). */
bool
tlsout_pending(const struct session *s)
{
	return s->tout != NULL && s->tout->len > s->tout->off;
}
