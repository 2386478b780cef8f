/*
 * tls.c - SSL_CTX per listener from the config: server credentials (PEM,
 * encrypted PEM, PKCS#12), client CAs, exact trusted leaves, CRLs, and the
 * verification step that runs OpenSSL's chain check and then the policy.
 * The only file that touches private keys and passphrases.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
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
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"

#define TLS_READ_BUFFER		(4 * (16384 + 256 + 5))
#define TLS_DEFAULT_SUITES13	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
				"TLS_CHACHA20_POLY1305_SHA256"
#define TLS_DEFAULT_CIPHERS12	"ECDHE-ECDSA-AES128-GCM-SHA256:" \
				"ECDHE-RSA-AES128-GCM-SHA256:" \
				"ECDHE-ECDSA-AES256-GCM-SHA384:" \
				"ECDHE-RSA-AES256-GCM-SHA384:" \
				"ECDHE-ECDSA-CHACHA20-POLY1305:" \
				"ECDHE-RSA-CHACHA20-POLY1305"

#define PASSPHRASE_MAX	1024

static int	tls_verdict_idx = -1;
static int	tls_server_idx = -1;	/* SSL_CTX -> its struct tls_server */
static EVP_CIPHER *ticket_cipher;	/* AES-256-CBC for tickets, fetched once */
static EVP_MD	*sha256_md;		/* SHA-256, fetched once too */

/* One-time library set-up; returns -1 if OpenSSL cannot be initialised. */
int
tls_init(void)
{
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
	    OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1)
		return -1;
	(void)keydecode_install();
	tls_verdict_idx = SSL_get_ex_new_index(0, "verdict", NULL, NULL,
	    NULL);
	if (tls_server_idx < 0)
		tls_server_idx = SSL_CTX_get_ex_new_index(0, "server", NULL,
		    NULL, NULL);
	/* Not per ticket: a fetch walks OpenSSL's method store. */
	if (ticket_cipher == NULL)
		ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (sha256_md == NULL)
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return tls_verdict_idx < 0 || tls_server_idx < 0 ||
	    ticket_cipher == NULL || sha256_md == NULL ? -1 : 0;
}

/* Text of the most recent OpenSSL error, and drain the queue. */
static const char *
tls_error_str(char *buf, size_t len)
{
	unsigned long	e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(buf, len, "unknown error");
	else {
		const char *r = ERR_reason_error_string(last);

		snprintf(buf, len, "%s", r ? r : "unknown error");
	}
	return buf;
}

/* True if the last queued OpenSSL error means a wrong passphrase. */
static bool
tls_error_is_bad_decrypt(void)
{
	unsigned long	e;
	bool		bad = false;

	while ((e = ERR_get_error()) != 0) {
		int r = ERR_GET_REASON(e);
		const char *s = ERR_reason_error_string(e);

		if (r == EVP_R_BAD_DECRYPT || r == PEM_R_BAD_DECRYPT ||
		    r == PKCS12_R_MAC_VERIFY_FAILURE ||
		    (s != NULL && strstr(s, "bad decrypt") != NULL))
			bad = true;
	}
	return bad;
}

/* Format an ASN1_TIME as "2026-01-31 12:00:00 UTC". */
char *
tls_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		snprintf(buf, len, "(unknown date)");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

static time_t
asn1_time_t(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/*
 * Where a passphrase file is: absolute as given; a relative name is looked
 * up in $CREDENTIALS_DIRECTORY (systemd LoadCredential) first, then next to
 * the config file.
 */
char *
tls_passphrase_path(const struct cfg *cfg, const char *name)
{
	const char	*creds, *slash;
	char		*p;

	if (name[0] == '/')
		return xstrdup(name);
	creds = getenv("CREDENTIALS_DIRECTORY");
	if (creds != NULL && *creds != '\0') {
		p = xasprintf("%s/%s", creds, name);
		if (access(p, F_OK) == 0)
			return p;
		free(p);
	}
	slash = strrchr(cfg->path, '/');
	if (slash == NULL)
		return xstrdup(name);
	return xasprintf("%.*s/%s", (int)(slash - cfg->path), cfg->path, name);
}

/* Read a passphrase: the first line of the file, without CR/LF. */
static int
tls_read_passphrase(const struct cfg *cfg, const struct cfg_file *f,
    char *out, size_t outlen, char *where, size_t wherelen,
    struct errlist *errs)
{
	FILE		*fp;
	const char	*creds;
	char		*path, tried[1024];
	size_t		 n;
	int		 rerr = 0;

	path = tls_passphrase_path(cfg, f->path);
	if ((fp = fopen(path, "r")) == NULL) {
		rerr = errno;
		if (f->path[0] == '/') {
			cfg_error(errs, cfg, f->loc, "cannot read passphrase "
			    "file %s: %s", path, strerror(rerr));
			free(path);
			return -1;
		}
		/* A relative name: say where it was looked for. */
		creds = getenv("CREDENTIALS_DIRECTORY");
		if (creds != NULL && *creds == '\0')
			creds = NULL;
		if (creds == NULL)
			snprintf(tried, sizeof(tried), "looked in the config "
			    "file's directory: %s; $CREDENTIALS_DIRECTORY (set "
			    "by systemd's LoadCredential=) is not set", path);
		else if (strncmp(path, creds, strlen(creds)) == 0 &&
		    path[strlen(creds)] == '/')
			snprintf(tried, sizeof(tried), "looked in "
			    "$CREDENTIALS_DIRECTORY: %s", path);
		else
			snprintf(tried, sizeof(tried), "looked in "
			    "$CREDENTIALS_DIRECTORY: %s/%s, then in the config "
			    "file's directory: %s", creds, f->path, path);
		cfg_error(errs, cfg, f->loc, "cannot read passphrase file %s: "
		    "%s (%s)", f->path, strerror(rerr), tried);
		free(path);
		return -1;
	}
	snprintf(where, wherelen, "%s", path);
	if (fgets(out, (int)outlen, fp) == NULL) {
		out[0] = '\0';
		if (ferror(fp))
			rerr = errno;
	}
	fclose(fp);
	if (rerr != 0) {
		cfg_error(errs, cfg, f->loc, "cannot read passphrase file %s: "
		    "%s", path, strerror(rerr));
		free(path);
		return -1;
	}
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	if (n == 0) {
		cfg_error(errs, cfg, f->loc, "passphrase file %s is empty",
		    path);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

struct pass_cb_arg {
	const char	*pass;		/* NULL: none configured */
	bool		 asked;
};

/* PEM password callback: never prompt on a terminal. */
static int
tls_pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_cb_arg	*a = u;
	size_t			 n;

	(void)rwflag;
	a->asked = true;
	if (a->pass == NULL)
		return -1;
	n = strlen(a->pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, a->pass, n);
	return (int)n;
}

/*
 * Whether a credential file of the config is a directory, with a message
 * (at its config line) if so. A directory opens for reading but reads
 * nothing, which would come out as "no certificate found" or "not a
 * PKCS#12 file".
 */
static bool
tls_file_is_dir(const struct cfg *cfg, const struct cfg_file *f,
    const char *what, struct errlist *errs)
{
	struct stat	st;

	if (stat(f->path, &st) == -1 || !S_ISDIR(st.st_mode))
		return false;
	cfg_error(errs, cfg, f->loc, "%s is a directory, not a file (give the "
	    "%s itself)", f->path, what);
	return true;
}

/*
 * A missing file whose relative name was taken from the configuration
 * file's folder, but exists from the current directory: say so, since
 * "cert: certs/server.crt" reads like a path from where one runs it.
 */
static void
tls_relative_hint(const struct cfg *cfg, const char *path, char *buf,
    size_t len)
{
	const char	*slash;
	size_t		 n;
	struct stat	 st;

	buf[0] = '\0';
	if (cfg->path == NULL || (slash = strrchr(cfg->path, '/')) == NULL)
		return;
	n = (size_t)(slash - cfg->path);
	if (n == 0 || strncmp(path, cfg->path, n) != 0 || path[n] != '/' ||
	    stat(path + n + 1, &st) == -1)
		return;
	(void)snprintf(buf, len, " (a relative path is taken from the "
	    "configuration file's folder %.*s, not from the current "
	    "directory; %s exists from here: give its absolute path)",
	    (int)n, cfg->path, path + n + 1);
}

/* Open a credential file of the config; NULL and a message on failure. */
static BIO *
tls_open(const struct cfg *cfg, const struct cfg_file *f, const char *what,
    const char *mode, struct errlist *errs)
{
	BIO	*bio;
	char	 hint[PATH_MAX + 256];
	int	 err;

	if (tls_file_is_dir(cfg, f, what, errs))
		return NULL;
	if ((bio = BIO_new_file(f->path, mode)) == NULL) {
		err = errno;
		hint[0] = '\0';
		if (err == ENOENT)
			tls_relative_hint(cfg, f->path, hint, sizeof(hint));
		cfg_error(errs, cfg, f->loc, "cannot read %s %s: %s%s", what,
		    f->path, strerror(err), hint);
		ERR_clear_error();
	}
	return bio;
}

/* What a credential file holds, when it is not what was asked for. */
enum tls_kind {
	TLS_KIND_UNKNOWN, TLS_KIND_EMPTY, TLS_KIND_CERT, TLS_KIND_KEY,
	TLS_KIND_CSR, TLS_KIND_CRL, TLS_KIND_PKCS12
};

static enum tls_kind
tls_file_kind(const char *path)
{
	const size_t	 max = 64 * 1024;
	const unsigned char *p;
	enum tls_kind	 k = TLS_KIND_UNKNOWN;
	PKCS12		*p12;
	FILE		*fp;
	char		*buf;
	size_t		 n;

	if ((fp = fopen(path, "rb")) == NULL)
		return TLS_KIND_UNKNOWN;
	buf = xmalloc(max + 1);
	n = fread(buf, 1, max, fp);
	fclose(fp);
	buf[n] = '\0';
	p = (const unsigned char *)buf;
	/* PEM text has no NUL: strstr sees all of it. */
	if (strspn(buf, " \t\r\n") == n)
		k = TLS_KIND_EMPTY;
	else if (strstr(buf, "-----BEGIN CERTIFICATE REQUEST-----") != NULL ||
	    strstr(buf, "-----BEGIN NEW CERTIFICATE REQUEST-----") != NULL)
		k = TLS_KIND_CSR;
	else if (strstr(buf, "PRIVATE KEY-----") != NULL)
		k = TLS_KIND_KEY;
	else if (strstr(buf, "-----BEGIN CERTIFICATE-----") != NULL ||
	    strstr(buf, "-----BEGIN TRUSTED CERTIFICATE-----") != NULL) {
		/* Only a certificate that parses: not a damaged one. */
		BIO	*mem = BIO_new_mem_buf(buf, (int)n);
		X509	*x = mem != NULL ? PEM_read_bio_X509_AUX(mem, NULL,
			    NULL, NULL) : NULL;

		if (x != NULL)
			k = TLS_KIND_CERT;
		X509_free(x);
		BIO_free(mem);
	}
	else if (strstr(buf, "-----BEGIN X509 CRL-----") != NULL)
		k = TLS_KIND_CRL;
	else if ((p12 = d2i_PKCS12(NULL, &p, (long)n)) != NULL) {
		PKCS12_free(p12);
		k = TLS_KIND_PKCS12;
	}
	ERR_clear_error();
	free(buf);
	return k;
}

/*
 * Why a certificate file (what: "certificate file", "CA file", "trusted
 * certificate file") holds no certificate, when its content tells; "" if
 * it does not.
 */
static void
tls_not_cert_hint(const char *what, const char *path, char *buf, size_t len)
{
	bool	server = strcmp(what, "certificate file") == 0;

	buf[0] = '\0';
	switch (tls_file_kind(path)) {
	case TLS_KIND_EMPTY:
		(void)snprintf(buf, len, ": the file is empty");
		break;
	case TLS_KIND_KEY:
		(void)snprintf(buf, len, ": it holds a private key, not a "
		    "certificate%s", server ? " (are \"cert\" and \"key\" "
		    "swapped?)" : "");
		break;
	case TLS_KIND_CSR:
		(void)snprintf(buf, len, ": it holds a certificate signing "
		    "request (CSR), not a certificate: have the CA sign it "
		    "and name the certificate it returns");
		break;
	case TLS_KIND_CRL:
		(void)snprintf(buf, len, ": it holds a CRL, which belongs in "
		    "client_auth.crl");
		break;
	case TLS_KIND_PKCS12:
		if (server)
			(void)snprintf(buf, len, ": it is a PKCS#12 bundle "
			    "(.p12/.pfx): name it in \"pkcs12\" (with "
			    "\"pkcs12_passphrase_file\") instead of \"cert\" "
			    "and \"key\"");
		else
			(void)snprintf(buf, len, ": it is a PKCS#12 bundle "
			    "(.p12/.pfx): take the certificates out with "
			    "\"openssl pkcs12 -in %s -nokeys -out %s.pem\"",
			    path, path);
		break;
	default:
		break;
	}
}

/* Read every certificate of a PEM file; NULL and a message on failure. */
static STACK_OF(X509) *
tls_read_certs(const struct cfg *cfg, const struct cfg_file *f,
    const char *what, struct errlist *errs)
{
	STACK_OF(X509)	*sk;
	BIO		*bio;
	X509		*x;

	if ((bio = tls_open(cfg, f, what, "r", errs)) == NULL)
		return NULL;
	sk = sk_X509_new_null();
	/* "TRUSTED CERTIFICATE" blocks too, with their trust settings. */
	while ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		/* Maybe a single DER certificate. */
		(void)BIO_reset(bio);
		if ((x = d2i_X509_bio(bio, NULL)) != NULL)
			sk_X509_push(sk, x);
		ERR_clear_error();
	}
	BIO_free(bio);
	if (sk_X509_num(sk) == 0) {
		char hint[2 * PATH_MAX + 256];

		tls_not_cert_hint(what, f->path, hint, sizeof(hint));
		if (hint[0] != '\0')
			cfg_error(errs, cfg, f->loc, "no certificate found in "
			    "%s %s%s", what, f->path, hint);
		else
			cfg_error(errs, cfg, f->loc, "no certificate found in "
			    "%s %s (expected PEM \"-----BEGIN "
			    "CERTIFICATE-----\" blocks)", what, f->path);
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

/* The bits of security OpenSSL's security level asks of keys. */
static int
tls_level_bits(int level)
{
	static const int bits[] = { 0, 80, 112, 128, 192, 256 };

	return level >= 0 && level <= 5 ? bits[level] : 256;
}

/* Keys that are strong enough at a security level, for a message. */
static const char *
tls_level_keys(int level)
{
	static const char *const keys[] = {
		"any", "RSA 1024 bits, EC P-192", "RSA 2048 bits, EC P-256",
		"RSA 3072 bits, EC P-256", "RSA 7680 bits, EC P-384",
		"RSA 15360 bits, EC P-521"
	};

	return keys[level >= 0 && level <= 5 ? level : 5];
}

/* A certificate's key in words: "RSA 1024 bits", "EC prime192v1". */
char *
tls_key_str(X509 *x, char *buf, size_t len)
{
	EVP_PKEY	*pk = x != NULL ? X509_get0_pubkey(x) : NULL;
	char		 group[64];
	size_t		 glen = 0;

	if (pk == NULL)
		snprintf(buf, len, "unreadable key");
	else if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS") ||
	    EVP_PKEY_is_a(pk, "DSA") || EVP_PKEY_is_a(pk, "DH"))
		snprintf(buf, len, "%s %d bits", EVP_PKEY_get0_type_name(pk),
		    EVP_PKEY_get_bits(pk));
	else if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1)
		snprintf(buf, len, "%s %s", EVP_PKEY_get0_type_name(pk), group);
	else
		snprintf(buf, len, "%s", EVP_PKEY_get0_type_name(pk));
	ERR_clear_error();
	return buf;
}

/*
 * Why OpenSSL refused certificate x for the server (the error queue): its
 * security level's refusals in words, anything else as OpenSSL says it.
 */
static const char *
tls_cert_error(SSL_CTX *ctx, X509 *x, char *buf, size_t len)
{
	unsigned long	 err = ERR_peek_last_error();
	int		 level = SSL_CTX_get_security_level(ctx);
	int		 reason = ERR_GET_REASON(err);
	char		 key[128];
	const char	*md;

	if (ERR_GET_LIB(err) != ERR_LIB_SSL || (reason !=
	    SSL_R_EE_KEY_TOO_SMALL && reason != SSL_R_CA_KEY_TOO_SMALL &&
	    reason != SSL_R_CA_MD_TOO_WEAK))
		return tls_error_str(buf, len);
	ERR_clear_error();
	if (reason == SSL_R_CA_MD_TOO_WEAK) {
		md = OBJ_nid2sn(X509_get_signature_nid(x));
		snprintf(buf, len, "it is signed with %s, which security level "
		    "%d refuses (SHA-1 and MD5 are too weak): have it issued "
		    "again with SHA-256", md != NULL ? md : "a weak digest",
		    level);
	} else
		snprintf(buf, len, "its key is too weak: %s, %d-bit security; "
		    "security level %d needs %d (%s): make a new key and have "
		    "it certified", tls_key_str(x, key, sizeof(key)),
		    EVP_PKEY_get_security_bits(X509_get0_pubkey(x)), level,
		    tls_level_bits(level), tls_level_keys(level));
	return buf;
}

/*
 * The issuers of leaf among certs, in order (each the issuer of the one
 * before), without a self-signed root: the chain to send whatever order a
 * PKCS#12 bundle keeps them in. Certificates not on the way are left out.
 */
static STACK_OF(X509) *
tls_order_chain(X509 *leaf, STACK_OF(X509) *certs)
{
	STACK_OF(X509)	*out = sk_X509_new_null();
	X509		*cur = leaf, *c = NULL;
	int		 i, n = sk_X509_num(certs);

	while (out != NULL && sk_X509_num(out) < n) {
		for (i = 0; i < n; i++) {
			c = sk_X509_value(certs, i);
			if (c != cur && X509_check_issued(c, cur) == X509_V_OK)
				break;
		}
		if (i == n || (X509_get_extension_flags(c) & EXFLAG_SS))
			break;
		if (sk_X509_push(out, c) == 0)
			break;
		cur = c;
	}
	return out;
}

/* Load cert (leaf then chain) and key, maybe encrypted, into ctx. */
static int
tls_load_pem_pair(SSL_CTX *ctx, const struct cfg *cfg,
    const struct cfg_tls *t, struct errlist *errs)
{
	STACK_OF(X509)		*certs;
	EVP_PKEY		*pkey = NULL;
	BIO			*bio;
	char			 pass[PASSPHRASE_MAX], ebuf[256];
	char			 where[PATH_MAX];
	struct pass_cb_arg	 pa = { NULL, false };
	int			 i, rc = -1;

	if ((certs = tls_read_certs(cfg, &t->cert, "certificate file",
	    errs)) == NULL)
		return -1;
	if (t->key_passphrase_file.path != NULL) {
		if (tls_read_passphrase(cfg, &t->key_passphrase_file, pass,
		    sizeof(pass), where, sizeof(where), errs) == -1)
			goto fail;
		pa.pass = pass;
	}
	if ((bio = tls_open(cfg, &t->key, "key file", "r", errs)) == NULL)
		goto fail;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_pass_cb, &pa);
	BIO_free(bio);
	if (pkey == NULL) {
		bool bad = tls_error_is_bad_decrypt();

		if (pa.asked && pa.pass == NULL)
			cfg_error(errs, cfg, t->key.loc, "key file %s is "
			    "encrypted: set \"key_passphrase_file\" to a file "
			    "holding its passphrase", t->key.path);
		else if (pa.asked || bad)
			cfg_error(errs, cfg, t->key_passphrase_file.loc,
			    "cannot decrypt key file %s: wrong passphrase in "
			    "%s", t->key.path, where);
		else {
			enum tls_kind k = tls_file_kind(t->key.path);

			cfg_error(errs, cfg, t->key.loc, "no private key found "
			    "in %s%s", t->key.path,
			    k == TLS_KIND_EMPTY ? ": the file is empty" :
			    k == TLS_KIND_CERT ? ": it holds a certificate, "
			    "not a private key (are \"cert\" and \"key\" "
			    "swapped?)" :
			    k == TLS_KIND_CSR ? ": it holds a certificate "
			    "signing request (CSR), not a private key" :
			    k == TLS_KIND_PKCS12 ? ": it is a PKCS#12 bundle "
			    "(.p12/.pfx): name it in \"pkcs12\" (with "
			    "\"pkcs12_passphrase_file\") instead of \"cert\" "
			    "and \"key\"" :
			    " (expected a PEM \"-----BEGIN ... PRIVATE "
			    "KEY-----\" block)");
		}
		goto fail;
	}
	if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1) {
		cfg_error(errs, cfg, t->cert.loc, "cannot use certificate %s: "
		    "%s", t->cert.path, tls_cert_error(ctx,
		    sk_X509_value(certs, 0), ebuf, sizeof(ebuf)));
		goto fail;
	}
	for (i = 1; i < sk_X509_num(certs); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) !=
		    1) {
			cfg_error(errs, cfg, t->cert.loc, "cannot use chain "
			    "certificate %d of %s: %s", i + 1, t->cert.path,
			    tls_cert_error(ctx, sk_X509_value(certs, i), ebuf,
			    sizeof(ebuf)));
			goto fail;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		/* The usual slip: the intermediate pasted above the leaf. */
		for (i = 1; i < sk_X509_num(certs); i++)
			if (X509_check_private_key(sk_X509_value(certs, i),
			    pkey) == 1)
				break;
		ERR_clear_error();
		if (i < sk_X509_num(certs)) {
			char *n = x509_name_rfc4514(X509_get_subject_name(
			    sk_X509_value(certs, i)));

			cfg_error(errs, cfg, t->cert.loc, "private key %s "
			    "belongs to certificate %d of %s (\"%s\"), not to "
			    "the first: the file must start with the server's "
			    "certificate, then its intermediates", t->key.path,
			    i + 1, t->cert.path, n ? n : "?");
			free(n);
		} else
			cfg_error(errs, cfg, t->key.loc, "private key %s does "
			    "not match certificate %s (check that both files "
			    "belong to the same pair)", t->key.path,
			    t->cert.path);
		goto fail;
	}
	rc = 0;
 fail:
	OPENSSL_cleanse(pass, sizeof(pass));
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

/* Load key, leaf and chain from a PKCS#12 bundle into ctx. */
static int
tls_load_pkcs12(SSL_CTX *ctx, const struct cfg *cfg, const struct cfg_tls *t,
    struct errlist *errs)
{
	STACK_OF(X509)	*ca = NULL, *chain = NULL;
	PKCS12		*p12 = NULL;
	EVP_PKEY	*pkey = NULL;
	X509		*cert = NULL;
	BIO		*bio;
	char		 pass[PASSPHRASE_MAX], ebuf[256];
	char		 where[PATH_MAX];
	const char	*pw = NULL;
	int		 i, rc = -1;
	bool		 nomac;

	pass[0] = '\0';
	if (t->pkcs12_passphrase_file.path != NULL) {
		if (tls_read_passphrase(cfg, &t->pkcs12_passphrase_file, pass,
		    sizeof(pass), where, sizeof(where), errs) == -1)
			return -1;
		pw = pass;
	}
	if ((bio = tls_open(cfg, &t->pkcs12, "PKCS#12 file", "rb", errs)) ==
	    NULL)
		goto fail;
	p12 = d2i_PKCS12_bio(bio, NULL);
	BIO_free(bio);
	if (p12 == NULL) {
		ERR_clear_error();
		cfg_error(errs, cfg, t->pkcs12.loc, "%s is not a PKCS#12 "
		    "file (expected DER, as made by \"openssl pkcs12 "
		    "-export\")", t->pkcs12.path);
		goto fail;
	}
	/*
	 * Bundles made with -nomac have no MAC, and OpenSSL 3.0's
	 * PKCS12_parse insists on checking one when given a passphrase:
	 * give it one, made here. The passphrase is then proven by the
	 * decryption alone.
	 */
	nomac = !PKCS12_mac_present(p12);
	if (nomac && pw != NULL && *pw != '\0' &&
	    PKCS12_set_mac(p12, pw, -1, NULL, 0, 1, NULL) != 1) {
		cfg_error(errs, cfg, t->pkcs12.loc, "cannot read PKCS#12 file "
		    "%s: %s", t->pkcs12.path, tls_error_str(ebuf,
		    sizeof(ebuf)));
		goto fail;
	}
	if (!nomac && PKCS12_verify_mac(p12, pw, -1) != 1 &&
	    PKCS12_verify_mac(p12, pw == NULL ? "" : NULL, 0) != 1) {
		ERR_clear_error();
		if (pw == NULL)
			cfg_error(errs, cfg, t->pkcs12.loc, "PKCS#12 file %s "
			    "is protected: set \"pkcs12_passphrase_file\"",
			    t->pkcs12.path);
		else
			cfg_error(errs, cfg, t->pkcs12_passphrase_file.loc,
			    "cannot open PKCS#12 file %s: wrong passphrase in "
			    "%s", t->pkcs12.path, where);
		goto fail;
	}
	if (PKCS12_parse(p12, pw, &pkey, &cert, &ca) != 1) {
		/* Old bundles (RC2, 3DES-40) need the legacy provider. */
		ERR_clear_error();
		(void)OSSL_PROVIDER_load(NULL, "legacy");
		(void)OSSL_PROVIDER_load(NULL, "default");
		if (PKCS12_parse(p12, pw, &pkey, &cert, &ca) != 1) {
			if (nomac && pw == NULL)
				cfg_error(errs, cfg, t->pkcs12.loc, "PKCS#12 "
				    "file %s is protected (or damaged): set "
				    "\"pkcs12_passphrase_file\"",
				    t->pkcs12.path);
			else if (nomac)
				cfg_error(errs, cfg,
				    t->pkcs12_passphrase_file.loc, "cannot "
				    "open PKCS#12 file %s: wrong passphrase in "
				    "%s (or a damaged file: it has no MAC to "
				    "tell)", t->pkcs12.path, where);
			else
				cfg_error(errs, cfg, t->pkcs12.loc, "cannot "
				    "read PKCS#12 file %s: %s", t->pkcs12.path,
				    tls_error_str(ebuf, sizeof(ebuf)));
			ERR_clear_error();
			goto fail;
		}
	}
	if (pkey == NULL || cert == NULL) {
		cfg_error(errs, cfg, t->pkcs12.loc, "PKCS#12 file %s must hold "
		    "a private key and its certificate", t->pkcs12.path);
		goto fail;
	}
	if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		cfg_error(errs, cfg, t->pkcs12.loc, "cannot use the key and "
		    "certificate of %s: %s", t->pkcs12.path,
		    tls_cert_error(ctx, cert, ebuf, sizeof(ebuf)));
		goto fail;
	}
	/* Sent in issuer order without the root, not in the bags' order. */
	chain = tls_order_chain(cert, ca);
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) !=
		    1) {
			cfg_error(errs, cfg, t->pkcs12.loc, "cannot use chain "
			    "certificate of %s: %s", t->pkcs12.path,
			    tls_cert_error(ctx, sk_X509_value(chain, i), ebuf,
			    sizeof(ebuf)));
			goto fail;
		}
	rc = 0;
 fail:
	OPENSSL_cleanse(pass, sizeof(pass));
	sk_X509_free(chain);
	sk_X509_pop_free(ca, X509_free);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	PKCS12_free(p12);
	return rc;
}

static void
crl_note_until(X509_CRL *crl, time_t *until)
{
	time_t	u = asn1_time_t(X509_CRL_get0_nextUpdate(crl));

	if (u != 0 && (*until == 0 || u < *until))
		*until = u;
}

/*
 * Load CRLs (PEM, several allowed, or one DER) into the store; *until gets
 * the earliest nextUpdate among them.
 */
static int
tls_load_crl(X509_STORE *store, STACK_OF(X509_CRL) *all,
    const struct cfg *cfg, const struct cfg_file *f, time_t *until,
    struct errlist *errs)
{
	X509_CRL	*crl;
	BIO		*bio;
	int		 n = 0;

	if ((bio = tls_open(cfg, f, "CRL file", "rb", errs)) == NULL)
		return -1;
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		crl_note_until(crl, until);
		X509_STORE_add_crl(store, crl);
		if (sk_X509_CRL_push(all, crl) == 0)
			X509_CRL_free(crl);
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		(void)BIO_reset(bio);
		if ((crl = d2i_X509_CRL_bio(bio, NULL)) != NULL) {
			crl_note_until(crl, until);
			X509_STORE_add_crl(store, crl);
			if (sk_X509_CRL_push(all, crl) == 0)
				X509_CRL_free(crl);
			n++;
		}
		ERR_clear_error();
	}
	BIO_free(bio);
	if (n == 0) {
		cfg_error(errs, cfg, f->loc, "no CRL found in %s (expected PEM "
		    "\"-----BEGIN X509 CRL-----\" or DER)", f->path);
		return -1;
	}
	return 0;
}

/* Append s to buf, after ", " when buf is not empty. */
static void
tls_list_add(char *buf, size_t len, const char *s)
{
	size_t	n = strlen(buf);

	if (n + 1 < len)
		snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", s);
}

/* The keyUsage bits of x by name ("digitalSignature, keyAgreement"). */
char *
tls_ku_str(X509 *x, char *buf, size_t len)
{
	static const struct {
		uint32_t	 bit;
		const char	*name;
	} ku[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" },
		{ KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		{ KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" },
		{ KU_KEY_CERT_SIGN, "keyCertSign" },
		{ KU_CRL_SIGN, "cRLSign" },
		{ KU_ENCIPHER_ONLY, "encipherOnly" },
		{ KU_DECIPHER_ONLY, "decipherOnly" },
	};
	uint32_t	bits = X509_get_key_usage(x);
	size_t		i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(ku) / sizeof(ku[0]); i++)
		if (bits & ku[i].bit)
			tls_list_add(buf, len, ku[i].name);
	if (buf[0] == '\0')
		snprintf(buf, len, "empty");
	return buf;
}

/* The extendedKeyUsage purposes of x ("serverAuth, clientAuth"). */
char *
tls_eku_str(X509 *x, char *buf, size_t len)
{
	EXTENDED_KEY_USAGE	*eku;
	char			 oid[80];
	int			 i, nid;

	buf[0] = '\0';
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	ERR_clear_error();
	for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
		ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);

		if ((nid = OBJ_obj2nid(o)) != NID_undef)
			tls_list_add(buf, len, OBJ_nid2sn(nid));
		else {
			OBJ_obj2txt(oid, sizeof(oid), o, 1);
			tls_list_add(buf, len, oid);
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "empty");
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return buf;
}

/*
 * Why x fails OpenSSL's TLS client purpose check (X509_PURPOSE_SSL_CLIENT:
 * for the leaf a keyUsage with digitalSignature or keyAgreement and an
 * extendedKeyUsage with clientAuth, each if present; for a CA of the chain
 * (ca) an extendedKeyUsage with clientAuth and a CA's basicConstraints and
 * keyUsage), in words that follow "certificate's " or "its ".
 */
char *
tls_purpose_why(X509 *x, bool ca, char *buf, size_t len)
{
	uint32_t	flags = X509_get_extension_flags(x);
	char		list[256], part[384];

	buf[0] = '\0';
	if ((flags & EXFLAG_XKUSAGE) != 0 &&
	    (X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) == 0) {
		snprintf(part, sizeof(part), "extendedKeyUsage (%s) has no "
		    "clientAuth%s", tls_eku_str(x, list, sizeof(list)), ca ?
		    ", so it may not issue TLS client certificates" : "");
		snprintf(buf, len, "%s", part);
	}
	part[0] = '\0';
	if (!ca && (flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(x) &
	    (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) == 0)
		snprintf(part, sizeof(part), "keyUsage (%s) has neither "
		    "digitalSignature nor keyAgreement, one of which TLS "
		    "client authentication needs", tls_ku_str(x, list,
		    sizeof(list)));
	else if (ca && (flags & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(x) & KU_KEY_CERT_SIGN) == 0)
		snprintf(part, sizeof(part), "keyUsage (%s) has no "
		    "keyCertSign, so it may not sign certificates",
		    tls_ku_str(x, list, sizeof(list)));
	else if (ca && X509_check_ca(x) == 0)
		snprintf(part, sizeof(part), "basicConstraints do not make it "
		    "a CA");
	else if (ca && X509_check_trust(x, X509_TRUST_SSL_CLIENT,
	    X509_TRUST_NO_SS_COMPAT) == X509_TRUST_REJECTED)
		snprintf(part, sizeof(part), "trust settings (a TRUSTED "
		    "CERTIFICATE's reject list) exclude TLS client "
		    "authentication");
	if (part[0] != '\0')
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    buf[0] != '\0' ? ", and its " : "", part);
	if (buf[0] == '\0')
		snprintf(buf, len, "extensions (such as a Netscape nsCertType) "
		    "do not allow TLS client authentication");
	ERR_clear_error();
	return buf;
}

static void
set_reason(struct tls_verdict *v, const char *code, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static void
set_reason(struct tls_verdict *v, const char *code, const char *fmt, ...)
{
	va_list	ap;

	v->code = code;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/*
 * A client_auth.trusted_certs certificate that issued a certificate of a
 * chain that found no trust anchor: one the client sent above its leaf,
 * or the missing issuer of cur. *child gets the certificate it issued.
 */
static X509 *
tls_pinned_issuer(const struct tls_server *srv, X509_STORE_CTX *xs,
    X509 *cur, X509 **child)
{
	STACK_OF(X509)	*chain = X509_STORE_CTX_get0_chain(xs);
	X509		*t;
	int		 d, i;

	for (d = 1; d < sk_X509_num(chain); d++)
		for (i = 0; i < sk_X509_num(srv->trusted); i++) {
			t = sk_X509_value(srv->trusted, i);
			if (X509_cmp(t, sk_X509_value(chain, d)) == 0) {
				*child = sk_X509_value(chain, d - 1);
				return t;
			}
		}
	for (i = 0; cur != NULL && i < sk_X509_num(srv->trusted); i++) {
		t = sk_X509_value(srv->trusted, i);
		if (X509_check_issued(t, cur) == X509_V_OK) {
			*child = cur;
			return t;
		}
	}
	ERR_clear_error();
	return NULL;
}

/*
 * The chain stops at a trusted_certs certificate: it is pinned, trusted as
 * itself, and signs nothing that is trusted. Say so rather than that no
 * trusted certificate issued the client's, which reads as if the file had
 * not been loaded.
 */
static bool
tls_explain_pinned(struct tls_verdict *v, X509_STORE_CTX *xs,
    const struct tls_server *srv, X509 *cur)
{
	X509	*pin, *child = NULL;
	char	*pn, *cn = NULL, whose[600];

	if ((pin = tls_pinned_issuer(srv, xs, cur, &child)) == NULL)
		return false;
	pn = x509_name_rfc4514(X509_get_subject_name(pin));
	if (child != NULL && child != X509_STORE_CTX_get0_cert(xs))
		cn = x509_name_rfc4514(X509_get_subject_name(child));
	if (cn != NULL)
		snprintf(whose, sizeof(whose), "issuing CA certificate \"%s\" "
		    "is issued", cn);
	else
		snprintf(whose, sizeof(whose), "issued");
	set_reason(v, "unknown_ca", "unknown issuer: %s by \"%s\", which is "
	    "in client_auth.trusted_certs: a pinned certificate is trusted as "
	    "itself only, never as an issuer; put it in client_auth.ca%s to "
	    "trust what it signs", whose, pn ? pn : "?",
	    X509_check_issued(pin, pin) == X509_V_OK ? "" :
	    " (with partial_chain: true, as it is not a root)");
	ERR_clear_error();
	free(cn);
	free(pn);
	return true;
}

/* Whether x is one of client_auth.ca's certificates. */
static bool
tls_is_ca_cert(const struct tls_server *srv, X509 *x)
{
	int	i;

	for (i = 0; x != NULL && i < sk_X509_num(srv->cas); i++)
		if (X509_cmp(x, sk_X509_value(srv->cas, i)) == 0)
			return true;
	return false;
}

/*
 * Whether the chain built so far holds a certificate of client_auth.ca
 * that is not self-signed, with partial_chain off: it is no trust anchor,
 * which is worth saying when its issuer is missing.
 */
static bool
tls_chain_has_ca_anchor(const struct tls_server *srv, X509_STORE_CTX *xs)
{
	STACK_OF(X509)	*chain = X509_STORE_CTX_get0_chain(xs);
	X509		*x;
	int		 i;

	if (srv->cfg->client_auth.partial_chain)
		return false;
	for (i = 0; i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if ((X509_get_extension_flags(x) & EXFLAG_SS) == 0 &&
		    tls_is_ca_cert(srv, x))
			return true;
	}
	return false;
}

/* Put a chain verification failure into words. */
static void
tls_explain(struct tls_verdict *v, X509_STORE_CTX *xs,
    const struct tls_server *srv)
{
	X509		*cur = X509_STORE_CTX_get_current_cert(xs);
	int		 err = X509_STORE_CTX_get_error(xs);
	int		 depth = X509_STORE_CTX_get_error_depth(xs);
	char		 when[64], *name = NULL, whose[600], crl_for[600];
	/* Where trust comes from: a listener may have trusted_certs only. */
	const char	*anchors = srv->cfg->client_auth.ca.path != NULL ?
	    "client_auth.ca" : "client_auth.trusted_certs";

	if (cur != NULL)
		name = x509_name_rfc4514(X509_get_subject_name(cur));
	if (depth > 0 && name != NULL)
		snprintf(whose, sizeof(whose), "issuing CA certificate \"%s\"",
		    name);
	else
		snprintf(whose, sizeof(whose), "certificate");
	/* Who a CRL is for: "certificate" alone reads oddly in brackets. */
	snprintf(crl_for, sizeof(crl_for), "%s", depth > 0 && name != NULL ?
	    whose : "the client certificate");
	if ((err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
	    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	    err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
	    err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN) &&
	    tls_explain_pinned(v, xs, srv, cur)) {
		free(name);
		return;
	}
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
		/* The issuer missing is that of the certificate that failed. */
		char *iss = cur ? x509_name_rfc4514(X509_get_issuer_name(cur)) :
		    NULL;

		if (srv->cfg->client_auth.ca.path == NULL) {
			set_reason(v, "unknown_ca", "unknown issuer: %s is not "
			    "one of client_auth.trusted_certs (issued by "
			    "\"%s\"; client_auth.ca is not set, so no CA is "
			    "trusted)", depth > 0 ? "the chain" : "the client "
			    "certificate", iss ? iss : v->issuer ? v->issuer :
			    "?");
			free(iss);
			break;
		}
		set_reason(v, "unknown_ca", "unknown issuer: \"%s\", which "
		    "issued %s%s%s, is not in %s%s%s", iss ? iss : v->issuer ?
		    v->issuer : "?", depth > 0 && name != NULL ? "\"" : "the "
		    "client certificate", depth > 0 && name != NULL ? name :
		    "", depth > 0 && name != NULL ? "\"" : "", anchors,
		    tls_is_ca_cert(srv, cur) ? "" : " and the client did not "
		    "send it", tls_chain_has_ca_anchor(srv, xs) ? " (a CA "
		    "certificate in client_auth.ca is a trust anchor only when "
		    "self-signed, unless partial_chain: true)" : "");
		free(iss);
		break;
	}
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		set_reason(v, "unknown_ca", "unknown issuer: self-signed "
		    "certificate that is not in client_auth.trusted_certs");
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		set_reason(v, "unknown_ca", "unknown issuer: the chain ends at "
		    "root \"%s\" that is not in %s", name ? name : "?",
		    anchors);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		set_reason(v, "expired", "%s expired on %s", whose,
		    tls_time_str(X509_get0_notAfter(cur), when, sizeof(when)));
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		set_reason(v, "not_yet_valid", "%s not yet valid: valid from "
		    "%s", whose, tls_time_str(X509_get0_notBefore(cur), when,
		    sizeof(when)));
		break;
	case X509_V_ERR_CERT_REVOKED: {
		char *serial = NULL;
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cur),
		    NULL);

		if (bn != NULL)
			serial = BN_bn2hex(bn);
		set_reason(v, "revoked", "%s revoked (serial %s) according "
		    "to client_auth.crl", whose, serial ? serial : "?");
		OPENSSL_free(serial);
		BN_free(bn);
		break;
	}
	case X509_V_ERR_CRL_HAS_EXPIRED:
		set_reason(v, "crl_expired", "CRL expired: the CRL from \"%s\" "
		    "(for %s) passed its nextUpdate on %s; publish a fresh CRL "
		    "to client_auth.crl", v->crl_issuer[0] ? v->crl_issuer : "?",
		    crl_for, v->crl_when[0] ? v->crl_when : "(unknown date)");
		break;
	case X509_V_ERR_CRL_NOT_YET_VALID:
		set_reason(v, "crl_not_yet_valid", "CRL not yet valid: the CRL "
		    "from \"%s\" (for %s) has its lastUpdate on %s (check the "
		    "clock)", v->crl_issuer[0] ? v->crl_issuer : "?", crl_for,
		    v->crl_when[0] ? v->crl_when : "(unknown date)");
		break;
	case X509_V_ERR_UNABLE_TO_GET_CRL: {
		char *iss = cur ? x509_name_rfc4514(X509_get_issuer_name(cur)) :
		    NULL;

		set_reason(v, "crl_missing", "no CRL for %s: client_auth.crl "
		    "has no CRL from \"%s\" (with crl set, every CA in the "
		    "chain needs one)", whose, iss ? iss : "?");
		free(iss);
		break;
	}
	case X509_V_ERR_INVALID_PURPOSE: {
		char why[400];

		set_reason(v, "wrong_purpose", "wrong purpose: %s's %s", whose,
		    cur != NULL ? tls_purpose_why(cur, depth > 0, why,
		    sizeof(why)) : "extensions do not allow TLS client "
		    "authentication");
		break;
	}
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		/*
		 * Not verify_depth: the CA at this depth has a pathLenConstraint
		 * and there are more CAs below it than it allows.
		 */
		set_reason(v, "path_length", "path length exceeded: CA "
		    "certificate \"%s\" allows %ld CA%s below it "
		    "(basicConstraints pathlen:%ld), but the chain has %d",
		    name ? name : "?", X509_get_pathlen(cur),
		    X509_get_pathlen(cur) == 1 ? "" : "s",
		    X509_get_pathlen(cur), depth > 0 ? depth - 1 : 0);
		break;
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		set_reason(v, "chain_too_long", "chain too long: more "
		    "intermediate CAs between the client certificate and its "
		    "root than client_auth.verify_depth (%d) allows; raise "
		    "verify_depth if this chain is right",
		    srv->cfg->client_auth.verify_depth);
		break;
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL: {
		char key[128];
		int level = SSL_CTX_get_security_level(srv->ctx);

		set_reason(v, "weak_crypto", "weak key in %s: %s, %d-bit "
		    "security; security level %d needs %d (%s)", whose,
		    tls_key_str(cur, key, sizeof(key)), cur != NULL ?
		    EVP_PKEY_get_security_bits(X509_get0_pubkey(cur)) : 0,
		    level, tls_level_bits(level), tls_level_keys(level));
		break;
	}
	case X509_V_ERR_CA_MD_TOO_WEAK:
		set_reason(v, "weak_crypto", "weak signature on %s (SHA-1 or "
		    "MD5 is refused)", whose);
		break;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		set_reason(v, "bad_signature", "bad signature on %s", whose);
		break;
	case X509_V_ERR_INVALID_CA:
		if (cur != NULL && X509_get_version(cur) == X509_VERSION_1)
			set_reason(v, "invalid_ca", "%s is a version 1 "
			    "certificate (no extensions, as \"openssl x509 "
			    "-req\" makes without -extfile) but signed another "
			    "certificate in the chain: only a self-signed v1 "
			    "root counts as a CA; issue it again with "
			    "basicConstraints=critical,CA:TRUE", whose);
		else
			set_reason(v, "invalid_ca", "%s is not a CA certificate "
			    "(%s) but signed another certificate in the chain",
			    whose, cur != NULL && (X509_get_extension_flags(cur)
			    & EXFLAG_BCONS) == 0 ? "no basicConstraints" :
			    cur != NULL && (X509_get_extension_flags(cur) &
			    EXFLAG_CA) == 0 ? "basicConstraints CA:FALSE" :
			    "its keyUsage leaves out keyCertSign");
		break;
	default:
		set_reason(v, "verify_failed", "verification failed for %s: %s",
		    whose, X509_verify_cert_error_string(err));
	}
	free(name);
}

/*
 * OpenSSL's per-certificate verify callback: records the CRL's dates, which
 * are gone once X509_verify_cert returns, and shows each step to a tracer
 * (mtlsproxy explain) if one is set.  Never changes the outcome.
 */
static int
tls_x509_cb(int ok, X509_STORE_CTX *xs)
{
	struct tls_verdict	*v;
	X509_CRL		*crl;
	SSL			*ssl;
	char			*iss;
	int			 err;

	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	v = ssl != NULL ? SSL_get_ex_data(ssl, tls_verdict_idx) : NULL;
	if (v != NULL && v->trace != NULL)
		v->trace(v->trace_arg, ok, xs);	/* explain.c */
	if (ok)
		return ok;
	err = X509_STORE_CTX_get_error(xs);
	if (err != X509_V_ERR_CRL_HAS_EXPIRED &&
	    err != X509_V_ERR_CRL_NOT_YET_VALID)
		return ok;
	crl = X509_STORE_CTX_get0_current_crl(xs);
	if (v == NULL || crl == NULL)
		return ok;
	tls_time_str(err == X509_V_ERR_CRL_HAS_EXPIRED ?
	    X509_CRL_get0_nextUpdate(crl) : X509_CRL_get0_lastUpdate(crl),
	    v->crl_when, sizeof(v->crl_when));
	if ((iss = x509_name_rfc4514(X509_CRL_get_issuer(crl))) != NULL) {
		snprintf(v->crl_issuer, sizeof(v->crl_issuer), "%s", iss);
		free(iss);
	}
	return ok;
}

/* Whether the leaf, by its SHA-256 (NULL: unknown), is a trusted_cert. */
static bool
tls_is_trusted_leaf(const struct tls_server *srv, const unsigned char *md)
{
	size_t	i;

	for (i = 0; md != NULL && i < srv->ntrusted; i++)
		if (memcmp(md, srv->trusted_fp[i], FINGERPRINT_LEN) == 0)
			return true;
	return false;
}

/*
 * Whether a CRL in client_auth.crl revokes the pinned certificate leaf: a
 * CRL from its issuer, signed by the key of a certificate that issued it
 * (in client_auth.ca, trusted_certs, what the client sent, or the leaf
 * itself). A pinned certificate no CRL speaks of is not revoked: it is
 * revoked by taking it out of trusted_certs.
 */
static bool
tls_pinned_revoked(const struct tls_server *srv, X509 *leaf,
    STACK_OF(X509) *sent)
{
	STACK_OF(X509)	*pools[3] = { srv->cas, srv->trusted, sent };
	X509_REVOKED	*rev;
	X509_CRL	*crl;
	X509		*c;
	int		 i, j, k;
	bool		 signed_ok;

	for (i = 0; i < sk_X509_CRL_num(srv->crls); i++) {
		crl = sk_X509_CRL_value(srv->crls, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_issuer_name(leaf)) != 0 ||
		    X509_CRL_get0_by_cert(crl, &rev, leaf) != 1)
			continue;
		signed_ok = X509_check_issued(leaf, leaf) == X509_V_OK &&
		    X509_CRL_verify(crl, X509_get0_pubkey(leaf)) == 1;
		for (j = 0; !signed_ok && j < 3; j++)
			for (k = 0; !signed_ok && k < sk_X509_num(pools[j]);
			    k++) {
				c = sk_X509_value(pools[j], k);
				signed_ok = X509_check_issued(c, leaf) ==
				    X509_V_OK && X509_CRL_verify(crl,
				    X509_get0_pubkey(c)) == 1;
			}
		ERR_clear_error();
		if (signed_ok)
			return true;
	}
	return false;
}

/* Verify an exact trusted leaf against the trusted-only store. */
static int
tls_verify_trusted(const struct tls_server *srv, X509_STORE_CTX *xs, SSL *ssl)
{
	X509_STORE_CTX	*x2;
	int		 ok;

	if ((x2 = X509_STORE_CTX_new()) == NULL)
		return 0;
	if (X509_STORE_CTX_init(x2, srv->trusted_store,
	    X509_STORE_CTX_get0_cert(xs), NULL) != 1) {
		X509_STORE_CTX_free(x2);
		return 0;
	}
	X509_STORE_CTX_set_purpose(x2, X509_PURPOSE_SSL_CLIENT);
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(x2),
	    SSL_get_security_level(ssl));
	ok = X509_verify_cert(x2);
	if (ok == 1 && tls_pinned_revoked(srv, X509_STORE_CTX_get0_cert(xs),
	    X509_STORE_CTX_get0_untrusted(xs))) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
		X509_STORE_CTX_set_error_depth(xs, 0);
		X509_STORE_CTX_set_current_cert(xs,
		    X509_STORE_CTX_get0_cert(xs));
		ok = 0;
	} else if (ok == 1)
		X509_STORE_CTX_set0_verified_chain(xs,
		    X509_STORE_CTX_get1_chain(x2));
	else {
		X509_STORE_CTX_set_error(xs, X509_STORE_CTX_get_error(x2));
		X509_STORE_CTX_set_error_depth(xs,
		    X509_STORE_CTX_get_error_depth(x2));
		X509_STORE_CTX_set_current_cert(xs,
		    X509_STORE_CTX_get_current_cert(x2));
	}
	X509_STORE_CTX_free(x2);
	return ok == 1;
}

/*
 * Verified chains, remembered: services reconnect with the same client
 * certificate again and again, and checking its chain (a signature per CA
 * level, chain building, CRL lookups) is a large part of a handshake. An
 * entry is keyed by the SHA-256 of every certificate the client sent, so
 * it stands for exactly the chain that was verified, and holds until the
 * earliest notAfter in the chain, the earliest CRL nextUpdate, or
 * VCACHE_TTL, whichever comes first. It lives in the runtime: a reload
 * (new CAs, CRLs or settings) starts empty. The client still proves it
 * holds the key (CertificateVerify) and the policy runs on every
 * handshake. MTLSPROXY_VERIFY_CACHE=0 turns it off.
 */
#define VCACHE_SLOTS	1024
#define VCACHE_TTL	300

struct vcache_entry {
	unsigned char	 key[SHA256_DIGEST_LENGTH];
	time_t		 from;		/* latest notBefore in the chain */
	time_t		 until;		/* 0: empty */
	STACK_OF(X509)	*chain;		/* verified chain, leaf first */
};

struct vcache {
	pthread_mutex_t		 lock;
	struct vcache_entry	 e[VCACHE_SLOTS];
};

static bool
vcache_enabled(void)
{
	const char	*e = getenv("MTLSPROXY_VERIFY_CACHE");

	return e == NULL || strcmp(e, "0") != 0;
}

static struct vcache *
vcache_new(void)
{
	struct vcache	*c;

	if (!vcache_enabled())
		return NULL;
	c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
vcache_free(struct vcache *c)
{
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < VCACHE_SLOTS; i++)
		sk_X509_pop_free(c->e[i].chain, X509_free);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * The key: SHA-256 over the leaf's SHA-256 (leaf_md) and that of each other
 * certificate the client sent.
 */
static int
vcache_key(X509 *leaf, const unsigned char *leaf_md, STACK_OF(X509) *sent,
    unsigned char *key)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen, klen;
	EVP_MD_CTX	*ctx;
	X509		*x;
	int		 i, ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, sha256_md, NULL) == 1 &&
	    EVP_DigestUpdate(ctx, leaf_md, SHA256_DIGEST_LENGTH) == 1;
	/* libssl passes the leaf among the sent certificates. */
	for (i = 0; ok && sent != NULL && i < sk_X509_num(sent); i++)
		if ((x = sk_X509_value(sent, i)) != leaf)
			ok = X509_digest(x, sha256_md, md, &mdlen) == 1 &&
			    EVP_DigestUpdate(ctx, md, mdlen) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, key, &klen) == 1 &&
	    klen == SHA256_DIGEST_LENGTH;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static size_t
vcache_slot(const unsigned char *key)
{
	return ((size_t)key[0] << 8 | key[1]) % VCACHE_SLOTS;
}

/*
 * A remembered chain for this client: install it as xs's verified chain
 * (with this handshake's leaf) and return 1; 0 if there is none.
 */
static int
vcache_lookup(const struct tls_server *srv, X509_STORE_CTX *xs, X509 *leaf,
    const unsigned char *key)
{
	struct vcache		*c = srv->vcache;
	struct vcache_entry	*e = &c->e[vcache_slot(key)];
	STACK_OF(X509)		*chain = NULL;
	time_t			 now = time(NULL);
	int			 i, n;

	pthread_mutex_lock(&c->lock);
	if (e->until != 0 && now < e->until && now >= e->from &&
	    memcmp(e->key, key, sizeof(e->key)) == 0 &&
	    (n = sk_X509_num(e->chain)) > 0 &&
	    (chain = sk_X509_new_reserve(NULL, n)) != NULL) {
		X509_up_ref(leaf);
		sk_X509_push(chain, leaf);
		for (i = 1; i < n; i++) {
			X509 *x = sk_X509_value(e->chain, i);

			X509_up_ref(x);
			sk_X509_push(chain, x);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (chain == NULL)
		return 0;
	X509_STORE_CTX_set0_verified_chain(xs, chain);
	X509_STORE_CTX_set_error(xs, X509_V_OK);
	return 1;
}

/* Remember the chain OpenSSL just verified. */
static void
vcache_insert(const struct tls_server *srv, X509_STORE_CTX *xs,
    const unsigned char *key)
{
	struct vcache		*c = srv->vcache;
	struct vcache_entry	*e = &c->e[vcache_slot(key)];
	STACK_OF(X509)		*chain = X509_STORE_CTX_get1_chain(xs), *old;
	time_t			 now = time(NULL), from = 0, until, t;
	int			 i;

	if (chain == NULL || sk_X509_num(chain) == 0) {
		sk_X509_pop_free(chain, X509_free);
		return;
	}
	until = now + VCACHE_TTL;
	if (srv->crl_until != 0 && srv->crl_until < until)
		until = srv->crl_until;
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		/* An unreadable date: do not remember this chain. */
		if ((t = asn1_time_t(X509_get0_notAfter(x))) == 0)
			until = now;
		else if (t < until)
			until = t;
		if ((t = asn1_time_t(X509_get0_notBefore(x))) == 0)
			until = now;
		else if (t > from)
			from = t;
	}
	if (until <= now) {
		sk_X509_pop_free(chain, X509_free);
		return;
	}
	pthread_mutex_lock(&c->lock);
	old = e->chain;
	memcpy(e->key, key, sizeof(e->key));
	e->from = from;
	e->until = until;
	e->chain = chain;
	pthread_mutex_unlock(&c->lock);
	sk_X509_pop_free(old, X509_free);
}

/*
 * The usual chain check, through the cache when there is one. leaf_md: the
 * leaf's SHA-256, NULL if not worked out (no cache).
 */
static int
tls_verify_chain(const struct tls_server *srv, X509_STORE_CTX *xs,
    X509 *leaf, const unsigned char *leaf_md)
{
	unsigned char	key[SHA256_DIGEST_LENGTH];
	int		ok;

	if (leaf_md == NULL || srv->vcache == NULL || vcache_key(leaf, leaf_md,
	    X509_STORE_CTX_get0_untrusted(xs), key) == -1)
		return X509_verify_cert(xs) == 1;
	if (vcache_lookup(srv, xs, leaf, key)) {
		metrics_verify_cache(srv->li, true);
		return 1;
	}
	metrics_verify_cache(srv->li, false);
	if ((ok = X509_verify_cert(xs) == 1))
		vcache_insert(srv, xs, key);
	return ok;
}

/*
 * Certificate verification for a handshake: OpenSSL's chain check first,
 * then the policy on the verified leaf.  Records the reason for a refusal;
 * a non-zero error in xs makes OpenSSL send the matching TLS alert.
 */
static int
tls_verify(const struct tls_server *srv, X509_STORE_CTX *xs, bool use_cache)
{
	struct tls_verdict	*v;
	SSL			*ssl;
	X509			*leaf;
	unsigned char		 md[EVP_MAX_MD_SIZE], *leaf_md = NULL;
	unsigned int		 mdlen;
	char			 why[512];
	int			 ok, r;

	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	v = SSL_get_ex_data(ssl, tls_verdict_idx);
	leaf = X509_STORE_CTX_get0_cert(xs);
	/* The leaf's SHA-256, once, for the trusted list and the cache. */
	if (leaf != NULL && (srv->ntrusted > 0 ||
	    (use_cache && srv->vcache != NULL)) &&
	    X509_digest(leaf, sha256_md, md, &mdlen) == 1)
		leaf_md = md;
	if (tls_is_trusted_leaf(srv, leaf_md))
		ok = tls_verify_trusted(srv, xs, ssl);
	else
		ok = tls_verify_chain(srv, xs, leaf, use_cache ? leaf_md :
		    NULL);
	if (ok && (r = policy_check(srv->policy, leaf, why, sizeof(why))) == 0)
		return 1;
	/* Refused: name the client in the log (not needed when allowed). */
	if (v != NULL && leaf != NULL) {
		free(v->subject);
		free(v->issuer);
		v->subject = x509_name_rfc4514(X509_get_subject_name(leaf));
		v->issuer = x509_name_rfc4514(X509_get_issuer_name(leaf));
	}
	if (!ok) {
		if (v != NULL)
			tls_explain(v, xs, srv);
		return 0;
	}
	if (strncmp(why, "wrong purpose", 13) == 0) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_INVALID_PURPOSE);
		if (v != NULL)
			set_reason(v, "wrong_purpose", "%s", why);
	} else {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		if (v != NULL)
			set_reason(v, "policy", "%s", why);
	}
	X509_STORE_CTX_set_error_depth(xs, 0);
	return 0;
}

/* OpenSSL's certificate verification callback for a handshake. */
static int
tls_verify_cb(X509_STORE_CTX *xs, void *arg)
{
	return tls_verify(arg, xs, true);
}

/*
 * Verify a client chain outside a handshake, exactly as a handshake would
 * (same store, parameters, callbacks and policy): for re-authorizing live
 * connections after a reload and for `mtlsproxy explain`.  chain holds
 * the certificates the client sent besides the leaf.  Returns 1 if the
 * client is allowed; v says why not; *built (if not NULL) gets the chain
 * OpenSSL built, for the caller to free.
 */
int
tls_verify_offline(const struct tls_server *srv, X509 *leaf,
    STACK_OF(X509) *chain, struct tls_verdict *v, STACK_OF(X509) **built)
{
	X509_STORE_CTX	*xs = NULL;
	SSL		*ssl;
	int		 ok = 0;

	if (built != NULL)
		*built = NULL;
	if ((ssl = tls_ssl_new(srv, v)) == NULL ||
	    (xs = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(srv->ctx), leaf,
	    chain) != 1) {
		set_reason(v, "verify_failed", "out of memory");
		goto done;
	}
	X509_STORE_CTX_set_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx(),
	    ssl);
	X509_STORE_CTX_set_default(xs, "ssl_client");
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs),
	    SSL_get0_param(ssl));
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(xs),
	    SSL_get_security_level(ssl));
	X509_STORE_CTX_set_verify_cb(xs, tls_x509_cb);
	/* Never from the cache: this is the check that must be fresh. */
	ok = tls_verify(srv, xs, false);
	if (built != NULL && X509_STORE_CTX_get0_chain(xs) != NULL)
		*built = X509_STORE_CTX_get1_chain(xs);
 done:
	X509_STORE_CTX_free(xs);
	SSL_free(ssl);
	ERR_clear_error();
	return ok;
}

/* Build the CA store, trusted leaves and CRLs for client verification. */
static int
tls_load_client_auth(struct tls_server *srv, SSL_CTX *ctx,
    const struct cfg *cfg, const struct cfg_client_auth *ca,
    struct errlist *errs)
{
	STACK_OF(X509_NAME)	*names;
	STACK_OF(X509)		*sk;
	X509_STORE		*store = SSL_CTX_get_cert_store(ctx);
	X509_VERIFY_PARAM	*param;
	unsigned int		 mdlen;
	size_t			 i;
	int			 j, rc = 0;

	names = sk_X509_NAME_new_null();
	if (ca->ca.path != NULL) {
		if ((sk = tls_read_certs(cfg, &ca->ca, "CA file", errs)) ==
		    NULL)
			rc = -1;
		for (j = 0; sk != NULL && j < sk_X509_num(sk); j++) {
			X509 *x = sk_X509_value(sk, j);

			X509_STORE_add_cert(store, x);
			sk_X509_NAME_push(names,
			    X509_NAME_dup(X509_get_subject_name(x)));
		}
		srv->cas = sk;	/* CRL signers for pinned certificates */
	}
	if (ca->n_trusted_certs > 0) {
		srv->trusted_store = X509_STORE_new();
		srv->trusted = sk_X509_new_null();
		srv->trusted_fp = xcalloc(ca->n_trusted_certs,
		    sizeof(*srv->trusted_fp));
		X509_STORE_set_flags(srv->trusted_store,
		    X509_V_FLAG_PARTIAL_CHAIN);
	}
	for (i = 0; i < ca->n_trusted_certs; i++) {
		sk = tls_read_certs(cfg, &ca->trusted_certs[i],
		    "trusted certificate file", errs);
		if (sk == NULL) {
			rc = -1;
			continue;
		}
		for (j = 0; j < sk_X509_num(sk); j++) {
			X509 *x = sk_X509_value(sk, j);

			srv->trusted_fp = xreallocarray(srv->trusted_fp,
			    srv->ntrusted + 1, sizeof(*srv->trusted_fp));
			X509_STORE_add_cert(srv->trusted_store, x);
			if (X509_up_ref(x) == 1 && sk_X509_push(srv->trusted,
			    x) == 0)
				X509_free(x);
			X509_digest(x, sha256_md,
			    srv->trusted_fp[srv->ntrusted++], &mdlen);
			sk_X509_NAME_push(names,
			    X509_NAME_dup(X509_get_subject_name(x)));
		}
		sk_X509_pop_free(sk, X509_free);
	}
	if (ca->crl.path != NULL) {
		srv->crls = sk_X509_CRL_new_null();
		if (tls_load_crl(store, srv->crls, cfg, &ca->crl,
		    &srv->crl_until, errs) == -1)
			rc = -1;
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
		    X509_V_FLAG_CRL_CHECK_ALL);
	}
	if (ca->partial_chain)
		X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
	X509_VERIFY_PARAM_set_trust(param, X509_TRUST_SSL_CLIENT);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_x509_cb);
	SSL_CTX_set_verify_depth(ctx, ca->verify_depth);
	SSL_CTX_set_cert_verify_callback(ctx, tls_verify_cb, srv);
	srv->vcache = vcache_new();
	/* Names in the CertificateRequest help clients pick their cert. */
	SSL_CTX_set_client_CA_list(ctx, names);
	return rc;
}

/*
 * Session-ticket keys made here, when no session_ticket_key_file is given:
 * one ring for the whole process, so a reload (which builds new SSL_CTXs)
 * does not throw away the tickets clients hold. The newest key encrypts new
 * tickets; it is replaced by a fresh random one every
 * session_ticket_rotation, and the two before it still decrypt (a ticket
 * they open is renewed with the newest key), so a ticket resumes for at
 * least two rotation periods and a key never lives more than three. The
 * keys never leave memory.
 */
#define TICKET_KEYS	3

struct ticket_key {
	unsigned char	 name[16];
	unsigned char	 hmac[32];
	unsigned char	 aes[32];
	uint64_t	 born_ms;	/* monotonic */
	bool		 set;
};

static pthread_mutex_t	 ticket_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ticket_key ticket_ring[TICKET_KEYS];	/* [0]: newest */

/*
 * With ticket_mu held: one fresh key per rotation period gone by since the
 * newest was made (rotation happens when handshakes ask for keys, so after
 * a quiet spell several periods may be due at once). -1: no randomness.
 */
static int
tls_ticket_rotate(uint64_t every_ms)
{
	struct ticket_key	k;
	uint64_t		now = monotonic_ms(), due;

	if (!ticket_ring[0].set)
		due = 1;
	else if ((due = (now - ticket_ring[0].born_ms) / every_ms) >
	    TICKET_KEYS)
		due = TICKET_KEYS;
	for (; due > 0; due--) {
		if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
		    RAND_priv_bytes(k.hmac, sizeof(k.hmac)) != 1 ||
		    RAND_priv_bytes(k.aes, sizeof(k.aes)) != 1) {
			OPENSSL_cleanse(&k, sizeof(k));
			return -1;
		}
		k.born_ms = now;
		k.set = true;
		OPENSSL_cleanse(&ticket_ring[TICKET_KEYS - 1],
		    sizeof(ticket_ring[0]));
		memmove(&ticket_ring[1], &ticket_ring[0],
		    (TICKET_KEYS - 1) * sizeof(ticket_ring[0]));
		ticket_ring[0] = k;
		OPENSSL_cleanse(&k, sizeof(k));
	}
	return 0;
}

/*
 * A session ticket holds the client's certificate but not the
 * intermediates it sent (OpenSSL does not encode them), so a resumed
 * connection would have none to re-check with after a reload, nor the
 * verified chain's earliest notAfter for its expiry timer. Both go into
 * the ticket's application data instead (encrypted and authenticated with
 * the ticket): a version byte, that notAfter as 8 bytes (big-endian
 * seconds since the epoch, 0 if unknown), then the intermediates' DER one
 * after the other. A ticket issued on a resumed connection inherits them
 * from the session it resumed.
 */
#define TICKET_CHAIN_V1		0x01
#define TICKET_CHAIN_HEAD	9
#define TICKET_CHAIN_MAX	16384

static time_t
tls_chain_end(STACK_OF(X509) *chain, time_t end)
{
	struct tm	tm;
	time_t		t;
	int		i;

	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)),
		    &tm) != 1)
			continue;
		t = timegm(&tm);
		if (end == 0 || t < end)
			end = t;
	}
	return end;
}

static int
tls_ticket_gen_cb(SSL *ssl, void *arg)
{
	SSL_SESSION	*sess = SSL_get_session(ssl);
	STACK_OF(X509)	*chain = SSL_get_peer_cert_chain(ssl);
	STACK_OF(X509)	*verified = SSL_get0_verified_chain(ssl);
	unsigned char	*buf, *p;
	size_t		 len = TICKET_CHAIN_HEAD;
	uint64_t	 end;
	int		 i, n;

	(void)arg;
	if (sess == NULL || verified == NULL || sk_X509_num(verified) == 0)
		return 1;	/* a resumed connection: inherited already */
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		if ((n = i2d_X509(sk_X509_value(chain, i), NULL)) <= 0)
			return 1;
		len += (size_t)n;
	}
	if (len > TICKET_CHAIN_MAX)
		len = TICKET_CHAIN_HEAD;	/* the date at least */
	if ((buf = malloc(len)) == NULL)
		return 1;	/* the ticket still works, without them */
	end = (uint64_t)tls_chain_end(verified, 0);
	buf[0] = TICKET_CHAIN_V1;
	for (i = 0; i < 8; i++)
		buf[1 + i] = (unsigned char)(end >> (56 - 8 * i));
	p = buf + TICKET_CHAIN_HEAD;
	for (i = 0; len > TICKET_CHAIN_HEAD && chain != NULL &&
	    i < sk_X509_num(chain); i++)
		(void)i2d_X509(sk_X509_value(chain, i), &p);
	(void)SSL_SESSION_set1_ticket_appdata(sess, buf, len);
	free(buf);
	return 1;
}

/* The session's ticket data, if it has ours. */
static const unsigned char *
tls_ticket_chain(SSL *ssl, size_t *len)
{
	SSL_SESSION	*sess;
	void		*data = NULL;

	*len = 0;
	if ((sess = SSL_get_session(ssl)) == NULL ||
	    SSL_SESSION_get0_ticket_appdata(sess, &data, len) != 1 ||
	    data == NULL || *len < TICKET_CHAIN_HEAD ||
	    ((unsigned char *)data)[0] != TICKET_CHAIN_V1)
		return NULL;
	return data;
}

/*
 * The earliest notAfter of the client's verified chain: from the
 * handshake, or for a resumed session from its ticket (the leaf's if the
 * ticket has none). 0 if unknown.
 */
time_t
tls_peer_chain_end(SSL *ssl)
{
	STACK_OF(X509)		*verified = SSL_get0_verified_chain(ssl);
	const unsigned char	*d;
	X509			*peer = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509)		*leaf;
	uint64_t		 end = 0;
	size_t			 len;
	int			 i;

	if (verified != NULL && sk_X509_num(verified) > 0)
		return tls_chain_end(verified, 0);
	if ((d = tls_ticket_chain(ssl, &len)) != NULL)
		for (i = 0; i < 8; i++)
			end = end << 8 | d[1 + i];
	if (peer == NULL || (leaf = sk_X509_new_null()) == NULL)
		return (time_t)end;
	(void)sk_X509_push(leaf, peer);
	end = (uint64_t)tls_chain_end(leaf, (time_t)end);
	sk_X509_free(leaf);
	return (time_t)end;
}

/*
 * The intermediates the client sent: from the handshake, or for a resumed
 * session from its ticket. A new stack for the caller to free, NULL if none.
 */
STACK_OF(X509) *
tls_peer_intermediates(SSL *ssl)
{
	STACK_OF(X509)		*chain = SSL_get_peer_cert_chain(ssl), *sk;
	const unsigned char	*p, *end;
	size_t			 len;
	X509			*x;

	if (chain != NULL && sk_X509_num(chain) > 0)
		return X509_chain_up_ref(chain);
	if ((p = tls_ticket_chain(ssl, &len)) == NULL ||
	    len == TICKET_CHAIN_HEAD || (sk = sk_X509_new_null()) == NULL)
		return NULL;
	end = p + len;
	p += TICKET_CHAIN_HEAD;
	while (p < end) {
		if ((x = d2i_X509(NULL, &p, (long)(end - p))) == NULL)
			break;
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	}
	ERR_clear_error();
	return sk;
}

/*
 * OpenSSL's ticket callback: 1 = use this key, 2 = it decrypts but renew
 * the ticket, 0 = unknown key (full handshake), -1 = error.
 */
static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_server	*srv;
	struct ticket_key	 k;
	OSSL_PARAM		 params[3];
	int			 i, rc = 1, ok;

	srv = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_server_idx);
	if (srv == NULL)
		return -1;
	pthread_mutex_lock(&ticket_mu);
	if (tls_ticket_rotate(srv->ticket_rotation_ms) == -1) {
		pthread_mutex_unlock(&ticket_mu);
		return -1;
	}
	if (enc)
		i = 0;
	else
		for (i = 0; i < TICKET_KEYS; i++)
			if (ticket_ring[i].set &&
			    memcmp(name, ticket_ring[i].name, 16) == 0)
				break;
	if (i == TICKET_KEYS) {
		pthread_mutex_unlock(&ticket_mu);
		return 0;
	}
	k = ticket_ring[i];
	pthread_mutex_unlock(&ticket_mu);
	if (i > 0)
		rc = 2;
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) {
			OPENSSL_cleanse(&k, sizeof(k));
			return -1;
		}
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_CTX_set_params(hctx, params) == 1 &&
	    (enc ? EVP_EncryptInit_ex(cctx, ticket_cipher, NULL, k.aes, iv) :
	    EVP_DecryptInit_ex(cctx, ticket_cipher, NULL, k.aes, iv)) == 1;
	OPENSSL_cleanse(&k, sizeof(k));
	return ok ? rc : -1;
}

/*
 * A shared session-ticket key (80 random bytes: name, HMAC and AES keys),
 * so TLS resumption works across replicas that share the file.
 */
static int
tls_load_ticket_key(SSL_CTX *ctx, const struct cfg *cfg,
    const struct cfg_file *f, struct errlist *errs)
{
	unsigned char	 key[81];
	FILE		*fp;
	size_t		 n;

	if (tls_file_is_dir(cfg, f, "session ticket key file", errs))
		return -1;
	if ((fp = fopen(f->path, "rb")) == NULL) {
		cfg_error(errs, cfg, f->loc, "cannot read session ticket key "
		    "file %s: %s", f->path, strerror(errno));
		return -1;
	}
	n = fread(key, 1, sizeof(key), fp);
	fclose(fp);
	if (n != 80) {
		cfg_error(errs, cfg, f->loc, "session ticket key file %s must "
		    "hold exactly 80 bytes, it has %s%zu (make one with: "
		    "openssl rand 80 > %s)", f->path, n > 80 ? "more than " :
		    "", n > 80 ? (size_t)80 : n, f->path);
		OPENSSL_cleanse(key, sizeof(key));
		return -1;
	}
	if (SSL_CTX_set_tlsext_ticket_keys(ctx, key, 80) != 1) {
		ERR_clear_error();
		cfg_error(errs, cfg, f->loc, "cannot use session ticket key "
		    "file %s", f->path);
		OPENSSL_cleanse(key, sizeof(key));
		return -1;
	}
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

static void
digest_str(EVP_MD_CTX *md, const char *s)
{
	EVP_DigestUpdate(md, s, strlen(s) + 1);
}

static void
digest_list(EVP_MD_CTX *md, const char *name, const struct strlist *l)
{
	size_t	i;

	digest_str(md, name);
	for (i = 0; i < l->n; i++)
		digest_str(md, l->v[i]);
}

/*
 * The session id context: a digest of the listener's name and of all that
 * decides who gets in (CAs, CRLs, trusted certificates, depth, EKU rule,
 * allow lists).  A resumed session skips verification, so a session (or
 * ticket, even with a shared ticket key) from before a change of any of
 * these must not resume: OpenSSL refuses a session whose context differs
 * and does a full handshake.  Replicas with the same files get the same
 * context, so resumption across them still works.
 */
static void
tls_auth_digest(const struct tls_server *srv, const struct cfg_listener *l,
    unsigned char *out)
{
	SSL_CTX				*ctx = srv->ctx;
	const struct cfg_client_auth	*ca = &l->client_auth;
	const struct cfg_allow		*a = &ca->allow;
	STACK_OF(X509_OBJECT)		*objs;
	EVP_MD_CTX			*md = EVP_MD_CTX_new();
	unsigned char			*der;
	char				 num[64];
	int				 i, n;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		/* Fall back to the name: still per listener. */
		SHA256((const unsigned char *)l->name, strlen(l->name), out);
		EVP_MD_CTX_free(md);
		return;
	}
	digest_str(md, l->name);
	objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);

		der = NULL;
		if (X509_OBJECT_get_type(o) == X509_LU_X509)
			n = i2d_X509(X509_OBJECT_get0_X509(o), &der);
		else if (X509_OBJECT_get_type(o) == X509_LU_CRL)
			n = i2d_X509_CRL(X509_OBJECT_get0_X509_CRL(o), &der);
		else
			continue;
		if (n > 0)
			EVP_DigestUpdate(md, der, (size_t)n);
		OPENSSL_free(der);
	}
	if (srv->ntrusted > 0)
		EVP_DigestUpdate(md, srv->trusted_fp,
		    srv->ntrusted * FINGERPRINT_LEN);
	snprintf(num, sizeof(num), "%d/%d/%d/%d", ca->verify_depth,
	    ca->partial_chain, (int)ca->client_eku, ca->crl.path != NULL);
	digest_str(md, num);
	digest_list(md, "cn", &a->subject_cn);
	digest_list(md, "ou", &a->subject_ou);
	digest_list(md, "o", &a->subject_o);
	digest_list(md, "dns", &a->san_dns);
	digest_list(md, "uri", &a->san_uri);
	digest_list(md, "email", &a->san_email);
	if (a->n_fingerprint_sha256 > 0)
		EVP_DigestUpdate(md, a->fingerprint_sha256,
		    a->n_fingerprint_sha256 * FINGERPRINT_LEN);
	EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
}

/*
 * A server certificate configured without its chain: OpenSSL would build
 * the chain again on every handshake, from the client-CA store (a chain
 * check with a signature verification each time, for the same answer).
 * Build it once here from the same store, without a self-signed root (a
 * client that trusts the root has it already). A chain that cannot be
 * completed leaves what could be found (often only the certificate),
 * as before; a chain the user gave is sent as given.
 */
static void
tls_build_server_chain(SSL_CTX *ctx)
{
	STACK_OF(X509)	*chain = NULL;

	if (SSL_CTX_get0_certificate(ctx) == NULL ||
	    SSL_CTX_get0_chain_certs(ctx, &chain) != 1 ||
	    sk_X509_num(chain) > 0)
		return;
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT |
	    SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
	    SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0)
		ERR_clear_error();	/* OpenSSL builds it per handshake */
}

/*
 * The configured ciphers and groups, the server's certificate chain and
 * key; each problem is added to errs.
 */
static int
tls_load_identity(SSL_CTX *ctx, const struct cfg *cfg, const struct cfg_tls *t,
    struct errlist *errs)
{
	size_t	nerr = errs->n;

	if (t->ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
		ERR_clear_error();
		cfg_error(errs, cfg, t->ciphers_loc, "no usable cipher in "
		    "\"%s\" (see \"openssl ciphers -v\")", t->ciphers);
	}
	if (t->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
		ERR_clear_error();
		cfg_error(errs, cfg, t->ciphersuites_loc, "bad TLS 1.3 "
		    "ciphersuites \"%s\" (e.g. TLS_AES_256_GCM_SHA384:"
		    "TLS_CHACHA20_POLY1305_SHA256)", t->ciphersuites);
	}
	if (t->groups != NULL && SSL_CTX_set1_groups_list(ctx, t->groups) !=
	    1) {
		ERR_clear_error();
		cfg_error(errs, cfg, t->groups_loc, "bad groups \"%s\" (e.g. "
		    "X25519:P-256)", t->groups);
	}
	if (t->pkcs12.path != NULL)
		(void)tls_load_pkcs12(ctx, cfg, t, errs);
	else
		(void)tls_load_pem_pair(ctx, cfg, t, errs);
	return errs->n == nerr ? 0 : -1;
}

/* "h2, http/1.1" from an ALPN list in wire format, for a log line. */
static void
tls_alpn_str(const unsigned char *p, size_t n, char *buf, size_t len)
{
	size_t	i, j, l, off = 0;
	int	ch;

	for (i = 0; i < n; i += 1 + l) {
		l = p[i];
		if (i + 1 + l > n)
			break;
		if (off > 0 && off + 2 < len) {
			memcpy(buf + off, ", ", 2);
			off += 2;
		}
		for (j = 0; j < l && off + 1 < len; j++) {
			ch = p[i + 1 + j];
			buf[off++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
	}
	buf[off] = '\0';
}

/*
 * ALPN (RFC 7301): the first protocol of the listener's list that the
 * client offers, in the listener's order. A client that offers protocols
 * but none of these gets the no_application_protocol alert, as RFC 7301
 * 3.2 asks, and a log line naming both lists; it could not have talked to
 * the backend anyway (an HTTP/2-only gRPC client to an http-mode
 * listener). A client that offers none is served without ALPN.
 */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct tls_server	*srv = arg;
	struct tls_verdict	*v;
	unsigned char		*sel;
	char			 offered[256], ours[256];

	if (SSL_select_next_proto(&sel, outlen, srv->alpn,
	    (unsigned int)srv->alpn_len, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	if ((v = SSL_get_ex_data(ssl, tls_verdict_idx)) != NULL) {
		tls_alpn_str(in, inlen, offered, sizeof(offered));
		tls_alpn_str(srv->alpn, srv->alpn_len, ours, sizeof(ours));
		if (srv->cfg->backend.mode == BACKEND_HTTP)
			set_reason(v, "tls_error", "no common application "
			    "protocol (ALPN): the client offers only %s, and "
			    "this listener (backend mode: http) speaks HTTP/1.x "
			    "(%s); an HTTP/2 or gRPC client needs a listener "
			    "with backend mode: tcp and tls.alpn: [h2]",
			    offered, ours);
		else
			set_reason(v, "tls_error", "no common application "
			    "protocol (ALPN): the client offers only %s; "
			    "tls.alpn lists %s", offered, ours);
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * The listener's ALPN list in wire format: tls.alpn, or in http mode
 * HTTP/1.1 (and 1.0), so that a client offering h2 and http/1.1 (curl,
 * browsers, Go) is told which one it speaks. In tcp mode without
 * tls.alpn the proxy does not take part in ALPN: it cannot know what the
 * backend speaks.
 */
static void
tls_alpn_set(struct tls_server *srv, SSL_CTX *ctx,
    const struct cfg_listener *l)
{
	static const char *const http[] = { "http/1.1", "http/1.0" };
	const char *const	*v = (const char *const *)l->tls.alpn.v;
	size_t			 n = l->tls.alpn.n, i, plen, len = 0, off = 0;

	if (n == 0 && l->backend.mode == BACKEND_HTTP) {
		v = http;
		n = sizeof(http) / sizeof(http[0]);
	}
	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		len += 1 + strlen(v[i]);
	srv->alpn = xmalloc(len);
	for (i = 0; i < n; i++) {
		plen = strlen(v[i]);	/* 1..255: checked at load */
		srv->alpn[off++] = (unsigned char)plen;
		memcpy(srv->alpn + off, v[i], plen);
		off += plen;
	}
	srv->alpn_len = len;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, srv);
}

/*
 * Build the server side of one listener, with its tls section (do_tls) and
 * its client_auth section (do_auth); -1 with messages in errs.
 */
static int
tls_server_build(struct tls_server *srv, const struct cfg *cfg,
    const struct cfg_listener *l, bool do_tls, bool do_auth,
    struct errlist *errs)
{
	const struct cfg_tls	*t = &l->tls;
	SSL_CTX			*ctx;
	unsigned char		 sid[SHA256_DIGEST_LENGTH];
	char			 ebuf[256];
	size_t			 nerr = errs->n;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = l;
	srv->li = (size_t)(l - cfg->listeners);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		cfg_error(errs, cfg, l->loc, "cannot create TLS context: %s",
		    tls_error_str(ebuf, sizeof(ebuf)));
		return -1;
	}
	srv->ctx = ctx;
	/* Security level 2 at least: no RSA < 2048, no SHA-1 signatures. */
	if (SSL_CTX_get_security_level(ctx) < 2)
		SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_set_min_proto_version(ctx, t->min_version);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF |
	    (t->session_tickets ? 0 : SSL_OP_NO_TICKET));
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/*
	 * One read() for whatever the socket holds, not two per record
	 * (header, then body); session_read_more() makes sure nothing read
	 * ahead waits. With RELEASE_BUFFERS the read buffer is still freed
	 * whenever it is empty.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	/*
	 * Room for four full records: an upload is read 64 KiB per read(),
	 * not one record at a time.
	 */
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_BUFFER);
	/*
	 * One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs a
	 * session encoding (with the client's certificate) and encryption,
	 * and clients resume with one.
	 */
	SSL_CTX_set_num_tickets(ctx, 1);
	if (!t->session_tickets) {
		/*
		 * No resumption at all: with SSL_OP_NO_TICKET alone OpenSSL
		 * still resumes TLS 1.2 session IDs and sends TLS 1.3
		 * tickets that point into its session cache.
		 */
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	/*
	 * Unless configured: AES-128-GCM first, as Go and BoringSSL order
	 * them. It is as strong as the key exchange (X25519, P-256: 128-bit
	 * security), so AES-256 adds nothing there, and it costs client and
	 * proxy a third less CPU per byte. A client that puts ChaCha20 first
	 * (no AES hardware) gets ChaCha20. TLS 1.2: AEAD suites with forward
	 * secrecy only (Mozilla's "intermediate"; no CBC, no static RSA).
	 */
	if (t->ciphersuites == NULL)
		(void)SSL_CTX_set_ciphersuites(ctx, TLS_DEFAULT_SUITES13);
	if (t->ciphers == NULL)
		(void)SSL_CTX_set_cipher_list(ctx, TLS_DEFAULT_CIPHERS12);
	SSL_CTX_set_options(ctx, SSL_OP_PRIORITIZE_CHACHA);
	if (do_tls)
		(void)tls_load_identity(ctx, cfg, t, errs);
	if (SSL_CTX_get0_certificate(ctx) != NULL)
		srv->cert_not_after = asn1_time_t(X509_get0_notAfter(
		    SSL_CTX_get0_certificate(ctx)));
	srv->ticket_rotation_ms = cfg->ticket_rotation_ms;
	if (SSL_CTX_set_ex_data(ctx, tls_server_idx, srv) != 1) {
		cfg_error(errs, cfg, l->loc, "out of memory");
		tls_server_clear(srv);
		return -1;
	}
	if (t->session_ticket_key_file.path != NULL && do_tls)
		(void)tls_load_ticket_key(ctx, cfg, &t->session_ticket_key_file,
		    errs);
	else if (t->session_tickets)
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
	if (t->session_tickets)
		(void)SSL_CTX_set_session_ticket_cb(ctx, tls_ticket_gen_cb,
		    NULL, NULL);
	if (do_auth)
		(void)tls_load_client_auth(srv, ctx, cfg, &l->client_auth,
		    errs);
	tls_build_server_chain(ctx);
	if (do_auth)
		srv->policy = policy_new(&l->client_auth.allow,
		    l->client_auth.client_eku);
	if (l->backend.mode == BACKEND_HTTP)
		srv->hdrs = hdr_set_new(&l->headers);
	tls_alpn_set(srv, ctx, l);
	tls_auth_digest(srv, l, sid);
	SSL_CTX_set_session_id_context(ctx, sid, SSL_MAX_SID_CTX_LENGTH);
	if (errs->n != nerr) {
		tls_server_clear(srv);
		return -1;
	}
	return 0;
}

/* The TLS context and client verification of listener l. */
int
tls_server_init(struct tls_server *srv, const struct cfg *cfg,
    const struct cfg_listener *l, struct errlist *errs)
{
	return tls_server_build(srv, cfg, l, true, true, errs);
}

/*
 * A config with errors: load and check the files of the sections of l that
 * were read without one (the server's certificate and key when its tls
 * section is sound, the CAs and CRLs when its client_auth section is), so
 * that their problems are reported in the same run as the config's.
 */
void
tls_server_check(const struct cfg *cfg, const struct cfg_listener *l,
    struct errlist *errs)
{
	struct tls_server	srv;

	if (!l->tls_ok && !l->client_auth_ok)
		return;
	if (tls_server_build(&srv, cfg, l, l->tls_ok, l->client_auth_ok,
	    errs) == 0)
		tls_server_clear(&srv);
}

/* Free what tls_server_init built. */
void
tls_server_clear(struct tls_server *srv)
{
	SSL_CTX_free(srv->ctx);
	X509_STORE_free(srv->trusted_store);
	sk_X509_pop_free(srv->trusted, X509_free);
	sk_X509_pop_free(srv->cas, X509_free);
	sk_X509_CRL_pop_free(srv->crls, X509_CRL_free);
	free(srv->trusted_fp);
	policy_free(srv->policy);
	hdr_set_free(srv->hdrs);
	vcache_free(srv->vcache);
	free(srv->alpn);
	memset(srv, 0, sizeof(*srv));
}

/* A new server-side SSL for one connection, recording into v. */
SSL *
tls_ssl_new(const struct tls_server *srv, struct tls_verdict *v)
{
	SSL	*ssl;

	if ((ssl = SSL_new(srv->ctx)) == NULL)
		return NULL;
	SSL_set_ex_data(ssl, tls_verdict_idx, v);
	return ssl;
}

/* Free the strings of a verdict. */
void
tls_verdict_clear(struct tls_verdict *v)
{
	free(v->subject);
	free(v->issuer);
	memset(v, 0, sizeof(*v));
}

/*
 * A handshake failed: if verification did not already say why, explain
 * from the TLS error (no certificate, protocol mismatch, client alert).
 */
void
tls_verdict_from_errors(struct tls_verdict *v, SSL *ssl, unsigned long err)
{
	const char	*r;
	int		 reason;

	if (v->code != NULL)
		return;
	if (err == 0) {
		if (ssl != NULL && BIO_number_written(SSL_get_wbio(ssl)) > 0)
			set_reason(v, "tls_error", "the client closed the "
			    "connection after receiving the server certificate "
			    "(does it trust the server certificate?)");
		else
			set_reason(v, "tls_error", "connection closed during "
			    "the TLS handshake");
		return;
	}
	reason = ERR_GET_REASON(err);
	r = ERR_reason_error_string(err);
	if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
	    reason == SSL_R_NO_CERTIFICATES_RETURNED)
		set_reason(v, "no_cert", "no client certificate: the client "
		    "sent none (a client certificate is required)");
	else if (reason == SSL_R_WRONG_CURVE)
		set_reason(v, "weak_crypto", "the client certificate's EC key "
		    "is on a curve TLS does not allow for signatures (only "
		    "P-256, P-384 and P-521; not secp256k1 or Brainpool)");
	else if (r != NULL && strncmp(r, "tlsv1 alert ", 12) == 0)
		set_reason(v, "tls_error", "the client aborted the handshake "
		    "with alert \"%s\" (does it trust the server "
		    "certificate?)", r + 12);
	else if (r != NULL && strncmp(r, "sslv3 alert ", 12) == 0)
		set_reason(v, "tls_error", "the client aborted the handshake "
		    "with alert \"%s\"", r + 12);
	else if (reason == SSL_R_HTTP_REQUEST)
		set_reason(v, "tls_error", "the client sent a plain HTTP "
		    "request to this TLS port (it must use https://)");
	else if (reason == SSL_R_HTTPS_PROXY_REQUEST)
		set_reason(v, "tls_error", "the client sent an HTTP proxy "
		    "request (CONNECT) to this TLS port: it takes mtlsproxy "
		    "for a forward proxy; it must connect with TLS (https://)");
	else if (reason == SSL_R_UNSUPPORTED_PROTOCOL)
		set_reason(v, "tls_error", "unsupported protocol: the client "
		    "offered only TLS versions below this listener's "
		    "tls.min_version (%s)", ssl != NULL &&
		    SSL_get_min_proto_version(ssl) == TLS1_3_VERSION ?
		    "TLSv1.3" : "TLSv1.2");
	else if (reason == SSL_R_NO_SHARED_CIPHER)
		set_reason(v, "tls_error", "no shared cipher: the client "
		    "offered none of the cipher suites this listener accepts "
		    "(tls.ciphers for TLS 1.2, tls.ciphersuites for TLS 1.3; "
		    "the defaults are AEAD suites with forward secrecy)");
	else if (reason == SSL_R_WRONG_VERSION_NUMBER ||
	    reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
	    reason == SSL_R_RECORD_LENGTH_MISMATCH)
		set_reason(v, "tls_error", "the client did not speak TLS "
		    "(%s): a plaintext protocol sent to this TLS port?",
		    r ? r : "unknown error");
	else
		set_reason(v, "tls_error", "TLS handshake failed: %s",
		    r ? r : "unknown error");
}
