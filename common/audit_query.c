/* audit_query.c: reading the audit journal (see audit_query.h). Owns the
 * read-only SQLite connection of one query and the row -> JSON mapping. */
#include "common/audit_query.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_QUERY_BUSY_MS 200

void audit_format_ts(int64_t ts_us, char *buf, size_t len)
{
	int64_t sec = ts_us / 1000000, us = ts_us % 1000000;
	if (us < 0) {
		us += 1000000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06dZ", (int)us);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static int utf8_seq(const unsigned char *p, size_t n)
{
	int len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
	        : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	if (len == 0 || (size_t)len > n)
		return 0;
	for (int i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;  /* overlong, surrogate, beyond U+10FFFF */
	return len;
}

/* A JSON string of the bytes, invalid UTF-8 replaced by U+FFFD. */
static json_t *json_text(const unsigned char *p, size_t n)
{
	json_t *s = json_stringn((const char *)p, n);
	if (s)
		return s;
	char *buf = malloc(3 * n + 1);
	size_t out = 0;
	if (!buf)
		return json_null();
	for (size_t i = 0; i < n;) {
		int len = utf8_seq(p + i, n - i);
		if (len) {
			memcpy(buf + out, p + i, (size_t)len);
			out += (size_t)len;
			i += (size_t)len;
		} else {
			memcpy(buf + out, "\xef\xbf\xbd", 3);
			out += 3;
			i++;
		}
	}
	s = json_stringn(buf, out);
	free(buf);
	return s ? s : json_null();
}

static json_t *column_text(sqlite3_stmt *st, int i)
{
	const unsigned char *p = sqlite3_column_text(st, i);
	return p ? json_text(p, (size_t)sqlite3_column_bytes(st, i)) : json_null();
}

static json_t *column_detail(sqlite3_stmt *st, int i)
{
	const char *p = (const char *)sqlite3_column_text(st, i);
	if (!p)
		return json_null();
	json_t *v = json_loadb(p, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY, NULL);
	return v ? v : column_text(st, i);
}

static json_t *row_to_json(sqlite3_stmt *st)
{
	char ts[48];
	audit_format_ts(sqlite3_column_int64(st, 0), ts, sizeof ts);
	json_t *o = json_object();
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "event", column_text(st, 1));
	json_object_set_new(o, "worker", sqlite3_column_type(st, 2) == SQLITE_NULL ? json_null()
	                                 : json_integer(sqlite3_column_int64(st, 2)));
	json_object_set_new(o, "session", column_text(st, 3));
	json_object_set_new(o, "user", column_text(st, 4));
	json_object_set_new(o, "room", column_text(st, 5));
	json_object_set_new(o, "ip", column_text(st, 6));
	json_object_set_new(o, "reason", column_text(st, 7));
	json_object_set_new(o, "detail", column_detail(st, 8));
	return o;
}

static int has_text(const char *s) { return s && *s; }

static void build_sql(char *sql, size_t len, int64_t since_us, const char *user,
                      const char *room, const char *event)
{
	snprintf(sql, len,
	         "SELECT ts_us, event, worker, session, user_id, room, ip, reason, detail FROM audit "
	         "WHERE 1%s%s%s%s ORDER BY ts_us DESC, id DESC LIMIT :limit",
	         since_us ? " AND ts_us >= :since" : "", has_text(user) ? " AND user_id = :user" : "",
	         has_text(room) ? " AND room = :room" : "", has_text(event) ? " AND event = :event" : "");
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *value)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i > 0)
		sqlite3_bind_text(st, i, value, -1, SQLITE_STATIC);
}

static void bind_all(sqlite3_stmt *st, int64_t since_us, const char *user, const char *room,
                     const char *event, int limit)
{
	int i = sqlite3_bind_parameter_index(st, ":since");
	if (i > 0)
		sqlite3_bind_int64(st, i, since_us);
	bind_named_text(st, ":user", user);
	bind_named_text(st, ":room", room);
	bind_named_text(st, ":event", event);
	sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":limit"), limit);
}

/* 1 if the audit table exists, 0 if not (a database the journal never set up), -1 on error. */
static int has_audit_table(sqlite3 *db)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'audit'",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* file:PATH?immutable=1, PATH percent-encoded where URIs need it. */
static int immutable_uri(const char *path, char *uri, size_t len)
{
	size_t n = (size_t)snprintf(uri, len, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < len; p++)
		n += (size_t)(*p == '?' || *p == '#' || *p == '%' || *p <= ' ' || *p >= 0x7f
		              ? snprintf(uri + n, len - n, "%%%02X", *p)
		              : snprintf(uri + n, len - n, "%c", *p));
	return snprintf(uri + n, len - n, "?immutable=1") < (int)(len - n) ? 0 : -1;
}

static sqlite3 *open_readonly(const char *path, int immutable, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char uri[1200];
	if (immutable && immutable_uri(path, uri, sizeof uri) < 0) {
		snprintf(err, errlen, "audit database %s: path too long", path);
		return NULL;
	}
	if (sqlite3_open_v2(immutable ? uri : path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	                    NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "audit database %s: cannot open: %s", path,
		         db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, AUDIT_QUERY_BUSY_MS);
	return db;
}

/* With no -wal file, no journal has the database open and the file alone
 * is the whole truth: read it as immutable, which takes no lock and creates
 * nothing. (A read-only WAL connection would create -wal and -shm, owned by
 * whoever ran the query, and leave them: a journal running as another user
 * could not open the database any more; and a user who may not write the
 * directory could not read it at all.) Otherwise share the journal's WAL. */
static sqlite3 *open_for_query(const char *path, char *err, size_t errlen)
{
	char wal[1100];
	snprintf(wal, sizeof wal, "%s-wal", path);
	int no_writer = access(wal, F_OK) < 0 && errno == ENOENT;
	return open_readonly(path, no_writer, err, errlen);
}

json_t *audit_query(const char *db_path, int64_t since_us, const char *user, const char *room,
                    const char *event, int limit, char *err, size_t errlen)
{
	struct stat sb;
	char sql[512];
	sqlite3_stmt *st = NULL;
	json_t *rows = NULL;
	if (stat(db_path, &sb) < 0 && errno == ENOENT)
		return json_array();  /* nothing audited yet */
	sqlite3 *db = open_for_query(db_path, err, errlen);
	if (!db)
		return NULL;
	int has = has_audit_table(db);
	if (has <= 0) {
		if (has == 0)
			rows = json_array();
		goto out;
	}
	limit = limit <= 0 ? AUDIT_QUERY_LIMIT_DEFAULT : limit > AUDIT_QUERY_LIMIT_MAX
	      ? AUDIT_QUERY_LIMIT_MAX : limit;
	build_sql(sql, sizeof sql, since_us, user, room, event);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	bind_all(st, since_us, user, room, event, limit);
	rows = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(rows, row_to_json(st));
	if (rc != SQLITE_DONE) {
		json_decref(rows);
		rows = NULL;
	}
out:
	if (!rows)
		snprintf(err, errlen, "audit database %s: cannot read: %s", db_path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rows;
}
