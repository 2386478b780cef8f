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

/*
 * A log line.  A value from outside (a certificate's subject, a request
 * path) is cut to LOG_VALUE_MAX bytes as written, with "..." at the cut and
 * "truncated" at the end of the line; a message to LOG_MSG_MAX.  The buffer
 * holds every field of the longest event line at those caps, so a line is
 * never cut itself: it stays one JSON object or balanced key=value pairs.
 */
#define LOG_VALUE_MAX	1024
#define LOG_MSG_MAX	4096
#define LOG_LINE_MAX	16384
#define LOG_CUT		"..."
#define LOG_RESERVE	32	/* closing quote, "truncated", "}\n" */

struct line {
	char	buf[LOG_LINE_MAX];
	size_t	len;
	bool	cut;		/* a value was shortened */
};

/* Room left for content, keeping LOG_RESERVE for the end of the line. */
static size_t
line_room(const struct line *l)
{
	if (l->len + LOG_RESERVE >= sizeof(l->buf))
		return 0;
	return sizeof(l->buf) - LOG_RESERVE - l->len;
}

/* Append n bytes; the caller has checked the room (or this is the end). */
static void
line_add(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 1 - l->len)
		n = sizeof(l->buf) - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_puts(struct line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

/*
 * How c is written: escaped for a JSON string or a quoted text value, or
 * (free text) as is with line breaks made spaces.  Returns the length.
 */
static size_t
esc_char(unsigned char c, bool freetext, char esc[8])
{
	if (freetext) {
		esc[0] = (c == '\n' || c == '\r') ? ' ' : (char)c;
		return 1;
	}
	if (c == '"' || c == '\\') {
		esc[0] = '\\';
		esc[1] = (char)c;
		return 2;
	}
	if (c == '\n' || c == '\r' || c == '\t') {
		esc[0] = '\\';
		esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		return 2;
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(esc, 8, "\\u%04x", c);
		return 6;
	}
	esc[0] = (char)c;
	return 1;
}

/*
 * Append s as esc_char() writes it, up to max bytes (and the room left).
 * A longer value is cut to leave room for "...", at a character boundary:
 * never inside an escape or a UTF-8 sequence.
 */
static void
line_value(struct line *l, const char *s, bool freetext, size_t max)
{
	const char	*p;
	char		 esc[8];
	size_t		 n, total = 0, start = l->len, room = line_room(l);

	if (max > room)
		max = room;
	for (p = s; *p != '\0' && total <= max; p++)
		total += esc_char((unsigned char)*p, freetext, esc);
	if (total <= max) {
		for (p = s; *p != '\0'; p++) {
			n = esc_char((unsigned char)*p, freetext, esc);
			line_add(l, esc, n);
		}
		return;
	}
	max = max > sizeof(LOG_CUT) - 1 ? max - (sizeof(LOG_CUT) - 1) : 0;
	for (p = s; *p != '\0'; p++) {
		n = esc_char((unsigned char)*p, freetext, esc);
		if (l->len - start + n > max)
			break;
		line_add(l, esc, n);
	}
	/* Bytes from 0x80 went out as they were: drop a partial sequence. */
	if (((unsigned char)*p & 0xc0) == 0x80) {
		while (l->len > start &&
		    ((unsigned char)l->buf[l->len - 1] & 0xc0) == 0x80)
			l->len--;
		if (l->len > start &&
		    ((unsigned char)l->buf[l->len - 1] & 0xc0) == 0xc0)
			l->len--;
	}
	line_puts(l, LOG_CUT);
	l->cut = true;
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
	l->cut = false;
	if (log_format_cur == LOG_FORMAT_JSON) {
		line_puts(l, "{\"time\":\"");
		line_puts(l, ts);
		line_puts(l, "\",\"level\":\"");
		line_puts(l, level_names[lvl]);
		line_puts(l, "\",\"msg\":\"");
		line_value(l, msg, false, LOG_MSG_MAX);
		line_puts(l, "\"");
	} else {
		line_puts(l, ts);
		line_puts(l, " ");
		line_puts(l, level_names[lvl]);
		line_puts(l, " ");
		/* Free text: keep it on one line. */
		line_value(l, msg, true, LOG_MSG_MAX);
	}
}

static void
line_end(struct line *l)
{
	ssize_t	n;
	size_t	off = 0;

	if (l->cut)
		line_puts(l, log_format_cur == LOG_FORMAT_JSON ?
		    ",\"truncated\":true" : " truncated=true");
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
	bool		json, quote;

	if (lvl > log_level_cur)
		return;
	line_start(&l, lvl, msg);
	for (i = 0; i < n; i++) {
		if (f[i].v == NULL)
			continue;
		/* Never expected: no room for even a short value. */
		if (line_room(&l) < strlen(f[i].k) + 40) {
			l.cut = true;
			break;
		}
		json = log_format_cur == LOG_FORMAT_JSON;
		line_puts(&l, json ? ",\"" : " ");
		line_puts(&l, f[i].k);
		line_puts(&l, json ? "\":" : "=");
		quote = !f[i].num && (json || needs_quotes(f[i].v));
		if (quote)
			line_puts(&l, "\"");
		line_value(&l, f[i].v, false, LOG_VALUE_MAX);
		if (quote)
			line_puts(&l, "\"");
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
