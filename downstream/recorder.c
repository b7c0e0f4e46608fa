/* recorder.c: recordings. A recording is one room; each speaker (SSRC)
 * of it gets its own file, opened at its first frame:
 *   DIR/ROOM_USER_SSRC_YYYYMMDDTHHMMSSZ.opus  (PT 111: Ogg Opus)
 *   DIR/ROOM_USER_SSRC_YYYYMMDDTHHMMSSZ.wav   (PT 96 L16 48 kHz: PCM;
 *                                             PT 0: mu-law; PT 8: A-law)
 * (room and user percent-encoded where a byte is not [A-Za-z0-9._@+=-];
 * the time is the file's start, UTC). A speaker that changes its payload
 * type, or whose WAV file reaches 4 GiB, continues in a new file.
 *
 * Threads: the main thread hands frames (the bus messages themselves) to
 * the writer thread through a bounded queue; when the queue is full, the
 * frame is dropped and counted in its recording. The writer owns the
 * files: it decodes, places each packet on the speaker's timeline (gaps
 * become silence), writes through stdio, and once a second flushes every
 * file (Ogg pages out, WAV sizes rewritten), so a file is always playable.
 * A stop is a marker in the same queue: the writer finishes the files of
 * the recording when it reaches it, after the frames before it. */
#include "downstream/downstream.h"
#include "downstream/media.h"
#include "downstream/timeline.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/rtp.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REC_QUEUE 16384             /* frames waiting for the writer, all recordings */
#define REC_RESERVE 1024            /* kept free of frames for stop markers */
#define REC_BATCH 256
#define REC_FLUSH_MS 1000
#define REC_FILE_BUF 65536
#define REC_DROP_LOG_MS 5000
#define REC_PATH_MAX (CFG_PATH_MAX + 400)

enum { Q_FRAME, Q_STOP, Q_QUIT };

typedef struct qentry {
	int kind;
	struct recording *rec;
	nng_msg *msg;
} qentry;

typedef struct rec_file {
	char path[REC_PATH_MAX];
	uint32_t ssrc;
	char user[DS_NAME_MAX + 1];
	const char *codec;
	int64_t started_us;
	uint64_t frames;
	int open;
} rec_file;

enum { CODEC_OPUS, CODEC_L16, CODEC_PCMU, CODEC_PCMA };
static const char *const codec_names[] = { "opus", "L16", "PCMU", "PCMA" };

/* A speaker's file: the writer thread's alone. */
typedef struct track {
	uint32_t ssrc;
	int pt, codec;
	int failed;                     /* a write failed: its frames are dropped */
	FILE *f;
	oggw ogg;
	wavw wav;
	tl_state tl;
	int64_t granule;                /* Opus: 48 kHz samples written */
	int last_dur;                   /* Opus: duration of the last good packet */
	int file;                       /* index in the recording's files */
	char user[DS_NAME_MAX + 1];
	UT_hash_handle hh;
} track;

typedef struct recording {
	char room[DS_NAME_MAX + 1];
	char dir[CFG_PATH_MAX];
	int64_t started_us;
	_Atomic uint64_t frames, dropped, late, unsupported, errors;
	pthread_mutex_t lock;           /* files, error */
	rec_file *files;
	int nfiles, fcap;
	char error[256];
	int done;                       /* the writer finished it (recorder lock) */
	/* writer thread */
	track *tracks;
	struct recording *wnext;
	int listed;
	/* main thread */
	struct recording *mnext;
	uint64_t dropped_logged;
	int64_t drop_log_ms;
} recording;

typedef struct recorder {
	downstream *d;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t wake, done_cond;
	qentry q[REC_QUEUE];
	unsigned head, count;
	recording *active;              /* main thread: recordings not stopped */
	recording *finishing;           /* main thread: stopped, the writer not done yet */
	recording *wlist;               /* writer: recordings with tracks */
	int64_t flushed_ms;             /* writer */
} recorder;

const char *recording_room(const recording *r) { return r->room; }
const char *recording_dir(const recording *r) { return r->dir; }

/* ---- helpers ---- */

static int mkdir_p(const char *path)
{
	char tmp[CFG_PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

/* A file name component: [A-Za-z0-9._@+=-] kept, other bytes (and a
 * leading dot) as %XX, at most 64 bytes. */
static void name_part(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, max = cap - 1 < 64 ? cap - 1 : 64;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		           ((c == '.') && n > 0) || c == '_' || c == '-' || c == '@' || c == '+' || c == '=';
		if (n + (keep ? 1 : 3) > max)
			break;
		if (keep) {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = '\0';
}

typedef struct who {
	uint32_t ssrc;
	char user[DS_NAME_MAX + 1];
	int found;
} who;

static void match_ssrc(const reg_session *s, int index, void *arg)
{
	(void)index;
	who *w = arg;
	if (!w->found && s->ssrc == w->ssrc && s->state != REG_FREE) {
		snprintf(w->user, sizeof w->user, "%s", s->user);
		w->found = 1;
	}
}

/* The user of an ssrc, from the host-wide registry in the shared area. */
static void user_of(downstream *d, const char *room, uint32_t ssrc, char *out, size_t cap)
{
	who w = { .ssrc = ssrc };
	reg_area *reg = shm_registry(d->shm);
	reg_each_in_room(reg, room, match_ssrc, &w);
	if (!w.found)
		reg_each_live(reg, match_ssrc, &w);
	snprintf(out, cap, "%s", w.found ? w.user : "unknown");
}

static int codec_of(int pt)
{
	switch (pt) {
	case PT_OPUS: return CODEC_OPUS;
	case PT_L16: return CODEC_L16;
	case PT_PCMU: return CODEC_PCMU;
	case PT_PCMA: return CODEC_PCMA;
	default: return -1;
	}
}

static void set_error(recording *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(recording *r, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&r->lock);
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&r->lock);
}

/* ---- the writer's tracks ---- */

static FILE *create_file(recording *r, track *t, int64_t now_us, char *path, size_t cap)
{
	char room[72], user[72], stamp[32];
	time_t secs = (time_t)(now_us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	name_part(room, sizeof room, r->room);
	name_part(user, sizeof user, t->user);
	const char *ext = t->codec == CODEC_OPUS ? "opus" : "wav";
	for (int i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(path, cap, "%s/%s_%s_%u_%s.%s", r->dir, room, user, t->ssrc, stamp, ext);
		else
			snprintf(path, cap, "%s/%s_%s_%u_%s-%d.%s", r->dir, room, user, t->ssrc, stamp, i, ext);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno == ENOENT && mkdir_p(r->dir) == 0)
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return NULL;
		FILE *f = fdopen(fd, "wb");
		if (!f) {
			close(fd);
			return NULL;
		}
		setvbuf(f, NULL, _IOFBF, REC_FILE_BUF);
		return f;
	}
	errno = EEXIST;
	return NULL;
}

static int track_start_file(recording *r, track *t, const uint8_t *payload, size_t plen)
{
	char path[REC_PATH_MAX], date[40];
	int64_t now_us = clock_wall_us();
	t->f = create_file(r, t, now_us, path, sizeof path);
	if (!t->f) {
		set_error(r, "cannot create a file in %s: %s", r->dir, strerror(errno));
		log_error("record", "room %s: cannot create a file in %s: %s", r->room, r->dir,
		          strerror(errno));
		return -1;
	}
	int rc;
	if (t->codec == CODEC_OPUS) {
		char c_room[DS_NAME_MAX + 8], c_user[DS_NAME_MAX + 8], c_ssrc[32], c_date[48];
		clock_format_rfc3339(now_us, date, sizeof date);
		snprintf(c_room, sizeof c_room, "ROOM=%s", r->room);
		snprintf(c_user, sizeof c_user, "USER=%s", t->user);
		snprintf(c_ssrc, sizeof c_ssrc, "SSRC=%u", t->ssrc);
		snprintf(c_date, sizeof c_date, "DATE=%s", date);
		const char *comments[] = { c_room, c_user, c_ssrc, c_date, "ENCODER=audiogwd " AGW_VERSION };
		rc = oggw_start(&t->ogg, t->f, t->ssrc ^ (uint32_t)now_us, opus_packet_channels(payload, plen),
		                "audiogwd " AGW_VERSION, comments, 5);
	} else if (t->codec == CODEC_L16) {
		rc = wavw_start(&t->wav, t->f, WAV_PCM, 48000, 16, 1);
	} else {
		rc = wavw_start(&t->wav, t->f, t->codec == CODEC_PCMU ? WAV_MULAW : WAV_ALAW, 8000, 8, 1);
	}
	tl_init(&t->tl, t->codec == CODEC_OPUS || t->codec == CODEC_L16 ? 48000 : 8000);
	t->granule = 0;
	t->last_dur = 960;
	pthread_mutex_lock(&r->lock);
	if (r->nfiles == r->fcap) {
		int cap = r->fcap ? r->fcap * 2 : 8;
		rec_file *n = realloc(r->files, (size_t)cap * sizeof *n);
		if (n) {
			r->files = n;
			r->fcap = cap;
		}
	}
	t->file = -1;
	if (r->nfiles < r->fcap) {
		rec_file *rf = &r->files[r->nfiles];
		memset(rf, 0, sizeof *rf);
		snprintf(rf->path, sizeof rf->path, "%s", path);
		rf->ssrc = t->ssrc;
		snprintf(rf->user, sizeof rf->user, "%s", t->user);
		rf->codec = codec_names[t->codec];
		rf->started_us = now_us;
		rf->open = 1;
		t->file = r->nfiles++;
	}
	pthread_mutex_unlock(&r->lock);
	log_info("record_file", "room %s: %s (user %s, ssrc %u, %s)", r->room, path, t->user, t->ssrc,
	         codec_names[t->codec]);
	if (rc < 0) {
		set_error(r, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void track_end_file(recording *r, track *t)
{
	if (!t->f)
		return;
	int rc = t->codec == CODEC_OPUS ? oggw_finish(&t->ogg) : wavw_finish(&t->wav);
	if (fclose(t->f) != 0)
		rc = -1;
	t->f = NULL;
	pthread_mutex_lock(&r->lock);
	if (t->file >= 0)
		r->files[t->file].open = 0;
	pthread_mutex_unlock(&r->lock);
	if (rc < 0 && !t->failed) {
		set_error(r, "cannot finish a file: %s", strerror(errno));
		log_error("record", "room %s: cannot finish the file of ssrc %u: %s", r->room, t->ssrc,
		          strerror(errno));
	}
}

static void track_fail(recording *r, track *t)
{
	int e = errno;
	const char *path = t->file >= 0 ? r->files[t->file].path : "?";
	set_error(r, "write error on %s: %s", path, strerror(e));
	log_error("record", "room %s: write error on %s: %s; this speaker is no longer recorded",
	          r->room, path, strerror(e));
	t->failed = 1;
	track_end_file(r, t);
}

/* Opus: gap as concealment packets of 20, 10, 5, 2.5 ms; a remainder
 * under 2.5 ms is left out. Returns the ticks written, -1 on error. */
static int64_t opus_fill(track *t, int64_t gap)
{
	int64_t done = 0;
	while (gap - done >= 120) {
		int64_t left = gap - done;
		int chunk = left >= 960 ? 960 : left >= 480 ? 480 : left >= 240 ? 240 : 120;
		uint8_t toc = opus_filler_toc(chunk);
		t->granule += chunk;
		if (oggw_packet(&t->ogg, &toc, 1, t->granule) < 0)
			return -1;
		done += chunk;
	}
	return done;
}

/* One packet of the track. 0, WAV_FULL (nothing written), -1 error. */
static int track_write(recording *r, track *t, const uint8_t *rtp, size_t len, int64_t recv_us)
{
	size_t off, plen;
	if (rtp_payload_bounds(rtp, len, &off, &plen) < 0) {
		atomic_fetch_add(&r->dropped, 1);
		return 0;
	}
	const uint8_t *p = rtp + off;
	if (t->codec == CODEC_L16)
		plen &= ~(size_t)1;
	if (t->codec != CODEC_OPUS && t->wav.data_bytes + plen > WAV_MAX_DATA)
		return WAV_FULL;
	int64_t gap;
	if (tl_place(&t->tl, rtp_timestamp(rtp), rtp_seq(rtp), recv_us, &gap) == TL_LATE) {
		atomic_fetch_add(&r->late, 1);
		return 0;
	}
	int64_t ticks;
	if (t->codec == CODEC_OPUS) {
		int64_t filled = opus_fill(t, gap);
		if (filled < 0)
			return -1;
		int dur = opus_packet_samples(p, plen);
		if (dur > 0) {
			t->granule += dur;
			if (oggw_packet(&t->ogg, p, plen, t->granule) < 0)
				return -1;
			t->last_dur = dur;
		} else {
			dur = (int)opus_fill(t, t->last_dur);   /* empty or malformed: concealed */
			if (dur < 0)
				return -1;
		}
		ticks = filled + dur;
	} else {
		uint8_t buf[4096];
		if (gap > 0) {
			int rc = wavw_silence(&t->wav, (uint64_t)gap);
			if (rc)
				return rc;
		}
		for (size_t done = 0; done < plen;) {
			size_t n = plen - done < sizeof buf ? plen - done : sizeof buf;
			if (t->codec == CODEC_L16)
				l16_be_to_le(buf, p + done, n);
			else
				memcpy(buf, p + done, n);
			int rc = wavw_write(&t->wav, buf, n);
			if (rc)
				return rc;
			done += n;
		}
		ticks = gap + (int64_t)(t->codec == CODEC_L16 ? plen / 2 : plen);
	}
	tl_advance(&t->tl, ticks);
	return 0;
}

static void writer_list_add(recorder *rc, recording *r)
{
	if (r->listed)
		return;
	r->listed = 1;
	r->wnext = rc->wlist;
	rc->wlist = r;
}

static void writer_list_remove(recorder *rc, recording *r)
{
	for (recording **p = &rc->wlist; *p; p = &(*p)->wnext)
		if (*p == r) {
			*p = r->wnext;
			break;
		}
	r->listed = 0;
}

static void on_frame(recorder *rc, recording *r, nng_msg *msg)
{
	bus_msg m;
	if (bus_decode(nng_msg_body(msg), nng_msg_len(msg), &m) < 0 || m.payload_len < RTP_HEADER_LEN)
		return;
	int pt = rtp_payload_type(m.payload), codec = codec_of(pt);
	if (codec < 0) {
		atomic_fetch_add(&r->unsupported, 1);
		return;
	}
	track *t = NULL;
	HASH_FIND(hh, r->tracks, &m.ssrc, sizeof m.ssrc, t);
	if (t && t->pt != pt && !t->failed) {   /* a new codec: a new file */
		track_end_file(r, t);
		HASH_DEL(r->tracks, t);
		free(t);
		t = NULL;
	}
	if (!t) {
		if (!(t = calloc(1, sizeof *t)))
			return;
		t->ssrc = m.ssrc;
		t->pt = pt;
		t->codec = codec;
		user_of(rc->d, r->room, m.ssrc, t->user, sizeof t->user);
		HASH_ADD(hh, r->tracks, ssrc, sizeof t->ssrc, t);
		writer_list_add(rc, r);
		size_t off, plen = 0;
		if (rtp_payload_bounds(m.payload, m.payload_len, &off, &plen) < 0)
			off = 0;
		if (track_start_file(r, t, m.payload + off, plen) < 0) {
			t->failed = 1;
			track_end_file(r, t);
		}
	}
	if (t->failed) {
		atomic_fetch_add(&r->errors, 1);
		return;
	}
	int rc2 = track_write(r, t, m.payload, m.payload_len, m.recv_us);
	if (rc2 == WAV_FULL) {                   /* 4 GiB: continue in a new file */
		track_end_file(r, t);
		if (track_start_file(r, t, m.payload, 0) < 0) {
			t->failed = 1;
			track_end_file(r, t);
			return;
		}
		rc2 = track_write(r, t, m.payload, m.payload_len, m.recv_us);
	}
	if (rc2 < 0) {
		track_fail(r, t);
		atomic_fetch_add(&r->errors, 1);
		return;
	}
	atomic_fetch_add(&r->frames, 1);
	atomic_fetch_add_explicit(&rc->d->counters->frames[SHM_DS_RECORD], 1, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	if (t->file >= 0)
		r->files[t->file].frames++;
	pthread_mutex_unlock(&r->lock);
}

static void on_stop(recorder *rc, recording *r)
{
	track *t, *tmp;
	HASH_ITER(hh, r->tracks, t, tmp) {
		track_end_file(r, t);
		HASH_DEL(r->tracks, t);
		free(t);
	}
	writer_list_remove(rc, r);
	pthread_mutex_lock(&rc->lock);
	r->done = 1;
	pthread_cond_broadcast(&rc->done_cond);
	pthread_mutex_unlock(&rc->lock);
}

/* Once a second: every file playable as it is (pages out, sizes right). */
static void flush_all(recorder *rc)
{
	for (recording *r = rc->wlist; r; r = r->wnext) {
		track *t, *tmp;
		HASH_ITER(hh, r->tracks, t, tmp) {
			if (!t->f)
				continue;
			int rc2 = t->codec == CODEC_OPUS ? oggw_flush(&t->ogg)
			          : t->wav.dirty ? wavw_fixup(&t->wav) : 0;
			if (rc2 < 0 || fflush(t->f) != 0)
				track_fail(r, t);
		}
	}
}

static void *writer_main(void *arg)
{
	recorder *rc = arg;
	static qentry batch[REC_BATCH];
	for (;;) {
		pthread_mutex_lock(&rc->lock);
		if (rc->count == 0) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 200 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&rc->wake, &rc->lock, &until);
		}
		unsigned n = 0;
		while (rc->count && n < REC_BATCH) {
			batch[n++] = rc->q[rc->head];
			rc->head = (rc->head + 1) % REC_QUEUE;
			rc->count--;
		}
		pthread_mutex_unlock(&rc->lock);
		for (unsigned i = 0; i < n; i++) {
			qentry *e = &batch[i];
			if (e->kind == Q_FRAME) {
				on_frame(rc, e->rec, e->msg);
				nng_msg_free(e->msg);
			} else if (e->kind == Q_STOP) {
				on_stop(rc, e->rec);
			} else {
				for (unsigned k = i + 1; k < n; k++)   /* nothing follows a quit */
					if (batch[k].msg)
						nng_msg_free(batch[k].msg);
				return NULL;
			}
		}
		int64_t now = clock_mono_ms();
		if (now - rc->flushed_ms >= REC_FLUSH_MS) {
			rc->flushed_ms = now;
			flush_all(rc);
		}
	}
}

/* ---- the main thread's side ---- */

/* Queues an entry; frames only while REC_RESERVE places are left. */
static int push(recorder *rc, int kind, recording *r, nng_msg *msg)
{
	pthread_mutex_lock(&rc->lock);
	unsigned limit = kind == Q_FRAME ? REC_QUEUE - REC_RESERVE : REC_QUEUE;
	if (rc->count >= limit) {
		pthread_mutex_unlock(&rc->lock);
		return -1;
	}
	rc->q[(rc->head + rc->count) % REC_QUEUE] = (qentry){ kind, r, msg };
	if (rc->count++ == 0)
		pthread_cond_signal(&rc->wake);
	pthread_mutex_unlock(&rc->lock);
	return 0;
}

recorder *recorder_open(downstream *d)
{
	recorder *rc = calloc(1, sizeof *rc);
	if (!rc)
		return NULL;
	rc->d = d;
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->wake, NULL);
	pthread_cond_init(&rc->done_cond, NULL);
	rc->flushed_ms = clock_mono_ms();
	if (pthread_create(&rc->thread, NULL, writer_main, rc) != 0) {
		free(rc);
		return NULL;
	}
	rc->running = 1;
	return rc;
}

static void recording_free(recording *r)
{
	pthread_mutex_destroy(&r->lock);
	free(r->files);
	free(r);
}

static void list_remove(recording **head, recording *r)
{
	for (recording **p = head; *p; p = &(*p)->mnext)
		if (*p == r) {
			*p = r->mnext;
			return;
		}
}

recording *recording_start(recorder *rc, const char *room, const char *dir, char *err, size_t errlen)
{
	if (mkdir_p(dir) < 0 || access(dir, W_OK) < 0) {
		snprintf(err, errlen, "cannot write to %.300s: %s", dir, strerror(errno));
		return NULL;
	}
	recording *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(r->room, sizeof r->room, "%s", room);
	snprintf(r->dir, sizeof r->dir, "%s", dir);
	r->started_us = clock_wall_us();
	pthread_mutex_init(&r->lock, NULL);
	r->mnext = rc->active;
	rc->active = r;
	return r;
}

void recording_frame(recorder *rc, recording *r, nng_msg *msg)
{
	if (push(rc, Q_FRAME, r, msg) == 0)
		return;
	nng_msg_free(msg);
	atomic_fetch_add(&r->dropped, 1);
	atomic_fetch_add_explicit(&rc->d->counters->dropped, 1, memory_order_relaxed);
}

json_t *recording_json(recording *r)
{
	json_t *files = json_array();
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->nfiles; i++) {
		rec_file *f = &r->files[i];
		json_array_append_new(files, json_pack("{s:s, s:I, s:s, s:s, s:o, s:I, s:b}",
		        "file", f->path, "ssrc", (json_int_t)f->ssrc, "user", f->user, "codec", f->codec,
		        "started_at", ds_timestamp(f->started_us), "frames", (json_int_t)f->frames,
		        "open", f->open));
	}
	json_t *error = r->error[0] ? json_string(r->error) : json_null();
	int speakers = 0;
	for (int i = 0; i < r->nfiles; i++) {   /* distinct SSRCs: a speaker may have several files */
		int seen = 0;
		for (int k = 0; k < i && !seen; k++)
			seen = r->files[k].ssrc == r->files[i].ssrc;
		speakers += !seen;
	}
	pthread_mutex_unlock(&r->lock);
	return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
	        "room", r->room, "dir", r->dir, "started_at", ds_timestamp(r->started_us),
	        "frames", (json_int_t)atomic_load(&r->frames),
	        "dropped", (json_int_t)(atomic_load(&r->dropped) + atomic_load(&r->errors)),
	        "late", (json_int_t)atomic_load(&r->late),
	        "unsupported", (json_int_t)atomic_load(&r->unsupported),
	        "speakers", (json_int_t)speakers, "files", files, "error", error);
}

json_t *recording_stop(recorder *rc, recording *r, int wait_ms)
{
	list_remove(&rc->active, r);
	push(rc, Q_STOP, r, NULL);   /* REC_RESERVE keeps room for it */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rc->lock);
	while (!r->done)
		if (pthread_cond_timedwait(&rc->done_cond, &rc->lock, &until) == ETIMEDOUT)
			break;
	int done = r->done;
	pthread_mutex_unlock(&rc->lock);
	json_t *j = recording_json(r);
	json_object_set_new(j, "finalizing", json_boolean(!done));
	if (done) {
		recording_free(r);
	} else {
		r->mnext = rc->finishing;
		rc->finishing = r;
	}
	return j;
}

void recorder_tick(recorder *rc)
{
	pthread_mutex_lock(&rc->lock);
	for (recording **p = &rc->finishing; *p;) {
		recording *r = *p;
		if (!r->done) {
			p = &r->mnext;
			continue;
		}
		*p = r->mnext;
		recording_free(r);
	}
	pthread_mutex_unlock(&rc->lock);
	int64_t now = clock_mono_ms();
	for (recording *r = rc->active; r; r = r->mnext) {
		uint64_t dropped = atomic_load(&r->dropped);
		if (dropped == r->dropped_logged || now - r->drop_log_ms < REC_DROP_LOG_MS)
			continue;
		log_warn("record_drop", "room %s: %llu frames dropped (%llu in all): the writer "
		         "queue was full, the disk is slower than the audio", r->room,
		         (unsigned long long)(dropped - r->dropped_logged), (unsigned long long)dropped);
		r->dropped_logged = dropped;
		r->drop_log_ms = now;
	}
}

void recorder_close(recorder *rc)
{
	if (!rc)
		return;
	while (rc->active) {
		recording *r = rc->active;
		json_decref(recording_stop(rc, r, 0));
	}
	if (rc->running) {
		while (push(rc, Q_QUIT, NULL, NULL) < 0)
			usleep(1000);
		pthread_join(rc->thread, NULL);
	}
	/* the writer went through every stop before the quit */
	while (rc->finishing) {
		recording *r = rc->finishing;
		rc->finishing = r->mnext;
		recording_free(r);
	}
	for (unsigned i = 0; i < rc->count; i++) {
		qentry *e = &rc->q[(rc->head + i) % REC_QUEUE];
		if (e->msg)
			nng_msg_free(e->msg);
	}
	pthread_cond_destroy(&rc->wake);
	pthread_cond_destroy(&rc->done_cond);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
}
