/* store.c: the audit database, writer side (see store.h). Owns the SQLite
 * connection, the schema (SPEC 6.4 table + indexes, PRAGMA user_version = 1,
 * and audit_producers: the last batch written of each producer, by which a
 * batch sent again is not written twice) and the prepared statements the
 * journal writes with. */
#include "journal/store.h"
#include "journal/journal.h"
#include "common/clock.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Tuning, measured with 300k events against the journal on the 2-core box:
 * - synchronous=FULL: each commit (one per batch, i.e. every 500 ms or
 *   16384 events) syncs the WAL, so a committed event survives a power loss
 *   too; it costs ~10% of the insert rate against NORMAL, which survives a
 *   process crash but not a power loss until the next checkpoint.
 * - wal_autocheckpoint 16384 pages (64 MiB): hot index pages are copied to
 *   the database once per checkpoint rather than once per 4 MiB of WAL;
 *   +60% rows/s against the default 1000.
 * - cache_size 16 MiB: the indexes' hot pages stay in memory. */
#define JSTORE_PRAGMAS "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=16384; " \
	"PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-16384"

struct jstore {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback, *insert, *prune;
	sqlite3_stmt *producer_seq, *producer_set, *producers_forget;
	char path[1024];
	char errmsg[512];
};

/* The SPEC 6.4 table, verbatim. */
static const char schema_table[] =
	"CREATE TABLE audit (\n"
	"  id      INTEGER PRIMARY KEY,\n"
	"  ts_us   INTEGER NOT NULL,   -- unix microseconds\n"
	"  event   TEXT NOT NULL,      -- see below\n"
	"  worker  INTEGER,\n"
	"  session TEXT, user_id TEXT, room TEXT, ip TEXT,\n"
	"  reason  TEXT,               -- close or failure reason\n"
	"  detail  TEXT                -- JSON\n"
	")";

/* One row per producer (audit_open): its last batch written. Added
 * without a version change: an audiogwd without it ignores the table. */
static const char schema_producers[] =
	"CREATE TABLE IF NOT EXISTS audit_producers (\n"
	"  producer INTEGER PRIMARY KEY,  -- random id (u64 stored as i64)\n"
	"  seq      INTEGER NOT NULL,     -- its last batch written\n"
	"  seen_us  INTEGER NOT NULL      -- when (unix microseconds)\n"
	")";

static const char schema_indexes[] =
	"CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_us);"
	"CREATE INDEX IF NOT EXISTS audit_user_ts ON audit(user_id, ts_us);"
	"CREATE INDEX IF NOT EXISTS audit_room_ts ON audit(room, ts_us);"
	"CREATE INDEX IF NOT EXISTS audit_event_ts ON audit(event, ts_us);";

static const struct column {
	const char *name, *type;
	int notnull, pk;
} schema_columns[] = {
	{ "id", "INTEGER", 0, 1 },     { "ts_us", "INTEGER", 1, 0 }, { "event", "TEXT", 1, 0 },
	{ "worker", "INTEGER", 0, 0 }, { "session", "TEXT", 0, 0 },  { "user_id", "TEXT", 0, 0 },
	{ "room", "TEXT", 0, 0 },      { "ip", "TEXT", 0, 0 },       { "reason", "TEXT", 0, 0 },
	{ "detail", "TEXT", 0, 0 },
};
#define SCHEMA_NCOLUMNS (int)(sizeof schema_columns / sizeof schema_columns[0])

static const struct column producers_columns[] = {
	{ "producer", "INTEGER", 0, 1 }, { "seq", "INTEGER", 1, 0 }, { "seen_us", "INTEGER", 1, 0 },
};
#define PRODUCERS_NCOLUMNS (int)(sizeof producers_columns / sizeof producers_columns[0])

static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "audit database %s: %s", path, msg);
}

/* SQLite's message, with the system error behind it when there is one. */
static void db_err(jstore *s, char *err, size_t errlen, const char *what)
{
	int sys = sqlite3_system_errno(s->db);
	if (sys)
		set_err(err, errlen, s->path, "%s: %s (%s)", what, sqlite3_errmsg(s->db), strerror(sys));
	else
		set_err(err, errlen, s->path, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Runs a query returning one integer (kept at *out if there is a row). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int set_wal(jstore *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int ok = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot read");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		ok = mode && strcasecmp(mode, "wal") == 0;
		if (!ok)
			set_err(err, errlen, s->path, "cannot switch to WAL mode (still \"%s\")",
			        mode ? mode : "?");
	} else {
		db_err(s, err, errlen, "cannot switch to WAL mode");
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

/* A table's columns as "name, ..." for a message, and whether they are
 * exactly those of want (n of them). */
static int check_columns(jstore *s, const char *table, const struct column *want, int nwant,
                         char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char sql[64], have[300] = "";
	size_t used = 0;
	int n = 0, same = 1;
	snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot read the schema");
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *type = (const char *)sqlite3_column_text(st, 2);
		int notnull = sqlite3_column_int(st, 3), pk = sqlite3_column_int(st, 5);
		const struct column *c = n < nwant ? &want[n] : NULL;
		same &= c && name && type && strcmp(name, c->name) == 0 &&
		        strcasecmp(type, c->type) == 0 && notnull == c->notnull && pk == c->pk;
		if (used < sizeof have)
			used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", n ? ", " : "",
			                         name ? name : "?");
		n++;
	}
	sqlite3_finalize(st);
	if (same && n == nwant)
		return 0;
	set_err(err, errlen, s->path,
	        "foreign schema: its %s table has columns (%s), not those of audiogwd's "
	        "schema version %d: point audit.database at another file", table, have,
	        JSTORE_SCHEMA_VERSION);
	return -1;
}

/* Tables other than audit and SQLite's own, listed for a message; 0 if none. */
static int other_tables(jstore *s, char *list, size_t len)
{
	sqlite3_stmt *st;
	size_t used = 0;
	int n = 0;
	list[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
	                       "name <> 'audit' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (used < len)
			used += (size_t)snprintf(list + used, len - used, "%s%s", n ? ", " : "",
			                         (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

/* Inside BEGIN IMMEDIATE: decides whether the file is ours, creates what is missing. */
static int schema_check_or_create(jstore *s, char *err, size_t errlen)
{
	int64_t version = 0, has_audit = 0, has_producers = 0;
	char others[200];
	if (query_int(s->db, "PRAGMA user_version", &version) != SQLITE_OK ||
	    query_int(s->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'audit'",
	              &has_audit) != SQLITE_OK ||
	    query_int(s->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
	              "name = 'audit_producers'", &has_producers) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot read the schema");
		return -1;
	}
	if (version > JSTORE_SCHEMA_VERSION) {
		set_err(err, errlen, s->path, "schema version %lld is newer than this audiogwd knows (%d): "
		        "it was written by a newer audiogwd", (long long)version, JSTORE_SCHEMA_VERSION);
		return -1;
	}
	if (has_audit)
		return check_columns(s, "audit", schema_columns, SCHEMA_NCOLUMNS, err, errlen) < 0 ||
		       (has_producers && check_columns(s, "audit_producers", producers_columns,
		                                       PRODUCERS_NCOLUMNS, err, errlen) < 0) ? -1 : 0;
	if (version != 0 || other_tables(s, others, sizeof others) != 0) {
		set_err(err, errlen, s->path, "foreign schema: not an audiogwd audit database "
		        "(user_version %lld, no audit table%s%s)", (long long)version,
		        others[0] ? ", tables: " : "", others);
		return -1;
	}
	if (sqlite3_exec(s->db, schema_table, NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot create the schema");
		return -1;
	}
	return 0;
}

/* Creates or checks the schema in one write transaction, which also proves
 * the file (and its -wal) writable. */
static int schema_ensure(jstore *s, char *err, size_t errlen)
{
	char sql[64];
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot write");
		return -1;
	}
	if (schema_check_or_create(s, err, errlen) < 0)
		goto err;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", JSTORE_SCHEMA_VERSION);
	if (sqlite3_exec(s->db, schema_producers, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema_indexes, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot write");
		goto err;
	}
	return 0;
err:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int prepare_all(jstore *s, char *err, size_t errlen)
{
	static const char insert[] =
		"INSERT INTO audit (ts_us, event, worker, session, user_id, room, ip, reason, detail) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
	static const char prune[] =
		"DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts_us < ?1 LIMIT ?2)";
	static const char producer_seq[] = "SELECT seq FROM audit_producers WHERE producer = ?1";
	static const char producer_set[] =
		"INSERT INTO audit_producers (producer, seq, seen_us) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (producer) DO UPDATE SET seq = excluded.seq, seen_us = excluded.seen_us";
	static const char producers_forget[] = "DELETE FROM audit_producers WHERE seen_us < ?1";
	if (sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "ROLLBACK", -1, &s->rollback, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, insert, -1, SQLITE_PREPARE_PERSISTENT, &s->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, prune, -1, SQLITE_PREPARE_PERSISTENT, &s->prune, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, producer_seq, -1, SQLITE_PREPARE_PERSISTENT, &s->producer_seq,
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, producer_set, -1, SQLITE_PREPARE_PERSISTENT, &s->producer_set,
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, producers_forget, -1, &s->producers_forget, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot prepare statements");
		return -1;
	}
	return 0;
}

jstore *jstore_open(const char *path, char *err, size_t errlen)
{
	jstore *s = calloc(1, sizeof *s);
	if (!s) {
		set_err(err, errlen, path, "out of memory");
		return NULL;
	}
	snprintf(s->path, sizeof s->path, "%s", path);
	/* one thread per connection: no SQLite mutexes */
	int rc = sqlite3_open_v2(path, &s->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_err(s, err, errlen, "cannot open");
		goto err;
	}
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		set_err(err, errlen, path, "cannot write: the file is read-only");
		goto err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, JSTORE_BUSY_TIMEOUT_MS);
	if (set_wal(s, err, errlen) < 0)
		goto err;
	if (sqlite3_exec(s->db, JSTORE_PRAGMAS, NULL, NULL, NULL) != SQLITE_OK) {
		db_err(s, err, errlen, "cannot set its pragmas");
		goto err;
	}
	if (schema_ensure(s, err, errlen) < 0 || prepare_all(s, err, errlen) < 0)
		goto err;
	return s;
err:
	jstore_close(s);
	return NULL;
}

static void bind_text(sqlite3_stmt *st, int i, audit_text t)
{
	if (t.p)
		sqlite3_bind_text(st, i, t.p, (int)t.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int insert_one(jstore *s, const audit_record *r)
{
	sqlite3_stmt *st = s->insert;
	sqlite3_bind_int64(st, 1, r->ts_us);
	bind_text(st, 2, r->event);
	if (r->worker >= 0)
		sqlite3_bind_int(st, 3, r->worker);
	else
		sqlite3_bind_null(st, 3);
	bind_text(st, 4, r->session);
	bind_text(st, 5, r->user);
	bind_text(st, 6, r->room);
	bind_text(st, 7, r->ip);
	bind_text(st, 8, r->reason);
	bind_text(st, 9, r->detail);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void keep_errmsg(jstore *s, const char *what)
{
	snprintf(s->errmsg, sizeof s->errmsg, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int begin(jstore *s)
{
	if (step_once(s->begin) < 0) {
		keep_errmsg(s, "begin");
		return -1;
	}
	return 0;
}

static int insert_all(jstore *s, const audit_record *recs, int n)
{
	for (int i = 0; i < n; i++)
		if (insert_one(s, &recs[i]) < 0) {
			keep_errmsg(s, "insert");
			return -1;
		}
	return 0;
}

static int commit(jstore *s)
{
	if (step_once(s->commit) < 0) {
		keep_errmsg(s, "commit");
		return -1;
	}
	return 0;
}

static void rollback(jstore *s)
{
	if (!sqlite3_get_autocommit(s->db))
		step_once(s->rollback);
}

int jstore_write_batch(jstore *s, const audit_record *recs, int n)
{
	if (n <= 0)
		return 0;
	if (begin(s) < 0)
		return -1;
	if (insert_all(s, recs, n) < 0 || commit(s) < 0) {
		rollback(s);
		return -1;
	}
	return 0;
}

/* Inside a transaction or not: the producer's last seq (0: none), -1. */
static int64_t producer_seq(jstore *s, uint64_t producer)
{
	sqlite3_stmt *st = s->producer_seq;
	int64_t seq = 0;
	sqlite3_bind_int64(st, 1, (int64_t)producer);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		keep_errmsg(s, "select");
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? seq : -1;
}

int64_t jstore_producer_seq(jstore *s, uint64_t producer)
{
	return producer_seq(s, producer);
}

int jstore_write_once(jstore *s, uint64_t producer, uint64_t seq, const audit_record *recs, int n)
{
	if (seq > INT64_MAX) {
		snprintf(s->errmsg, sizeof s->errmsg, "batch seq %llu out of range",
		         (unsigned long long)seq);
		return -1;
	}
	if (begin(s) < 0)
		return -1;
	int64_t last = producer_seq(s, producer);
	if (last < 0)
		goto err;
	if ((uint64_t)last >= seq) {  /* in already: the producer did not get our reply */
		rollback(s);
		return 0;
	}
	if (insert_all(s, recs, n) < 0)
		goto err;
	sqlite3_bind_int64(s->producer_set, 1, (int64_t)producer);
	sqlite3_bind_int64(s->producer_set, 2, (int64_t)seq);
	sqlite3_bind_int64(s->producer_set, 3, clock_wall_us());
	if (step_once(s->producer_set) < 0) {
		keep_errmsg(s, "insert");
		goto err;
	}
	if (commit(s) < 0)
		goto err;
	return 1;
err:
	rollback(s);
	return -1;
}

int jstore_forget_producers(jstore *s, int64_t cutoff_us)
{
	sqlite3_bind_int64(s->producers_forget, 1, cutoff_us);
	if (step_once(s->producers_forget) < 0) {
		keep_errmsg(s, "delete");
		return -1;
	}
	return sqlite3_changes(s->db);
}

int jstore_prune(jstore *s, int64_t cutoff_us, int chunk)
{
	sqlite3_bind_int64(s->prune, 1, cutoff_us);
	sqlite3_bind_int(s->prune, 2, chunk);
	if (step_once(s->prune) < 0) {
		keep_errmsg(s, "delete");
		return -1;
	}
	return sqlite3_changes(s->db);
}

int jstore_checkpoint(jstore *s)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK) {
		keep_errmsg(s, "checkpoint");
		return -1;
	}
	return 0;
}

const char *jstore_errmsg(const jstore *s) { return s->errmsg; }
const char *jstore_path(const jstore *s) { return s->path; }

void jstore_close(jstore *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->prune);
	sqlite3_finalize(s->producer_seq);
	sqlite3_finalize(s->producer_set);
	sqlite3_finalize(s->producers_forget);
	sqlite3_close(s->db);
	free(s);
}

int journal_check_database(const char *path, char *err, size_t errlen)
{
	jstore *s = jstore_open(path, err, errlen);
	if (!s)
		return -1;
	jstore_close(s);
	return 0;
}
