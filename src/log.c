/*
 * log.c - one line per event on stderr, as text (key=value) or JSON, for
 * journald and `docker logs`.  Free of libevent.
 */
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mtlsproxy.h"

enum log_level		log_level_cur = LOG_LEVEL_INFO;
static enum log_format	log_format_cur = LOG_FORMAT_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* A growing line buffer; truncates instead of failing. */
struct line {
	char	buf[8192];
	size_t	len;
};

static void
line_add(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 2 - l->len)
		n = sizeof(l->buf) - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_puts(struct line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

/* Append s, escaped for a JSON string or a quoted text value. */
static void
line_escaped(struct line *l, const char *s)
{
	char	esc[8];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			line_add(l, esc, 2);
		} else if (c == '\n')
			line_puts(l, "\\n");
		else if (c == '\r')
			line_puts(l, "\\r");
		else if (c == '\t')
			line_puts(l, "\\t");
		else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			line_add(l, esc, 6);
		} else
			line_add(l, (const char *)&c, 1);
	}
}

static bool
needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' ||
		    *s == '\\' || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

static void
line_start(struct line *l, enum log_level lvl, const char *msg)
{
	struct timeval	tv;
	struct tm	tm;
	char		ts[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	l->len = 0;
	if (log_format_cur == LOG_FORMAT_JSON) {
		line_puts(l, "{\"time\":\"");
		line_puts(l, ts);
		line_puts(l, "\",\"level\":\"");
		line_puts(l, level_names[lvl]);
		line_puts(l, "\",\"msg\":\"");
		line_escaped(l, msg);
		line_puts(l, "\"");
	} else {
		line_puts(l, ts);
		line_puts(l, " ");
		line_puts(l, level_names[lvl]);
		line_puts(l, " ");
		/* Free text: keep it on one line. */
		for (; *msg != '\0'; msg++)
			line_add(l, (*msg == '\n' || *msg == '\r') ? " " : msg,
			    1);
	}
}

static void
line_end(struct line *l)
{
	ssize_t	n;
	size_t	off = 0;

	if (log_format_cur == LOG_FORMAT_JSON)
		line_puts(l, "}");
	l->buf[l->len++] = '\n';
	/* One write per line so threads never interleave within a line. */
	while (off < l->len) {
		n = write(STDERR_FILENO, l->buf + off, l->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

/* Set the level and format (at start and after a reload). */
void
log_init(enum log_level lvl, enum log_format fmt)
{
	log_level_cur = lvl;
	log_format_cur = fmt;
}

/* Same as log_init; kept apart for readability at reload. */
void
log_set(enum log_level lvl, enum log_format fmt)
{
	log_init(lvl, fmt);
}

static void
log_vmsg(enum log_level lvl, const char *err, const char *fmt, va_list ap)
{
	struct line	l;
	char		msg[4096];
	size_t		n;

	if (lvl > log_level_cur)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != NULL) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", err);
	}
	line_start(&l, lvl, msg);
	line_end(&l);
}

/* Log a message. */
void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(lvl, NULL, fmt, ap);
	va_end(ap);
}

/* Log a message followed by the text of errno. */
void
log_errno(enum log_level lvl, const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vmsg(lvl, strerror(saved), fmt, ap);
	va_end(ap);
}

/* Log an event with key=value fields (JSON members in json format). */
void
log_event(enum log_level lvl, const char *msg, const struct log_field *f,
    size_t n)
{
	struct line	l;
	size_t		i;

	if (lvl > log_level_cur)
		return;
	line_start(&l, lvl, msg);
	for (i = 0; i < n; i++) {
		if (f[i].v == NULL)
			continue;
		if (log_format_cur == LOG_FORMAT_JSON) {
			line_puts(&l, ",\"");
			line_puts(&l, f[i].k);
			line_puts(&l, "\":");
			if (f[i].num)
				line_puts(&l, f[i].v);
			else {
				line_puts(&l, "\"");
				line_escaped(&l, f[i].v);
				line_puts(&l, "\"");
			}
			continue;
		}
		line_puts(&l, " ");
		line_puts(&l, f[i].k);
		line_puts(&l, "=");
		if (!f[i].num && needs_quotes(f[i].v)) {
			line_puts(&l, "\"");
			line_escaped(&l, f[i].v);
			line_puts(&l, "\"");
		} else
			line_puts(&l, f[i].v);
	}
	line_end(&l);
}

/* Log and exit: start-up failures and impossible states only. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
