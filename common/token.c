/* token.c: JWT verification and minting (SPEC 4.1), see token.h.
 * Owns the compact-JWS parsing, the HS256/EdDSA signatures (libsodium) and
 * the claim rules. Every jansson object is released on every path. */
#include "common/token.h"

#include <sodium.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define HS256_SIG_LEN crypto_auth_hmacsha256_BYTES   /* 32 */
#define EDDSA_SIG_LEN crypto_sign_BYTES              /* 64 */

typedef enum { ALG_NONE = 0, ALG_HS256, ALG_EDDSA } token_alg;

/* ---- helpers ---------------------------------------------------------- */

static int sodium_ready(void)
{
	static atomic_int ready;
	if (atomic_load_explicit(&ready, memory_order_acquire))
		return 1;
	if (sodium_init() < 0)
		return 0;
	atomic_store_explicit(&ready, 1, memory_order_release);
	return 1;
}

/* Strict base64url (no padding, no whitespace, canonical trailing bits). */
static int b64url_decode(const char *s, size_t n, unsigned char *bin, size_t bin_max,
	size_t *bin_len)
{
	if (n == 0)
		return -1;
	return sodium_base642bin(bin, bin_max, s, n, NULL, bin_len, NULL, B64_VARIANT);
}

static void hmac_sha256(const unsigned char *key, size_t keylen,
	const char *msg, size_t msglen, unsigned char mac[HS256_SIG_LEN])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msglen);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
}

/* sub: visible ASCII only, so ids are unambiguous in logs and tables. */
static int valid_user_id(const char *s, size_t n)
{
	if (n < 1 || n > TOKEN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch > 0x7e)
			return 0;
	}
	return 1;
}

/* room, rooms entries, dev: any UTF-8 (jansson checked it) but no controls. */
static int valid_name(const char *s, size_t n, size_t min_len)
{
	if (n < min_len || n > TOKEN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return 0;
	}
	return 1;
}

/* Bytes of c->rooms in use by its n_rooms names. */
static size_t rooms_used(const token_claims *c)
{
	size_t used = 0;
	for (int i = 0; i < c->n_rooms; i++)
		used += strlen(c->rooms + used) + 1;
	return used;
}

/* Appends a room at c->rooms + *used; "*" sets rooms_any instead. */
static int add_room(token_claims *c, size_t *used, const char *room, size_t n)
{
	if (!valid_name(room, n, 1))
		return -1;
	if (n == 1 && room[0] == '*') {
		c->rooms_any = 1;
		return 0;
	}
	if (*used + n + 1 > sizeof c->rooms)
		return -1;
	memcpy(c->rooms + *used, room, n);
	c->rooms[*used + n] = '\0';
	*used += n + 1;
	c->n_rooms++;
	return 0;
}

int token_claims_add_room(token_claims *c, const char *room)
{
	if (!c || !room)
		return -1;
	size_t used = rooms_used(c);
	return add_room(c, &used, room, strlen(room));
}

int token_room_allowed(const token_claims *c, const char *room)
{
	if (!c || !room || !room[0])
		return 0;
	if (strcmp(room, c->room) == 0 || c->rooms_any)
		return 1;
	const char *p = c->rooms;
	for (int i = 0; i < c->n_rooms; i++) {
		if (strcmp(room, p) == 0)
			return 1;
		p += strlen(p) + 1;
	}
	return 0;
}

const char *token_status_reason(token_status s)
{
	switch (s) {
	case TOKEN_OK:            return "ok";
	case TOKEN_MISSING:       return "missing_token";
	case TOKEN_TOO_LONG:      return "token_too_long";
	case TOKEN_MALFORMED:     return "malformed_token";
	case TOKEN_BAD_ALG:       return "unsupported_alg";
	case TOKEN_BAD_SIGNATURE: return "bad_signature";
	case TOKEN_EXPIRED:       return "expired";
	case TOKEN_NOT_YET_VALID: return "not_yet_valid";
	case TOKEN_BAD_CLAIMS:    return "bad_claims";
	}
	return "unknown";
}

/* ---- verification ----------------------------------------------------- */

typedef struct jws_parts {
	const char *header, *payload, *sig;
	size_t header_len, payload_len, sig_len;
} jws_parts;

static int is_b64url_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return 0;
	}
	return 1;
}

/* Exactly three dot-separated parts of base64url text. */
static token_status split_parts(const char *jwt, size_t len, jws_parts *p)
{
	const char *dot1 = memchr(jwt, '.', len);
	if (!dot1)
		return TOKEN_MALFORMED;
	const char *rest = dot1 + 1;
	const char *dot2 = memchr(rest, '.', len - (size_t)(rest - jwt));
	if (!dot2)
		return TOKEN_MALFORMED;
	const char *sig = dot2 + 1;
	size_t sig_len = len - (size_t)(sig - jwt);
	if (memchr(sig, '.', sig_len))
		return TOKEN_MALFORMED;
	p->header = jwt;
	p->header_len = (size_t)(dot1 - jwt);
	p->payload = rest;
	p->payload_len = (size_t)(dot2 - rest);
	p->sig = sig;
	p->sig_len = sig_len;
	/* An empty signature is left to the alg check ("alg":"none" tokens). */
	if (!p->header_len || !p->payload_len)
		return TOKEN_MALFORMED;
	if (!is_b64url_text(p->header, p->header_len) ||
	    !is_b64url_text(p->payload, p->payload_len) || !is_b64url_text(sig, sig_len))
		return TOKEN_MALFORMED;
	return TOKEN_OK;
}

/* Decodes a base64url part holding a JSON object. NULL if either fails. */
static json_t *decode_json_part(const char *b64, size_t n)
{
	unsigned char buf[TOKEN_MAX_LEN];
	size_t len = 0;
	if (b64url_decode(b64, n, buf, sizeof buf, &len) != 0)
		return NULL;
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	sodium_memzero(buf, len);
	if (v && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static token_status check_header(const jws_parts *p, const token_keys *k, token_alg *alg)
{
	json_t *h = decode_json_part(p->header, p->header_len);
	if (!h)
		return TOKEN_MALFORMED;
	token_status st = TOKEN_OK;
	const char *a = json_string_value(json_object_get(h, "alg"));
	json_t *typ = json_object_get(h, "typ");
	*alg = ALG_NONE;
	if (a && strcmp(a, "HS256") == 0 && k->hs256 && k->hs256_len > 0)
		*alg = ALG_HS256;
	else if (a && strcmp(a, "EdDSA") == 0 && k->ed25519_pk)
		*alg = ALG_EDDSA;
	if (*alg == ALG_NONE)
		st = TOKEN_BAD_ALG;
	else if (typ && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0))
		st = TOKEN_MALFORMED;
	else if (json_object_get(h, "crit"))  /* RFC 7515 4.1.11: no extensions understood */
		st = TOKEN_MALFORMED;
	json_decref(h);
	return st;
}

/* Every token of an issuer has the same header ({"alg":"HS256","typ":"JWT"}
 * in base64url): the verdict on the last header is remembered, per thread,
 * with the algorithms the keys allow (all it depends on), and a token with
 * that header skips its base64 and JSON decoding (measured: 4% of a
 * worker's CPU in a handshake ramp). */
static token_status check_header_cached(const jws_parts *p, const token_keys *k, token_alg *alg)
{
	static _Thread_local struct {
		char b64[96];
		size_t len;
		int keys;            /* which algorithms the keys allowed */
		token_alg alg;
		token_status st;
	} last;
	int keys = (k->hs256 && k->hs256_len > 0) | (k->ed25519_pk ? 2 : 0);
	*alg = ALG_NONE;
	if (last.len && last.len == p->header_len && last.keys == keys &&
	    !memcmp(last.b64, p->header, p->header_len)) {
		*alg = last.alg;
		return last.st;
	}
	token_status st = check_header(p, k, alg);
	if (p->header_len <= sizeof last.b64) {
		memcpy(last.b64, p->header, p->header_len);
		last.len = p->header_len;
		last.keys = keys;
		last.alg = *alg;
		last.st = st;
	}
	return st;
}

static token_status check_signature(const jws_parts *p, const token_keys *k, token_alg alg)
{
	unsigned char sig[EDDSA_SIG_LEN];
	size_t sig_len = 0;
	if (b64url_decode(p->sig, p->sig_len, sig, sizeof sig, &sig_len) != 0)
		return TOKEN_MALFORMED;
	/* The signing input is "header.payload", contiguous in the token. */
	const char *msg = p->header;
	size_t msg_len = p->header_len + 1 + p->payload_len;
	if (alg == ALG_HS256) {
		unsigned char mac[HS256_SIG_LEN];
		if (sig_len != HS256_SIG_LEN)
			return TOKEN_BAD_SIGNATURE;
		hmac_sha256(k->hs256, k->hs256_len, msg, msg_len, mac);
		int ok = crypto_verify_32(mac, sig) == 0;
		sodium_memzero(mac, sizeof mac);
		return ok ? TOKEN_OK : TOKEN_BAD_SIGNATURE;
	}
	if (sig_len != EDDSA_SIG_LEN)
		return TOKEN_BAD_SIGNATURE;
	if (crypto_sign_verify_detached(sig, (const unsigned char *)msg, msg_len,
			k->ed25519_pk) != 0)
		return TOKEN_BAD_SIGNATURE;
	return TOKEN_OK;
}

/* Copies a string claim into dst after checking it. -1 on a bad value. */
static int copy_user_id(json_t *v, char dst[TOKEN_NAME_MAX + 1])
{
	if (!json_is_string(v))
		return -1;
	size_t n = json_string_length(v);
	if (!valid_user_id(json_string_value(v), n))
		return -1;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

static int copy_name(json_t *v, char dst[TOKEN_NAME_MAX + 1], size_t min_len)
{
	if (!json_is_string(v))
		return -1;
	size_t n = json_string_length(v);
	if (!valid_name(json_string_value(v), n, min_len))
		return -1;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

/* Optional integer claim: absent -> 0 with *has = 0; wrong type -> -1. */
static int get_time(json_t *claims, const char *key, int64_t *val, int *has)
{
	json_t *v = json_object_get(claims, key);
	*has = 0;
	*val = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return -1;
	*val = (int64_t)json_integer_value(v);
	*has = 1;
	return 0;
}

static int parse_rooms(json_t *v, token_claims *c)
{
	if (!v)
		return 0;
	if (!json_is_array(v))
		return -1;
	size_t i, used = 0;
	json_t *item;
	json_array_foreach(v, i, item) {
		if (!json_is_string(item))
			return -1;
		if (add_room(c, &used, json_string_value(item), json_string_length(item)) != 0)
			return -1;
	}
	return 0;
}

static int parse_perm(json_t *v, int *listen)
{
	*listen = 0;
	if (!v)
		return 0;
	const char *s = json_string_value(v);
	if (!s)
		return -1;
	if (strcmp(s, "listen") == 0)
		*listen = 1;
	else if (strcmp(s, "speak") != 0)
		return -1;
	return 0;
}

static token_status parse_claims(json_t *claims, token_claims *c)
{
	int has_exp = 0;
	if (copy_user_id(json_object_get(claims, "sub"), c->sub) != 0 ||
	    copy_name(json_object_get(claims, "room"), c->room, 1) != 0 ||
	    get_time(claims, "exp", &c->exp, &has_exp) != 0 || !has_exp ||
	    get_time(claims, "nbf", &c->nbf, &c->has_nbf) != 0 ||
	    get_time(claims, "iat", &c->iat, &c->has_iat) != 0 ||
	    parse_rooms(json_object_get(claims, "rooms"), c) != 0 ||
	    parse_perm(json_object_get(claims, "perm"), &c->perm_listen) != 0)
		return TOKEN_BAD_CLAIMS;
	json_t *dev = json_object_get(claims, "dev");
	if (dev && copy_name(dev, c->dev, 0) != 0)
		return TOKEN_BAD_CLAIMS;
	return TOKEN_OK;
}

/* Written to avoid overflow: now and leeway are sane, the claims may not be. */
static token_status check_times(const token_claims *c, int64_t now, int64_t leeway)
{
	if (c->exp <= now - leeway)
		return TOKEN_EXPIRED;
	if (c->has_nbf && c->nbf > now + leeway)
		return TOKEN_NOT_YET_VALID;
	if (c->has_iat && c->iat > now + leeway)
		return TOKEN_NOT_YET_VALID;
	return TOKEN_OK;
}

static token_status verify_parts(const jws_parts *p, const token_keys *k,
	int64_t now_s, int64_t leeway_s, token_claims *out)
{
	token_alg alg;
	token_status st = check_header_cached(p, k, &alg);
	if (st == TOKEN_OK)
		st = check_signature(p, k, alg);
	if (st != TOKEN_OK)
		return st;
	json_t *claims = decode_json_part(p->payload, p->payload_len);
	if (!claims)
		return TOKEN_MALFORMED;
	st = parse_claims(claims, out);
	json_decref(claims);
	if (st == TOKEN_OK)
		st = check_times(out, now_s, leeway_s < 0 ? 0 : leeway_s);
	return st;
}

token_status token_verify(const char *jwt, size_t len, const token_keys *k,
	int64_t now_s, int64_t leeway_s, token_claims *out)
{
	token_claims scratch;
	token_claims *c = out ? out : &scratch;
	memset(c, 0, sizeof *c);
	if (!jwt || len == 0)
		return TOKEN_MISSING;
	if (len > TOKEN_MAX_LEN)
		return TOKEN_TOO_LONG;
	if (!k)
		return TOKEN_BAD_ALG;
	if (!sodium_ready())
		return TOKEN_BAD_SIGNATURE;   /* cannot verify: fail closed */
	jws_parts p;
	token_status st = split_parts(jwt, len, &p);
	if (st == TOKEN_OK)
		st = verify_parts(&p, k, now_s, leeway_s, c);
	if (st != TOKEN_OK)
		memset(c, 0, sizeof *c);
	return st;
}

/* ---- minting ---------------------------------------------------------- */

static int claims_mintable(const token_claims *c)
{
	size_t used = 0;
	if (!valid_user_id(c->sub, strnlen(c->sub, sizeof c->sub)) ||
	    !valid_name(c->room, strnlen(c->room, sizeof c->room), 1) ||
	    !valid_name(c->dev, strnlen(c->dev, sizeof c->dev), 0) ||
	    c->n_rooms < 0)
		return 0;
	for (int i = 0; i < c->n_rooms; i++) {
		size_t n = strnlen(c->rooms + used, sizeof c->rooms - used);
		if (used + n >= sizeof c->rooms || !valid_name(c->rooms + used, n, 1))
			return 0;
		used += n + 1;
	}
	return 1;
}

static int set_new(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *rooms_to_json(const token_claims *c)
{
	json_t *arr = json_array();
	const char *p = c->rooms;
	int bad = !arr;
	for (int i = 0; !bad && i < c->n_rooms; i++) {
		json_t *s = json_string(p);
		bad = !s || json_array_append_new(arr, s) != 0;
		p += strlen(p) + 1;
	}
	if (!bad && c->rooms_any) {
		json_t *s = json_string("*");
		bad = !s || json_array_append_new(arr, s) != 0;
	}
	if (bad) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static json_t *claims_to_json(const token_claims *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int rc = set_new(o, "sub", json_string(c->sub));
	rc |= set_new(o, "room", json_string(c->room));
	if (c->n_rooms > 0 || c->rooms_any)
		rc |= set_new(o, "rooms", rooms_to_json(c));
	rc |= set_new(o, "exp", json_integer(c->exp));
	if (c->has_nbf)
		rc |= set_new(o, "nbf", json_integer(c->nbf));
	if (c->has_iat)
		rc |= set_new(o, "iat", json_integer(c->iat));
	if (c->perm_listen)
		rc |= set_new(o, "perm", json_string("listen"));
	if (c->dev[0])
		rc |= set_new(o, "dev", json_string(c->dev));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Appends base64url(bin) at out[*pos], keeping a NUL after it. */
static int append_b64(char *out, size_t outlen, size_t *pos, const void *bin, size_t n)
{
	size_t need = sodium_base64_ENCODED_LEN(n, B64_VARIANT); /* includes the NUL */
	if (*pos > outlen || outlen - *pos < need)
		return -1;
	sodium_bin2base64(out + *pos, outlen - *pos, bin, n, B64_VARIANT);
	*pos += strlen(out + *pos);
	return 0;
}

static int append_char(char *out, size_t outlen, size_t *pos, char ch)
{
	if (*pos + 2 > outlen)
		return -1;
	out[(*pos)++] = ch;
	out[*pos] = '\0';
	return 0;
}

/* Writes "header.payload" into out; returns its length or -1. */
static int mint_signing_input(const token_claims *c, const char *alg, char *out, size_t outlen)
{
	if (!c || !out || !claims_mintable(c))
		return -1;
	json_t *claims = claims_to_json(c);
	if (!claims)
		return -1;
	char *payload = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	if (!payload)
		return -1;
	char header[48];
	int hlen = snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	size_t pos = 0;
	int rc = append_b64(out, outlen, &pos, header, (size_t)hlen);
	if (rc == 0)
		rc = append_char(out, outlen, &pos, '.');
	if (rc == 0)
		rc = append_b64(out, outlen, &pos, payload, strlen(payload));
	free(payload);
	if (rc != 0) {
		if (outlen)
			out[0] = '\0';
		return -1;
	}
	return (int)pos;
}

/* Appends ".signature" and checks the total length. */
static int mint_finish(char *out, size_t outlen, size_t pos, const unsigned char *sig,
	size_t sig_len)
{
	if (append_char(out, outlen, &pos, '.') != 0 ||
	    append_b64(out, outlen, &pos, sig, sig_len) != 0 || pos > TOKEN_MAX_LEN) {
		if (outlen)
			out[0] = '\0';
		return -1;
	}
	return (int)pos;
}

int token_mint_hs256(const token_claims *c, const unsigned char *key, size_t keylen,
	char *out, size_t outlen)
{
	if (!key || keylen == 0 || !sodium_ready())
		return -1;
	int n = mint_signing_input(c, "HS256", out, outlen);
	if (n < 0)
		return -1;
	unsigned char mac[HS256_SIG_LEN];
	hmac_sha256(key, keylen, out, (size_t)n, mac);
	return mint_finish(out, outlen, (size_t)n, mac, sizeof mac);
}

int token_mint_eddsa(const token_claims *c, const unsigned char sk[64],
	char *out, size_t outlen)
{
	if (!sk || !sodium_ready())
		return -1;
	int n = mint_signing_input(c, "EdDSA", out, outlen);
	if (n < 0)
		return -1;
	unsigned char sig[EDDSA_SIG_LEN];
	crypto_sign_detached(sig, NULL, (const unsigned char *)out, (size_t)n, sk);
	return mint_finish(out, outlen, (size_t)n, sig, sizeof sig);
}
