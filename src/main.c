/*
 * main.c - command line, configuration check, start-up, and the signal
 * loop of the main thread (SIGTERM/SIGINT drain).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/opensslv.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "mtlsproxy.h"

static struct event_base	*main_base;
static struct event		*drain_ev, *poll_ev;
static bool			 draining;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: mtlsproxy [-t] [-c FILE]\n"
	    "       mtlsproxy -V | -h\n"
	    "\n"
	    "An mTLS-enforcing reverse proxy: requires and verifies a client\n"
	    "certificate on every connection, applies an identity policy and\n"
	    "forwards the traffic to a plaintext backend.\n"
	    "\n"
	    "  -c FILE   configuration file (default %s)\n"
	    "  -t        check the configuration and every certificate, key,\n"
	    "            CA and CRL it names, then exit (0: valid, 1: errors)\n"
	    "  -V        print the version and exit\n"
	    "  -h        print this help and exit\n"
	    "\n"
	    "Signals: SIGTERM or SIGINT stop accepting, let open connections\n"
	    "finish up to drain_timeout, then exit 0.\n",
	    MTLSPROXY_CONFIG);
}

static void
version(void)
{
	printf("mtlsproxy %s\n", MTLSPROXY_VERSION);
	printf("built with %s, libevent %s\n", OPENSSL_VERSION_TEXT,
	    LIBEVENT_VERSION);
	printf("running with %s, libevent %s\n",
	    OpenSSL_version(OPENSSL_VERSION), event_get_version());
	printf("features: tcp and http modes, identity headers (default, "
	    "nginx, envoy), PROXY protocol v2, unix-socket backends, "
	    "PKCS#12, CRL\n");
	printf("not in this version: reload, systemd notify and socket "
	    "activation, admin endpoint\n");
}

/* Load and build everything a configuration names; NULL if any error. */
static struct runtime *
load(const char *path)
{
	struct errlist	 errs = { NULL, 0 };
	struct runtime	*rt = NULL;
	struct cfg	*cfg;
	size_t		 i;

	if ((cfg = cfg_load(path, &errs)) != NULL)
		rt = runtime_new(cfg, &errs);
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	if (rt == NULL)
		fprintf(stderr, "mtlsproxy: %zu error%s in %s\n", errs.n,
		    errs.n == 1 ? "" : "s", path);
	errlist_free(&errs);
	return rt;
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { 0, 50 * 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (worker_exited() == worker_count()) {
		event_base_loopexit(main_base, NULL);
		return;
	}
	evtimer_add(poll_ev, &tv);
}

static void
drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_warnx("drain deadline passed: closing %u open connection(s)",
	    worker_sessions());
	worker_kill_all();
}

static void
signal_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct runtime	*rt = arg;
	struct timeval	 tv;
	uint64_t	 ms = rt->cfg->drain_timeout_ms;

	(void)what;
	if (draining) {
		log_warnx("%s again: closing all connections now",
		    strsignal((int)sig));
		worker_kill_all();
		return;
	}
	draining = true;
	log_info("%s: no longer accepting; draining %u connection(s) for up "
	    "to %llu ms", strsignal((int)sig), worker_sessions(),
	    (unsigned long long)ms);
	worker_stop_all();
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(drain_ev, &tv);
	poll_cb(-1, 0, NULL);
}

int
main(int argc, char *argv[])
{
	struct event	*sigterm, *sigint;
	struct runtime	*rt;
	const char	*path = MTLSPROXY_CONFIG;
	bool		 test = false;
	int		 ch;

	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'V':
			version();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mtlsproxy: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 1;
	}
	if (tls_init() == -1) {
		fprintf(stderr, "mtlsproxy: cannot initialise OpenSSL\n");
		return 1;
	}
	if ((rt = load(path)) == NULL)
		return 1;
	if (test) {
		printf("configuration %s is valid: %zu listener%s\n", path,
		    rt->cfg->nlisteners, rt->cfg->nlisteners == 1 ? "" : "s");
		runtime_unref(rt);
		return 0;
	}
	log_init(rt->cfg->log_level, rt->cfg->log_format);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("libevent has no thread support");
	runtime_set_current(runtime_ref(rt));
	if (listener_open_all(rt, rt->cfg->workers) == -1) {
		listener_close_all();
		runtime_set_current(NULL);
		runtime_unref(rt);
		return 1;
	}
	if ((main_base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	sigterm = evsignal_new(main_base, SIGTERM, signal_stop_cb, rt);
	sigint = evsignal_new(main_base, SIGINT, signal_stop_cb, rt);
	drain_ev = evtimer_new(main_base, drain_deadline_cb, NULL);
	poll_ev = evtimer_new(main_base, poll_cb, NULL);
	if (sigterm == NULL || sigint == NULL || drain_ev == NULL ||
	    poll_ev == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1)
		fatalx("cannot set up signal handling");
	if (worker_start_all(rt->cfg->workers) == -1)
		fatalx("cannot start worker threads");
	log_info("mtlsproxy %s started: %zu listener%s, %u worker%s, pid %ld",
	    MTLSPROXY_VERSION, rt->cfg->nlisteners,
	    rt->cfg->nlisteners == 1 ? "" : "s", rt->cfg->workers,
	    rt->cfg->workers == 1 ? "" : "s", (long)getpid());

	event_base_dispatch(main_base);

	worker_join_all();
	listener_close_all();
	event_free(sigterm);
	event_free(sigint);
	event_free(drain_ev);
	event_free(poll_ev);
	event_base_free(main_base);
	runtime_set_current(NULL);
	runtime_unref(rt);
	log_info("stopped");
	libevent_global_shutdown();
	return 0;
}
