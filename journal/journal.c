/* journal.c: the audit journal process (see journal.h). Owns the PULL
 * socket, the batch of received events not yet written, and the loop:
 *   receive (poll on NNG's receive fd, then take what is there)
 *   -> write the batch in one transaction when it holds JOURNAL_BATCH_MAX
 *      events or its oldest is JOURNAL_BATCH_MS old (so an event is on disk
 *      within a second of its emit, counting the producer's linger)
 *   -> while the batch is not due: one retention chunk, when a pass runs.
 * Few large transactions matter: each one rewrites every index page it
 * touches, and (user_id, ts_us) and (room, ts_us) take rows at random
 * places; 500 ms batches sustain ~20% more rows/s than 200 ms ones here.
 * A write that fails (disk full, database locked) keeps the batch and is
 * retried; meanwhile receiving stops, so the producers' backlogs take the
 * pressure and count what they cannot keep. Single-threaded. */
#include "journal/journal.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/log.h"
#include "journal/store.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_LOG_ID -2              /* the "worker" of its log lines */
#define JOURNAL_BATCH_MAX 16384
#define JOURNAL_BATCH_MS 500
#define JOURNAL_POLL_MS 50
#define JOURNAL_RECVBUF 8192
#define JOURNAL_MSG_MAX (4 << 20)      /* a batch of AUDIT_BATCH_BYTES + its last event */
#define JOURNAL_RETRY_MS 100
#define JOURNAL_PRUNE_EVERY_MS 60000
#define JOURNAL_PRUNE_CHUNK 2000      /* ~80 ms of deleting here: a due batch waits no longer */
#define JOURNAL_DRAIN_QUIET_MS 200
#define JOURNAL_DRAIN_MAX_MS 10000     /* producers that never stop do not hold us forever */
#define JOURNAL_FINAL_TRIES 30         /* x JOURNAL_RETRY_MS for the last write */

typedef struct journal {
	cfg cfg;
	const char *url;
	jstore *st;
	nng_socket sock;
	int sock_open;
	int recv_fd;
	/* the batch: the messages and the records in them (a message may
	 * overshoot JOURNAL_BATCH_MAX by up to AUDIT_BATCH_EVENTS records) */
	nng_msg *msgs[JOURNAL_BATCH_MAX];
	int n_msgs;
	audit_record recs[JOURNAL_BATCH_MAX + AUDIT_BATCH_EVENTS];
	int n;
	int64_t batch_ms;                  /* when the batch's oldest event arrived */
	int64_t retry_ms;                  /* a failed write waits until then */
	int failing;
	int pruning;
	int64_t prune_ms, prune_cutoff_us, pruned;
	uint64_t received, written, bad;
} journal;

static volatile sig_atomic_t stop_signal, reopen_log;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		reopen_log = 1;
	else
		stop_signal = sig;
}

static void watch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;       /* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);         /* reload is the supervisor's business */
}

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
	if ((rv = nng_pull0_open(&j->sock)) != 0) {
		snprintf(err, errlen, "cannot open a pull socket: %s", nng_strerror(rv));
		return -1;
	}
	j->sock_open = 1;
	if ((rv = nng_socket_set_int(j->sock, NNG_OPT_RECVBUF, JOURNAL_RECVBUF)) ||
	    (rv = nng_socket_set_size(j->sock, NNG_OPT_RECVMAXSZ, JOURNAL_MSG_MAX)) ||
	    (rv = ipc_listen_shared(j->sock, j->url)) ||
	    (rv = nng_socket_get_int(j->sock, NNG_OPT_RECVFD, &j->recv_fd))) {
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

/* Adds a message's records to the batch (the batch keeps the message). */
static void batch_take(journal *j, nng_msg *m)
{
	size_t off = 0;
	int taken = 0, rc = 0;
	if (j->n == 0)
		j->batch_ms = clock_mono_ms();
	while (taken < AUDIT_BATCH_EVENTS &&
	       (rc = audit_decode_next(nng_msg_body(m), nng_msg_len(m), &off, &j->recs[j->n])) > 0) {
		j->n++;
		taken++;
	}
	if (taken == AUDIT_BATCH_EVENTS && off < nng_msg_len(m))
		rc = -1;  /* more than a producer ever sends */
	if (rc < 0)
		bad_message(j, m, taken);
	j->received += (uint64_t)taken;
	if (taken == 0) {
		nng_msg_free(m);  /* a fence, or nothing usable */
		return;
	}
	j->msgs[j->n_msgs++] = m;
}

/* Waits up to wait_ms for traffic, then takes what has arrived while the
 * batch has room. Returns the messages taken (fences included). */
static int journal_receive(journal *j, int wait_ms)
{
	struct pollfd p = { .fd = j->recv_fd, .events = POLLIN };
	int got = 0;
	if (j->n >= JOURNAL_BATCH_MAX) {  /* writes are failing: leave it in the pipes */
		poll(NULL, 0, wait_ms);
		return 0;
	}
	if (poll(&p, 1, wait_ms) <= 0)
		return 0;
	while (j->n < JOURNAL_BATCH_MAX) {
		nng_msg *m;
		if (nng_recvmsg(j->sock, &m, NNG_FLAG_NONBLOCK) != 0)
			break;
		batch_take(j, m);
		got++;
	}
	return got;
}

/* ---- writing ---- */

static int batch_write(journal *j, int64_t now)
{
	if (jstore_write_batch(j->st, j->recs, j->n) < 0) {
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
	for (int i = 0; i < j->n_msgs; i++)
		nng_msg_free(j->msgs[i]);
	j->written += (uint64_t)j->n;
	j->n = j->n_msgs = 0;
	return 0;
}

static int batch_due(const journal *j, int64_t now)
{
	return j->n > 0 && now >= j->retry_ms &&
	       (j->n >= JOURNAL_BATCH_MAX || now - j->batch_ms >= JOURNAL_BATCH_MS);
}

/* One chunk of the retention pass, started every JOURNAL_PRUNE_EVERY_MS. */
static void prune_step(journal *j, int64_t now)
{
	if (!j->pruning) {
		if (now < j->prune_ms)
			return;
		j->pruning = 1;
		j->pruned = 0;
		j->prune_cutoff_us = clock_wall_us() - j->cfg.audit_retention_ms * 1000;
		j->prune_ms = now + JOURNAL_PRUNE_EVERY_MS;
	}
	int n = jstore_prune(j->st, j->prune_cutoff_us, JOURNAL_PRUNE_CHUNK);
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

/* Everything but receiving: the batch when due, else a retention chunk
 * (small, its own transaction: it never holds a batch back for long). */
static void journal_tick(journal *j, int stopping)
{
	int64_t now = clock_mono_ms();
	if (batch_due(j, now))
		batch_write(j, now);
	else if (!stopping)
		prune_step(j, now);
}

/* How long the next receive may wait: until the batch is due, at most
 * JOURNAL_POLL_MS; not at all while a retention pass has chunks to do. */
static int receive_wait_ms(const journal *j)
{
	if (j->n == 0)
		return j->pruning ? 0 : JOURNAL_POLL_MS;
	int64_t due = (j->n >= JOURNAL_BATCH_MAX ? j->retry_ms : j->batch_ms + JOURNAL_BATCH_MS) -
	              clock_mono_ms();
	return due <= 0 ? 0 : due > JOURNAL_POLL_MS ? JOURNAL_POLL_MS : (int)due;
}

static void journal_run(journal *j)
{
	while (!stop_signal) {
		if (reopen_log) {
			reopen_log = 0;
			log_reopen();
		}
		journal_receive(j, receive_wait_ms(j));
		journal_tick(j, 0);
	}
}

/* After SIGTERM: take what the producers still send until they fall silent,
 * then write the rest (retrying a failing write for a while). */
static int journal_drain(journal *j)
{
	int64_t start = clock_mono_ms(), quiet_ms = 0;
	log_info("journal_stop", "%s: draining", strsignal(stop_signal));
	/* silence is counted while waiting for messages only, not while writing */
	while (quiet_ms < JOURNAL_DRAIN_QUIET_MS && clock_mono_ms() - start < JOURNAL_DRAIN_MAX_MS) {
		int64_t t = clock_mono_ms();
		quiet_ms = journal_receive(j, 20) > 0 ? 0 : quiet_ms + clock_mono_ms() - t;
		journal_tick(j, 1);
	}
	for (int i = 0; j->n > 0 && i < JOURNAL_FINAL_TRIES; i++)
		if (batch_write(j, clock_mono_ms()) < 0)
			poll(NULL, 0, JOURNAL_RETRY_MS);
	if (j->n > 0) {
		log_error("journal_stop", "%d audit events could not be written to %s: %s", j->n,
		          jstore_path(j->st), jstore_errmsg(j->st));
		return 1;
	}
	return 0;
}

static void journal_close(journal *j)
{
	for (int i = 0; i < j->n_msgs; i++)
		nng_msg_free(j->msgs[i]);
	j->n = j->n_msgs = 0;
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
	watch_signals();
	if (!(j.st = jstore_open(j.cfg.audit_database, err, sizeof err)))
		return startup_error(&j, err);
	if (open_socket(&j, err, sizeof err) < 0)
		return startup_error(&j, err);
	j.prune_ms = clock_mono_ms();  /* a retention pass at once */
	log_info("journal_start", "audit journal pid %d: database %s, listening at %s, retention %lld s",
	         (int)getpid(), j.cfg.audit_database, j.url,
	         (long long)(j.cfg.audit_retention_ms / 1000));
	journal_run(&j);
	int rc = journal_drain(&j);
	log_info("journal_exit", "stopped: %llu events written, %llu malformed messages ignored",
	         (unsigned long long)j.written, (unsigned long long)j.bad);
	journal_close(&j);
	return rc;
}
