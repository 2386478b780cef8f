/*
 * proxy_v2.c - the PROXY protocol v2 header a tcp backend reads first: the
 * client's addresses, what its verified certificate says (SSL TLVs), and a
 * CRC32C over the whole header. No libevent: unit tests link it alone.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mtlsproxy.h"

/* Wire values from haproxy's doc/proxy-protocol.txt. */
#define PP2_SIGNATURE		"\r\n\r\n\0\r\nQUIT\n"
#define PP2_SIGNATURE_LEN	12
#define PP2_HEADER_LEN		16	/* sig, ver_cmd, fam, len */
#define PP2_LEN_MAX		(PP2_HEADER_LEN + 0xffff)

#define PP2_CMD_LOCAL		0x20	/* version 2, LOCAL */
#define PP2_CMD_PROXY		0x21	/* version 2, PROXY */
#define PP2_FAM_UNSPEC		0x00
#define PP2_FAM_TCP4		0x11
#define PP2_FAM_TCP6		0x21

#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_SUBTYPE_SSL_SIG_ALG	0x24
#define PP2_SUBTYPE_SSL_KEY_ALG	0x25
#define PP2_SUBTYPE_SSL_CLIENT_CERT 0x28	/* spec revision 2026/01/15 */

#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

#define PP2_TLV_LEN		3	/* type, length (16 bits) */
#define PP2_CRC_TLV_LEN		(PP2_TLV_LEN + 4)

static const unsigned char pp2_zero[4];

/* An output buffer that notes, rather than overruns, what does not fit. */
struct pp2_out {
	unsigned char	*buf;		/* borrowed from the caller */
	size_t		 len;
	size_t		 off;
	bool		 full;
};

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, RFC 4960 appendix
 * B), four bits at a time: entry i is nibble i run through four shifts.
 */
static const uint32_t pp2_crc_nibble[16] = {
	0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
	0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
	0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
	0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75
};

/* CRC32C of n bytes, as the PP2_TYPE_CRC32C TLV carries it. */
uint32_t
pp2_crc32c(const void *p, size_t n)
{
	const unsigned char	*b = p;
	uint32_t		 crc = 0xffffffff;

	while (n-- > 0) {
		crc ^= *b++;
		crc = (crc >> 4) ^ pp2_crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ pp2_crc_nibble[crc & 0xf];
	}
	return crc ^ 0xffffffff;
}

static void
pp2_put(struct pp2_out *o, const void *p, size_t n)
{
	if (o->full || n > o->len - o->off) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->off, p, n);
	o->off += n;
}

static void
pp2_put8(struct pp2_out *o, unsigned v)
{
	unsigned char	b = (unsigned char)v;

	pp2_put(o, &b, 1);
}

static void
pp2_put16_at(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
pp2_put32_at(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Open a TLV; returns where its length goes, for pp2_tlv_end. */
static size_t
pp2_tlv_begin(struct pp2_out *o, unsigned type)
{
	size_t	at;

	pp2_put8(o, type);
	at = o->off;
	pp2_put(o, pp2_zero, 2);
	return at;
}

static void
pp2_tlv_end(struct pp2_out *o, size_t at)
{
	if (o->full)
		return;
	/* o->len is capped at PP2_LEN_MAX, so this fits in 16 bits. */
	pp2_put16_at(o->buf + at, o->off - at - 2);
}

static void
pp2_tlv(struct pp2_out *o, unsigned type, const void *p, size_t n)
{
	size_t	at;

	at = pp2_tlv_begin(o, type);
	pp2_put(o, p, n);
	pp2_tlv_end(o, at);
}

static void
pp2_tlv_str(struct pp2_out *o, unsigned type, const char *s)
{
	if (s != NULL && *s != '\0')
		pp2_tlv(o, type, s, strlen(s));
}

/*
 * Addresses and ports (already in network order in the sockaddrs); returns
 * the fam byte, PP2_FAM_UNSPEC with no address bytes for anything but a
 * TCP pair of one family (a unix socket listener, say).
 */
static unsigned
pp2_addrs(struct pp2_out *o, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	const struct sockaddr_in	*s4, *d4;
	const struct sockaddr_in6	*s6, *d6;

	if (src == NULL || dst == NULL || src->sa_family != dst->sa_family)
		return PP2_FAM_UNSPEC;
	if (src->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)src;
		d4 = (const struct sockaddr_in *)dst;
		pp2_put(o, &s4->sin_addr, 4);
		pp2_put(o, &d4->sin_addr, 4);
		pp2_put(o, &s4->sin_port, 2);
		pp2_put(o, &d4->sin_port, 2);
		return PP2_FAM_TCP4;
	}
	if (src->sa_family != AF_INET6)
		return PP2_FAM_UNSPEC;
	s6 = (const struct sockaddr_in6 *)src;
	d6 = (const struct sockaddr_in6 *)dst;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&d6->sin6_addr)) {
		/* An IPv4 client on a dual-stack listener: say IPv4. */
		pp2_put(o, &s6->sin6_addr.s6_addr[12], 4);
		pp2_put(o, &d6->sin6_addr.s6_addr[12], 4);
		pp2_put(o, &s6->sin6_port, 2);
		pp2_put(o, &d6->sin6_port, 2);
		return PP2_FAM_TCP4;
	}
	pp2_put(o, &s6->sin6_addr, 16);
	pp2_put(o, &d6->sin6_addr, 16);
	pp2_put(o, &s6->sin6_port, 2);
	pp2_put(o, &d6->sin6_port, 2);
	return PP2_FAM_TCP6;
}

/*
 * The first CN of the subject, as UTF-8. The certificate's owner chose it
 * and receivers put it into headers and log lines (nginx's
 * $proxy_protocol_tlv_ssl_cn), so a control byte (below 0x20, and 0x7f)
 * is written as \XX, upper-case hex, as the identity headers write them,
 * and so is a backslash, which keeps the rule reversible; other bytes,
 * UTF-8 included, are sent as they are.
 */
static void
pp2_tlv_cn(struct pp2_out *o, X509 *peer)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const X509_NAME		*name = X509_get_subject_name(peer);
	unsigned char		*utf8;
	char			*esc;
	size_t			 j;
	int			 i, n;

	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return;
	n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return;
	esc = xmalloc((size_t)n * 3 + 1);
	for (i = 0, j = 0; i < n; i++) {
		if (utf8[i] < 0x20 || utf8[i] == 0x7f || utf8[i] == '\\') {
			esc[j++] = '\\';
			esc[j++] = hex[utf8[i] >> 4];
			esc[j++] = hex[utf8[i] & 0xf];
		} else
			esc[j++] = (char)utf8[i];
	}
	pp2_tlv(o, PP2_SUBTYPE_SSL_CN, esc, j);
	free(esc);
	OPENSSL_free(utf8);
}

/* Key algorithm and size as haproxy spells it: "RSA2048", "EC256". */
static void
pp2_tlv_key_alg(struct pp2_out *o, X509 *peer)
{
	EVP_PKEY	*pk = X509_get0_pubkey(peer);
	const char	*name;
	char		 s[64];

	if (pk == NULL)
		return;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		snprintf(s, sizeof(s), "RSA%d", EVP_PKEY_get_bits(pk));
		break;
	case EVP_PKEY_EC:
		snprintf(s, sizeof(s), "EC%d", EVP_PKEY_get_bits(pk));
		break;
	case EVP_PKEY_DSA:
		snprintf(s, sizeof(s), "DSA%d", EVP_PKEY_get_bits(pk));
		break;
	default:
		/* haproxy sends nothing; the name says more ("ED25519"). */
		name = EVP_PKEY_get0_type_name(pk);
		snprintf(s, sizeof(s), "%s", name != NULL ? name : "");
		break;
	}
	pp2_tlv_str(o, PP2_SUBTYPE_SSL_KEY_ALG, s);
}

/*
 * The DER client certificate, only if it fits with the CRC TLV after it;
 * a receiver still gets the CN and the addresses when it does not.
 */
static void
pp2_tlv_cert(struct pp2_out *o, X509 *peer)
{
	unsigned char	*p;
	size_t		 at;
	int		 n;

	if (o->full || (n = i2d_X509(peer, NULL)) <= 0)
		return;
	if (PP2_TLV_LEN + (size_t)n + PP2_CRC_TLV_LEN > o->len - o->off) {
		log_debug("PROXY v2: client certificate (%d bytes) left out: "
		    "the header would exceed %zu bytes", n, o->len);
		return;
	}
	at = pp2_tlv_begin(o, PP2_SUBTYPE_SSL_CLIENT_CERT);
	p = o->buf + o->off;
	if (i2d_X509(peer, &p) != n) {
		/* Cannot happen after the sizing call; send no cert TLV. */
		o->off = at - 1;
		return;
	}
	o->off += (size_t)n;
	pp2_tlv_end(o, at);
}

/* PP2_TYPE_SSL and its sub-TLVs for the verified client of ssl. */
static void
pp2_tlv_ssl(struct pp2_out *o, SSL *ssl)
{
	X509		*peer = SSL_get0_peer_certificate(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	unsigned	 client = PP2_CLIENT_SSL;
	size_t		 at;
	int		 nid;

	if (peer != NULL) {
		client |= PP2_CLIENT_CERT_SESS;
		/* A resumed session's client sent no certificate this time. */
		if (!SSL_session_reused(ssl))
			client |= PP2_CLIENT_CERT_CONN;
	}
	at = pp2_tlv_begin(o, PP2_TYPE_SSL);
	pp2_put8(o, client);
	/* verify: 0 = verified; only verified, allowed clients get here. */
	pp2_put(o, pp2_zero, 4);
	pp2_tlv_str(o, PP2_SUBTYPE_SSL_VERSION, SSL_get_version(ssl));
	if (peer != NULL)
		pp2_tlv_cn(o, peer);
	if (cipher != NULL)
		pp2_tlv_str(o, PP2_SUBTYPE_SSL_CIPHER,
		    SSL_CIPHER_get_name(cipher));
	if (peer != NULL) {
		nid = X509_get_signature_nid(peer);
		if (nid != NID_undef)
			pp2_tlv_str(o, PP2_SUBTYPE_SSL_SIG_ALG,
			    OBJ_nid2sn(nid));
		pp2_tlv_key_alg(o, peer);
		pp2_tlv_cert(o, peer);
	}
	pp2_tlv_end(o, at);
}

/*
 * Write the whole PROXY v2 header for a client at src that reached dst,
 * over ssl (NULL: no SSL TLV); returns its length, or -1 if it does not fit
 * in len bytes even without the client certificate.
 */
int
pp2_build(unsigned char *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst, SSL *ssl)
{
	struct pp2_out	 o;
	const unsigned char *alpn;
	size_t		 crc_at;
	unsigned	 fam, alen = 0;

	o.buf = buf;
	o.len = len < PP2_LEN_MAX ? len : PP2_LEN_MAX;
	o.off = 0;
	o.full = false;

	pp2_put(&o, PP2_SIGNATURE, PP2_SIGNATURE_LEN);
	pp2_put(&o, pp2_zero, 4);	/* ver_cmd, fam, len: below */
	fam = pp2_addrs(&o, src, dst);
	if (ssl != NULL) {
		/* The application protocol agreed on (tls.alpn), if any. */
		SSL_get0_alpn_selected(ssl, &alpn, &alen);
		if (alen > 0)
			pp2_tlv(&o, PP2_TYPE_ALPN, alpn, alen);
		pp2_tlv_ssl(&o, ssl);
	}
	crc_at = o.off;
	pp2_tlv(&o, PP2_TYPE_CRC32C, pp2_zero, 4);
	if (o.full)
		return -1;

	/*
	 * LOCAL for addresses the protocol cannot carry, as haproxy does:
	 * a receiver must then accept the connection and use its own view.
	 */
	buf[PP2_SIGNATURE_LEN] = fam == PP2_FAM_UNSPEC ? PP2_CMD_LOCAL :
	    PP2_CMD_PROXY;
	buf[PP2_SIGNATURE_LEN + 1] = (unsigned char)fam;
	pp2_put16_at(buf + PP2_SIGNATURE_LEN + 2, o.off - PP2_HEADER_LEN);
	pp2_put32_at(buf + crc_at + PP2_TLV_LEN, pp2_crc32c(buf, o.off));
	return (int)o.off;
}
