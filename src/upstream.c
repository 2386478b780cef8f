/*
 * upstream.c - connect to the backend: the addresses in the order
 * backend.balance gives, each within connect_timeout, falling over to the
 * next on failure; kept idle connections (backend.keepalive).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mtlsproxy.h"

#define UPSTREAM_WRITE_MAX	(256 * 1024)	/* bytes per write() */

/*
 * What a failed connect to a unix socket means, in words a sysadmin can
 * act on (the errno text alone says "Connection refused" for a regular
 * file, and nothing about whose permission is missing); "" otherwise.
 */
static const char *
upstream_unix_hint(const struct addr *a, int err, char *buf, size_t len)
{
	const struct sockaddr_un	*sun;
	struct stat			 st;

	if (a->ss.ss_family != AF_UNIX)
		return "";
	sun = (const struct sockaddr_un *)&a->ss;
	switch (err) {
	case ENOENT:
		return " (no socket file there: is the backend running and "
		    "listening on this path?)";
	case ENOTDIR:
		return " (a folder in this path is a file)";
	case EACCES:
	case EPERM:
		snprintf(buf, len, " (mtlsproxy runs as uid %lu, gid %lu: it "
		    "needs write permission on the socket file and search "
		    "permission on each folder above it)",
		    (unsigned long)geteuid(), (unsigned long)getegid());
		return buf;
	case ECONNREFUSED:
		if (stat(sun->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return " (the file there is not a socket: the backend "
			    "listens elsewhere, or the path is wrong)";
		return " (nothing listens on this socket file: the backend "
		    "has stopped, or has not started yet)";
	default:
		return "";
	}
}

/*
 * s holds a connection to backend address s->backend_idx from now on, or
 * not any longer (returned, NULL if none): counted per address for
 * balance: least_conn and the metrics. Kept idle connections do not count.
 */
void
upstream_attach(struct session *s, struct bufferevent *bev)
{
	s->backend = bev;
	__atomic_add_fetch(&s->rt->backends[s->li]->active[s->backend_idx], 1,
	    __ATOMIC_RELAXED);
}

struct bufferevent *
upstream_detach(struct session *s)
{
	struct bufferevent	*bev = s->backend;

	if (bev != NULL)
		__atomic_sub_fetch(
		    &s->rt->backends[s->li]->active[s->backend_idx], 1,
		    __ATOMIC_RELAXED);
	s->backend = NULL;
	return bev;
}

/* Whether a backend connection in progress has in fact connected. */
static bool
upstream_connected(struct bufferevent *bev)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	evutil_socket_t		 fd = bufferevent_getfd(bev);

	return fd != -1 &&
	    getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

/*
 * An address whose connect failed is passed over for backend.fail_timeout
 * while the listener has others that have not failed (as nginx's
 * max_fails=1 fail_timeout=10s), so that clients do not each wait for it;
 * when all have failed, all are tried. A connect that succeeds clears it.
 */
#define BACKEND_DOWN_BITS	64	/* addresses beyond are never passed over */

/*
 * The address failed: note it, and put in said what the log line adds
 * about it ("" when it is not passed over).
 */
static void
upstream_mark_down(struct session *s, char *said, size_t len)
{
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	struct backend_state		*st = s->rt->backends[s->li];
	bool				 secs = b->fail_timeout_ms % 1000 == 0;

	said[0] = '\0';
	if (b->naddrs < 2 || b->fail_timeout_ms == 0 ||
	    s->backend_idx >= BACKEND_DOWN_BITS)
		return;
	__atomic_store_n(&st->down_until[s->backend_idx],
	    monotonic_ms() + b->fail_timeout_ms, __ATOMIC_RELAXED);
	snprintf(said, len, "; the other addresses come first for the next "
	    "%" PRIu64 " %s (backend.fail_timeout)",
	    secs ? b->fail_timeout_ms / 1000 : b->fail_timeout_ms,
	    secs ? "s" : "ms");
}

/* Whether address i had failed when this round of connects began. */
static bool
upstream_was_down(const struct session *s, size_t i)
{
	return i < BACKEND_DOWN_BITS &&
	    (s->backend_down & (UINT64_C(1) << i)) != 0;
}

/* Connected: an address that had failed is back; say so once. */
static void
upstream_mark_up(struct session *s)
{
	struct backend_state	*st = s->rt->backends[s->li];

	if (s->srv->cfg->backend.naddrs >= 2 &&
	    __atomic_load_n(&st->down_until[s->backend_idx],
	    __ATOMIC_RELAXED) != 0 &&
	    __atomic_exchange_n(&st->down_until[s->backend_idx], 0,
	    __ATOMIC_RELAXED) != 0)
		log_info("listener \"%s\": backend %s answers again",
		    s->srv->cfg->name, s->backend_addr);
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session			*s = arg;
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	char				 hint[200], said[96];
	int				 err, on = 1;

	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_set_timeouts(bev, NULL, NULL);
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
		    TCP_NODELAY, &on, sizeof(on));
		s->fd_wait_ms = 0;
		upstream_mark_up(s);
		session_proxy_start(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && upstream_connected(bev)) {
		/*
		 * The connect completed in time, but the loop came to it
		 * late (a busy pass, or more ready descriptors than one
		 * epoll_wait returns): let libevent report it connected.
		 */
		bufferevent_set_timeouts(bev, NULL, NULL);
		if (bufferevent_enable(bev, EV_WRITE) == 0)
			return;
	}
	err = EVUTIL_SOCKET_ERROR();
	metrics_backend_fail(s->li);
	upstream_mark_down(s, said, sizeof(said));
	if (what & BEV_EVENT_TIMEOUT)
		log_warnx("listener \"%s\": backend connect failed: %s: no "
		    "answer within %" PRIu64 " ms (backend.connect_timeout)%s",
		    s->srv->cfg->name, s->backend_addr, b->connect_timeout_ms,
		    said);
	else
		log_warnx("listener \"%s\": backend connect failed: %s: %s%s%s",
		    s->srv->cfg->name, s->backend_addr,
		    err != 0 ? evutil_socket_error_to_string(err) :
		    "connection closed", err != 0 ? upstream_unix_hint(
		    &b->addrs[s->backend_idx], err, hint, sizeof(hint)) : "",
		    said);
	bufferevent_free(upstream_detach(s));
	s->backend_tries++;
	upstream_next(s);
}

/*
 * Idle backend connections (http mode with backend.keepalive): when a
 * client's connection ends between messages, its backend connection is kept
 * by the worker for keepalive_timeout and handed to the next client of the
 * same listener, which saves a TCP connect and close per client. A kept
 * connection that the backend closes, or that says anything, is dropped at
 * once. Each holds a reference to its runtime, so a connection to a backend
 * from before a reload is never given to a listener after it.
 */
struct pooled {
	TAILQ_ENTRY(pooled)	 entry;
	struct worker		*w;
	struct runtime		*rt;	/* holds a reference */
	size_t			 li;	/* listener */
	size_t			 idx;	/* backend address */
	struct bufferevent	*bev;	/* owns */
};

static void
pool_drop(struct pooled *p)
{
	TAILQ_REMOVE(&p->w->pool, p, entry);
	bufferevent_free(p->bev);
	runtime_unref(p->rt);
	free(p);
}

/* Data from an idle backend (it should say nothing): drop it. */
static void
pool_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pool_drop(arg);
}

/* Closed by the backend, an error, or keepalive_timeout: drop it. */
static void
pool_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pool_drop(arg);
}

/* At the end of a session: keep its backend connection if it can be. */
bool
upstream_pool_put(struct session *s)
{
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	struct worker			*w = s->w;
	struct pooled			*p, *oldest = NULL;
	struct runtime			*cur;
	struct timeval			 tv;
	unsigned			 n = 0;
	bool				 stale;

	if (b->keepalive == 0 || w->stopping || s->backend == NULL ||
	    s->state != SESSION_PROXYING || s->backend_eof ||
	    s->backend_shut || !http_backend_idle(s->http) ||
	    evbuffer_get_length(bufferevent_get_input(s->backend)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(s->backend)) != 0)
		return false;
	/* From before a reload: no new client could use it. */
	cur = runtime_current();
	stale = cur != s->rt;
	runtime_unref(cur);
	if (stale)
		return false;
	TAILQ_FOREACH(p, &w->pool, entry)
		if (p->rt == s->rt && p->li == s->li && n++ == 0)
			oldest = p;
	if (n >= b->keepalive && oldest != NULL)
		pool_drop(oldest);
	p = xcalloc(1, sizeof(*p));
	p->w = w;
	p->rt = runtime_ref(s->rt);
	p->li = s->li;
	p->idx = s->backend_idx;
	p->bev = upstream_detach(s);
	bufferevent_setcb(p->bev, pool_read_cb, NULL, pool_event_cb, p);
	tv = ms_timeval(b->keepalive_timeout_ms);
	bufferevent_set_timeouts(p->bev, &tv, NULL);
	bufferevent_disable(p->bev, EV_WRITE);
	bufferevent_enable(p->bev, EV_READ);
	TAILQ_INSERT_TAIL(&w->pool, p, entry);
	return true;
}

#define ANY_ADDR	SIZE_MAX

/*
 * Take the newest kept connection for this session's listener, if any: to
 * backend address idx, or to any (ANY_ADDR).
 */
static bool
upstream_pool_get(struct session *s, size_t idx)
{
	struct worker		*w = s->w;
	struct pooled		*p, *prev;
	struct bufferevent	*bev;
	char			 c;
	ssize_t			 r;

	for (p = TAILQ_LAST(&w->pool, pooled_list); p != NULL; p = prev) {
		prev = TAILQ_PREV(p, pooled_list, entry);
		if (p->rt != s->rt || p->li != s->li ||
		    (idx != ANY_ADDR && p->idx != idx))
			continue;
		/* Closed or talking since the last loop pass: not usable. */
		r = recv(bufferevent_getfd(p->bev), &c, 1,
		    MSG_PEEK | MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			pool_drop(p);
			continue;
		}
		TAILQ_REMOVE(&w->pool, p, entry);
		bev = p->bev;
		s->backend_idx = p->idx;
		runtime_unref(p->rt);
		free(p);
		bufferevent_set_timeouts(bev, NULL, NULL);
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		snprintf(s->backend_addr, sizeof(s->backend_addr), "%s",
		    s->srv->cfg->backend.addrs[s->backend_idx].text);
		upstream_attach(s, bev);
		return true;
	}
	return false;
}

/*
 * After a reload: close the kept connections of older configurations;
 * clients from now on get the current one, and never those.
 */
void
upstream_pool_prune(struct worker *w, const struct runtime *rt)
{
	struct pooled	*p, *next;

	for (p = TAILQ_FIRST(&w->pool); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->rt != rt)
			pool_drop(p);
	}
}

/* The worker is ending: close every kept connection. */
void
upstream_pool_clear(struct worker *w)
{
	struct pooled	*p;

	while ((p = TAILQ_FIRST(&w->pool)) != NULL)
		pool_drop(p);
}

#define FD_SHED_SCAN		1024	/* sessions looked at, at most */

/*
 * Free a descriptor of this worker's: close the oldest kept connection, or
 * else the backend connection of the longest-standing client between two
 * requests (http mode; its next request connects again), other than that
 * of s (may be NULL). The descriptor is closed when the loop pass ends.
 */
bool
upstream_fd_shed(struct worker *w, const struct session *s)
{
	struct pooled	*p = TAILQ_FIRST(&w->pool);
	struct session	*o;
	unsigned	 n = 0;

	if (p != NULL) {
		pool_drop(p);
		return true;
	}
	/* Bounded: a busy worker's waiting requests must not each walk all. */
	TAILQ_FOREACH(o, &w->sessions, entry) {
		if (o != s && o->srv->cfg->backend.mode == BACKEND_HTTP &&
		    http_backend_release(o))
			return true;
		if (++n == FD_SHED_SCAN)
			break;
	}
	return false;
}

#define FD_WAIT_FIRST_MS	10
#define FD_WAIT_MAX_MS		200
#define FD_WAIT_LOG_SEC		60

/*
 * Try the same backend address again shortly: after 10 ms, then at
 * growing intervals up to 200 ms, for up to connect_timeout in all.
 */
static bool
upstream_retry_later(struct session *s)
{
	uint64_t	 limit = s->srv->cfg->backend.connect_timeout_ms, ms;
	struct timeval	 tv;

	if (s->fd_wait_ms >= limit)
		return false;
	ms = s->fd_wait_ms == 0 ? FD_WAIT_FIRST_MS : s->fd_wait_ms;
	if (ms > FD_WAIT_MAX_MS)
		ms = FD_WAIT_MAX_MS;
	if (ms > limit - s->fd_wait_ms)
		ms = limit - s->fd_wait_ms;
	tv = ms_timeval(ms);
	if (evtimer_add(s->timer, &tv) == -1)
		return false;
	s->fd_wait_ms += ms;
	return true;
}

/*
 * No descriptor left to connect to the backend with (the open file limit:
 * in http mode backend connections come with requests, so more clients can
 * want one at once than the limit holds): try again shortly, as a client
 * beyond max_connections waits in the backlog, for up to connect_timeout.
 * Said at most once a minute.
 */
static bool
upstream_fd_wait(struct session *s, int err)
{
	static time_t	 logged;	/* atomic */
	uint64_t	 limit = s->srv->cfg->backend.connect_timeout_ms;

	if (!upstream_retry_later(s))
		return false;
	if (log_due(&logged, FD_WAIT_LOG_SEC))
		log_warnx("listener \"%s\": no file descriptor free to connect "
		    "to the backend (%s; the open file limit is %llu): requests "
		    "wait up to %" PRIu64 " ms (backend.connect_timeout) for "
		    "one; raise the limit or lower max_connections",
		    s->srv->cfg->name, evutil_socket_error_to_string(err),
		    nofile_limit(), limit);
	return true;
}

static bool	upstream_pick(struct session *);

/*
 * least_conn: the round starts at the address with the fewest connections
 * in use among those that had not failed (ties: the first from where
 * round_robin would start).
 */
static void
upstream_least(struct session *s)
{
	const struct backend_state	*st = s->rt->backends[s->li];
	size_t				 n = s->srv->cfg->backend.naddrs, k, i;
	size_t				 best = s->backend_first;
	int				 c, min = -1;

	for (k = 0; k < n; k++) {
		i = (s->backend_first + k) % n;
		if (upstream_was_down(s, i))
			continue;
		c = __atomic_load_n(&st->active[i], __ATOMIC_RELAXED);
		if (min == -1 || c < min) {
			min = c;
			best = i;
		}
	}
	s->backend_first = (unsigned)best;
}

/*
 * Connect to the backend: the addresses in turn. failover: from the first;
 * round_robin: from the one after where the listener's previous connection
 * started; least_conn: from the one with the fewest connections in use.
 * Those that failed within backend.fail_timeout come after the others. In
 * http mode with backend.keepalive, a kept connection comes first: any
 * (failover), or one to the address whose turn it is (round_robin,
 * least_conn: so that requests still go round, as with nginx's keepalive).
 */
void
upstream_connect(struct session *s)
{
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	struct backend_state		*st = s->rt->backends[s->li];
	uint64_t			 now = 0, until;
	size_t				 i;

	s->backend_reused = false;
	s->backend_tries = 0;
	s->backend_first = 0;
	if (b->balance != BALANCE_FAILOVER && b->naddrs > 1)
		s->backend_first = __atomic_fetch_add(&st->next, 1,
		    __ATOMIC_RELAXED) % b->naddrs;
	s->backend_down = 0;
	for (i = 0; i < b->naddrs && i < BACKEND_DOWN_BITS; i++) {
		until = __atomic_load_n(&st->down_until[i], __ATOMIC_RELAXED);
		if (until == 0)
			continue;
		if (now == 0)
			now = monotonic_ms();
		if (until > now)
			s->backend_down |= UINT64_C(1) << i;
	}
	if (b->balance == BALANCE_LEAST_CONN && b->naddrs > 1)
		upstream_least(s);
	if (b->keepalive > 0 && !s->backend_fresh && upstream_pick(s) &&
	    upstream_pool_get(s, b->balance == BALANCE_FAILOVER ? ANY_ADDR :
	    s->backend_idx)) {
		s->backend_reused = true;
		session_proxy_start(s);
		return;
	}
	upstream_next(s);
}

/*
 * The address of this round's try s->backend_tries, or of the next one not
 * passed over: tries 0..n-1 are the addresses from backend_first on that
 * had not failed when the round began, tries n..2n-1 those that had.
 */
static bool
upstream_pick(struct session *s)
{
	size_t	n = s->srv->cfg->backend.naddrs, k, i;

	for (; (k = s->backend_tries) < 2 * n; s->backend_tries++) {
		i = (s->backend_first + k % n) % n;
		if ((k < n) != upstream_was_down(s, i)) {
			s->backend_idx = i;
			return true;
		}
	}
	return false;
}

/*
 * Connect to this round's next address (again, after a wait for a
 * descriptor: session.c's timer); close the session if none is left.
 */
void
upstream_next(struct session *s)
{
	const struct cfg_backend	*b = &s->srv->cfg->backend;
	const struct addr		*a;
	struct bufferevent		*bev;
	struct timeval			 tv, zero = { 0, 0 };
	char				 waited[160], hint[200], said[96];
	int				 err;

	for (; upstream_pick(s); s->backend_tries++) {
		a = &b->addrs[s->backend_idx];
		snprintf(s->backend_addr, sizeof(s->backend_addr), "%s",
		    a->text);
		bev = bufferevent_socket_new(s->w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			break;
		bufferevent_setcb(bev, NULL, NULL, upstream_event_cb, s);
		/* libevent writes at most 16 KiB per call unless told. */
		(void)bufferevent_set_max_single_write(bev, UPSTREAM_WRITE_MAX);
		tv = ms_timeval(b->connect_timeout_ms);
		bufferevent_set_timeouts(bev, NULL, &tv);
		upstream_attach(s, bev);
		if (bufferevent_socket_connect(bev,
		    (const struct sockaddr *)&a->ss, (int)a->sslen) == 0)
			return;
		err = EVUTIL_SOCKET_ERROR();
		bufferevent_free(upstream_detach(s));
		if (err == EMFILE || err == ENFILE) {
			/*
			 * An idle backend connection gives its descriptor.
			 * libevent closes it when this loop pass runs its
			 * finalizers: try again right after that.
			 */
			if (upstream_fd_shed(s->w, s) &&
			    evtimer_add(s->timer, &zero) == 0)
				return;
			if (upstream_fd_wait(s, err))
				return;
		}
		/*
		 * A unix socket whose listen queue is full refuses at once
		 * (EAGAIN), where a TCP connect would retry its SYN: the
		 * backend is alive but behind. Wait for it as TCP would.
		 */
		if (err == EAGAIN && a->ss.ss_family == AF_UNIX &&
		    upstream_retry_later(s))
			return;
		metrics_backend_fail(s->li);
		waited[0] = '\0';
		if (err == EAGAIN && a->ss.ss_family == AF_UNIX)
			snprintf(waited, sizeof(waited), " (the backend's "
			    "listen queue stayed full for %" PRIu64 " ms "
			    "(backend.connect_timeout): it accepts connections "
			    "more slowly than they come)", s->fd_wait_ms);
		else if (s->fd_wait_ms > 0)
			snprintf(waited, sizeof(waited), " (no descriptor "
			    "came free within %" PRIu64 " ms)", s->fd_wait_ms);
		said[0] = '\0';
		if (err != EMFILE && err != ENFILE)	/* ours, not its */
			upstream_mark_down(s, said, sizeof(said));
		log_warnx("listener \"%s\": backend connect failed: %s: %s%s%s%s",
		    s->srv->cfg->name, a->text,
		    evutil_socket_error_to_string(err),
		    upstream_unix_hint(a, err, hint, sizeof(hint)), waited,
		    said);
		s->fd_wait_ms = 0;
	}
	session_backend_failed(s);
}
