/*
 * hdr.c - the identity headers of http mode: which client-sent header names
 * are removed, and the block of header lines the proxy adds from the
 * verified leaf.  Pure: no libevent, no I/O; linked into the unit tests.
 *
 * Every value written here comes from a certificate its owner chose, so
 * none may carry CR, LF, NUL or another control byte: DNs are printed with
 * OpenSSL's RFC 2253 escaping (and any control byte left escaped as \XX),
 * SAN values and the PEM are percent-encoded.  See docs/identity-headers.md.
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"

/* The identity facts a header can carry; the keys of headers.names. */
enum hdr_field {
	HDR_VERIFY,
	HDR_SUBJECT,
	HDR_ISSUER,
	HDR_SERIAL,
	HDR_FINGERPRINT,
	HDR_SAN_DNS,
	HDR_SAN_URI,
	HDR_CERT,
	HDR_XFCC,
	HDR_NFIELDS
};

#define HDR_NPRESETS	3

/*
 * Each preset's names; NULL: the preset does not send that fact (a
 * headers.names entry can still add it).  cfg.c keeps the same table to
 * report clashing names at load.
 */
static const char *const hdr_preset_names[HDR_NPRESETS][HDR_NFIELDS] = {
	[HEADERS_DEFAULT] = {
		[HDR_VERIFY] = "X-Client-Verify",
		[HDR_SUBJECT] = "X-Client-Subject",
		[HDR_ISSUER] = "X-Client-Issuer",
		[HDR_SERIAL] = "X-Client-Serial",
		[HDR_FINGERPRINT] = "X-Client-Fingerprint-SHA256",
		[HDR_SAN_DNS] = "X-Client-SAN-DNS",
		[HDR_SAN_URI] = "X-Client-SAN-URI",
		[HDR_CERT] = "X-Client-Cert",
	},
	[HEADERS_NGINX] = {
		[HDR_VERIFY] = "X-SSL-Client-Verify",
		[HDR_SUBJECT] = "X-SSL-Client-S-DN",
		[HDR_ISSUER] = "X-SSL-Client-I-DN",
		[HDR_SERIAL] = "X-SSL-Client-Serial",
		[HDR_FINGERPRINT] = "X-SSL-Client-Fingerprint",
		[HDR_CERT] = "X-SSL-Client-Cert",
	},
	[HEADERS_ENVOY] = {
		[HDR_XFCC] = "X-Forwarded-Client-Cert",
	},
};

/* The cfg_headers field overriding each name. */
static const size_t hdr_cfg_off[HDR_NFIELDS] = {
	[HDR_VERIFY] = offsetof(struct cfg_headers, verify),
	[HDR_SUBJECT] = offsetof(struct cfg_headers, subject),
	[HDR_ISSUER] = offsetof(struct cfg_headers, issuer),
	[HDR_SERIAL] = offsetof(struct cfg_headers, serial),
	[HDR_FINGERPRINT] = offsetof(struct cfg_headers, fingerprint),
	[HDR_SAN_DNS] = offsetof(struct cfg_headers, san_dns),
	[HDR_SAN_URI] = offsetof(struct cfg_headers, san_uri),
	[HDR_CERT] = offsetof(struct cfg_headers, cert),
	[HDR_XFCC] = offsetof(struct cfg_headers, xfcc),
};

/* A header name prepared for matching: ASCII lower case, '_' as '-'. */
struct hdr_key {
	char		*s;		/* owned in a hdr_set */
	size_t		 len;
};

/* Names removed whatever the configuration, and by prefix. */
static const struct hdr_key hdr_always[] = {
	{ "x-forwarded-client-cert", sizeof("x-forwarded-client-cert") - 1 },
};
static const struct hdr_key hdr_prefixes[] = {
	{ "x-client-", sizeof("x-client-") - 1 },
	{ "x-ssl-client-", sizeof("x-ssl-client-") - 1 },
};
/*
 * Set by the proxy itself when forwarded headers are on, or saying what
 * those say: a client's Forwarded (RFC 7239) or X-Real-IP would let it
 * choose the proto, host or address that frameworks such as Spring's
 * forward-headers-strategy=framework read.
 */
static const struct hdr_key hdr_forwarded[] = {
	{ "x-forwarded-proto", sizeof("x-forwarded-proto") - 1 },
	{ "x-forwarded-host", sizeof("x-forwarded-host") - 1 },
	{ "forwarded", sizeof("forwarded") - 1 },
	{ "x-real-ip", sizeof("x-real-ip") - 1 },
};

/*
 * The identity blocks of the last client certificates seen, by the SHA-256
 * of the certificate: clients reconnect with the same certificate, and the
 * block (DNs, digests, the percent-encoded PEM) costs a few per cent of a
 * handshake's CPU to work out. Direct-mapped: a certificate whose slot is
 * taken replaces the one there. Shared by the worker threads.
 */
#define HDR_CACHE_SLOTS	64

struct hdr_cache {
	pthread_mutex_t	 mu;
	EVP_MD		*sha256;	/* owned; fetched once */
	struct {
		unsigned char	 key[SHA256_DIGEST_LENGTH];
		char		*block;	/* owned; NULL: empty slot */
		size_t		 len;
	} slot[HDR_CACHE_SLOTS];
};

struct hdr_set {
	enum header_preset	 preset;
	bool			 forwarded;
	char			*name[HDR_NFIELDS];	/* owned; NULL: not sent */
	struct hdr_key		 key[HDR_NFIELDS];	/* owned; matching form */
	size_t			 nkeys;
	struct hdr_cache	*cache;			/* owned; or NULL */
};

/* A growing string; xmalloc'd, always NUL-terminated once used. */
struct hdr_buf {
	char		*s;
	size_t		 len;
	size_t		 cap;
};

static const char	hdr_hex_upper[] = "0123456789ABCDEF";
static const char	hdr_hex_lower[] = "0123456789abcdef";

/* How header names compare: ASCII case-insensitive, '_' same as '-'. */
static inline unsigned char
hdr_fold(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if (c == '_')
		return '-';
	return c;
}

static bool
hdr_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* name[0..len) equals key (already folded) under hdr_fold. */
static bool
hdr_key_eq(const struct hdr_key *k, const char *name, size_t len)
{
	size_t	i;

	if (len != k->len)
		return false;
	for (i = 0; i < len; i++)
		if (hdr_fold((unsigned char)name[i]) != (unsigned char)k->s[i])
			return false;
	return true;
}

static bool
hdr_key_prefix(const struct hdr_key *k, const char *name, size_t len)
{
	return len >= k->len && hdr_key_eq(k, name, k->len);
}

/* Compile a listener's header names; NULL cfg means all defaults. */
struct hdr_set *
hdr_set_new(const struct cfg_headers *cfg)
{
	struct hdr_set	*hs;
	const char	*name;
	size_t		 i, j, len;

	hs = xcalloc(1, sizeof(*hs));
	hs->cache = xcalloc(1, sizeof(*hs->cache));
	if ((hs->cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    pthread_mutex_init(&hs->cache->mu, NULL) != 0) {
		ERR_clear_error();
		EVP_MD_free(hs->cache->sha256);
		free(hs->cache);
		hs->cache = NULL;	/* works it out every time */
	}
	hs->preset = cfg != NULL ? cfg->preset : HEADERS_DEFAULT;
	hs->forwarded = cfg != NULL ? cfg->forwarded : true;
	if ((unsigned)hs->preset >= HDR_NPRESETS)
		hs->preset = HEADERS_DEFAULT;
	for (i = 0; i < HDR_NFIELDS; i++) {
		name = NULL;
		if (cfg != NULL)
			name = *(char *const *)((const char *)cfg +
			    hdr_cfg_off[i]);
		if (name == NULL)
			name = hdr_preset_names[hs->preset][i];
		/*
		 * cfg.c accepts only tokens; anything else would let a
		 * name split the header line, so it is never sent.
		 */
		if (name == NULL || !hdr_token(name))
			continue;
		hs->name[i] = xstrdup(name);
		len = strlen(name);
		hs->key[hs->nkeys].s = xmalloc(len + 1);
		for (j = 0; j < len; j++)
			hs->key[hs->nkeys].s[j] =
			    (char)hdr_fold((unsigned char)name[j]);
		hs->key[hs->nkeys].s[len] = '\0';
		hs->key[hs->nkeys].len = len;
		hs->nkeys++;
	}
	return hs;
}

/* Free a compiled set; NULL is a no-op. */
void
hdr_set_free(struct hdr_set *hs)
{
	size_t	i;

	if (hs == NULL)
		return;
	for (i = 0; i < HDR_NFIELDS; i++)
		free(hs->name[i]);
	for (i = 0; i < hs->nkeys; i++)
		free(hs->key[i].s);
	if (hs->cache != NULL) {
		for (i = 0; i < HDR_CACHE_SLOTS; i++)
			free(hs->cache->slot[i].block);
		EVP_MD_free(hs->cache->sha256);
		pthread_mutex_destroy(&hs->cache->mu);
		free(hs->cache);
	}
	free(hs);
}

/* A copy of the cached block for key, or NULL. */
static char *
hdr_cache_get(struct hdr_cache *c, const unsigned char *key, size_t *len)
{
	char	*out = NULL;
	size_t	 i = key[0] % HDR_CACHE_SLOTS;

	pthread_mutex_lock(&c->mu);
	if (c->slot[i].block != NULL &&
	    memcmp(c->slot[i].key, key, SHA256_DIGEST_LENGTH) == 0) {
		out = xmalloc(c->slot[i].len + 1);
		memcpy(out, c->slot[i].block, c->slot[i].len + 1);
		*len = c->slot[i].len;
	}
	pthread_mutex_unlock(&c->mu);
	return out;
}

static void
hdr_cache_put(struct hdr_cache *c, const unsigned char *key,
    const char *block, size_t len)
{
	size_t	 i = key[0] % HDR_CACHE_SLOTS;
	char	*copy = xmalloc(len + 1), *old;

	memcpy(copy, block, len + 1);
	pthread_mutex_lock(&c->mu);
	old = c->slot[i].block;
	memcpy(c->slot[i].key, key, SHA256_DIGEST_LENGTH);
	c->slot[i].block = copy;
	c->slot[i].len = len;
	pthread_mutex_unlock(&c->mu);
	free(old);
}

/*
 * True if a client-sent request header of this name must be removed before
 * forwarding, so that a client cannot claim another identity: every name
 * this listener sets, X-Forwarded-Client-Cert and the X-Client-* and
 * X-SSL-Client-* families of every preset, and X-Forwarded-Proto/-Host,
 * Forwarded and X-Real-IP when the proxy sets forwarded headers.  Any letter case; '_' counts as '-' because
 * CGI-style frameworks (PHP, WSGI, Rack) map both to the same variable.
 * name need not be NUL-terminated.  No allocation: called per header.
 */
bool
hdr_is_reserved(const struct hdr_set *hs, const char *name, size_t len)
{
	size_t	i;

	if (name == NULL || len == 0)
		return false;
	for (i = 0; i < sizeof(hdr_prefixes) / sizeof(hdr_prefixes[0]); i++)
		if (hdr_key_prefix(&hdr_prefixes[i], name, len))
			return true;
	for (i = 0; i < sizeof(hdr_always) / sizeof(hdr_always[0]); i++)
		if (hdr_key_eq(&hdr_always[i], name, len))
			return true;
	if (hs == NULL || hs->forwarded)
		for (i = 0; i < sizeof(hdr_forwarded) /
		    sizeof(hdr_forwarded[0]); i++)
			if (hdr_key_eq(&hdr_forwarded[i], name, len))
				return true;
	if (hs == NULL)
		return false;
	for (i = 0; i < hs->nkeys; i++)
		if (hdr_key_eq(&hs->key[i], name, len))
			return true;
	return false;
}

static void
buf_add(struct hdr_buf *b, const void *s, size_t n)
{
	size_t	need;

	if (n > SIZE_MAX - b->len - 1)
		fatalx("allocation overflow");
	need = b->len + n + 1;
	if (need > b->cap) {
		b->cap = b->cap == 0 ? 1024 : b->cap;
		while (b->cap < need)
			b->cap = b->cap > SIZE_MAX / 2 ? need : b->cap * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Drop what was added after len bytes (a value that failed). */
static void
buf_truncate(struct hdr_buf *b, size_t len)
{
	b->len = len;
	b->s[len] = '\0';
}

static void
buf_str(struct hdr_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_byte_hex(struct hdr_buf *b, char lead, unsigned char c)
{
	char	e[3];

	e[0] = lead;
	e[1] = hdr_hex_upper[c >> 4];
	e[2] = hdr_hex_upper[c & 0xf];
	buf_add(b, e, 3);
}

/*
 * The PEM as nginx's $ssl_client_escaped_cert: every byte but the RFC 3986
 * unreserved ones (ALPHA, DIGIT, "-", ".", "_", "~") becomes %XX, upper
 * case.  That is ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT); both it and
 * Envoy's Cert encoding give these same bytes for any PEM.
 */
static void
buf_pct_all(struct hdr_buf *b, const unsigned char *s, size_t len)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			buf_add(b, &c, 1);
		else
			buf_byte_hex(b, '%', c);
	}
}

/*
 * A SAN value: printable ASCII stays, except that space, '"', ',' and '\'
 * (which would make the lists and XFCC ambiguous) and every control or
 * non-ASCII byte become %XX.  A '%' is kept in URIs (their own escapes);
 * in DNS names, where it never belongs, it becomes %25 so that decoding
 * gives the bytes back.
 */
static void
buf_pct_san(struct hdr_buf *b, const unsigned char *s, size_t len,
    bool keep_pct)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' ||
		    c == '\\' || (c == '%' && !keep_pct))
			buf_byte_hex(b, '%', c);
		else
			buf_add(b, &c, 1);
	}
}

static void
buf_hex(struct hdr_buf *b, const unsigned char *md, size_t n)
{
	char	e[2];
	size_t	i;

	for (i = 0; i < n; i++) {
		e[0] = hdr_hex_lower[md[i] >> 4];
		e[1] = hdr_hex_lower[md[i] & 0xf];
		buf_add(b, e, 2);
	}
}

/*
 * A DN exactly as nginx ($ssl_client_s_dn) and Envoy (XFCC Subject) print
 * it: X509_NAME_print_ex with XN_FLAG_RFC2253, so non-ASCII bytes are \XX
 * too.  Control bytes are escaped by OpenSSL; any left are escaped here.
 */
static char *
hdr_name_rfc2253(const X509_NAME *name)
{
	BIO	*bio;
	char	*data, *s;
	long	 len;
	size_t	 i, j;

	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0 ||
	    (len = BIO_get_mem_data(bio, &data)) < 0) {
		ERR_clear_error();
		BIO_free(bio);
		return NULL;
	}
	s = xmalloc((size_t)len * 3 + 1);
	for (i = 0, j = 0; i < (size_t)len; i++) {
		if ((unsigned char)data[i] < 0x20 || data[i] == 0x7f) {
			s[j++] = '\\';
			s[j++] = hdr_hex_upper[(unsigned char)data[i] >> 4];
			s[j++] = hdr_hex_upper[(unsigned char)data[i] & 0xf];
		} else
			s[j++] = data[i];
	}
	s[j] = '\0';
	BIO_free(bio);
	return s;
}

/* The leaf's PEM, URL-encoded; false if it cannot be written. */
static bool
hdr_escaped_pem(struct hdr_buf *b, X509 *leaf)
{
	BIO	*bio;
	char	*data;
	long	 len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return false;
	}
	if (!PEM_write_bio_X509(bio, leaf) ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0) {
		ERR_clear_error();
		BIO_free(bio);
		return false;
	}
	buf_pct_all(b, (const unsigned char *)data, (size_t)len);
	BIO_free(bio);
	return true;
}

/* Lower-case hex of a digest of the DER leaf; false if it fails. */
static bool
hdr_digest(struct hdr_buf *b, X509 *leaf, const EVP_MD *md)
{
	unsigned char	 d[EVP_MAX_MD_SIZE];
	unsigned int	 n = 0;

	if (!X509_digest(leaf, md, d, &n)) {
		ERR_clear_error();
		return false;
	}
	buf_hex(b, d, n);
	return true;
}

/* SAN entries of one type, encoded, joined with sep; false if none. */
static bool
hdr_sans(struct hdr_buf *b, const GENERAL_NAMES *gens, int type,
    const char *sep)
{
	const GENERAL_NAME	*g;
	int			 i, n;

	for (n = 0, i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != type)
			continue;
		if (n++ > 0)
			buf_str(b, sep);
		/* dNSName and URI are both IA5String. */
		buf_pct_san(b, ASN1_STRING_get0_data(g->d.ia5),
		    (size_t)ASN1_STRING_length(g->d.ia5), type == GEN_URI);
	}
	return n > 0;
}

/*
 * One XFCC key=value per SAN of this type.  Encoded values hold no '"',
 * ',' or '\'; one with ';' or '=' is double-quoted, as Envoy's format
 * asks.
 */
static void
hdr_xfcc_sans(struct hdr_buf *b, const GENERAL_NAMES *gens, int type,
    const char *key)
{
	const GENERAL_NAME	*g;
	struct hdr_buf		 v = { NULL, 0, 0 };
	bool			 quote;
	int			 i;

	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != type)
			continue;
		buf_add(&v, "", 0);
		buf_truncate(&v, 0);
		buf_pct_san(&v, ASN1_STRING_get0_data(g->d.ia5),
		    (size_t)ASN1_STRING_length(g->d.ia5), type == GEN_URI);
		quote = strpbrk(v.s, ";=") != NULL;
		buf_str(b, ";");
		buf_str(b, key);
		buf_str(b, quote ? "=\"" : "=");
		buf_add(b, v.s, v.len);
		if (quote)
			buf_str(b, "\"");
	}
	free(v.s);
}

/*
 * Envoy's x-forwarded-client-cert element for the leaf:
 * Hash=<sha256>;Cert="<escaped PEM>";Subject="<RFC 2253>";URI=..;DNS=..
 * The RFC 2253 subject already escapes '"' as \" (Envoy's own quoting
 * rule), so it goes between the quotes as it is, as Envoy sends it.
 */
static bool
hdr_xfcc(struct hdr_buf *b, X509 *leaf, const GENERAL_NAMES *gens)
{
	char	*subject;
	size_t	 mark;

	buf_str(b, "Hash=");
	if (!hdr_digest(b, leaf, EVP_sha256()))
		return false;
	mark = b->len;
	buf_str(b, ";Cert=\"");
	if (hdr_escaped_pem(b, leaf))
		buf_str(b, "\"");
	else
		buf_truncate(b, mark);
	if ((subject = hdr_name_rfc2253(X509_get_subject_name(leaf))) !=
	    NULL) {
		buf_str(b, ";Subject=\"");
		buf_str(b, subject);
		buf_str(b, "\"");
		free(subject);
	}
	hdr_xfcc_sans(b, gens, GEN_URI, "URI");
	hdr_xfcc_sans(b, gens, GEN_DNS, "DNS");
	return true;
}

/* Append "Name: value\r\n" for one fact; a value that fails is left out. */
static void
hdr_line(struct hdr_buf *b, const struct hdr_set *hs, enum hdr_field f,
    X509 *leaf, const struct identity *id, const GENERAL_NAMES *gens)
{
	const char	*v;
	char		*dn;
	size_t		 start = b->len;
	bool		 ok = true;

	buf_str(b, hs->name[f]);
	buf_str(b, ": ");
	switch (f) {
	case HDR_VERIFY:
		buf_str(b, "SUCCESS");
		break;
	case HDR_SUBJECT:
	case HDR_ISSUER:
		if (hs->preset == HEADERS_DEFAULT) {
			v = f == HDR_SUBJECT ? id->subject : id->issuer;
			if ((ok = v != NULL))
				buf_str(b, v);
			break;
		}
		dn = hdr_name_rfc2253(f == HDR_SUBJECT ?
		    X509_get_subject_name(leaf) : X509_get_issuer_name(leaf));
		if ((ok = dn != NULL))
			buf_str(b, dn);
		free(dn);
		break;
	case HDR_SERIAL:
		if ((ok = id->serial != NULL))
			buf_str(b, id->serial);
		break;
	case HDR_FINGERPRINT:
		/* nginx's $ssl_client_fingerprint is SHA-1; ours SHA-256. */
		ok = hdr_digest(b, leaf, hs->preset == HEADERS_NGINX ?
		    EVP_sha1() : EVP_sha256());
		break;
	case HDR_SAN_DNS:
		ok = hdr_sans(b, gens, GEN_DNS, ", ");
		break;
	case HDR_SAN_URI:
		ok = hdr_sans(b, gens, GEN_URI, ", ");
		break;
	case HDR_CERT:
		ok = hdr_escaped_pem(b, leaf);
		break;
	case HDR_XFCC:
		ok = hdr_xfcc(b, leaf, gens);
		break;
	case HDR_NFIELDS:
		ok = false;
		break;
	}
	if (ok)
		buf_str(b, "\r\n");
	else
		buf_truncate(b, start);
}

/*
 * The identity header lines for a verified leaf, "Name: value\r\n" each,
 * as one malloc'd string (the caller frees it) of *len bytes; built once
 * per connection.  A fact that cannot be computed, and SAN headers of a
 * certificate without such SANs, are left out.  NULL without a leaf.
 * The blocks of the last certificates seen are kept (struct hdr_cache), so
 * a client reconnecting with the same certificate gets a copy.
 */
char *
hdr_identity_block(const struct hdr_set *hs, X509 *leaf, size_t *len)
{
	struct hdr_buf	 b = { NULL, 0, 0 };
	struct identity	 id;
	GENERAL_NAMES	*gens;
	unsigned char	 key[EVP_MAX_MD_SIZE];
	unsigned int	 klen = 0;
	bool		 keyed = false;
	char		*cached;
	int		 crit = -1;
	size_t		 i, clen = 0;

	if (len != NULL)
		*len = 0;
	if (hs == NULL || leaf == NULL)
		return NULL;
	if (hs->cache != NULL) {
		if (X509_digest(leaf, hs->cache->sha256, key, &klen) == 1 &&
		    klen == SHA256_DIGEST_LENGTH)
			keyed = true;
		else
			ERR_clear_error();
	}
	if (keyed && (cached = hdr_cache_get(hs->cache, key, &clen)) != NULL) {
		if (len != NULL)
			*len = clen;
		return cached;
	}
	identity_from_cert(&id, leaf);
	/* Two SAN extensions (crit -2) are ambiguous: send no SANs. */
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL)
		ERR_clear_error();
	buf_add(&b, "", 0);
	for (i = 0; i < HDR_NFIELDS; i++)
		if (hs->name[i] != NULL)
			hdr_line(&b, hs, (enum hdr_field)i, leaf, &id, gens);
	GENERAL_NAMES_free(gens);
	identity_clear(&id);
	if (keyed)
		hdr_cache_put(hs->cache, key, b.s, b.len);
	if (len != NULL)
		*len = b.len;
	return b.s;
}
