/*
 * util.c - allocation, string lists, error lists, durations and addresses.
 * Free of libevent so the unit tests link it alone.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mtlsproxy.h"

/* Allocate or die: running out of memory at this size is not recoverable. */
void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		fatalx("out of memory");
	return p;
}

/* Allocate zeroed memory or die. */
void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		fatalx("out of memory");
	return p;
}

/* Resize an array or die, checking the multiplication. */
void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void	*p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		fatalx("allocation overflow");
	if ((p = realloc(ptr, nmemb * size == 0 ? 1 : nmemb * size)) == NULL)
		fatalx("out of memory");
	return p;
}

/* Duplicate a string or die. */
char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatalx("out of memory");
	return p;
}

/* Format into a new string or die. */
char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		fatalx("out of memory");
	return p;
}

/* A duration in milliseconds as a struct timeval (libevent timeouts). */
struct timeval
ms_timeval(uint64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* Append a copy of a string. */
void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

/* Free the strings and the array; the list becomes empty. */
void
strlist_free(struct strlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* True if the list holds exactly this string. */
bool
strlist_contains(const struct strlist *l, const char *s)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/*
 * The line and column of a "file:line:col: text" message, or 0 and 0 for
 * one without (such as "file: cannot read config: ...").  The place ends
 * before the first ": ", so digits in the text are never taken for it.
 */
static void
errlist_loc(const char *m, unsigned long *line, unsigned long *col)
{
	const char	*p, *end = strstr(m, ": ");
	char		*q;

	*line = *col = 0;
	if (end == NULL)
		return;
	for (p = strchr(m, ':'); p != NULL && p < end; p = strchr(p + 1, ':')) {
		if (!isdigit((unsigned char)p[1]))
			continue;
		*line = strtoul(p + 1, &q, 10);
		if (*q == ':' && isdigit((unsigned char)q[1])) {
			*col = strtoul(q + 1, &q, 10);
			if (q == end)
				return;
		}
	}
	*line = *col = 0;
}

/*
 * Add a formatted message, in file order: after every message at the same
 * or an earlier line and column.  The configuration's own mistakes and
 * those of the files it names are found in separate passes, but read best
 * top to bottom.  Messages without a place come first, in the order added.
 */
void
errlist_add(struct errlist *e, const char *fmt, ...)
{
	va_list		 ap;
	char		*p;
	unsigned long	 line, col, l, c;
	size_t		 i;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
	errlist_loc(p, &line, &col);
	for (i = e->n; i > 0; i--) {
		errlist_loc(e->v[i - 1], &l, &c);
		if (l < line || (l == line && c <= col))
			break;
	}
	e->v = xreallocarray(e->v, e->n + 1, sizeof(*e->v));
	memmove(e->v + i + 1, e->v + i, (e->n - i) * sizeof(*e->v));
	e->v[i] = p;
	e->n++;
}

/* Free all messages. */
void
errlist_free(struct errlist *e)
{
	size_t	i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

/*
 * Parse a duration: "250ms", "10s", "5m", "2h", "1d" (the unit in any
 * case, as sizes and enums are), or a bare number of seconds.  Returns 0
 * and the value in milliseconds, or -1 with a reason.
 */
int
duration_parse(const char *s, uint64_t *ms, const char **why)
{
	unsigned long long	 v;
	uint64_t		 mult, frac = 0, scale = 1;
	char			*end;

	if (s == NULL || !isdigit((unsigned char)*s)) {
		*why = "must start with a number";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE) {
		*why = "too large";
		return -1;
	}
	if (*end == '.') {	/* 1.5s, 0.25m: a whole number of ms */
		for (end++; isdigit((unsigned char)*end); end++) {
			if (scale >= 1000000000) {
				*why = "too many decimals";
				return -1;
			}
			frac = frac * 10 + (uint64_t)(*end - '0');
			scale *= 10;
		}
		if (scale == 1) {
			*why = "a digit must follow the decimal point";
			return -1;
		}
	}
	if (*end == '\0' || strcasecmp(end, "s") == 0)
		mult = 1000;
	else if (strcasecmp(end, "ms") == 0)
		mult = 1;
	else if (strcasecmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcasecmp(end, "h") == 0)
		mult = 3600 * 1000;
	else if (strcasecmp(end, "d") == 0)
		mult = 86400 * 1000;
	else {
		*why = "unknown unit (use ms, s, m, h or d)";
		return -1;
	}
	if (v > UINT64_MAX / mult / 1000) {
		*why = "too large";
		return -1;
	}
	if (frac * mult % scale != 0) {
		*why = "finer than a millisecond";
		return -1;
	}
	*ms = (uint64_t)v * mult + frac * mult / scale;
	return 0;
}

/*
 * A port from 1 to 65535.  Port 0 asks the kernel for any free port: a
 * listener would bind a different random port in each worker, a backend
 * cannot be reached there.
 */
static int
port_parse(const char *s, in_port_t *port, const char **why)
{
	unsigned long	 v;
	char		*end;

	*why = "port must be a number from 1 to 65535";
	if (*s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 65535)
		return -1;
	if (v == 0) {
		*why = "port 0 is not allowed (it means any free port); "
		    "ports go from 1 to 65535";
		return -1;
	}
	*port = htons((in_port_t)v);
	return 0;
}

/*
 * Parse "host:port", "[v6]:port", "unix:/path" or "systemd:NAME" as allowed
 * by flags.  A host name is resolved now (first address).  Returns 0, or -1
 * with a static reason.
 */
int
addr_parse(const char *s, int flags, struct addr *a, const char **why)
{
	struct addrinfo		 hints, *res = NULL;
	struct sockaddr_un	*sun;
	char			 host[256];
	const char		*colon, *portstr;
	size_t			 hlen;
	in_port_t		 port;
	int			 r;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		if (!(flags & ADDR_ALLOW_UNIX)) {
			*why = "a unix socket is not allowed here";
			return -1;
		}
		sun = (struct sockaddr_un *)&a->ss;
		if (s[5] != '/') {
			*why = "unix socket path must be absolute (unix:/path)";
			return -1;
		}
		if (strlen(s + 5) >= sizeof(sun->sun_path)) {
			*why = "unix socket path too long: at most 107 "
			    "bytes (the kernel's limit)";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, s + 5);
		a->kind = ADDR_UNIX;
		a->sslen = sizeof(*sun);
		a->text = xstrdup(s);
		return 0;
	}
	if (strncmp(s, "systemd:", 8) == 0) {
		if (!(flags & ADDR_ALLOW_SYSTEMD)) {
			*why = "socket activation is not allowed here";
			return -1;
		}
		if (s[8] == '\0') {
			*why = "missing socket name after \"systemd:\"";
			return -1;
		}
		a->kind = ADDR_SYSTEMD;
		a->name = xstrdup(s + 8);
		a->text = xstrdup(s);
		return 0;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':') {
			*why = "expected [IPv6]:port";
			return -1;
		}
		hlen = (size_t)(rb - s - 1);
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		portstr = rb + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			*why = "expected host:port";
			return -1;
		}
		if (strchr(s, ':') != colon) {
			*why = "an IPv6 address must be in brackets: [::1]:port";
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "missing host before the port";
			return -1;
		}
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		portstr = colon + 1;
	}
	if (port_parse(portstr, &port, why) == -1)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0) {
		hints.ai_flags = 0;
		if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) {
			*why = "cannot resolve host name";
			return -1;
		}
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	if (a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
	    &((struct sockaddr_in6 *)&a->ss)->sin6_addr)) {
		/*
		 * [::ffff:127.0.0.1] is the IPv4 address as an IPv6 socket
		 * sees it: use it as IPv4 (an IPv6-only listening socket
		 * could not bind it).
		 */
		struct sockaddr_in	sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, &((struct sockaddr_in6 *)&a->ss)->
		    sin6_addr.s6_addr[12], 4);
		memset(&a->ss, 0, sizeof(a->ss));
		memcpy(&a->ss, &sin, sizeof(sin));
		a->sslen = sizeof(sin);
	}
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = port;
	if (!(flags & ADDR_ALLOW_WILDCARD)) {
		if ((a->ss.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY)) ||
		    (a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(
		    &((struct sockaddr_in6 *)&a->ss)->sin6_addr))) {
			*why = "a wildcard address is not allowed here";
			return -1;
		}
	}
	a->kind = ADDR_INET;
	a->text = xstrdup(s);
	return 0;
}

/* True for unix sockets, 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
bool
addr_is_loopback(const struct addr *a)
{
	const struct sockaddr_in6	*sin6;
	const struct sockaddr_in	*sin;

	if (a->kind == ADDR_UNIX)
		return true;
	if (a->kind != ADDR_INET)
		return false;
	if (a->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&a->ss;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	sin6 = (const struct sockaddr_in6 *)&a->ss;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	    sin6->sin6_addr.s6_addr[12] == 127;
}

/* Free the strings of an address. */
void
addr_free(struct addr *a)
{
	free(a->name);
	free(a->text);
	a->name = a->text = NULL;
}

/* Deep copy. */
void
addr_copy(struct addr *dst, const struct addr *src)
{
	*dst = *src;
	dst->name = src->name ? xstrdup(src->name) : NULL;
	dst->text = src->text ? xstrdup(src->text) : NULL;
}

/* Print a socket address as "1.2.3.4:5", "[::1]:5" or "unix:/path". */
const char *
sockaddr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char	host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;

		if (len <= offsetof(struct sockaddr_un, sun_path) ||
		    sun->sun_path[0] == '\0')
			snprintf(buf, size, "unix");
		else
			snprintf(buf, size, "unix:%.*s",
			    (int)(len - offsetof(struct sockaddr_un, sun_path)),
			    sun->sun_path);
		break;
	}
	default:
		snprintf(buf, size, "unknown");
	}
	return buf;
}

/*
 * The bytes that may be in a token (RFC 9110 5.6.2: methods, header
 * names): a table, since every header name of every request is checked.
 */
#define TC(c)	[c] = 1
const unsigned char tchar_map[256] = {
	TC('!'), TC('#'), TC('$'), TC('%'), TC('&'), TC('\''), TC('*'),
	TC('+'), TC('-'), TC('.'), TC('^'), TC('_'), TC('`'), TC('|'),
	TC('~'),
	TC('0'), TC('1'), TC('2'), TC('3'), TC('4'), TC('5'), TC('6'),
	TC('7'), TC('8'), TC('9'),
	TC('A'), TC('B'), TC('C'), TC('D'), TC('E'), TC('F'), TC('G'),
	TC('H'), TC('I'), TC('J'), TC('K'), TC('L'), TC('M'), TC('N'),
	TC('O'), TC('P'), TC('Q'), TC('R'), TC('S'), TC('T'), TC('U'),
	TC('V'), TC('W'), TC('X'), TC('Y'), TC('Z'),
	TC('a'), TC('b'), TC('c'), TC('d'), TC('e'), TC('f'), TC('g'),
	TC('h'), TC('i'), TC('j'), TC('k'), TC('l'), TC('m'), TC('n'),
	TC('o'), TC('p'), TC('q'), TC('r'), TC('s'), TC('t'), TC('u'),
	TC('v'), TC('w'), TC('x'), TC('y'), TC('z'),
};
#undef TC

/*
 * Decode hex digits (any case, ':' separators allowed) into exactly n bytes.
 * Returns 0, or -1 if the text is not exactly n bytes of hex.
 */
int
hex_decode(const char *s, unsigned char *out, size_t n)
{
	size_t	i = 0;
	int	hi = -1, v;

	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			return -1;
		if (hi == -1) {
			hi = v;
			continue;
		}
		if (i == n)
			return -1;
		out[i++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	return (i == n && hi == -1) ? 0 : -1;
}

/*
 * Seconds before retry n (from 1) of a reload that failed after a file
 * change: 1, 2, 4, 8, 16, then 30; 0 past RELOAD_RETRIES (no more).
 */
unsigned
reload_retry_delay(unsigned n)
{
	if (n == 0 || n > RELOAD_RETRIES)
		return 0;
	return n <= 5 ? 1u << (n - 1) : 30;
}

/*
 * Whether a message said at most once every sec seconds is due now; *last
 * (shared between threads) is when it was last said.
 */
bool
log_due(time_t *last, time_t sec)
{
	time_t	now = time(NULL);
	time_t	was = __atomic_load_n(last, __ATOMIC_RELAXED);

	return now - was >= sec && __atomic_compare_exchange_n(last, &was,
	    now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* The soft open file limit (0 if unknown), for messages. */
unsigned long long
nofile_limit(void)
{
	struct rlimit	rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == -1 ? 0 :
	    (unsigned long long)rl.rlim_cur;
}

/* Milliseconds on the monotonic clock. */
uint64_t
monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
