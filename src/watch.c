/*
 * watch.c - reload when a file the configuration names changes: the
 * config itself, certificates, keys, passphrase files, CAs, CRLs, ticket
 * keys.  The folders are watched with inotify, not only the files, so an
 * atomic rename (cert-manager, certbot's symlinks, the Kubernetes Secret
 * "..data" swap) is seen too; events are debounced.
 */
#include <sys/inotify.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "mtlsproxy.h"

#define WATCH_DEBOUNCE_MS	500

struct watch_dir {
	int		 wd;
	char		*path;		/* owned */
	struct strlist	 names;		/* basenames of interest */
};

static int		 watch_fd = -1;
static struct event	*watch_ev, *watch_timer;
static struct watch_dir	*dirs;
static size_t		 ndirs;
static void		(*watch_cb)(bool);
static bool		 watch_changed;	/* since the last callback */

static struct watch_dir *
watch_dir_get(const char *dir)
{
	size_t	i;

	for (i = 0; i < ndirs; i++)
		if (strcmp(dirs[i].path, dir) == 0)
			return &dirs[i];
	dirs = xreallocarray(dirs, ndirs + 1, sizeof(*dirs));
	memset(&dirs[ndirs], 0, sizeof(dirs[ndirs]));
	dirs[ndirs].wd = inotify_add_watch(watch_fd, dir, IN_CLOSE_WRITE |
	    IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB);
	if (dirs[ndirs].wd == -1)
		log_errno(LOG_LEVEL_WARN, "cannot watch %s for changes", dir);
	dirs[ndirs].path = xstrdup(dir);
	return &dirs[ndirs++];
}

/* Watch the folder of path, and of the file it points to if a link. */
static void
watch_add(const char *path)
{
	char	 buf[PATH_MAX], real[PATH_MAX];
	char	*dir, *base;
	struct watch_dir *d;

	if (path == NULL)
		return;
	snprintf(buf, sizeof(buf), "%s", path);
	base = xstrdup(basename(buf));
	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	d = watch_dir_get(dir);
	if (!strlist_contains(&d->names, base))
		strlist_add(&d->names, base);
	free(base);
	if (realpath(path, real) != NULL && strcmp(real, path) != 0) {
		snprintf(buf, sizeof(buf), "%s", real);
		base = xstrdup(basename(buf));
		snprintf(buf, sizeof(buf), "%s", real);
		d = watch_dir_get(dirname(buf));
		if (!strlist_contains(&d->names, base))
			strlist_add(&d->names, base);
		free(base);
	}
}

static void
watch_clear(void)
{
	size_t	i;

	for (i = 0; i < ndirs; i++) {
		if (dirs[i].wd != -1 && watch_fd != -1)
			(void)inotify_rm_watch(watch_fd, dirs[i].wd);
		free(dirs[i].path);
		strlist_free(&dirs[i].names);
	}
	free(dirs);
	dirs = NULL;
	ndirs = 0;
}

/* Every file a configuration names. */
static void
watch_files(const struct cfg *cfg)
{
	size_t	i, j;
	char	*p;

	watch_add(cfg->path);
	for (i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		watch_add(l->tls.cert.path);
		watch_add(l->tls.key.path);
		watch_add(l->tls.pkcs12.path);
		watch_add(l->tls.session_ticket_key_file.path);
		if (l->tls.key_passphrase_file.path != NULL) {
			p = tls_passphrase_path(cfg,
			    l->tls.key_passphrase_file.path);
			watch_add(p);
			free(p);
		}
		if (l->tls.pkcs12_passphrase_file.path != NULL) {
			p = tls_passphrase_path(cfg,
			    l->tls.pkcs12_passphrase_file.path);
			watch_add(p);
			free(p);
		}
		watch_add(l->client_auth.ca.path);
		watch_add(l->client_auth.crl.path);
		for (j = 0; j < l->client_auth.n_trusted_certs; j++)
			watch_add(l->client_auth.trusted_certs[j].path);
	}
}

static bool
watch_interesting(int wd, const char *name)
{
	size_t	i;

	for (i = 0; i < ndirs; i++) {
		if (dirs[i].wd != wd)
			continue;
		/* Kubernetes swaps the "..data" link of a mounted Secret. */
		if (strncmp(name, "..", 2) == 0)
			return true;
		if (strlist_contains(&dirs[i].names, name))
			return true;
	}
	return false;
}

static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char				 buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	struct timeval			 tv = { 0, WATCH_DEBOUNCE_MS * 1000 };
	ssize_t				 n;
	char				*p;
	bool				 hit = false;

	(void)what;
	(void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;
			else if (ev->len > 0 && watch_interesting(ev->wd,
			    ev->name))
				hit = true;
		}
	}
	/* Wait until the writer is done: a pair is often written in steps. */
	if (hit) {
		watch_changed = true;
		evtimer_add(watch_timer, &tv);
	}
}

static void
watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	bool	changed;

	(void)fd;
	(void)what;
	(void)arg;
	changed = watch_changed;
	watch_changed = false;
	watch_cb(changed);
}

/*
 * Start watching the files of cfg; cb runs (debounced) on changes, and
 * after watch_retry(); its argument says whether files changed since.
 */
int
watch_start(struct event_base *base, const struct cfg *cfg, void (*cb)(bool))
{
	watch_cb = cb;
	if ((watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		log_errno(LOG_LEVEL_WARN, "cannot watch files (reload on "
		    "SIGHUP still works)");
		return -1;
	}
	watch_ev = event_new(base, watch_fd, EV_READ | EV_PERSIST,
	    watch_read_cb, NULL);
	watch_timer = evtimer_new(base, watch_timer_cb, NULL);
	if (watch_ev == NULL || watch_timer == NULL ||
	    event_add(watch_ev, NULL) == -1)
		return -1;
	watch_files(cfg);
	log_debug("watching %zu folder(s) for changes", ndirs);
	return 0;
}

/* The configuration changed: watch its files instead. */
void
watch_update(const struct cfg *cfg)
{
	if (watch_fd == -1)
		return;
	watch_clear();
	watch_files(cfg);
}

/* Try again later (a reload after a change failed: maybe half-written). */
void
watch_retry(unsigned ms)
{
	struct timeval	tv = ms_timeval(ms);

	if (watch_timer != NULL)
		evtimer_add(watch_timer, &tv);
}

/* Stop watching and free everything. */
void
watch_stop(void)
{
	watch_clear();
	if (watch_ev != NULL)
		event_free(watch_ev);
	if (watch_timer != NULL)
		event_free(watch_timer);
	watch_ev = watch_timer = NULL;
	if (watch_fd != -1)
		close(watch_fd);
	watch_fd = -1;
}
