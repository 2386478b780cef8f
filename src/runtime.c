/*
 * runtime.c - an immutable, reference-counted build of one configuration:
 * the cfg tree plus a TLS server (SSL_CTX, stores, policy) per listener.
 * Connections hold the runtime they started with; a reload swaps in a new one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mtlsproxy.h"

static pthread_mutex_t	 runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime	*runtime_cur;
static uint64_t		 runtime_generation;

static struct backend_state *
backend_state_new(size_t naddrs)
{
	struct backend_state	*st;

	st = xcalloc(1, sizeof(*st));
	st->refs = 1;
	st->naddrs = naddrs;
	st->down_until = xcalloc(naddrs, sizeof(uint64_t));
	st->active = xcalloc(naddrs, sizeof(int));
	return st;
}

static void
backend_state_unref(struct backend_state *st)
{
	if (st == NULL || __atomic_sub_fetch(&st->refs, 1,
	    __ATOMIC_ACQ_REL) != 0)
		return;
	free(st->down_until);
	free(st->active);
	free(st);
}

/* Build a runtime; takes ownership of cfg. NULL with messages in errs. */
struct runtime *
runtime_new(struct cfg *cfg, struct errlist *errs)
{
	struct runtime	*rt;
	size_t		 i;
	int		 failed = 0;

	rt = xcalloc(1, sizeof(*rt));
	rt->refs = 1;
	rt->cfg = cfg;
	rt->servers = xcalloc(cfg->nlisteners, sizeof(*rt->servers));
	for (i = 0; i < cfg->nlisteners; i++) {
		if (tls_server_init(&rt->servers[i], cfg, &cfg->listeners[i],
		    errs) == -1)
			failed = 1;
		else
			rt->nservers = i + 1;
	}
	rt->nservers = cfg->nlisteners;
	rt->backends = xcalloc(cfg->nlisteners, sizeof(*rt->backends));
	for (i = 0; i < cfg->nlisteners; i++)
		rt->backends[i] = backend_state_new(
		    cfg->listeners[i].backend.naddrs);
	if (failed) {
		runtime_unref(rt);
		return NULL;
	}
	rt->generation = ++runtime_generation;
	return rt;
}

/*
 * A config with errors: still load the certificates, keys, CAs and CRLs of
 * the sections read without one, so that their problems are reported in
 * the same run as the config's.
 */
void
runtime_check_files(const struct cfg *cfg, struct errlist *errs)
{
	size_t	i;

	for (i = 0; i < cfg->nlisteners; i++)
		tls_server_check(cfg, &cfg->listeners[i], errs);
}

/* Take a reference. */
struct runtime *
runtime_ref(struct runtime *rt)
{
	__atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
	return rt;
}

/* Drop a reference; the last one frees everything. */
void
runtime_unref(struct runtime *rt)
{
	size_t	i;

	if (rt == NULL || __atomic_sub_fetch(&rt->refs, 1,
	    __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < rt->nservers; i++) {
		tls_server_clear(&rt->servers[i]);
		if (rt->backends != NULL)
			backend_state_unref(rt->backends[i]);
	}
	free(rt->servers);
	free(rt->backends);
	cfg_free(rt->cfg);
	free(rt);
}

/* The runtime new connections use, with a reference for the caller. */
struct runtime *
runtime_current(void)
{
	struct runtime	*rt;

	pthread_mutex_lock(&runtime_lock);
	rt = runtime_cur ? runtime_ref(runtime_cur) : NULL;
	pthread_mutex_unlock(&runtime_lock);
	return rt;
}

/* Whether two listeners forward to the same addresses, in the same order. */
static bool
backend_same(const struct cfg_listener *a, const struct cfg_listener *b)
{
	size_t	i;

	if (strcmp(a->name, b->name) != 0 ||
	    a->backend.naddrs != b->backend.naddrs)
		return false;
	for (i = 0; i < a->backend.naddrs; i++)
		if (a->backend.addrs[i].kind != b->backend.addrs[i].kind ||
		    strcmp(a->backend.addrs[i].text,
		    b->backend.addrs[i].text) != 0)
			return false;
	return true;
}

/*
 * A listener that keeps its name and backend addresses across a reload
 * goes on with what the old runtime knew of them: the connections in use
 * (so least_conn counts those made before the reload), the addresses
 * passed over, and where round_robin is. rt is not yet seen by any worker.
 */
static void
runtime_adopt(struct runtime *rt, const struct runtime *old)
{
	size_t	i, j;

	for (i = 0; i < rt->nservers; i++)
		for (j = 0; j < old->nservers; j++) {
			if (!backend_same(&rt->cfg->listeners[i],
			    &old->cfg->listeners[j]))
				continue;
			backend_state_unref(rt->backends[i]);
			rt->backends[i] = old->backends[j];
			__atomic_add_fetch(&rt->backends[i]->refs, 1,
			    __ATOMIC_RELAXED);
			break;
		}
}

/* Make rt current (takes the caller's reference); drops the old one. */
void
runtime_set_current(struct runtime *rt)
{
	struct runtime	*old;

	pthread_mutex_lock(&runtime_lock);
	old = runtime_cur;
	if (rt != NULL && old != NULL && rt != old)
		runtime_adopt(rt, old);
	runtime_cur = rt;
	pthread_mutex_unlock(&runtime_lock);
	runtime_unref(old);
}
