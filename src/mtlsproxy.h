/*
 * mtlsproxy - an mTLS-enforcing reverse proxy.
 * Shared structures and prototypes, one section per source file.
 */
#ifndef MTLSPROXY_H
#define MTLSPROXY_H

#include <sys/types.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MTLSPROXY_VERSION	"0.1.0"
#define MTLSPROXY_CONFIG	"/etc/mtlsproxy/mtlsproxy.yaml"

#define PRINTF_LIKE(f, a)	__attribute__((format(printf, f, a)))

/* util.c */
struct strlist {
	char	**v;
	size_t	  n;
};

/* Messages collected while loading; each is "file:line:col: text". */
struct errlist {
	char	**v;
	size_t	  n;
};

enum addr_kind {
	ADDR_INET,		/* IPv4 or IPv6, in ss */
	ADDR_UNIX,		/* unix:/path, in ss */
	ADDR_SYSTEMD		/* systemd:NAME, socket activation */
};

struct addr {
	enum addr_kind		 kind;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			*name;		/* owned; systemd fd name */
	char			*text;		/* owned; as written */
};

#define ADDR_ALLOW_UNIX		0x1
#define ADDR_ALLOW_SYSTEMD	0x2
#define ADDR_ALLOW_WILDCARD	0x4	/* 0.0.0.0 and [::] (listeners) */

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xasprintf(const char *, ...) PRINTF_LIKE(1, 2);
struct timeval ms_timeval(uint64_t);
void	 strlist_add(struct strlist *, const char *);
void	 strlist_free(struct strlist *);
bool	 strlist_contains(const struct strlist *, const char *);
void	 errlist_add(struct errlist *, const char *, ...) PRINTF_LIKE(2, 3);
void	 errlist_free(struct errlist *);
int	 duration_parse(const char *, uint64_t *, const char **);
int	 addr_parse(const char *, int, struct addr *, const char **);
bool	 addr_is_loopback(const struct addr *);
void	 addr_free(struct addr *);
void	 addr_copy(struct addr *, const struct addr *);
const char *sockaddr_str(const struct sockaddr *, socklen_t, char *, size_t);
int	 hex_decode(const char *, unsigned char *, size_t);
extern const unsigned char tchar_map[256];

/* Whether c may be in a token (RFC 9110 5.6.2). */
static inline bool
is_tchar(unsigned char c)
{
	return tchar_map[c] != 0;
}
#define RELOAD_RETRIES	10	/* after a failed reload on a file change */
unsigned reload_retry_delay(unsigned);
bool	 log_due(time_t *, time_t);
uint64_t monotonic_ms(void);
unsigned long long nofile_limit(void);

/* cfg.c */
struct cfg_loc {
	unsigned	 line;		/* 1-based */
	unsigned	 col;		/* 1-based */
};

/* A file named in the config, with where it was named. */
struct cfg_file {
	char		*path;		/* owned; NULL when not set */
	struct cfg_loc	 loc;
};

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON
};

enum backend_mode {
	BACKEND_TCP,
	BACKEND_HTTP
};

enum client_eku {
	CLIENT_EKU_IF_PRESENT,
	CLIENT_EKU_REQUIRED
};

#define FINGERPRINT_LEN		32	/* SHA-256 */

/* Allow lists: every non-empty field must match; any value within one. */
struct cfg_allow {
	struct strlist	  subject_cn;
	struct strlist	  subject_ou;
	struct strlist	  subject_o;
	struct strlist	  san_dns;
	struct strlist	  san_uri;
	struct strlist	  san_email;
	unsigned char	(*fingerprint_sha256)[FINGERPRINT_LEN];
	size_t		  n_fingerprint_sha256;
	struct cfg_loc	  loc;
	/* Where each list was given (mtlsproxy check); 0:0 when not set. */
	struct cfg_loc	  subject_cn_loc;
	struct cfg_loc	  subject_ou_loc;
	struct cfg_loc	  subject_o_loc;
	struct cfg_loc	  san_dns_loc;
	struct cfg_loc	  san_uri_loc;
	struct cfg_loc	  san_email_loc;
	struct cfg_loc	  fingerprint_sha256_loc;
};

struct cfg_tls {
	struct cfg_file	 cert;
	struct cfg_file	 key;
	struct cfg_file	 key_passphrase_file;
	struct cfg_file	 pkcs12;
	struct cfg_file	 pkcs12_passphrase_file;
	int		 min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */
	char		*ciphers;	/* owned; NULL: OpenSSL default */
	struct cfg_loc	 ciphers_loc;
	char		*ciphersuites;	/* owned; NULL: OpenSSL default */
	struct cfg_loc	 ciphersuites_loc;
	char		*groups;	/* owned; NULL: OpenSSL default */
	struct cfg_loc	 groups_loc;
	bool		 session_tickets;
	struct cfg_file	 session_ticket_key_file;
	struct strlist	 alpn;		/* ALPN protocol IDs, preferred first */
	struct cfg_loc	*alpn_locs;	/* owned; one per alpn entry */
	struct cfg_loc	 loc;		/* the tls: mapping */
};

struct cfg_client_auth {
	struct cfg_file	 ca;
	struct cfg_file	*trusted_certs;
	size_t		 n_trusted_certs;
	struct cfg_file	 crl;
	int		 verify_depth;
	bool		 partial_chain;
	enum client_eku	 client_eku;
	struct cfg_allow allow;
	struct cfg_loc	 loc;		/* the client_auth: mapping */
};

enum backend_balance {
	BALANCE_FAILOVER,	/* the first address; the next when it fails */
	BALANCE_ROUND_ROBIN,	/* each connection starts at the next address */
	BALANCE_LEAST_CONN	/* at the one with the fewest connections */
};

struct cfg_backend {
	struct addr	*addrs;		/* owned; in the order written */
	size_t		 naddrs;
	enum backend_balance balance;
	bool		 remote;
	enum backend_mode mode;
	bool		 proxy_protocol;
	uint64_t	 connect_timeout_ms;
	uint64_t	 fail_timeout_ms; /* a failed address passed over */
	unsigned	 keepalive;	/* idle connections kept per worker */
	uint64_t	 keepalive_timeout_ms;
	struct cfg_loc	 loc;
};

enum header_preset {
	HEADERS_DEFAULT,	/* X-Client-* */
	HEADERS_NGINX,		/* X-SSL-Client-* as nginx users write them */
	HEADERS_ENVOY		/* X-Forwarded-Client-Cert */
};

/* Identity header names; NULL means the preset's name, "" means not sent. */
struct cfg_headers {
	enum header_preset preset;
	char		*verify;
	char		*subject;
	char		*issuer;
	char		*serial;
	char		*fingerprint;
	char		*san_dns;
	char		*san_uri;
	char		*cert;
	char		*xfcc;
	bool		 forwarded;	/* X-Forwarded-For/-Proto/-Host */
	struct cfg_loc	 loc;
};

struct cfg_listener {
	char		*name;		/* owned */
	struct cfg_loc	 loc;		/* the list item */
	bool		 tls_ok;	/* tls read without an error */
	bool		 client_auth_ok; /* client_auth read without one */
	struct addr	 listen;
	struct cfg_loc	 listen_loc;
	struct cfg_tls	 tls;
	struct cfg_client_auth client_auth;
	struct cfg_backend backend;
	uint64_t	 handshake_timeout_ms;
	uint64_t	 idle_timeout_ms;
	uint64_t	 backend_timeout_ms;	/* http: wait for a response */
	size_t		 max_header_size;	/* http: request head limit */
	struct cfg_headers headers;		/* http mode */
	unsigned	 max_connections;
};

enum reload_mode {
	RELOAD_WATCH,		/* SIGHUP, and when a referenced file changes */
	RELOAD_SIGNAL		/* SIGHUP only */
};

/* The plaintext admin endpoint (health, readiness, metrics). */
struct cfg_admin {
	struct addr	 listen;	/* kind 0 and text NULL: off */
	struct cfg_loc	 listen_loc;
	bool		 remote;	/* allow a non-loopback address */
	struct cfg_loc	 loc;
};

struct cfg {
	char		*path;		/* owned; as given */
	unsigned	 workers;	/* resolved: auto = CPUs */
	enum log_level	 log_level;
	enum log_format	 log_format;
	bool		 log_access;
	uint64_t	 drain_timeout_ms;
	uint64_t	 ticket_rotation_ms; /* generated ticket keys */
	int		 reload;	/* enum reload_mode */
	char		*user;		/* owned; drop to it after start-up */
	struct cfg_loc	 user_loc;
	char		*group;		/* owned */
	struct cfg_loc	 group_loc;
	struct cfg_admin admin;
	struct cfg_listener *listeners;	/* owned */
	size_t		 nlisteners;
};

struct cfg	*cfg_load(const char *, struct errlist *);
struct cfg	*cfg_load_partial(const char *, struct errlist *);
void		 cfg_free(struct cfg *);
unsigned long	 cfg_fd_fixed(const struct cfg *);
unsigned long	 cfg_fd_need(const struct cfg *);
unsigned	 cfg_fd_per_conn(const struct cfg_listener *);
#define CFG_FD_RESERVE	64	/* descriptors besides connections and sockets */
void		 cfg_error(struct errlist *, const struct cfg *, struct cfg_loc,
		    const char *, ...) PRINTF_LIKE(4, 5);

/* hdr.c */
/* Identity header rules of a listener, compiled at load. */
struct hdr_set;
struct hdr_set	*hdr_set_new(const struct cfg_headers *);
void		 hdr_set_free(struct hdr_set *);
bool		 hdr_is_reserved(const struct hdr_set *, const char *, size_t);
char		*hdr_identity_block(const struct hdr_set *, X509 *, size_t *);

/* proxy_v2.c */
#define PP2_MAX_HEADER	8192
int	 pp2_build(unsigned char *, size_t, const struct sockaddr *,
	    const struct sockaddr *, SSL *);
uint32_t pp2_crc32c(const void *, size_t);

/* watch.c */
struct event_base;
int	 watch_start(struct event_base *, const struct cfg *, void (*)(bool));
void	 watch_update(const struct cfg *);
void	 watch_retry(unsigned);
void	 watch_stop(void);

/* log.c */
void	log_init(enum log_level, enum log_format);
void	log_set(enum log_level, enum log_format);
extern enum log_level log_level_cur;
void	log_msg(enum log_level, const char *, ...) PRINTF_LIKE(2, 3);
void	log_errno(enum log_level, const char *, ...) PRINTF_LIKE(2, 3);
/* One field of a key=value event line; num: print unquoted (JSON number). */
struct log_field {
	const char	*k;
	const char	*v;		/* NULL: field omitted */
	bool		 num;
};
void	log_event(enum log_level, const char *, const struct log_field *, size_t);
void	fatalx(const char *, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));
#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warnx(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)	do { if (log_level_cur >= LOG_LEVEL_INFO) \
	log_msg(LOG_LEVEL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...)	do { if (log_level_cur >= LOG_LEVEL_DEBUG) \
	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

/* policy.c */
struct policy;
struct policy	*policy_new(const struct cfg_allow *, enum client_eku);
void		 policy_free(struct policy *);
int		 policy_check(const struct policy *, X509 *, char *, size_t);

/* Facts about a verified (or refused) client certificate. */
struct identity {
	char	*subject;	/* owned; RFC 4514 */
	char	*issuer;	/* owned; RFC 4514 */
	char	*serial;	/* owned; hex, upper case */
	char	*sha256;	/* owned; hex, lower case, no colons */
	char	*cn;		/* owned; first CN or NULL */
	time_t	 not_after;
};
void	identity_from_cert(struct identity *, X509 *);
void	identity_clear(struct identity *);
char	*x509_name_rfc4514(const X509_NAME *);

/* tls.c */
/* Why a client's certificate was refused; filled during the handshake. */
struct tls_verdict {
	const char	*code;		/* static reason code; NULL: none */
	char		 reason[512];	/* words, for the log */
	char		 crl_when[64];	/* date of a CRL that failed */
	char		 crl_issuer[256]; /* and its issuer (RFC 4514) */
	char		*subject;	/* owned; of the client's leaf */
	char		*issuer;	/* owned */
	/* explain.c: sees every verify-callback call; NULL in handshakes. */
	void		(*trace)(void *, int, X509_STORE_CTX *);
	void		*trace_arg;	/* borrowed */
};

/* Everything a listener needs for its handshakes, built at load. */
struct tls_server {
	SSL_CTX		*ctx;		/* owns */
	X509_STORE	*trusted_store;	/* owns; exact trusted_certs or NULL */
	STACK_OF(X509)	*trusted;	/* owns; the same certificates */
	unsigned char	(*trusted_fp)[FINGERPRINT_LEN]; /* owned */
	size_t		 ntrusted;
	struct policy	*policy;	/* owns */
	struct hdr_set	*hdrs;		/* owns; http mode */
	const struct cfg_listener *cfg;	/* borrowed from the runtime's cfg */
	time_t		 cert_not_after;
	uint64_t	 ticket_rotation_ms; /* generated ticket keys */
	struct vcache	*vcache;	/* owns; verified chains, or NULL */
	size_t		 li;		/* index of the listener */
	time_t		 crl_until;	/* earliest CRL nextUpdate, or 0 */
	STACK_OF(X509)	*cas;		/* owns; client_auth.ca's certificates */
	STACK_OF(X509_CRL) *crls;	/* owns; client_auth.crl's CRLs */
	unsigned char	*alpn;		/* owned; ALPN wire format, or NULL */
	size_t		 alpn_len;
};

int	 tls_init(void);
int	 keydecode_install(void);
int	 tls_server_init(struct tls_server *, const struct cfg *,
	    const struct cfg_listener *, struct errlist *);
void	 tls_server_check(const struct cfg *, const struct cfg_listener *,
	    struct errlist *);
void	 tls_server_clear(struct tls_server *);
SSL	*tls_ssl_new(const struct tls_server *, struct tls_verdict *);
void	 tls_verdict_clear(struct tls_verdict *);
void	 tls_verdict_from_errors(struct tls_verdict *, SSL *, unsigned long);
char	*tls_time_str(const ASN1_TIME *, char *, size_t);
char	*tls_key_str(X509 *, char *, size_t);
char	*tls_ku_str(X509 *, char *, size_t);
char	*tls_eku_str(X509 *, char *, size_t);
char	*tls_purpose_why(X509 *, bool, char *, size_t);
char	*tls_passphrase_path(const struct cfg *, const char *);
int	 tls_verify_offline(const struct tls_server *, X509 *,
	    STACK_OF(X509) *, struct tls_verdict *, STACK_OF(X509) **);
STACK_OF(X509) *tls_peer_intermediates(SSL *);
time_t	 tls_peer_chain_end(SSL *);

/* runtime.c */
/* An immutable, reference-counted build of one configuration. */
/*
 * What connects learn about a listener's backend addresses (atomic).
 * Reference-counted: a reload that keeps a listener's name and addresses
 * hands it on, so that connections made before it still count.
 */
struct backend_state {
	int		 refs;		/* atomic */
	size_t		 naddrs;
	unsigned	 next;		/* round_robin: where the next starts */
	uint64_t	*down_until;	/* owned; per address: monotonic ms */
	int		*active;	/* owned; per address: connections */
};

struct runtime {
	int		 refs;		/* atomic */
	uint64_t	 generation;
	struct cfg	*cfg;		/* owns */
	struct tls_server *servers;	/* owns; one per cfg listener */
	struct backend_state **backends; /* refs; one per cfg listener */
	size_t		 nservers;
};
struct runtime	*runtime_new(struct cfg *, struct errlist *);
void		 runtime_check_files(const struct cfg *, struct errlist *);
struct runtime	*runtime_ref(struct runtime *);
void		 runtime_unref(struct runtime *);

struct runtime	*runtime_current(void);
void		 runtime_set_current(struct runtime *);

/* metrics.c */
void	 metrics_init(const char *const *, size_t);
void	 metrics_free(void);
void	 metrics_conn_open(size_t);
void	 metrics_conn_close(size_t, uint64_t, uint64_t);
void	 metrics_handshake(size_t, const char *);
void	 metrics_verify_cache(size_t, bool);
void	 metrics_backend_fail(size_t);
void	 metrics_backend_up(size_t, bool);
void	 metrics_http_status(size_t, int);
void	 metrics_reload(bool);
char	*metrics_render(const struct runtime *, size_t *);

/* admin.c */
struct event_base;
void	 admin_start(struct event_base *, const struct cfg *);
void	 admin_reconfigure(const struct cfg *);
void	 admin_draining(void);
void	 admin_stop(void);

/* explain.c */
int	 check_main(int, char *[]);
int	 explain_main(int, char *[]);

/* listener.c */
struct worker;
struct session;

/* One configured listener, for the life of the process (survives reloads). */
struct lstate {
	char		*name;		/* owned */
	struct addr	 addr;		/* owned */
	int		*fds;		/* owned; one socket per worker */
	unsigned	 nconns;	/* atomic: established + handshaking */
	unsigned	 max;		/* atomic: max_connections now */
};

/* A worker's accept side of one listener. */
struct waccept {
	struct worker	*w;		/* borrowed */
	size_t		 li;		/* index in the listener table */
	int		 fd;		/* owns */
	struct event	*ev;		/* owns */
	struct event	*pause_ev;	/* owns; retry after a limit */
	bool		 paused;
};

int	 listener_open_all(struct runtime *, unsigned);
void	 listener_close_all(void);
struct lstate *listener_state(size_t);
size_t	 listener_count(void);
int	 listener_start(struct worker *);
void	 listener_stop(struct worker *);
void	 listener_conn_done(size_t);
int	 listener_reconcile(struct cfg *, struct errlist *);
void	 listener_apply(const struct cfg *);
void	 listener_fd_limit(const struct cfg *);
unsigned listener_max(const struct cfg *, size_t);

/* worker.c */
TAILQ_HEAD(session_list, session);
TAILQ_HEAD(pooled_list, pooled);

struct worker {
	unsigned	 idx;
	pthread_t	 thread;
	struct event_base *base;	/* owns */
	int		 cmd_fd;	/* owns; eventfd, the main thread's nudge */
	struct event	*cmd_ev;	/* owns; reads cmd_fd */
	unsigned	 cmds;		/* atomic; WORKER_CMD_* posted */
	uint64_t	 beat_usec;	/* watchdog heartbeat period */
	struct waccept	*acc;		/* owns; one per listener */
	size_t		 nacc;
	struct session_list sessions;
	struct pooled_list pool;	/* idle backend connections */
	unsigned	 nsessions;
	bool		 stopping;
	uint64_t	 next_id;
	struct event	*beat_ev;	/* owns; watchdog heartbeat timer */
	uint64_t	 beats;		/* atomic; bumped by beat_ev */
};

int	 worker_start_all(unsigned);
void	 worker_stop_all(void);
void	 worker_kill_all(void);
void	 worker_join_all(void);
void	 worker_reauth_all(void);
void	 worker_session_gone(struct worker *);
unsigned worker_count(void);
int	 worker_heartbeat_start(uint64_t);
uint64_t worker_heartbeat(unsigned);
unsigned worker_sessions(void);
unsigned worker_exited(void);

/* sd.c */
struct event_base;
const char *sd_version(void);
void	 sd_ready(void);
void	 sd_reloading(void);
void	 sd_reloaded(void);
void	 sd_stopping(void);
void	 sd_status(const char *, ...) PRINTF_LIKE(1, 2);
int	 sd_watchdog_start(struct event_base *);
void	 sd_end(void);
int	 sd_listen_take(const char *, char *, size_t);
void	 sd_listen_done(bool);

/* priv.c */
int	 priv_check(const struct cfg *, struct errlist *);
int	 priv_drop(const struct cfg *);

/* session.c */
struct evbuffer;

enum session_state {
	SESSION_HANDSHAKE,
	SESSION_WAITING,	/* http: verified, no request yet, no backend */
	SESSION_CONNECTING,
	SESSION_PROXYING,
	SESSION_LINGER		/* refused: draining before close */
};

/* One client connection and its backend connection. */
struct session {
	uint64_t		 id;
	struct worker		*w;		/* borrowed */
	struct runtime		*rt;		/* holds a reference */
	const struct tls_server	*srv;		/* in rt */
	size_t			 li;		/* listener index */
	enum session_state	 state;
	struct bufferevent	*client;	/* owns fd + SSL */
	int			 client_fd;	/* the client's socket */
	struct tlsout		*tout;		/* owned; records held back */
	int			 tout_err;	/* errno of a failed write */
	struct bufferevent	*backend;	/* owns fd */
	struct event		*bread;		/* owns; reads the backend */
	bool			 bread_big;	/* the last read was large */
	struct event		*timer;		/* owns; handshake/idle */
	size_t			 backend_idx;	/* address being tried */
	unsigned		 backend_tries;	/* this round's tries so far */
	unsigned		 backend_first;	/* this round's first address */
	uint64_t		 backend_down;	/* bit i: address i had failed */
	bool			 backend_reused; /* kept from another client */
	bool			 backend_fresh;	/* next connect: not a kept one */
	uint64_t		 fd_wait_ms;	/* waited for a descriptor */
	char			 peer[64];
	char			 backend_addr[128];
	struct tls_verdict	 verdict;
	struct identity		 ident;		/* see session_ident() */
	bool			 ident_done;
	uint64_t		 bytes_in;	/* client -> backend */
	uint64_t		 bytes_out;	/* backend -> client */
	struct timeval		 start;
	struct timeval		 last_active;
	bool			 client_eof;	/* client sent all it will */
	bool			 backend_eof;	/* backend sent all it will */
	bool			 client_shut;	/* close_notify sent */
	bool			 backend_shut;	/* shutdown(SHUT_WR) done */
	bool			 client_eof_first;
	struct http		*http;		/* owned; http mode */
	struct event		*linger_ev;	/* owns */
	struct event		*expiry;	/* owns; client cert notAfter */
	int			 linger_fd;	/* owns; -1: none */
	TAILQ_ENTRY(session)	 entry;
};

void	 session_new(struct worker *, size_t, int, struct sockaddr *,
	    socklen_t);
void	 session_close(struct session *, const char *);
void	 session_touch(struct session *);
const struct identity *session_ident(struct session *);
void	 session_read(struct session *, struct bufferevent *, bool);
void	 session_read_more(struct session *);
void	 session_client_enable(struct session *, short);
void	 session_proxy_start(struct session *);
void	 session_kick_write(struct session *, struct bufferevent *, size_t);
void	 session_send(struct session *, struct bufferevent *,
	    struct evbuffer *, size_t);
void	 session_backend_failed(struct session *);
void	 session_backend_drop(struct session *);
void	 session_connect(struct session *);
void	 session_reauth_all(struct worker *);
void	 session_drain(struct session *);

bool	 session_client_flushed(const struct session *);

/* tlsout.c */
bool	 tlsout_attach(struct session *, SSL *, int);
void	 tlsout_detach(SSL *);
bool	 tlsout_pending(const struct session *);

/* upstream.c */
void	 upstream_connect(struct session *);
void	 upstream_next(struct session *);
void	 upstream_attach(struct session *, struct bufferevent *);
struct bufferevent *upstream_detach(struct session *);
bool	 upstream_pool_put(struct session *);
void	 upstream_pool_clear(struct worker *);
bool	 upstream_fd_shed(struct worker *, const struct session *);
void	 upstream_pool_prune(struct worker *, const struct runtime *);

/* proxy_http.c */
struct http;
void	 http_start(struct session *);
void	 http_start_failed(struct session *);
void	 http_free(struct http *);
void	 http_unanswered(struct http *, const char *);
bool	 http_backend_idle(const struct http *);
void	 http_drain(struct http *);
bool	 http_backend_release(struct session *);

/* proxy_tcp.c */
void	 tcp_start(struct session *);

#endif /* MTLSPROXY_H */
