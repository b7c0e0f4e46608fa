/* resume.c: see resume.h. */
#include "common/resume.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_BYTES 16

static void resume_mac(const unsigned char key[RESUME_KEY_LEN], const char *id, int index,
                       const char *user, unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
	char idx[16];
	crypto_auth_hmacsha256_state st;
	snprintf(idx, sizeof idx, "%d", index);
	crypto_auth_hmacsha256_init(&st, key, RESUME_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id) + 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)idx, strlen(idx) + 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)user, strlen(user));
	crypto_auth_hmacsha256_final(&st, mac);
}

int resume_make(const unsigned char key[RESUME_KEY_LEN], const char *id, int index,
                const char *user, char *out, size_t outlen)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	resume_mac(key, id, index, user, mac);
	int n = snprintf(out, outlen, "%s.%d.", id, index);
	if (n < 0 || (size_t)n + sodium_base64_ENCODED_LEN(MAC_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > outlen)
		return -1;
	sodium_bin2base64(out + n, outlen - (size_t)n, mac, MAC_BYTES,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

int resume_check(const unsigned char key[RESUME_KEY_LEN], const char *token, const char *user,
                 char *id, size_t idlen)
{
	const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || (size_t)(dot1 - token) >= idlen || dot1 == token)
		return -1;
	char *end;
	long index = strtol(dot1 + 1, &end, 10);
	if (end != dot2 || dot2 == dot1 + 1 || index < 0 || index > 100000000)
		return -1;
	unsigned char got[MAC_BYTES], want[crypto_auth_hmacsha256_BYTES];
	size_t n;
	if (sodium_base642bin(got, sizeof got, dot2 + 1, strlen(dot2 + 1), NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) || n != MAC_BYTES)
		return -1;
	memcpy(id, token, (size_t)(dot1 - token));
	id[dot1 - token] = '\0';
	resume_mac(key, id, (int)index, user, want);
	return sodium_memcmp(got, want, MAC_BYTES) == 0 ? (int)index : -1;
}
