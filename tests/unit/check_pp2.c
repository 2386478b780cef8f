/*
 * check_pp2.c - the PROXY protocol v2 header, decoded byte by byte, for
 * real TLS sessions: an in-process client and server shake hands over an
 * OpenSSL BIO pair with certificates built here (no files, no sockets).
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtlsproxy.h"
#include "check_suites.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define BIG		(70 * 1024)	/* more than any header can be */

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Per test: the server side, and the client the server saw. */
static EVP_PKEY		*srv_key, *cli_key;
static X509		*srv_cert, *cli_cert;
static SSL_CTX		*sctx, *cctx;
static SSL		*server, *client;
static SSL_SESSION	*saved;		/* for the resumption test */
static unsigned char	*buf;		/* BIG bytes */
static struct sockaddr_in src4, dst4;

/* One TLV as found in the header. */
struct tlv {
	unsigned		 type;
	const unsigned char	*v;
	size_t			 len;
};

/* -- reference CRC32C, bit by bit, independent of the table in the code -- */

static uint32_t
ref_crc32c(const unsigned char *p, size_t n)
{
	uint32_t	crc = 0xffffffff;
	int		k;

	while (n-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78 : 0);
	}
	return ~crc;
}

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* -- certificates and the in-memory handshake -- */

/* A self-signed certificate for key, CN given as bytes of ASN.1 type. */
static X509 *
make_cert(EVP_PKEY *key, int type, const void *cn, int cnlen,
    size_t comment_len)
{
	X509		*x;
	X509_NAME	*name;
	X509_EXTENSION	*e;
	char		*comment;

	ck_assert_ptr_nonnull(x = X509_new());
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	name = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Demo Corp", -1, -1, 0), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_NID(name, NID_commonName,
	    type, cn, cnlen, -1, 0), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
	if (comment_len > 0) {
		/* Fattens the DER past what PP2_MAX_HEADER holds. */
		comment = xmalloc(comment_len + 1);
		memset(comment, 'x', comment_len);
		comment[comment_len] = '\0';
		ck_assert_ptr_nonnull(e = X509V3_EXT_conf_nid(NULL, NULL,
		    NID_netscape_comment, comment));
		ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
		free(comment);
	}
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

/* The server takes any client certificate: pp2_build runs after policy. */
static int
accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

/* Contexts for a client with cli_key/cli_cert, TLS version vers. */
static void
make_ctxs(int vers)
{
	static const unsigned char sid[] = "check_pp2";

	ck_assert_ptr_nonnull(sctx = SSL_CTX_new(TLS_server_method()));
	ck_assert_int_eq(SSL_CTX_use_certificate(sctx, srv_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(sctx, srv_key), 1);
	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	ck_assert_int_eq(SSL_CTX_set_session_id_context(sctx, sid,
	    sizeof(sid) - 1), 1);
	ck_assert_ptr_nonnull(cctx = SSL_CTX_new(TLS_client_method()));
	ck_assert_int_eq(SSL_CTX_use_certificate(cctx, cli_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(cctx, cli_key), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(cctx, vers), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, vers), 1);
	ck_assert_int_eq(SSL_CTX_set_ciphersuites(cctx,
	    "TLS_AES_256_GCM_SHA384"), 1);
	ck_assert_int_eq(SSL_CTX_set_cipher_list(cctx,
	    "ECDHE-ECDSA-AES256-GCM-SHA384"), 1);
}

static void
step(SSL *ssl, bool *done)
{
	int	r, e;

	if (*done)
		return;
	if ((r = SSL_do_handshake(ssl)) == 1) {
		*done = true;
		return;
	}
	e = SSL_get_error(ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
		ERR_print_errors_fp(stderr);
		ck_abort_msg("handshake failed: SSL_get_error %d", e);
	}
}

/* A full handshake between fresh client and server SSLs (resuming sess). */
static void
handshake(SSL_SESSION *sess)
{
	BIO	*cb, *sb;
	bool	 cdone = false, sdone = false;
	int	 i;
	char	 c;

	/* A clean end, or OpenSSL marks the session not resumable. */
	if (client != NULL)
		SSL_set_shutdown(client, SSL_SENT_SHUTDOWN);
	SSL_free(client);
	SSL_free(server);
	ck_assert_ptr_nonnull(client = SSL_new(cctx));
	ck_assert_ptr_nonnull(server = SSL_new(sctx));
	/* Room for everything: TLS 1.3 tickets carry the client cert. */
	ck_assert_int_eq(BIO_new_bio_pair(&cb, 256 * 1024, &sb, 256 * 1024),
	    1);
	SSL_set_bio(client, cb, cb);
	SSL_set_bio(server, sb, sb);
	if (sess != NULL)
		ck_assert_int_eq(SSL_set_session(client, sess), 1);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (i = 0; i < 100 && !(cdone && sdone); i++) {
		step(client, &cdone);
		step(server, &sdone);
	}
	ck_assert_msg(cdone && sdone, "handshake did not finish");
	/* Let the client read the TLS 1.3 session tickets. */
	ck_assert_int_le(SSL_read(client, &c, 1), 0);
	ck_assert_ptr_nonnull(SSL_get0_peer_certificate(server));
}

static void
setup(void)
{
	srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	cli_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	ck_assert_ptr_nonnull(srv_key);
	ck_assert_ptr_nonnull(cli_key);
	srv_cert = make_cert(srv_key, MBSTRING_UTF8, "localhost", -1, 0);
	cli_cert = make_cert(cli_key, MBSTRING_UTF8, "orders", -1, 0);
	sctx = cctx = NULL;
	server = client = NULL;
	saved = NULL;
	buf = xmalloc(BIG);
	memset(buf, 0xaa, BIG);

	memset(&src4, 0, sizeof(src4));
	src4.sin_family = AF_INET;
	src4.sin_port = htons(54321);
	ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.10", &src4.sin_addr), 1);
	memset(&dst4, 0, sizeof(dst4));
	dst4.sin_family = AF_INET;
	dst4.sin_port = htons(8443);
	ck_assert_int_eq(inet_pton(AF_INET, "198.51.100.7", &dst4.sin_addr),
	    1);
}

static void
teardown(void)
{
	free(buf);
	SSL_SESSION_free(saved);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	X509_free(cli_cert);
	X509_free(srv_cert);
	EVP_PKEY_free(cli_key);
	EVP_PKEY_free(srv_key);
}

/* -- decoding -- */

/* Split [p, p + n) into TLVs; they must tile it exactly. */
static size_t
split(const unsigned char *p, size_t n, struct tlv *t, size_t max)
{
	size_t	off = 0, k = 0;

	while (off < n) {
		ck_assert_msg(n - off >= 3, "truncated TLV header at %zu", off);
		ck_assert_uint_lt(k, max);
		t[k].type = p[off];
		t[k].len = get16(p + off + 1);
		t[k].v = p + off + 3;
		ck_assert_msg(t[k].len <= n - off - 3,
		    "TLV 0x%02x at %zu: length %zu runs past the end",
		    t[k].type, off, t[k].len);
		off += 3 + t[k].len;
		k++;
	}
	return k;
}

static const struct tlv *
find(const struct tlv *t, size_t n, unsigned type)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (t[i].type == type)
			return &t[i];
	return NULL;
}

#define TLV_STR_EQ(t, s) do {						\
	ck_assert_ptr_nonnull(t);					\
	ck_assert_uint_eq((t)->len, strlen(s));				\
	ck_assert_mem_eq((t)->v, (s), strlen(s));			\
} while (0)

/*
 * Check the fixed part and the CRC of a header of n bytes; return the
 * offset of its first TLV. The CRC TLV must be the last one.
 */
static size_t
check_frame(const unsigned char *h, int n, unsigned ver_cmd, unsigned fam,
    size_t addrlen)
{
	unsigned char	*copy;
	uint32_t	 crc;

	ck_assert_int_ge(n, 16 + (int)addrlen + 7);
	ck_assert_mem_eq(h, sig, sizeof(sig));
	ck_assert_uint_eq(h[12], ver_cmd);
	ck_assert_uint_eq(h[13], fam);
	ck_assert_uint_eq(get16(h + 14), (unsigned)n - 16);

	/* Last TLV: type 0x03, length 4, CRC32C over all with it zeroed. */
	ck_assert_uint_eq(h[n - 7], 0x03);
	ck_assert_uint_eq(get16(h + n - 6), 4);
	crc = get32(h + n - 4);
	copy = xmalloc((size_t)n);
	memcpy(copy, h, (size_t)n);
	memset(copy + n - 4, 0, 4);
	ck_assert_uint_eq(ref_crc32c(copy, (size_t)n), crc);
	ck_assert_uint_eq(pp2_crc32c(copy, (size_t)n), crc);
	free(copy);
	return 16 + addrlen;
}

/* The sub-TLVs of the one PP2_TYPE_SSL TLV; checks client and verify. */
static size_t
ssl_subs(const unsigned char *h, int n, size_t first, unsigned flags,
    struct tlv *sub, size_t max)
{
	struct tlv		 top[8];
	const struct tlv	*ssl;
	size_t			 ntop;

	ntop = split(h + first, (size_t)n - first, top, NITEMS(top));
	ck_assert_uint_eq(ntop, 2);
	ck_assert_uint_eq(top[0].type, 0x20);
	ck_assert_uint_eq(top[1].type, 0x03);
	ssl = &top[0];
	ck_assert_uint_ge(ssl->len, 5);
	ck_assert_uint_eq(ssl->v[0], flags);
	ck_assert_uint_eq(get32(ssl->v + 1), 0);	/* verified */
	return split(ssl->v + 5, ssl->len - 5, sub, max);
}

/* The DER of x, for comparing with the 0x28 sub-TLV. */
static unsigned char *
der(X509 *x, int *len)
{
	unsigned char	*d = NULL;

	ck_assert_int_gt(*len = i2d_X509(x, &d), 0);
	return d;
}

/* -- tests -- */

/* The server's side of ALPN in these tests: h2 if the client offers it. */
static int
select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2";
	unsigned char	*sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2) - 1, in,
	    inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * An agreed application protocol travels as PP2_TYPE_ALPN, before the SSL
 * TLV; without one (the other tests) there is no ALPN TLV at all.
 */
START_TEST(test_alpn_tlv)
{
	static const unsigned char offer[] = "\x08http/1.1\x02h2";
	struct tlv	 top[8], sub[8];
	size_t		 first, ntop;
	int		 n;

	make_ctxs(TLS1_3_VERSION);
	SSL_CTX_set_alpn_select_cb(sctx, select_h2, NULL);
	ck_assert_int_eq(SSL_CTX_set_alpn_protos(cctx, offer,
	    sizeof(offer) - 1), 0);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	ck_assert_int_gt(n, 0);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	ntop = split(buf + first, (size_t)n - first, top, NITEMS(top));
	ck_assert_uint_eq(ntop, 3);
	ck_assert_uint_eq(top[0].type, 0x01);
	TLV_STR_EQ(&top[0], "h2");
	ck_assert_uint_eq(top[1].type, 0x20);
	ck_assert_uint_eq(top[2].type, 0x03);
	ck_assert_uint_eq(split(top[1].v + 5, top[1].len - 5, sub,
	    NITEMS(sub)), 6);
	TLV_STR_EQ(find(sub, 6, 0x22), "orders");
}
END_TEST

START_TEST(test_crc32c_vectors)
{
	unsigned char	b[32];

	/* The check value of CRC-32C, and RFC 3720 B.4's all-0/all-1. */
	ck_assert_uint_eq(pp2_crc32c("123456789", 9), 0xe3069283);
	ck_assert_uint_eq(pp2_crc32c("", 0), 0);
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(pp2_crc32c(b, sizeof(b)), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(pp2_crc32c(b, sizeof(b)), 0x62a8ab43);
	ck_assert_uint_eq(ref_crc32c((const unsigned char *)"123456789", 9),
	    0xe3069283);
}
END_TEST

START_TEST(test_ipv4_tls13_every_byte)
{
	static const unsigned char addrs[12] = {
		192, 0, 2, 10,			/* source */
		198, 51, 100, 7,		/* destination */
		0xd4, 0x31,			/* 54321 */
		0x20, 0xfb			/* 8443 */
	};
	struct tlv	 sub[8];
	unsigned char	*d;
	size_t		 first, nsub;
	int		 n, dlen;

	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(buf[n], 0xaa);	/* nothing written past n */

	first = check_frame(buf, n, 0x21, 0x11, 12);
	ck_assert_mem_eq(buf + 16, addrs, sizeof(addrs));

	/* SSL, CERT_CONN and CERT_SESS: a full handshake with a cert. */
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	ck_assert_uint_eq(nsub, 6);
	ck_assert_uint_eq(sub[0].type, 0x21);
	TLV_STR_EQ(&sub[0], "TLSv1.3");
	ck_assert_uint_eq(sub[1].type, 0x22);
	TLV_STR_EQ(&sub[1], "orders");
	ck_assert_uint_eq(sub[2].type, 0x23);
	TLV_STR_EQ(&sub[2], "TLS_AES_256_GCM_SHA384");
	ck_assert_uint_eq(sub[3].type, 0x24);
	TLV_STR_EQ(&sub[3], "ecdsa-with-SHA256");
	ck_assert_uint_eq(sub[4].type, 0x25);
	TLV_STR_EQ(&sub[4], "EC256");
	ck_assert_uint_eq(sub[5].type, 0x28);
	d = der(cli_cert, &dlen);
	ck_assert_uint_eq(sub[5].len, (size_t)dlen);
	ck_assert_mem_eq(sub[5].v, d, (size_t)dlen);
	OPENSSL_free(d);
}
END_TEST

START_TEST(test_ipv6)
{
	struct sockaddr_in6	 s6, d6;
	unsigned char		 want[36];
	struct tlv		 sub[8];
	size_t			 first;
	int			 n;

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(40000);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr), 1);
	memset(&d6, 0, sizeof(d6));
	d6.sin6_family = AF_INET6;
	d6.sin6_port = htons(443);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8:ffff::2",
	    &d6.sin6_addr), 1);
	memcpy(want, &s6.sin6_addr, 16);
	memcpy(want + 16, &d6.sin6_addr, 16);
	want[32] = 0x9c;			/* 40000 */
	want[33] = 0x40;
	want[34] = 0x01;			/* 443 */
	want[35] = 0xbb;
	ck_assert_uint_eq(want[0], 0x20);	/* 2001:... network order */
	ck_assert_uint_eq(want[15], 0x01);

	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&s6,
	    (struct sockaddr *)&d6, server);
	first = check_frame(buf, n, 0x21, 0x21, 36);
	ck_assert_mem_eq(buf + 16, want, sizeof(want));
	ck_assert_uint_eq(ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub)), 6);
	TLV_STR_EQ(find(sub, 6, 0x22), "orders");
}
END_TEST

START_TEST(test_v4_mapped_is_ipv4)
{
	struct sockaddr_in6	 s6, d6;
	static const unsigned char want[12] = {
		127, 0, 0, 1, 127, 0, 0, 2, 0x30, 0x39, 0x01, 0xbb
	};
	int			 n;

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(12345);
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.1",
	    &s6.sin6_addr), 1);
	d6 = s6;
	d6.sin6_port = htons(443);
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.2",
	    &d6.sin6_addr), 1);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&s6,
	    (struct sockaddr *)&d6, NULL);
	ck_assert_int_eq(n, 16 + 12 + 7);
	check_frame(buf, n, 0x21, 0x11, 12);
	ck_assert_mem_eq(buf + 16, want, sizeof(want));
}
END_TEST

START_TEST(test_unix_is_local_unspec)
{
	struct sockaddr_un	 su;
	struct tlv		 sub[8];
	size_t			 first;
	int			 n;

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, "/run/mtlsproxy.sock");
	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&su,
	    (struct sockaddr *)&su, server);
	/* LOCAL, AF_UNSPEC, no address bytes; the TLVs still follow. */
	first = check_frame(buf, n, 0x20, 0x00, 0);
	ck_assert_uint_eq(first, 16);
	ck_assert_uint_eq(ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub)), 6);

	/* Two families at once cannot be said either. */
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&su, NULL);
	ck_assert_int_eq(n, 16 + 7);
	check_frame(buf, n, 0x20, 0x00, 0);
}
END_TEST

START_TEST(test_tls12_rsa_client)
{
	struct tlv	 sub[8];
	size_t		 first, nsub;
	int		 n;

	EVP_PKEY_free(cli_key);
	X509_free(cli_cert);
	ck_assert_ptr_nonnull(cli_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	    (size_t)2048));
	cli_cert = make_cert(cli_key, MBSTRING_UTF8, "billing", -1, 0);
	make_ctxs(TLS1_2_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	ck_assert_uint_eq(nsub, 6);
	TLV_STR_EQ(find(sub, nsub, 0x21), "TLSv1.2");
	TLV_STR_EQ(find(sub, nsub, 0x22), "billing");
	TLV_STR_EQ(find(sub, nsub, 0x23), "ECDHE-ECDSA-AES256-GCM-SHA384");
	TLV_STR_EQ(find(sub, nsub, 0x24), "RSA-SHA256");
	TLV_STR_EQ(find(sub, nsub, 0x25), "RSA2048");
}
END_TEST

START_TEST(test_cn_bmpstring_as_utf8)
{
	/* "Jü Ω" in UCS-2 big endian, as a BMPString in the certificate. */
	static const unsigned char ucs2[] = {
		0x00, 0x4a, 0x00, 0xfc, 0x00, 0x20, 0x03, 0xa9
	};
	struct tlv	 sub[8];
	size_t		 first, nsub;
	int		 n;

	X509_free(cli_cert);
	cli_cert = make_cert(cli_key, V_ASN1_BMPSTRING, ucs2, sizeof(ucs2), 0);
	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	TLV_STR_EQ(find(sub, nsub, 0x22), "J\xc3\xbc \xce\xa9");
}
END_TEST

/* No control byte reaches the TLV: \XX as in the headers; UTF-8 kept. */
START_TEST(test_cn_control_bytes_escaped)
{
	static const char cn[] = "a\r\nX-Injected: 1\x01\x7f\\z \xc3\xab";
	struct tlv	 sub[8];
	size_t		 first, nsub;
	int		 n;

	X509_free(cli_cert);
	cli_cert = make_cert(cli_key, MBSTRING_UTF8, cn, -1, 0);
	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	TLV_STR_EQ(find(sub, nsub, 0x22),
	    "a\\0D\\0AX-Injected: 1\\01\\7F\\5Cz \xc3\xab");
}
END_TEST

START_TEST(test_resumed_session_has_no_cert_on_conn)
{
	struct tlv	 sub[8];
	unsigned char	*d;
	size_t		 first, nsub;
	int		 n, dlen;

	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	ck_assert_ptr_nonnull(saved = SSL_get1_session(client));
	ck_assert_int_eq(SSL_SESSION_is_resumable(saved), 1);
	handshake(saved);
	ck_assert_int_eq(SSL_session_reused(server), 1);
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	/* SSL and CERT_SESS, not CERT_CONN; the identity is still there. */
	nsub = ssl_subs(buf, n, first, 0x05, sub, NITEMS(sub));
	TLV_STR_EQ(find(sub, nsub, 0x22), "orders");
	d = der(cli_cert, &dlen);
	ck_assert_ptr_nonnull(find(sub, nsub, 0x28));
	ck_assert_uint_eq(find(sub, nsub, 0x28)->len, (size_t)dlen);
	ck_assert_mem_eq(find(sub, nsub, 0x28)->v, d, (size_t)dlen);
	OPENSSL_free(d);
}
END_TEST

START_TEST(test_big_cert_left_out)
{
	struct tlv	 sub[8];
	size_t		 first, nsub;
	int		 n, dlen;
	unsigned char	*d;

	X509_free(cli_cert);
	cli_cert = make_cert(cli_key, MBSTRING_UTF8, "orders", -1, 9000);
	d = der(cli_cert, &dlen);
	ck_assert_int_gt(dlen, PP2_MAX_HEADER);
	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);

	/* In PP2_MAX_HEADER: everything but the certificate. */
	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, PP2_MAX_HEADER);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	ck_assert_uint_eq(nsub, 5);
	ck_assert_ptr_null(find(sub, nsub, 0x28));
	TLV_STR_EQ(find(sub, nsub, 0x22), "orders");

	/* With room, it goes in whole. */
	n = pp2_build(buf, BIG, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	first = check_frame(buf, n, 0x21, 0x11, 12);
	nsub = ssl_subs(buf, n, first, 0x07, sub, NITEMS(sub));
	ck_assert_uint_eq(nsub, 6);
	ck_assert_uint_eq(find(sub, nsub, 0x28)->len, (size_t)dlen);
	ck_assert_mem_eq(find(sub, nsub, 0x28)->v, d, (size_t)dlen);
	OPENSSL_free(d);
}
END_TEST

START_TEST(test_buffer_limits)
{
	int		 full, nocert, n, dlen, i;
	unsigned char	*d;

	make_ctxs(TLS1_3_VERSION);
	handshake(NULL);
	d = der(cli_cert, &dlen);
	OPENSSL_free(d);
	full = pp2_build(buf, BIG, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	nocert = full - 3 - dlen;

	/* Exactly enough; one byte short drops only the certificate. */
	ck_assert_int_eq(pp2_build(buf, (size_t)full,
	    (struct sockaddr *)&src4, (struct sockaddr *)&dst4, server), full);
	memset(buf, 0xaa, BIG);
	n = pp2_build(buf, (size_t)full - 1, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, server);
	ck_assert_int_eq(n, nocert);
	check_frame(buf, n, 0x21, 0x11, 12);
	ck_assert_int_eq(pp2_build(buf, (size_t)nocert,
	    (struct sockaddr *)&src4, (struct sockaddr *)&dst4, server),
	    nocert);

	/* Less than the rest: -1, and never a byte past len. */
	memset(buf, 0xaa, BIG);
	ck_assert_int_eq(pp2_build(buf, (size_t)nocert - 1,
	    (struct sockaddr *)&src4, (struct sockaddr *)&dst4, server), -1);
	for (i = nocert - 1; i < BIG; i++)
		ck_assert_uint_eq(buf[i], 0xaa);
	memset(buf, 0xaa, BIG);
	ck_assert_int_eq(pp2_build(buf, 20, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, NULL), -1);
	ck_assert_int_eq(pp2_build(buf, 0, NULL, NULL, NULL), -1);
	for (i = 20; i < BIG; i++)
		ck_assert_uint_eq(buf[i], 0xaa);
}
END_TEST

START_TEST(test_no_ssl_addresses_and_crc)
{
	int	n;

	n = pp2_build(buf, PP2_MAX_HEADER, (struct sockaddr *)&src4,
	    (struct sockaddr *)&dst4, NULL);
	ck_assert_int_eq(n, 16 + 12 + 7);
	ck_assert_uint_eq(check_frame(buf, n, 0x21, 0x11, 12), 28);
	ck_assert_uint_eq(buf[28], 0x03);
}
END_TEST

Suite *
pp2_suite(void)
{
	Suite	*s = suite_create("pp2");
	TCase	*tc = tcase_create("header");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_crc32c_vectors);
	tcase_add_test(tc, test_ipv4_tls13_every_byte);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_v4_mapped_is_ipv4);
	tcase_add_test(tc, test_unix_is_local_unspec);
	tcase_add_test(tc, test_tls12_rsa_client);
	tcase_add_test(tc, test_cn_bmpstring_as_utf8);
	tcase_add_test(tc, test_cn_control_bytes_escaped);
	tcase_add_test(tc, test_resumed_session_has_no_cert_on_conn);
	tcase_add_test(tc, test_big_cert_left_out);
	tcase_add_test(tc, test_buffer_limits);
	tcase_add_test(tc, test_no_ssl_addresses_and_crc);
	tcase_add_test(tc, test_alpn_tlv);
	suite_add_tcase(s, tc);
	return s;
}
