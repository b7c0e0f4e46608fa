/* audit.c: --audit-db, the audit side of a run (SPEC 8: "zero lost audit
 * events" in the reload and crash presets).
 *
 * After the load processes have closed their connections, the gateway's
 * journal is read (SQLite, read-only, beside the journal that writes it) for
 * the run's users only (their ids start with --user-prefix): every
 * handshake the load generator saw answered 101 should have its `connect`
 * row, and every `connect` its `disconnect`, even for the clients of a
 * killed worker (those are written by the supervisor). The gateway hands
 * its events over in batches, so the rows are read again every
 * AUDIT_POLL_MS until they add up or AUDIT_WAIT_MS has passed. */
#include "bench.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define AUDIT_WAIT_MS 5000
#define AUDIT_POLL_MS 100

/* connect and disconnect rows of the run's users, and the sessions whose
 * counts differ (a connect without its disconnect, or the reverse). Ids are
 * printable ASCII (SPEC 4.1), so prefix..prefix"\x7f" is exactly the run's. */
static const char AUDIT_SQL[] =
	"SELECT coalesce(sum(c), 0), coalesce(sum(d), 0), coalesce(sum(c != d), 0) FROM ("
	" SELECT session, sum(event = 'connect') AS c, sum(event = 'disconnect') AS d"
	" FROM audit WHERE user_id >= ?1 AND user_id < ?2"
	" AND event IN ('connect', 'disconnect') GROUP BY session)";

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int bench_audit_open(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "SELECT 1 FROM audit LIMIT 1", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int count_rows(sqlite3_stmt *st, bench_audit *a)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		a->connects = (uint64_t)sqlite3_column_int64(st, 0);
		a->disconnects = (uint64_t)sqlite3_column_int64(st, 1);
		a->unpaired = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

void bench_audit_check(const bench_opts *o, uint64_t handshakes, bench_audit *a)
{
	memset(a, 0, sizeof *a);
	a->handshakes = handshakes;
	char upper[sizeof o->user_prefix + 1];
	snprintf(upper, sizeof upper, "%s\x7f", o->user_prefix);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(o->audit_db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, AUDIT_POLL_MS) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, AUDIT_SQL, -1, &st, NULL) != SQLITE_OK)
		goto err;
	sqlite3_bind_text(st, 1, o->user_prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, upper, -1, SQLITE_STATIC);
	int64_t t0 = now_ns();
	for (;;) {
		if (count_rows(st, a) != 0)
			goto err;
		a->waited_s = (double)(now_ns() - t0) / 1e9;
		if ((a->unpaired == 0 && a->connects >= handshakes) ||
		    a->waited_s * 1000 >= AUDIT_WAIT_MS)
			break;
		sleep_ms(AUDIT_POLL_MS);
	}
	a->checked = 1;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return;
err:
	snprintf(a->error, sizeof a->error, "%s: %s", o->audit_db,
	         db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(db);
}
