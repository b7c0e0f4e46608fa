/* journal.c: the audit journal process (see journal.h). Owns the REP
 * socket, the request in hand, and the loop:
 *   receive one request (a producer's batch; waiting up to JOURNAL_RECV_MS,
 *   the period of the housekeeping)
 *   -> write its events in one transaction, with the producer's last seq,
 *      unless that batch is in already (jstore_write_once)
 *   -> reply: the producer frees the batch and sends its next one
 *   -> a retention chunk when a pass runs (between requests, see prune_tick).
 * One transaction per request: a REP socket takes the next request only
 * after the reply to this one, and producers put up to AUDIT_BATCH_EVENTS in
 * one (more the slower we are: they fill the next batch while they wait).
 * Nothing is acknowledged before it is committed, so a journal killed at
 * any moment loses nothing: its producers send the batch again to the next
 * journal. A write that fails (disk full, database locked) keeps the
 * request and is retried without replying; meanwhile nothing else is
 * received, the producers' backlogs take the pressure (and count what they
 * cannot keep) and their REQ sockets resend their batch every
 * AUDIT_RESEND_MS: duplicates, answered from audit_producers once the write
 * succeeds. Single-threaded. */
#include "journal/journal.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/child.h"
#include "common/log.h"
#include "journal/store.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_LOG_ID -2              /* the "worker" of its log lines */
#define JOURNAL_RECV_MS 200            /* a receive waits no longer: signals, retention */
#define JOURNAL_MSG_MAX (4 << 20)      /* a batch of AUDIT_BATCH_BYTES + its last event */
#define JOURNAL_RETRY_MS 100
#define JOURNAL_PRUNE_EVERY_MS 60000
#define JOURNAL_PRUNE_CHUNK 2000       /* ~80 ms of deleting here */
#define JOURNAL_PRUNE_GAP_MS 200       /* under load, a chunk at most this often */
#define JOURNAL_PRODUCER_TTL_US (86400LL * 1000000)  /* producers not seen for a day: forgotten */
#define JOURNAL_FINAL_TRIES 30         /* x JOURNAL_RETRY_MS for the last write */

typedef struct journal {
	cfg cfg;
	const char *url;
	jstore *st;
	nng_socket sock;
	int sock_open;
	/* the request in hand: its message, batch header and records */
	nng_msg *req;                      /* NULL: none */
	int batch;                         /* it has a batch header (else answered, not written) */
	uint64_t producer, seq;
	audit_record recs[AUDIT_BATCH_EVENTS];
	int n;
	int64_t retry_ms;                  /* a failed write waits until then */
	int failing;
	int pruning;
	int64_t prune_ms, prune_cutoff_us, pruned, prune_last_ms;
	uint64_t received, written, duplicates, bad;
} journal;



static int parse_args(int argc, char **argv, const char **file, const char **url)
{
	*file = NULL;
	*url = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--journal") == 0)
			continue;
		if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
			*file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--listen") == 0)
			*url = argv[++i];
		else
			return -1;
	}
	return *file && *url ? 0 : -1;
}

static int load_config(journal *j, const char *file)
{
	static cfg_errors errs;
	cfg_defaults(&j->cfg);
	if (cfg_load_file(&j->cfg, file, &errs) == 0)
		return 0;
	int kept = errs.n < CFG_MAX_ERRORS ? errs.n : CFG_MAX_ERRORS;
	for (int i = 0; i < kept; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	return -1;
}

static int open_socket(journal *j, char *err, size_t errlen)
{
	int rv;
	if (strncmp(j->url, "ipc://", 6) == 0)
		unlink(j->url + 6);  /* left by a journal that died */
	if ((rv = nng_rep0_open(&j->sock)) != 0) {
		snprintf(err, errlen, "cannot open a rep socket: %s", nng_strerror(rv));
		return -1;
	}
	j->sock_open = 1;
	if ((rv = nng_socket_set_size(j->sock, NNG_OPT_RECVMAXSZ, JOURNAL_MSG_MAX)) ||
	    (rv = nng_socket_set_ms(j->sock, NNG_OPT_RECVTIMEO, JOURNAL_RECV_MS)) ||
	    (rv = ipc_listen_shared(j->sock, j->url))) {
		snprintf(err, errlen, "cannot listen at %s: %s", j->url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

/* ---- receiving ---- */

static void bad_message(journal *j, nng_msg *m, int taken)
{
	if ((j->bad++ % 1000) == 0)
		log_warn("audit_bad_message", "a malformed audit message of %zu bytes: kept its first %d "
		         "events, ignored the rest (%llu such messages so far)", nng_msg_len(m), taken,
		         (unsigned long long)j->bad);
}

/* Makes m the request in hand: its header and records (pointing into it). */
static void request_take(journal *j, nng_msg *m)
{
	const void *body = nng_msg_body(m);
	size_t len = nng_msg_len(m), off = 0;
	int rc = 0;
	j->req = m;
	j->n = 0;
	j->batch = audit_decode_batch(body, len, &j->producer, &j->seq, &off) == 0;
	if (!j->batch) {  /* not from audit_open(): answered, so that it is not resent */
		bad_message(j, m, 0);
		return;
	}
	while (j->n < AUDIT_BATCH_EVENTS &&
	       (rc = audit_decode_next(body, len, &off, &j->recs[j->n])) > 0)
		j->n++;
	if (j->n == AUDIT_BATCH_EVENTS && off < len)
		rc = -1;  /* more than a producer ever sends */
	if (rc < 0)
		bad_message(j, m, j->n);
	j->received += (uint64_t)j->n;
}

/* Takes the next request, waiting up to JOURNAL_RECV_MS (nonblock: not at
 * all). 1 if there is one in hand now. */
static int journal_receive(journal *j, int nonblock)
{
	nng_msg *m;
	int rv = nng_recvmsg(j->sock, &m, nonblock ? NNG_FLAG_NONBLOCK : 0);
	if (rv != 0) {
		if (rv != NNG_ETIMEDOUT && rv != NNG_EAGAIN && rv != NNG_EINTR)
			poll(NULL, 0, JOURNAL_RETRY_MS);  /* not expected: do not spin */
		return 0;
	}
	request_take(j, m);
	return 1;
}

/* ---- writing ---- */

/* The request in hand is committed (or was already): tells its producer. A
 * reply that cannot go at once (the peer's pipe busy, or gone) is dropped:
 * the producer sends the batch again and gets its reply then. */
static void reply(journal *j)
{
	nng_msg *m = j->req;
	j->req = NULL;
	j->n = 0;
	nng_msg_clear(m);
	if (nng_sendmsg(j->sock, m, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(m);
}

/* Writes the request in hand, once, and replies. 0, or -1 (kept, retried
 * from j->retry_ms). */
static int request_write(journal *j, int64_t now)
{
	int rc = j->batch ? jstore_write_once(j->st, j->producer, j->seq, j->recs, j->n) : 0;
	if (rc < 0) {
		if (!j->failing)
			log_error("audit_write", "cannot write %d events to %s: %s (retrying every %d ms)",
			          j->n, jstore_path(j->st), jstore_errmsg(j->st), JOURNAL_RETRY_MS);
		j->failing = 1;
		j->retry_ms = now + JOURNAL_RETRY_MS;
		return -1;
	}
	if (j->failing)
		log_info("audit_write", "writing to %s again", jstore_path(j->st));
	j->failing = 0;
	if (rc > 0)
		j->written += (uint64_t)j->n;
	else if (j->batch)
		j->duplicates++;
	reply(j);
	return 0;
}

/* The retention pass, started every JOURNAL_PRUNE_EVERY_MS (it also forgets
 * the producers not seen for a day), deletes JOURNAL_PRUNE_CHUNK rows at a
 * time, each chunk its own short transaction: back to back while no
 * request waits, at most every JOURNAL_PRUNE_GAP_MS while requests come
 * (busy), so that producers do not wait long for their replies. */
static void prune_tick(journal *j, int busy)
{
	int64_t now = clock_mono_ms();
	if (j->failing)
		return;
	if (!j->pruning) {
		if (now < j->prune_ms)
			return;
		j->pruning = 1;
		j->pruned = 0;
		j->prune_cutoff_us = clock_wall_us() - j->cfg.audit_retention_ms * 1000;
		j->prune_ms = now + JOURNAL_PRUNE_EVERY_MS;
		if (jstore_forget_producers(j->st, clock_wall_us() - JOURNAL_PRODUCER_TTL_US) < 0)
			log_error("audit_retention", "cannot forget old producers in %s: %s",
			          jstore_path(j->st), jstore_errmsg(j->st));
	} else if (busy && now - j->prune_last_ms < JOURNAL_PRUNE_GAP_MS) {
		return;
	}
	int n = jstore_prune(j->st, j->prune_cutoff_us, JOURNAL_PRUNE_CHUNK);
	j->prune_last_ms = clock_mono_ms();
	if (n < 0) {
		log_error("audit_retention", "cannot delete old rows from %s: %s", jstore_path(j->st),
		          jstore_errmsg(j->st));
		j->pruning = 0;
		return;
	}
	j->pruned += n;
	if (n < JOURNAL_PRUNE_CHUNK) {
		j->pruning = 0;
		if (j->pruned)
			log_info("audit_retention", "deleted %lld rows older than %lld s",
			         (long long)j->pruned, (long long)(j->cfg.audit_retention_ms / 1000));
	}
}

static void journal_run(journal *j)
{
	while (!child_stop_signal) {
		if (child_reopen_log) {
			child_reopen_log = 0;
			log_reopen();
		}
		int busy = 0;
		if (!j->req)
			busy = journal_receive(j, j->pruning);  /* a pass runs: do not wait */
		if (j->req) {
			int64_t now = clock_mono_ms();
			if (now >= j->retry_ms)
				request_write(j, now);
			else  /* failing: wait, receive nothing meanwhile */
				poll(NULL, 0, (int)(j->retry_ms - now < JOURNAL_RECV_MS ? j->retry_ms - now
				                                                         : JOURNAL_RECV_MS));
			busy = 1;
		}
		prune_tick(j, busy);
	}
}

/* After SIGTERM: nothing more is received; the request in hand (a write
 * that was failing) gets its last tries. */
static int journal_stop(journal *j)
{
	log_info("journal_stop", "%s: stopping", strsignal(child_stop_signal));
	for (int i = 0; j->req && i < JOURNAL_FINAL_TRIES; i++)
		if (request_write(j, clock_mono_ms()) < 0)
			poll(NULL, 0, JOURNAL_RETRY_MS);
	if (j->req) {
		log_error("journal_stop", "%d audit events could not be written to %s: %s (their "
		          "producer keeps them for the next journal)", j->n, jstore_path(j->st),
		          jstore_errmsg(j->st));
		return 1;
	}
	return 0;
}

static void journal_close(journal *j)
{
	if (j->req)
		nng_msg_free(j->req);
	j->req = NULL;
	j->n = 0;
	if (j->sock_open)
		nng_close(j->sock);
	jstore_close(j->st);
}

static int startup_error(journal *j, const char *err)
{
	log_error("startup", "journal: %s", err);
	if (j->cfg.log_file[0])  /* else the log line was on stderr already */
		fprintf(stderr, "audiogwd: journal: %s\n", err);
	journal_close(j);
	return 1;
}

int journal_main(int argc, char **argv)
{
	static journal j;
	char err[512];
	const char *file;
	if (parse_args(argc, argv, &file, &j.url) < 0) {
		fprintf(stderr, "usage: audiogwd --journal -c CONFIG_FILE --listen URL\n"
		                "(internal: the supervisor starts the journal)\n");
		return 2;
	}
	if (load_config(&j, file) < 0)
		return 1;
	if (log_open(j.cfg.log_file, j.cfg.log_level, JOURNAL_LOG_ID) < 0)
		log_open(NULL, j.cfg.log_level, JOURNAL_LOG_ID);
	child_watch_signals();
	if (!(j.st = jstore_open(j.cfg.audit_database, err, sizeof err)))
		return startup_error(&j, err);
	if (open_socket(&j, err, sizeof err) < 0)
		return startup_error(&j, err);
	j.prune_ms = clock_mono_ms();  /* a retention pass at once */
	log_info("journal_start", "audit journal pid %d: database %s, listening at %s, retention %lld s",
	         (int)getpid(), j.cfg.audit_database, j.url,
	         (long long)(j.cfg.audit_retention_ms / 1000));
	journal_run(&j);
	int rc = journal_stop(&j);
	log_info("journal_exit", "stopped: %llu events written, %llu batches received again "
	         "(skipped), %llu malformed messages", (unsigned long long)j.written,
	         (unsigned long long)j.duplicates, (unsigned long long)j.bad);
	journal_close(&j);
	return rc;
}
