/*
 * explain.c - two offline commands for operators: `mtlsproxy check` (the
 * -t test plus warnings about what will break soon) and `mtlsproxy
 * explain` (why the daemon would allow or refuse one client certificate,
 * found by running the daemon's own verification code on it).
 */
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"

#define CHECK_SOON_DAYS	30		/* warn this long before an expiry */
#define DAY_SECS	86400
#define UB_NAME_ATTR	64		/* RFC 5280 ub-common-name etc. */

/* The allow lists, in the order the policy applies them. */
enum allow_field {
	AF_FINGERPRINT,
	AF_CN,
	AF_OU,
	AF_O,
	AF_DNS,
	AF_URI,
	AF_EMAIL,
	AF_COUNT
};

static const char *const allow_names[AF_COUNT] = {
	"fingerprint_sha256", "subject_cn", "subject_ou", "subject_o",
	"san_dns", "san_uri", "san_email"
};

/* ------------------------------------------------------------ helpers */

/* Every certificate of a PEM file (other blocks skipped) or one DER. */
static STACK_OF(X509) *
explain_read_certs(const char *path)
{
	STACK_OF(X509)	*sk;
	BIO		*bio;
	X509		*x;

	if (path == NULL || (bio = BIO_new_file(path, "rb")) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	sk = sk_X509_new_null();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		(void)BIO_reset(bio);
		if ((x = d2i_X509_bio(bio, NULL)) != NULL)
			sk_X509_push(sk, x);
		ERR_clear_error();
	}
	BIO_free(bio);
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

/*
 * Why --cert FILE holds no certificate, when its content tells: a client's
 * PKCS#12 bundle, its private key or its request are easy to pick by
 * mistake.
 */
static void
explain_not_cert_hint(const char *path, char *buf, size_t len)
{
	const unsigned char	*p;
	PKCS12			*p12;
	BIO			*bio;
	char			*data;
	long			 n;

	buf[0] = '\0';
	if ((bio = BIO_new_file(path, "rb")) == NULL) {
		ERR_clear_error();
		return;
	}
	data = xmalloc(64 * 1024 + 1);
	n = BIO_read(bio, data, 64 * 1024);
	BIO_free(bio);
	if (n < 0)
		n = 0;
	data[n] = '\0';
	p = (const unsigned char *)data;
	if (strspn(data, " \t\r\n") == (size_t)n)
		(void)snprintf(buf, len, ": the file is empty");
	else if (strstr(data, "CERTIFICATE REQUEST-----") != NULL)
		(void)snprintf(buf, len, ": it holds a certificate signing "
		    "request (CSR), not a certificate");
	else if (strstr(data, "PRIVATE KEY-----") != NULL)
		(void)snprintf(buf, len, ": it holds a private key, not a "
		    "certificate (give the certificate file)");
	else if ((p12 = d2i_PKCS12(NULL, &p, n)) != NULL) {
		PKCS12_free(p12);
		(void)snprintf(buf, len, ": it is a PKCS#12 bundle "
		    "(.p12/.pfx); take the client certificate and its "
		    "intermediates out with \"openssl pkcs12 -in %s -nokeys "
		    "-out client.pem\" and give --cert client.pem", path);
	}
	ERR_clear_error();
	free(data);
}

/* Every CRL of a PEM file, or one DER CRL. */
static STACK_OF(X509_CRL) *
explain_read_crls(const char *path)
{
	STACK_OF(X509_CRL)	*sk;
	X509_CRL		*crl;
	BIO			*bio;

	if (path == NULL || (bio = BIO_new_file(path, "rb")) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	sk = sk_X509_CRL_new_null();
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_CRL_push(sk, crl);
	ERR_clear_error();
	if (sk_X509_CRL_num(sk) == 0) {
		(void)BIO_reset(bio);
		if ((crl = d2i_X509_CRL_bio(bio, NULL)) != NULL)
			sk_X509_CRL_push(sk, crl);
		ERR_clear_error();
	}
	BIO_free(bio);
	return sk;
}

static void
explain_free_certs(STACK_OF(X509) *sk)
{
	sk_X509_pop_free(sk, X509_free);
}

static void
explain_free_crls(STACK_OF(X509_CRL) *sk)
{
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
}

/* A name in RFC 4514 form, never NULL; the caller frees it. */
static char *
explain_name(const X509_NAME *n)
{
	char	*s = x509_name_rfc4514(n);

	return s != NULL ? s : xstrdup("(unprintable name)");
}

static time_t
explain_time(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return 0;
	}
	return timegm(&tm);
}

static char *
explain_date(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

/* "9 days left", "less than a day left". */
static char *
explain_left(time_t end, time_t now, char *buf, size_t len)
{
	long long	days;

	/* Rounded up: a certificate made with -days 10 has "10 days left". */
	days = ((long long)(end - now) + DAY_SECS - 1) / DAY_SECS;
	if (end - now < DAY_SECS)
		snprintf(buf, len, "less than a day left");
	else
		snprintf(buf, len, "%lld day%s left", days, days == 1 ? "" :
		    "s");
	return buf;
}

static bool
explain_self_signed(X509 *x)
{
	int	r = X509_self_signed(x, 0);

	ERR_clear_error();
	return r == 1;
}

/* Is x (the same certificate) in sk? */
static bool
explain_has_cert(STACK_OF(X509) *sk, X509 *x)
{
	int	i;

	for (i = 0; sk != NULL && i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return true;
	return false;
}

/* Append a value from a certificate, printable ASCII kept, else \xHH. */
static void
explain_put_ia5(FILE *fp, const unsigned char *s, int len)
{
	int	i;

	for (i = 0; i < len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f)
			fputc(s[i], fp);
		else
			fprintf(fp, "\\x%02x", s[i]);
	}
}

/* Number of UTF-8 characters (continuation bytes not counted). */
static size_t
explain_utf8_len(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* The strlist of one allow field; NULL for fingerprints. */
static const struct strlist *
allow_list(const struct cfg_allow *a, enum allow_field f)
{
	switch (f) {
	case AF_CN:
		return &a->subject_cn;
	case AF_OU:
		return &a->subject_ou;
	case AF_O:
		return &a->subject_o;
	case AF_DNS:
		return &a->san_dns;
	case AF_URI:
		return &a->san_uri;
	case AF_EMAIL:
		return &a->san_email;
	default:
		return NULL;
	}
}

static size_t
allow_count(const struct cfg_allow *a, enum allow_field f)
{
	const struct strlist	*l = allow_list(a, f);

	return l != NULL ? l->n : a->n_fingerprint_sha256;
}

static struct cfg_loc
allow_loc(const struct cfg_allow *a, enum allow_field f)
{
	static const struct cfg_loc	 none = { 0, 0 };

	switch (f) {
	case AF_FINGERPRINT:
		return a->fingerprint_sha256_loc;
	case AF_CN:
		return a->subject_cn_loc;
	case AF_OU:
		return a->subject_ou_loc;
	case AF_O:
		return a->subject_o_loc;
	case AF_DNS:
		return a->san_dns_loc;
	case AF_URI:
		return a->san_uri_loc;
	case AF_EMAIL:
		return a->san_email_loc;
	default:
		return none;
	}
}

/* One value of a field as text (fingerprints in lower-case hex). */
static void
allow_value(const struct cfg_allow *a, enum allow_field f, size_t j,
    char *buf, size_t len)
{
	const struct strlist	*l = allow_list(a, f);
	size_t			 i;

	if (l != NULL) {
		snprintf(buf, len, "%s", l->v[j]);
		return;
	}
	buf[0] = '\0';
	for (i = 0; i < FINGERPRINT_LEN && 2 * i + 2 < len; i++)
		snprintf(buf + 2 * i, 3, "%02x", a->fingerprint_sha256[j][i]);
}

/*
 * Apply one allow field (all its values, or only value j) to x with the
 * daemon's policy code; true if it matches, else why says what the log
 * would say.
 */
static bool
allow_test(const struct cfg_allow *a, enum allow_field f, size_t j,
    bool all, X509 *x, char *why, size_t whylen)
{
	struct cfg_allow	 one;
	struct strlist		*dst;
	const struct strlist	*src = allow_list(a, f);
	struct policy		*p;
	int			 r;

	memset(&one, 0, sizeof(one));
	if (src == NULL) {
		one.fingerprint_sha256 = all ? a->fingerprint_sha256 :
		    &a->fingerprint_sha256[j];
		one.n_fingerprint_sha256 = all ? a->n_fingerprint_sha256 : 1;
	} else {
		dst = (struct strlist *)allow_list(&one, f);
		dst->v = all ? src->v : &src->v[j];
		dst->n = all ? src->n : 1;
	}
	p = policy_new(&one, CLIENT_EKU_IF_PRESENT);
	r = policy_check(p, x, why, whylen);
	policy_free(p);
	return r == 0;
}

static bool
allow_any(const struct cfg_allow *a)
{
	int	f;

	for (f = 0; f < AF_COUNT; f++)
		if (allow_count(a, f) > 0)
			return true;
	return false;
}

/* ------------------------------------------------------------- check */

/* State of one `mtlsproxy check` run. */
struct check {
	const struct cfg	*cfg;
	const char		*path;
	time_t			 now;
	unsigned		 errors;
	unsigned		 warnings;
	STACK_OF(X509)		*roots;		/* owned; self-signed CAs */
	STACK_OF(X509)		*cas;		/* owned; the other CAs */
};

static void
check_report(struct check *c, bool error, struct cfg_loc loc,
    const char *fmt, ...) PRINTF_LIKE(4, 5);

/* One finding: "FILE:LINE:COL: warning: ..." on stdout. */
static void
check_report(struct check *c, bool error, struct cfg_loc loc,
    const char *fmt, ...)
{
	va_list	ap;

	if (loc.line > 0)
		printf("%s:%u:%u: %s: ", c->path, loc.line, loc.col,
		    error ? "error" : "warning");
	else
		printf("%s: %s: ", c->path, error ? "error" : "warning");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (error)
		c->errors++;
	else
		c->warnings++;
}

/* A loading error from the errlist, with "error: " after its place. */
static void
check_print_error(const char *path, const char *msg)
{
	size_t		 n = strlen(path);
	const char	*p, *q;
	int		 k;

	if (strncmp(msg, path, n) != 0 || msg[n] != ':') {
		printf("%s: error: %s\n", path, msg);
		return;
	}
	/* "FILE:" then up to two "NUMBER:" (line, column) */
	p = msg + n + 1;
	for (k = 0; k < 2; k++) {
		q = p + strspn(p, "0123456789");
		if (q == p || *q != ':')
			break;
		p = q + 1;
	}
	printf("%.*s error: %s\n", (int)(p - msg), msg, p + strspn(p, " "));
}

/*
 * Dates of one certificate that matters: expired (an error when the
 * listener cannot work without it), not yet valid, or expiring soon.
 */
static void
check_cert_dates(struct check *c, struct cfg_loc loc, X509 *x,
    const char *label, const char *who, const char *file,
    bool expired_is_error, const char *after)
{
	time_t	 na = explain_time(X509_get0_notAfter(x));
	time_t	 nb = explain_time(X509_get0_notBefore(x));
	char	*name, when[64], left[64];

	name = explain_name(X509_get_subject_name(x));
	if (na != 0 && na < c->now)
		check_report(c, expired_is_error, loc, "%s: %s \"%s\" in %s "
		    "expired on %s: %s", label, who, name, file,
		    explain_date(na, when, sizeof(when)), after);
	else if (nb != 0 && nb > c->now)
		check_report(c, false, loc, "%s: %s \"%s\" in %s is not "
		    "valid until %s (check the clock): %s", label, who, name,
		    file,
		    explain_date(nb, when, sizeof(when)), after);
	else if (na != 0 && na - c->now < CHECK_SOON_DAYS * DAY_SECS)
		check_report(c, false, loc, "%s: %s \"%s\" in %s expires "
		    "on %s (%s); after that, %s", label, who, name, file,
		    explain_date(na, when, sizeof(when)),
		    explain_left(na, c->now, left, sizeof(left)), after);
	free(name);
}

/*
 * Can a client build the server's chain?  It must lead from the leaf to a
 * root the clients trust.  The file (tls.cert, or the PKCS#12's CA
 * certificates) must hold every intermediate; the root may be left out.
 * Roots known here: the system trust store and the self-signed
 * certificates of every client_auth.ca (a private PKI often signs both).
 */
static void
check_server_chain(struct check *c, const char *label, struct cfg_loc loc,
    const char *file, X509 *leaf, STACK_OF(X509) *chain)
{
	X509_STORE	*store;
	X509_STORE_CTX	*xs;
	X509		*top;
	char		*lname, *iname;
	int		 i, err, depth;

	if (explain_self_signed(leaf))
		return;		/* pinned by its clients */
	if ((store = X509_STORE_new()) == NULL ||
	    (xs = X509_STORE_CTX_new()) == NULL) {
		X509_STORE_free(store);
		ERR_clear_error();
		return;
	}
	(void)X509_STORE_set_default_paths(store);
	for (i = 0; i < sk_X509_num(c->roots); i++)
		(void)X509_STORE_add_cert(store, sk_X509_value(c->roots, i));
	ERR_clear_error();
	if (X509_STORE_CTX_init(xs, store, leaf, chain) != 1)
		goto done;
	/* Expiry is reported on its own; here only the path matters. */
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(xs),
	    X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(xs) == 1)
		goto done;
	err = X509_STORE_CTX_get_error(xs);
	depth = X509_STORE_CTX_get_error_depth(xs);
	top = X509_STORE_CTX_get_current_cert(xs);
	lname = explain_name(X509_get_subject_name(leaf));
	iname = explain_name(X509_get_issuer_name(leaf));
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		/*
		 * Only the leaf's own issuer must be in the file: above the
		 * last intermediate may be a private root that the clients
		 * hold and this machine does not.
		 */
		if (top != NULL && X509_cmp(top, leaf) != 0)
			break;
		for (i = 0; i < sk_X509_num(c->cas); i++)
			if (X509_check_issued(sk_X509_value(c->cas, i),
			    leaf) == X509_V_OK)
				break;
		if (i < sk_X509_num(c->cas))
			check_report(c, false, loc, "%s: the certificate file "
			    "%s has no issuer certificate for \"%s\": its "
			    "issuer, the intermediate CA \"%s\", is in a "
			    "client_auth.ca file but is not sent; clients "
			    "that do not have the intermediate will fail: "
			    "append it to %s (leaf first, then "
			    "intermediates)", label, file, lname, iname, file);
		else
			check_report(c, false, loc, "%s: the certificate file "
			    "%s has no issuer certificate for \"%s\" (issued "
			    "by \"%s\", which is neither in the system trust "
			    "store nor in a client_auth.ca file): if \"%s\" "
			    "is an intermediate CA, clients that do not have it "
			    "will fail: append it to %s (leaf first, then "
			    "intermediates); if it is a private root your "
			    "clients trust, nothing is missing", label, file,
			    lname, iname, iname, file);
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		break;		/* a private root, sent along: fine */
	default:
		check_report(c, false, loc, "%s: the server certificate chain "
		    "in %s does not verify at depth %d: %s", label, file,
		    depth, X509_verify_cert_error_string(err));
	}
	free(lname);
	free(iname);
 done:
	X509_STORE_CTX_free(xs);
	X509_STORE_free(store);
	ERR_clear_error();
}

/*
 * The server's certificate in a file read here (the runtime was not
 * built): the first, unless it issued another one of the file, as an
 * intermediate pasted before the leaf does (loading reported that
 * order as an error).  Then it is the one certificate that issued none
 * of the others, or NULL when that is not clear: the leaf checks must
 * not judge an intermediate as the server's certificate.  Taken out of
 * sk; the caller frees it.
 */
static X509 *
check_file_leaf(STACK_OF(X509) *sk)
{
	int	i, j, leaf = -1;

	for (j = 1; j < sk_X509_num(sk); j++)
		if (X509_check_issued(sk_X509_value(sk, 0),
		    sk_X509_value(sk, j)) == X509_V_OK)
			break;
	if (j == sk_X509_num(sk))
		return sk_X509_shift(sk);
	for (i = 0; i < sk_X509_num(sk); i++) {
		for (j = 0; j < sk_X509_num(sk); j++)
			if (j != i && X509_check_issued(sk_X509_value(sk, i),
			    sk_X509_value(sk, j)) == X509_V_OK)
				break;
		if (j < sk_X509_num(sk))
			continue;	/* an issuer */
		if (leaf != -1)
			return NULL;
		leaf = i;
	}
	ERR_clear_error();
	return leaf != -1 ? sk_X509_delete(sk, leaf) : NULL;
}

/* The server certificate and the chain sent with it. */
static void
check_server(struct check *c, const struct cfg_listener *l,
    const struct tls_server *srv, const char *label)
{
	STACK_OF(X509)	*file_certs = NULL, *chain = NULL;
	X509		*leaf = NULL;
	const char	*file;
	struct cfg_loc	 loc;
	char		 who[64];
	int		 i;

	if (l->tls.pkcs12.path != NULL) {
		file = l->tls.pkcs12.path;
		loc = l->tls.pkcs12.loc;
	} else {
		file = l->tls.cert.path;
		loc = l->tls.cert.loc;
	}
	if (srv != NULL && srv->ctx != NULL) {
		/* What the daemon really sends. */
		leaf = SSL_CTX_get0_certificate(srv->ctx);
		(void)SSL_CTX_get0_chain_certs(srv->ctx, &chain);
	} else if (l->tls.pkcs12.path == NULL &&
	    (file_certs = explain_read_certs(file)) != NULL) {
		leaf = check_file_leaf(file_certs);
		chain = file_certs;
	}
	if (leaf == NULL || file == NULL)
		goto done;
	snprintf(who, sizeof(who), "server certificate");
	check_cert_dates(c, loc, leaf, label, who, file, true,
	    "clients refuse the server: renew it");
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		snprintf(who, sizeof(who), "chain certificate %d", i + 2);
		check_cert_dates(c, loc, sk_X509_value(chain, i), label, who,
		    file, true, "clients refuse the server: replace it with "
		    "a current one from the CA");
	}
	if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) == 0) {
		char *name = explain_name(X509_get_subject_name(leaf));

		check_report(c, false, loc, "%s: server certificate \"%s\" in "
		    "%s is not for TLS servers (its keyUsage or "
		    "extendedKeyUsage leaves out serverAuth): clients "
		    "refuse it", label, name, file);
		free(name);
	}
	ERR_clear_error();
	check_server_chain(c, label, loc, file, leaf, chain);
 done:
	if (file_certs != NULL) {
		X509_free(leaf);
		explain_free_certs(file_certs);
	}
}

/* Does a CRL of crls come from (and verify with) the CA x? */
static X509_CRL *
check_crl_of(STACK_OF(X509_CRL) *crls, X509 *x)
{
	X509_CRL	*crl;
	EVP_PKEY	*pk = X509_get0_pubkey(x);
	int		 i;

	for (i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++) {
		crl = sk_X509_CRL_value(crls, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(x)) == 0 && pk != NULL &&
		    X509_CRL_verify(crl, pk) == 1) {
			ERR_clear_error();
			return crl;
		}
		ERR_clear_error();
	}
	return NULL;
}

/*
 * A certificate of client_auth.ca that OpenSSL does not take as a CA.
 * The advice depends on what it is: a CA issued without the extensions
 * must be issued again (listing it in trusted_certs would not help: a
 * pinned certificate is never an issuer); only a client's own (leaf)
 * certificate is let in by trusted_certs.
 */
static void
check_not_ca(struct check *c, const struct cfg_client_auth *ca, X509 *x,
    const char *label)
{
	uint32_t	 fl = X509_get_extension_flags(x);
	char		*name, list[256];

	name = explain_name(X509_get_subject_name(x));
	if (X509_get_version(x) == X509_VERSION_1)
		check_report(c, false, ca->ca.loc, "%s: \"%s\" in %s is a "
		    "version 1 certificate without extensions (as \"openssl "
		    "x509 -req\" makes it without -extfile): OpenSSL accepts "
		    "a v1 certificate as a CA only when it is a self-signed "
		    "root, so clients whose chain goes through it are refused "
		    "with code=invalid_ca; issue it again with -extfile naming "
		    "a file that holds basicConstraints=critical,CA:TRUE and "
		    "keyUsage=critical,keyCertSign,cRLSign", label, name,
		    ca->ca.path);
	else if ((fl & EXFLAG_BCONS) != 0 && (fl & EXFLAG_CA) != 0)
		check_report(c, false, ca->ca.loc, "%s: \"%s\" in %s is not "
		    "a CA certificate for OpenSSL: its keyUsage (%s) has no "
		    "keyCertSign, so clients whose chain goes through it are "
		    "refused with code=invalid_ca; issue it again with "
		    "keyUsage=critical,keyCertSign,cRLSign", label, name,
		    ca->ca.path, tls_ku_str(x, list, sizeof(list)));
	else if ((fl & EXFLAG_BCONS) != 0 || (fl & (EXFLAG_KUSAGE |
	    EXFLAG_XKUSAGE)) != 0)
		check_report(c, false, ca->ca.loc, "%s: \"%s\" in %s is not "
		    "a CA certificate (%s): no client certificate can chain "
		    "to it; to let that one certificate in, list it in "
		    "client_auth.trusted_certs", label, name, ca->ca.path,
		    (fl & EXFLAG_BCONS) != 0 ? "basicConstraints CA:FALSE" :
		    "no basicConstraints, and the key usages of a client "
		    "certificate");
	else
		check_report(c, false, ca->ca.loc, "%s: \"%s\" in %s is not "
		    "a CA certificate (a version 3 certificate without "
		    "basicConstraints): no client certificate can chain to "
		    "it; if it is a CA, issue it again with "
		    "basicConstraints=critical,CA:TRUE and "
		    "keyUsage=critical,keyCertSign,cRLSign; if it is a "
		    "client's own certificate, list it in "
		    "client_auth.trusted_certs instead", label, name,
		    ca->ca.path);
	ERR_clear_error();
	free(name);
}

/*
 * With partial_chain: false only a self-signed root is a trust anchor: a
 * CA of client_auth.ca whose issuer is not in the file can anchor no
 * chain (the root a client sends is not trusted).  Reported once, at the
 * top: the CAs it issued chain up to it and fail with it.
 */
static void
check_ca_roots(struct check *c, const struct cfg_client_auth *ca,
    STACK_OF(X509) *cas, const char *label)
{
	X509	*x;
	char	*name, *iname;
	int	 i, j, nroots = 0;

	if (ca->partial_chain)
		return;
	for (i = 0; i < sk_X509_num(cas); i++)
		if (explain_self_signed(sk_X509_value(cas, i)) &&
		    X509_check_ca(sk_X509_value(cas, i)) != 0)
			nroots++;
	for (i = 0; i < sk_X509_num(cas); i++) {
		x = sk_X509_value(cas, i);
		if (explain_self_signed(x) || X509_check_ca(x) == 0)
			continue;
		/* Its issuer, or a self-signed twin (a cross-signed root). */
		for (j = 0; j < sk_X509_num(cas); j++) {
			X509 *y = sk_X509_value(cas, j);

			if (j != i && (X509_check_issued(y, x) == X509_V_OK ||
			    (explain_self_signed(y) && X509_NAME_cmp(
			    X509_get_subject_name(y), X509_get_subject_name(x))
			    == 0 && EVP_PKEY_eq(X509_get0_pubkey(y),
			    X509_get0_pubkey(x)) == 1)))
				break;
		}
		if (j < sk_X509_num(cas))
			continue;
		name = explain_name(X509_get_subject_name(x));
		iname = explain_name(X509_get_issuer_name(x));
		check_report(c, false, ca->ca.loc, "%s: CA certificate \"%s\" "
		    "in %s is not a root (its issuer is \"%s\"), and with "
		    "partial_chain: false (the default) only a self-signed "
		    "root is a trust anchor: clients whose chain goes through "
		    "it are refused with code=unknown_ca%s; add its root "
		    "\"%s\" to client_auth.ca, or set partial_chain: true to "
		    "trust the intermediate as an anchor", label, name,
		    ca->ca.path, iname, nroots == 0 &&
		    ca->n_trusted_certs == 0 ?
		    " (client_auth.ca holds no root: every client is "
		    "refused)" : "", iname);
		free(name);
		free(iname);
	}
	ERR_clear_error();
}

/* CA and trusted certificates, CRL dates, CRL coverage. */
static void
check_client_auth(struct check *c, const struct cfg_client_auth *ca,
    const char *label)
{
	STACK_OF(X509)		*cas, *tr;
	STACK_OF(X509_CRL)	*crls = NULL;
	X509_CRL		*crl;
	time_t			 t, lu, soon;
	char			 when[64], left[64], *name;
	size_t			 k;
	int			 i;

	cas = explain_read_certs(ca->ca.path);
	for (i = 0; cas != NULL && i < sk_X509_num(cas); i++) {
		X509	*x = sk_X509_value(cas, i);

		check_cert_dates(c, ca->ca.loc, x, label,
		    "CA certificate", ca->ca.path, false, "clients whose "
		    "chain goes through it are refused with code=expired");
		/* Self-signed v1 roots count as CAs, as OpenSSL takes them. */
		if (X509_check_ca(x) == 0)
			check_not_ca(c, ca, x, label);
	}
	if (cas != NULL)
		check_ca_roots(c, ca, cas, label);
	for (k = 0; k < ca->n_trusted_certs; k++) {
		tr = explain_read_certs(ca->trusted_certs[k].path);
		for (i = 0; tr != NULL && i < sk_X509_num(tr); i++)
			check_cert_dates(c, ca->trusted_certs[k].loc,
			    sk_X509_value(tr, i), label, "trusted certificate",
			    ca->trusted_certs[k].path, false, "that client is "
			    "refused with code=expired");
		explain_free_certs(tr);
	}
	if (ca->crl.path == NULL ||
	    (crls = explain_read_crls(ca->crl.path)) == NULL)
		goto done;
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		crl = sk_X509_CRL_value(crls, i);
		name = explain_name(X509_CRL_get_issuer(crl));
		t = explain_time(X509_CRL_get0_nextUpdate(crl));
		lu = explain_time(X509_CRL_get0_lastUpdate(crl));
		/*
		 * A CRL is re-issued on a schedule, often well inside 30
		 * days (monthly, weekly, every 72 hours): warn only in the
		 * last quarter of its validity, and at most 30 days ahead,
		 * so that a CRL published on time never warns.
		 */
		soon = t > lu && lu != 0 ? (t - lu) / 4 : CHECK_SOON_DAYS *
		    DAY_SECS;
		if (soon > CHECK_SOON_DAYS * DAY_SECS)
			soon = CHECK_SOON_DAYS * DAY_SECS;
		if (lu > c->now)
			check_report(c, true, ca->crl.loc, "%s: the CRL from "
			    "\"%s\" in %s is not valid before %s (its "
			    "lastUpdate): clients are refused with "
			    "code=crl_not_yet_valid (check the clock)", label,
			    name, ca->crl.path, explain_date(lu, when,
			    sizeof(when)));
		else if (t != 0 && t < c->now)
			check_report(c, true, ca->crl.loc, "%s: the CRL from "
			    "\"%s\" in %s passed its nextUpdate on %s: "
			    "clients whose chain goes through that CA are "
			    "refused with code=crl_expired until a fresh CRL "
			    "is published", label, name, ca->crl.path,
			    explain_date(t, when, sizeof(when)));
		else if (t != 0 && t - c->now < soon)
			check_report(c, false, ca->crl.loc, "%s: the CRL from "
			    "\"%s\" in %s has its nextUpdate on %s (%s): "
			    "publish a fresh one before then, or clients are "
			    "refused with code=crl_expired", label, name,
			    ca->crl.path, explain_date(t, when, sizeof(when)),
			    explain_left(t, c->now, left, sizeof(left)));
		free(name);
	}
	/* With crl set, every CA a chain goes through needs its own CRL. */
	for (i = 0; cas != NULL && i < sk_X509_num(cas); i++) {
		X509 *x = sk_X509_value(cas, i);

		if (X509_check_ca(x) == 0 || check_crl_of(crls, x) != NULL)
			continue;
		name = explain_name(X509_get_subject_name(x));
		check_report(c, false, ca->crl.loc, "%s: client_auth.crl %s "
		    "has no CRL from \"%s\" (a CA in client_auth.ca): clients "
		    "whose chain goes through it are refused with "
		    "code=crl_missing", label, ca->crl.path, name);
		free(name);
	}
 done:
	explain_free_crls(crls);
	explain_free_certs(cas);
}

/* Why a subject attribute value can never appear, or NULL. */
static const char *
check_attr_value(enum allow_field f, const char *v, char *buf, size_t len)
{
	static const char *const ub[] = { "", "ub-common-name",
	    "ub-organizational-unit-name", "ub-organization-name" };
	static const char *const what[] = { "", "CN", "OU", "O" };
	size_t	n;

	if (*v == '\0')
		return "a subject attribute is never empty";
	if ((n = explain_utf8_len(v)) > UB_NAME_ATTR) {
		snprintf(buf, len, "RFC 5280 limits a subject %s to %d "
		    "characters (%s), and this entry has %zu", what[f],
		    UB_NAME_ATTR, ub[f], n);
		return buf;
	}
	return NULL;
}

/* Why a dNSName can never be v, or NULL. */
static const char *
check_dns_value(const char *v, char *buf, size_t len)
{
	const char	*p, *label;

	if (*v == '\0')
		return "a dNSName is never empty";
	for (p = v; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '*')
			continue;
		if (ch < 0x20 || ch >= 0x7f)
			snprintf(buf, len, "a dNSName SAN is ASCII (an "
			    "IA5String, RFC 5280 4.2.1.6; internationalized "
			    "names are written as xn-- A-labels), and this "
			    "entry has byte 0x%02x", ch);
		else
			snprintf(buf, len, "a dNSName SAN holds a host name "
			    "only: letters, digits, '-' and '.' (RFC 5280 "
			    "4.2.1.6), and this entry has '%c'%s", ch,
			    ch == ':' || ch == '/' ? " (no scheme, port or "
			    "path)" : "");
		return buf;
	}
	if (strlen(v) > 253)
		return "a DNS name has at most 253 characters";
	for (label = v; label != NULL; label = p != NULL ? p + 1 : NULL) {
		size_t n;

		p = strchr(label, '.');
		n = p != NULL ? (size_t)(p - label) : strlen(label);
		if (n == 0 && p != NULL)
			return "a DNS name has no empty label (no leading "
			    "'.' and no \"..\")";
		if (n > 63)
			return "a DNS label has at most 63 characters";
	}
	return NULL;
}

/* SPIFFE ID rules (SPIFFE-ID.md 2.1, 2.2) for a "spiffe:" pattern. */
static const char *
check_spiffe_value(const char *v)
{
	const char	*td, *p, *seg;
	size_t		 n;

	if (strncmp(v, "spiffe://", 9) != 0)
		return "a SPIFFE ID starts with \"spiffe://\" in lower case";
	td = v + 9;
	n = strcspn(td, "/");
	if (n == 0)
		return "a SPIFFE ID has a trust domain after \"spiffe://\"";
	for (p = td; p < td + n; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-' || *p == '_'))
			return "a SPIFFE trust domain holds only lower-case "
			    "letters, digits, '.', '-' and '_'";
	if (td[n] == '\0')
		return NULL;
	for (seg = td + n + 1; seg != NULL; seg = p != NULL ? p + 1 : NULL) {
		p = strchr(seg, '/');
		n = p != NULL ? (size_t)(p - seg) : strlen(seg);
		if (n == 0)
			return "a SPIFFE ID has no empty path segment (no "
			    "\"//\" and no trailing '/')";
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return "a SPIFFE ID has no \".\" or \"..\" path "
			    "segment";
		if (n == 1 && seg[0] == '*')
			continue;	/* the wildcard: one segment */
		if (strspn(seg, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < n)
			return "a SPIFFE path segment holds only letters, "
			    "digits, '.', '-' and '_'";
	}
	return NULL;
}

/* Why a URI SAN can never match the pattern v, or NULL. */
static const char *
check_uri_value(const char *v, char *buf, size_t len)
{
	const char	*p;
	size_t		 n;

	for (p = v; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch <= 0x20 || ch >= 0x7f || strchr("\"<>\\^`{|}",
		    ch) != NULL) {
			if (ch > 0x20 && ch < 0x7f)
				snprintf(buf, len, "a URI SAN holds only the "
				    "characters RFC 3986 allows (others are "
				    "%%-encoded), and this entry has '%c'",
				    ch);
			else
				snprintf(buf, len, "a URI SAN holds only the "
				    "characters RFC 3986 allows (others are "
				    "%%-encoded), and this entry has %s",
				    ch == ' ' ? "a space" : "a non-ASCII or "
				    "control byte");
			return buf;
		}
	}
	n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+.-");
	if (n == 0 || v[n] != ':' || !((v[0] >= 'a' && v[0] <= 'z') ||
	    (v[0] >= 'A' && v[0] <= 'Z')))
		return "a URI SAN is an absolute URI with a scheme (RFC 5280 "
		    "4.2.1.6), e.g. \"spiffe://corp.example/ns/prod/web\"";
	if (n == 6 && strncasecmp(v, "spiffe", 6) == 0)
		return check_spiffe_value(v);
	return NULL;
}

/* Why an rfc822Name can never be v, or NULL. */
static const char *
check_email_value(const char *v)
{
	const char	*p;

	if (strchr(v, '@') == NULL)
		return "an rfc822Name SAN is a mailbox, local-part@domain "
		    "(RFC 5280 4.2.1.6)";
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "an rfc822Name SAN is ASCII (an IA5String); "
			    "internationalized addresses are SmtpUTF8Mailbox "
			    "names, which san_email does not match";
	return NULL;
}

/* Entries no certificate issued under RFC 5280 (or SPIFFE) can match. */
static void
check_allow_syntax(struct check *c, const struct cfg_allow *a,
    const char *label)
{
	const struct strlist	*l;
	const char		*why;
	char			 buf[256];
	size_t			 j;
	int			 f;

	for (f = AF_CN; f < AF_COUNT; f++) {
		l = allow_list(a, f);
		for (j = 0; j < l->n; j++) {
			switch (f) {
			case AF_CN:
			case AF_OU:
			case AF_O:
				why = check_attr_value(f, l->v[j], buf,
				    sizeof(buf));
				break;
			case AF_DNS:
				why = check_dns_value(l->v[j], buf,
				    sizeof(buf));
				break;
			case AF_URI:
				why = check_uri_value(l->v[j], buf,
				    sizeof(buf));
				break;
			default:
				why = check_email_value(l->v[j]);
			}
			if (why != NULL)
				check_report(c, false, allow_loc(a, f), "%s: "
				    "allow.%s entry \"%s\" can never match: "
				    "%s", label, allow_names[f], l->v[j], why);
		}
	}
}

/*
 * Why the daemon refuses x as a client certificate whatever the allow
 * lists say (code=wrong_purpose), or NULL; eku_only: client_eku: required
 * is the only reason.  The same checks as a handshake: OpenSSL's TLS
 * client purpose, then client_eku with the daemon's policy code.
 */
static const char *
check_client_purpose(const struct cfg_client_auth *ca, X509 *x, char *buf,
    size_t len, bool *eku_only)
{
	struct cfg_allow	 none;
	struct policy		*p;
	char			 why[256];
	int			 r;

	*eku_only = false;
	if (X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 0) {
		ERR_clear_error();
		return tls_purpose_why(x, false, buf, len);
	}
	ERR_clear_error();
	memset(&none, 0, sizeof(none));
	p = policy_new(&none, ca->client_eku);
	r = policy_check(p, x, why, sizeof(why));
	policy_free(p);
	if (r == 0)
		return NULL;
	*eku_only = true;
	snprintf(buf, len, "it has no extendedKeyUsage clientAuth, and "
	    "client_eku: required refuses a certificate without it");
	return buf;
}

/*
 * A trusted certificate the purpose checks refuse can never connect.
 * Without client_auth.ca only the trusted_certs can connect: allow
 * entries that none of them matches are dead, and if no trusted
 * certificate passes the purpose checks and the whole policy, every
 * client is refused.  Each finding names its real cause.
 */
static void
check_allow_trusted(struct check *c, const struct cfg_client_auth *ca,
    const char *label)
{
	const struct cfg_allow	*a = &ca->allow;
	STACK_OF(X509)		*tr, *all, *fit;
	struct policy		*p;
	char			 why[512], first[512], val[128], *name = NULL;
	size_t			 j, k, live, nlists = 0, *from = NULL;
	size_t			 nunfit = 0, neku = 0;
	int			 f, i;
	bool			 dead_field = false, eku_only, only_ca;

	if (ca->n_trusted_certs == 0)
		return;
	/* Without client_auth.ca these are the only way in. */
	only_ca = ca->ca.path == NULL;
	all = sk_X509_new_null();
	fit = sk_X509_new_null();
	for (k = 0; k < ca->n_trusted_certs; k++) {
		tr = explain_read_certs(ca->trusted_certs[k].path);
		while (tr != NULL && sk_X509_num(tr) > 0) {
			from = xreallocarray(from, sk_X509_num(all) + 1,
			    sizeof(*from));
			from[sk_X509_num(all)] = k;
			sk_X509_push(all, sk_X509_shift(tr));
		}
		explain_free_certs(tr);
	}
	if (sk_X509_num(all) == 0)
		goto done;
	for (i = 0; i < sk_X509_num(all); i++) {
		if (check_client_purpose(ca, sk_X509_value(all, i), why,
		    sizeof(why), &eku_only) == NULL)
			sk_X509_push(fit, sk_X509_value(all, i));
		else {
			nunfit++;
			neku += eku_only;
		}
	}
	if (only_ca && sk_X509_num(fit) == 0) {
		/* One finding for the listener, not one per certificate. */
		name = explain_name(X509_get_subject_name(
		    sk_X509_value(all, 0)));
		(void)check_client_purpose(ca, sk_X509_value(all, 0), first,
		    sizeof(first), &eku_only);
		if (neku == nunfit)
			check_report(c, false, ca->trusted_certs[0].loc, "%s: "
			    "client_eku: required, and none of the "
			    "certificates in client_auth.trusted_certs carries "
			    "the extendedKeyUsage clientAuth; without "
			    "client_auth.ca only those certificates are "
			    "accepted: every client is refused with "
			    "code=wrong_purpose; set client_eku: if_present, "
			    "or issue them again with extendedKeyUsage = "
			    "clientAuth", label);
		else
			check_report(c, false, ca->trusted_certs[0].loc, "%s: "
			    "no certificate in client_auth.trusted_certs is "
			    "fit for TLS client authentication (for \"%s\": "
			    "%s), and without client_auth.ca only those "
			    "certificates are accepted: every client is "
			    "refused with code=wrong_purpose", label, name,
			    first);
		free(name);
		name = NULL;
	} else {
		for (i = 0; nunfit > 0 && i < sk_X509_num(all); i++) {
			X509 *x = sk_X509_value(all, i);

			if (check_client_purpose(ca, x, why, sizeof(why),
			    &eku_only) == NULL)
				continue;
			name = explain_name(X509_get_subject_name(x));
			check_report(c, false, ca->trusted_certs[from[i]].loc,
			    "%s: trusted certificate \"%s\" in %s can never "
			    "connect: %s (code=wrong_purpose)", label, name,
			    ca->trusted_certs[from[i]].path, why);
			free(name);
			name = NULL;
		}
	}
	if (!only_ca || !allow_any(a))
		goto done;
	for (f = 0; f < AF_COUNT; f++) {
		bool *ok;

		if (allow_count(a, f) == 0)
			continue;
		nlists++;
		ok = xcalloc(allow_count(a, f), sizeof(*ok));
		for (live = 0, j = 0; j < allow_count(a, f); j++) {
			for (i = 0; i < sk_X509_num(all) && !ok[j]; i++)
				ok[j] = allow_test(a, f, j, false,
				    sk_X509_value(all, i), why, sizeof(why));
			live += ok[j];
		}
		if (live == 0) {
			dead_field = true;
			check_report(c, false, allow_loc(a, f), "%s: no "
			    "certificate in client_auth.trusted_certs matches "
			    "allow.%s, and without client_auth.ca only those "
			    "certificates are accepted: every client is "
			    "refused", label, allow_names[f]);
		} else {
			for (j = 0; j < allow_count(a, f); j++) {
				if (ok[j])
					continue;
				allow_value(a, f, j, val, sizeof(val));
				check_report(c, false, allow_loc(a, f), "%s: "
				    "allow.%s entry \"%s\" can never match: "
				    "it matches none of "
				    "client_auth.trusted_certs, and without "
				    "client_auth.ca only those certificates "
				    "are accepted", label, allow_names[f],
				    val);
			}
		}
		free(ok);
	}
	/* A dead list or no fit certificate: already said, and why. */
	if (dead_field || sk_X509_num(fit) == 0)
		goto done;
	/* Each list matches some certificate; does a fit one match them all? */
	p = policy_new(a, ca->client_eku);
	for (i = 0; i < sk_X509_num(fit); i++)
		if (policy_check(p, sk_X509_value(fit, i), why,
		    sizeof(why)) == 0)
			break;
	policy_free(p);
	if (i < sk_X509_num(fit))
		goto done;
	/* None does: is it the lists, or do only refused ones pass? */
	p = policy_new(a, CLIENT_EKU_IF_PRESENT);
	for (i = 0; i < sk_X509_num(all); i++)
		if (policy_check(p, sk_X509_value(all, i), why,
		    sizeof(why)) == 0)
			break;
	if (i < sk_X509_num(all)) {
		name = explain_name(X509_get_subject_name(
		    sk_X509_value(all, i)));
		(void)check_client_purpose(ca, sk_X509_value(all, i), first,
		    sizeof(first), &eku_only);
		check_report(c, false, a->loc, "%s: no certificate in "
		    "client_auth.trusted_certs both passes client_auth.allow "
		    "and can connect (\"%s\" passes allow, but %s), and "
		    "without client_auth.ca only those certificates are "
		    "accepted: every client is refused", label, name, first);
	} else {
		(void)policy_check(p, sk_X509_value(fit, 0), first,
		    sizeof(first));
		name = explain_name(X509_get_subject_name(
		    sk_X509_value(fit, 0)));
		check_report(c, false, a->loc, "%s: no certificate in "
		    "client_auth.trusted_certs passes client_auth.allow "
		    "(%sfor \"%s\": %s), and without client_auth.ca only "
		    "those certificates are accepted: every client is "
		    "refused", label, nlists > 1 ? "each list matches a "
		    "different certificate; " : "", name, first);
	}
	policy_free(p);
	free(name);
 done:
	free(from);
	sk_X509_free(fit);
	explain_free_certs(all);
}

static void
check_listener(struct check *c, const struct cfg_listener *l,
    const struct tls_server *srv)
{
	char	label[160];

	snprintf(label, sizeof(label), "listener \"%s\"", l->name ?
	    l->name : "?");
	check_server(c, l, srv, label);
	check_client_auth(c, &l->client_auth, label);
	check_allow_syntax(c, &l->client_auth.allow, label);
	check_allow_trusted(c, &l->client_auth, label);
}

/* The CA certificates of every listener, for the server chain check. */
static void
check_collect_cas(struct check *c)
{
	STACK_OF(X509)	*sk;
	X509		*x;
	size_t		 i;

	c->roots = sk_X509_new_null();
	c->cas = sk_X509_new_null();
	for (i = 0; i < c->cfg->nlisteners; i++) {
		sk = explain_read_certs(
		    c->cfg->listeners[i].client_auth.ca.path);
		while (sk != NULL && sk_X509_num(sk) > 0) {
			x = sk_X509_shift(sk);
			sk_X509_push(explain_self_signed(x) ? c->roots : c->cas,
			    x);
		}
		explain_free_certs(sk);
	}
}

/* What getopt_long (":" first) refused, for the command cmd. */
static void
opt_error(const char *cmd, int ch, char **argv)
{
	if (ch == ':')
		fprintf(stderr, "mtlsproxy %s: %s needs a value\n", cmd,
		    argv[optind - 1]);
	else if (optopt != 0)
		fprintf(stderr, "mtlsproxy %s: unknown option \"-%c\"\n", cmd,
		    optopt);
	else
		fprintf(stderr, "mtlsproxy %s: unknown option \"%s\"\n", cmd,
		    argv[optind - 1]);
}

/* A usage error: the synopsis and where the rest is, not the whole help. */
static int
check_usage_error(void)
{
	fprintf(stderr, "usage: mtlsproxy check [-c FILE] [--strict]\n"
	    "try 'mtlsproxy check --help'\n");
	return 2;
}

static void
check_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: mtlsproxy check [-c FILE] [--strict]\n"
	    "\n"
	    "Load the configuration and every certificate, key, CA and CRL it\n"
	    "names, as \"mtlsproxy -t\" does, and also warn about what will\n"
	    "break soon:\n"
	    "  - a server certificate (or a chain certificate sent with it),\n"
	    "    a client_auth.ca certificate or a trusted_certs certificate\n"
	    "    that expires within %d days (an expired server certificate\n"
	    "    is an error);\n"
	    "  - a CRL in the last quarter of its validity period, at most\n"
	    "    %d days before its nextUpdate (past: an error);\n"
	    "  - a server certificate file without the intermediate CA that\n"
	    "    links its certificate to a root;\n"
	    "  - a client_auth.crl without a CRL from a CA in client_auth.ca;\n"
	    "  - a client_auth.ca certificate that OpenSSL takes as no CA (a\n"
	    "    leaf, a v1 intermediate), or an intermediate without its\n"
	    "    root while partial_chain is false;\n"
	    "  - a trusted_certs certificate that can never connect (its\n"
	    "    purpose, or client_eku: required without clientAuth);\n"
	    "  - an allow entry that no certificate can match.\n"
	    "Each finding is one line, FILE:LINE:COL: error|warning: TEXT,\n"
	    "then a summary line.\n"
	    "\n"
	    "  -c FILE    configuration file (default %s)\n"
	    "  --strict   exit 2 if there are warnings\n"
	    "  -h, --help print this help and exit\n"
	    "\n"
	    "Exit status: 0 no errors (warnings allowed), 1 errors,\n"
	    "2 warnings with --strict, or a usage error.\n",
	    CHECK_SOON_DAYS, CHECK_SOON_DAYS, MTLSPROXY_CONFIG);
}

/* `mtlsproxy check`: argv[0] is "check". */
int
check_main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct errlist	 errs = { NULL, 0 }, scratch = { NULL, 0 };
	struct check	 c;
	struct runtime	*rt = NULL;
	struct cfg	*cfg, *own = NULL;
	const char	*path = MTLSPROXY_CONFIG;
	bool		 strict = false;
	size_t		 i;
	int		 ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 's':
			strict = true;
			break;
		case 'h':
			check_usage(stdout);
			return 0;
		default:
			opt_error("check", ch, argv);
			return check_usage_error();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mtlsproxy check: unexpected argument \"%s\"\n",
		    argv[optind]);
		return check_usage_error();
	}
	if (tls_init() == -1) {
		fprintf(stderr, "mtlsproxy: cannot initialise OpenSSL\n");
		return 1;
	}
	memset(&c, 0, sizeof(c));
	c.path = path;
	c.now = time(NULL);
	if ((cfg = cfg_load_partial(path, &errs)) != NULL && errs.n > 0) {
		/* Every problem at once: the files of sound listeners too. */
		runtime_check_files(cfg, &errs);
		(void)priv_check(cfg, &errs);
		cfg_free(cfg);
		cfg = NULL;
	} else if (cfg != NULL)
		(void)priv_check(cfg, &errs);
	if (cfg != NULL && (rt = runtime_new(cfg, &errs)) == NULL) {
		/* runtime_new freed cfg; warnings still need the tree. */
		own = cfg_load(path, &scratch);
		errlist_free(&scratch);
	}
	for (i = 0; i < errs.n; i++)
		check_print_error(path, errs.v[i]);
	c.errors = (unsigned)errs.n;
	errlist_free(&errs);
	c.cfg = rt != NULL ? rt->cfg : own;
	if (c.cfg != NULL) {
		check_collect_cas(&c);
		for (i = 0; i < c.cfg->nlisteners; i++)
			check_listener(&c, &c.cfg->listeners[i],
			    rt != NULL && i < rt->nservers ?
			    &rt->servers[i] : NULL);
		explain_free_certs(c.roots);
		explain_free_certs(c.cas);
	}
	printf("configuration %s: %u error%s, %u warning%s\n", path,
	    c.errors, c.errors == 1 ? "" : "s", c.warnings,
	    c.warnings == 1 ? "" : "s");
	runtime_unref(rt);
	cfg_free(own);
	if (c.errors > 0)
		rc = 1;
	else if (strict && c.warnings > 0)
		rc = 2;
	else
		rc = 0;
	return rc;
}

/* ----------------------------------------------------------- explain */

#define TRACE_MAX	32

/* What OpenSSL's verify callback saw, in its order. */
struct trace {
	struct {
		int	 depth;
		int	 err;		/* X509_V_OK: passed */
	}	 ev[TRACE_MAX];
	size_t	 n;
};

/* The tracer tls_x509_cb calls: record, never decide. */
static void
explain_trace_cb(void *arg, int ok, X509_STORE_CTX *xs)
{
	struct trace	*t = arg;

	if (t->n == TRACE_MAX)
		return;
	t->ev[t->n].depth = X509_STORE_CTX_get_error_depth(xs);
	t->ev[t->n].err = ok ? X509_V_OK : X509_STORE_CTX_get_error(xs);
	t->n++;
}

/* Everything one explain run looks at. */
struct explain {
	const struct cfg_listener *l;		/* borrowed from rt */
	const struct tls_server	*srv;		/* borrowed from rt */
	X509			*leaf;		/* borrowed from sent */
	STACK_OF(X509)		*sent;		/* owned; the rest sent */
	STACK_OF(X509)		*built;		/* owned; OpenSSL's chain */
	STACK_OF(X509)		*ca_certs;	/* owned; client_auth.ca */
	time_t			 at;
	bool			 trusted_leaf;	/* in trusted_certs */
	bool			 cut;		/* stopped at verify_depth */
	bool			 failed[8];	/* a check category failed */
};

/* Check categories, for matching the verdict's code to a line. */
enum { EC_CHAIN, EC_VALIDITY, EC_REVOCATION, EC_PURPOSE, EC_STRENGTH,
    EC_DEPTH, EC_ALLOW, EC_OTHER };

static const char *const explain_cat_names[] = { "chain", "validity",
    "revocation", "purpose", "strength", "verify_depth", "allow", "other" };

static int
explain_code_cat(const char *code)
{
	static const struct {
		const char	*code;
		int		 cat;
	} map[] = {
		{ "unknown_ca", EC_CHAIN }, { "invalid_ca", EC_CHAIN },
		{ "bad_signature", EC_CHAIN }, { "path_length", EC_CHAIN },
		{ "expired", EC_VALIDITY },
		{ "not_yet_valid", EC_VALIDITY }, { "revoked", EC_REVOCATION },
		{ "crl_expired", EC_REVOCATION },
		{ "crl_not_yet_valid", EC_REVOCATION },
		{ "crl_missing", EC_REVOCATION },
		{ "wrong_purpose", EC_PURPOSE }, { "weak_crypto", EC_STRENGTH },
		{ "chain_too_long", EC_DEPTH }, { "policy", EC_ALLOW },
	};
	size_t	i;

	for (i = 0; code != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].cat;
	return EC_OTHER;
}

static void
explain_check(struct explain *e, int cat, const char *mark, const char *fmt,
    ...) PRINTF_LIKE(4, 5);

/* One line of the checks section: "  ok    chain        text". */
static void
explain_check(struct explain *e, int cat, const char *mark, const char *fmt,
    ...)
{
	va_list	ap;

	if (strcmp(mark, "FAIL") == 0)
		e->failed[cat] = true;
	printf("  %-5s %-13s ", mark, explain_cat_names[cat]);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A value for the final line, escaped as the text log escapes it. */
static void
explain_put_quoted(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\r')
			fputs("\\r", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* "EC prime256v1, 128-bit security" */
static void
explain_key_str(X509 *x, char *buf, size_t len)
{
	EVP_PKEY	*pk = X509_get0_pubkey(x);
	char		 group[64];
	size_t		 glen = 0;

	if (pk == NULL) {
		ERR_clear_error();
		snprintf(buf, len, "unreadable key");
		return;
	}
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &glen) == 1)
		snprintf(buf, len, "%s %s key, %d-bit security",
		    EVP_PKEY_get0_type_name(pk), group,
		    EVP_PKEY_get_security_bits(pk));
	else
		snprintf(buf, len, "%s %d-bit key, %d-bit security",
		    EVP_PKEY_get0_type_name(pk), EVP_PKEY_get_bits(pk),
		    EVP_PKEY_get_security_bits(pk));
	ERR_clear_error();
}

/* The SAN entries of a certificate, on one line. */
static void
explain_print_san(X509 *x)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*g;
	char		 ip[INET6_ADDRSTRLEN];
	int		 i, n = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	ERR_clear_error();
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		fputs(n++ > 0 ? ", " : "", stdout);
		switch (g->type) {
		case GEN_DNS:
		case GEN_URI:
		case GEN_EMAIL:
			fputs(g->type == GEN_DNS ? "DNS:" : g->type ==
			    GEN_URI ? "URI:" : "email:", stdout);
			explain_put_ia5(stdout,
			    ASN1_STRING_get0_data(g->d.ia5),
			    ASN1_STRING_length(g->d.ia5));
			break;
		case GEN_IPADD:
			if (ASN1_STRING_length(g->d.ip) == 4 ||
			    ASN1_STRING_length(g->d.ip) == 16) {
				inet_ntop(ASN1_STRING_length(g->d.ip) == 4 ?
				    AF_INET : AF_INET6,
				    ASN1_STRING_get0_data(g->d.ip), ip,
				    sizeof(ip));
				printf("IP:%s", ip);
			} else
				fputs("IP:(malformed)", stdout);
			break;
		case GEN_DIRNAME:
			fputs("DirName", stdout);
			break;
		default:
			fputs("othername", stdout);
		}
	}
	if (n == 0)
		fputs("none", stdout);
	putchar('\n');
	GENERAL_NAMES_free(gens);
}

static void
explain_print_cert(struct explain *e, const char *path)
{
	struct identity	 id;
	char		 a[64], b[64], key[128], list[256];
	time_t		 nb, na;
	int		 i;

	identity_from_cert(&id, e->leaf);
	nb = explain_time(X509_get0_notBefore(e->leaf));
	na = explain_time(X509_get0_notAfter(e->leaf));
	printf("certificate %s\n", path);
	printf("  subject      %s\n", id.subject ? id.subject : "?");
	printf("  issuer       %s\n", id.issuer ? id.issuer : "?");
	printf("  serial       %s\n", id.serial ? id.serial : "?");
	printf("  sha256       %s\n", id.sha256 ? id.sha256 : "?");
	printf("  valid        %s to %s\n", explain_date(nb, a, sizeof(a)),
	    explain_date(na, b, sizeof(b)));
	fputs("  SAN          ", stdout);
	explain_print_san(e->leaf);
	if ((X509_get_extension_flags(e->leaf) & EXFLAG_XKUSAGE) != 0)
		printf("  EKU          %s\n", tls_eku_str(e->leaf, list,
		    sizeof(list)));
	else
		puts("  EKU          none (no extendedKeyUsage extension)");
	if ((X509_get_extension_flags(e->leaf) & EXFLAG_KUSAGE) != 0)
		printf("  keyUsage     %s\n", tls_ku_str(e->leaf, list,
		    sizeof(list)));
	else
		puts("  keyUsage     none (no keyUsage extension)");
	explain_key_str(e->leaf, key, sizeof(key));
	printf("  key          %s; signed with %s\n", key,
	    OBJ_nid2ln(X509_get_signature_nid(e->leaf)));
	printf("  sent with it %d certificate%s\n", sk_X509_num(e->sent),
	    sk_X509_num(e->sent) == 1 ? "" : "s");
	for (i = 0; i < sk_X509_num(e->sent); i++) {
		char *n = explain_name(X509_get_subject_name(
		    sk_X509_value(e->sent, i)));

		printf("               %s\n", n);
		free(n);
	}
	identity_clear(&id);
}

static void
explain_print_listener(struct explain *e, const char *cfgpath)
{
	const struct cfg_client_auth	*ca = &e->l->client_auth;
	const struct cfg_allow		*a = &ca->allow;
	char				 when[64], val[160];
	size_t				 k, j;
	int				 f;

	printf("\nlistener %s (%s:%u:%u), verified as of %s\n", e->l->name,
	    cfgpath, e->l->loc.line, e->l->loc.col,
	    explain_date(e->at, when, sizeof(when)));
	printf("  ca            %s%s\n", ca->ca.path ? ca->ca.path :
	    "(not set)", ca->partial_chain ? " (partial_chain: true)" : "");
	for (k = 0; k < ca->n_trusted_certs; k++)
		printf("  trusted_certs %s\n", ca->trusted_certs[k].path);
	printf("  crl           %s\n", ca->crl.path ? ca->crl.path :
	    "(not set)");
	printf("  verify_depth  %d\n", ca->verify_depth);
	printf("  client_eku    %s\n", ca->client_eku == CLIENT_EKU_REQUIRED ?
	    "required" : "if_present");
	for (f = 0; f < AF_COUNT; f++) {
		if (allow_count(a, f) == 0)
			continue;
		printf("  allow.%s [", allow_names[f]);
		for (j = 0; j < allow_count(a, f); j++) {
			allow_value(a, f, j, val, sizeof(val));
			printf("%s\"%s\"", j > 0 ? ", " : "", val);
		}
		puts("]");
	}
	if (!allow_any(a))
		puts("  allow         (no lists: any verified client)");
}

/* Where a certificate of the built chain came from. */
static const char *
explain_origin(struct explain *e, X509 *x, int depth, char *buf, size_t len)
{
	const struct cfg_client_auth	*ca = &e->l->client_auth;
	STACK_OF(X509)			*tr;
	bool				 sent, in_ca;
	size_t				 k;

	if (depth == 0)
		return "--cert";
	sent = explain_has_cert(e->sent, x);
	in_ca = explain_has_cert(e->ca_certs, x);
	if (in_ca) {
		snprintf(buf, len, "client_auth.ca %s%s", ca->ca.path,
		    sent ? " (the client sent it too)" : "");
		return buf;
	}
	for (k = 0; k < ca->n_trusted_certs; k++) {
		tr = explain_read_certs(ca->trusted_certs[k].path);
		if (explain_has_cert(tr, x)) {
			snprintf(buf, len, "client_auth.trusted_certs %s",
			    ca->trusted_certs[k].path);
			explain_free_certs(tr);
			return buf;
		}
		explain_free_certs(tr);
	}
	return sent ? "sent by the client" : "(unknown)";
}

/*
 * Does the chain end at a trust anchor?  A certificate of client_auth.ca
 * is one when it is self-signed, or with partial_chain: true (OpenSSL
 * takes nothing else from the store as an anchor); an exact trusted_certs
 * match is its own anchor.
 */
static bool
explain_anchored(struct explain *e, STACK_OF(X509) *chain)
{
	X509	*top;

	if (e->trusted_leaf)
		return true;
	if (chain == NULL || sk_X509_num(chain) == 0)
		return false;
	top = sk_X509_value(chain, sk_X509_num(chain) - 1);
	return explain_has_cert(e->ca_certs, top) &&
	    (e->l->client_auth.partial_chain || explain_self_signed(top));
}

/* The chain ends at a CA of client_auth.ca that is not an anchor. */
static bool
explain_stops_at_ca(struct explain *e, STACK_OF(X509) *chain)
{
	return chain != NULL && sk_X509_num(chain) > 0 &&
	    !explain_anchored(e, chain) && explain_has_cert(e->ca_certs,
	    sk_X509_value(chain, sk_X509_num(chain) - 1));
}

static void
explain_print_chain(struct explain *e, const struct trace *t)
{
	STACK_OF(X509)	*chain = e->built;
	char		 when[64], from[1024], *s, *i;
	size_t		 k;
	int		 d, n;

	n = chain != NULL ? sk_X509_num(chain) : 0;
	if (e->cut)
		printf("\nchain built by OpenSSL (cut off at "
		    "client_auth.verify_depth %d: OpenSSL stopped before "
		    "reaching a trust anchor):\n",
		    e->l->client_auth.verify_depth);
	else
		printf("\nchain built by OpenSSL%s:\n",
		    explain_stops_at_ca(e, chain) ? " (incomplete: it ends at "
		    "a CA of client_auth.ca that is not a trust anchor)" :
		    n <= 1 && !explain_anchored(e, chain) ? " (incomplete: no "
		    "trusted issuer found)" : "");
	if (n == 0) {
		s = explain_name(X509_get_subject_name(e->leaf));
		printf("  depth 0  %s\n           from --cert\n", s);
		free(s);
	}
	for (d = 0; d < n; d++) {
		X509 *x = sk_X509_value(chain, d);

		s = explain_name(X509_get_subject_name(x));
		i = explain_name(X509_get_issuer_name(x));
		printf("  depth %d  %s\n", d, s);
		printf("           issuer %s%s\n", i, explain_self_signed(x) ?
		    " (self-signed)" : "");
		printf("           notAfter %s, from %s\n",
		    explain_date(explain_time(X509_get0_notAfter(x)), when,
		    sizeof(when)), explain_origin(e, x, d, from,
		    sizeof(from)));
		free(s);
		free(i);
	}
	if (e->trusted_leaf) {
		puts("  (an exact client_auth.trusted_certs match: verified "
		    "against that certificate alone)");
		return;
	}
	fputs("OpenSSL's verify steps:", stdout);
	for (k = 0; k < t->n; k++) {
		printf("%s depth %d ", k > 0 ? ";" : "", t->ev[k].depth);
		if (t->ev[k].err == X509_V_OK)
			fputs("ok", stdout);
		else
			printf("error %d (%s)", t->ev[k].err,
			    X509_verify_cert_error_string(t->ev[k].err));
	}
	if (t->n == 0)
		fputs(" none", stdout);
	putchar('\n');
}

/* Validity dates of each certificate of the chain. */
static void
explain_check_validity(struct explain *e, STACK_OF(X509) *chain)
{
	char	a[64], *s;
	time_t	nb, na;
	int	d;

	for (d = 0; d < sk_X509_num(chain); d++) {
		X509 *x = sk_X509_value(chain, d);

		s = explain_name(X509_get_subject_name(x));
		nb = explain_time(X509_get0_notBefore(x));
		na = explain_time(X509_get0_notAfter(x));
		if (nb > e->at)
			explain_check(e, EC_VALIDITY, "FAIL", "depth %d "
			    "\"%s\": not valid before %s", d, s,
			    explain_date(nb, a, sizeof(a)));
		else if (na < e->at)
			explain_check(e, EC_VALIDITY, "FAIL", "depth %d "
			    "\"%s\": expired on %s", d, s,
			    explain_date(na, a, sizeof(a)));
		else
			explain_check(e, EC_VALIDITY, "ok", "depth %d: valid "
			    "until %s", d, explain_date(na, a, sizeof(a)));
		free(s);
	}
}

/* The CRL in the listener's store from issuer, or NULL. */
static X509_CRL *
explain_find_crl(struct explain *e, X509 *issuer)
{
	STACK_OF(X509_OBJECT)	*objs;
	X509_OBJECT		*o;
	X509_CRL		*crl, *best = NULL;
	EVP_PKEY		*pk = X509_get0_pubkey(issuer);
	int			 i;

	objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(e->srv->ctx));
	for (i = 0; pk != NULL && i < sk_X509_OBJECT_num(objs); i++) {
		o = sk_X509_OBJECT_value(objs, i);
		if (X509_OBJECT_get_type(o) != X509_LU_CRL)
			continue;
		crl = X509_OBJECT_get0_X509_CRL(o);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(issuer)) != 0 ||
		    X509_CRL_verify(crl, pk) != 1)
			continue;
		/* The most recent one, as OpenSSL prefers. */
		if (best == NULL || ASN1_TIME_compare(
		    X509_CRL_get0_lastUpdate(crl),
		    X509_CRL_get0_lastUpdate(best)) > 0)
			best = crl;
	}
	ERR_clear_error();
	return best;
}

/* The serial number in upper-case hex, as the log gives it. */
static char *
explain_serial(X509 *x)
{
	BIGNUM	*bn;
	char	*hex, *s;

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn == NULL || (hex = BN_bn2hex(bn)) == NULL) {
		BN_free(bn);
		ERR_clear_error();
		return xstrdup("?");
	}
	s = xstrdup(hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return s;
}

/* CRL status of each certificate (every CA of the chain is covered). */
static void
explain_check_revocation(struct explain *e, STACK_OF(X509) *chain)
{
	X509_REVOKED	*rev;
	X509_CRL	*crl;
	X509		*x, *issuer;
	char		 a[64], *in, *serial;
	time_t		 lu, nu;
	int		 d, n = sk_X509_num(chain);

	if (e->l->client_auth.crl.path == NULL) {
		explain_check(e, EC_REVOCATION, "-", "not checked: "
		    "client_auth.crl is not set");
		return;
	}
	if (e->trusted_leaf) {
		explain_check(e, EC_REVOCATION, "-", "not checked: "
		    "client_auth.trusted_certs are trusted as they are");
		return;
	}
	for (d = 0; d < n; d++) {
		x = sk_X509_value(chain, d);
		issuer = d + 1 < n ? sk_X509_value(chain, d + 1) :
		    explain_self_signed(x) ? x : NULL;
		if (issuer == NULL) {
			explain_check(e, EC_REVOCATION, "?", "depth %d: its "
			    "issuer is not in the chain, so its CRL cannot be "
			    "found", d);
			continue;
		}
		in = explain_name(X509_get_subject_name(issuer));
		if ((crl = explain_find_crl(e, issuer)) == NULL) {
			explain_check(e, EC_REVOCATION, "FAIL", "depth %d: "
			    "client_auth.crl has no CRL from \"%s\"", d, in);
			free(in);
			continue;
		}
		lu = explain_time(X509_CRL_get0_lastUpdate(crl));
		nu = explain_time(X509_CRL_get0_nextUpdate(crl));
		if (X509_CRL_get0_by_cert(crl, &rev, x) == 1) {
			serial = explain_serial(x);
			explain_check(e, EC_REVOCATION, "FAIL", "depth %d: "
			    "revoked on %s (serial %s) by the CRL of \"%s\"",
			    d, explain_date(explain_time(
			    X509_REVOKED_get0_revocationDate(rev)), a,
			    sizeof(a)), serial, in);
			free(serial);
		} else if (lu > e->at)
			explain_check(e, EC_REVOCATION, "FAIL", "depth %d: the "
			    "CRL of \"%s\" is not valid before %s", d, in,
			    explain_date(lu, a, sizeof(a)));
		else if (nu != 0 && nu < e->at)
			explain_check(e, EC_REVOCATION, "FAIL", "depth %d: the "
			    "CRL of \"%s\" expired on %s (its nextUpdate)", d,
			    in, explain_date(nu, a, sizeof(a)));
		else
			explain_check(e, EC_REVOCATION, "ok", "depth %d: not "
			    "revoked by the CRL of \"%s\" (next update %s)", d,
			    in, nu != 0 ? explain_date(nu, a, sizeof(a)) :
			    "none");
		ERR_clear_error();
		free(in);
	}
}

/* TLS client purpose of the leaf and of each CA; client_eku. */
static void
explain_check_purpose(struct explain *e, STACK_OF(X509) *chain)
{
	X509	*x;
	char	*s, why[400];
	bool	 has_eku;
	int	 d;

	has_eku = (X509_get_extension_flags(e->leaf) & EXFLAG_XKUSAGE) != 0;
	if (X509_check_purpose(e->leaf, X509_PURPOSE_SSL_CLIENT, 0) == 0)
		explain_check(e, EC_PURPOSE, "FAIL", "depth 0: its %s",
		    tls_purpose_why(e->leaf, false, why, sizeof(why)));
	else if (!has_eku && e->l->client_auth.client_eku ==
	    CLIENT_EKU_REQUIRED)
		explain_check(e, EC_PURPOSE, "FAIL", "depth 0: no "
		    "extendedKeyUsage, and client_eku: required");
	else if (!has_eku)
		explain_check(e, EC_PURPOSE, "ok", "depth 0: no "
		    "extendedKeyUsage, allowed by client_eku: if_present");
	else if ((X509_get_extended_key_usage(e->leaf) & XKU_SSL_CLIENT) ==
	    0)
		explain_check(e, EC_PURPOSE, "FAIL", "depth 0: its "
		    "extendedKeyUsage has no clientAuth");
	else
		explain_check(e, EC_PURPOSE, "ok", "depth 0: extendedKeyUsage "
		    "includes clientAuth");
	for (d = 1; d < sk_X509_num(chain); d++) {
		x = sk_X509_value(chain, d);
		if (X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 1) != 0)
			continue;
		s = explain_name(X509_get_subject_name(x));
		explain_check(e, EC_PURPOSE, "FAIL", "depth %d \"%s\": its %s",
		    d, s, tls_purpose_why(x, true, why, sizeof(why)));
		free(s);
	}
	ERR_clear_error();
}

/*
 * Key and signature strength against the security level; complete: the
 * chain ends at a trust anchor, whose own signature is not judged.
 */
static void
explain_check_strength(struct explain *e, STACK_OF(X509) *chain,
    bool complete)
{
	static const int bits[] = { 0, 80, 112, 128, 192, 256 };
	char	 key[128], sig[96];
	int	 level, need, d, n = sk_X509_num(chain), kbits, sbits = 0;

	level = SSL_CTX_get_security_level(e->srv->ctx);
	need = bits[level < 0 ? 0 : level > 5 ? 5 : level];
	for (d = 0; d < n; d++) {
		X509 *x = sk_X509_value(chain, d);
		bool last = complete && d == n - 1;

		explain_key_str(x, key, sizeof(key));
		kbits = X509_get0_pubkey(x) != NULL ?
		    EVP_PKEY_get_security_bits(X509_get0_pubkey(x)) : 0;
		if (!X509_get_signature_info(x, NULL, NULL, &sbits, NULL))
			sbits = 0;
		ERR_clear_error();
		if (last)
			snprintf(sig, sizeof(sig), "its own signature is not "
			    "checked (trust anchor)");
		else
			snprintf(sig, sizeof(sig), "signed with %s, %d-bit "
			    "security", OBJ_nid2ln(X509_get_signature_nid(x)),
			    sbits);
		if (kbits < need || (!last && sbits < need))
			explain_check(e, EC_STRENGTH, "FAIL", "depth %d: %s; "
			    "%s; security level %d needs %d bits", d, key, sig,
			    level, need);
		else
			explain_check(e, EC_STRENGTH, "ok", "depth %d: %s; %s",
			    d, key, sig);
	}
}

/* Apply each allow list on its own, with the daemon's policy code. */
static void
explain_check_allow(struct explain *e)
{
	const struct cfg_allow	*a = &e->l->client_auth.allow;
	char			 why[512], val[160];
	size_t			 j;
	int			 f;

	if (!allow_any(a)) {
		explain_check(e, EC_ALLOW, "-", "no allow lists: any verified "
		    "client certificate is allowed");
		return;
	}
	for (f = 0; f < AF_COUNT; f++) {
		if (allow_count(a, f) == 0)
			continue;
		for (j = 0; j < allow_count(a, f); j++)
			if (allow_test(a, f, j, false, e->leaf, why,
			    sizeof(why)))
				break;
		if (j < allow_count(a, f)) {
			allow_value(a, f, j, val, sizeof(val));
			explain_check(e, EC_ALLOW, "ok", "%s: \"%s\" matches",
			    allow_names[f], val);
		} else {
			(void)allow_test(a, f, 0, true, e->leaf, why,
			    sizeof(why));
			explain_check(e, EC_ALLOW, "FAIL", "%s: %s",
			    allow_names[f], strncmp(why, "policy: ", 8) == 0 ?
			    why + 8 : why);
		}
	}
}

static void
explain_checks(struct explain *e, int ok, const struct tls_verdict *v)
{
	STACK_OF(X509)	*chain, *own = NULL;
	X509		*top;
	char		*s;
	bool		 anchored;
	int		 n, cat = explain_code_cat(v->code);

	chain = e->built;
	if (chain == NULL || sk_X509_num(chain) == 0) {
		own = sk_X509_new_null();
		sk_X509_push(own, e->leaf);
		chain = own;
	}
	n = sk_X509_num(chain);
	top = sk_X509_value(chain, n - 1);
	anchored = explain_anchored(e, chain);
	puts("\nchecks:");
	if (!ok && cat == EC_CHAIN && e->l->client_auth.ca.path == NULL)
		explain_check(e, EC_CHAIN, "FAIL", "not one of "
		    "client_auth.trusted_certs, and client_auth.ca is not set: "
		    "%s", v->reason);
	else if (!ok && cat == EC_CHAIN)
		explain_check(e, EC_CHAIN, "FAIL", "%s", v->reason);
	else if (e->trusted_leaf)
		explain_check(e, EC_CHAIN, "ok", "an exact match of a "
		    "certificate in client_auth.trusted_certs");
	else if (anchored) {
		s = explain_name(X509_get_subject_name(top));
		explain_check(e, EC_CHAIN, "ok", "ends at %s \"%s\" in "
		    "client_auth.ca", explain_self_signed(top) ? "the root" :
		    "the CA (partial_chain)", s);
		free(s);
	} else if (e->cut)
		explain_check(e, EC_CHAIN, "?", "not completed: OpenSSL "
		    "stopped building it at verify_depth (see verify_depth "
		    "below)");
	else
		explain_check(e, EC_CHAIN, "?", "no trusted issuer found");
	explain_check_validity(e, chain);
	if (anchored || e->l->client_auth.crl.path == NULL)
		explain_check_revocation(e, chain);
	else
		explain_check(e, EC_REVOCATION, "?", "not checked: the chain "
		    "does not end at a trusted CA");
	explain_check_purpose(e, chain);
	explain_check_strength(e, chain, anchored);
	if (e->trusted_leaf)
		explain_check(e, EC_DEPTH, "ok", "no CA: an exact trusted "
		    "certificate");
	else if (n >= 2 && anchored)
		explain_check(e, EC_DEPTH, n - 2 <= e->l->client_auth.
		    verify_depth ? "ok" : "FAIL", "%d intermediate CA%s "
		    "between the leaf and the trust anchor; verify_depth %d",
		    n - 2, n - 2 == 1 ? "" : "s",
		    e->l->client_auth.verify_depth);
	else if (e->cut)
		explain_check(e, EC_DEPTH, "FAIL", "%s", v->reason);
	else if (explain_stops_at_ca(e, chain)) {
		s = explain_name(X509_get_subject_name(top));
		explain_check(e, EC_DEPTH, "?", "the chain ends at \"%s\" "
		    "in client_auth.ca, which is not a trust anchor (not "
		    "self-signed, and partial_chain: false)", s);
		free(s);
	} else
		explain_check(e, EC_DEPTH, "?", "the chain is incomplete");
	explain_check_allow(e);
	/* The verdict decides; make sure its reason has a line. */
	if (!ok && !e->failed[cat])
		explain_check(e, cat, "FAIL", "%s", v->reason);
	if (!ok && cat != EC_ALLOW && cat != EC_OTHER)
		puts("  (the daemon refuses at its first failed check and "
		    "never gets to some of these;\n   they are shown for "
		    "information)");
	sk_X509_free(own);
}

/* Parse --at: "2027-01-31", "2027-01-31 12:00[:00]", "...T...Z", "+30d". */
static int
explain_parse_at(const char *s, time_t *out)
{
	struct tm	tm;
	char		*end;
	long		 days;
	int		 n = 0;

	if (s[0] == '+') {
		days = strtol(s + 1, &end, 10);
		if (end == s + 1 || days < 0 || days > 36500 ||
		    (*end != '\0' && strcmp(end, "d") != 0))
			return -1;
		*out = time(NULL) + (time_t)days * DAY_SECS;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) != 3)
		return -1;
	s += n;
	if (*s == ' ' || *s == 'T') {
		n = 0;
		if (sscanf(s + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min,
		    &n) != 2)
			return -1;
		s += 1 + n;
		if (*s == ':') {
			n = 0;
			if (sscanf(s + 1, "%2d%n", &tm.tm_sec, &n) != 1)
				return -1;
			s += 1 + n;
		}
		if (*s == 'Z')
			s++;
	}
	if (*s != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon--;
	*out = timegm(&tm);
	return 0;
}

/* A usage error: the synopsis and where the rest is, not the whole help. */
static int
explain_usage_error(void)
{
	fprintf(stderr,
	    "usage: mtlsproxy explain [-c FILE] [--listener NAME] --cert FILE\n"
	    "                         [--chain FILE] [--at DATE]\n"
	    "try 'mtlsproxy explain --help'\n");
	return 2;
}

static void
explain_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: mtlsproxy explain [-c FILE] [--listener NAME] --cert FILE\n"
	    "                         [--chain FILE] [--at DATE]\n"
	    "\n"
	    "Why would a client with this certificate be allowed or refused?\n"
	    "Loads the configuration as the daemon does and runs the daemon's\n"
	    "own verification and policy code on the certificate, offline.\n"
	    "Prints the certificate, the chain OpenSSL built (and where each\n"
	    "certificate came from), each check with its result, and last\n"
	    "the verdict as the log gives it: ALLOW, or\n"
	    "DENY code=... reason=\"...\".\n"
	    "\n"
	    "  -c FILE            configuration file (default %s)\n"
	    "  -l, --listener NAME\n"
	    "                     the listener (optional with only one)\n"
	    "  --cert FILE        the client certificate, PEM or DER; a PEM\n"
	    "                     file may also hold the intermediates the\n"
	    "                     client sends (a private key in it is\n"
	    "                     ignored)\n"
	    "  --chain FILE       more intermediates the client sends\n"
	    "  --at DATE          verify as of DATE, UTC: 2027-01-31,\n"
	    "                     \"2027-01-31 12:00:00\", or +30d (from now)\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "Exit status: 0 allowed, 1 refused, 2 usage or configuration\n"
	    "error.\n",
	    MTLSPROXY_CONFIG);
}

/* Find the listener; list the names when it is not there. */
static ssize_t
explain_listener(const struct cfg *cfg, const char *name)
{
	size_t	i;

	if (name == NULL && cfg->nlisteners == 1)
		return 0;
	for (i = 0; name != NULL && i < cfg->nlisteners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return (ssize_t)i;
	if (name == NULL)
		fprintf(stderr, "mtlsproxy explain: %s has %zu listeners: "
		    "choose one with --listener NAME:", cfg->path,
		    cfg->nlisteners);
	else
		fprintf(stderr, "mtlsproxy explain: no listener \"%s\" in %s; "
		    "its listeners are:", name, cfg->path);
	for (i = 0; i < cfg->nlisteners; i++)
		fprintf(stderr, " %s", cfg->listeners[i].name);
	fputc('\n', stderr);
	return -1;
}

/* `mtlsproxy explain`: argv[0] is "explain". */
int
explain_main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listener", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'C' },
		{ "chain", required_argument, NULL, 'H' },
		{ "at", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct errlist		 errs = { NULL, 0 };
	struct tls_verdict	 v;
	struct trace		 t;
	struct explain		 e;
	struct runtime		*rt = NULL;
	struct tls_server	*srv;
	STACK_OF(X509)		*more = NULL;
	X509_VERIFY_PARAM	*vp;
	struct cfg		*cfg;
	const char		*path = MTLSPROXY_CONFIG, *name = NULL;
	const char		*certpath = NULL, *chainpath = NULL;
	const char		*at = NULL;
	ssize_t			 li;
	size_t			 i;
	int			 ch, ok, rc = 2;

	memset(&e, 0, sizeof(e));
	memset(&v, 0, sizeof(v));
	memset(&t, 0, sizeof(t));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:l:h", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'l':
			name = optarg;
			break;
		case 'C':
			certpath = optarg;
			break;
		case 'H':
			chainpath = optarg;
			break;
		case 'A':
			at = optarg;
			break;
		case 'h':
			explain_usage(stdout);
			return 0;
		default:
			opt_error("explain", ch, argv);
			return explain_usage_error();
		}
	}
	if (optind != argc || certpath == NULL) {
		if (optind != argc)
			fprintf(stderr, "mtlsproxy explain: unexpected "
			    "argument \"%s\"\n", argv[optind]);
		else
			fprintf(stderr, "mtlsproxy explain: --cert FILE is "
			    "required\n");
		return explain_usage_error();
	}
	e.at = time(NULL);
	if (at != NULL && explain_parse_at(at, &e.at) == -1) {
		fprintf(stderr, "mtlsproxy explain: --at \"%s\": use "
		    "YYYY-MM-DD, \"YYYY-MM-DD HH:MM:SS\" (UTC) or +DAYSd\n",
		    at);
		return 2;
	}
	if (tls_init() == -1) {
		fprintf(stderr, "mtlsproxy: cannot initialise OpenSSL\n");
		return 2;
	}
	if (access(certpath, R_OK) == -1) {
		fprintf(stderr, "mtlsproxy explain: cannot read %s: %s\n",
		    certpath, strerror(errno));
		return 2;
	}
	if (chainpath != NULL && access(chainpath, R_OK) == -1) {
		fprintf(stderr, "mtlsproxy explain: cannot read %s: %s\n",
		    chainpath, strerror(errno));
		return 2;
	}
	if ((e.sent = explain_read_certs(certpath)) == NULL) {
		char hint[PATH_MAX + 256];

		explain_not_cert_hint(certpath, hint, sizeof(hint));
		fprintf(stderr, "mtlsproxy explain: no certificate in %s%s\n",
		    certpath, hint[0] != '\0' ? hint : " (expected PEM "
		    "\"-----BEGIN CERTIFICATE-----\" or DER)");
		return 2;
	}
	e.leaf = sk_X509_shift(e.sent);
	if (chainpath != NULL) {
		if ((more = explain_read_certs(chainpath)) == NULL) {
			fprintf(stderr, "mtlsproxy explain: no certificate in "
			    "%s\n", chainpath);
			goto done;
		}
		while (sk_X509_num(more) > 0)
			sk_X509_push(e.sent, sk_X509_shift(more));
	}
	if ((cfg = cfg_load(path, &errs)) != NULL)
		rt = runtime_new(cfg, &errs);
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	if (rt == NULL) {
		fprintf(stderr, "mtlsproxy explain: %zu error%s in %s\n",
		    errs.n, errs.n == 1 ? "" : "s", path);
		goto done;
	}
	if ((li = explain_listener(rt->cfg, name)) < 0)
		goto done;
	srv = &rt->servers[li];
	e.srv = srv;
	e.l = &rt->cfg->listeners[li];
	e.ca_certs = explain_read_certs(e.l->client_auth.ca.path);
	if (at != NULL) {
		/* This runtime is ours alone: move its clock. */
		vp = SSL_CTX_get0_param(srv->ctx);
		X509_VERIFY_PARAM_set_time(vp, e.at);
		if (srv->trusted_store != NULL)
			X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(
			    srv->trusted_store), e.at);
	}
	for (i = 0; i < srv->ntrusted; i++) {
		unsigned char	md[EVP_MAX_MD_SIZE];
		unsigned int	mdlen = 0;

		if (X509_digest(e.leaf, EVP_sha256(), md, &mdlen) == 1 &&
		    memcmp(md, srv->trusted_fp[i], FINGERPRINT_LEN) == 0)
			e.trusted_leaf = true;
	}
	explain_print_cert(&e, certpath);
	explain_print_listener(&e, path);

	v.trace = explain_trace_cb;
	v.trace_arg = &t;
	ok = tls_verify_offline(srv, e.leaf, sk_X509_num(e.sent) > 0 ?
	    e.sent : NULL, &v, &e.built);
	e.cut = !ok && v.code != NULL && strcmp(v.code, "chain_too_long") == 0;
	explain_print_chain(&e, &t);
	explain_checks(&e, ok, &v);
	putchar('\n');
	if (ok == 1) {
		puts("ALLOW");
		rc = 0;
	} else {
		printf("DENY code=%s reason=", v.code ? v.code :
		    "verify_failed");
		explain_put_quoted(v.reason);
		putchar('\n');
		rc = 1;
	}
 done:
	tls_verdict_clear(&v);
	explain_free_certs(e.built);
	explain_free_certs(e.ca_certs);
	explain_free_certs(more);
	explain_free_certs(e.sent);
	X509_free(e.leaf);
	runtime_unref(rt);
	errlist_free(&errs);
	return rc;
}
