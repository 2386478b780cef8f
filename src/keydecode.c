/*
 * keydecode.c - decode certificate public keys the cheap way on OpenSSL
 * 3.0 and 3.1.
 *
 * Every full mTLS handshake parses the client's certificate with d2i_X509.
 * On OpenSSL 3.0 and 3.1 that builds a fresh OSSL_DECODER chain for the
 * certificate's public key each time (OSSL_DECODER_CTX_new_for_pkey walks
 * every decoder of every provider); measured with callgrind this is about a
 * third of the server's instructions in a P-256 handshake. OpenSSL 3.2 caches
 * the chain, so there is nothing to do there.
 *
 * d2i_X509 in 3.0/3.1 first asks whether an ENGINE supplies the key type's
 * EVP_PKEY_METHOD and, if one does, decodes the key with the library's own
 * built-in ASN.1 method instead, which costs a few microseconds. So we
 * register an ENGINE whose only content is OpenSSL's own built-in EC and
 * RSA methods (EVP_PKEY_meth_find): no crypto of ours, the same code
 * verifies the signatures, just without the decoder walk. Keys that
 * OpenSSL loads from files (the server's private key, PKCS#12) still go
 * through providers. Not done under FIPS mode, where every operation must
 * stay inside the FIPS provider, nor when MTLSPROXY_PROVIDER_KEYS is set in
 * the environment (to compare, or to rule it out).
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* the ENGINE API is deprecated in 3.0 */

#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

#include "mtlsproxy.h"

#if !defined(OPENSSL_NO_ENGINE) && OPENSSL_VERSION_NUMBER < 0x30200000L
static const int keydecode_nids[] = { EVP_PKEY_EC, EVP_PKEY_RSA };

static int
keydecode_pmeths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids,
    int nid)
{
	(void)e;
	if (pmeth == NULL) {
		*nids = keydecode_nids;
		return (int)(sizeof(keydecode_nids) / sizeof(keydecode_nids[0]));
	}
	*pmeth = (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(nid);
	return *pmeth != NULL;
}
#endif

/* Returns 1 if installed, 0 if not wanted or not possible here. */
int
keydecode_install(void)
{
#if !defined(OPENSSL_NO_ENGINE) && OPENSSL_VERSION_NUMBER < 0x30200000L
	ENGINE *e;
	int ok;

	if (getenv("MTLSPROXY_PROVIDER_KEYS") != NULL)
		return 0;
	if (OpenSSL_version_num() >= 0x30200000L ||
	    EVP_default_properties_is_fips_enabled(NULL))
		return 0;
	if ((e = ENGINE_new()) == NULL)
		return 0;
	ok = ENGINE_set_id(e, "mtlsproxy-keydecode") &&
	    ENGINE_set_name(e, "built-in EC and RSA key methods") &&
	    ENGINE_set_pkey_meths(e, keydecode_pmeths) &&
	    ENGINE_add(e) &&
	    ENGINE_set_default_pkey_meths(e);
	ENGINE_free(e);
	return ok ? 1 : 0;
#else
	return 0;
#endif
}
