/*
 * upstream.c - connect to the backend: each address in order within
 * connect_timeout, falling over to the next on failure.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mtlsproxy.h"

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session			*s = arg;
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	int				 err, on = 1;

	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_set_timeouts(bev, NULL, NULL);
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
		    TCP_NODELAY, &on, sizeof(on));
		session_proxy_start(s);
		return;
	}
	err = EVUTIL_SOCKET_ERROR();
	metrics_backend_fail(s->li);
	if (what & BEV_EVENT_TIMEOUT)
		log_warnx("listener \"%s\": backend connect failed: %s: no "
		    "answer within %" PRIu64 " ms (backend.connect_timeout)",
		    s->srv->cfg->name, s->backend_addr, b->connect_timeout_ms);
	else
		log_warnx("listener \"%s\": backend connect failed: %s: %s",
		    s->srv->cfg->name, s->backend_addr,
		    err != 0 ? evutil_socket_error_to_string(err) :
		    "connection closed");
	bufferevent_free(bev);
	s->backend = NULL;
	s->backend_idx++;
	upstream_connect(s);
}

/* Connect to the next backend address; close the session if none left. */
void
upstream_connect(struct session *s)
{
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	const struct addr		*a;
	struct bufferevent		*bev;
	struct timeval			 tv;

	for (; s->backend_idx < b->naddrs; s->backend_idx++) {
		a = &b->addrs[s->backend_idx];
		snprintf(s->backend_addr, sizeof(s->backend_addr), "%s",
		    a->text);
		bev = bufferevent_socket_new(s->w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			break;
		bufferevent_setcb(bev, NULL, NULL, upstream_event_cb, s);
		tv.tv_sec = (time_t)(b->connect_timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)(b->connect_timeout_ms % 1000) * 1000;
		bufferevent_set_timeouts(bev, NULL, &tv);
		s->backend = bev;
		if (bufferevent_socket_connect(bev,
		    (const struct sockaddr *)&a->ss, (int)a->sslen) == 0)
			return;
		metrics_backend_fail(s->li);
		log_warnx("listener \"%s\": backend connect failed: %s: %s",
		    s->srv->cfg->name, a->text,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(bev);
		s->backend = NULL;
	}
	session_backend_failed(s);
}
