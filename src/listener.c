/*
 * listener.c - listening sockets (one SO_REUSEPORT socket per worker and
 * listener) and accepting with max_connections and EMFILE back-off.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "mtlsproxy.h"

#define ACCEPT_BATCH	64
#define LISTEN_BACKLOG	1024
/* Raise the soft open file limit to at least this (or the hard limit). */
#define FD_LIMIT_ENOUGH	1048576UL

static struct lstate	*lstates;
static size_t		 nlstates;
static unsigned		 nworkers_open;
static bool		 limit_logged;	/* atomic */
static unsigned	*fd_caps;	/* per listener when the fds are short */
static size_t		 nfd_caps;

/* The process-wide state of listener i. */
struct lstate *
listener_state(size_t i)
{
	return &lstates[i];
}

/* Number of configured listeners. */
size_t
listener_count(void)
{
	return nlstates;
}

static int
listener_socket(const struct addr *a, bool reuseport, char *err, size_t len)
{
	int	fd, on = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, len, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)) == -1) {
		snprintf(err, len, "SO_REUSEPORT: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->sslen) == -1) {
		int e = errno;

		snprintf(err, len, "%s%s", strerror(e), e == EADDRINUSE ?
		    " (is another server or mtlsproxy already running on this "
		    "port?)" : e == EACCES ? " (ports below 1024 need root or "
		    "CAP_NET_BIND_SERVICE)" : "");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Socket activation: take the socket systemd passed under the listener's
 * name and give each worker its own descriptor of it (the kernel shares
 * one accept queue between them).
 */
static int
listener_systemd(const struct cfg_listener *l, struct lstate *ls,
    unsigned nworkers)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 err[512], where[128] = "?";
	unsigned		 w;
	int			 fd;

	if ((fd = sd_listen_take(l->listen.name, err, sizeof(err))) == -1) {
		log_error("listener \"%s\": cannot listen on %s: %s", l->name,
		    l->listen.text, err);
		return -1;
	}
	ls->fds[0] = fd;
	for (w = 1; w < nworkers; w++)
		if ((ls->fds[w] = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
			log_errno(LOG_LEVEL_ERROR, "listener \"%s\": %s: dup",
			    l->name, l->listen.text);
			return -1;
		}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		(void)sockaddr_str((struct sockaddr *)&ss, sslen, where,
		    sizeof(where));
	log_info("listener \"%s\" on %s: socket from systemd on %s (shared "
	    "by %u workers)", l->name, l->listen.text, where, nworkers);
	return 0;
}

/*
 * Open the listening sockets of every listener, one per worker.  A plain
 * bind first proves the port is free: with SO_REUSEPORT alone a second
 * instance would silently share the port instead of failing.
 */
int
listener_open_all(struct runtime *rt, unsigned nworkers)
{
	struct cfg	*cfg = rt->cfg;
	char		 err[256];
	size_t		 i;
	unsigned	 w;
	int		 probe;

	lstates = xcalloc(cfg->nlisteners, sizeof(*lstates));
	nlstates = cfg->nlisteners;
	nworkers_open = nworkers;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];
		struct lstate *ls = &lstates[i];

		ls->name = xstrdup(l->name);
		addr_copy(&ls->addr, &l->listen);
		ls->max = listener_max(cfg, i);
		ls->fds = xcalloc(nworkers, sizeof(int));
		for (w = 0; w < nworkers; w++)
			ls->fds[w] = -1;
		if (l->listen.kind == ADDR_SYSTEMD) {
			if (listener_systemd(l, ls, nworkers) == -1)
				return -1;
			continue;
		}
		if ((probe = listener_socket(&l->listen, false, err,
		    sizeof(err))) == -1) {
			log_error("listener \"%s\": cannot listen on %s: %s",
			    l->name, l->listen.text, err);
			return -1;
		}
		close(probe);
		for (w = 0; w < nworkers; w++) {
			ls->fds[w] = listener_socket(&l->listen, true, err,
			    sizeof(err));
			if (ls->fds[w] == -1 ||
			    listen(ls->fds[w], LISTEN_BACKLOG) == -1) {
				log_error("listener \"%s\": cannot listen on "
				    "%s: %s", l->name, l->listen.text,
				    ls->fds[w] == -1 ? err : strerror(errno));
				return -1;
			}
		}
		log_info("listener \"%s\" on %s (%u socket%s, one per "
		    "worker)", l->name, l->listen.text, nworkers,
		    nworkers == 1 ? "" : "s");
	}
	sd_listen_done(true);
	return 0;
}

/*
 * Check that a configuration being reloaded has the same listeners (by
 * name and address) as the running one, and put them in the same order so
 * a listener's index stays the same.  Listening sockets are not reopened
 * by a reload.  -1 with messages in errs.
 */
int
listener_reconcile(struct cfg *cfg, struct errlist *errs)
{
	struct cfg_listener	*sorted;
	bool			*used;
	size_t			 i, j;
	int			 rc = 0;

	used = xcalloc(cfg->nlisteners, sizeof(*used));
	sorted = xcalloc(nlstates, sizeof(*sorted));
	for (i = 0; i < nlstates; i++) {
		for (j = 0; j < cfg->nlisteners; j++)
			if (strcmp(cfg->listeners[j].name, lstates[i].name) == 0)
				break;
		if (j == cfg->nlisteners) {
			errlist_add(errs, "%s: listener \"%s\" was removed: "
			    "removing a listener needs a restart", cfg->path,
			    lstates[i].name);
			rc = -1;
			continue;
		}
		used[j] = true;
		if (strcmp(cfg->listeners[j].listen.text,
		    lstates[i].addr.text) != 0) {
			cfg_error(errs, cfg, cfg->listeners[j].listen_loc,
			    "listener \"%s\" moved from %s to %s: changing a "
			    "listen address needs a restart", lstates[i].name,
			    lstates[i].addr.text, cfg->listeners[j].listen.text);
			rc = -1;
		}
		sorted[i] = cfg->listeners[j];
	}
	for (j = 0; j < cfg->nlisteners; j++)
		if (!used[j]) {
			cfg_error(errs, cfg, cfg->listeners[j].loc, "listener "
			    "\"%s\" is new: adding a listener needs a restart",
			    cfg->listeners[j].name);
			rc = -1;
		}
	if (rc == 0) {
		/* Same set: reorder (the structs move, nothing is freed). */
		memcpy(cfg->listeners, sorted, nlstates * sizeof(*sorted));
	}
	free(sorted);
	free(used);
	return rc;
}

/* A reload is in: take the new limits. */
void
listener_apply(const struct cfg *cfg)
{
	size_t	i;

	for (i = 0; i < nlstates && i < cfg->nlisteners; i++)
		__atomic_store_n(&lstates[i].max, listener_max(cfg, i),
		    __ATOMIC_RELAXED);
}

/*
 * Listener i's connection limit: its max_connections, or less when the open
 * file limit cannot hold that many (listener_fd_limit), so that clients
 * beyond it wait in the accept queue instead of failing half-way (a client
 * accepted with the last descriptor would find none for its backend).
 */
unsigned
listener_max(const struct cfg *cfg, size_t i)
{
	unsigned	max = cfg->listeners[i].max_connections;

	if (fd_caps != NULL && i < nfd_caps && fd_caps[i] < max)
		return fd_caps[i];
	return max;
}

/*
 * Share budget descriptors between the listeners: each gets what its
 * max_connections take if that is at most an even share of what is left,
 * the rest split evenly (so a listener limited to a few connections keeps
 * them all, and the big ones give way); at least one connection each.
 */
static void
fd_caps_fill(const struct cfg *cfg, unsigned long budget)
{
	size_t		 i, left = cfg->nlisteners;
	unsigned long	 share, want;
	bool		 more = true;

	fd_caps = xcalloc(cfg->nlisteners, sizeof(*fd_caps));
	nfd_caps = cfg->nlisteners;
	while (more && left > 0) {
		more = false;
		share = budget / left;
		for (i = 0; i < cfg->nlisteners; i++) {
			const struct cfg_listener *l = &cfg->listeners[i];

			want = (unsigned long)l->max_connections *
			    cfg_fd_per_conn(l);
			if (fd_caps[i] == 0 && want <= share) {
				fd_caps[i] = l->max_connections;
				budget -= want;
				left--;
				more = true;
			}
		}
	}
	share = left > 0 ? budget / left : 0;
	for (i = 0; i < cfg->nlisteners; i++) {
		want = share / cfg_fd_per_conn(&cfg->listeners[i]);
		if (fd_caps[i] == 0)
			fd_caps[i] = want > 0 ? (unsigned)want : 1;
	}
}

/*
 * Give the daemon the descriptors its max_connections need. Shells and
 * containers often start programs with a soft RLIMIT_NOFILE of 1024, which
 * would stop a tcp listener at about 500 clients: raise the soft limit to
 * the hard one (as systemd advises for programs that do not use select();
 * no privilege needed). When even that is short, lower the listeners'
 * limits to what fits, and say so. At start-up and after each reload.
 */
void
listener_fd_limit(const struct cfg *cfg)
{
	struct rlimit	 rl;
	rlim_t		 old, want;
	unsigned long	 need = cfg_fd_need(cfg), total = 0, conns = 0, fixed;
	size_t		 i, http = 0;

	free(fd_caps);
	fd_caps = NULL;
	nfd_caps = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	old = rl.rlim_cur;
	/* The hard limit can be huge (infinity, 2^30): no need to go there. */
	want = need > FD_LIMIT_ENOUGH ? need : FD_LIMIT_ENOUGH;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (want > old) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("open file limit raised from %llu to %llu",
			    (unsigned long long)old, (unsigned long long)want);
		else
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	for (i = 0; i < cfg->nlisteners; i++) {
		total += cfg->listeners[i].max_connections;
		if (cfg->listeners[i].backend.mode == BACKEND_HTTP)
			http++;
	}
	fixed = cfg_fd_fixed(cfg);
	fd_caps_fill(cfg, rl.rlim_cur > fixed ? rl.rlim_cur - fixed : 0);
	for (i = 0; i < cfg->nlisteners; i++)
		conns += listener_max(cfg, i);
	/* A few percent short is no news (20000 descriptors for 10000). */
	log_msg(conns >= total - total / 10 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
	    "the open file limit is %llu (hard limit %llu), but "
	    "max_connections needs about %lu descriptors (%s): serving at "
	    "most %lu client connection%s at once%s, "
	    "the others wait until some close; raise the limit (LimitNOFILE= "
	    "in the systemd unit, --ulimit nofile= for docker run, ulimit -n "
	    "in a shell) or lower max_connections",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	    need, http == 0 ? "two per client connection" :
	    http == cfg->nlisteners ?
	    "one per client connection" : "two per client connection in tcp "
	    "mode, one in http mode", conns, conns == 1 ? "" : "s",
	    cfg->nlisteners > 1 ? " over all listeners" : "");
}

/* Close every listening socket still open and free the table. */
void
listener_close_all(void)
{
	size_t		i;
	unsigned	w;

	for (i = 0; i < nlstates; i++) {
		for (w = 0; lstates[i].fds != NULL && w < nworkers_open; w++)
			if (lstates[i].fds[w] != -1)
				close(lstates[i].fds[w]);
		free(lstates[i].fds);
		free(lstates[i].name);
		addr_free(&lstates[i].addr);
	}
	free(fd_caps);
	fd_caps = NULL;
	nfd_caps = 0;
	free(lstates);
	lstates = NULL;
	nlstates = 0;
	sd_listen_done(false);
}

static void	listener_accept_cb(evutil_socket_t, short, void *);

static void
listener_pause(struct waccept *a, unsigned ms)
{
	struct timeval	tv = ms_timeval(ms);

	if (!a->paused) {
		event_del(a->ev);
		a->paused = true;
	}
	event_add(a->pause_ev, &tv);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waccept	*a = arg;
	struct lstate	*ls = &lstates[a->li];

	(void)fd;
	(void)what;
	if (a->w->stopping)
		return;
	if (__atomic_load_n(&ls->nconns, __ATOMIC_RELAXED) >=
	    __atomic_load_n(&ls->max, __ATOMIC_RELAXED)) {
		listener_pause(a, 50);
		return;
	}
	a->paused = false;
	event_add(a->ev, NULL);
	/* Connections may be waiting in the backlog already. */
	listener_accept_cb(a->fd, EV_READ, a);
}

#define FD_LOG_SEC	60

/*
 * No descriptor for a new client: a client waiting to connect comes before
 * an idle backend connection, so close one of this worker's (the client is
 * accepted on the next loop pass, once it is closed); with none, leave the
 * clients in the backlog for 100 ms. Said at most once a minute.
 */
static void
listener_out_of_fds(struct waccept *a, int err)
{
	static time_t	 logged;	/* atomic */

	if (upstream_fd_shed(a->w, NULL)) {
		listener_pause(a, 0);
		return;
	}
	if (log_due(&logged, FD_LOG_SEC))
		log_warnx("listener \"%s\": no file descriptor free to accept "
		    "a client (%s; the open file limit is %llu): new clients "
		    "wait in the backlog until one is; raise the limit or "
		    "lower max_connections", lstates[a->li].name,
		    evutil_socket_error_to_string(err), nofile_limit());
	listener_pause(a, 100);
}

/* Reserve a connection slot; false at max_connections. */
static bool
listener_reserve(struct lstate *ls)
{
	unsigned	cur = __atomic_load_n(&ls->nconns, __ATOMIC_RELAXED);

	do {
		if (cur >= __atomic_load_n(&ls->max, __ATOMIC_RELAXED))
			return false;
	} while (!__atomic_compare_exchange_n(&ls->nconns, &cur, cur + 1,
	    true, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return true;
}

/* A connection of listener i ended: free its slot. */
void
listener_conn_done(size_t i)
{
	__atomic_sub_fetch(&lstates[i].nconns, 1, __ATOMIC_ACQ_REL);
}

static void
listener_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct waccept		*a = arg;
	struct lstate		*ls = &lstates[a->li];
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, i, on = 1;

	(void)what;
	for (i = 0; i < ACCEPT_BATCH && !a->w->stopping; i++) {
		if (!listener_reserve(ls)) {
			/* Leave the rest in the kernel backlog. */
			if (!__atomic_exchange_n(&limit_logged, true,
			    __ATOMIC_RELAXED)) {
				log_warnx("listener \"%s\": max_connections "
				    "(%u) reached; new connections wait",
				    ls->name, ls->max);
			}
			listener_pause(a, 50);
			return;
		}
		sslen = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			listener_conn_done(a->li);
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE) {
				listener_out_of_fds(a, errno);
				return;
			}
			log_errno(LOG_LEVEL_WARN, "listener \"%s\": accept",
			    ls->name);
			return;
		}
		if (__atomic_load_n(&limit_logged, __ATOMIC_RELAXED))
			__atomic_store_n(&limit_logged, false, __ATOMIC_RELAXED);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on));
		session_new(a->w, a->li, fd, (struct sockaddr *)&ss, sslen);
	}
}

/* Start accepting on this worker's sockets. */
int
listener_start(struct worker *w)
{
	size_t	i;

	w->nacc = nlstates;
	w->acc = xcalloc(nlstates, sizeof(*w->acc));
	for (i = 0; i < nlstates; i++) {
		struct waccept *a = &w->acc[i];

		a->w = w;
		a->li = i;
		a->fd = lstates[i].fds[w->idx];
		lstates[i].fds[w->idx] = -1;	/* the worker owns it now */
		a->ev = event_new(w->base, a->fd, EV_READ | EV_PERSIST,
		    listener_accept_cb, a);
		a->pause_ev = evtimer_new(w->base, listener_resume_cb, a);
		if (a->ev == NULL || a->pause_ev == NULL ||
		    event_add(a->ev, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Stop accepting: close this worker's listening sockets. */
void
listener_stop(struct worker *w)
{
	size_t	i;

	for (i = 0; i < w->nacc; i++) {
		struct waccept *a = &w->acc[i];

		if (a->ev != NULL)
			event_free(a->ev);
		if (a->pause_ev != NULL)
			event_free(a->pause_ev);
		if (a->fd != -1)
			close(a->fd);
		a->ev = a->pause_ev = NULL;
		a->fd = -1;
	}
	free(w->acc);
	w->acc = NULL;
	w->nacc = 0;
}
