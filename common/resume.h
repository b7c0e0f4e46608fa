/* resume.h: the resume token of SPEC 4.6, "SESSION.INDEX.MAC": the session
 * id, its registry index (so a resume finds it without a search) and an
 * HMAC-SHA256 (truncated to 128 bits) of both and the user, under a key the
 * supervisor draws at start. Opaque to clients, bound to the user. */
#ifndef AGW_RESUME_H
#define AGW_RESUME_H

#include <stddef.h>

#define RESUME_KEY_LEN 32
#define RESUME_TOKEN_MAX 96

/* 0, or -1 if out is too small. */
int resume_make(const unsigned char key[RESUME_KEY_LEN], const char *id, int index,
                const char *user, char *out, size_t outlen);
/* The registry index, with the session id copied to id (idlen bytes at
 * most); -1 if the token is malformed or not this user's. */
int resume_check(const unsigned char key[RESUME_KEY_LEN], const char *token, const char *user,
                 char *id, size_t idlen);

#endif
