/* audit_query.h: the read side of the audit journal, for `audiogwctl audit`
 * and GET /v1/audit (SPEC 6.1, 6.4). A read-only connection: in WAL mode it
 * never blocks the journal's writes, nor do they block it. It creates no
 * file: with no journal on the database (no -wal file) it reads the file as
 * immutable, so any user who may read the database may query it. */
#ifndef AGW_AUDIT_QUERY_H
#define AGW_AUDIT_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_QUERY_LIMIT_DEFAULT 100
#define AUDIT_QUERY_LIMIT_MAX 10000

/* Rows of db_path, newest first, as a JSON array of
 *   {"ts","event","worker","session","user","room","ip","reason","detail"}
 * ts: RFC 3339 UTC with microseconds; null for NULL columns (worker is null
 * for the supervisor's events); detail parsed back to JSON when it is JSON,
 * else the string. Filters: since_us (unix microseconds, 0 = all), user,
 * room, event (NULL or "" = any). limit <= 0: AUDIT_QUERY_LIMIT_DEFAULT,
 * capped at AUDIT_QUERY_LIMIT_MAX. A database that does not exist yet gives
 * an empty array. NULL with a message in err on error. */
json_t *audit_query(const char *db_path, int64_t since_us, const char *user, const char *room,
                    const char *event, int limit, char *err, size_t errlen);

/* 2026-11-22T10:00:00.123456Z */
void audit_format_ts(int64_t ts_us, char *buf, size_t len);

#endif
