/*
 * admin.c - the plaintext admin endpoint on the main thread's event loop
 * (libevent's evhttp): /healthz, /readyz from a periodic backend probe, and
 * /metrics in the Prometheus text format.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mtlsproxy.h"

#define ADMIN_PROBE_SEC		5	/* between readiness probes */
#define ADMIN_PROBE_MAX_MS	2000	/* a probe connect's time limit */
#define ADMIN_BACKLOG		16

/* One connect to one backend address, during a probe round. */
struct admin_probe {
	struct event	*ev;		/* owns */
	int		 fd;		/* owns; -1 when done */
	size_t		 li;
};

static struct event_base	*admin_base;	/* borrowed: main thread */
static struct evhttp		*admin_http;	/* owns the bound socket */
static char			*admin_text;	/* owned; address served */
static char			*admin_unix;	/* owned; socket file */
static struct event		*admin_timer;	/* owns; next probe round */

/* The round of probes in flight. */
static struct admin_probe	*probes;	/* owned */
static size_t			 nprobes, npending;
static bool			*round_up;	/* owned; per listener */
static char			**round_names;	/* owned; per listener */
static size_t			 round_n;

/* The result of the last finished round. */
static bool			 draining;	/* SIGTERM: not ready */
static bool			 ready_known;
static char			*ready_down;	/* owned; "" when all are up */

/* --------------------------------------------------------------- probes */

static void
admin_round_free(void)
{
	size_t	i;

	for (i = 0; i < nprobes; i++) {
		if (probes[i].ev != NULL)
			event_free(probes[i].ev);
		if (probes[i].fd != -1)
			close(probes[i].fd);
	}
	free(probes);
	probes = NULL;
	nprobes = npending = 0;
	for (i = 0; i < round_n; i++)
		free(round_names[i]);
	free(round_names);
	free(round_up);
	round_names = NULL;
	round_up = NULL;
	round_n = 0;
}

/* Every probe of the round has answered: publish the result. */
static void
admin_round_done(void)
{
	char	*down = xstrdup(""), *s;
	size_t	 i;

	for (i = 0; i < round_n; i++) {
		metrics_backend_up(i, round_up[i]);
		if (round_up[i])
			continue;
		s = xasprintf("%s%s%s", down, down[0] ? ", " : "",
		    round_names[i]);
		free(down);
		down = s;
	}
	if (!ready_known || strcmp(down, ready_down) != 0) {
		if (down[0] != '\0')
			log_warnx("admin: not ready: no backend reachable for "
			    "listener(s) %s", down);
		else if (ready_known)
			log_info("admin: ready again: every listener has a "
			    "reachable backend");
	}
	free(ready_down);
	ready_down = down;
	ready_known = true;
	admin_round_free();
}

static void
admin_probe_end(struct admin_probe *p, bool up)
{
	if (up)
		round_up[p->li] = true;
	if (p->ev != NULL)
		event_free(p->ev);
	p->ev = NULL;
	close(p->fd);
	p->fd = -1;
	if (--npending == 0)
		admin_round_done();
}

static void
admin_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_probe	*p = arg;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (what & EV_TIMEOUT) {
		admin_probe_end(p, false);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	admin_probe_end(p, err == 0);
}

/* Start a non-blocking connect; false if it is over already. */
static bool
admin_probe_start(struct admin_probe *p, const struct addr *a, uint64_t ms,
    bool *up)
{
	struct timeval	tv;

	*up = false;
	p->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (p->fd == -1)
		return false;
	if (connect(p->fd, (const struct sockaddr *)&a->ss, a->sslen) == 0 ||
	    (errno == EAGAIN && a->ss.ss_family == AF_UNIX)) {
		/* A unix backlog that is full still means a live backend. */
		*up = true;
		return false;
	}
	if (errno != EINPROGRESS)
		return false;
	tv = ms_timeval(ms);
	p->ev = event_new(admin_base, p->fd, EV_WRITE, admin_probe_cb, p);
	if (p->ev == NULL || event_add(p->ev, &tv) == -1)
		return false;
	return true;
}

/*
 * A probe round: one non-blocking connect to every backend address of every
 * listener of the current runtime; a listener is up when one answers.
 */
static void
admin_probe_round_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	 tv = { ADMIN_PROBE_SEC, 0 };
	struct runtime	*rt;
	size_t		 i, j, k = 0;
	uint64_t	 ms;
	bool		 up;

	(void)fd;
	(void)what;
	(void)arg;
	evtimer_add(admin_timer, &tv);
	if (round_n != 0 || (rt = runtime_current()) == NULL)
		return;		/* the previous round is still running */
	round_n = rt->cfg->nlisteners;
	round_up = xcalloc(round_n, sizeof(*round_up));
	round_names = xcalloc(round_n, sizeof(*round_names));
	for (i = 0; i < round_n; i++) {
		round_names[i] = xstrdup(rt->cfg->listeners[i].name);
		nprobes += rt->cfg->listeners[i].backend.naddrs;
	}
	probes = xcalloc(nprobes, sizeof(*probes));
	for (i = 0; i < nprobes; i++)
		probes[i].fd = -1;
	npending = nprobes + 1;		/* held until every probe started */
	for (i = 0; i < round_n; i++) {
		const struct cfg_backend *b = &rt->cfg->listeners[i].backend;

		ms = b->connect_timeout_ms;
		if (ms == 0 || ms > ADMIN_PROBE_MAX_MS)
			ms = ADMIN_PROBE_MAX_MS;
		for (j = 0; j < b->naddrs; j++, k++) {
			probes[k].li = i;
			if (!admin_probe_start(&probes[k], &b->addrs[j], ms,
			    &up)) {
				if (probes[k].fd == -1)
					npending--;
				else
					admin_probe_end(&probes[k], up);
			}
		}
	}
	runtime_unref(rt);
	if (--npending == 0)
		admin_round_done();
}

/* ------------------------------------------------------------- requests */

static void
admin_reply(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, const char *body, size_t len)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*out = evbuffer_new();

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	if (out == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void
admin_text_reply(struct evhttp_request *req, int code, const char *reason,
    const char *body)
{
	admin_reply(req, code, reason, "text/plain; charset=utf-8", body,
	    strlen(body));
}

static void
admin_readyz(struct evhttp_request *req)
{
	char	*body;

	if (draining) {
		admin_text_reply(req, 503, "Service Unavailable",
		    "draining: no longer accepting connections\n");
		return;
	}
	if (!ready_known) {
		admin_text_reply(req, 503, "Service Unavailable",
		    "starting\n");
		return;
	}
	if (ready_down[0] == '\0') {
		admin_text_reply(req, 200, "OK", "ready\n");
		return;
	}
	body = xasprintf("not ready: no backend reachable for listener(s) "
	    "%s\n", ready_down);
	admin_text_reply(req, 503, "Service Unavailable", body);
	free(body);
}

static void
admin_metrics(struct evhttp_request *req)
{
	struct runtime	*rt = runtime_current();
	size_t		 len;
	char		*text;

	text = metrics_render(rt, &len);
	runtime_unref(rt);
	admin_reply(req, 200, "OK", "text/plain; version=0.0.4; "
	    "charset=utf-8", text, len);
	free(text);
}

static void
admin_request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type	 m = evhttp_request_get_command(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;

	(void)arg;
	if (path == NULL || (strcmp(path, "/healthz") != 0 &&
	    strcmp(path, "/readyz") != 0 && strcmp(path, "/metrics") != 0)) {
		admin_text_reply(req, 404, "Not Found", "not found: try "
		    "/healthz, /readyz or /metrics\n");
		return;
	}
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		admin_text_reply(req, 405, "Method Not Allowed",
		    "method not allowed: use GET\n");
		return;
	}
	if (strcmp(path, "/healthz") == 0)
		admin_text_reply(req, 200, "OK", "ok\n");
	else if (strcmp(path, "/readyz") == 0)
		admin_readyz(req);
	else
		admin_metrics(req);
}

/* --------------------------------------------------------------- set-up */

/*
 * A unix socket file left by a previous run is removed, but only if it is
 * a socket and nobody answers on it: never another instance's live socket,
 * never a file that is not a socket.
 */
static int
admin_unix_stale(const struct sockaddr_un *sun, socklen_t len, char *err,
    size_t errlen)
{
	struct stat	st;
	int		fd, rc;

	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s",
		    strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket",
		    sun->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, len);
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "another process answers on %s (is "
		    "mtlsproxy already running?)", sun->sun_path);
		return -1;
	}
	if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the stale socket %s: %s",
		    sun->sun_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Bind and listen on the admin address; -1 with a message in err. */
static int
admin_socket(const struct addr *a, char *err, size_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	mode_t	 old = 0;
	int	 fd, e, rc, on = 1;

	if (a->kind == ADDR_UNIX && admin_unix_stale(sun, a->sslen, err,
	    len) == -1)
		return -1;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, len, "socket: %s", strerror(errno));
		return -1;
	}
	if (a->kind == ADDR_INET)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on));
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	/* The socket file is born 0660: group members may ask, others not. */
	if (a->kind == ADDR_UNIX)
		old = umask(0117);
	rc = bind(fd, (const struct sockaddr *)&a->ss, a->sslen);
	e = errno;
	if (a->kind == ADDR_UNIX)
		(void)umask(old);
	if (rc == -1) {
		snprintf(err, len, "%s%s", strerror(e), e == EADDRINUSE ?
		    " (is another process already using this address?)" :
		    e == EACCES ? " (permission denied: ports below 1024 need "
		    "root; a unix socket needs a writable folder)" : "");
		close(fd);
		return -1;
	}
	if (a->kind == ADDR_UNIX)
		(void)chmod(sun->sun_path, 0660);
	if (listen(fd, ADMIN_BACKLOG) == -1) {
		snprintf(err, len, "listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Size the metrics for the listeners, then, when admin.listen is set, serve
 * the admin endpoint on base (the main thread's).  Call after the listeners
 * are open and before the workers start; a bind failure is fatal.
 */
void
admin_start(struct event_base *base, const struct cfg *cfg)
{
	const struct addr	*a = &cfg->admin.listen;
	const char		**names;
	struct timeval		 now = { 0, 0 };
	char			 err[256];
	size_t			 i, n = listener_count();
	int			 fd;

	names = xcalloc(n, sizeof(*names));
	for (i = 0; i < n; i++)
		names[i] = listener_state(i)->name;
	metrics_init(names, n);
	free(names);
	if (a->text == NULL)
		return;
	admin_base = base;
	if ((fd = admin_socket(a, err, sizeof(err))) == -1)
		fatalx("admin endpoint: cannot listen on %s: %s", a->text,
		    err);
	if ((admin_http = evhttp_new(base)) == NULL ||
	    evhttp_accept_socket_with_handle(admin_http, fd) == NULL)
		fatalx("admin endpoint: cannot serve on %s", a->text);
	if (a->kind == ADDR_UNIX)
		admin_unix = xstrdup(((const struct sockaddr_un *)&a->ss)->
		    sun_path);
	admin_text = xstrdup(a->text);
	/* Every method reaches admin_request_cb, which answers 405. */
	evhttp_set_allowed_methods(admin_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(admin_http, 8192);
	evhttp_set_max_body_size(admin_http, 4096);
	evhttp_set_timeout(admin_http, 10);
	evhttp_set_gencb(admin_http, admin_request_cb, NULL);
	/* The first round at once, then every ADMIN_PROBE_SEC. */
	admin_timer = evtimer_new(base, admin_probe_round_cb, NULL);
	if (admin_timer == NULL || evtimer_add(admin_timer, &now) == -1)
		fatalx("admin endpoint: cannot start the readiness probe");
	log_info("admin endpoint on %s: /healthz, /readyz, /metrics",
	    a->text);
}

/* A reload is in: the admin address itself can only change by a restart. */
void
admin_reconfigure(const struct cfg *cfg)
{
	const char	*now = cfg->admin.listen.text;

	if (admin_text == NULL && now == NULL)
		return;
	if (admin_text != NULL && now != NULL && strcmp(admin_text, now) == 0)
		return;
	if (admin_text == NULL)
		log_warnx("reload: admin.listen %s is new: starting the admin "
		    "endpoint needs a restart", now);
	else if (now == NULL)
		log_warnx("reload: admin.listen was removed: the admin "
		    "endpoint keeps serving on %s until a restart", admin_text);
	else
		log_warnx("reload: admin.listen changed from %s to %s: that "
		    "needs a restart; the admin endpoint keeps serving on %s",
		    admin_text, now, admin_text);
}

/*
 * Shutting down: the listeners close, so /readyz answers 503 from now on
 * (a load balancer stops sending new clients) while /healthz and /metrics
 * go on serving until the process exits.
 */
void
admin_draining(void)
{
	draining = true;
	if (admin_timer != NULL)
		evtimer_del(admin_timer);
}

/* Close the admin endpoint and free the metrics; after the workers end. */
void
admin_stop(void)
{
	if (admin_timer != NULL)
		event_free(admin_timer);
	admin_timer = NULL;
	admin_round_free();
	if (admin_http != NULL)
		evhttp_free(admin_http);
	admin_http = NULL;
	if (admin_unix != NULL)
		(void)unlink(admin_unix);
	free(admin_unix);
	free(admin_text);
	free(ready_down);
	admin_unix = admin_text = ready_down = NULL;
	ready_known = draining = false;
	admin_base = NULL;
	metrics_free();
}
