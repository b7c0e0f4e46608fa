/* test_token.c: unit tests for common/token.c (JWT verify and mint, SPEC 4.1).
 * Most negative cases use tokens built here by hand (base64url + libsodium
 * HMAC/Ed25519 directly), so a minting bug cannot hide a verification bug. */
#include "common/token.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000LL
#define LEEWAY 30
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

static unsigned char hs_key[crypto_auth_hmacsha256_KEYBYTES];
static unsigned char hs_other_key[crypto_auth_hmacsha256_KEYBYTES];
static unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES], ed_sk[crypto_sign_SECRETKEYBYTES];
static unsigned char ed_other_pk[crypto_sign_PUBLICKEYBYTES], ed_other_sk[crypto_sign_SECRETKEYBYTES];

static void setup_keys(void)
{
	ck_assert_int_ge(sodium_init(), 0);
	memset(hs_key, 'k', sizeof hs_key);
	memset(hs_other_key, 'o', sizeof hs_other_key);
	crypto_sign_keypair(ed_pk, ed_sk);
	crypto_sign_keypair(ed_other_pk, ed_other_sk);
}

static token_keys both_keys(void)
{
	token_keys k = { hs_key, sizeof hs_key, ed_pk };
	return k;
}

/* ---- hand-built tokens ------------------------------------------------- */

static void append_b64(char *out, size_t outlen, const void *bin, size_t n)
{
	size_t pos = strlen(out);
	ck_assert_uint_ge(outlen - pos, sodium_base64_ENCODED_LEN(n, B64));
	sodium_bin2base64(out + pos, outlen - pos, bin, n, B64);
}

static void signing_input(char *out, size_t outlen, const char *header, const char *payload)
{
	out[0] = '\0';
	append_b64(out, outlen, header, strlen(header));
	strcat(out, ".");
	append_b64(out, outlen, payload, strlen(payload));
}

/* header.payload.HMAC-SHA256(32-byte key) */
static void make_hs(char *out, size_t outlen, const char *header, const char *payload,
	const unsigned char *key)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	signing_input(out, outlen, header, payload);
	crypto_auth_hmacsha256(mac, (const unsigned char *)out, strlen(out), key);
	strcat(out, ".");
	append_b64(out, outlen, mac, sizeof mac);
}

static void make_ed(char *out, size_t outlen, const char *header, const char *payload,
	const unsigned char *sk)
{
	unsigned char sig[crypto_sign_BYTES];
	signing_input(out, outlen, header, payload);
	crypto_sign_detached(sig, NULL, (const unsigned char *)out, strlen(out), sk);
	strcat(out, ".");
	append_b64(out, outlen, sig, sizeof sig);
}

static const char *HS_HEADER = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *ED_HEADER = "{\"alg\":\"EdDSA\"}";

static token_status verify_str(const char *tok, token_claims *c)
{
	token_keys k = both_keys();
	return token_verify(tok, strlen(tok), &k, NOW, LEEWAY, c);
}

/* HS256 token of the given claims JSON, verified with both keys configured. */
static token_status verify_hs_payload(const char *payload, token_claims *c)
{
	char tok[TOKEN_MAX_LEN * 2];
	make_hs(tok, sizeof tok, HS_HEADER, payload, hs_key);
	return verify_str(tok, c);
}

static token_status verify_hs_header(const char *header)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c;
	make_hs(tok, sizeof tok, header,
		"{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":1700003600}", hs_key);
	return verify_str(tok, &c);
}

static token_claims base_claims(void)
{
	token_claims c;
	memset(&c, 0, sizeof c);
	strcpy(c.sub, "alice");
	strcpy(c.room, "lobby");
	c.exp = NOW + 3600;
	return c;
}

/* Field by field: struct padding is not guaranteed to survive a copy. */
static void assert_claims_eq(const token_claims *a, const token_claims *b)
{
	ck_assert_str_eq(a->sub, b->sub);
	ck_assert_str_eq(a->room, b->room);
	ck_assert_int_eq(a->n_rooms, b->n_rooms);
	ck_assert_mem_eq(a->rooms, b->rooms, sizeof a->rooms);
	ck_assert_int_eq(a->rooms_any, b->rooms_any);
	ck_assert_int_eq(a->exp, b->exp);
	ck_assert_int_eq(a->has_nbf, b->has_nbf);
	ck_assert_int_eq(a->nbf, b->nbf);
	ck_assert_int_eq(a->has_iat, b->has_iat);
	ck_assert_int_eq(a->iat, b->iat);
	ck_assert_int_eq(a->perm_listen, b->perm_listen);
	ck_assert_str_eq(a->dev, b->dev);
}

static int mint_hs(const token_claims *c, char *out, size_t outlen)
{
	return token_mint_hs256(c, hs_key, sizeof hs_key, out, outlen);
}

/* ---- good tokens -------------------------------------------------------- */

START_TEST(test_handbuilt_hs256_ok)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c;
	make_hs(tok, sizeof tok, HS_HEADER,
		"{\"sub\":\"u-42\",\"room\":\"math 101\",\"rooms\":[\"a\",\"b\"],"
		"\"exp\":1700003600,\"nbf\":1699999000,\"iat\":1699999000,"
		"\"perm\":\"listen\",\"dev\":\"phone-1\",\"name\":\"ignored\"}", hs_key);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_OK);
	ck_assert_str_eq(c.sub, "u-42");
	ck_assert_str_eq(c.room, "math 101");
	ck_assert_int_eq(c.n_rooms, 2);
	ck_assert_str_eq(c.rooms, "a");
	ck_assert_str_eq(c.rooms + 2, "b");
	ck_assert_int_eq(c.rooms_any, 0);
	ck_assert_int_eq(c.exp, 1700003600LL);
	ck_assert_int_eq(c.has_nbf, 1);
	ck_assert_int_eq(c.nbf, 1699999000LL);
	ck_assert_int_eq(c.has_iat, 1);
	ck_assert_int_eq(c.iat, 1699999000LL);
	ck_assert_int_eq(c.perm_listen, 1);
	ck_assert_str_eq(c.dev, "phone-1");
}
END_TEST

START_TEST(test_handbuilt_eddsa_ok)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c;
	make_ed(tok, sizeof tok, ED_HEADER,
		"{\"sub\":\"bob\",\"room\":\"r\",\"exp\":1700003600}", ed_sk);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_OK);
	ck_assert_str_eq(c.sub, "bob");
	ck_assert_int_eq(c.has_nbf, 0);
	ck_assert_int_eq(c.has_iat, 0);
	ck_assert_int_eq(c.perm_listen, 0);
	ck_assert_str_eq(c.dev, "");
	ck_assert_int_eq(c.n_rooms, 0);
}
END_TEST

/* The jwt.io example (secret "your-256-bit-secret", 19 bytes): the signature
 * is right, the claims lack room/exp. Checks HMAC against an outside vector
 * and a key that is not 32 bytes long. */
START_TEST(test_jwtio_vector)
{
	static const char tok[] =
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
	const char *secret = "your-256-bit-secret";
	token_claims c;
	token_keys k = { (const unsigned char *)secret, strlen(secret), NULL };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &c), TOKEN_BAD_CLAIMS);
	k.hs256_len--;
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &c), TOKEN_BAD_SIGNATURE);
}
END_TEST

static void b64_decode_exact(const char *s, unsigned char *out, size_t n)
{
	size_t got = 0;
	ck_assert_int_eq(sodium_base642bin(out, n, s, strlen(s), NULL, &got, NULL, B64), 0);
	ck_assert_uint_eq(got, n);
}

/* RFC 8037 A.4: Ed25519 JWS over a non-JSON payload. The signature must
 * verify (so the failure is the payload, not the signature). */
START_TEST(test_rfc8037_vector)
{
	static const char tok[] =
		"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
	unsigned char pk[32];
	b64_decode_exact("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", pk, sizeof pk);
	token_keys k = { NULL, 0, pk };
	token_claims c;
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &c), TOKEN_MALFORMED);
	k.ed25519_pk = ed_pk;
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &c), TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_mint_hs256_roundtrip)
{
	char tok[TOKEN_MAX_LEN + 1];
	token_claims in = base_claims(), out;
	in.has_nbf = 1;
	in.nbf = NOW - 5;
	in.has_iat = 1;
	in.iat = NOW - 5;
	in.perm_listen = 1;
	strcpy(in.dev, "dev-7");
	ck_assert_int_eq(token_claims_add_room(&in, "math"), 0);
	ck_assert_int_eq(token_claims_add_room(&in, "Ünïcode room"), 0);
	int n = mint_hs(&in, tok, sizeof tok);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq((size_t)n, strlen(tok));
	ck_assert_int_eq(verify_str(tok, &out), TOKEN_OK);
	assert_claims_eq(&in, &out);
	/* A 50-byte key (the config allows any length >= 32). */
	unsigned char long_key[50];
	memset(long_key, 'L', sizeof long_key);
	ck_assert_int_gt(token_mint_hs256(&in, long_key, sizeof long_key, tok, sizeof tok), 0);
	token_keys k = { long_key, sizeof long_key, NULL };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &out), TOKEN_OK);
	k.hs256_len = 49;
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &out), TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_mint_eddsa_roundtrip)
{
	char tok[TOKEN_MAX_LEN + 1];
	token_claims in = base_claims(), out;
	ck_assert_int_eq(token_claims_add_room(&in, "*"), 0);
	ck_assert_int_eq(in.rooms_any, 1);
	ck_assert_int_eq(in.n_rooms, 0);
	ck_assert_int_gt(token_mint_eddsa(&in, ed_sk, tok, sizeof tok), 0);
	ck_assert_int_eq(verify_str(tok, &out), TOKEN_OK);
	assert_claims_eq(&in, &out);
	token_keys only_hs = { hs_key, sizeof hs_key, NULL };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &only_hs, NOW, LEEWAY, &out), TOKEN_BAD_ALG);
	token_keys other = { NULL, 0, ed_other_pk };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &other, NOW, LEEWAY, &out),
		TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_mint_rejects_bad_input)
{
	char tok[TOKEN_MAX_LEN + 1];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	ck_assert_int_eq(mint_hs(&c, tok, 20), -1);             /* out too small */
	ck_assert_int_eq(token_mint_hs256(&c, hs_key, 0, tok, sizeof tok), -1);
	ck_assert_int_eq(token_mint_hs256(&c, NULL, 32, tok, sizeof tok), -1);
	c.sub[0] = '\0';
	ck_assert_int_eq(mint_hs(&c, tok, sizeof tok), -1);     /* empty sub */
	c = base_claims();
	strcpy(c.sub, "al ice");
	ck_assert_int_eq(mint_hs(&c, tok, sizeof tok), -1);     /* space in sub */
	c = base_claims();
	strcpy(c.room, "a\nb");
	ck_assert_int_eq(token_mint_eddsa(&c, ed_sk, tok, sizeof tok), -1);
	c = base_claims();
	ck_assert_int_eq(token_claims_add_room(&c, ""), -1);
	ck_assert_int_eq(token_claims_add_room(&c, "x\x01"), -1);
	ck_assert_int_eq(mint_hs(NULL, tok, sizeof tok), -1);
}
END_TEST

START_TEST(test_verify_not_nul_terminated)
{
	char tok[TOKEN_MAX_LEN + 16];
	token_claims c = base_claims(), out;
	int n = mint_hs(&c, tok, sizeof tok);
	ck_assert_int_gt(n, 0);
	strcat(tok, "garbage.x.y");
	token_keys k = both_keys();
	ck_assert_int_eq(token_verify(tok, (size_t)n, &k, NOW, LEEWAY, &out), TOKEN_OK);
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &out), TOKEN_MALFORMED);
	/* out may be NULL when only the verdict matters */
	ck_assert_int_eq(token_verify(tok, (size_t)n, &k, NOW, LEEWAY, NULL), TOKEN_OK);
}
END_TEST

/* ---- tampering and keys ------------------------------------------------ */

START_TEST(test_tampered_payload)
{
	char tok[TOKEN_MAX_LEN], forged[TOKEN_MAX_LEN];
	token_claims c;
	make_hs(tok, sizeof tok, HS_HEADER,
		"{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":1700003600}", hs_key);
	/* Same header and signature, payload of another user. */
	const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
	const char *evil = "{\"sub\":\"admin\",\"room\":\"lobby\",\"exp\":1700003600}";
	snprintf(forged, sizeof forged, "%.*s.", (int)(dot1 - tok), tok);
	append_b64(forged, sizeof forged, evil, strlen(evil));
	strcat(forged, dot2);
	ck_assert_int_eq(verify_str(forged, &c), TOKEN_BAD_SIGNATURE);
	ck_assert_str_eq(c.sub, "");    /* nothing leaks out on failure */
	/* One character of the payload changed. */
	strcpy(forged, tok);
	char *p = strchr(forged, '.') + 3;
	*p = *p == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify_str(forged, &c), TOKEN_BAD_SIGNATURE);
	/* Header changed (typ dropped) with the old signature. */
	make_hs(forged, sizeof forged, "{\"alg\":\"HS256\"}",
		"{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":1700003600}", hs_key);
	strcpy(strrchr(forged, '.'), dot2);
	ck_assert_int_eq(verify_str(forged, &c), TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_tampered_signature)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	char *sig = strrchr(tok, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);

	c = base_claims();
	ck_assert_int_gt(token_mint_eddsa(&c, ed_sk, tok, sizeof tok), 0);
	sig = strrchr(tok, '.') + 1;
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
}
END_TEST

/* Changing only the unused low bits of the last base64 character must not
 * give a second valid spelling of the same signature. */
START_TEST(test_noncanonical_signature)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char tok[TOKEN_MAX_LEN];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	char *last = tok + strlen(tok) - 1;        /* 43 chars: 2 unused bits */
	int v = (int)(strchr(alphabet, *last) - alphabet);
	*last = alphabet[v ^ 1];
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_wrong_key)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c;
	const char *payload = "{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":1700003600}";
	make_hs(tok, sizeof tok, HS_HEADER, payload, hs_other_key);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
	make_ed(tok, sizeof tok, ED_HEADER, payload, ed_other_sk);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
	/* An HS256 signature on an EdDSA header (and the reverse): wrong length. */
	make_hs(tok, sizeof tok, ED_HEADER, payload, hs_key);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
	make_ed(tok, sizeof tok, HS_HEADER, payload, ed_sk);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
	/* HS256 keyed with the Ed25519 public key (classic alg confusion). */
	make_hs(tok, sizeof tok, HS_HEADER, payload, ed_pk);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_SIGNATURE);
}
END_TEST

/* ---- header ------------------------------------------------------------- */

START_TEST(test_alg_none)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c;
	const char *payload = "{\"sub\":\"alice\",\"room\":\"lobby\",\"exp\":1700003600}";
	signing_input(tok, sizeof tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", payload);
	strcat(tok, ".");
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_ALG);
	make_hs(tok, sizeof tok, "{\"alg\":\"none\"}", payload, hs_key);
	ck_assert_int_eq(verify_str(tok, &c), TOKEN_BAD_ALG);
}
END_TEST

START_TEST(test_alg_other)
{
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"None\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"hs256\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS512\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"RS256\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"ES256\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":7}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":null}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"typ\":\"JWT\"}"), TOKEN_BAD_ALG);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"kid\":\"k1\"}"), TOKEN_OK);
}
END_TEST

START_TEST(test_alg_key_not_configured)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	token_keys only_ed = { NULL, 0, ed_pk };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &only_ed, NOW, LEEWAY, &c), TOKEN_BAD_ALG);
	token_keys empty_hs = { hs_key, 0, ed_pk };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &empty_hs, NOW, LEEWAY, &c), TOKEN_BAD_ALG);
	token_keys none = { NULL, 0, NULL };
	ck_assert_int_eq(token_verify(tok, strlen(tok), &none, NOW, LEEWAY, &c), TOKEN_BAD_ALG);
	ck_assert_int_eq(token_verify(tok, strlen(tok), NULL, NOW, LEEWAY, &c), TOKEN_BAD_ALG);
}
END_TEST

/* The last header's verdict is remembered: it must follow the keys, in
 * both directions, with the same header every time. */
START_TEST(test_header_verdict_follows_keys)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c = base_claims(), got;
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	token_keys k = both_keys(), only_ed = { NULL, 0, ed_pk };
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &got), TOKEN_OK);
		ck_assert_int_eq(token_verify(tok, strlen(tok), &only_ed, NOW, LEEWAY, &got),
		                 TOKEN_BAD_ALG);
	}
	k.hs256_len = 0;  /* the same keys struct, changed */
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &got), TOKEN_BAD_ALG);
	k.hs256_len = sizeof hs_key;
	ck_assert_int_eq(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &got), TOKEN_OK);
	tok[3] ^= 1;  /* another header: decoded again, and broken */
	ck_assert_int_ne(token_verify(tok, strlen(tok), &k, NOW, LEEWAY, &got), TOKEN_OK);
}
END_TEST

START_TEST(test_typ)
{
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"jwt\"}"), TOKEN_OK);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"Jwt\"}"), TOKEN_OK);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"JWS\"}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"\"}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":1}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"typ\":null}"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}"),
		TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_header_garbage)
{
	ck_assert_int_eq(verify_hs_header("not json"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("[\"HS256\"]"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("\"HS256\""), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\""), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"HS256\"} x"), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_header("{\"alg\":\"none\",\"alg\":\"HS256\"}"),
		TOKEN_MALFORMED);   /* duplicate keys */
}
END_TEST

/* ---- structure ---------------------------------------------------------- */

START_TEST(test_part_count)
{
	char tok[TOKEN_MAX_LEN], bad[TOKEN_MAX_LEN + 8];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	/* two parts */
	snprintf(bad, sizeof bad, "%.*s", (int)(strrchr(tok, '.') - tok), tok);
	ck_assert_int_eq(verify_str(bad, &c), TOKEN_MALFORMED);
	/* four parts */
	snprintf(bad, sizeof bad, "%s.", tok);
	ck_assert_int_eq(verify_str(bad, &c), TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "%s.AAAA", tok);
	ck_assert_int_eq(verify_str(bad, &c), TOKEN_MALFORMED);
	/* empty header / payload / signature */
	ck_assert_int_eq(verify_str("..", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_str("abc", &c), TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "%s", strchr(tok, '.'));
	ck_assert_int_eq(verify_str(bad, &c), TOKEN_MALFORMED);
	snprintf(bad, sizeof bad, "%.*s.", (int)(strrchr(tok, '.') - tok), tok);
	ck_assert_int_eq(verify_str(bad, &c), TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_non_base64)
{
	char tok[TOKEN_MAX_LEN];
	token_claims c = base_claims();
	ck_assert_int_gt(mint_hs(&c, tok, sizeof tok), 0);
	static const char bad_chars[] = "+/= !\"\\\t\n*";
	for (size_t part = 0; part < 3; part++) {
		for (size_t i = 0; bad_chars[i]; i++) {
			char t[TOKEN_MAX_LEN];
			strcpy(t, tok);
			char *p = t;
			for (size_t j = 0; j < part; j++)
				p = strchr(p, '.') + 1;
			p[1] = bad_chars[i];
			ck_assert_msg(verify_str(t, &c) == TOKEN_MALFORMED,
				"part %zu char 0x%02x", part, bad_chars[i]);
		}
	}
	/* padding appended */
	char t[TOKEN_MAX_LEN + 4];
	snprintf(t, sizeof t, "%s=", tok);
	ck_assert_int_eq(verify_str(t, &c), TOKEN_MALFORMED);
	/* embedded NUL within len */
	strcpy(t, tok);
	t[5] = '\0';
	token_keys k = both_keys();
	ck_assert_int_eq(token_verify(t, strlen(tok), &k, NOW, LEEWAY, &c), TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_claims_garbage)
{
	token_claims c;
	ck_assert_int_eq(verify_hs_payload("not json", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload("[1,2]", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload("42", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload("{\"sub\":\"a\"", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"alice\",\"sub\":\"admin\",\"room\":\"r\",\"exp\":1700003600}", &c),
		TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"a\\u0000b\",\"room\":\"r\",\"exp\":1700003600}", &c), TOKEN_MALFORMED);
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"alice\",\"room\":\"r\xff\",\"exp\":1700003600}", &c), TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_length_limits)
{
	token_claims c;
	token_keys k = both_keys();
	ck_assert_int_eq(token_verify("", 0, &k, NOW, LEEWAY, &c), TOKEN_MISSING);
	ck_assert_int_eq(token_verify(NULL, 0, &k, NOW, LEEWAY, &c), TOKEN_MISSING);
	ck_assert_int_eq(token_verify(NULL, 10, &k, NOW, LEEWAY, &c), TOKEN_MISSING);
	char *big = malloc(TOKEN_MAX_LEN + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'A', TOKEN_MAX_LEN + 1);
	big[TOKEN_MAX_LEN + 1] = '\0';
	ck_assert_int_eq(token_verify(big, TOKEN_MAX_LEN + 1, &k, NOW, LEEWAY, &c), TOKEN_TOO_LONG);
	ck_assert_int_eq(token_verify(big, TOKEN_MAX_LEN, &k, NOW, LEEWAY, &c), TOKEN_MALFORMED);
	free(big);
}
END_TEST

/* A genuine token just over the limit is refused unread, at the limit it works. */
START_TEST(test_length_limit_valid_token)
{
	char payload[TOKEN_MAX_LEN], tok[TOKEN_MAX_LEN * 2];
	token_claims c;
	const char *head = "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":1700003600,\"pad\":\"";
	size_t hs_len;
	/* Grow the token past TOKEN_MAX_LEN one payload byte at a time. */
	for (size_t pad = 2900; pad < 3100; pad++) {
		snprintf(payload, sizeof payload, "%s%0*d\"}", head, (int)pad, 0);
		make_hs(tok, sizeof tok, HS_HEADER, payload, hs_key);
		hs_len = strlen(tok);
		if (hs_len <= TOKEN_MAX_LEN) {
			ck_assert_int_eq(verify_str(tok, &c), TOKEN_OK);
		} else {
			ck_assert_int_eq(verify_str(tok, &c), TOKEN_TOO_LONG);
			return;
		}
	}
	ck_abort_msg("never reached the limit");
}
END_TEST

/* ---- claims, table driven ---------------------------------------------- */

typedef struct claims_case {
	const char *payload;
	token_status want;
} claims_case;

#define SUB128 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define EXP ",\"exp\":1700003600"

static const claims_case claims_cases[] = {
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP "}", TOKEN_OK },
	/* missing */
	{ "{\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"}", TOKEN_BAD_CLAIMS },
	{ "{}", TOKEN_BAD_CLAIMS },
	/* wrong types */
	{ "{\"sub\":42,\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":null,\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":[\"alice\"],\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":1" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":{}" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":\"1700003600\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":1700003600.0}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":1.7e9}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":true}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":null}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"nbf\":\"0\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"iat\":false}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":\"a\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":null}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[\"a\",1]}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[[\"a\"]]}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[\"\"]}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[\"a\\nb\"]}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[]}", TOKEN_OK },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":1}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":null}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":\"bogus\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":\"LISTEN\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":\"\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"perm\":\"speak\"}", TOKEN_OK },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"dev\":5}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"dev\":\"a\\u0007\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"dev\":\"" SUB128 "b\"}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"dev\":\"" SUB128 "\"}", TOKEN_OK },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"dev\":\"\"}", TOKEN_OK },
	/* unknown claims are ignored */
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"aud\":[1],\"x\":{}}", TOKEN_OK },
	/* sub: 1..128 visible ASCII */
	{ "{\"sub\":\"" SUB128 "\",\"room\":\"r\"" EXP "}", TOKEN_OK },
	{ "{\"sub\":\"" SUB128 "a\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"a\\u0001b\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"a\\tb\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"a\\nb\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"a\\u007fb\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"a b\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"j\\u00fcrgen\",\"room\":\"r\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"user@example.com|42~!\",\"room\":\"r\"" EXP "}", TOKEN_OK },
	/* room: 1..128 bytes, no controls, UTF-8 fine */
	{ "{\"sub\":\"alice\",\"room\":\"" SUB128 "\"" EXP "}", TOKEN_OK },
	{ "{\"sub\":\"alice\",\"room\":\"" SUB128 "a\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"a\\rb\"" EXP "}", TOKEN_BAD_CLAIMS },
	{ "{\"sub\":\"alice\",\"room\":\"salle d'\\u00e9t\\u00e9\"" EXP "}", TOKEN_OK },
	/* exp/nbf/iat extremes do not overflow */
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":9223372036854775807}", TOKEN_OK },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":-9223372036854775808}", TOKEN_EXPIRED },
	{ "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":92233720368547758070}", TOKEN_MALFORMED },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"nbf\":9223372036854775807}",
	  TOKEN_NOT_YET_VALID },
	{ "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"nbf\":-9223372036854775808}", TOKEN_OK },
	/* bad claims win over times */
	{ "{\"sub\":\"\",\"room\":\"r\",\"exp\":1}", TOKEN_BAD_CLAIMS },
};

START_TEST(test_claims_table)
{
	token_claims c;
	const claims_case *cc = &claims_cases[_i];
	ck_assert_msg(verify_hs_payload(cc->payload, &c) == cc->want,
		"case %d: %s: got %s want %s", _i, cc->payload,
		token_status_reason(verify_hs_payload(cc->payload, &c)),
		token_status_reason(cc->want));
}
END_TEST

/* ---- times -------------------------------------------------------------- */

static token_status verify_times(int64_t exp, const char *extra, int64_t leeway)
{
	char payload[256], tok[TOKEN_MAX_LEN];
	token_claims c;
	snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"room\":\"r\",\"exp\":%lld%s}",
		(long long)exp, extra);
	make_hs(tok, sizeof tok, HS_HEADER, payload, hs_key);
	token_keys k = both_keys();
	return token_verify(tok, strlen(tok), &k, NOW, leeway, &c);
}

START_TEST(test_expiry)
{
	ck_assert_int_eq(verify_times(NOW + 1, "", 0), TOKEN_OK);
	ck_assert_int_eq(verify_times(NOW, "", 0), TOKEN_EXPIRED);
	ck_assert_int_eq(verify_times(NOW - 100, "", LEEWAY), TOKEN_EXPIRED);
	ck_assert_int_eq(verify_times(NOW - 10, "", LEEWAY), TOKEN_OK);      /* within leeway */
	ck_assert_int_eq(verify_times(NOW - 29, "", LEEWAY), TOKEN_OK);
	ck_assert_int_eq(verify_times(NOW - 30, "", LEEWAY), TOKEN_EXPIRED); /* exp+leeway == now */
	ck_assert_int_eq(verify_times(NOW - 1, "", -5), TOKEN_EXPIRED);     /* negative = 0 */
}
END_TEST

START_TEST(test_not_before)
{
	char extra[64];
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 100);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_NOT_YET_VALID);
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 20);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_OK);
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 30);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_OK);
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 31);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_NOT_YET_VALID);
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 1);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, 0), TOKEN_NOT_YET_VALID);
	snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, 0), TOKEN_OK);
}
END_TEST

START_TEST(test_issued_in_future)
{
	char extra[64];
	snprintf(extra, sizeof extra, ",\"iat\":%lld", NOW + 100);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_NOT_YET_VALID);
	snprintf(extra, sizeof extra, ",\"iat\":%lld", NOW + 10);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_OK);
	snprintf(extra, sizeof extra, ",\"iat\":%lld", NOW - 86400);
	ck_assert_int_eq(verify_times(NOW + 3600, extra, LEEWAY), TOKEN_OK);
}
END_TEST

/* ---- rooms, perm, dev ------------------------------------------------- */

START_TEST(test_rooms_any)
{
	token_claims c;
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[\"a\",\"*\",\"b\"]}", &c),
		TOKEN_OK);
	ck_assert_int_eq(c.rooms_any, 1);
	ck_assert_int_eq(c.n_rooms, 2);
	ck_assert_int_eq(token_room_allowed(&c, "anything"), 1);
	ck_assert_int_eq(token_room_allowed(&c, "a"), 1);
	ck_assert_int_eq(token_room_allowed(&c, ""), 0);
	ck_assert_int_eq(token_room_allowed(&c, NULL), 0);
}
END_TEST

START_TEST(test_rooms_size_bound)
{
	/* 7 names of 128 bytes pack into 903 bytes, 8 into 1032 > 1024. */
	char payload[2048];
	token_claims c;
	strcpy(payload, "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[");
	for (int i = 0; i < 8; i++) {
		if (i)
			strcat(payload, ",");
		strcat(payload, "\"" SUB128 "\"");
		if (i == 6) {
			char ok[2048 + 4];
			snprintf(ok, sizeof ok, "%s]}", payload);
			ck_assert_int_eq(verify_hs_payload(ok, &c), TOKEN_OK);
			ck_assert_int_eq(c.n_rooms, 7);
		}
	}
	strcat(payload, "]}");
	ck_assert_int_eq(verify_hs_payload(payload, &c), TOKEN_BAD_CLAIMS);
	/* many tiny names: 512 x "x" = 1024 bytes fits, 513 does not */
	strcpy(payload, "{\"sub\":\"alice\",\"room\":\"r\"" EXP ",\"rooms\":[");
	char *big = malloc(8192);
	ck_assert_ptr_nonnull(big);
	strcpy(big, payload);
	for (int i = 0; i < 512; i++)
		strcat(big, i ? ",\"x\"" : "\"x\"");
	strcat(big, "]}");
	ck_assert_int_eq(verify_hs_payload(big, &c), TOKEN_OK);
	ck_assert_int_eq(c.n_rooms, 512);
	strcpy(big + strlen(big) - 2, ",\"y\"]}");
	ck_assert_int_eq(verify_hs_payload(big, &c), TOKEN_BAD_CLAIMS);
	free(big);
}
END_TEST

START_TEST(test_perm)
{
	token_claims c;
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"a\",\"room\":\"r\"" EXP ",\"perm\":\"listen\"}", &c), TOKEN_OK);
	ck_assert_int_eq(c.perm_listen, 1);
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"a\",\"room\":\"r\"" EXP ",\"perm\":\"speak\"}", &c), TOKEN_OK);
	ck_assert_int_eq(c.perm_listen, 0);
	ck_assert_int_eq(verify_hs_payload("{\"sub\":\"a\",\"room\":\"r\"" EXP "}", &c), TOKEN_OK);
	ck_assert_int_eq(c.perm_listen, 0);
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"a\",\"room\":\"r\"" EXP ",\"perm\":\"admin\"}", &c), TOKEN_BAD_CLAIMS);
}
END_TEST

START_TEST(test_dev)
{
	token_claims c;
	ck_assert_int_eq(verify_hs_payload(
		"{\"sub\":\"a\",\"room\":\"r\"" EXP ",\"dev\":\"iPhone 15\"}", &c), TOKEN_OK);
	ck_assert_str_eq(c.dev, "iPhone 15");
	ck_assert_int_eq(verify_hs_payload("{\"sub\":\"a\",\"room\":\"r\"" EXP "}", &c), TOKEN_OK);
	ck_assert_str_eq(c.dev, "");
}
END_TEST

START_TEST(test_room_allowed)
{
	token_claims c = base_claims();
	ck_assert_int_eq(token_room_allowed(&c, "lobby"), 1);
	ck_assert_int_eq(token_room_allowed(&c, "lobby2"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "lobb"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "Lobby"), 0);
	ck_assert_int_eq(token_room_allowed(&c, ""), 0);
	ck_assert_int_eq(token_room_allowed(&c, NULL), 0);
	ck_assert_int_eq(token_room_allowed(NULL, "lobby"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "*"), 0);
	ck_assert_int_eq(token_claims_add_room(&c, "math"), 0);
	ck_assert_int_eq(token_claims_add_room(&c, "art"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "math"), 1);
	ck_assert_int_eq(token_room_allowed(&c, "art"), 1);
	ck_assert_int_eq(token_room_allowed(&c, "ar"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "mathart"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "music"), 0);
	ck_assert_int_eq(token_claims_add_room(&c, "*"), 0);
	ck_assert_int_eq(token_room_allowed(&c, "music"), 1);
}
END_TEST

START_TEST(test_reasons)
{
	ck_assert_str_eq(token_status_reason(TOKEN_OK), "ok");
	ck_assert_str_eq(token_status_reason(TOKEN_MISSING), "missing_token");
	ck_assert_str_eq(token_status_reason(TOKEN_TOO_LONG), "token_too_long");
	ck_assert_str_eq(token_status_reason(TOKEN_MALFORMED), "malformed_token");
	ck_assert_str_eq(token_status_reason(TOKEN_BAD_ALG), "unsupported_alg");
	ck_assert_str_eq(token_status_reason(TOKEN_BAD_SIGNATURE), "bad_signature");
	ck_assert_str_eq(token_status_reason(TOKEN_EXPIRED), "expired");
	ck_assert_str_eq(token_status_reason(TOKEN_NOT_YET_VALID), "not_yet_valid");
	ck_assert_str_eq(token_status_reason(TOKEN_BAD_CLAIMS), "bad_claims");
	ck_assert_str_eq(token_status_reason((token_status)99), "unknown");
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *good = tcase_create("good");
	tcase_add_unchecked_fixture(good, setup_keys, NULL);
	tcase_add_test(good, test_handbuilt_hs256_ok);
	tcase_add_test(good, test_handbuilt_eddsa_ok);
	tcase_add_test(good, test_jwtio_vector);
	tcase_add_test(good, test_rfc8037_vector);
	tcase_add_test(good, test_mint_hs256_roundtrip);
	tcase_add_test(good, test_mint_eddsa_roundtrip);
	tcase_add_test(good, test_mint_rejects_bad_input);
	tcase_add_test(good, test_verify_not_nul_terminated);
	suite_add_tcase(s, good);

	TCase *sig = tcase_create("signature");
	tcase_add_unchecked_fixture(sig, setup_keys, NULL);
	tcase_add_test(sig, test_tampered_payload);
	tcase_add_test(sig, test_tampered_signature);
	tcase_add_test(sig, test_noncanonical_signature);
	tcase_add_test(sig, test_wrong_key);
	suite_add_tcase(s, sig);

	TCase *hdr = tcase_create("header");
	tcase_add_unchecked_fixture(hdr, setup_keys, NULL);
	tcase_add_test(hdr, test_alg_none);
	tcase_add_test(hdr, test_alg_other);
	tcase_add_test(hdr, test_alg_key_not_configured);
	tcase_add_test(hdr, test_header_verdict_follows_keys);
	tcase_add_test(hdr, test_typ);
	tcase_add_test(hdr, test_header_garbage);
	suite_add_tcase(s, hdr);

	TCase *shape = tcase_create("structure");
	tcase_add_unchecked_fixture(shape, setup_keys, NULL);
	tcase_add_test(shape, test_part_count);
	tcase_add_test(shape, test_non_base64);
	tcase_add_test(shape, test_claims_garbage);
	tcase_add_test(shape, test_length_limits);
	tcase_add_test(shape, test_length_limit_valid_token);
	suite_add_tcase(s, shape);

	TCase *claims = tcase_create("claims");
	tcase_add_unchecked_fixture(claims, setup_keys, NULL);
	tcase_add_loop_test(claims, test_claims_table, 0,
		(int)(sizeof claims_cases / sizeof claims_cases[0]));
	tcase_add_test(claims, test_expiry);
	tcase_add_test(claims, test_not_before);
	tcase_add_test(claims, test_issued_in_future);
	tcase_add_test(claims, test_rooms_any);
	tcase_add_test(claims, test_rooms_size_bound);
	tcase_add_test(claims, test_perm);
	tcase_add_test(claims, test_dev);
	tcase_add_test(claims, test_room_allowed);
	tcase_add_test(claims, test_reasons);
	suite_add_tcase(s, claims);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(token_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
