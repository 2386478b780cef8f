/*
 * policy.c - decides whether a verified client certificate is allowed, and
 * describes it (struct identity).
 *
 * Pure: no libevent, no I/O. It runs after OpenSSL has verified the chain;
 * here only the allow lists and client_eku are applied to the leaf.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"

/* One '/'-separated piece of a san_uri pattern. */
struct uri_seg {
	char		*s;		/* owned */
	size_t		 len;
	bool		 wild;		/* "*" in the path: one segment */
};

/* A san_uri pattern, split on '/' once at load time. */
struct uri_pattern {
	char		*text;		/* owned; as configured */
	struct uri_seg	*seg;		/* owned */
	size_t		 nseg;
};

struct policy {
	struct strlist	   subject_cn;	/* owned copies */
	struct strlist	   subject_ou;	/* owned copies */
	struct strlist	   subject_o;	/* owned copies */
	struct strlist	   san_dns;	/* owned; ASCII lower-cased */
	struct uri_pattern *san_uri;	/* owned */
	size_t		   n_san_uri;
	struct strlist	   san_email;	/* owned; domain lower-cased */
	unsigned char	 (*fingerprint)[FINGERPRINT_LEN]; /* owned */
	size_t		   n_fingerprint;
	enum client_eku	   client_eku;
};

/*
 * A reason being written into the caller's buffer. Pieces are added whole
 * (an escape or a UTF-8 sequence is never cut); when one does not fit,
 * "..." ends the text, so a truncated reason is still one clean line.
 */
struct reason {
	char		*buf;
	size_t		 size;
	size_t		 len;
	bool		 full;
};

#define REASON_CUT	"..."

typedef bool	(*match_fn)(const struct policy *, const char *, size_t);

static void
reason_init(struct reason *r, char *buf, size_t size)
{
	r->buf = buf;
	r->size = buf == NULL ? 0 : size;
	r->len = 0;
	r->full = false;
	if (r->size > 0)
		r->buf[0] = '\0';
}

static void
reason_add(struct reason *r, const char *s, size_t n)
{
	size_t	 cut = sizeof(REASON_CUT) - 1;

	if (r->full || r->size == 0)
		return;
	if (r->len + n + cut >= r->size) {
		r->full = true;
		n = r->size - 1 - r->len;
		if (n > cut)
			n = cut;
		memcpy(r->buf + r->len, REASON_CUT, n);
		r->len += n;
		r->buf[r->len] = '\0';
		return;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

static void
reason_str(struct reason *r, const char *s)
{
	reason_add(r, s, strlen(s));
}

static void
reason_fmt(struct reason *r, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
reason_fmt(struct reason *r, const char *fmt, ...)
{
	char	 tmp[256];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	reason_add(r, tmp, (size_t)n < sizeof(tmp) ? (size_t)n :
	    sizeof(tmp) - 1);
}

/*
 * Length of the valid UTF-8 sequence at s (1 to 4), or 0 if s[0] starts
 * none (overlong forms and surrogates are invalid); *cp gets the code point.
 */
static size_t
utf8_seq(const unsigned char *s, size_t len, unsigned *cp)
{
	size_t		 n, i;
	unsigned	 c, min;

	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* C0, DEL and C1 control characters. */
static bool
is_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/*
 * Add a value from a certificate, quoted: \n, \" and \\ are escaped, other
 * control characters (C0, DEL, C1) and bytes that are not UTF-8 become
 * \xHH per byte; valid UTF-8 passes through. The certificate owner chose
 * these bytes: raw, they could forge log lines.
 */
static void
reason_value(struct reason *r, const unsigned char *s, size_t len)
{
	char		 esc[4 * 4 + 1];
	size_t		 i, j, n;
	unsigned	 cp;

	reason_str(r, "\"");
	for (i = 0; i < len; i += n) {
		n = utf8_seq(s + i, len - i, &cp);
		if (n == 1 && cp == '\n')
			reason_str(r, "\\n");
		else if (n == 1 && cp == '"')
			reason_str(r, "\\\"");
		else if (n == 1 && cp == '\\')
			reason_str(r, "\\\\");
		else if (n > 0 && !is_control(cp))
			reason_add(r, (const char *)s + i, n);
		else {
			if (n == 0)
				n = 1;
			for (j = 0; j < n; j++)
				(void)snprintf(esc + 4 * j, sizeof(esc) - 4 * j,
				    "\\x%02x", s[i + j]);
			reason_add(r, esc, 4 * n);
		}
	}
	reason_str(r, "\"");
}

static void
ascii_lower(char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] += 'a' - 'A';
}

/* Equal ignoring ASCII case; b is already lower case. */
static bool
ascii_caseeq(const char *a, const char *b, size_t len)
{
	size_t	 i;
	char	 c;

	for (i = 0; i < len; i++) {
		c = a[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != b[i])
			return false;
	}
	return true;
}

static bool
bytes_eq(const char *pat, const char *v, size_t len)
{
	return strlen(pat) == len && memcmp(pat, v, len) == 0;
}

static void
uri_pattern_init(struct uri_pattern *u, const char *text)
{
	const char	*p, *slash;
	size_t		 i, n, path;

	u->text = xstrdup(text);
	u->nseg = 1;
	for (p = text; *p != '\0'; p++)
		if (*p == '/')
			u->nseg++;
	u->seg = xcalloc(u->nseg, sizeof(*u->seg));
	for (i = 0, p = text; i < u->nseg; i++, p = slash + 1) {
		if ((slash = strchr(p, '/')) == NULL)
			slash = p + strlen(p);
		n = slash - p;
		u->seg[i].s = xmalloc(n + 1);
		memcpy(u->seg[i].s, p, n);
		u->seg[i].s[n] = '\0';
		u->seg[i].len = n;
	}
	/*
	 * "*" is a wildcard only in the path: with "scheme://authority/..."
	 * the path starts at the fourth piece, so a "*" can never stand for
	 * the trust domain or host. Elsewhere "*" is literal.
	 */
	path = 1;
	if (u->nseg >= 3 && u->seg[0].len > 1 &&
	    u->seg[0].s[u->seg[0].len - 1] == ':' && u->seg[1].len == 0)
		path = 3;
	for (i = path; i < u->nseg; i++)
		u->seg[i].wild = strcmp(u->seg[i].s, "*") == 0;
}

static void
uri_pattern_free(struct uri_pattern *u)
{
	size_t	 i;

	for (i = 0; i < u->nseg; i++)
		free(u->seg[i].s);
	free(u->seg);
	free(u->text);
}

/*
 * What one "*" may stand for: a non-empty segment that is not "." or ".."
 * (which would climb out of the pattern once normalised) and holds no
 * '?' or '#' (a wildcard never swallows a query or fragment).
 */
static bool
uri_wild_ok(const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return memchr(s, '?', n) == NULL && memchr(s, '#', n) == NULL;
}

static bool
uri_pattern_match(const struct uri_pattern *u, const char *v, size_t len)
{
	const char	*seg, *end, *slash;
	size_t		 i, n;

	seg = v;
	end = v + len;
	for (i = 0; i < u->nseg; i++) {
		if (seg == NULL)
			return false;	/* fewer segments than the pattern */
		slash = memchr(seg, '/', end - seg);
		n = (slash != NULL ? slash : end) - seg;
		if (u->seg[i].wild) {
			if (!uri_wild_ok(seg, n))
				return false;
		} else if (n != u->seg[i].len ||
		    memcmp(seg, u->seg[i].s, n) != 0)
			return false;
		seg = slash != NULL ? slash + 1 : NULL;
	}
	return seg == NULL;		/* and not more */
}

static bool
match_cn(const struct policy *p, const char *v, size_t len)
{
	size_t	 i;

	for (i = 0; i < p->subject_cn.n; i++)
		if (bytes_eq(p->subject_cn.v[i], v, len))
			return true;
	return false;
}

static bool
match_ou(const struct policy *p, const char *v, size_t len)
{
	size_t	 i;

	for (i = 0; i < p->subject_ou.n; i++)
		if (bytes_eq(p->subject_ou.v[i], v, len))
			return true;
	return false;
}

static bool
match_o(const struct policy *p, const char *v, size_t len)
{
	size_t	 i;

	for (i = 0; i < p->subject_o.n; i++)
		if (bytes_eq(p->subject_o.v[i], v, len))
			return true;
	return false;
}

static bool
match_dns(const struct policy *p, const char *v, size_t len)
{
	size_t	 i;

	for (i = 0; i < p->san_dns.n; i++)
		if (strlen(p->san_dns.v[i]) == len &&
		    ascii_caseeq(v, p->san_dns.v[i], len))
			return true;
	return false;
}

static bool
match_uri(const struct policy *p, const char *v, size_t len)
{
	size_t	 i;

	for (i = 0; i < p->n_san_uri; i++)
		if (uri_pattern_match(&p->san_uri[i], v, len))
			return true;
	return false;
}

/* The local part is case-sensitive, the domain (after the last '@') not. */
static bool
match_email(const struct policy *p, const char *v, size_t len)
{
	const char	*pat, *at;
	size_t		 i, plen, local;

	for (i = 0; i < p->san_email.n; i++) {
		pat = p->san_email.v[i];
		if ((plen = strlen(pat)) != len)
			continue;
		if ((at = strrchr(pat, '@')) == NULL) {
			if (memcmp(pat, v, len) == 0)
				return true;
			continue;
		}
		local = at - pat;
		if (memcmp(pat, v, local + 1) == 0 &&
		    ascii_caseeq(v + local + 1, at + 1, len - local - 1))
			return true;
	}
	return false;
}

/* Copy the allow lists and client_eku; nothing is borrowed from cfg. */
struct policy *
policy_new(const struct cfg_allow *allow, enum client_eku eku)
{
	struct policy	*p;
	char		*s, *at;
	size_t		 i;

	p = xcalloc(1, sizeof(*p));
	p->client_eku = eku;
	if (allow == NULL)
		return p;
	for (i = 0; i < allow->subject_cn.n; i++)
		strlist_add(&p->subject_cn, allow->subject_cn.v[i]);
	for (i = 0; i < allow->subject_ou.n; i++)
		strlist_add(&p->subject_ou, allow->subject_ou.v[i]);
	for (i = 0; i < allow->subject_o.n; i++)
		strlist_add(&p->subject_o, allow->subject_o.v[i]);
	for (i = 0; i < allow->san_dns.n; i++) {
		strlist_add(&p->san_dns, allow->san_dns.v[i]);
		s = p->san_dns.v[i];
		ascii_lower(s, strlen(s));
	}
	if (allow->san_uri.n > 0) {
		p->san_uri = xcalloc(allow->san_uri.n, sizeof(*p->san_uri));
		p->n_san_uri = allow->san_uri.n;
		for (i = 0; i < allow->san_uri.n; i++)
			uri_pattern_init(&p->san_uri[i], allow->san_uri.v[i]);
	}
	for (i = 0; i < allow->san_email.n; i++) {
		strlist_add(&p->san_email, allow->san_email.v[i]);
		s = p->san_email.v[i];
		if ((at = strrchr(s, '@')) != NULL)
			ascii_lower(at + 1, strlen(at + 1));
	}
	if (allow->n_fingerprint_sha256 > 0) {
		p->fingerprint = xcalloc(allow->n_fingerprint_sha256,
		    sizeof(*p->fingerprint));
		memcpy(p->fingerprint, allow->fingerprint_sha256,
		    allow->n_fingerprint_sha256 * sizeof(*p->fingerprint));
		p->n_fingerprint = allow->n_fingerprint_sha256;
	}
	return p;
}

/* Free a policy; NULL is a no-op. */
void
policy_free(struct policy *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	strlist_free(&p->subject_cn);
	strlist_free(&p->subject_ou);
	strlist_free(&p->subject_o);
	strlist_free(&p->san_dns);
	for (i = 0; i < p->n_san_uri; i++)
		uri_pattern_free(&p->san_uri[i]);
	free(p->san_uri);
	strlist_free(&p->san_email);
	free(p->fingerprint);
	free(p);
}

static bool
has_client_auth(X509 *leaf)
{
	/* Without the extension, X509_get_extended_key_usage() is all ones. */
	if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0)
		return false;
	return (X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) != 0;
}

static int
check_fingerprint(const struct policy *p, X509 *leaf, struct reason *r)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	size_t		 i;

	if (!X509_digest(leaf, EVP_sha256(), md, &mdlen) ||
	    mdlen != FINGERPRINT_LEN) {
		ERR_clear_error();
		reason_str(r, "policy: cannot compute the SHA-256 fingerprint");
		return -1;
	}
	for (i = 0; i < p->n_fingerprint; i++)
		if (memcmp(p->fingerprint[i], md, FINGERPRINT_LEN) == 0)
			return 0;
	reason_str(r, "policy: SHA-256 fingerprint ");
	for (i = 0; i < FINGERPRINT_LEN; i++)
		reason_fmt(r, "%02x", md[i]);
	reason_str(r, " is not in allow.fingerprint_sha256");
	return -1;
}

/*
 * The attribute's value as UTF-8 (OPENSSL_malloc'd into *out) and its
 * length, or -1 if it cannot be decoded.
 */
static int
entry_utf8(const X509_NAME_ENTRY *e, unsigned char **out)
{
	int	 n;

	*out = NULL;
	if ((n = ASN1_STRING_to_UTF8(out, X509_NAME_ENTRY_get_data(e))) < 0) {
		ERR_clear_error();
		*out = NULL;
		return -1;
	}
	return n;
}

/*
 * A decoded value must match a listed one byte for byte; one holding a
 * NUL never matches ("admin\0.evil" is not "admin").
 */
static bool
value_matches(const struct policy *p, match_fn match, const unsigned char *v,
    int len)
{
	if (v == NULL || len < 0 || memchr(v, '\0', len) != NULL)
		return false;
	return match(p, (const char *)v, len);
}

/* Exactly one CN, and it is listed. */
static int
check_cn(const struct policy *p, const X509_NAME *name, struct reason *r)
{
	unsigned char	*v;
	int		 i, n, len;

	n = 0;
	for (i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName,
	    i)) >= 0;)
		n++;
	if (n == 0) {
		reason_str(r, "policy: certificate has no subject CN but "
		    "allow.subject_cn is set");
		return -1;
	}
	if (n > 1) {
		reason_fmt(r, "policy: subject has %d CN attributes "
		    "(ambiguous) and allow.subject_cn is set", n);
		return -1;
	}
	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if ((len = entry_utf8(X509_NAME_get_entry(name, i), &v)) < 0) {
		reason_str(r, "policy: subject CN cannot be decoded and "
		    "allow.subject_cn is set");
		return -1;
	}
	if (value_matches(p, match_cn, v, len)) {
		OPENSSL_free(v);
		return 0;
	}
	reason_str(r, "policy: subject CN ");
	reason_value(r, v, len);
	reason_str(r, " is not in allow.subject_cn");
	OPENSSL_free(v);
	return -1;
}

/* Any attribute of this type matching any listed value. */
static int
check_attr(const struct policy *p, const X509_NAME *name, int nid,
    const char *label, const char *field, match_fn match, struct reason *r)
{
	unsigned char	*v;
	int		 i, n, len;
	bool		 ok;

	for (n = 0, i = -1; (i = X509_NAME_get_index_by_NID(name, nid,
	    i)) >= 0; n++) {
		len = entry_utf8(X509_NAME_get_entry(name, i), &v);
		ok = value_matches(p, match, v, len);
		OPENSSL_free(v);
		if (ok)
			return 0;
	}
	if (n == 0) {
		reason_fmt(r, "policy: certificate has no subject %s but "
		    "allow.%s is set", label, field);
		return -1;
	}
	/* Denied: decode again, only on this path, to say what was seen. */
	reason_fmt(r, "policy: no subject %s matches allow.%s "
	    "(certificate has ", label, field);
	for (n = 0, i = -1; (i = X509_NAME_get_index_by_NID(name, nid,
	    i)) >= 0; n++) {
		if (n > 0)
			reason_str(r, ", ");
		if ((len = entry_utf8(X509_NAME_get_entry(name, i), &v)) < 0)
			reason_str(r, "<undecodable>");
		else
			reason_value(r, v, len);
		OPENSSL_free(v);
	}
	reason_str(r, ")");
	return -1;
}

/* Any subjectAltName entry of this type matching any listed value. */
static int
check_san(const struct policy *p, const GENERAL_NAMES *gens, int type,
    const char *label, const char *field, match_fn match, struct reason *r)
{
	const GENERAL_NAME	*g;
	int			 i, n;

	/* dNSName, URI and rfc822Name are all IA5String. */
	for (n = 0, i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != type)
			continue;
		n++;
		if (value_matches(p, match, ASN1_STRING_get0_data(g->d.ia5),
		    ASN1_STRING_length(g->d.ia5)))
			return 0;
	}
	if (n == 0) {
		reason_fmt(r, "policy: certificate has no SAN %s but "
		    "allow.%s is set", label, field);
		return -1;
	}
	reason_fmt(r, "policy: no SAN %s matches allow.%s "
	    "(certificate has ", label, field);
	for (n = 0, i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != type)
			continue;
		if (n++ > 0)
			reason_str(r, ", ");
		reason_value(r, ASN1_STRING_get0_data(g->d.ia5),
		    ASN1_STRING_length(g->d.ia5));
	}
	reason_str(r, ")");
	return -1;
}

/*
 * Apply client_eku and the allow lists to a leaf whose chain OpenSSL has
 * verified: 0 if allowed, -1 with a one-line reason in why if not.
 */
int
policy_check(const struct policy *p, X509 *leaf, char *why, size_t whylen)
{
	struct reason	 r;
	const X509_NAME	*name;
	GENERAL_NAMES	*gens = NULL;
	int		 crit = -1;

	reason_init(&r, why, whylen);
	if (leaf == NULL) {
		reason_str(&r, "policy: no client certificate");
		return -1;
	}
	if (p->client_eku == CLIENT_EKU_REQUIRED && !has_client_auth(leaf)) {
		reason_str(&r, "wrong purpose: certificate has no "
		    "extendedKeyUsage clientAuth (client_eku: required)");
		return -1;
	}
	if (p->n_fingerprint > 0 && check_fingerprint(p, leaf, &r) == -1)
		return -1;

	name = X509_get_subject_name(leaf);
	if (p->subject_cn.n > 0 && check_cn(p, name, &r) == -1)
		return -1;
	if (p->subject_ou.n > 0 && check_attr(p, name,
	    NID_organizationalUnitName, "OU", "subject_ou", match_ou, &r) == -1)
		return -1;
	if (p->subject_o.n > 0 && check_attr(p, name, NID_organizationName,
	    "O", "subject_o", match_o, &r) == -1)
		return -1;

	if (p->san_dns.n == 0 && p->n_san_uri == 0 && p->san_email.n == 0)
		return 0;
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL && crit != -1) {
		/* -2: two SAN extensions (which to believe?); else bad DER */
		ERR_clear_error();
		reason_str(&r, crit == -2 ?
		    "policy: certificate has more than one subjectAltName "
		    "extension" :
		    "policy: cannot decode the subjectAltName extension");
		return -1;
	}
	if ((p->san_dns.n > 0 && check_san(p, gens, GEN_DNS, "DNS", "san_dns",
	    match_dns, &r) == -1) ||
	    (p->n_san_uri > 0 && check_san(p, gens, GEN_URI, "URI", "san_uri",
	    match_uri, &r) == -1) ||
	    (p->san_email.n > 0 && check_san(p, gens, GEN_EMAIL, "email",
	    "san_email", match_email, &r) == -1)) {
		GENERAL_NAMES_free(gens);
		return -1;
	}
	GENERAL_NAMES_free(gens);
	return 0;
}

/*
 * A name as an RFC 4514 string (most specific RDN first, UTF-8 kept), or
 * NULL if OpenSSL cannot print it. OpenSSL escapes specials and control
 * characters; any control byte left is escaped again as \XX, so the result
 * never holds CR, LF or NUL (it goes into headers and log lines).
 */
char *
x509_name_rfc4514(const X509_NAME *name)
{
	BIO		*bio;
	char		*data, *s;
	long		 len;
	size_t		 i, j;

	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (X509_NAME_print_ex(bio, name, 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0 ||
	    (len = BIO_get_mem_data(bio, &data)) < 0) {
		ERR_clear_error();
		BIO_free(bio);
		return NULL;
	}
	s = xmalloc((size_t)len * 3 + 1);
	for (i = 0, j = 0; i < (size_t)len; i++) {
		if ((unsigned char)data[i] < 0x20 || data[i] == 0x7f)
			j += snprintf(s + j, 4, "\\%02X",
			    (unsigned char)data[i]);
		else
			s[j++] = data[i];
	}
	s[j] = '\0';
	BIO_free(bio);
	return s;
}

/* The first CN as UTF-8, control characters and bad bytes each as '?'. */
static char *
identity_cn(const X509_NAME *name)
{
	unsigned char	*v;
	char		*s;
	size_t		 i, j, n;
	unsigned	 cp;
	int		 idx, len;

	if ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return NULL;
	if ((len = entry_utf8(X509_NAME_get_entry(name, idx), &v)) < 0)
		return NULL;
	s = xmalloc((size_t)len + 1);
	for (i = 0, j = 0; i < (size_t)len; i += n) {
		n = utf8_seq(v + i, len - i, &cp);
		if (n == 0 || is_control(cp)) {
			s[j++] = '?';
			if (n == 0)
				n = 1;
		} else {
			memcpy(s + j, v + i, n);
			j += n;
		}
	}
	s[j] = '\0';
	OPENSSL_free(v);
	return s;
}

static char *
identity_serial(const ASN1_INTEGER *serial)
{
	BIGNUM	*bn;
	char	*hex, *s;

	if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if ((hex = BN_bn2hex(bn)) == NULL) {
		ERR_clear_error();
		BN_free(bn);
		return NULL;
	}
	s = xstrdup(hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return s;
}

static char *
identity_sha256(X509 *leaf)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, i;
	char		*s;

	if (!X509_digest(leaf, EVP_sha256(), md, &mdlen)) {
		ERR_clear_error();
		return NULL;
	}
	s = xmalloc(mdlen * 2 + 1);
	for (i = 0; i < mdlen; i++)
		(void)snprintf(s + 2 * i, 3, "%02x", md[i]);
	s[2 * mdlen] = '\0';
	return s;
}

/*
 * Describe a certificate. id is overwritten, not freed first. A field that
 * cannot be computed stays NULL (not_after: 0). subject and issuer are RFC
 * 4514; cn is the first CN as raw UTF-8 except that each control character
 * (C0, DEL, C1) or invalid byte is replaced by '?'.
 */
void
identity_from_cert(struct identity *id, X509 *leaf)
{
	struct tm	 tm;

	memset(id, 0, sizeof(*id));
	if (leaf == NULL)
		return;
	id->subject = x509_name_rfc4514(X509_get_subject_name(leaf));
	id->issuer = x509_name_rfc4514(X509_get_issuer_name(leaf));
	id->serial = identity_serial(X509_get0_serialNumber(leaf));
	id->sha256 = identity_sha256(leaf);
	id->cn = identity_cn(X509_get_subject_name(leaf));
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1)
		id->not_after = timegm(&tm);
	else
		ERR_clear_error();
}

/* Free the strings and zero the struct. */
void
identity_clear(struct identity *id)
{
	free(id->subject);
	free(id->issuer);
	free(id->serial);
	free(id->sha256);
	free(id->cn);
	memset(id, 0, sizeof(*id));
}
