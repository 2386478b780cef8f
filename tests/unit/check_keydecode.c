/*
 * check_keydecode.c - with keydecode_install() in place, certificates
 * parsed by d2i_X509 still carry the right public key, and signatures made
 * with it verify while wrong keys, altered signatures and altered data are
 * refused: for EC P-256, RSA PKCS#1 and RSA-PSS.
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* ENGINE_get_pkey_meth_engine */

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mtlsproxy.h"
#include "check_suites.h"

static EVP_PKEY *
genkey(const char *type)
{
	EVP_PKEY *k;

	if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* A certificate for key, signed by ca, as DER. */
static unsigned char *
mkcert_der(EVP_PKEY *key, EVP_PKEY *ca, int *len)
{
	X509		*x = X509_new();
	X509_NAME	*n;
	unsigned char	*der = NULL;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"keydecode", -1, -1, 0);
	X509_set_issuer_name(x, n);
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	ck_assert_int_gt(X509_sign(x, ca, EVP_sha256()), 0);
	*len = i2d_X509(x, &der);
	ck_assert_int_gt(*len, 0);
	X509_free(x);
	return der;
}

static X509 *
parse(const unsigned char *der, int len)
{
	const unsigned char	*p = der;
	X509			*x = d2i_X509(NULL, &p, len);

	ck_assert_ptr_nonnull(x);
	return x;
}

/* Sign msg with key (pad: 0 or an RSA padding), verify with pub. */
static int
sig_roundtrip(EVP_PKEY *key, EVP_PKEY *pub, int pad, const char *msg,
    const char *check, int flip)
{
	EVP_MD_CTX	*m = EVP_MD_CTX_new();
	EVP_PKEY_CTX	*pc;
	unsigned char	 sig[512];
	size_t		 siglen = sizeof(sig);
	int		 r;

	ck_assert_int_eq(EVP_DigestSignInit(m, &pc, EVP_sha256(), NULL, key),
	    1);
	if (pad != 0)
		ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pc, pad), 0);
	ck_assert_int_eq(EVP_DigestSign(m, sig, &siglen,
	    (const unsigned char *)msg, strlen(msg)), 1);
	EVP_MD_CTX_reset(m);
	if (flip)
		sig[siglen / 2] ^= 0x01;
	ck_assert_int_eq(EVP_DigestVerifyInit(m, &pc, EVP_sha256(), NULL,
	    pub), 1);
	if (pad != 0)
		ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pc, pad), 0);
	r = EVP_DigestVerify(m, sig, siglen, (const unsigned char *)check,
	    strlen(check));
	EVP_MD_CTX_free(m);
	return r;
}

static void
check_type(const char *type, int pad)
{
	EVP_PKEY	*ca = genkey(type), *other = genkey(type);
	EVP_PKEY	*key = genkey(type), *pub;
	unsigned char	*der;
	int		 len;
	X509		*x;

	der = mkcert_der(key, ca, &len);
	x = parse(der, len);
	pub = X509_get0_pubkey(x);
	ck_assert_ptr_nonnull(pub);
	ck_assert_int_eq(EVP_PKEY_eq(pub, key), 1);
	ck_assert_int_eq(EVP_PKEY_eq(pub, other), 0);
	ck_assert_int_eq(EVP_PKEY_get_bits(pub), EVP_PKEY_get_bits(key));
	ck_assert_int_eq(EVP_PKEY_is_a(pub, type), 1);

	/* The certificate's own signature: right issuer only. */
	ck_assert_int_eq(X509_verify(x, ca), 1);
	ck_assert_int_le(X509_verify(x, other), 0);

	/* Signatures made with the certificate's key (CertificateVerify). */
	ck_assert_int_eq(sig_roundtrip(key, pub, pad, "transcript",
	    "transcript", 0), 1);
	ck_assert_int_le(sig_roundtrip(key, pub, pad, "transcript",
	    "transcripT", 0), 0);
	ck_assert_int_le(sig_roundtrip(key, pub, pad, "transcript",
	    "transcript", 1), 0);
	ck_assert_int_le(sig_roundtrip(other, pub, pad, "transcript",
	    "transcript", 0), 0);
	X509_free(x);	/* pub goes with it */

	/* An altered certificate signature does not verify. */
	der[len - 3] ^= 0x01;	/* inside the signature value */
	x = parse(der, len);
	ck_assert_int_le(X509_verify(x, ca), 0);
	X509_free(x);
	OPENSSL_free(der);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
}

START_TEST(test_installed)
{
	int	want = OpenSSL_version_num() < 0x30200000L &&
	    getenv("MTLSPROXY_PROVIDER_KEYS") == NULL;

	ENGINE	*e;

	ck_assert_int_eq(tls_init(), 0);	/* installs it */
	e = ENGINE_get_pkey_meth_engine(EVP_PKEY_EC);
	ck_assert_int_eq(e != NULL ? 1 : 0, want);
	if (e != NULL)
		ENGINE_finish(e);
}
END_TEST

START_TEST(test_ec)
{
	ck_assert_int_eq(tls_init(), 0);
	check_type("EC", 0);
}
END_TEST

START_TEST(test_rsa_pkcs1)
{
	ck_assert_int_eq(tls_init(), 0);
	check_type("RSA", RSA_PKCS1_PADDING);
}
END_TEST

START_TEST(test_rsa_pss)
{
	ck_assert_int_eq(tls_init(), 0);
	check_type("RSA", RSA_PKCS1_PSS_PADDING);
}
END_TEST

Suite *
keydecode_suite(void)
{
	Suite	*s = suite_create("keydecode");
	TCase	*tc = tcase_create("keydecode");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_installed);
	tcase_add_test(tc, test_ec);
	tcase_add_test(tc, test_rsa_pkcs1);
	tcase_add_test(tc, test_rsa_pss);
	suite_add_tcase(s, tc);
	return s;
}
