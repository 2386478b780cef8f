/*
 * main.c - command line, configuration check, start-up, and the signal
 * loop of the main thread (SIGTERM/SIGINT drain).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
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
	    "       mtlsproxy check [-c FILE] [--strict]\n"
	    "       mtlsproxy explain [-c FILE] [--listener NAME] --cert FILE\n"
	    "                         [--chain FILE] [--at DATE]\n"
	    "       mtlsproxy -V | --version | -h | --help\n"
	    "\n"
	    "An mTLS-enforcing reverse proxy: requires and verifies a client\n"
	    "certificate on every connection, applies an identity policy and\n"
	    "forwards the traffic to a plaintext backend.\n"
	    "\n"
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --test         check the configuration and every\n"
	    "                     certificate, key, CA and CRL it names, then\n"
	    "                     exit (0: valid, 1: errors)\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "  check     as -t, plus warnings about what breaks soon (expiring\n"
	    "            certificates and CRLs, a missing intermediate, allow\n"
	    "            entries no certificate can match); see check --help\n"
	    "  explain   why a client certificate is allowed or refused, by\n"
	    "            the daemon's own checks, offline; see explain --help\n"
	    "\n"
	    "Exit status: 0 ok, 1 a configuration error or a failed start,\n"
	    "2 a usage error.\n"
	    "\n"
	    "Signals: SIGTERM or SIGINT stop accepting, let open connections\n"
	    "finish up to drain_timeout, then exit 0 (a second one closes\n"
	    "them at once). SIGHUP reloads the configuration and every file\n"
	    "it names; on an error the running configuration stays.\n"
	    "SIGUSR1 and SIGUSR2 are ignored (logged: there is no log file\n"
	    "to reopen).\n",
	    MTLSPROXY_CONFIG);
}

/*
 * A usage error of the main command: one line saying what is wrong, and
 * where to look, instead of the whole help; exit status 2, apart from the
 * 1 of a configuration error.
 */
static int PRINTF_LIKE(1, 2)
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "mtlsproxy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\ntry 'mtlsproxy --help'\n");
	return 2;
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
	    "PKCS#12, CRL, admin endpoint (/healthz, /readyz, /metrics)\n");
	printf("%s\n", sd_version());
}

/*
 * Load and build everything a configuration names; NULL if any error.
 * test (-t): also what a start checks later, the user and group.
 */
static struct runtime *
load(const char *path, bool test)
{
	struct errlist	 errs = { NULL, 0 };
	struct runtime	*rt = NULL;
	struct cfg	*cfg;
	size_t		 i;
	int		 priv = 0;

	if ((cfg = cfg_load_partial(path, &errs)) != NULL && errs.n > 0) {
		/* Every problem at once: the files of sound listeners too. */
		runtime_check_files(cfg, &errs);
		if (test)
			(void)priv_check(cfg, &errs);
		cfg_free(cfg);
		cfg = NULL;
	}
	if (cfg != NULL) {
		if (test)
			priv = priv_check(cfg, &errs);
		rt = runtime_new(cfg, &errs);
	}
	if (rt != NULL && priv == -1) {
		runtime_unref(rt);
		rt = NULL;
	}
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

static const char	*config_path = MTLSPROXY_CONFIG;
static unsigned		 reload_failures;

/* What the process started with, of the settings only a restart changes. */
static char		*run_user, *run_group;	/* owned */
static int		 run_reload;

static const char *
reload_mode_name(int mode)
{
	return mode == RELOAD_WATCH ? "watch" : "signal";
}

static void
restart_only_str(const char *key, const char *now, const char *run)
{
	char	was[128], new[128];

	if (now == run || (now != NULL && run != NULL &&
	    strcmp(now, run) == 0))
		return;
	if (run != NULL)
		snprintf(was, sizeof(was), "\"%s\"", run);
	else
		snprintf(was, sizeof(was), "(none)");
	if (now != NULL)
		snprintf(new, sizeof(new), "\"%s\"", now);
	else
		snprintf(new, sizeof(new), "(none)");
	log_warnx("reload: \"%s\" changed from %s to %s: that needs a "
	    "restart; keeping %s", key, was, new, was);
}

/*
 * A reload cannot change these: warn when the new configuration differs
 * from what runs (not from the configuration loaded last, which may have
 * asked for a change that was not made).
 */
static void
restart_only_check(const struct cfg *cfg)
{
	if (cfg->workers != worker_count())
		log_warnx("reload: \"workers\" changed from %u to %u: that "
		    "needs a restart; keeping %u", worker_count(),
		    cfg->workers, worker_count());
	restart_only_str("user", cfg->user, run_user);
	restart_only_str("group", cfg->group, run_group);
	if (cfg->reload != run_reload)
		log_warnx("reload: \"reload\" changed from %s to %s: that "
		    "needs a restart; keeping %s",
		    reload_mode_name(run_reload), reload_mode_name(cfg->reload),
		    reload_mode_name(run_reload));
}

/*
 * Reload: read the configuration and every file it names again, build a
 * complete new runtime, and only then swap it in.  On any error the old
 * runtime keeps serving.  Established connections keep the runtime they
 * started with but are re-authorized under the new one.
 */
static int
reload(const char *why)
{
	struct errlist	 errs = { NULL, 0 };
	struct runtime	*rt = NULL;
	struct cfg	*cfg;
	size_t		 i;

	if (draining)
		return 0;
	log_info("reloading %s (%s)", config_path, why);
	sd_reloading();
	if ((cfg = cfg_load_partial(config_path, &errs)) != NULL &&
	    errs.n > 0) {
		runtime_check_files(cfg, &errs);
		cfg_free(cfg);
		cfg = NULL;
	}
	if (cfg != NULL) {
		if (listener_reconcile(cfg, &errs) == 0)
			rt = runtime_new(cfg, &errs);
		else
			cfg_free(cfg);
	}
	if (rt == NULL) {
		for (i = 0; i < errs.n; i++)
			log_error("reload: %s", errs.v[i]);
		log_error("reload failed (%zu error%s): still serving with the "
		    "previous configuration", errs.n, errs.n == 1 ? "" : "s");
		errlist_free(&errs);
		metrics_reload(false);
		sd_reloaded();
		return -1;
	}
	errlist_free(&errs);
	reload_failures = 0;
	restart_only_check(rt->cfg);
	log_set(rt->cfg->log_level, rt->cfg->log_format);
	listener_fd_limit(rt->cfg);
	listener_apply(rt->cfg);
	watch_update(rt->cfg);
	admin_reconfigure(rt->cfg);
	runtime_set_current(rt);
	metrics_reload(true);
	worker_reauth_all();
	log_info("reloaded: generation %llu in use for new connections",
	    (unsigned long long)rt->generation);
	sd_reloaded();
	return 0;
}

/*
 * SIGUSR1 and SIGUSR2 would end the process by default.  Tools send them
 * to daemons that reopen a log file (nginx, logrotate scripts): there is
 * none here, so they are ignored, but said, so the sender learns what to
 * send instead.
 */
static void
signal_usr_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("%s ignored: mtlsproxy logs to stderr (the journal), so "
	    "there is no log file to reopen; reload is SIGHUP",
	    sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
}

static void
signal_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	(void)reload("SIGHUP");
}

/*
 * A watched file changed (or a retry is due): a failure retries after 1,
 * 2, 4, 8, 16, then 30 s (the writer may be halfway through a pair), up to
 * RELOAD_RETRIES times; a new change starts the count again.
 */
static void
files_changed(bool changed)
{
	unsigned	s;

	if (changed)
		reload_failures = 0;
	if (reload(changed ? "files changed" :
	    "trying again after a failed reload") == 0)
		return;
	if ((s = reload_retry_delay(++reload_failures)) == 0) {
		log_warnx("reload failed %u times in a row after a file change: "
		    "no more retries; the next change of a watched file or "
		    "SIGHUP reloads again", reload_failures);
		return;
	}
	log_info("will try the reload again in %u s", s);
	watch_retry(1000u * s);
}

static void
signal_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct runtime	*rt = runtime_current();
	struct timeval	 tv;
	uint64_t	 ms = rt->cfg->drain_timeout_ms;

	(void)what;
	(void)arg;
	runtime_unref(rt);
	if (draining) {
		log_warnx("%s again: closing all connections now",
		    strsignal((int)sig));
		worker_kill_all();
		return;
	}
	draining = true;
	sd_stopping();
	admin_draining();
	log_info("%s: no longer accepting; draining %u connection(s) for up "
	    "to %llu ms", strsignal((int)sig), worker_sessions(),
	    (unsigned long long)ms);
	worker_stop_all();
	tv = ms_timeval(ms);
	evtimer_add(drain_ev, &tv);
	poll_cb(-1, 0, NULL);
}

int
main(int argc, char *argv[])
{
	struct event	*sigterm, *sigint, *sighup, *sigusr1, *sigusr2;
	struct runtime	*rt;
	const char	*path = MTLSPROXY_CONFIG, *arg, *first;
	bool		 test = false, watching = false, help = false;
	bool		 show_version = false;
	int		 ch;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "explain") == 0)
		return explain_main(argc - 1, argv + 1);
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};

	/* Usage errors are ours to word (exit 2), not getopt's. */
	first = argc > 1 ? argv[1] : NULL;	/* before getopt reorders */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:thV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			if (*optarg == '\0')
				return usage_error("option \"-c\" needs a "
				    "file name, got an empty one");
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'V':
			show_version = true;
			break;
		case 'h':
			help = true;
			break;
		case ':':
			arg = argv[optind - 1];
			return usage_error("option \"%s\" needs an argument "
			    "(the configuration file)",
			    strncmp(arg, "--", 2) == 0 ? arg : "-c");
		default:
			arg = argv[optind - 1];
			if (strncmp(arg, "--", 2) != 0)
				return usage_error("unknown option \"-%c\"",
				    optopt);
			/* optopt is set for --help=x, 0 for --bogus */
			if (optopt != 0 && strchr(arg, '=') != NULL)
				return usage_error("option \"%.*s\" takes no "
				    "argument", (int)strcspn(arg, "="), arg);
			return usage_error("unknown option \"%s\"", arg);
		}
	}
	if (optind != argc && strpbrk(argv[optind], "./") != NULL)
		return usage_error("unexpected argument \"%s\" (a "
		    "configuration file is given with -c: -c %s)",
		    argv[optind], argv[optind]);
	if (optind != argc && argv[optind] == first)
		return usage_error("unexpected argument \"%s\" (the commands "
		    "are check and explain; -t checks a configuration)",
		    argv[optind]);
	if (optind != argc)
		return usage_error("unexpected argument \"%s\"",
		    argv[optind]);
	if (help) {
		usage(stdout);
		return 0;
	}
	if (show_version) {
		version();
		return 0;
	}
	if (tls_init() == -1) {
		fprintf(stderr, "mtlsproxy: cannot initialise OpenSSL\n");
		return 1;
	}
	config_path = path;
	if ((rt = load(path, test)) == NULL)
		return 1;
	if (test) {
		printf("configuration %s is valid: %zu listener%s\n", path,
		    rt->cfg->nlisteners, rt->cfg->nlisteners == 1 ? "" : "s");
		runtime_unref(rt);
		return 0;
	}
	log_init(rt->cfg->log_level, rt->cfg->log_format);
	listener_fd_limit(rt->cfg);
	signal(SIGPIPE, SIG_IGN);
	/* Until the event loop takes them over (signal_usr_cb). */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("libevent has no thread support");
	runtime_set_current(runtime_ref(rt));
	if (listener_open_all(rt, rt->cfg->workers) == -1) {
		listener_close_all();
		runtime_set_current(NULL);
		runtime_unref(rt);
		return 1;
	}
	if (priv_drop(rt->cfg) == -1) {
		listener_close_all();
		runtime_set_current(NULL);
		runtime_unref(rt);
		return 1;
	}
	if (rt->cfg->user != NULL)
		run_user = xstrdup(rt->cfg->user);
	if (rt->cfg->group != NULL)
		run_group = xstrdup(rt->cfg->group);
	run_reload = rt->cfg->reload;
	if ((main_base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	sigterm = evsignal_new(main_base, SIGTERM, signal_stop_cb, NULL);
	sigint = evsignal_new(main_base, SIGINT, signal_stop_cb, NULL);
	sighup = evsignal_new(main_base, SIGHUP, signal_hup_cb, NULL);
	sigusr1 = evsignal_new(main_base, SIGUSR1, signal_usr_cb, NULL);
	sigusr2 = evsignal_new(main_base, SIGUSR2, signal_usr_cb, NULL);
	drain_ev = evtimer_new(main_base, drain_deadline_cb, NULL);
	poll_ev = evtimer_new(main_base, poll_cb, NULL);
	if (sigterm == NULL || sigint == NULL || sighup == NULL ||
	    sigusr1 == NULL || sigusr2 == NULL ||
	    drain_ev == NULL || poll_ev == NULL ||
	    evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1 ||
	    evsignal_add(sighup, NULL) == -1 ||
	    evsignal_add(sigusr1, NULL) == -1 ||
	    evsignal_add(sigusr2, NULL) == -1)
		fatalx("cannot set up signal handling");
	if (rt->cfg->reload == RELOAD_WATCH)
		watching = watch_start(main_base, rt->cfg, files_changed) == 0;
	admin_start(main_base, rt->cfg);
	if (worker_start_all(rt->cfg->workers) == -1)
		fatalx("cannot start worker threads");
	log_info("mtlsproxy %s started: %zu listener%s, %u worker%s, pid %ld",
	    MTLSPROXY_VERSION, rt->cfg->nlisteners,
	    rt->cfg->nlisteners == 1 ? "" : "s", rt->cfg->workers,
	    rt->cfg->workers == 1 ? "" : "s", (long)getpid());
	if (sd_watchdog_start(main_base) == -1)
		fatalx("cannot start the systemd watchdog timer");
	sd_ready();
	/* From here on the current runtime is what counts (reloads). */
	runtime_unref(rt);

	event_base_dispatch(main_base);

	worker_join_all();
	admin_stop();
	listener_close_all();
	if (watching)
		watch_stop();
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_free(sigusr1);
	event_free(sigusr2);
	event_free(drain_ev);
	event_free(poll_ev);
	sd_end();
	event_base_free(main_base);
	runtime_set_current(NULL);
	free(run_user);
	free(run_group);
	log_info("stopped");
	libevent_global_shutdown();
	return 0;
}
