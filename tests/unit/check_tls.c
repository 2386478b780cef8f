/*
 * check_tls.c - loading of server credentials, client CAs and CRLs through
 * cfg_load() and tls_server_init(), against keys, certificates, CRLs and
 * PKCS#12 bundles built here with the OpenSSL API in a temporary directory.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"
#include "check_suites.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define PASS		"correct horse battery staple"
#define LEAF_SERIAL	0x1001
#define MAXKEPT		64

/* Made once per test case by pki_setup(), removed by pki_teardown(). */
static char		 dir[] = "/tmp/check_tls.XXXXXX";
static char		 credsdir[] = "/tmp/check_tls_creds.XXXXXX";
static char		 cfgpath[PATH_MAX];
static time_t		 leaf_not_after;
static unsigned char	 fp_root[FINGERPRINT_LEN], fp_inter[FINGERPRINT_LEN];
static unsigned char	 fp_leaf[FINGERPRINT_LEN];

/* Per test. */
static char		*yaml;		/* the config written last */
static struct errlist	 errs;
static struct cfg	*cfg;
static struct tls_server srv;
static char		*kept[MAXKEPT];	/* strings made for expectations */
static size_t		 nkept;

static const char *
keep(char *s)
{
	ck_assert_uint_lt(nkept, MAXKEPT);
	kept[nkept++] = s;
	return s;
}

/* The full path of a file in the fixture's directory. */
static const char *
P(const char *name)
{
	return keep(xasprintf("%s/%s", dir, name));
}

/* -- files -- */

static BIO *
wopen(const char *d, const char *name)
{
	char	*path;
	BIO	*bio;

	path = xasprintf("%s/%s", d, name);
	bio = BIO_new_file(path, "wb");
	ck_assert_msg(bio != NULL, "cannot write %s", path);
	free(path);
	return bio;
}

static void
wdata(const char *d, const char *name, const void *data, size_t len)
{
	BIO	*bio = wopen(d, name);

	if (len > 0)
		ck_assert_int_eq(BIO_write(bio, data, (int)len), (int)len);
	BIO_free(bio);
}

static void
wtext(const char *d, const char *name, const char *text)
{
	wdata(d, name, text, strlen(text));
}

/* Remove the files of a flat directory, then the directory. */
static void
rmdir_flat(const char *d)
{
	struct dirent	*de;
	DIR		*dp;
	char		*path;

	if ((dp = opendir(d)) == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		path = xasprintf("%s/%s", d, de->d_name);
		if (unlink(path) == -1)
			(void)rmdir(path);	/* adir */
		free(path);
	}
	closedir(dp);
	(void)rmdir(d);
}

/* -- PKI -- */

static EVP_PKEY *
keygen(void)
{
	EVP_PKEY	*k;

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	ck_assert_ptr_nonnull(k);
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ck_assert_ptr_nonnull(e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key named cn, signed by issuer (NULL: self-signed). */
static X509 *
mkcert(const char *cn, long serial, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *ikey, bool ca)
{
	X509	*x;

	ck_assert_ptr_nonnull(x = X509_new());
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial),
	    1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x),
	    leaf_not_after));
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(
	    issuer != NULL ? issuer : x)), 1);
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	if (ca) {
		add_ext(x, issuer != NULL ? issuer : x,
		    NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	ck_assert_int_gt(X509_sign(x, ikey != NULL ? ikey : key,
	    EVP_sha256()), 0);
	return x;
}

/* A CRL by issuer, revoking serial if it is not 0. */
static X509_CRL *
mkcrl(X509 *issuer, EVP_PKEY *ikey, long serial)
{
	X509_CRL	*crl;
	X509_REVOKED	*r;
	ASN1_INTEGER	*sn;
	ASN1_TIME	*last, *next;

	ck_assert_ptr_nonnull(crl = X509_CRL_new());
	ck_assert_int_eq(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	ck_assert_int_eq(X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(issuer)), 1);
	ck_assert_ptr_nonnull(last = X509_gmtime_adj(NULL, -3600));
	ck_assert_ptr_nonnull(next = X509_gmtime_adj(NULL, 30 * 86400));
	ck_assert_int_eq(X509_CRL_set1_lastUpdate(crl, last), 1);
	ck_assert_int_eq(X509_CRL_set1_nextUpdate(crl, next), 1);
	if (serial != 0) {
		ck_assert_ptr_nonnull(r = X509_REVOKED_new());
		ck_assert_ptr_nonnull(sn = ASN1_INTEGER_new());
		ck_assert_int_eq(ASN1_INTEGER_set(sn, serial), 1);
		ck_assert_int_eq(X509_REVOKED_set_serialNumber(r, sn), 1);
		ck_assert_int_eq(X509_REVOKED_set_revocationDate(r, last), 1);
		ck_assert_int_eq(X509_CRL_add0_revoked(crl, r), 1);
		ASN1_INTEGER_free(sn);
	}
	ck_assert_int_eq(X509_CRL_sort(crl), 1);
	ck_assert_int_gt(X509_CRL_sign(crl, ikey, EVP_sha256()), 0);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	return crl;
}

static void
fingerprint(X509 *x, unsigned char *md)
{
	unsigned int	n = 0;

	ck_assert_int_eq(X509_digest(x, EVP_sha256(), md, &n), 1);
	ck_assert_uint_eq(n, FINGERPRINT_LEN);
}

static void
wcerts(const char *name, X509 *a, X509 *b)
{
	BIO	*bio = wopen(dir, name);

	ck_assert_int_eq(PEM_write_bio_X509(bio, a), 1);
	if (b != NULL)
		ck_assert_int_eq(PEM_write_bio_X509(bio, b), 1);
	BIO_free(bio);
}

/* Write key; cipher NULL: in clear; trad: the old "Proc-Type" format. */
static void
wkey(const char *name, EVP_PKEY *k, const EVP_CIPHER *cipher, bool trad)
{
	unsigned char	*pass = NULL;
	BIO		*bio = wopen(dir, name);
	int		 plen = 0;

	if (cipher != NULL) {
		pass = (unsigned char *)PASS;
		plen = (int)strlen(PASS);
	}

	if (trad)
		ck_assert_int_eq(PEM_write_bio_PrivateKey_traditional(bio, k,
		    cipher, pass, plen, NULL, NULL), 1);
	else
		ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, k, cipher, pass,
		    plen, NULL, NULL), 1);
	BIO_free(bio);
}

static void
wp12(const char *name, EVP_PKEY *k, X509 *leaf, X509 *chain)
{
	STACK_OF(X509)	*ca;
	PKCS12		*p12;
	BIO		*bio;

	ck_assert_ptr_nonnull(ca = sk_X509_new_null());
	ck_assert_int_gt(sk_X509_push(ca, chain), 0);
	/* mac_iter -1: no MAC yet; set a SHA-256 one below. */
	p12 = PKCS12_create(PASS, "server", k, leaf, ca, NID_aes_256_cbc,
	    NID_aes_256_cbc, PKCS12_DEFAULT_ITER, -1, 0);
	ck_assert_ptr_nonnull(p12);
	ck_assert_int_eq(PKCS12_set_mac(p12, PASS, -1, NULL, 0,
	    PKCS12_DEFAULT_ITER, EVP_sha256()), 1);
	bio = wopen(dir, name);
	ck_assert_int_eq(i2d_PKCS12_bio(bio, p12), 1);
	BIO_free(bio);
	PKCS12_free(p12);
	sk_X509_free(ca);
}

static void
pki_setup(void)
{
	static bool	 inited;
	static const char garbage[] = "this is not PEM\n"
	    "-----BEGIN CERTIFICATE-----\nnot base64 !!\n"
	    "-----END CERTIFICATE-----\n\x30\x82\x01\x00\xff\xfe junk\n";
	EVP_PKEY	*rootk, *intk, *leafk, *otherk, *weakk;
	X509		*root, *inter, *leaf, *weak;
	X509_CRL	*intcrl, *rootcrl;
	BIO		*bio;
	char		*adir;

	if (!inited) {
		ck_assert_int_eq(tls_init(), 0);
		inited = true;
	}
	/* The tests set it; one from the environment would change paths. */
	unsetenv("CREDENTIALS_DIRECTORY");
	strcpy(dir, "/tmp/check_tls.XXXXXX");
	strcpy(credsdir, "/tmp/check_tls_creds.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_ptr_nonnull(mkdtemp(credsdir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/mtlsproxy.yaml", dir);
	leaf_not_after = time(NULL) / 60 * 60 + 90 * 86400;

	rootk = keygen();
	intk = keygen();
	leafk = keygen();
	otherk = keygen();
	root = mkcert("Test Root CA", 1, rootk, NULL, NULL, true);
	inter = mkcert("Test Intermediate CA", 2, intk, root, rootk, true);
	leaf = mkcert("server.example", LEAF_SERIAL, leafk, inter, intk,
	    false);
	/* RSA under 2048 bits: refused at security level 2 */
	weakk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ck_assert_ptr_nonnull(weakk);
	weak = mkcert("Weak CA", 3, weakk, NULL, NULL, true);

	fingerprint(root, fp_root);
	fingerprint(inter, fp_inter);
	fingerprint(leaf, fp_leaf);
	wcerts("root.pem", root, NULL);
	wcerts("leaf.pem", leaf, NULL);
	wcerts("chain.pem", leaf, inter);	/* leaf first */
	wcerts("wrongorder.pem", inter, leaf);	/* intermediate first */
	wcerts("cas.pem", root, inter);
	wcerts("weak.pem", weak, NULL);
	wcerts("chain-weak.pem", leaf, weak);
	wkey("weak.key", weakk, NULL, false);
	wkey("leaf.key", leafk, NULL, false);
	wkey("other.key", otherk, NULL, false);
	wkey("leaf-aes.key", leafk, EVP_aes_256_cbc(), false);
	wkey("leaf-des3.key", leafk, EVP_des_ede3_cbc(), false);
	wkey("leaf-trad.key", leafk, EVP_des_ede3_cbc(), true);
	wp12("server.p12", leafk, leaf, inter);

	intcrl = mkcrl(inter, intk, LEAF_SERIAL);
	rootcrl = mkcrl(root, rootk, 0);
	bio = wopen(dir, "int.crl");
	ck_assert_int_eq(PEM_write_bio_X509_CRL(bio, intcrl), 1);
	BIO_free(bio);
	bio = wopen(dir, "int.crl.der");
	ck_assert_int_eq(i2d_X509_CRL_bio(bio, intcrl), 1);
	BIO_free(bio);
	bio = wopen(dir, "root.crl");
	ck_assert_int_eq(PEM_write_bio_X509_CRL(bio, rootcrl), 1);
	BIO_free(bio);
	bio = wopen(dir, "both.crl");
	ck_assert_int_eq(PEM_write_bio_X509_CRL(bio, rootcrl), 1);
	ck_assert_int_eq(PEM_write_bio_X509_CRL(bio, intcrl), 1);
	BIO_free(bio);

	adir = xasprintf("%s/adir", dir);	/* P() keeps per test */
	ck_assert_int_eq(mkdir(adir, 0700), 0);
	free(adir);
	wtext(dir, "pass.txt", PASS "\n");
	wtext(dir, "pass-crlf.txt", PASS "\r\nsecond line\n");
	wtext(dir, "pass-noeol.txt", PASS);
	wtext(dir, "wrong.txt", "not the passphrase\n");
	wtext(dir, "newline.txt", "\n");
	wtext(dir, "empty.txt", "");
	wdata(dir, "garbage.bin", garbage, sizeof(garbage) - 1);
	/* Found in $CREDENTIALS_DIRECTORY first, next to the config else. */
	wtext(credsdir, "cred.txt", PASS "\n");
	wtext(dir, "cred.txt", "not the passphrase\n");
	wtext(credsdir, "credonly.txt", PASS "\n");

	X509_CRL_free(rootcrl);
	X509_CRL_free(intcrl);
	X509_free(weak);
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(weakk);
	EVP_PKEY_free(otherk);
	EVP_PKEY_free(leafk);
	EVP_PKEY_free(intk);
	EVP_PKEY_free(rootk);
}

static void
pki_teardown(void)
{
	rmdir_flat(dir);
	rmdir_flat(credsdir);
}

static void
setup(void)
{
	yaml = NULL;
	cfg = NULL;
	nkept = 0;
	memset(&errs, 0, sizeof(errs));
	memset(&srv, 0, sizeof(srv));
}

static void
teardown(void)
{
	size_t	i;

	tls_server_clear(&srv);
	cfg_free(cfg);
	cfg = NULL;
	errlist_free(&errs);
	for (i = 0; i < nkept; i++)
		free(kept[i]);
	nkept = 0;
	free(yaml);
	yaml = NULL;
	unsetenv("CREDENTIALS_DIRECTORY");
}

/* -- config -- */

/* Append lines, each indented by six spaces (inside the listener). */
static void
indent6(FILE *fp, const char *lines)
{
	const char	*nl;

	while (*lines != '\0') {
		nl = strchr(lines, '\n');
		if (nl == NULL)
			nl = lines + strlen(lines);
		fprintf(fp, "      %.*s\n", (int)(nl - lines), lines);
		lines = *nl == '\n' ? nl + 1 : nl;
	}
}

/* Write the config: one listener with these tls and client_auth keys. */
static void
config(const char *tls, const char *client_auth)
{
	FILE	*fp;
	size_t	 len;

	free(yaml);
	ck_assert_ptr_nonnull(fp = open_memstream(&yaml, &len));
	fprintf(fp, "listeners:\n"
	    "  - name: api\n"
	    "    listen: \"127.0.0.1:8443\"\n"
	    "    tls:\n");
	indent6(fp, tls);
	fprintf(fp, "    client_auth:\n");
	indent6(fp, client_auth);
	fprintf(fp, "    backend:\n"
	    "      address: \"127.0.0.1:8080\"\n");
	ck_assert_int_eq(fclose(fp), 0);
	wtext(dir, "mtlsproxy.yaml", yaml);
}

/* Line and column of the value of the first "key: value" in the config. */
static struct cfg_loc
value_loc(const char *key)
{
	const char	*line = yaml, *p;
	size_t		 klen = strlen(key);
	unsigned	 n = 1;

	for (;;) {
		p = line + strspn(line, " -");
		if (strncmp(p, key, klen) == 0 && p[klen] == ':' &&
		    p[klen + 1] == ' ')
			return (struct cfg_loc){ n,
			    (unsigned)(p + klen + 2 - line) + 1 };
		if ((line = strchr(line, '\n')) == NULL)
			break;
		line++;
		n++;
	}
	ck_abort_msg("no \"%s: \" in the config", key);
}

/* Line and column of the first occurrence of text in the config. */
static struct cfg_loc
text_loc(const char *text)
{
	const char	*p, *bol, *nl;
	unsigned	 n = 1;

	ck_assert_ptr_nonnull(p = strstr(yaml, text));
	for (bol = yaml; (nl = strchr(bol, '\n')) != NULL && nl < p;
	    bol = nl + 1)
		n++;
	return (struct cfg_loc){ n, (unsigned)(p - bol) + 1 };
}

static const char *
at_loc(struct cfg_loc loc, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* "config:line:col: message", as cfg_error() formats it. */
static const char *
at_loc(struct cfg_loc loc, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&msg, fmt, ap), 0);
	va_end(ap);
	keep(msg);
	return keep(xasprintf("%s:%u:%u: %s", cfgpath, loc.line, loc.col,
	    msg));
}

/* A message at the value of key. */
#define AT(key, ...)	at_loc(value_loc(key), __VA_ARGS__)

/* Load the config and build the listener; tls_server_init's result. */
static int
build(void)
{
	cfg = cfg_load(cfgpath, &errs);
	ck_assert_msg(cfg != NULL, "cfg_load: %s",
	    errs.n > 0 ? errs.v[0] : "NULL without an error");
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	return tls_server_init(&srv, cfg, &cfg->listeners[0], &errs);
}

static void
expect_ok(void)
{
	int	rc = build();

	ck_assert_msg(errs.n == 0, "unexpected error: %s", errs.v[0]);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(srv.ctx);
	ck_assert_ptr_nonnull(SSL_CTX_get0_certificate(srv.ctx));
	ck_assert_ptr_nonnull(SSL_CTX_get0_privatekey(srv.ctx));
	ck_assert_int_eq(SSL_CTX_check_private_key(srv.ctx), 1);
	ck_assert_int_eq(srv.cert_not_after, leaf_not_after);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}

/* Build must fail with exactly these messages, in order. */
static void
expect_errors(const char *const *want, size_t n)
{
	size_t	i;

	ck_assert_int_eq(build(), -1);
	for (i = 0; i < n && i < errs.n; i++)
		ck_assert_str_eq(errs.v[i], want[i]);
	for (; i < errs.n; i++)
		ck_abort_msg("unexpected extra error: %s", errs.v[i]);
	ck_assert_uint_eq(errs.n, n);
	/* A failed build owns nothing. */
	ck_assert_ptr_null(srv.ctx);
	ck_assert_ptr_null(srv.policy);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}

#define EXPECT(...) do {						\
	const char *const want_[] = { __VA_ARGS__ };			\
	expect_errors(want_, NITEMS(want_));				\
} while (0)

/* The CRLs in the CA store of a built listener. */
static int
ncrls(void)
{
	STACK_OF(X509_OBJECT)	*objs;
	int			 i, n = 0;

	objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(srv.ctx));
	for (i = 0; i < sk_X509_OBJECT_num(objs); i++)
		if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) ==
		    X509_LU_CRL)
			n++;
	return n;
}

/* Verify the leaf (with the intermediate) against the listener's store. */
static int
verify_leaf(void)
{
	STACK_OF(X509)	*sk;
	X509_STORE_CTX	*xs;
	BIO		*bio;
	X509		*leaf, *x;
	int		 err;

	ck_assert_ptr_nonnull(bio = BIO_new_file(P("chain.pem"), "r"));
	ck_assert_ptr_nonnull(leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL));
	ck_assert_ptr_nonnull(x = PEM_read_bio_X509(bio, NULL, NULL, NULL));
	BIO_free(bio);
	ck_assert_ptr_nonnull(sk = sk_X509_new_null());
	ck_assert_int_gt(sk_X509_push(sk, x), 0);
	ck_assert_ptr_nonnull(xs = X509_STORE_CTX_new());
	ck_assert_int_eq(X509_STORE_CTX_init(xs,
	    SSL_CTX_get_cert_store(srv.ctx), leaf, sk), 1);
	if (X509_verify_cert(xs) == 1)
		err = X509_V_OK;
	else
		err = X509_STORE_CTX_get_error(xs);
	X509_STORE_CTX_free(xs);
	sk_X509_pop_free(sk, X509_free);
	X509_free(leaf);
	ERR_clear_error();
	return err;
}

/* -- PEM pairs -- */

START_TEST(test_pem_pair_with_chain)
{
	STACK_OF(X509)	*chain = NULL;
	X509		*leaf;

	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem");
	expect_ok();
	/* the leaf is served, the intermediate follows it */
	leaf = SSL_CTX_get0_certificate(srv.ctx);
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(leaf)),
	    LEAF_SERIAL);
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(srv.ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(
	    sk_X509_value(chain, 0))), 2);
	/* both CAs are sent as acceptable client CA names */
	ck_assert_int_eq(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(srv.ctx)),
	    2);
	ck_assert_int_eq(verify_leaf(), X509_V_OK);
}
END_TEST

START_TEST(test_pem_pair_absolute_paths)
{
	STACK_OF(X509)	*chain = NULL;
	char		*tls;

	tls = xasprintf("cert: %s\nkey: %s", P("leaf.pem"), P("leaf.key"));
	config(tls, "ca: cas.pem");
	free(tls);
	expect_ok();
	/*
	 * A lone leaf: its chain is completed once, at load, from the
	 * client CAs: the intermediate, never the self-signed root.
	 */
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(srv.ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(
	    sk_X509_value(chain, 0))), 2);
}
END_TEST

START_TEST(test_key_does_not_match)
{
	config("cert: chain.pem\nkey: other.key", "ca: cas.pem");
	/* the location, by hand once: line 6 "      key: other.key" */
	ck_assert_uint_eq(value_loc("key").line, 6);
	ck_assert_uint_eq(value_loc("key").col, 12);
	EXPECT(at_loc((struct cfg_loc){ 6, 12 }, "private key %s does not "
	    "match certificate %s (check that both files belong to the same "
	    "pair)", P("other.key"), P("chain.pem")));
}
END_TEST

START_TEST(test_key_missing)
{
	config("cert: leaf.pem\nkey: nosuch.key", "ca: cas.pem");
	EXPECT(AT("key", "cannot read key file %s: No such file or directory",
	    P("nosuch.key")));
}
END_TEST

START_TEST(test_key_not_a_key)
{
	config("cert: leaf.pem\nkey: leaf.pem", "ca: cas.pem");
	EXPECT(AT("key", "no private key found in %s: it holds a "
	    "certificate, not a private key (are \"cert\" and \"key\" "
	    "swapped?)", P("leaf.pem")));
}
END_TEST

START_TEST(test_key_garbage)
{
	config("cert: leaf.pem\nkey: garbage.bin", "ca: cas.pem");
	EXPECT(AT("key", "no private key found in %s (expected a PEM "
	    "\"-----BEGIN ... PRIVATE KEY-----\" block)", P("garbage.bin")));
}
END_TEST

START_TEST(test_cert_has_no_certificate)
{
	/* a key file is PEM too, but holds no CERTIFICATE block */
	config("cert: leaf.key\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "no certificate found in certificate file %s: it "
	    "holds a private key, not a certificate (are \"cert\" and "
	    "\"key\" swapped?)", P("leaf.key")));
}
END_TEST

START_TEST(test_cert_empty_and_garbage)
{
	config("cert: empty.txt\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "no certificate found in certificate file %s: the "
	    "file is empty", P("empty.txt")));
	teardown();
	setup();
	config("cert: garbage.bin\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "no certificate found in certificate file %s "
	    "(expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)",
	    P("garbage.bin")));
}
END_TEST

/* A directory where a file belongs: said so, at its config line. */
START_TEST(test_directories)
{
	static const struct {
		const char	*tls, *client_auth, *key, *what;
	} c[] = {
		{ "cert: adir\nkey: leaf.key", "ca: cas.pem", "cert",
		    "certificate file" },
		{ "cert: chain.pem\nkey: adir", "ca: cas.pem", "key",
		    "key file" },
		{ "cert: chain.pem\nkey: leaf.key", "ca: adir", "ca",
		    "CA file" },
		{ "cert: chain.pem\nkey: leaf.key", "ca: cas.pem\ncrl: adir",
		    "crl", "CRL file" },
		{ "cert: chain.pem\nkey: leaf.key",
		    "trusted_certs:\n  - adir", NULL,
		    "trusted certificate file" },
		{ "pkcs12: adir\npkcs12_passphrase_file: pass.txt",
		    "ca: cas.pem", "pkcs12", "PKCS#12 file" },
		{ "cert: chain.pem\nkey: leaf.key\nsession_tickets: true\n"
		    "session_ticket_key_file: adir", "ca: cas.pem",
		    "session_ticket_key_file", "session ticket key file" },
	};
	size_t	i;

	for (i = 0; i < NITEMS(c); i++) {
		if (i > 0) {
			teardown();
			setup();
		}
		config(c[i].tls, c[i].client_auth);
		EXPECT(at_loc(c[i].key != NULL ? value_loc(c[i].key) :
		    text_loc("adir"), "%s is a directory, not a file (give "
		    "the %s itself)", P("adir"), c[i].what));
	}
}
END_TEST

/* The intermediate above the leaf: the key matches the second one. */
START_TEST(test_cert_wrong_order)
{
	config("cert: wrongorder.pem\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "private key %s belongs to certificate 2 of %s "
	    "(\"CN=server.example\"), not to the first: the file must start "
	    "with the server's certificate, then its intermediates",
	    P("leaf.key"), P("wrongorder.pem")));
}
END_TEST

START_TEST(test_cert_missing)
{
	config("cert: nosuch.pem\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "cannot read certificate file %s: No such file or "
	    "directory", P("nosuch.pem")));
}
END_TEST

START_TEST(test_cert_weak_key)
{
	config("cert: weak.pem\nkey: weak.key", "ca: cas.pem");
	EXPECT(AT("cert", "cannot use certificate %s: its key is too weak: "
	    "RSA 1024 bits, 80-bit security; security level 2 needs 112 (RSA "
	    "2048 bits, EC P-256): make a new key and have it certified",
	    P("weak.pem")));
	teardown();
	setup();
	config("cert: chain-weak.pem\nkey: leaf.key", "ca: cas.pem");
	EXPECT(AT("cert", "cannot use chain certificate 2 of %s: its key is "
	    "too weak: RSA 1024 bits, 80-bit security; security level 2 needs "
	    "112 (RSA 2048 bits, EC P-256): make a new key and have it "
	    "certified", P("chain-weak.pem")));
}
END_TEST

/* -- encrypted keys and passphrase files -- */

START_TEST(test_encrypted_key_aes)
{
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: pass.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_encrypted_key_des3)
{
	config("cert: chain.pem\nkey: leaf-des3.key\n"
	    "key_passphrase_file: pass.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_encrypted_key_traditional)
{
	config("cert: chain.pem\nkey: leaf-trad.key\n"
	    "key_passphrase_file: pass.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_passphrase_line_endings)
{
	/* the first line, without CR LF; a missing final newline is fine */
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: pass-crlf.txt", "ca: cas.pem");
	expect_ok();
	teardown();
	setup();
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: pass-noeol.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_encrypted_key_wrong_passphrase)
{
	static const char *const keys[] = {
		"leaf-aes.key", "leaf-des3.key", "leaf-trad.key"
	};
	char	*tls;
	size_t	 i;

	for (i = 0; i < NITEMS(keys); i++) {
		if (i > 0) {
			teardown();
			setup();
		}
		tls = xasprintf("cert: chain.pem\nkey: %s\n"
		    "key_passphrase_file: wrong.txt", keys[i]);
		config(tls, "ca: cas.pem");
		free(tls);
		EXPECT(AT("key_passphrase_file", "cannot decrypt key file %s: "
		    "wrong passphrase in %s", P(keys[i]), P("wrong.txt")));
	}
}
END_TEST

START_TEST(test_encrypted_key_without_passphrase_file)
{
	static const char *const keys[] = {
		"leaf-aes.key", "leaf-des3.key", "leaf-trad.key"
	};
	char	*tls;
	size_t	 i;

	/* stdin is not a terminal here; the callback never prompts anyway */
	for (i = 0; i < NITEMS(keys); i++) {
		if (i > 0) {
			teardown();
			setup();
		}
		tls = xasprintf("cert: chain.pem\nkey: %s", keys[i]);
		config(tls, "ca: cas.pem");
		free(tls);
		EXPECT(AT("key", "key file %s is encrypted: set "
		    "\"key_passphrase_file\" to a file holding its passphrase",
		    P(keys[i])));
	}
}
END_TEST

START_TEST(test_passphrase_file_with_clear_key)
{
	/* a passphrase for a key that needs none does no harm */
	config("cert: chain.pem\nkey: leaf.key\n"
	    "key_passphrase_file: wrong.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_passphrase_file_missing)
{
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: nosuch.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "cannot read passphrase file "
	    "nosuch.txt: No such file or directory (looked in the config "
	    "file's directory: %s; $CREDENTIALS_DIRECTORY (set by systemd's "
	    "LoadCredential=) is not set)", P("nosuch.txt")));
	teardown();
	setup();
	/* in neither place: both are named, in the order looked in */
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: nosuch.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "cannot read passphrase file "
	    "nosuch.txt: No such file or directory (looked in "
	    "$CREDENTIALS_DIRECTORY: %s/nosuch.txt, then in the config file's "
	    "directory: %s)", credsdir, P("nosuch.txt")));
}
END_TEST

START_TEST(test_passphrase_file_empty)
{
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: empty.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "passphrase file %s is empty",
	    P("empty.txt")));
	teardown();
	setup();
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: newline.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "passphrase file %s is empty",
	    P("newline.txt")));
}
END_TEST

START_TEST(test_passphrase_credentials_directory)
{
	/* cred.txt is right in credsdir, wrong next to the config */
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: cred.txt", "ca: cas.pem");
	expect_ok();
	teardown();
	setup();
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: credonly.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_passphrase_credentials_directory_fallback)
{
	/* not in credsdir: next to the config */
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: pass.txt", "ca: cas.pem");
	expect_ok();
	teardown();
	setup();
	/* an empty $CREDENTIALS_DIRECTORY is not "/" */
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", "", 1), 0);
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: pass.txt", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_passphrase_relative_to_config)
{
	/* without $CREDENTIALS_DIRECTORY, next to the config: wrong there */
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: cred.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "cannot decrypt key file %s: "
	    "wrong passphrase in %s", P("leaf-aes.key"), P("cred.txt")));
	teardown();
	setup();
	config("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: credonly.txt", "ca: cas.pem");
	EXPECT(AT("key_passphrase_file", "cannot read passphrase file "
	    "credonly.txt: No such file or directory (looked in the config "
	    "file's directory: %s; $CREDENTIALS_DIRECTORY (set by systemd's "
	    "LoadCredential=) is not set)", P("credonly.txt")));
}
END_TEST

START_TEST(test_passphrase_absolute)
{
	char	*tls;

	/* an absolute name ignores $CREDENTIALS_DIRECTORY */
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	tls = xasprintf("cert: chain.pem\nkey: leaf-aes.key\n"
	    "key_passphrase_file: %s", P("cred.txt"));
	config(tls, "ca: cas.pem");
	free(tls);
	EXPECT(AT("key_passphrase_file", "cannot decrypt key file %s: "
	    "wrong passphrase in %s", P("leaf-aes.key"), P("cred.txt")));
}
END_TEST

/* -- PKCS#12 -- */

START_TEST(test_pkcs12)
{
	STACK_OF(X509)	*chain = NULL;

	config("pkcs12: server.p12\npkcs12_passphrase_file: pass.txt",
	    "ca: cas.pem");
	expect_ok();
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(
	    SSL_CTX_get0_certificate(srv.ctx))), LEAF_SERIAL);
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(srv.ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
}
END_TEST

START_TEST(test_pkcs12_credentials_directory)
{
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", credsdir, 1), 0);
	config("pkcs12: server.p12\npkcs12_passphrase_file: cred.txt",
	    "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_pkcs12_wrong_passphrase)
{
	config("pkcs12: server.p12\npkcs12_passphrase_file: wrong.txt",
	    "ca: cas.pem");
	EXPECT(AT("pkcs12_passphrase_file", "cannot open PKCS#12 file %s: "
	    "wrong passphrase in %s", P("server.p12"), P("wrong.txt")));
}
END_TEST

START_TEST(test_pkcs12_without_passphrase_file)
{
	config("pkcs12: server.p12", "ca: cas.pem");
	EXPECT(AT("pkcs12", "PKCS#12 file %s is protected: set "
	    "\"pkcs12_passphrase_file\"", P("server.p12")));
}
END_TEST

START_TEST(test_pkcs12_passphrase_file_empty)
{
	config("pkcs12: server.p12\npkcs12_passphrase_file: empty.txt",
	    "ca: cas.pem");
	EXPECT(AT("pkcs12_passphrase_file", "passphrase file %s is empty",
	    P("empty.txt")));
}
END_TEST

START_TEST(test_pkcs12_not_pkcs12)
{
	static const char *const files[] = {
		"chain.pem", "garbage.bin", "empty.txt"
	};
	char	*tls;
	size_t	 i;

	for (i = 0; i < NITEMS(files); i++) {
		if (i > 0) {
			teardown();
			setup();
		}
		tls = xasprintf("pkcs12: %s\npkcs12_passphrase_file: pass.txt",
		    files[i]);
		config(tls, "ca: cas.pem");
		free(tls);
		EXPECT(AT("pkcs12", "%s is not a PKCS#12 file (expected DER, "
		    "as made by \"openssl pkcs12 -export\")", P(files[i])));
	}
}
END_TEST

START_TEST(test_pkcs12_missing)
{
	config("pkcs12: nosuch.p12\npkcs12_passphrase_file: pass.txt",
	    "ca: cas.pem");
	EXPECT(AT("pkcs12", "cannot read PKCS#12 file %s: No such file or "
	    "directory", P("nosuch.p12")));
}
END_TEST

/* -- client CAs, trusted certificates, CRLs -- */

START_TEST(test_ca_empty)
{
	config("cert: chain.pem\nkey: leaf.key", "ca: empty.txt");
	EXPECT(AT("ca", "no certificate found in CA file %s: the file is "
	    "empty", P("empty.txt")));
}
END_TEST

START_TEST(test_ca_garbage)
{
	config("cert: chain.pem\nkey: leaf.key", "ca: garbage.bin");
	EXPECT(AT("ca", "no certificate found in CA file %s (expected PEM "
	    "\"-----BEGIN CERTIFICATE-----\" blocks)", P("garbage.bin")));
}
END_TEST

START_TEST(test_ca_missing)
{
	config("cert: chain.pem\nkey: leaf.key", "ca: nosuch.pem");
	EXPECT(AT("ca", "cannot read CA file %s: No such file or directory",
	    P("nosuch.pem")));
}
END_TEST

START_TEST(test_trusted_certs)
{
	config("cert: chain.pem\nkey: leaf.key",
	    "trusted_certs:\n  - leaf.pem\n  - root.pem");
	expect_ok();
	ck_assert_ptr_nonnull(srv.trusted_store);
	ck_assert_uint_eq(srv.ntrusted, 2);
	ck_assert_mem_eq(srv.trusted_fp[0], fp_leaf, FINGERPRINT_LEN);
	ck_assert_mem_eq(srv.trusted_fp[1], fp_root, FINGERPRINT_LEN);
	teardown();
	setup();
	/* a file of two certificates, then one more */
	config("cert: chain.pem\nkey: leaf.key",
	    "trusted_certs:\n  - cas.pem\n  - leaf.pem");
	expect_ok();
	ck_assert_uint_eq(srv.ntrusted, 3);
	ck_assert_mem_eq(srv.trusted_fp[0], fp_root, FINGERPRINT_LEN);
	ck_assert_mem_eq(srv.trusted_fp[1], fp_inter, FINGERPRINT_LEN);
	ck_assert_mem_eq(srv.trusted_fp[2], fp_leaf, FINGERPRINT_LEN);
	ck_assert_int_eq(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(srv.ctx)),
	    3);
	teardown();
	setup();
	config("cert: chain.pem\nkey: leaf.key",
	    "ca: cas.pem\ntrusted_certs:\n  - leaf.pem\n  - empty.txt");
	EXPECT(at_loc(text_loc("empty.txt"), "no certificate found in "
	    "trusted certificate file %s: the file is empty",
	    P("empty.txt")));
}
END_TEST

START_TEST(test_crl_pem)
{
	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem\ncrl: int.crl");
	expect_ok();
	ck_assert_int_eq(ncrls(), 1);
	/* the leaf's serial is on the intermediate's CRL */
	ck_assert_int_eq(verify_leaf(), X509_V_ERR_CERT_REVOKED);
	teardown();
	setup();
	/* with crl set, every CA of the chain needs a CRL */
	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem\ncrl: root.crl");
	expect_ok();
	ck_assert_int_eq(ncrls(), 1);
	ck_assert_int_eq(verify_leaf(), X509_V_ERR_UNABLE_TO_GET_CRL);
}
END_TEST

START_TEST(test_crl_pem_several)
{
	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem\ncrl: both.crl");
	expect_ok();
	ck_assert_int_eq(ncrls(), 2);
	ck_assert_int_eq(verify_leaf(), X509_V_ERR_CERT_REVOKED);
}
END_TEST

START_TEST(test_crl_der)
{
	config("cert: chain.pem\nkey: leaf.key",
	    "ca: cas.pem\ncrl: int.crl.der");
	expect_ok();
	ck_assert_int_eq(ncrls(), 1);
	ck_assert_int_eq(verify_leaf(), X509_V_ERR_CERT_REVOKED);
}
END_TEST

START_TEST(test_crl_garbage)
{
	config("cert: chain.pem\nkey: leaf.key",
	    "ca: cas.pem\ncrl: garbage.bin");
	EXPECT(AT("crl", "no CRL found in %s (expected PEM \"-----BEGIN X509 "
	    "CRL-----\" or DER)", P("garbage.bin")));
	teardown();
	setup();
	/* a certificate is not a CRL */
	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem\ncrl: root.pem");
	EXPECT(AT("crl", "no CRL found in %s (expected PEM \"-----BEGIN X509 "
	    "CRL-----\" or DER)", P("root.pem")));
}
END_TEST

START_TEST(test_crl_missing)
{
	config("cert: chain.pem\nkey: leaf.key",
	    "ca: cas.pem\ncrl: nosuch.crl");
	EXPECT(AT("crl", "cannot read CRL file %s: No such file or directory",
	    P("nosuch.crl")));
}
END_TEST

/* -- protocol parameters -- */

START_TEST(test_good_parameters)
{
	config("cert: chain.pem\nkey: leaf.key\n"
	    "ciphers: \"ECDHE+AESGCM:ECDHE+CHACHA20\"\n"
	    "ciphersuites: \"TLS_AES_256_GCM_SHA384:"
	    "TLS_CHACHA20_POLY1305_SHA256\"\n"
	    "groups: \"X25519:P-256\"", "ca: cas.pem");
	expect_ok();
}
END_TEST

START_TEST(test_bad_ciphers)
{
	config("cert: chain.pem\nkey: leaf.key\nciphers: \"NOPE:!ALL\"",
	    "ca: cas.pem");
	EXPECT(AT("ciphers", "no usable cipher in \"NOPE:!ALL\" (see "
	    "\"openssl ciphers -v\")"));
}
END_TEST

START_TEST(test_bad_ciphersuites)
{
	config("cert: chain.pem\nkey: leaf.key\nciphersuites: AES128-SHA",
	    "ca: cas.pem");
	EXPECT(AT("ciphersuites", "bad TLS 1.3 ciphersuites \"AES128-SHA\" "
	    "(e.g. TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256)"));
}
END_TEST

START_TEST(test_bad_groups)
{
	config("cert: chain.pem\nkey: leaf.key\ngroups: 'X25519:P-999'",
	    "ca: cas.pem");
	EXPECT(AT("groups", "bad groups \"X25519:P-999\" (e.g. "
	    "X25519:P-256)"));
}
END_TEST

/* -- everything at once -- */

START_TEST(test_all_errors_reported)
{
	config("cert: chain.pem\nkey: other.key\nciphers: NOPE\n"
	    "groups: P-999", "ca: empty.txt\ncrl: garbage.bin");
	/* in file order (errlist_add), whichever check found them first */
	EXPECT(AT("key", "private key %s does not match certificate %s (check "
	    "that both files belong to the same pair)", P("other.key"),
	    P("chain.pem")),
	    AT("ciphers", "no usable cipher in \"NOPE\" (see \"openssl "
	    "ciphers -v\")"),
	    AT("groups", "bad groups \"P-999\" (e.g. X25519:P-256)"),
	    AT("ca", "no certificate found in CA file %s: the file is "
	    "empty", P("empty.txt")),
	    AT("crl", "no CRL found in %s (expected PEM \"-----BEGIN X509 "
	    "CRL-----\" or DER)", P("garbage.bin")));
}
END_TEST

START_TEST(test_errors_appended)
{
	/* earlier messages are kept; only new ones make the build fail */
	config("cert: chain.pem\nkey: leaf.key", "ca: cas.pem");
	errlist_add(&errs, "earlier");
	cfg = cfg_load(cfgpath, &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(tls_server_init(&srv, cfg, &cfg->listeners[0], &errs),
	    0);
	ck_assert_uint_eq(errs.n, 1);
	tls_server_clear(&srv);
	ck_assert_ptr_null(srv.ctx);
}
END_TEST

Suite *
tls_suite(void)
{
	Suite	*s = suite_create("tls");
	TCase	*pem = tcase_create("pem");
	TCase	*pass = tcase_create("passphrase");
	TCase	*p12 = tcase_create("pkcs12");
	TCase	*ca = tcase_create("client_auth");
	TCase	*par = tcase_create("parameters");

	tcase_add_unchecked_fixture(pem, pki_setup, pki_teardown);
	tcase_add_checked_fixture(pem, setup, teardown);
	tcase_add_test(pem, test_pem_pair_with_chain);
	tcase_add_test(pem, test_pem_pair_absolute_paths);
	tcase_add_test(pem, test_key_does_not_match);
	tcase_add_test(pem, test_key_missing);
	tcase_add_test(pem, test_key_not_a_key);
	tcase_add_test(pem, test_key_garbage);
	tcase_add_test(pem, test_cert_has_no_certificate);
	tcase_add_test(pem, test_cert_empty_and_garbage);
	tcase_add_test(pem, test_cert_missing);
	tcase_add_test(pem, test_directories);
	tcase_add_test(pem, test_cert_wrong_order);
	tcase_add_test(pem, test_cert_weak_key);
	suite_add_tcase(s, pem);

	tcase_add_unchecked_fixture(pass, pki_setup, pki_teardown);
	tcase_add_checked_fixture(pass, setup, teardown);
	tcase_add_test(pass, test_encrypted_key_aes);
	tcase_add_test(pass, test_encrypted_key_des3);
	tcase_add_test(pass, test_encrypted_key_traditional);
	tcase_add_test(pass, test_passphrase_line_endings);
	tcase_add_test(pass, test_encrypted_key_wrong_passphrase);
	tcase_add_test(pass, test_encrypted_key_without_passphrase_file);
	tcase_add_test(pass, test_passphrase_file_with_clear_key);
	tcase_add_test(pass, test_passphrase_file_missing);
	tcase_add_test(pass, test_passphrase_file_empty);
	tcase_add_test(pass, test_passphrase_credentials_directory);
	tcase_add_test(pass, test_passphrase_credentials_directory_fallback);
	tcase_add_test(pass, test_passphrase_relative_to_config);
	tcase_add_test(pass, test_passphrase_absolute);
	suite_add_tcase(s, pass);

	tcase_add_unchecked_fixture(p12, pki_setup, pki_teardown);
	tcase_add_checked_fixture(p12, setup, teardown);
	tcase_add_test(p12, test_pkcs12);
	tcase_add_test(p12, test_pkcs12_credentials_directory);
	tcase_add_test(p12, test_pkcs12_wrong_passphrase);
	tcase_add_test(p12, test_pkcs12_without_passphrase_file);
	tcase_add_test(p12, test_pkcs12_passphrase_file_empty);
	tcase_add_test(p12, test_pkcs12_not_pkcs12);
	tcase_add_test(p12, test_pkcs12_missing);
	suite_add_tcase(s, p12);

	tcase_add_unchecked_fixture(ca, pki_setup, pki_teardown);
	tcase_add_checked_fixture(ca, setup, teardown);
	tcase_add_test(ca, test_ca_empty);
	tcase_add_test(ca, test_ca_garbage);
	tcase_add_test(ca, test_ca_missing);
	tcase_add_test(ca, test_trusted_certs);
	tcase_add_test(ca, test_crl_pem);
	tcase_add_test(ca, test_crl_pem_several);
	tcase_add_test(ca, test_crl_der);
	tcase_add_test(ca, test_crl_garbage);
	tcase_add_test(ca, test_crl_missing);
	suite_add_tcase(s, ca);

	tcase_add_unchecked_fixture(par, pki_setup, pki_teardown);
	tcase_add_checked_fixture(par, setup, teardown);
	tcase_add_test(par, test_good_parameters);
	tcase_add_test(par, test_bad_ciphers);
	tcase_add_test(par, test_bad_ciphersuites);
	tcase_add_test(par, test_bad_groups);
	tcase_add_test(par, test_all_errors_reported);
	tcase_add_test(par, test_errors_appended);
	suite_add_tcase(s, par);
	return s;
}
