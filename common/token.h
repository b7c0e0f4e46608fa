/* token.h: the client JWT of SPEC 4.1 (RFC 7519), HS256 and EdDSA (Ed25519).
 *
 * token_verify() checks a compact JWS (header.payload.signature, base64url
 * without padding): the header's alg must be HS256 or EdDSA with a configured
 * key, the signature is verified over "header.payload" before the claims are
 * parsed, then the claims are type-checked and the times compared with leeway.
 * token_mint_*() build tokens for audiogwctl, the tests and the load tool.
 *
 * Nothing here logs or keeps the token. sodium_init() is called lazily.
 * Not for the per-frame path (jansson allocates). */
#ifndef AGW_TOKEN_H
#define AGW_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX_LEN 4096          /* longer tokens are rejected unread */
#define TOKEN_NAME_MAX 128          /* sub, room, each rooms entry, dev: bytes */
#define TOKEN_ROOMS_MAX 1024        /* bytes of the packed rooms list */

typedef struct token_claims {
	char sub[TOKEN_NAME_MAX + 1];   /* 1..128 bytes of visible ASCII (0x21..0x7e) */
	char room[TOKEN_NAME_MAX + 1];  /* 1..128 bytes, UTF-8, no control characters */
	/* Optional "rooms": the names packed one after another, each with its
	 * NUL, n_rooms of them. A "*" entry is not stored: it sets rooms_any. */
	char rooms[TOKEN_ROOMS_MAX];
	int n_rooms;
	int rooms_any;
	int64_t exp, nbf, iat;          /* unix seconds */
	int has_nbf, has_iat;
	int perm_listen;                /* "perm":"listen" = 1; "speak" or absent = 0 */
	char dev[TOKEN_NAME_MAX + 1];   /* optional, 0..128 bytes, "" when absent */
} token_claims;

typedef enum {
	TOKEN_OK = 0,
	TOKEN_MISSING,          /* NULL or empty */
	TOKEN_TOO_LONG,         /* > TOKEN_MAX_LEN */
	TOKEN_MALFORMED,        /* not 3 base64url parts, header/claims not a JSON object, bad typ/crit */
	TOKEN_BAD_ALG,          /* alg missing, not HS256/EdDSA, or its key is not configured */
	TOKEN_BAD_SIGNATURE,
	TOKEN_EXPIRED,          /* exp + leeway <= now */
	TOKEN_NOT_YET_VALID,    /* nbf or iat > now + leeway */
	TOKEN_BAD_CLAIMS        /* a claim missing, of the wrong type or out of bounds */
} token_status;

typedef struct token_keys {
	const unsigned char *hs256;       /* HMAC secret, any length; NULL or 0 = no HS256 */
	size_t hs256_len;
	const unsigned char *ed25519_pk;  /* 32 bytes; NULL = no EdDSA */
} token_keys;

/* jwt need not be NUL-terminated; out is zeroed first and only meaningful on
 * TOKEN_OK. leeway_s < 0 counts as 0. */
token_status token_verify(const char *jwt, size_t len, const token_keys *k,
	int64_t now_s, int64_t leeway_s, token_claims *out);

/* Short snake_case reason for audit, logs and the JSON error body:
 * "ok", "missing_token", "token_too_long", "malformed_token", "unsupported_alg",
 * "bad_signature", "expired", "not_yet_valid", "bad_claims". */
const char *token_status_reason(token_status s);

/* 1 if room is c->room, one of c->rooms, or c->rooms_any; else 0. */
int token_room_allowed(const token_claims *c, const char *room);

/* Appends a name to c->rooms ("*" sets rooms_any). 0, or -1 if it is not a
 * valid room name or the packed list is full. For building claims to mint. */
int token_claims_add_room(token_claims *c, const char *room);

/* Minting. The claims must pass the same checks token_verify applies
 * (has_nbf/has_iat select the optional times, dev "" is left out).
 * Writes a NUL-terminated token; returns its length or -1 (bad claims,
 * out too small, or longer than TOKEN_MAX_LEN). */
int token_mint_hs256(const token_claims *c, const unsigned char *key, size_t keylen,
	char *out, size_t outlen);
int token_mint_eddsa(const token_claims *c, const unsigned char sk[64],
	char *out, size_t outlen);

#endif
