/*
 * sd.c - systemd integration through libsystemd: readiness, reload and
 * stop notifications, STATUS= lines, the watchdog (pinged only while every
 * worker's event loop runs) and socket activation.  Without libsystemd
 * (HAVE_LIBSYSTEMD unset, e.g. in containers) every call is a no-op and
 * "systemd:NAME" listeners are refused at start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "mtlsproxy.h"

#define SD_STATUS_SEC	5	/* STATUS= refresh period */

/* The line -V prints about systemd support. */
const char *
sd_version(void)
{
#ifdef HAVE_LIBSYSTEMD
	return "systemd: yes (notify, watchdog and socket activation)";
#else
	return "systemd: no (notify, watchdog and socket activation are off)";
#endif
}

#ifdef HAVE_LIBSYSTEMD

static struct event	*sd_watchdog_ev;	/* owns; on the main base */
static struct event	*sd_status_ev;		/* owns; on the main base */
static uint64_t		 sd_watchdog_usec;	/* 0: no watchdog */
static uint64_t		*sd_beats;		/* owned; last seen per worker */
static unsigned		 sd_nbeats;
static bool		 sd_stalled_logged;
static bool		 sd_is_stopping;
static bool		 sd_notify_failed;
static char		 sd_last_status[256];

/* Socket activation: what systemd passed, fetched once. */
static int		 sd_nfds = -1;		/* -1: not fetched yet */
static char		**sd_fd_names;		/* owned (by libsystemd's malloc) */
static bool		*sd_fd_taken;		/* owned */

static void
sd_status_text(char *buf, size_t len)
{
	unsigned	n = worker_sessions();

	snprintf(buf, len, "%u connection%s open; %zu listener%s, %u "
	    "worker%s%s", n, n == 1 ? "" : "s", listener_count(),
	    listener_count() == 1 ? "" : "s", worker_count(),
	    worker_count() == 1 ? "" : "s",
	    sd_is_stopping ? "; draining" : "");
}

static void
sd_send(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void
sd_send(const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((r = sd_notify(0, msg)) < 0) {
		/* Under Type=notify a lost READY=1 fails the start: say so. */
		if (!sd_notify_failed)
			log_warnx("cannot notify systemd (NOTIFY_SOCKET=%s): %s",
			    getenv("NOTIFY_SOCKET"), strerror(-r));
		sd_notify_failed = true;
	}
}

/* Tell systemd that start-up is done: READY=1 with a first STATUS=. */
void
sd_ready(void)
{
	sd_status_text(sd_last_status, sizeof(sd_last_status));
	sd_send("READY=1\nSTATUS=%s", sd_last_status);
}

/* A reload begins: RELOADING=1 with the CLOCK_MONOTONIC time in µs. */
void
sd_reloading(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

/* The reload ended (whether it took or the old runtime stays): READY=1. */
void
sd_reloaded(void)
{
	sd_status_text(sd_last_status, sizeof(sd_last_status));
	sd_send("READY=1\nSTATUS=%s", sd_last_status);
}

/* SIGTERM: STOPPING=1. */
void
sd_stopping(void)
{
	sd_is_stopping = true;
	sd_status_text(sd_last_status, sizeof(sd_last_status));
	sd_send("STOPPING=1\nSTATUS=%s", sd_last_status);
}

/* Set the one-line status `systemctl status` shows. */
void
sd_status(const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sd_send("STATUS=%s", msg);
}

static void
sd_status_cb(evutil_socket_t fd, short what, void *arg)
{
	char	buf[sizeof(sd_last_status)];

	(void)fd;
	(void)what;
	(void)arg;
	sd_status_text(buf, sizeof(buf));
	if (strcmp(buf, sd_last_status) != 0) {
		memcpy(sd_last_status, buf, sizeof(buf));
		sd_send("STATUS=%s", buf);
	}
}

/*
 * Ping the watchdog only when every worker's heartbeat moved since the last
 * ping: a worker whose event loop is stuck then stops the pings, and
 * systemd restarts the service (the main thread alone being alive proves
 * nothing).  During a drain, workers whose sessions ended have left their
 * loops on purpose, so pings go on unconditionally.
 */
static void
sd_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned	i, n = worker_count(), stuck = n;
	uint64_t	beat;

	(void)fd;
	(void)what;
	(void)arg;
	if (n > sd_nbeats) {
		sd_beats = xreallocarray(sd_beats, n, sizeof(*sd_beats));
		for (i = sd_nbeats; i < n; i++)
			sd_beats[i] = worker_heartbeat(i) - 1;
		sd_nbeats = n;
	}
	for (i = 0; i < n; i++) {
		beat = worker_heartbeat(i);
		if (beat == sd_beats[i] && stuck == n)
			stuck = i;
		sd_beats[i] = beat;
	}
	if (stuck != n && !sd_is_stopping) {
		if (!sd_stalled_logged)
			log_error("worker %u: its event loop has not run for over "
			    "%llu ms; not pinging the systemd watchdog", stuck,
			    (unsigned long long)(sd_watchdog_usec / 2000));
		sd_stalled_logged = true;
		return;
	}
	if (sd_stalled_logged) {
		log_warnx("all workers run again; pinging the systemd "
		    "watchdog");
		sd_stalled_logged = false;
	}
	sd_send("WATCHDOG=1");
}

/*
 * Start the periodic STATUS= updates and, when systemd set WatchdogSec=
 * (WATCHDOG_USEC), the watchdog: workers beat every interval/4, the main
 * loop checks and pings every interval/2.  Call after the workers started.
 */
int
sd_watchdog_start(struct event_base *base)
{
	struct timeval	tv = { SD_STATUS_SEC, 0 };
	uint64_t	usec = 0;
	int		r;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	sd_status_ev = event_new(base, -1, EV_PERSIST, sd_status_cb, NULL);
	if (sd_status_ev == NULL || event_add(sd_status_ev, &tv) == -1)
		return -1;
	if ((r = sd_watchdog_enabled(0, &usec)) < 0) {
		log_warnx("systemd watchdog: %s (WATCHDOG_USEC or "
		    "WATCHDOG_PID is malformed); no watchdog pings",
		    strerror(-r));
		return 0;
	}
	if (r == 0 || usec == 0)
		return 0;
	sd_watchdog_usec = usec;
	if (worker_heartbeat_start(usec / 4) == -1)
		return -1;
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	sd_watchdog_ev = event_new(base, -1, EV_PERSIST, sd_watchdog_cb,
	    NULL);
	if (sd_watchdog_ev == NULL || event_add(sd_watchdog_ev, &tv) == -1)
		return -1;
	log_info("systemd watchdog: pinging every %llu ms while every worker "
	    "runs", (unsigned long long)(usec / 2000));
	return 0;
}

/* Free the timers; before the main event_base is freed. */
void
sd_end(void)
{
	if (sd_watchdog_ev != NULL)
		event_free(sd_watchdog_ev);
	if (sd_status_ev != NULL)
		event_free(sd_status_ev);
	sd_watchdog_ev = sd_status_ev = NULL;
	free(sd_beats);
	sd_beats = NULL;
	sd_nbeats = 0;
}

static void
sd_listen_fetch(void)
{
	int	n;

	if (sd_nfds != -1)
		return;
	/* 1: unset LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES once taken. */
	n = sd_listen_fds_with_names(1, &sd_fd_names);
	if (n < 0) {
		log_warnx("socket activation: %s (LISTEN_FDS or LISTEN_PID is "
		    "malformed); ignoring passed sockets", strerror(-n));
		n = 0;
	}
	sd_nfds = n;
	sd_fd_taken = xcalloc((size_t)n + 1, sizeof(*sd_fd_taken));
}

/*
 * Take the listening socket systemd passed under NAME (FileDescriptorName=
 * or systemd-socket-activate --fdname); the caller owns the returned fd.
 * -1 with the reason in err.
 */
int
sd_listen_take(const char *name, char *err, size_t len)
{
	char	 have[256];
	size_t	 off = 0;
	int	 i, fd, fl;

	sd_listen_fetch();
	if (sd_nfds == 0) {
		snprintf(err, len, "systemd passed no sockets (LISTEN_FDS is "
		    "not set for this process); \"systemd:%s\" needs a .socket "
		    "unit with FileDescriptorName=%s (see "
		    "systemd/mtlsproxy.socket), or systemd-socket-activate "
		    "--fdname=%s", name, name, name);
		return -1;
	}
	have[0] = '\0';
	for (i = 0; i < sd_nfds; i++) {
		const char *n = sd_fd_names != NULL && sd_fd_names[i] != NULL ?
		    sd_fd_names[i] : "unknown";

		if (strcmp(n, name) == 0)
			break;
		if (off < sizeof(have))
			off += (size_t)snprintf(have + off, sizeof(have) - off,
			    "%s\"%s\"", off == 0 ? "" : ", ", n);
	}
	if (i == sd_nfds) {
		snprintf(err, len, "systemd passed no socket named \"%s\"; it "
		    "passed %d: %s (set FileDescriptorName=%s in the .socket "
		    "unit, or change the listen address)", name, sd_nfds, have,
		    name);
		return -1;
	}
	if (sd_fd_taken[i]) {
		snprintf(err, len, "the socket named \"%s\" is already used by "
		    "another listener", name);
		return -1;
	}
	fd = SD_LISTEN_FDS_START + i;
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		snprintf(err, len, "the socket named \"%s\" is not a listening "
		    "stream socket (use ListenStream= in the .socket unit, "
		    "without Accept=yes)", name);
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		snprintf(err, len, "fcntl: %s", strerror(errno));
		return -1;
	}
	sd_fd_taken[i] = true;
	return fd;
}

/* Close the passed sockets no listener took (warn: name them). */
void
sd_listen_done(bool warn)
{
	int	i;

	if (warn)
		sd_listen_fetch();
	for (i = 0; i < sd_nfds; i++) {
		if (!sd_fd_taken[i]) {
			if (warn)
				log_warnx("socket activation: no listener "
				    "uses the socket named \"%s\"; closing it",
				    sd_fd_names != NULL &&
				    sd_fd_names[i] != NULL ? sd_fd_names[i] :
				    "unknown");
			close(SD_LISTEN_FDS_START + i);
		}
		if (sd_fd_names != NULL)
			free(sd_fd_names[i]);
	}
	free(sd_fd_names);
	free(sd_fd_taken);
	sd_fd_names = NULL;
	sd_fd_taken = NULL;
	sd_nfds = 0;
}

#else /* !HAVE_LIBSYSTEMD */

void
sd_ready(void)
{
}

void
sd_reloading(void)
{
}

void
sd_reloaded(void)
{
}

void
sd_stopping(void)
{
}

void
sd_status(const char *fmt, ...)
{
	(void)fmt;
}

int
sd_watchdog_start(struct event_base *base)
{
	(void)base;
	return 0;
}

void
sd_end(void)
{
}

int
sd_listen_take(const char *name, char *err, size_t len)
{
	snprintf(err, len, "this build has no systemd support (built without "
	    "libsystemd), so \"systemd:%s\" cannot be used; listen on an "
	    "address such as \"0.0.0.0:8443\" instead", name);
	return -1;
}

void
sd_listen_done(bool warn)
{
	(void)warn;
}

#endif /* HAVE_LIBSYSTEMD */
