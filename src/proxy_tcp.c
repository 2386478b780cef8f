/*
 * proxy_tcp.c - move bytes both ways between the TLS client and the plain
 * backend, with watermarks for backpressure and half-close passed through.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "mtlsproxy.h"

/* Stop reading a side while the other side has this much unsent. */
#define TCP_MAXBUF	(256 * 1024)

static struct bufferevent *
tcp_other(struct session *s, struct bufferevent *bev)
{
	return bev == s->client ? s->backend : s->client;
}

/* Both directions finished and flushed: the session is done. */
static void
tcp_maybe_finish(struct session *s)
{
	/* The close_notify may still be held back (tlsout.c). */
	if (!s->client_shut || !s->backend_shut || tlsout_pending(s))
		return;
	session_close(s, s->client_eof_first ? "client_closed" :
	    "backend_closed");
}

/* Pass an EOF on once everything before it has been written. */
static void
tcp_pass_eof(struct session *s)
{
	if (s->client_eof && !s->backend_shut &&
	    evbuffer_get_length(bufferevent_get_output(s->backend)) == 0) {
		/* Client sent all it will: the backend reads EOF. */
		(void)shutdown(bufferevent_getfd(s->backend), SHUT_WR);
		s->backend_shut = true;
	}
	if (s->backend_eof && !s->client_shut &&
	    evbuffer_get_length(bufferevent_get_output(s->client)) == 0) {
		/* Backend sent all it will: close_notify to the client. */
		(void)SSL_shutdown(bufferevent_openssl_get_ssl(s->client));
		ERR_clear_error();
		s->client_shut = true;
	}
	tcp_maybe_finish(s);
}

static void
tcp_move(struct session *s, struct bufferevent *src)
{
	struct bufferevent	*dst = tcp_other(s, src);
	struct evbuffer		*in = bufferevent_get_input(src);
	size_t			 n = evbuffer_get_length(in);

	if (n == 0)
		return;
	if (src == s->client)
		s->bytes_in += n;
	else
		s->bytes_out += n;
	session_send(s, dst, in, n);
	session_touch(s);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= TCP_MAXBUF) {
		session_read(s, src, false);
		bufferevent_setwatermark(dst, EV_WRITE, TCP_MAXBUF / 2, 0);
	}
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (bev == s->client)
		session_read_more(s);
	tcp_move(s, bev);
}

/* Output drained below its low mark: resume the other side, pass EOFs. */
static void
tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct session		*s = arg;
	struct bufferevent	*src = tcp_other(s, bev);
	bool			 src_eof;

	session_touch(s);
	src_eof = src == s->client ? s->client_eof : s->backend_eof;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (!src_eof)
		session_read(s, src, true);
	tcp_pass_eof(s);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	char		 why[160];
	int		 err;

	if (what & BEV_EVENT_EOF) {
		/* Whatever arrived before the EOF goes out first. */
		tcp_move(s, bev);
		session_read(s, bev, false);
		/*
		 * libevent stops writing to a TLS peer whose close_notify it
		 * read; TLS 1.3 lets us answer, so keep writing.
		 */
		if (bev == s->client) {
			bufferevent_enable(bev, EV_WRITE);
			if (!s->backend_eof)
				s->client_eof_first = true;
			s->client_eof = true;
		} else
			s->backend_eof = true;
		tcp_pass_eof(s);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		err = EVUTIL_SOCKET_ERROR();
		if (bev == s->client) {
			unsigned long e = bufferevent_get_openssl_error(bev);

			while (bufferevent_get_openssl_error(bev) != 0)
				;
			snprintf(why, sizeof(why), "client_error: %s",
			    e != 0 ? ERR_reason_error_string(e) :
			    err != 0 ? strerror(err) : "connection lost");
		} else {
			snprintf(why, sizeof(why), "backend_error: %s",
			    err != 0 ? strerror(err) : "connection lost");
			/*
			 * No close_notify: that would tell the client the
			 * stream ended whole. Without it the client sees the
			 * end as the error it is (a truncated stream).
			 */
			s->client_shut = true;
		}
		session_close(s, why);
	}
}

/*
 * proxy_protocol: the PROXY v2 header goes out before any client byte, so
 * the backend learns the client's address and verified identity.
 */
static int
tcp_send_pp2(struct session *s)
{
	unsigned char		 hdr[PP2_MAX_HEADER];
	struct sockaddr_storage	 src, dst;
	socklen_t		 srclen = sizeof(src), dstlen = sizeof(dst);
	char			 why[160];
	int			 fd = bufferevent_getfd(s->client), n;

	if (getpeername(fd, (struct sockaddr *)&src, &srclen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&dst, &dstlen) == -1) {
		snprintf(why, sizeof(why), "client_error: %s", strerror(errno));
		session_close(s, why);
		return -1;
	}
	n = pp2_build(hdr, sizeof(hdr), (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, bufferevent_openssl_get_ssl(s->client));
	if (n == -1 || bufferevent_write(s->backend, hdr, (size_t)n) == -1) {
		session_close(s, "proxy_protocol: header not sent");
		return -1;
	}
	return 0;
}

/* Both sides are connected: pump bytes. */
void
tcp_start(struct session *s)
{
	if (s->srv->cfg->backend.proxy_protocol && tcp_send_pp2(s) == -1)
		return;
	bufferevent_setcb(s->client, tcp_read_cb, tcp_write_cb, tcp_event_cb,
	    s);
	bufferevent_setcb(s->backend, tcp_read_cb, tcp_write_cb, tcp_event_cb,
	    s);
	bufferevent_enable(s->backend, EV_WRITE);
	session_read(s, s->backend, true);
	session_client_enable(s, EV_READ | EV_WRITE);
	/* Bytes the client sent during the backend connect. */
	tcp_move(s, s->client);
}
