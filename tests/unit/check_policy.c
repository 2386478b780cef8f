/*
 * check_policy.c - allow lists, client_eku and struct identity, against
 * certificates built here with the OpenSSL API (no files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"
#include "check_suites.h"

#define NOT_AFTER	((time_t)1893456000)	/* 2030-01-01T00:00:00Z */

static struct cfg_allow	 allow;
static struct policy	*pol;
static EVP_PKEY		*key;
static X509		*cert;
static GENERAL_NAMES	*sans;
static bool		 cert_signed;
static char		 why[512];

static void
setup(void)
{
	X509_NAME	*issuer;

	memset(&allow, 0, sizeof(allow));
	pol = NULL;
	cert_signed = false;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(cert = X509_new());
	ck_assert_int_eq(X509_set_version(cert, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(cert),
	    0x0a1b2c3d), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(cert), 0));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(cert),
	    NOT_AFTER));
	issuer = X509_get_issuer_name(cert);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(issuer, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Example", -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(issuer, "CN",
	    MBSTRING_UTF8, (const unsigned char *)"Test CA", -1, -1, 0), 1);
	ck_assert_ptr_nonnull(sans = sk_GENERAL_NAME_new_null());
	memset(why, 'Z', sizeof(why));
}

static void
teardown(void)
{
	policy_free(pol);
	strlist_free(&allow.subject_cn);
	strlist_free(&allow.subject_ou);
	strlist_free(&allow.subject_o);
	strlist_free(&allow.san_dns);
	strlist_free(&allow.san_uri);
	strlist_free(&allow.san_email);
	free(allow.fingerprint_sha256);
	GENERAL_NAMES_free(sans);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* Add a subject attribute, given as UTF-8 of this length (-1: strlen). */
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

/* Add a subjectAltName entry (GEN_DNS, GEN_URI, GEN_EMAIL), NULs allowed. */
static void
san_len(int type, const char *value, int len)
{
	GENERAL_NAME	*g;
	ASN1_IA5STRING	*s;

	ck_assert_ptr_nonnull(g = GENERAL_NAME_new());
	ck_assert_ptr_nonnull(s = ASN1_IA5STRING_new());
	ck_assert_int_eq(ASN1_STRING_set(s, value, len), 1);
	GENERAL_NAME_set0_value(g, type, s);
	ck_assert_int_gt(sk_GENERAL_NAME_push(sans, g), 0);
}

static void
san(int type, const char *value)
{
	san_len(type, value, -1);
}

/* Add an extension from its openssl.cnf text, e.g. "clientAuth". */
static void
ext(int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*e;

	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ck_assert_ptr_nonnull(e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	ck_assert_int_eq(X509_add_ext(cert, e, -1), 1);
	X509_EXTENSION_free(e);
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

/* Sign the certificate, compile `allow` and check; why gets the reason. */
static int
run(enum client_eku eku)
{
	sign();
	policy_free(pol);
	pol = policy_new(&allow, eku);
	memset(why, 'Z', sizeof(why));
	return policy_check(pol, cert, why, sizeof(why));
}

#define ALLOWED(eku) do {						\
	ck_assert_int_eq(run(eku), 0);					\
	ck_assert_str_eq(why, "");					\
} while (0)
#define DENIED(eku, reason) do {					\
	ck_assert_int_eq(run(eku), -1);					\
	ck_assert_str_eq(why, reason);					\
} while (0)
#define IFP	CLIENT_EKU_IF_PRESENT
#define REQ	CLIENT_EKU_REQUIRED

static void
reset(struct strlist *l, const char *v)
{
	strlist_free(l);
	if (v != NULL)
		strlist_add(l, v);
}

/* Sign; md gets the 32-byte SHA-256, hex its 64 lower-case digits. */
static void
fingerprint(unsigned char *md, char *hex)
{
	unsigned int	 n = 0, i;

	sign();
	ck_assert_int_eq(X509_digest(cert, EVP_sha256(), md, &n), 1);
	ck_assert_uint_eq(n, FINGERPRINT_LEN);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void
allow_fingerprint(const unsigned char *md)
{
	allow.fingerprint_sha256 = xreallocarray(allow.fingerprint_sha256,
	    allow.n_fingerprint_sha256 + 1, sizeof(*allow.fingerprint_sha256));
	memcpy(allow.fingerprint_sha256[allow.n_fingerprint_sha256++], md,
	    FINGERPRINT_LEN);
}

/* -- empty allow -- */

START_TEST(test_empty_allow_allows_any)
{
	ALLOWED(IFP);		/* not even a subject */
	policy_free(pol);
	pol = policy_new(NULL, IFP);
	ck_assert_int_eq(policy_check(pol, cert, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "");
	policy_free(NULL);
}
END_TEST

START_TEST(test_no_certificate)
{
	pol = policy_new(&allow, IFP);
	ck_assert_int_eq(policy_check(pol, NULL, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "policy: no client certificate");
}
END_TEST

/* -- subject CN -- */

START_TEST(test_cn_exact)
{
	subj("O", "Example");
	subj("CN", "orders");
	strlist_add(&allow.subject_cn, "orders");
	ALLOWED(IFP);
	reset(&allow.subject_cn, "order");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "orders-admin");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "rders");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "Orders");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	/* the printed DN is never matched */
	reset(&allow.subject_cn, "CN=orders");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
}
END_TEST

START_TEST(test_cn_any_value_within_field)
{
	subj("CN", "orders");
	strlist_add(&allow.subject_cn, "billing");
	strlist_add(&allow.subject_cn, "orders");
	strlist_add(&allow.subject_cn, "shipping");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_cn_with_dn_syntax_is_not_admin)
{
	subj("CN", "x,CN=admin");
	strlist_add(&allow.subject_cn, "admin");
	DENIED(IFP,
	    "policy: subject CN \"x,CN=admin\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "x");
	DENIED(IFP,
	    "policy: subject CN \"x,CN=admin\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "x,CN=admin");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_cn_two_refused)
{
	subj("CN", "admin");
	subj("CN", "admin");
	strlist_add(&allow.subject_cn, "admin");
	DENIED(IFP, "policy: subject has 2 CN attributes (ambiguous) and "
	    "allow.subject_cn is set");
}
END_TEST

START_TEST(test_cn_two_fine_without_subject_cn)
{
	subj("O", "Example");
	subj("CN", "a");
	subj("CN", "b");
	strlist_add(&allow.subject_o, "Example");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_cn_missing)
{
	subj("O", "orders");
	strlist_add(&allow.subject_cn, "orders");
	DENIED(IFP, "policy: certificate has no subject CN but "
	    "allow.subject_cn is set");
}
END_TEST

START_TEST(test_cn_nul_never_matches)
{
	subj_len("CN", "admin\0.evil", 11);
	strlist_add(&allow.subject_cn, "admin");
	DENIED(IFP, "policy: subject CN \"admin\\x00.evil\" is not in "
	    "allow.subject_cn");
}
END_TEST

START_TEST(test_cn_escaped_in_reason)
{
	/* LF, quote, backslash, CR, DEL, tab, U+0085 (NEL), then UTF-8 */
	subj("CN", "a\nb\"c\\d\re\x7f\t\xc2\x85Z\xc3\xbc\xe2\x82\xac");
	strlist_add(&allow.subject_cn, "admin");
	DENIED(IFP, "policy: subject CN "
	    "\"a\\nb\\\"c\\\\d\\x0de\\x7f\\x09\\xc2\\x85Z\xc3\xbc\xe2\x82\xac\""
	    " is not in allow.subject_cn");
	ck_assert_ptr_null(strchr(why, '\n'));
	ck_assert_ptr_null(strchr(why, '\r'));
}
END_TEST

START_TEST(test_cn_bmpstring_is_converted)
{
	/* "Zoë" as UCS-2: a client may encode its CN so */
	static const unsigned char bmp[] = { 0, 'Z', 0, 'o', 0, 0xeb };

	ck_assert_int_eq(X509_NAME_add_entry_by_NID(X509_get_subject_name(cert),
	    NID_commonName, V_ASN1_BMPSTRING, bmp, sizeof(bmp), -1, 0), 1);
	strlist_add(&allow.subject_cn, "Zo\xc3\xab");
	ALLOWED(IFP);
	reset(&allow.subject_cn, "Zoe");
	DENIED(IFP, "policy: subject CN \"Zo\xc3\xab\" is not in "
	    "allow.subject_cn");
}
END_TEST

/* -- subject OU, O -- */

START_TEST(test_ou_any_attribute)
{
	subj("OU", "eng");
	subj("OU", "ops");
	subj("CN", "orders");
	strlist_add(&allow.subject_ou, "ops");
	ALLOWED(IFP);
	reset(&allow.subject_ou, "eng");
	ALLOWED(IFP);
	reset(&allow.subject_ou, "dev");
	strlist_add(&allow.subject_ou, "sre");
	DENIED(IFP, "policy: no subject OU matches allow.subject_ou "
	    "(certificate has \"eng\", \"ops\")");
	reset(&allow.subject_ou, "Ops");
	DENIED(IFP, "policy: no subject OU matches allow.subject_ou "
	    "(certificate has \"eng\", \"ops\")");
	reset(&allow.subject_ou, "op");
	DENIED(IFP, "policy: no subject OU matches allow.subject_ou "
	    "(certificate has \"eng\", \"ops\")");
	/* the CN is not an OU */
	reset(&allow.subject_ou, "orders");
	DENIED(IFP, "policy: no subject OU matches allow.subject_ou "
	    "(certificate has \"eng\", \"ops\")");
}
END_TEST

START_TEST(test_ou_missing)
{
	subj("O", "eng");
	subj("CN", "eng");
	strlist_add(&allow.subject_ou, "eng");
	DENIED(IFP, "policy: certificate has no subject OU but "
	    "allow.subject_ou is set");
}
END_TEST

START_TEST(test_o_utf8)
{
	subj("O", "M\xc3\xbcller GmbH");
	subj("CN", "orders");
	strlist_add(&allow.subject_o, "M\xc3\xbcller GmbH");
	ALLOWED(IFP);
	reset(&allow.subject_o, "m\xc3\xbcller gmbh");
	DENIED(IFP, "policy: no subject O matches allow.subject_o "
	    "(certificate has \"M\xc3\xbcller GmbH\")");
	reset(&allow.subject_o, "Muller GmbH");
	DENIED(IFP, "policy: no subject O matches allow.subject_o "
	    "(certificate has \"M\xc3\xbcller GmbH\")");
}
END_TEST

START_TEST(test_o_missing)
{
	subj("CN", "orders");
	strlist_add(&allow.subject_o, "Example");
	DENIED(IFP, "policy: certificate has no subject O but "
	    "allow.subject_o is set");
}
END_TEST

/* -- SAN DNS -- */

START_TEST(test_dns_case_insensitive)
{
	san(GEN_DNS, "API.Example.COM");
	strlist_add(&allow.san_dns, "api.example.com");
	ALLOWED(IFP);
	reset(&allow.san_dns, "api.EXAMPLE.com");
	ALLOWED(IFP);
	reset(&allow.san_dns, "example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"API.Example.COM\")");
	reset(&allow.san_dns, "pi.example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"API.Example.COM\")");
	reset(&allow.san_dns, "api.example.co");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"API.Example.COM\")");
	reset(&allow.san_dns, "*.example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"API.Example.COM\")");
}
END_TEST

START_TEST(test_dns_never_cn)
{
	subj("CN", "api.example.com");
	strlist_add(&allow.san_dns, "api.example.com");
	DENIED(IFP, "policy: certificate has no SAN DNS but allow.san_dns "
	    "is set");
}
END_TEST

START_TEST(test_dns_never_cn_with_other_sans)
{
	subj("CN", "api.example.com");
	san(GEN_URI, "api.example.com");
	san(GEN_EMAIL, "api.example.com");
	san(GEN_DNS, "other.example.com");
	strlist_add(&allow.san_dns, "api.example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"other.example.com\")");
}
END_TEST

START_TEST(test_dns_any_entry_any_value)
{
	san(GEN_DNS, "a.example.com");
	san(GEN_DNS, "b.example.com");
	strlist_add(&allow.san_dns, "x.example.com");
	strlist_add(&allow.san_dns, "b.example.com");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_dns_wildcard_is_literal)
{
	san(GEN_DNS, "*.example.com");
	strlist_add(&allow.san_dns, "api.example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"*.example.com\")");
	reset(&allow.san_dns, "*.EXAMPLE.com");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_dns_nul_never_matches)
{
	san_len(GEN_DNS, "api.example.com\0.evil.com", 25);
	strlist_add(&allow.san_dns, "api.example.com");
	DENIED(IFP, "policy: no SAN DNS matches allow.san_dns "
	    "(certificate has \"api.example.com\\x00.evil.com\")");
}
END_TEST

START_TEST(test_two_san_extensions_refused)
{
	san(GEN_DNS, "api.example.com");
	ext(NID_subject_alt_name, "DNS:evil.example.com");
	strlist_add(&allow.san_dns, "api.example.com");
	DENIED(IFP, "policy: certificate has more than one subjectAltName "
	    "extension");
}
END_TEST

/* -- SAN URI -- */

static const struct {
	const char	*pattern;
	const char	*uri;
	bool		 allowed;
} uri_cases[] = {
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/orders", true },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/orders/x", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/production/x", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod//", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/..", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/.", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/...", true },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/orders?x=1", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/orders#f", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://CORP.example/ns/prod/orders", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/NS/prod/orders", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example.evil/ns/prod/orders", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "xspiffe://corp.example/ns/prod/orders", false },
	{ "spiffe://corp.example/ns/prod/*",
	    "spiffe://corp.example/ns/prod/*", true },
	{ "spiffe://corp.example/ns/*/orders",
	    "spiffe://corp.example/ns/dev/orders", true },
	{ "spiffe://corp.example/ns/*/orders",
	    "spiffe://corp.example/ns//orders", false },
	{ "spiffe://corp.example/ns/*/orders",
	    "spiffe://corp.example/ns/a/b/orders", false },
	{ "spiffe://corp.example/ns/*/*",
	    "spiffe://corp.example/ns/a/b", true },
	/* "*" is no wildcard for the authority, nor inside a segment */
	{ "spiffe://*/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/orders", false },
	{ "spiffe://*/ns/prod/orders",
	    "spiffe://*/ns/prod/orders", true },
	{ "spiffe://corp.example/ns/prod/ord*",
	    "spiffe://corp.example/ns/prod/orders", false },
	{ "spiffe://corp.example/ns/prod/ord*",
	    "spiffe://corp.example/ns/prod/ord*", true },
	/* exact patterns */
	{ "spiffe://corp.example/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/orders", true },
	{ "spiffe://corp.example/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/orders2", false },
	{ "spiffe://corp.example/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/order", false },
	{ "spiffe://corp.example/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/orders/", false },
	{ "spiffe://corp.example/ns/prod/orders",
	    "spiffe://corp.example/ns/prod/Orders", false },
	{ "urn:example:*", "urn:example:orders", false },
	{ "urn:example:*", "urn:example:*", true },
};

START_TEST(test_uri_pattern)
{
	char	 expect[512];

	san(GEN_URI, uri_cases[_i].uri);
	strlist_add(&allow.san_uri, uri_cases[_i].pattern);
	if (uri_cases[_i].allowed)
		ALLOWED(IFP);
	else {
		snprintf(expect, sizeof(expect), "policy: no SAN URI matches "
		    "allow.san_uri (certificate has \"%s\")",
		    uri_cases[_i].uri);
		DENIED(IFP, expect);
	}
}
END_TEST

START_TEST(test_uri_reason)
{
	san(GEN_URI, "spiffe://corp/ns/dev/x");
	san(GEN_DNS, "x.example.com");
	san(GEN_URI, "https://x.example.com/\"\n");
	strlist_add(&allow.san_uri, "spiffe://corp/ns/prod/*");
	DENIED(IFP, "policy: no SAN URI matches allow.san_uri (certificate "
	    "has \"spiffe://corp/ns/dev/x\", "
	    "\"https://x.example.com/\\\"\\n\")");
}
END_TEST

START_TEST(test_uri_missing)
{
	san(GEN_DNS, "x.example.com");
	strlist_add(&allow.san_uri, "spiffe://corp/ns/prod/*");
	DENIED(IFP, "policy: certificate has no SAN URI but allow.san_uri "
	    "is set");
}
END_TEST

START_TEST(test_uri_nul_never_matches)
{
	san_len(GEN_URI, "spiffe://corp/ns/prod/a\0b", 25);
	strlist_add(&allow.san_uri, "spiffe://corp/ns/prod/*");
	DENIED(IFP, "policy: no SAN URI matches allow.san_uri (certificate "
	    "has \"spiffe://corp/ns/prod/a\\x00b\")");
}
END_TEST

/* -- SAN email -- */

START_TEST(test_email)
{
	san(GEN_EMAIL, "Alice@Example.COM");
	strlist_add(&allow.san_email, "Alice@example.com");
	ALLOWED(IFP);
	reset(&allow.san_email, "Alice@EXAMPLE.com");
	ALLOWED(IFP);
	reset(&allow.san_email, "alice@example.com");
	DENIED(IFP, "policy: no SAN email matches allow.san_email "
	    "(certificate has \"Alice@Example.COM\")");
	reset(&allow.san_email, "Alice@example.co");
	DENIED(IFP, "policy: no SAN email matches allow.san_email "
	    "(certificate has \"Alice@Example.COM\")");
	reset(&allow.san_email, "example.com");
	DENIED(IFP, "policy: no SAN email matches allow.san_email "
	    "(certificate has \"Alice@Example.COM\")");
	reset(&allow.san_email, "lice@example.com");
	DENIED(IFP, "policy: no SAN email matches allow.san_email "
	    "(certificate has \"Alice@Example.COM\")");
}
END_TEST

START_TEST(test_email_missing)
{
	subj("emailAddress", "alice@example.com");
	strlist_add(&allow.san_email, "alice@example.com");
	DENIED(IFP, "policy: certificate has no SAN email but "
	    "allow.san_email is set");
}
END_TEST

/* -- fingerprint -- */

START_TEST(test_fingerprint)
{
	unsigned char	 md[FINGERPRINT_LEN], other[FINGERPRINT_LEN];
	char		 hex[2 * FINGERPRINT_LEN + 1], expect[256];

	subj("CN", "orders");
	fingerprint(md, hex);
	memset(other, 0xab, sizeof(other));
	allow_fingerprint(other);
	snprintf(expect, sizeof(expect), "policy: SHA-256 fingerprint %s is "
	    "not in allow.fingerprint_sha256", hex);
	DENIED(IFP, expect);
	allow_fingerprint(md);
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_fingerprint_any_case_colons)
{
	unsigned char	 md[FINGERPRINT_LEN], parsed[FINGERPRINT_LEN];
	char		 hex[2 * FINGERPRINT_LEN + 1];
	char		 text[3 * FINGERPRINT_LEN];
	size_t		 i;

	fingerprint(md, hex);
	/* as `openssl x509 -fingerprint -sha256` prints it */
	for (i = 0; i < FINGERPRINT_LEN; i++)
		snprintf(text + 3 * i, 4, "%02X%s", md[i],
		    i + 1 < FINGERPRINT_LEN ? ":" : "");
	ck_assert_int_eq(hex_decode(text, parsed, sizeof(parsed)), 0);
	allow_fingerprint(parsed);
	ALLOWED(IFP);
	free(allow.fingerprint_sha256);
	allow.fingerprint_sha256 = NULL;
	allow.n_fingerprint_sha256 = 0;
	ck_assert_int_eq(hex_decode(hex, parsed, sizeof(parsed)), 0);
	allow_fingerprint(parsed);
	ALLOWED(IFP);
}
END_TEST

/* -- fields together -- */

START_TEST(test_all_fields_must_match)
{
	unsigned char	 md[FINGERPRINT_LEN];
	char		 hex[2 * FINGERPRINT_LEN + 1];

	subj("O", "Example");
	subj("OU", "eng");
	subj("CN", "orders");
	san(GEN_DNS, "orders.example.com");
	san(GEN_URI, "spiffe://corp.example/ns/prod/orders");
	san(GEN_EMAIL, "orders@example.com");
	strlist_add(&allow.subject_cn, "orders");
	strlist_add(&allow.subject_ou, "eng");
	strlist_add(&allow.subject_o, "Example");
	strlist_add(&allow.san_dns, "orders.example.com");
	strlist_add(&allow.san_uri, "spiffe://corp.example/ns/prod/*");
	strlist_add(&allow.san_email, "orders@example.com");
	fingerprint(md, hex);
	allow_fingerprint(md);
	ALLOWED(IFP);
	DENIED(REQ, "wrong purpose: certificate has no extendedKeyUsage "
	    "clientAuth (client_eku: required)");

	reset(&allow.san_uri, "spiffe://corp.example/ns/dev/*");
	DENIED(IFP, "policy: no SAN URI matches allow.san_uri (certificate "
	    "has \"spiffe://corp.example/ns/prod/orders\")");
	reset(&allow.san_uri, "spiffe://corp.example/ns/prod/*");
	reset(&allow.subject_cn, "billing");
	DENIED(IFP, "policy: subject CN \"orders\" is not in allow.subject_cn");
	reset(&allow.subject_cn, "orders");
	reset(&allow.san_email, "billing@example.com");
	DENIED(IFP, "policy: no SAN email matches allow.san_email "
	    "(certificate has \"orders@example.com\")");
	reset(&allow.san_email, NULL);
	ALLOWED(IFP);
	reset(&allow.subject_o, "Other");
	DENIED(IFP, "policy: no subject O matches allow.subject_o "
	    "(certificate has \"Example\")");
}
END_TEST

START_TEST(test_not_borrowed_from_cfg)
{
	subj("CN", "orders");
	san(GEN_URI, "spiffe://corp/ns/prod/orders");
	strlist_add(&allow.subject_cn, "orders");
	strlist_add(&allow.san_uri, "spiffe://corp/ns/prod/*");
	sign();
	pol = policy_new(&allow, IFP);
	/* a reload frees the old cfg while the policy lives on */
	strlist_free(&allow.subject_cn);
	strlist_free(&allow.san_uri);
	strlist_add(&allow.subject_cn, "billing");
	strlist_add(&allow.san_uri, "spiffe://corp/ns/dev/*");
	ck_assert_int_eq(policy_check(pol, cert, why, sizeof(why)), 0);
}
END_TEST

/* -- client_eku -- */

START_TEST(test_eku_required_without_eku)
{
	subj("CN", "orders");
	DENIED(REQ, "wrong purpose: certificate has no extendedKeyUsage "
	    "clientAuth (client_eku: required)");
	ALLOWED(IFP);
}
END_TEST

START_TEST(test_eku_required_server_only)
{
	ext(NID_ext_key_usage, "serverAuth");
	DENIED(REQ, "wrong purpose: certificate has no extendedKeyUsage "
	    "clientAuth (client_eku: required)");
}
END_TEST

START_TEST(test_eku_required_any_eku_is_not_client_auth)
{
	ext(NID_ext_key_usage, "anyExtendedKeyUsage");
	DENIED(REQ, "wrong purpose: certificate has no extendedKeyUsage "
	    "clientAuth (client_eku: required)");
}
END_TEST

START_TEST(test_eku_required_with_client_auth)
{
	subj("CN", "orders");
	ext(NID_ext_key_usage, "serverAuth,clientAuth");
	strlist_add(&allow.subject_cn, "orders");
	ALLOWED(REQ);
	reset(&allow.subject_cn, "billing");
	DENIED(REQ, "policy: subject CN \"orders\" is not in allow.subject_cn");
}
END_TEST

/* -- the reason buffer -- */

START_TEST(test_reason_truncated)
{
	char	 small[40];

	subj("CN", "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
	    "\xc3\xbc\xc3\xbc\xc3\xbc");
	strlist_add(&allow.subject_cn, "orders");
	sign();
	pol = policy_new(&allow, IFP);
	memset(small, 'Z', sizeof(small));
	ck_assert_int_eq(policy_check(pol, cert, small, 27), -1);
	/* "ü" is never cut in half; room is left for "..." */
	ck_assert_str_eq(small, "policy: subject CN \"\xc3\xbc...");
	ck_assert_int_eq(policy_check(pol, cert, small, 4), -1);
	ck_assert_str_eq(small, "...");
	ck_assert_int_eq(policy_check(pol, cert, small, 2), -1);
	ck_assert_str_eq(small, ".");
	ck_assert_int_eq(policy_check(pol, cert, small, 1), -1);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(policy_check(pol, cert, NULL, 0), -1);
}
END_TEST

/* -- identity -- */

START_TEST(test_identity)
{
	struct identity	 id;
	unsigned char	 md[FINGERPRINT_LEN];
	char		 hex[2 * FINGERPRINT_LEN + 1];

	subj("C", "DE");
	subj("O", "M\xc3\xbcller GmbH");
	subj("OU", "eng");
	subj("CN", "orders");
	fingerprint(md, hex);
	identity_from_cert(&id, cert);
	ck_assert_str_eq(id.subject,
	    "CN=orders,OU=eng,O=M\xc3\xbcller GmbH,C=DE");
	ck_assert_str_eq(id.issuer, "CN=Test CA,O=Example");
	ck_assert_str_eq(id.serial, "0A1B2C3D");
	ck_assert_str_eq(id.sha256, hex);
	ck_assert_str_eq(id.cn, "orders");
	ck_assert_int_eq(id.not_after, NOT_AFTER);
	identity_clear(&id);
	ck_assert_ptr_null(id.subject);
	ck_assert_ptr_null(id.sha256);
	ck_assert_int_eq(id.not_after, 0);
	identity_clear(&id);
}
END_TEST

START_TEST(test_identity_long_serial_no_cn)
{
	struct identity	 id;
	BIGNUM		*bn = NULL;

	ck_assert_int_gt(BN_hex2bn(&bn,
	    "7fe3c2a10b9d8e7f6a5b4c3d2e1f00112233abcd"), 0);
	ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn,
	    X509_get_serialNumber(cert)));
	BN_free(bn);
	subj("O", "Example");
	sign();
	identity_from_cert(&id, cert);
	ck_assert_str_eq(id.serial, "7FE3C2A10B9D8E7F6A5B4C3D2E1F00112233ABCD");
	ck_assert_str_eq(id.subject, "O=Example");
	ck_assert_ptr_null(id.cn);
	identity_clear(&id);

	identity_from_cert(&id, NULL);
	ck_assert_ptr_null(id.subject);
	ck_assert_ptr_null(id.serial);
}
END_TEST

START_TEST(test_identity_controls_escaped)
{
	struct identity	 id;

	subj("O", "Ex\nample");
	subj_len("CN", "a\nb\rc\0d\te", 9);
	sign();
	identity_from_cert(&id, cert);
	ck_assert_str_eq(id.subject, "CN=a\\0Ab\\0Dc\\00d\\09e,O=Ex\\0Aample");
	ck_assert_ptr_null(strpbrk(id.subject, "\r\n"));
	ck_assert_str_eq(id.cn, "a?b?c?d?e");
	identity_clear(&id);
}
END_TEST

START_TEST(test_rfc4514_specials)
{
	char	*s;

	subj("O", "A+B;C<D>E\"F\\G=H");
	subj("OU", " #lead and trail ");
	subj("CN", "x,CN=admin");
	sign();
	s = x509_name_rfc4514(X509_get_subject_name(cert));
	ck_assert_str_eq(s, "CN=x\\,CN=admin,OU=\\ #lead and trail\\ ,"
	    "O=A\\+B\\;C\\<D\\>E\\\"F\\\\G=H");
	free(s);
	s = x509_name_rfc4514(X509_get_issuer_name(cert));
	ck_assert_str_eq(s, "CN=Test CA,O=Example");
	free(s);
}
END_TEST

START_TEST(test_rfc4514_utf8_and_empty)
{
	X509_NAME	*n;
	char		*s;

	ck_assert_ptr_nonnull(n = X509_NAME_new());
	s = x509_name_rfc4514(n);
	ck_assert_str_eq(s, "");
	free(s);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)"M\xc3\xbcller", -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91",
	    -1, -1, 0), 1);
	s = x509_name_rfc4514(n);
	ck_assert_str_eq(s,
	    "CN=\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91,O=M\xc3\xbcller");
	free(s);
	X509_NAME_free(n);
}
END_TEST

Suite *
policy_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("policy");

	tc = tcase_create("subject");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_allow_allows_any);
	tcase_add_test(tc, test_no_certificate);
	tcase_add_test(tc, test_cn_exact);
	tcase_add_test(tc, test_cn_any_value_within_field);
	tcase_add_test(tc, test_cn_with_dn_syntax_is_not_admin);
	tcase_add_test(tc, test_cn_two_refused);
	tcase_add_test(tc, test_cn_two_fine_without_subject_cn);
	tcase_add_test(tc, test_cn_missing);
	tcase_add_test(tc, test_cn_nul_never_matches);
	tcase_add_test(tc, test_cn_escaped_in_reason);
	tcase_add_test(tc, test_cn_bmpstring_is_converted);
	tcase_add_test(tc, test_ou_any_attribute);
	tcase_add_test(tc, test_ou_missing);
	tcase_add_test(tc, test_o_utf8);
	tcase_add_test(tc, test_o_missing);
	suite_add_tcase(s, tc);

	tc = tcase_create("san");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dns_case_insensitive);
	tcase_add_test(tc, test_dns_never_cn);
	tcase_add_test(tc, test_dns_never_cn_with_other_sans);
	tcase_add_test(tc, test_dns_any_entry_any_value);
	tcase_add_test(tc, test_dns_wildcard_is_literal);
	tcase_add_test(tc, test_dns_nul_never_matches);
	tcase_add_test(tc, test_two_san_extensions_refused);
	tcase_add_loop_test(tc, test_uri_pattern, 0,
	    sizeof(uri_cases) / sizeof(uri_cases[0]));
	tcase_add_test(tc, test_uri_reason);
	tcase_add_test(tc, test_uri_missing);
	tcase_add_test(tc, test_uri_nul_never_matches);
	tcase_add_test(tc, test_email);
	tcase_add_test(tc, test_email_missing);
	suite_add_tcase(s, tc);

	tc = tcase_create("combined");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fingerprint);
	tcase_add_test(tc, test_fingerprint_any_case_colons);
	tcase_add_test(tc, test_all_fields_must_match);
	tcase_add_test(tc, test_not_borrowed_from_cfg);
	tcase_add_test(tc, test_eku_required_without_eku);
	tcase_add_test(tc, test_eku_required_server_only);
	tcase_add_test(tc, test_eku_required_any_eku_is_not_client_auth);
	tcase_add_test(tc, test_eku_required_with_client_auth);
	tcase_add_test(tc, test_reason_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_identity);
	tcase_add_test(tc, test_identity_long_serial_no_cn);
	tcase_add_test(tc, test_identity_controls_escaped);
	tcase_add_test(tc, test_rfc4514_specials);
	tcase_add_test(tc, test_rfc4514_utf8_and_empty);
	suite_add_tcase(s, tc);

	return s;
}
