/*
 * worker.c - worker threads, each with its own event_base and its own
 * listening sockets. The main thread never touches a worker's event_base:
 * its requests (stop and drain, kill at the drain deadline, re-check after
 * a reload, start the watchdog heartbeat) are bits set in the worker's
 * cmds and a nudge on its eventfd, read by the worker's own loop. So the
 * worker bases need no locks (EVENT_BASE_FLAG_NOLOCK): without it libevent
 * takes and releases the base's mutex about twenty times per proxied
 * request.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mtlsproxy.h"

#define WORKER_CMD_STOP		0x01
#define WORKER_CMD_KILL		0x02
#define WORKER_CMD_REAUTH	0x04
#define WORKER_CMD_BEAT		0x08

static struct worker	*workers;
static unsigned		 nworkers;
static unsigned		 nexited;	/* atomic */

/* Number of workers whose loop has ended. */
unsigned
worker_exited(void)
{
	return __atomic_load_n(&nexited, __ATOMIC_ACQUIRE);
}

/* Number of workers started. */
unsigned
worker_count(void)
{
	return nworkers;
}

static void
worker_maybe_exit(struct worker *w)
{
	if (w->stopping && __atomic_load_n(&w->nsessions, __ATOMIC_RELAXED) == 0)
		event_base_loopexit(w->base, NULL);
}

/* A session of this worker was freed. */
void
worker_session_gone(struct worker *w)
{
	__atomic_sub_fetch(&w->nsessions, 1, __ATOMIC_RELAXED);
	worker_maybe_exit(w);
}

/* Stop accepting; the loop ends once the last session has. */
static void
worker_stop(struct worker *w)
{
	struct session	*s, *next;

	if (w->stopping)
		return;
	w->stopping = true;
	listener_stop(w);
	for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		session_drain(s);
	}
	worker_maybe_exit(w);
}

/* The drain deadline: close every session left. */
static void
worker_kill(struct worker *w)
{
	struct session	*s;

	worker_stop(w);
	while ((s = TAILQ_FIRST(&w->sessions)) != NULL)
		session_close(s, "shutdown");
	worker_maybe_exit(w);
}

static void	worker_beat_cb(evutil_socket_t, short, void *);

/* Requests from the main thread (worker_post). */
static void
worker_cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct timeval	 tv;
	uint64_t	 n;
	unsigned	 cmds;

	(void)what;
	while (read(fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	cmds = __atomic_exchange_n(&w->cmds, 0, __ATOMIC_ACQ_REL);
	if ((cmds & WORKER_CMD_BEAT) && w->beat_ev == NULL) {
		tv.tv_sec = (time_t)(w->beat_usec / 1000000);
		tv.tv_usec = (suseconds_t)(w->beat_usec % 1000000);
		w->beat_ev = event_new(w->base, -1, EV_PERSIST,
		    worker_beat_cb, w);
		if (w->beat_ev == NULL || event_add(w->beat_ev, &tv) == -1)
			log_warnx("worker %u: cannot start the watchdog "
			    "heartbeat", w->idx);
	}
	if (cmds & WORKER_CMD_REAUTH)
		session_reauth_all(w);
	if (cmds & WORKER_CMD_KILL)
		worker_kill(w);
	else if (cmds & WORKER_CMD_STOP)
		worker_stop(w);
}

/* Ask worker w for cmd from the main thread. */
static void
worker_post(struct worker *w, unsigned cmd)
{
	uint64_t	one = 1;

	__atomic_or_fetch(&w->cmds, cmd, __ATOMIC_ACQ_REL);
	while (write(w->cmd_fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

/* After a reload: every worker re-checks its established connections. */
void
worker_reauth_all(void)
{
	unsigned	i;

	for (i = 0; i < nworkers; i++)
		worker_post(&workers[i], WORKER_CMD_REAUTH);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	char		 name[16];

	/* "worker N" in top -H, ps -L and /proc/PID/task/TID/comm. */
	snprintf(name, sizeof(name), "worker %u", w->idx);
	(void)pthread_setname_np(pthread_self(), name);
	event_base_dispatch(w->base);
	upstream_pool_clear(w);
	__atomic_add_fetch(&nexited, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

/*
 * A worker's event loop. With epoll, let libevent gather the interest
 * changes of one loop pass and apply them together: a connection turns
 * reading and writing on and off many times while it handshakes and
 * forwards, and without the change list each turn is an epoll_ctl call.
 * (The change list's one caveat, dup()ed descriptors, does not arise: every
 * descriptor here is a socket of its own.)
 */
static struct event_base *
worker_base_new(void)
{
	struct event_config	*ec;
	struct event_base	*b;

	if ((ec = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST |
	    EVENT_BASE_FLAG_NOLOCK);
	b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

/* Create n workers with their bases and start their threads. */
int
worker_start_all(unsigned n)
{
	sigset_t	 all, old;
	unsigned	 i;

	workers = xcalloc(n, sizeof(*workers));
	nworkers = n;
	for (i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		w->idx = i;
		w->cmd_fd = -1;
		TAILQ_INIT(&w->sessions);
		TAILQ_INIT(&w->pool);
		if ((w->base = worker_base_new()) == NULL)
			return -1;
		if ((w->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
			return -1;
		w->cmd_ev = event_new(w->base, w->cmd_fd, EV_READ | EV_PERSIST,
		    worker_cmd_cb, w);
		if (w->cmd_ev == NULL || event_add(w->cmd_ev, NULL) == -1 ||
		    listener_start(w) == -1)
			return -1;
	}
	/* Signals belong to the main thread alone. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++)
		if (pthread_create(&workers[i].thread, NULL, worker_main,
		    &workers[i]) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -1;
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* Ask every worker to stop accepting and exit once its sessions end. */
void
worker_stop_all(void)
{
	unsigned	i;

	for (i = 0; i < nworkers; i++)
		worker_post(&workers[i], WORKER_CMD_STOP);
}

/* Drain deadline: close every remaining session. */
void
worker_kill_all(void)
{
	unsigned	i;

	for (i = 0; i < nworkers; i++)
		worker_post(&workers[i], WORKER_CMD_KILL);
}

/* Wait for the worker threads and free them. */
void
worker_join_all(void)
{
	unsigned	i;

	for (i = 0; i < nworkers; i++) {
		pthread_join(workers[i].thread, NULL);
		listener_stop(&workers[i]);
		event_free(workers[i].cmd_ev);
		close(workers[i].cmd_fd);
		if (workers[i].beat_ev != NULL)
			event_free(workers[i].beat_ev);
		event_base_free(workers[i].base);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}

/* Total sessions open in all workers (approximate while running). */
unsigned
worker_sessions(void)
{
	unsigned	i, n = 0;

	for (i = 0; i < nworkers; i++)
		n += __atomic_load_n(&workers[i].nsessions, __ATOMIC_RELAXED);
	return n;
}

static void
worker_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	__atomic_add_fetch(&w->beats, 1, __ATOMIC_RELAXED);
}

/*
 * Watchdog: every worker bumps its heartbeat from a timer in its own loop
 * every usec, so the main thread can tell a stuck loop from a live one.
 */
int
worker_heartbeat_start(uint64_t usec)
{
	unsigned	i;

	for (i = 0; i < nworkers; i++) {
		workers[i].beat_usec = usec;
		worker_post(&workers[i], WORKER_CMD_BEAT);
	}
	return 0;
}

/* Heartbeats of worker i so far. */
uint64_t
worker_heartbeat(unsigned i)
{
	return __atomic_load_n(&workers[i].beats, __ATOMIC_RELAXED);
}
