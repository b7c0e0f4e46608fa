/* config.h: audiogwd.conf, the INI file of SPEC section 3.
 *
 * cfg_defaults() fills every key with its documented default; cfg_load_file()
 * and cfg_load_buffer() parse on top of it and collect every error as
 * "FILE:LINE: message" (or "FILE: message" when no single line is at fault),
 * then check cross-key rules and load the secret files. Relative paths are
 * kept as written: they are relative to the directory audiogwd started in. */
#ifndef AGW_CONFIG_H
#define AGW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CFG_MAX_LISTEN 16
#define CFG_MAX_ERRORS 64
#define CFG_PATH_MAX 512
#define CFG_AUTO (-1)              /* a duration key set to "auto" */

typedef struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];             /* as written, e.g. "0.0.0.0:8080" or "[::]:8080" */
} cfg_addr;

typedef struct cfg {
	char file[CFG_PATH_MAX];   /* the file it was read from, for messages */

	/* [server] */
	cfg_addr listen[CFG_MAX_LISTEN];
	int n_listen;              /* default: one entry 0.0.0.0:8080 */
	char path[128];            /* /v1/audio */
	int workers;               /* resolved: "auto" = online CPUs */
	int64_t max_connections;   /* 200000 */
	int64_t resume_window_ms;  /* 30s */
	char tls_cert[CFG_PATH_MAX];
	char tls_key[CFG_PATH_MAX];
	char user[64];
	char run_dir[CFG_PATH_MAX];/* ./run */

	/* [auth] */
	char hs256_secret_file[CFG_PATH_MAX];
	unsigned char hs256_secret[1024];
	size_t hs256_secret_len;   /* 0 = no HS256 */
	unsigned char ed25519_pk[32];
	int has_ed25519;
	int64_t leeway_ms;         /* 30s */

	/* [limits] */
	int64_t max_frame_bytes;   /* 1500 */
	int64_t frames_per_second; /* 100 */
	int64_t frames_burst;      /* 200 */
	int64_t max_conns_per_ip;  /* 1000 */
	int64_t max_conns_per_user;/* 3 */
	int64_t handshakes_per_second; /* 0 = unlimited */
	int64_t outbound_queue_frames; /* 64 */
	int64_t send_buffer;       /* 65536, 0 = kernel default */
	int64_t slow_consumer_timeout_ms; /* 5s */
	int64_t write_coalesce_ms;        /* 0: write at the end of every loop turn;
	                                     CFG_AUTO: paced by the loop's load (send.c) */

	/* [heartbeat] */
	int64_t heartbeat_interval_ms; /* 20s */
	int64_t heartbeat_timeout_ms;  /* 45s */

	/* [drain] */
	int64_t drain_timeout_ms;      /* 30s */
	int64_t reconnect_spread_ms;   /* 10s */

	/* [admin] */
	char admin_listen[128];        /* 127.0.0.1:9090, "" = off */
	char api_key_file[CFG_PATH_MAX];
	char api_key[256];             /* loaded from api_key_file, trailing whitespace removed */
	char control_socket[CFG_PATH_MAX]; /* ipc://./run/ctl.ipc */

	/* [audit] */
	char audit_database[CFG_PATH_MAX]; /* ./run/audit.db */
	int64_t audit_retention_ms;        /* 30d */

	/* [log] */
	int log_level;                 /* LOG_INFO, see log.h */
	char log_file[CFG_PATH_MAX];   /* "" = stderr */

	/* [downstream] (recording, RTP forward, tap: audiogwd-downstream(7)) */
	char downstream_allow[1024];   /* CIDR list: 127.0.0.0/8,::1/128 */
	char downstream_tap[CFG_PATH_MAX]; /* NNG URL of the tap, "" = off */
	char record_dir[CFG_PATH_MAX]; /* "" in the file = RUN_DIR/recordings */
} cfg;

typedef struct cfg_errors {
	int n;                         /* may exceed CFG_MAX_ERRORS; only that many kept */
	char msg[CFG_MAX_ERRORS][320];
} cfg_errors;

void cfg_defaults(cfg *c);
/* Both return the number of errors (0 = valid). */
int cfg_load_file(cfg *c, const char *file, cfg_errors *errs);
int cfg_load_buffer(cfg *c, const char *file, const char *text, cfg_errors *errs);
/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on error (errno). */
char *cfg_read_file(const char *file, size_t *len);

/* Value parsers, exposed for the unit tests and for audiogwctl arguments.
 * Each returns 0 on success, -1 with a message in err (size errlen). */
int cfg_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen);
int cfg_parse_size(const char *s, int64_t *bytes, char *err, size_t errlen);
int cfg_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
int cfg_parse_addr(const char *s, cfg_addr *a, char *err, size_t errlen);

#endif
