/*
 * check_hdr.c - identity headers: reserved names, and the exact header
 * block of each preset for certificates built here with the OpenSSL API.
 * Expected values are computed independently (digests with X509_digest,
 * the escaped PEM decoded back and compared with PEM_write_bio_X509).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <check.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"
#include "check_suites.h"

static struct cfg_headers	 hcfg;
static struct hdr_set		*hs;
static EVP_PKEY			*key;
static X509			*cert;
static GENERAL_NAMES		*sans;
static bool			 cert_signed;
static char			*blk;
static size_t			 blen;

static void
setup(void)
{
	X509_NAME	*issuer;

	memset(&hcfg, 0, sizeof(hcfg));
	hcfg.preset = HEADERS_DEFAULT;
	hcfg.forwarded = true;
	hs = NULL;
	blk = NULL;
	cert_signed = false;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(cert = X509_new());
	ck_assert_int_eq(X509_set_version(cert, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(cert),
	    0x0a1b2c3d), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(cert), 0));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(cert),
	    86400));
	issuer = X509_get_issuer_name(cert);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(issuer, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Example", -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(issuer, "CN",
	    MBSTRING_UTF8, (const unsigned char *)"Test CA", -1, -1, 0), 1);
	ck_assert_ptr_nonnull(sans = sk_GENERAL_NAME_new_null());
}

static void
teardown(void)
{
	free(blk);
	hdr_set_free(hs);
	GENERAL_NAMES_free(sans);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* Add a subject attribute, UTF-8 of this length (-1: strlen). */
static void
subj_len(const char *field, const char *value, int len)
{
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert),
	    field, MBSTRING_UTF8, (const unsigned char *)value, len, -1, 0), 1);
}

static void
subj(const char *field, const char *value)
{
	subj_len(field, value, -1);
}

/* Add a subjectAltName entry (GEN_DNS, GEN_URI), any bytes. */
static void
san(int type, const char *value)
{
	GENERAL_NAME	*g;
	ASN1_IA5STRING	*s;

	ck_assert_ptr_nonnull(g = GENERAL_NAME_new());
	ck_assert_ptr_nonnull(s = ASN1_IA5STRING_new());
	ck_assert_int_eq(ASN1_STRING_set(s, value, -1), 1);
	GENERAL_NAME_set0_value(g, type, s);
	ck_assert_int_gt(sk_GENERAL_NAME_push(sans, g), 0);
}

static void
sign(void)
{
	if (cert_signed)
		return;
	if (sk_GENERAL_NAME_num(sans) > 0)
		ck_assert_int_eq(X509_add1_ext_i2d(cert, NID_subject_alt_name,
		    sans, 0, X509V3_ADD_APPEND), 1);
	ck_assert_int_eq(X509_set_pubkey(cert, key), 1);
	ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);
	cert_signed = true;
}

/* The "orders" client of the demo PKI, on our test CA. */
static void
orders(void)
{
	subj("O", "Demo Corp");
	subj("OU", "payments");
	subj("CN", "orders");
	san(GEN_URI, "spiffe://demo.example/ns/prod/orders");
	san(GEN_DNS, "orders.demo.example");
	san(GEN_DNS, "api.demo.example");
}

/* Sign, compile hcfg and build the block into blk/blen. */
static const char *
build(void)
{
	sign();
	free(blk);
	hdr_set_free(hs);
	hs = hdr_set_new(&hcfg);
	ck_assert_ptr_nonnull(hs);
	blk = hdr_identity_block(hs, cert, &blen);
	ck_assert_ptr_nonnull(blk);
	ck_assert_uint_eq(strlen(blk), blen);	/* no NUL inside */
	return blk;
}

/* Lower-case hex of a digest of the DER certificate. */
static void
digest_hex(const EVP_MD *md, char *hex)
{
	unsigned char	 d[EVP_MAX_MD_SIZE];
	unsigned int	 n = 0, i;

	sign();
	ck_assert_int_eq(X509_digest(cert, md, d, &n), 1);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The certificate as PEM_write_bio_X509 writes it (malloc'd). */
static char *
pem(void)
{
	BIO	*bio;
	char	*data, *s;
	long	 len;

	sign();
	ck_assert_ptr_nonnull(bio = BIO_new(BIO_s_mem()));
	ck_assert_int_eq(PEM_write_bio_X509(bio, cert), 1);
	len = BIO_get_mem_data(bio, &data);
	ck_assert_int_gt(len, 0);
	s = xmalloc((size_t)len + 1);
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	BIO_free(bio);
	return s;
}

/* The value of the first line "name: value\r\n" of blk (malloc'd). */
static char *
value_of(const char *name)
{
	const char	*p, *end;
	size_t		 n = strlen(name);

	for (p = blk; *p != '\0'; p = end + 2) {
		ck_assert_ptr_nonnull(end = strstr(p, "\r\n"));
		if (strncmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ')
			return xasprintf("%.*s", (int)(end - p - n - 2),
			    p + n + 2);
	}
	ck_abort_msg("no %s header in:\n%s", name, blk);
	return NULL;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;		/* lower-case hex is not what nginx writes */
}

/*
 * Check that s is URL-encoded as nginx's $ssl_client_escaped_cert (only
 * ALPHA, DIGIT, "-", ".", "_", "~" literal; %XX upper case) and that it
 * decodes to the certificate's PEM.
 */
static void
assert_escaped_pem(const char *s)
{
	char	*want = pem(), *got = xmalloc(strlen(s) + 1);
	size_t	 i, j;
	int	 hi, lo;

	for (i = 0, j = 0; s[i] != '\0'; i++) {
		if (s[i] == '%') {
			hi = hexval(s[i + 1]);
			ck_assert_int_ge(hi, 0);
			lo = hexval(s[i + 2]);
			ck_assert_int_ge(lo, 0);
			got[j++] = (char)(hi << 4 | lo);
			i += 2;
			continue;
		}
		ck_assert_msg(strchr("-._~", s[i]) != NULL ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9'), "unescaped '%c'", s[i]);
		got[j++] = s[i];
	}
	got[j] = '\0';
	ck_assert_str_eq(got, want);
	/* What nginx's output of any PEM looks like. */
	ck_assert(strncmp(s, "-----BEGIN%20CERTIFICATE-----%0A", 32) == 0);
	free(got);
	free(want);
}

/*
 * Every line is "Token: value\r\n" with no control byte in the value, CR
 * and LF appear only as line ends, and no line is an injected header.
 */
static void
assert_clean_block(void)
{
	const char	*p, *end, *q;

	ck_assert_uint_eq(strlen(blk), blen);
	for (p = blk; *p != '\0'; p = end + 2) {
		ck_assert_msg((end = strstr(p, "\r\n")) != NULL,
		    "unterminated line: %s", p);
		ck_assert_msg(strncasecmp(p, "X-Injected", 10) != 0,
		    "injected header line: %.*s", (int)(end - p), p);
		for (q = p; q < end && *q != ':'; q++)
			ck_assert_msg(strchr("!#$%&'*+-.^_`|~", *q) != NULL ||
			    (*q >= 'a' && *q <= 'z') ||
			    (*q >= 'A' && *q <= 'Z') ||
			    (*q >= '0' && *q <= '9'), "bad name byte 0x%02x",
			    (unsigned char)*q);
		ck_assert(q > p && q[0] == ':' && q[1] == ' ');
		for (q = p; q < end; q++)
			ck_assert_msg((unsigned char)*q >= 0x20 && *q != 0x7f,
			    "control byte 0x%02x in: %.*s", (unsigned char)*q,
			    (int)(end - p), p);
	}
}

/* -- the presets, exactly -- */

START_TEST(test_default_preset)
{
	char	 sha256[65], *cert_value, *want;

	orders();
	build();
	digest_hex(EVP_sha256(), sha256);
	cert_value = value_of("X-Client-Cert");
	assert_escaped_pem(cert_value);
	want = xasprintf(
	    "X-Client-Verify: SUCCESS\r\n"
	    "X-Client-Subject: CN=orders,OU=payments,O=Demo Corp\r\n"
	    "X-Client-Issuer: CN=Test CA,O=Example\r\n"
	    "X-Client-Serial: 0A1B2C3D\r\n"
	    "X-Client-Fingerprint-SHA256: %s\r\n"
	    "X-Client-SAN-DNS: orders.demo.example, api.demo.example\r\n"
	    "X-Client-SAN-URI: spiffe://demo.example/ns/prod/orders\r\n"
	    "X-Client-Cert: %s\r\n", sha256, cert_value);
	ck_assert_str_eq(blk, want);
	assert_clean_block();
	free(want);
	free(cert_value);
}
END_TEST

START_TEST(test_nginx_preset)
{
	char	 sha1[41], *cert_value, *want;

	hcfg.preset = HEADERS_NGINX;
	orders();
	build();
	/* nginx's $ssl_client_fingerprint is the SHA-1, lower-case hex. */
	digest_hex(EVP_sha1(), sha1);
	cert_value = value_of("X-SSL-Client-Cert");
	assert_escaped_pem(cert_value);
	want = xasprintf(
	    "X-SSL-Client-Verify: SUCCESS\r\n"
	    "X-SSL-Client-S-DN: CN=orders,OU=payments,O=Demo Corp\r\n"
	    "X-SSL-Client-I-DN: CN=Test CA,O=Example\r\n"
	    "X-SSL-Client-Serial: 0A1B2C3D\r\n"
	    "X-SSL-Client-Fingerprint: %s\r\n"
	    "X-SSL-Client-Cert: %s\r\n", sha1, cert_value);
	ck_assert_str_eq(blk, want);
	assert_clean_block();
	free(want);
	free(cert_value);
}
END_TEST

START_TEST(test_envoy_preset)
{
	char	 sha256[65], *xfcc, *want, *cert_value;
	size_t	 n;

	hcfg.preset = HEADERS_ENVOY;
	orders();
	build();
	digest_hex(EVP_sha256(), sha256);
	xfcc = value_of("X-Forwarded-Client-Cert");
	/* Cert="..." comes right after Hash=<64 hex>; */
	ck_assert(strncmp(xfcc + 5 + 64, ";Cert=\"", 7) == 0);
	n = strcspn(xfcc + 76, "\"");
	cert_value = xasprintf("%.*s", (int)n, xfcc + 76);
	assert_escaped_pem(cert_value);
	want = xasprintf("X-Forwarded-Client-Cert: Hash=%s;Cert=\"%s\";"
	    "Subject=\"CN=orders,OU=payments,O=Demo Corp\";"
	    "URI=spiffe://demo.example/ns/prod/orders;"
	    "DNS=orders.demo.example;DNS=api.demo.example\r\n", sha256,
	    cert_value);
	ck_assert_str_eq(blk, want);
	assert_clean_block();
	free(want);
	free(cert_value);
	free(xfcc);
}
END_TEST

START_TEST(test_no_sans)
{
	char	*v;

	subj("CN", "orders");
	build();
	ck_assert_ptr_null(strstr(blk, "SAN"));
	v = value_of("X-Client-Subject");
	ck_assert_str_eq(v, "CN=orders");
	free(v);
	hcfg.preset = HEADERS_ENVOY;
	build();
	ck_assert_ptr_null(strstr(blk, "URI="));
	ck_assert_ptr_null(strstr(blk, "DNS="));
	ck_assert_ptr_nonnull(strstr(blk, ";Subject=\"CN=orders\"\r\n"));
}
END_TEST

START_TEST(test_empty_subject)
{
	char	*v;

	build();
	v = value_of("X-Client-Subject");
	ck_assert_str_eq(v, "");
	free(v);
}
END_TEST

/* -- escaping -- */

START_TEST(test_dn_specials_and_utf8)
{
	char	*v;

	subj("O", "Demo Corp");
	subj("CN", "Zo\xc3\xab, \"Q\"+1");
	build();
	/* default: RFC 4514, UTF-8 kept */
	v = value_of("X-Client-Subject");
	ck_assert_str_eq(v, "CN=Zo\xc3\xab\\, \\\"Q\\\"\\+1,O=Demo Corp");
	free(v);

	/* nginx: exactly $ssl_client_s_dn, non-ASCII bytes as \XX */
	hcfg.preset = HEADERS_NGINX;
	build();
	v = value_of("X-SSL-Client-S-DN");
	ck_assert_str_eq(v, "CN=Zo\\C3\\AB\\, \\\"Q\\\"\\+1,O=Demo Corp");
	free(v);

	/* envoy: the same RFC 2253 text between quotes; its \" is Envoy's */
	hcfg.preset = HEADERS_ENVOY;
	build();
	ck_assert_ptr_nonnull(strstr(blk,
	    ";Subject=\"CN=Zo\\C3\\AB\\, \\\"Q\\\"\\+1,O=Demo Corp\"\r\n"));
}
END_TEST

START_TEST(test_san_escaping)
{
	char	*v;

	subj("CN", "x");
	san(GEN_URI, "https://x.example/a?b=c;d");
	san(GEN_URI, "spiffe://x/a, spiffe://x/admin");
	san(GEN_URI, "urn:x:%41\"\\");
	san(GEN_DNS, "odd%name.example");
	san(GEN_DNS, "a.example,b.example");
	build();
	v = value_of("X-Client-SAN-URI");
	/* a URI keeps its own %; ", ", '"' and '\' are encoded */
	ck_assert_str_eq(v, "https://x.example/a?b=c;d, "
	    "spiffe://x/a%2C%20spiffe://x/admin, urn:x:%41%22%5C");
	free(v);
	v = value_of("X-Client-SAN-DNS");
	ck_assert_str_eq(v, "odd%25name.example, a.example%2Cb.example");
	free(v);

	/* XFCC: a value with ';' or '=' is double-quoted */
	hcfg.preset = HEADERS_ENVOY;
	build();
	ck_assert_ptr_nonnull(strstr(blk, ";Subject=\"CN=x\";"
	    "URI=\"https://x.example/a?b=c;d\";"
	    "URI=spiffe://x/a%2C%20spiffe://x/admin;"
	    "URI=urn:x:%41%22%5C;"
	    "DNS=odd%25name.example;DNS=a.example%2Cb.example\r\n"));
	assert_clean_block();
}
END_TEST

/*
 * A certificate whose subject and SANs carry CR, LF and NUL cannot add a
 * header line: with every preset and every fact sent, the block has CR and
 * LF only as line ends, and no "X-Injected" line.
 */
START_TEST(test_injection)
{
	static const enum header_preset	 presets[] = {
		HEADERS_DEFAULT, HEADERS_NGINX, HEADERS_ENVOY
	};
	char				*v;
	size_t				 i;

	subj("O", "Demo\nCorp");
	subj("CN", "evil\r\nX-Injected: 1");
	subj_len("OU", "adm\0in\x7f", 7);
	san(GEN_DNS, "a.example\nX-Injected: 1");
	san(GEN_DNS, "b.example\r\n\r\nGET / HTTP/1.1");
	san(GEN_URI, "spiffe://x/a\r\nX-Injected: 1");
	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		memset(&hcfg, 0, sizeof(hcfg));
		hcfg.preset = presets[i];
		hcfg.forwarded = true;
		/* every fact, under names not taken by the preset */
		hcfg.verify = "X-T-Verify";
		hcfg.subject = "X-T-Subject";
		hcfg.issuer = "X-T-Issuer";
		hcfg.serial = "X-T-Serial";
		hcfg.fingerprint = "X-T-Fingerprint";
		hcfg.san_dns = "X-T-SAN-DNS";
		hcfg.san_uri = "X-T-SAN-URI";
		hcfg.cert = "X-T-Cert";
		hcfg.xfcc = "X-T-XFCC";
		build();
		assert_clean_block();
		ck_assert_ptr_null(strstr(blk, "\r\nX-Injected"));
		v = value_of("X-T-SAN-DNS");
		ck_assert_str_eq(v, "a.example%0AX-Injected:%201, "
		    "b.example%0D%0A%0D%0AGET%20/%20HTTP/1.1");
		free(v);
		v = value_of("X-T-SAN-URI");
		ck_assert_str_eq(v, "spiffe://x/a%0D%0AX-Injected:%201");
		free(v);
	}
	/* The DN escapes, as RFC 4514 writes control bytes. */
	hcfg.preset = HEADERS_DEFAULT;
	build();
	v = value_of("X-T-Subject");
	ck_assert_str_eq(v, "OU=adm\\00in\\7F,CN=evil\\0D\\0AX-Injected: 1,"
	    "O=Demo\\0ACorp");
	free(v);
}
END_TEST

/* -- names: overrides, "" and reserved -- */

START_TEST(test_overrides)
{
	char	*v;

	orders();
	hcfg.subject = "X-Subject-DN";
	hcfg.cert = "";
	hcfg.san_dns = "";
	hcfg.xfcc = "X-Forwarded-Client-Cert";
	build();
	ck_assert_ptr_null(strstr(blk, "X-Client-Cert"));
	ck_assert_ptr_null(strstr(blk, "X-Client-Subject"));
	ck_assert_ptr_null(strstr(blk, "SAN-DNS"));
	v = value_of("X-Subject-DN");
	ck_assert_str_eq(v, "CN=orders,OU=payments,O=Demo Corp");
	free(v);
	v = value_of("X-Forwarded-Client-Cert");
	ck_assert(strncmp(v, "Hash=", 5) == 0);
	free(v);
	/* The order is fixed: verify, subject, ..., cert, xfcc. */
	ck_assert(strncmp(blk, "X-Client-Verify: SUCCESS\r\n"
	    "X-Subject-DN: ", 40) == 0);
	ck_assert(hdr_is_reserved(hs, "x-subject-dn", 12));
	ck_assert(hdr_is_reserved(hs, "X_SUBJECT_DN", 12));
	ck_assert(hdr_is_reserved(hs, "X-Client-Cert", 13)); /* prefix */

	/* nginx users can add the SAN URI under a name of theirs */
	memset(&hcfg, 0, sizeof(hcfg));
	hcfg.preset = HEADERS_NGINX;
	hcfg.san_uri = "X-SSL-Client-SAN-URI";
	hcfg.verify = "";
	build();
	ck_assert(strncmp(blk, "X-SSL-Client-S-DN: ", 19) == 0);
	v = value_of("X-SSL-Client-SAN-URI");
	ck_assert_str_eq(v, "spiffe://demo.example/ns/prod/orders");
	free(v);
	ck_assert(!hcfg.forwarded);
	ck_assert(!hdr_is_reserved(hs, "X-Forwarded-Proto", 17));
}
END_TEST

START_TEST(test_nothing_sent)
{
	hcfg.verify = hcfg.subject = hcfg.issuer = hcfg.serial = "";
	hcfg.fingerprint = hcfg.san_dns = hcfg.san_uri = hcfg.cert = "";
	orders();
	build();
	ck_assert_str_eq(blk, "");
	ck_assert_uint_eq(blen, 0);
	/* still removed from clients: they are the families' names */
	ck_assert(hdr_is_reserved(hs, "X-Client-Subject", 16));
}
END_TEST

START_TEST(test_bad_name_never_sent)
{
	/* cfg.c refuses these; hdr.c still never lets one split a line */
	hcfg.subject = "X-Evil\r\nX-Injected";
	hcfg.issuer = "X Issuer";
	orders();
	build();
	assert_clean_block();
	ck_assert_ptr_null(strstr(blk, "Evil"));
	ck_assert_ptr_null(strstr(blk, "Issuer"));
}
END_TEST

#define RESERVED(s)	ck_assert_msg(hdr_is_reserved(hs, s, strlen(s)), \
			    "%s should be reserved", s)
#define FREE(s)		ck_assert_msg(!hdr_is_reserved(hs, s, strlen(s)), \
			    "%s should not be reserved", s)

START_TEST(test_reserved_default)
{
	hs = hdr_set_new(&hcfg);
	RESERVED("X-Client-Subject");
	RESERVED("x-client-subject");
	RESERVED("X-CLIENT-SUBJECT");
	RESERVED("x-ClIeNt-VeRiFy");
	RESERVED("X-Client-Fingerprint-SHA256");
	RESERVED("X-Client-Anything-Else");	/* the whole family */
	RESERVED("X-Client-");
	RESERVED("X_Client_Subject");		/* CGI maps _ and - alike */
	RESERVED("x_client-cert");
	/* every preset's family, whatever the preset */
	RESERVED("X-SSL-Client-S-DN");
	RESERVED("x-ssl-client-verify");
	RESERVED("X-SSL-CLIENT-whatever");
	RESERVED("X-Forwarded-Client-Cert");
	RESERVED("x-forwarded-client-cert");
	RESERVED("X_FORWARDED_CLIENT_CERT");
	/* the proxy sets these itself */
	RESERVED("X-Forwarded-Proto");
	RESERVED("x-forwarded-host");
	/* the proxy appends to X-Forwarded-For */
	FREE("X-Forwarded-For");
	FREE("x-forwarded-for");
	FREE("X-Forwarded-Client-Certs");
	FREE("X-Forwarded-Client-Cer");
	FREE("X-Client");
	FREE("X-Clients-Subject");
	FREE("X-SSL-Client");
	FREE("Client-Subject");
	FREE("Host");
	FREE("Content-Length");
	FREE("Authorization");
	FREE("");
	ck_assert(!hdr_is_reserved(hs, NULL, 0));
}
END_TEST

START_TEST(test_reserved_forwarded_off)
{
	hcfg.forwarded = false;
	hs = hdr_set_new(&hcfg);
	FREE("X-Forwarded-Proto");
	FREE("X-Forwarded-Host");
	RESERVED("X-Forwarded-Client-Cert");
	RESERVED("X-Client-Subject");
}
END_TEST

START_TEST(test_reserved_envoy_and_nginx)
{
	/* Any preset removes every family, not only its own. */
	hcfg.preset = HEADERS_ENVOY;
	hs = hdr_set_new(&hcfg);
	RESERVED("X-Forwarded-Client-Cert");
	RESERVED("X-Client-Subject");
	RESERVED("X-SSL-Client-Cert");
	hdr_set_free(hs);
	hcfg.preset = HEADERS_NGINX;
	hcfg.subject = "SSL-Subject";
	hcfg.xfcc = "X-Peer-Cert";
	hs = hdr_set_new(&hcfg);
	RESERVED("ssl-subject");
	RESERVED("SSL_SUBJECT");
	RESERVED("x-peer-cert");
	FREE("SSL-Subjec");
	FREE("SSL-Subjects");
	RESERVED("X-Forwarded-Client-Cert");
	RESERVED("X-Client-Subject");
}
END_TEST

START_TEST(test_reserved_length)
{
	/* Names come from the request buffer: not NUL-terminated. */
	static const char	 buf[] = { 'X', '-', 'F', 'o', 'r', 'w', 'a',
	    'r', 'd', 'e', 'd', '-', 'C', 'l', 'i', 'e', 'n', 't', '-', 'C',
	    'e', 'r', 't', 'x', 'y', 'z' };
	static const char	 xff[] = "X-Forwarded-For: 1.2.3.4";

	hs = hdr_set_new(&hcfg);
	ck_assert(hdr_is_reserved(hs, buf, 23));
	ck_assert(!hdr_is_reserved(hs, buf, 22));
	ck_assert(!hdr_is_reserved(hs, buf, sizeof(buf)));
	ck_assert(hdr_is_reserved(hs, "X-Client-Subject: x", 16));
	ck_assert(hdr_is_reserved(hs, "X-Client-", 9));
	ck_assert(!hdr_is_reserved(hs, "X-Client-", 8));
	ck_assert(!hdr_is_reserved(hs, xff, 15));
	ck_assert(hdr_is_reserved(hs, "X-Forwarded-Proto: http", 17));
}
END_TEST

START_TEST(test_null_and_defaults)
{
	char	*v;
	size_t	 len = 99;

	hdr_set_free(NULL);
	/* NULL cfg: the default preset, forwarded headers on */
	hs = hdr_set_new(NULL);
	ck_assert(hdr_is_reserved(hs, "X-Forwarded-Host", 16));
	ck_assert_ptr_null(hdr_identity_block(hs, NULL, &len));
	ck_assert_uint_eq(len, 0);
	orders();
	sign();
	blk = hdr_identity_block(hs, cert, &blen);
	v = value_of("X-Client-Verify");
	ck_assert_str_eq(v, "SUCCESS");
	free(v);
}
END_TEST

/*
 * Blocks are remembered per certificate: the same certificate again gets an
 * equal block (a copy of its own), another certificate its own block, and
 * the first one after that still its own.
 */
START_TEST(test_cache_per_certificate)
{
	X509	*a, *b;
	char	*a1, *a2, *b1, *a3, *v;
	size_t	 la1, la2, lb1, la3;

	orders();
	sign();
	hs = hdr_set_new(&hcfg);
	ck_assert_ptr_nonnull(a = X509_dup(cert));
	/* Another certificate: same key and issuer, another CN. */
	X509_NAME_ENTRY_free(X509_NAME_delete_entry(
	    X509_get_subject_name(cert),
	    X509_NAME_entry_count(X509_get_subject_name(cert)) - 1));
	subj("CN", "billing");
	ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);
	ck_assert_ptr_nonnull(b = X509_dup(cert));

	a1 = hdr_identity_block(hs, a, &la1);
	a2 = hdr_identity_block(hs, a, &la2);
	b1 = hdr_identity_block(hs, b, &lb1);
	a3 = hdr_identity_block(hs, a, &la3);
	ck_assert_ptr_nonnull(a1);
	ck_assert_ptr_nonnull(a2);
	ck_assert_ptr_nonnull(b1);
	ck_assert_ptr_nonnull(a3);
	ck_assert_ptr_ne(a1, a2);		/* each caller owns its copy */
	ck_assert_uint_eq(la1, strlen(a1));
	ck_assert_uint_eq(la2, la1);
	ck_assert_uint_eq(la3, la1);
	ck_assert_str_eq(a2, a1);
	ck_assert_str_eq(a3, a1);
	ck_assert_uint_eq(lb1, strlen(b1));
	ck_assert_str_ne(b1, a1);
	ck_assert_ptr_nonnull(strstr(a1, "X-Client-Subject: CN=orders,"));
	ck_assert_ptr_nonnull(strstr(b1, "X-Client-Subject: CN=billing,"));
	ck_assert_ptr_null(strstr(b1, "CN=orders"));
	/* What the block holds is that of a fresh hdr_set. */
	blk = b1;
	v = value_of("X-Client-Subject");
	ck_assert_str_eq(v, "CN=billing,OU=payments,O=Demo Corp");
	free(v);
	free(a1);
	free(a2);
	free(a3);
	X509_free(a);
	X509_free(b);
}
END_TEST

Suite *
hdr_suite(void)
{
	Suite	*s = suite_create("hdr");
	TCase	*presets = tcase_create("presets");
	TCase	*escape = tcase_create("escaping");
	TCase	*names = tcase_create("names");

	tcase_add_checked_fixture(presets, setup, teardown);
	tcase_add_test(presets, test_default_preset);
	tcase_add_test(presets, test_nginx_preset);
	tcase_add_test(presets, test_envoy_preset);
	tcase_add_test(presets, test_no_sans);
	tcase_add_test(presets, test_empty_subject);
	tcase_add_test(presets, test_cache_per_certificate);
	suite_add_tcase(s, presets);

	tcase_add_checked_fixture(escape, setup, teardown);
	tcase_add_test(escape, test_dn_specials_and_utf8);
	tcase_add_test(escape, test_san_escaping);
	tcase_add_test(escape, test_injection);
	suite_add_tcase(s, escape);

	tcase_add_checked_fixture(names, setup, teardown);
	tcase_add_test(names, test_overrides);
	tcase_add_test(names, test_nothing_sent);
	tcase_add_test(names, test_bad_name_never_sent);
	tcase_add_test(names, test_reserved_default);
	tcase_add_test(names, test_reserved_forwarded_off);
	tcase_add_test(names, test_reserved_envoy_and_nginx);
	tcase_add_test(names, test_reserved_length);
	tcase_add_test(names, test_null_and_defaults);
	suite_add_tcase(s, names);
	return s;
}
