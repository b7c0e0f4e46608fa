/* test_audit.c: unit tests for the audit journal's parts that run without
 * the journal process: the wire codec (common/audit.c), the writer's store
 * and schema checks (journal/store.c), including the exactly-once write of
 * a producer's batch, the read side (common/audit_query.c), and the
 * producer's backlog and acknowledgements against REP sockets the test
 * opens itself (a journal that commits and replies, or dies first). */
#include "common/audit.h"
#include "common/audit_query.h"
#include "common/clock.h"
#include "journal/journal.h"
#include "journal/store.h"

#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], db[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/agw-audit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/audit.db", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	char *msg = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
	sqlite3_close(h);
}

static int64_t query_int(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int64_t v = -1;
	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

/* Records as the journal gets them: encoded, then decoded in place. */
typedef struct batch {
	uint8_t buf[64][2048];
	audit_record recs[64];
	int n;
} batch;

static void batch_add(batch *b, const audit_event *e)
{
	ck_assert_int_lt(b->n, 64);
	size_t len = audit_encode(e, b->buf[b->n], sizeof b->buf[b->n]);
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(len, sizeof b->buf[b->n]);
	ck_assert_int_eq(audit_decode(b->buf[b->n], len, &b->recs[b->n]), AUDIT_KIND_EVENT);
	b->n++;
}

static void text_eq(audit_text t, const char *s)
{
	if (!s) {
		ck_assert_ptr_null(t.p);
		return;
	}
	ck_assert_ptr_nonnull(t.p);
	ck_assert_uint_eq(t.len, strlen(s));
	ck_assert_mem_eq(t.p, s, t.len);
}

static const char *str_or_null(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_ptr_nonnull(v);
	return json_is_null(v) ? NULL : json_string_value(v);
}

/* ---- codec ---- */

START_TEST(test_codec_round_trip)
{
	uint8_t buf[1024];
	audit_event e = { .event = "disconnect", .worker = 3, .session = "s-1", .user = "alice",
	                  .room = "room/ß", .ip = "10.0.0.1", .reason = "kicked",
	                  .detail = "{\"code\":4001}", .ts_us = 1795000000123456LL };
	size_t n = audit_encode(&e, NULL, 0);
	ck_assert_uint_gt(n, 13);
	ck_assert_uint_eq(audit_encode(&e, buf, n - 1), n);  /* too small: measured, not written */
	ck_assert_uint_eq(audit_encode(&e, buf, sizeof buf), n);
	ck_assert_uint_eq(buf[0], AUDIT_KIND_EVENT);
	audit_record r;
	ck_assert_int_eq(audit_decode(buf, n, &r), AUDIT_KIND_EVENT);
	ck_assert_int_eq(r.ts_us, 1795000000123456LL);
	ck_assert_int_eq(r.worker, 3);
	text_eq(r.event, "disconnect");
	text_eq(r.session, "s-1");
	text_eq(r.user, "alice");
	text_eq(r.room, "room/ß");
	text_eq(r.ip, "10.0.0.1");
	text_eq(r.reason, "kicked");
	text_eq(r.detail, "{\"code\":4001}");
}
END_TEST

START_TEST(test_codec_nulls_and_now)
{
	uint8_t buf[256];
	audit_event e = { .event = "reload", .worker = -1, .user = "", .detail = NULL };
	int64_t before = clock_wall_us();
	size_t n = audit_encode(&e, buf, sizeof buf);
	int64_t after = clock_wall_us();
	audit_record r;
	ck_assert_int_eq(audit_decode(buf, n, &r), AUDIT_KIND_EVENT);
	ck_assert_int_ge(r.ts_us, before);
	ck_assert_int_le(r.ts_us, after);
	ck_assert_int_eq(r.worker, -1);
	text_eq(r.event, "reload");
	text_eq(r.session, NULL);
	text_eq(r.user, NULL);  /* "" is absent */
	text_eq(r.detail, NULL);
	audit_event none = { .event = "" };
	ck_assert_uint_eq(audit_encode(&none, buf, sizeof buf), 0);
	none.event = NULL;
	ck_assert_uint_eq(audit_encode(&none, buf, sizeof buf), 0);
}
END_TEST

START_TEST(test_codec_limits)
{
	static char user[AUDIT_FIELD_MAX + 10], detail[AUDIT_DETAIL_MAX + 2];
	static uint8_t buf[AUDIT_DETAIL_MAX + 4096];
	/* "é" is 2 bytes: a cut at AUDIT_FIELD_MAX (even) after one "a" would split one */
	user[0] = 'a';
	for (size_t i = 1; i + 2 < sizeof user; i += 2)
		memcpy(user + i, "\xc3\xa9", 2);
	memset(detail, 'x', sizeof detail - 1);
	audit_event e = { .event = "message", .user = user, .detail = detail };
	size_t n = audit_encode(&e, buf, sizeof buf);
	audit_record r;
	ck_assert_int_eq(audit_decode(buf, n, &r), AUDIT_KIND_EVENT);
	ck_assert_uint_eq(r.user.len, AUDIT_FIELD_MAX - 1);
	ck_assert_mem_eq(r.user.p, user, r.user.len);
	char want[64];
	snprintf(want, sizeof want, "{\"truncated\":true,\"bytes\":%zu}", strlen(detail));
	text_eq(r.detail, want);
	detail[AUDIT_DETAIL_MAX] = '\0';  /* exactly the limit: kept */
	n = audit_encode(&e, buf, sizeof buf);
	ck_assert_int_eq(audit_decode(buf, n, &r), AUDIT_KIND_EVENT);
	ck_assert_uint_eq(r.detail.len, AUDIT_DETAIL_MAX);
}
END_TEST

START_TEST(test_codec_rejects)
{
	uint8_t buf[256];
	audit_record r;
	audit_event e = { .event = "join", .room = "lobby" };
	size_t n = audit_encode(&e, buf, sizeof buf);
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_int_eq(audit_decode(buf, cut, &r), -1);
	buf[n] = 0;
	ck_assert_int_eq(audit_decode(buf, n + 1, &r), -1);  /* trailing byte */
	buf[0] = 'Z';
	ck_assert_int_eq(audit_decode(buf, n, &r), -1);
	buf[0] = AUDIT_KIND_BATCH;  /* a batch header is no record */
	ck_assert_int_eq(audit_decode(buf, n, &r), -1);
	/* an event name of length 0 is not an event */
	n = audit_encode(&e, buf, sizeof buf);
	uint8_t bad[256];
	memcpy(bad, buf, 13);
	memset(bad + 13, 0, 4);
	memcpy(bad + 17, buf + 13 + 4 + 4, n - 13 - 8);
	ck_assert_int_eq(audit_decode(bad, n - 4, &r), -1);
}
END_TEST

/* ---- store and query ---- */

static void fill(jstore *s)
{
	static batch b;
	b.n = 0;
	const int64_t t0 = 1795000000000000LL;
	audit_event ev[] = {
		{ "worker_start", 0, NULL, NULL, NULL, NULL, NULL, "{\"pid\":42}", t0 },
		{ "connect", 0, "s1", "alice", "lobby", "10.0.0.1", NULL, NULL, t0 + 1 },
		{ "join", 0, "s1", "alice", "lobby", "10.0.0.1", NULL, NULL, t0 + 2 },
		{ "connect", 1, "s2", "bob", "lobby", "10.0.0.2", NULL, NULL, t0 + 3 },
		{ "auth_fail", 1, NULL, NULL, NULL, "10.0.0.3", "expired", NULL, t0 + 4 },
		{ "kick", -1, NULL, "bob", NULL, NULL, "spam", "not json {", t0 + 5 },
		{ "disconnect", 1, "s2", "bob", "lobby", "10.0.0.2", "kicked", "{\"code\":4001}", t0 + 6 },
		{ "connect", 0, "s3", "carol", "stage", "10.0.0.4", NULL, "[1,2]", t0 + 7 },
		{ "disconnect", 0, "s1", "alice", "lobby", "10.0.0.1", "client", NULL, t0 + 8 },
	};
	for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++)
		batch_add(&b, &ev[i]);
	ck_assert_int_eq(jstore_write_batch(s, b.recs, b.n), 0);
}

static json_t *q(int64_t since, const char *user, const char *room, const char *event, int limit)
{
	char err[512] = "";
	json_t *rows = audit_query(db, since, user, room, event, limit, err, sizeof err);
	ck_assert_msg(rows != NULL, "audit_query: %s", err);
	ck_assert(json_is_array(rows));
	return rows;
}

START_TEST(test_store_and_query)
{
	char err[512] = "";
	ck_assert_msg(journal_check_database(db, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
	                               "AND name LIKE 'audit_%'"), 4);
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	fill(s);

	json_t *rows = q(0, NULL, NULL, NULL, 0);
	ck_assert_uint_eq(json_array_size(rows), 9);
	json_t *first = json_array_get(rows, 0), *last = json_array_get(rows, 8);
	ck_assert_str_eq(str_or_null(first, "event"), "disconnect");  /* newest first */
	ck_assert_str_eq(str_or_null(first, "ts"), "2026-11-18T11:06:40.000008Z");
	ck_assert_str_eq(str_or_null(first, "user"), "alice");
	ck_assert_str_eq(str_or_null(first, "reason"), "client");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "worker")), 0);
	ck_assert(json_is_null(json_object_get(first, "detail")));
	ck_assert_str_eq(str_or_null(last, "event"), "worker_start");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(last, "detail"), "pid")), 42);
	ck_assert_ptr_null(str_or_null(last, "session"));
	ck_assert_ptr_null(str_or_null(last, "user"));
	ck_assert_ptr_null(str_or_null(last, "room"));
	ck_assert_ptr_null(str_or_null(last, "ip"));
	ck_assert_ptr_null(str_or_null(last, "reason"));
	json_t *kick = json_array_get(rows, 3);
	ck_assert_str_eq(str_or_null(kick, "event"), "kick");
	ck_assert(json_is_null(json_object_get(kick, "worker")));         /* the supervisor */
	ck_assert_str_eq(str_or_null(kick, "detail"), "not json {");        /* kept as a string */
	ck_assert(json_is_array(json_object_get(json_array_get(rows, 1), "detail")));
	ck_assert_uint_eq(json_object_size(first), 9);
	json_decref(rows);

	rows = q(0, "bob", NULL, NULL, 0);
	ck_assert_uint_eq(json_array_size(rows), 3);
	ck_assert_str_eq(str_or_null(json_array_get(rows, 0), "event"), "disconnect");
	ck_assert_str_eq(str_or_null(json_array_get(rows, 2), "event"), "connect");
	json_decref(rows);
	rows = q(0, NULL, "lobby", NULL, 0);
	ck_assert_uint_eq(json_array_size(rows), 5);
	json_decref(rows);
	rows = q(0, NULL, NULL, "connect", 0);
	ck_assert_uint_eq(json_array_size(rows), 3);
	json_decref(rows);
	rows = q(0, "alice", "lobby", "connect", 0);
	ck_assert_uint_eq(json_array_size(rows), 1);
	ck_assert_str_eq(str_or_null(json_array_get(rows, 0), "session"), "s1");
	json_decref(rows);
	rows = q(1795000000000006LL, NULL, NULL, NULL, 0);  /* since: inclusive */
	ck_assert_uint_eq(json_array_size(rows), 3);
	json_decref(rows);
	rows = q(0, NULL, NULL, NULL, 2);
	ck_assert_uint_eq(json_array_size(rows), 2);
	ck_assert_str_eq(str_or_null(json_array_get(rows, 1), "event"), "connect");
	json_decref(rows);
	rows = q(0, "nobody", "", "", 0);
	ck_assert_uint_eq(json_array_size(rows), 0);
	json_decref(rows);
	jstore_close(s);

	/* checking again keeps the rows */
	ck_assert_msg(journal_check_database(db, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 9);
}
END_TEST

START_TEST(test_query_limits)
{
	char err[512] = "";
	static batch b;
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	for (int round = 0; round < 3; round++) {
		b.n = 0;
		for (int i = 0; i < 50; i++) {
			audit_event e = { .event = "join", .worker = 2, .room = "r",
			                  .ts_us = 1795000000000000LL + round * 50 + i };
			batch_add(&b, &e);
		}
		ck_assert_int_eq(jstore_write_batch(s, b.recs, b.n), 0);
	}
	json_t *rows = q(0, NULL, NULL, NULL, 0);
	ck_assert_uint_eq(json_array_size(rows), AUDIT_QUERY_LIMIT_DEFAULT);
	json_decref(rows);
	rows = q(0, NULL, NULL, NULL, 1000000);
	ck_assert_uint_eq(json_array_size(rows), 150);
	json_decref(rows);
	jstore_close(s);
}
END_TEST

START_TEST(test_query_missing_and_empty)
{
	char err[512] = "";
	json_t *rows = audit_query(db, 0, NULL, NULL, NULL, 0, err, sizeof err);
	ck_assert_ptr_nonnull(rows);
	ck_assert_uint_eq(json_array_size(rows), 0);
	json_decref(rows);
	ck_assert_int_eq(access(db, F_OK), -1);  /* the reader created nothing */
	exec_sql(db, "CREATE TABLE other (x)");
	rows = audit_query(db, 0, NULL, NULL, NULL, 0, err, sizeof err);
	ck_assert_ptr_nonnull(rows);
	ck_assert_uint_eq(json_array_size(rows), 0);
	json_decref(rows);
}
END_TEST

/* A writer in the middle of a transaction: the reader sees the committed
 * rows at once, and the writer commits right after. */
START_TEST(test_query_does_not_block)
{
	char err[512] = "";
	static batch b;
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	fill(s);
	sqlite3 *w;
	ck_assert_int_eq(sqlite3_open(db, &w), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(w, "BEGIN IMMEDIATE; DELETE FROM audit;", NULL, NULL, NULL),
	                 SQLITE_OK);
	int64_t t = clock_mono_us();
	json_t *rows = q(0, NULL, NULL, NULL, 0);
	ck_assert_int_lt(clock_mono_us() - t, 100000);
	ck_assert_uint_eq(json_array_size(rows), 9);
	json_decref(rows);
	ck_assert_int_eq(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(w);
	/* and a reader holding a snapshot does not stop a batch */
	sqlite3 *rd;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(db, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(rd, "SELECT id FROM audit", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	b.n = 0;
	audit_event e = { .event = "leave", .worker = 1 };
	batch_add(&b, &e);
	t = clock_mono_us();
	ck_assert_int_eq(jstore_write_batch(s, b.recs, b.n), 0);
	ck_assert_int_lt(clock_mono_us() - t, 100000);
	ck_assert_int_eq(jstore_checkpoint(s), 0);
	sqlite3_finalize(st);
	sqlite3_close(rd);
	jstore_close(s);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 10);
}
END_TEST

/* A reader that may not create the -shm file (another user, a read-only
 * directory) still reads a database no journal has open. */
START_TEST(test_query_readonly_directory)
{
	char err[512] = "";
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	fill(s);
	jstore_close(s);  /* the last connection: -wal and -shm are gone */
	ck_assert_int_eq(chmod(dir, 0555), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		json_t *rows = audit_query(db, 0, "bob", NULL, NULL, 0, err, sizeof err);
		if (!rows)
			fprintf(stderr, "audit_query: %s\n", err);
		_exit(!rows ? 1 : json_array_size(rows) == 3 ? 0 : 2);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* and a reader who could create files leaves none behind */
	json_t *rows = q(0, NULL, NULL, NULL, 0);
	ck_assert_uint_eq(json_array_size(rows), 9);
	json_decref(rows);
	char path[192];
	snprintf(path, sizeof path, "%s-wal", db);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s-shm", db);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(test_prune)
{
	char err[512] = "";
	static batch b;
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	b.n = 0;
	for (int i = 0; i < 60; i++) {
		audit_event e = { .event = "connect", .ts_us = 1000 + i };  /* 40 old, 20 new */
		batch_add(&b, &e);
	}
	ck_assert_int_eq(jstore_write_batch(s, b.recs, b.n), 0);
	ck_assert_int_eq(jstore_prune(s, 1040, 15), 15);
	ck_assert_int_eq(jstore_prune(s, 1040, 15), 15);
	ck_assert_int_eq(jstore_prune(s, 1040, 15), 10);
	ck_assert_int_eq(jstore_prune(s, 1040, 15), 0);
	jstore_close(s);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 20);
	ck_assert_int_eq(query_int(db, "SELECT min(ts_us) FROM audit"), 1040);
}
END_TEST

/* A producer's batch is written once: the same (producer, seq) again (a
 * journal died between its commit and its reply, the producer sent the
 * batch to the next one) or an older seq is answered, not stored. */
START_TEST(test_store_write_once)
{
	char err[512] = "";
	static batch b;
	const uint64_t p1 = 0x8000000000000001ULL, p2 = 7;  /* p1: beyond INT64_MAX as i64 */
	jstore *s = jstore_open(db, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	b.n = 0;
	for (int i = 0; i < 5; i++) {
		audit_event e = { .event = "join", .worker = 1, .room = "r", .ts_us = 1000 + i };
		batch_add(&b, &e);
	}
	ck_assert_int_eq(jstore_producer_seq(s, p1), 0);
	ck_assert_int_eq(jstore_write_once(s, p1, 1, b.recs, b.n), 1);
	ck_assert_int_eq(jstore_producer_seq(s, p1), 1);
	ck_assert_int_eq(jstore_write_once(s, p1, 1, b.recs, b.n), 0);  /* replayed */
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 5);
	ck_assert_int_eq(jstore_write_once(s, p1, 2, b.recs, 3), 1);
	ck_assert_int_eq(jstore_write_once(s, p1, 1, b.recs, b.n), 0);  /* older */
	ck_assert_int_eq(jstore_write_once(s, p1, 2, b.recs, 3), 0);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 8);
	ck_assert_int_eq(jstore_write_once(s, p2, 1, b.recs, 2), 1);    /* another producer */
	ck_assert_int_eq(jstore_write_once(s, p1, 5, b.recs, 1), 1);    /* gaps are fine */
	ck_assert_int_eq(jstore_write_once(s, p2, 2, b.recs, 0), 1);    /* no events */
	ck_assert_int_eq(jstore_producer_seq(s, p2), 2);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 11);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit_producers"), 2);
	ck_assert_int_eq(query_int(db, "SELECT seq FROM audit_producers WHERE producer = -9223372036854775807"), 5);
	int64_t age = clock_wall_us() - query_int(db, "SELECT min(seen_us) FROM audit_producers");
	ck_assert_int_ge(age, 0);
	ck_assert_int_lt(age, 60000000);

	/* a write failing halfway stores neither the events nor the seq */
	exec_sql(db, "CREATE TRIGGER boom BEFORE INSERT ON audit WHEN NEW.event = 'boom' "
	             "BEGIN SELECT RAISE(ABORT, 'boom'); END");
	audit_event boom = { .event = "boom" };
	batch_add(&b, &boom);
	ck_assert_int_eq(jstore_write_once(s, p2, 3, b.recs, b.n), -1);
	ck_assert_ptr_nonnull(strstr(jstore_errmsg(s), "boom"));
	ck_assert_int_eq(jstore_producer_seq(s, p2), 2);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 11);
	exec_sql(db, "DROP TRIGGER boom");
	ck_assert_int_eq(jstore_write_once(s, p2, 3, b.recs, b.n), 1);  /* the retry */
	ck_assert_int_eq(jstore_producer_seq(s, p2), 3);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 17);

	/* producers not seen for a while are forgotten */
	exec_sql(db, "UPDATE audit_producers SET seen_us = 1000 WHERE producer = 7");
	ck_assert_int_eq(jstore_forget_producers(s, clock_wall_us() - 86400000000LL), 1);
	ck_assert_int_eq(jstore_producer_seq(s, p2), 0);
	ck_assert_int_eq(jstore_producer_seq(s, p1), 5);
	jstore_close(s);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit_producers"), 1);
}
END_TEST

/* ---- schema checks ---- */

static void refused(const char *path, const char *want)
{
	char err[512] = "";
	ck_assert_int_eq(journal_check_database(path, err, sizeof err), -1);
	ck_assert_msg(strstr(err, path) != NULL, "no file name in \"%s\"", err);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" not in \"%s\"", want, err);
	ck_assert_ptr_null(jstore_open(path, err, sizeof err));
}

START_TEST(test_schema_newer)
{
	char err[512];
	ck_assert_int_eq(journal_check_database(db, err, sizeof err), 0);
	exec_sql(db, "PRAGMA user_version = 2");
	refused(db, "schema version 2 is newer");
}
END_TEST

START_TEST(test_schema_foreign_table)
{
	exec_sql(db, "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts INTEGER, what TEXT)");
	refused(db, "foreign schema");
	refused(db, "(id, ts, what)");
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 0);  /* left alone */
}
END_TEST

START_TEST(test_schema_foreign_types)
{
	/* the right names, a wrong NOT NULL */
	exec_sql(db, "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts_us INTEGER, event TEXT NOT NULL, "
	             "worker INTEGER, session TEXT, user_id TEXT, room TEXT, ip TEXT, reason TEXT, detail TEXT)");
	refused(db, "foreign schema");
}
END_TEST

START_TEST(test_schema_foreign_database)
{
	exec_sql(db, "CREATE TABLE users (id); CREATE TABLE orders (id)");
	refused(db, "tables: orders, users");
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit'"), 0);
	exec_sql(db, "DROP TABLE users; DROP TABLE orders; PRAGMA user_version = 1");
	refused(db, "foreign schema");  /* ours by its version, but no table */
}
END_TEST

START_TEST(test_schema_adopts_spec_table)
{
	char err[512] = "";
	exec_sql(db, "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL, "
	             "event TEXT NOT NULL, worker INTEGER, session TEXT, user_id TEXT, room TEXT, "
	             "ip TEXT, reason TEXT, detail TEXT)");
	ck_assert_msg(journal_check_database(db, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit_producers"), 0);  /* added */
	sqlite3 *h;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(h);
}
END_TEST

/* A database of this version before audit_producers existed gets it; one
 * whose audit_producers is not ours is refused. */
START_TEST(test_schema_producers_table)
{
	char err[512] = "";
	exec_sql(db, "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL, "
	             "event TEXT NOT NULL, worker INTEGER, session TEXT, user_id TEXT, room TEXT, "
	             "ip TEXT, reason TEXT, detail TEXT); PRAGMA user_version = 1;"
	             "INSERT INTO audit (ts_us, event) VALUES (1, 'connect')");
	ck_assert_msg(journal_check_database(db, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_producers'"), 1);
	ck_assert_msg(journal_check_database(db, err, sizeof err) == 0, "%s", err);  /* again */
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM audit"), 1);
	exec_sql(db, "DROP TABLE audit_producers; CREATE TABLE audit_producers (producer TEXT, n INTEGER)");
	refused(db, "foreign schema");
	refused(db, "audit_producers table has columns (producer, n)");
}
END_TEST

START_TEST(test_schema_not_sqlite)
{
	FILE *f = fopen(db, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a database, but it is long enough to look like a header....", f);
	for (int i = 0; i < 100; i++)
		fputs("0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	refused(db, "not a database");
}
END_TEST

START_TEST(test_schema_unwritable)
{
	char path[192];
	snprintf(path, sizeof path, "%s/missing-dir/audit.db", dir);
	refused(path, "cannot open");
	/* a parent that is a file */
	snprintf(path, sizeof path, "%s/file", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(path, sizeof path, "%s/file/audit.db", dir);
	refused(path, "cannot open");
	/* a read-only file (root ignores the mode: skip that part then) */
	char err[512];
	ck_assert_int_eq(journal_check_database(db, err, sizeof err), 0);
	ck_assert_int_eq(chmod(db, 0444), 0);
	if (geteuid() != 0)
		refused(db, "read-only");
}
END_TEST

/* ---- producer, against a journal of the test's own ---- */

/* The test's "database": copies of the requests committed, and each
 * producer's last seq (audit_producers). The test journals (tj) that come
 * and go share it, as journal processes share the file. */
#define TDB_PRODUCERS 8
typedef struct tdb {
	pthread_mutex_t mu;
	pthread_cond_t grew;
	nng_msg **batches;
	int n_batches, cap;
	int events;                     /* in the committed batches */
	struct { uint64_t id, seq; } producers[TDB_PRODUCERS];
	int n_producers;
	int duplicates;                 /* requests answered without committing */
	int gaps;                       /* committed seqs that were not the last + 1 */
	int bad;                        /* malformed requests */
	int rd_batch;                   /* the reader's cursor over the events */
	size_t rd_off;
} tdb;

static void tdb_init(tdb *d)
{
	pthread_condattr_t ca;
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->grew, &ca);
	pthread_condattr_destroy(&ca);
}

static void tdb_free(tdb *d)
{
	for (int i = 0; i < d->n_batches; i++)
		nng_msg_free(d->batches[i]);
	free(d->batches);
	pthread_cond_destroy(&d->grew);
	pthread_mutex_destroy(&d->mu);
}

/* What the journal does with a request: 1 committed, 0 in already, -1
 * malformed. */
static int tdb_commit(tdb *d, nng_msg *m)
{
	const void *body = nng_msg_body(m);
	size_t len = nng_msg_len(m), off;
	uint64_t id, seq;
	audit_record r;
	int n = 0, rc, i, ret = 1;
	if (audit_decode_batch(body, len, &id, &seq, &off) < 0)
		return -1;
	while ((rc = audit_decode_next(body, len, &off, &r)) > 0)
		n++;
	if (rc < 0 || n == 0 || n > AUDIT_BATCH_EVENTS)
		return -1;
	pthread_mutex_lock(&d->mu);
	for (i = 0; i < d->n_producers && d->producers[i].id != id; i++)
		;
	if (i == d->n_producers) {
		if (i == TDB_PRODUCERS) {
			ret = -1;
			goto out;
		}
		d->producers[d->n_producers++].id = id;
	}
	if (seq <= d->producers[i].seq) {
		d->duplicates++;
		ret = 0;
		goto out;
	}
	d->gaps += seq != d->producers[i].seq + 1;
	d->producers[i].seq = seq;
	if (d->n_batches == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 64;
		d->batches = realloc(d->batches, (size_t)d->cap * sizeof *d->batches);
	}
	if (!d->batches || nng_msg_dup(&d->batches[d->n_batches], m) != 0) {
		ret = -1;
		goto out;
	}
	d->n_batches++;
	d->events += n;
	pthread_cond_broadcast(&d->grew);
out:
	pthread_mutex_unlock(&d->mu);
	return ret;
}

/* The next committed event, waiting up to wait_ms; 0 if none came. r
 * points into the tdb's copy. */
static int next_event(tdb *d, audit_record *r, int wait_ms)
{
	struct timespec deadline = clock_deadline_ms(wait_ms);
	int got = 0;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		if (d->rd_batch < d->n_batches) {
			nng_msg *m = d->batches[d->rd_batch];
			uint64_t id, seq;
			if (d->rd_off == 0)
				ck_assert_int_eq(audit_decode_batch(nng_msg_body(m), nng_msg_len(m), &id, &seq,
				                                    &d->rd_off), 0);
			int rc = audit_decode_next(nng_msg_body(m), nng_msg_len(m), &d->rd_off, r);
			ck_assert_int_ne(rc, -1);
			if (rc == AUDIT_KIND_EVENT) {
				got = 1;
				break;
			}
			d->rd_batch++;
			d->rd_off = 0;
			continue;
		}
		if (pthread_cond_timedwait(&d->grew, &d->mu, &deadline) != 0)
			break;
	}
	pthread_mutex_unlock(&d->mu);
	return got;
}

/* Waits up to 5 s until n events are committed. */
static void wait_committed(tdb *d, int n)
{
	struct timespec deadline = clock_deadline_ms(5000);
	pthread_mutex_lock(&d->mu);
	while (d->events < n && pthread_cond_timedwait(&d->grew, &d->mu, &deadline) == 0)
		;
	int got = d->events;
	pthread_mutex_unlock(&d->mu);
	ck_assert_int_eq(got, n);
}

static int tdb_get(tdb *d, const int *field)
{
	pthread_mutex_lock(&d->mu);
	int v = *field;
	pthread_mutex_unlock(&d->mu);
	return v;
}

/* A journal: a REP socket and a thread that commits each request into the
 * tdb and replies (TJ_ACK), receives and forgets it (TJ_HOLD: killed
 * before its commit, or stuck), or commits it without replying
 * (TJ_NO_REPLY: killed between its commit and its reply). */
enum { TJ_ACK, TJ_HOLD, TJ_NO_REPLY };

typedef struct tj {
	nng_socket s;
	pthread_t th;
	tdb *db;
	const char *url;
	_Atomic int mode, stop, requests;
} tj;

static void *tj_run(void *arg)
{
	tj *j = arg;
	while (!atomic_load(&j->stop)) {
		nng_msg *m;
		if (nng_recvmsg(j->s, &m, 0) != 0)
			continue;
		atomic_fetch_add(&j->requests, 1);
		int mode = atomic_load(&j->mode);
		if (mode != TJ_HOLD && tdb_commit(j->db, m) < 0) {
			pthread_mutex_lock(&j->db->mu);
			j->db->bad++;
			pthread_mutex_unlock(&j->db->mu);
		}
		nng_msg_clear(m);
		if (mode != TJ_ACK || nng_sendmsg(j->s, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

static void tj_start(tj *j, const char *url, tdb *d, int mode)
{
	memset(j, 0, sizeof *j);
	j->db = d;
	j->url = url;
	atomic_store(&j->mode, mode);
	ck_assert_int_eq(nng_rep0_open(&j->s), 0);
	ck_assert_int_eq(nng_socket_set_ms(j->s, NNG_OPT_RECVTIMEO, 20), 0);
	ck_assert_int_eq(nng_listen(j->s, url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&j->th, NULL, tj_run, j), 0);
}

/* Gone at once, as after a SIGKILL: whatever it had not replied to stays
 * unanswered. */
static void tj_kill(tj *j)
{
	atomic_store(&j->stop, 1);
	pthread_join(j->th, NULL);
	nng_close(j->s);
	unlink(j->url + 6);
}

static void wait_requests(tj *j, int more_than)
{
	for (int i = 0; i < 500 && atomic_load(&j->requests) <= more_than; i++)
		usleep(10000);
	ck_assert_int_gt(atomic_load(&j->requests), more_than);
}

static void emit_numbered(audit_sink *a, int i)
{
	char session[32], detail[64];
	snprintf(session, sizeof session, "s-%d", i);
	snprintf(detail, sizeof detail, "{\"n\":%d}", i);
	audit_event e = { .event = i % 2 ? "disconnect" : "connect", .worker = i % 7,
	                  .session = session, .user = "u", .room = "r", .ip = "127.0.0.1",
	                  .reason = i % 2 ? "client" : NULL, .detail = detail, .ts_us = 1000000 + i };
	audit_emit(a, &e);
}

static void check_numbered(const audit_record *r, int i)
{
	char session[32], detail[64];
	snprintf(session, sizeof session, "s-%d", i);
	snprintf(detail, sizeof detail, "{\"n\":%d}", i);
	ck_assert_int_eq(r->ts_us, 1000000 + i);
	ck_assert_int_eq(r->worker, i % 7);
	text_eq(r->event, i % 2 ? "disconnect" : "connect");
	text_eq(r->session, session);
	text_eq(r->user, "u");
	text_eq(r->room, "r");
	text_eq(r->ip, "127.0.0.1");
	text_eq(r->reason, i % 2 ? "client" : NULL);
	text_eq(r->detail, detail);
}

static void expect_numbered(tdb *d, int i)
{
	audit_record r;
	ck_assert_msg(next_event(d, &r, 5000), "event %d never came", i);
	check_numbered(&r, i);
}

static void expect_nothing_more(tdb *d)
{
	audit_record r;
	ck_assert_int_eq(next_event(d, &r, 200), 0);
	ck_assert_int_eq(tdb_get(d, &d->gaps), 0);
	ck_assert_int_eq(tdb_get(d, &d->bad), 0);
}

START_TEST(test_decode_next)
{
	uint8_t buf[4096];
	size_t len = AUDIT_BATCH_HEADER_LEN;
	audit_encode_batch(buf, 0xfedcba9876543210ULL, 42);
	for (int i = 0; i < 5; i++) {
		char user[16];
		snprintf(user, sizeof user, "u%d", i);
		audit_event e = { .event = "join", .user = user, .worker = i };
		len += audit_encode(&e, buf + len, sizeof buf - len);
	}
	audit_record r;
	uint64_t producer, seq;
	size_t off = 0;
	ck_assert_int_eq(audit_decode_batch(buf, len, &producer, &seq, &off), 0);
	ck_assert(producer == 0xfedcba9876543210ULL);
	ck_assert(seq == 42);
	ck_assert_uint_eq(off, AUDIT_BATCH_HEADER_LEN);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(audit_decode_next(buf, len, &off, &r), AUDIT_KIND_EVENT);
		ck_assert_int_eq(r.worker, i);
		ck_assert_uint_eq(r.user.len, 2);
		ck_assert_int_eq(r.user.p[1], '0' + i);
	}
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(audit_decode_next(buf, len, &off, &r), 0);
	ck_assert_int_eq(audit_decode(buf + AUDIT_BATCH_HEADER_LEN, len - AUDIT_BATCH_HEADER_LEN, &r),
	                 -1);  /* not a single record */
	off = AUDIT_BATCH_HEADER_LEN;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(audit_decode_next(buf, len - 1, &off, &r), AUDIT_KIND_EVENT);
	ck_assert_int_eq(audit_decode_next(buf, len - 1, &off, &r), -1);  /* the cut last one */
	/* no header: a short message, a record, another kind */
	ck_assert_int_eq(audit_decode_batch(buf, AUDIT_BATCH_HEADER_LEN - 1, &producer, &seq, &off), -1);
	ck_assert_int_eq(audit_decode_batch(buf + AUDIT_BATCH_HEADER_LEN, len - AUDIT_BATCH_HEADER_LEN,
	                                    &producer, &seq, &off), -1);
	buf[0] = 0x00;
	ck_assert_int_eq(audit_decode_batch(buf, len, &producer, &seq, &off), -1);
	/* a batch of no events is well formed (the journal commits nothing) */
	audit_encode_batch(buf, 1, 1);
	ck_assert_int_eq(audit_decode_batch(buf, AUDIT_BATCH_HEADER_LEN, &producer, &seq, &off), 0);
	ck_assert_int_eq(audit_decode_next(buf, AUDIT_BATCH_HEADER_LEN, &off, &r), 0);
}
END_TEST

START_TEST(test_producer_backlog)
{
	char url[128];
	tdb d;
	tj j;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	audit_sink *a = audit_open(url, 1000);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 1500; i++)
		emit_numbered(a, i);
	ck_assert_int_eq(audit_dropped(a), 500);
	ck_assert_int_eq(audit_pending(a), 1000);
	ck_assert_int_eq(audit_sent(a), 0);
	ck_assert_int_eq(audit_flush(a, 0), 1000);
	ck_assert_int_eq(audit_flush(a, 50), 1000);  /* nobody listens: gives up in time */
	emit_numbered(a, 1500);                       /* still full */
	ck_assert_int_eq(audit_dropped(a), 501);

	tj_start(&j, url, &d, TJ_ACK);
	for (int i = 0; i < 1000; i++)  /* the backlog moves as the journal commits */
		expect_numbered(&d, i);
	ck_assert_int_eq(audit_flush(a, 5000), 0);
	ck_assert_int_eq(audit_sent(a), 1000);
	ck_assert_int_eq(audit_pending(a), 0);
	expect_nothing_more(&d);
	ck_assert_int_le(tdb_get(&d, &d.n_batches), 10);  /* in batches, not one by one */
	/* room again: new events go through */
	emit_numbered(a, 2000);
	ck_assert_int_eq(audit_flush(a, 2000), 0);
	expect_numbered(&d, 2000);
	ck_assert_int_eq(audit_dropped(a), 501);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

START_TEST(test_producer_live)
{
	char url[128];
	tdb d;
	tj j;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_ACK);
	audit_sink *a = audit_open(url, 0);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 20000; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);  /* the caller's timer */
	ck_assert_int_eq(audit_dropped(a), 0);
	for (int i = 0; i < 20000; i++)
		expect_numbered(&d, i);
	ck_assert_int_eq(audit_flush(a, 5000), 0);
	ck_assert_int_eq(audit_sent(a), 20000);
	expect_nothing_more(&d);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

/* While nothing is in flight, a batch leaves when an emit finds it
 * AUDIT_LINGER_MS old, or at the caller's periodic audit_flush(a, 0). */
START_TEST(test_producer_linger)
{
	char url[128];
	tdb d;
	tj j;
	audit_record r;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_ACK);
	audit_sink *a = audit_open(url, 0);
	ck_assert_ptr_nonnull(a);
	usleep(100000);  /* connected */
	emit_numbered(a, 7);
	ck_assert_int_eq(next_event(&d, &r, 100), 0);  /* waits for company */
	int64_t t = clock_mono_us();
	audit_flush(a, 0);                               /* the timer's call */
	expect_numbered(&d, 7);
	ck_assert_int_lt(clock_mono_us() - t, 500000);
	ck_assert_int_eq(audit_flush(a, 1000), 0);     /* acknowledged: nothing in flight */
	emit_numbered(a, 8);
	usleep((AUDIT_LINGER_MS + 5) * 1000);
	emit_numbered(a, 9);                             /* finds the batch old: both go */
	expect_numbered(&d, 8);
	expect_numbered(&d, 9);
	ck_assert_int_eq(audit_flush(a, 1000), 0);
	ck_assert_int_eq(audit_sent(a), 3);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

/* Handed over is not done: only the journal's reply (after its commit)
 * counts, and a request left unanswered is sent again. */
START_TEST(test_producer_waits_for_commit)
{
	char url[128];
	tdb d;
	tj j;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_HOLD);
	audit_sink *a = audit_open(url, 0);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 10; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);
	wait_requests(&j, 0);
	ck_assert_int_eq(audit_flush(a, 300), 10);  /* received, not committed: pending */
	ck_assert_int_eq(audit_sent(a), 0);
	ck_assert_int_eq(audit_pending(a), 10);
	int held = atomic_load(&j.requests);
	atomic_store(&j.mode, TJ_ACK);               /* the journal recovers */
	ck_assert_int_eq(audit_flush(a, 5000), 0);   /* resent after AUDIT_RESEND_MS */
	ck_assert_int_gt(atomic_load(&j.requests), held);
	ck_assert_int_eq(audit_sent(a), 10);
	for (int i = 0; i < 10; i++)
		expect_numbered(&d, i);
	expect_nothing_more(&d);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

/* The journal is killed mid-stream, once between a commit and its reply,
 * once between receiving a batch and committing it, and replaced: every
 * event is stored, none twice. */
START_TEST(test_producer_journal_killed)
{
	char url[128];
	tdb d;
	tj j1, j2, j3;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j1, url, &d, TJ_ACK);
	audit_sink *a = audit_open(url, 0);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 1000; i++)
		emit_numbered(a, i);
	ck_assert_int_eq(audit_flush(a, 5000), 0);

	/* j1 commits the next batch and dies before its reply */
	atomic_store(&j1.mode, TJ_NO_REPLY);
	for (int i = 1000; i < 1100; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);
	wait_committed(&d, 1100);
	ck_assert_int_eq(audit_flush(a, 100), 100);  /* committed, not acknowledged */
	tj_kill(&j1);
	for (int i = 1100; i < 1200; i++)            /* meanwhile, no journal */
		emit_numbered(a, i);
	audit_flush(a, 0);
	tj_start(&j2, url, &d, TJ_ACK);
	ck_assert_int_eq(audit_flush(a, 5000), 0);   /* 1000-1099 again, then the rest */
	ck_assert_int_ge(tdb_get(&d, &d.duplicates), 1);
	ck_assert_int_eq(tdb_get(&d, &d.events), 1200);

	/* j2 receives the next batch and dies before committing it */
	atomic_store(&j2.mode, TJ_HOLD);
	int before = atomic_load(&j2.requests);
	for (int i = 1200; i < 1300; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);
	wait_requests(&j2, before);
	tj_kill(&j2);
	ck_assert_int_eq(audit_pending(a), 100);
	tj_start(&j3, url, &d, TJ_ACK);
	ck_assert_int_eq(audit_flush(a, 5000), 0);

	for (int i = 0; i < 1300; i++)
		expect_numbered(&d, i);
	expect_nothing_more(&d);
	ck_assert_int_eq(audit_sent(a), 1300);
	ck_assert_int_eq(audit_dropped(a), 0);
	ck_assert_int_eq(tdb_get(&d, &d.n_producers), 1);
	audit_close(a);
	tj_kill(&j3);
	tdb_free(&d);
}
END_TEST

/* The journal is away for a while (a restart): nothing emitted meanwhile
 * is lost once it is back. */
START_TEST(test_producer_reconnect)
{
	char url[128];
	tdb d;
	tj j;
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_ACK);
	audit_sink *a = audit_open(url, 0);
	ck_assert_ptr_nonnull(a);
	emit_numbered(a, 0);
	ck_assert_int_eq(audit_flush(a, 2000), 0);
	expect_numbered(&d, 0);
	tj_kill(&j);
	usleep(100000);  /* the producer has seen its connection go */
	for (int i = 1; i < 100; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);
	usleep(50000);
	ck_assert_int_eq(audit_pending(a), 99);
	tj_start(&j, url, &d, TJ_ACK);
	ck_assert_int_eq(audit_flush(a, 5000), 0);
	for (int i = 1; i < 100; i++)
		expect_numbered(&d, i);
	expect_nothing_more(&d);
	ck_assert_int_eq(audit_sent(a), 100);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

/* Two sinks, two producer ids, each its own sequence. */
START_TEST(test_producer_two_sinks)
{
	char url[128];
	tdb d;
	tj j;
	audit_record r;
	static char seen[3000];
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_ACK);
	audit_sink *s[2] = { audit_open(url, 0), audit_open(url, 0) };
	ck_assert_ptr_nonnull(s[0]);
	ck_assert_ptr_nonnull(s[1]);
	for (int i = 0; i < 3000; i++) {
		emit_numbered(s[i % 2], i);
		if (i % 100 == 0)
			audit_flush(s[(i / 100) % 2], 0);
	}
	ck_assert_int_eq(audit_flush(s[0], 5000), 0);
	ck_assert_int_eq(audit_flush(s[1], 5000), 0);
	int last[2] = { -1, -1 };
	for (int k = 0; k < 3000; k++) {
		ck_assert(next_event(&d, &r, 5000));
		int i = (int)(r.ts_us - 1000000);
		ck_assert_int_ge(i, 0);
		ck_assert_int_lt(i, 3000);
		check_numbered(&r, i);
		ck_assert_int_eq(seen[i]++, 0);
		ck_assert_int_gt(i, last[i % 2]);  /* each sink's events in order */
		last[i % 2] = i;
	}
	expect_nothing_more(&d);
	ck_assert_int_eq(tdb_get(&d, &d.n_producers), 2);
	ck_assert(d.producers[0].id != d.producers[1].id);
	audit_close(s[0]);
	audit_close(s[1]);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

START_TEST(test_producer_null_and_close)
{
	audit_emit(NULL, &(audit_event){ .event = "x" });
	ck_assert_int_eq(audit_flush(NULL, 10), 0);
	audit_close(NULL);
	ck_assert_ptr_null(audit_open("nope://x", 10));
	char url[128];
	snprintf(url, sizeof url, "ipc://%s/audit.ipc", dir);
	audit_sink *a = audit_open(url, 10);
	ck_assert_ptr_nonnull(a);
	audit_emit(a, &(audit_event){ .event = "" });  /* not an event: counted */
	ck_assert_int_eq(audit_dropped(a), 1);
	for (int i = 0; i < 5; i++)
		emit_numbered(a, i);
	audit_close(a);  /* pending events are discarded, nothing leaks or hangs */
	/* and with a batch in flight, unanswered */
	tdb d;
	tj j;
	tdb_init(&d);
	tj_start(&j, url, &d, TJ_HOLD);
	a = audit_open(url, 10);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < 5; i++)
		emit_numbered(a, i);
	audit_flush(a, 0);
	wait_requests(&j, 0);
	audit_close(a);
	tj_kill(&j);
	tdb_free(&d);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *codec = tcase_create("codec");
	tcase_add_test(codec, test_codec_round_trip);
	tcase_add_test(codec, test_codec_nulls_and_now);
	tcase_add_test(codec, test_codec_limits);
	tcase_add_test(codec, test_codec_rejects);
	tcase_add_test(codec, test_decode_next);
	suite_add_tcase(s, codec);
	TCase *store = tcase_create("store");
	tcase_add_checked_fixture(store, setup, teardown);
	tcase_add_test(store, test_store_and_query);
	tcase_add_test(store, test_query_limits);
	tcase_add_test(store, test_query_missing_and_empty);
	tcase_add_test(store, test_query_does_not_block);
	tcase_add_test(store, test_query_readonly_directory);
	tcase_add_test(store, test_prune);
	tcase_add_test(store, test_store_write_once);
	tcase_add_test(store, test_schema_newer);
	tcase_add_test(store, test_schema_foreign_table);
	tcase_add_test(store, test_schema_foreign_types);
	tcase_add_test(store, test_schema_foreign_database);
	tcase_add_test(store, test_schema_adopts_spec_table);
	tcase_add_test(store, test_schema_producers_table);
	tcase_add_test(store, test_schema_not_sqlite);
	tcase_add_test(store, test_schema_unwritable);
	suite_add_tcase(s, store);
	TCase *producer = tcase_create("producer");
	tcase_add_checked_fixture(producer, setup, teardown);
	tcase_set_timeout(producer, 30);
	tcase_add_test(producer, test_producer_backlog);
	tcase_add_test(producer, test_producer_live);
	tcase_add_test(producer, test_producer_linger);
	tcase_add_test(producer, test_producer_waits_for_commit);
	tcase_add_test(producer, test_producer_journal_killed);
	tcase_add_test(producer, test_producer_reconnect);
	tcase_add_test(producer, test_producer_two_sinks);
	tcase_add_test(producer, test_producer_null_and_close);
	suite_add_tcase(s, producer);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
