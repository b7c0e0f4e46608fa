/* registry.h: the host-wide session registry, in the shared area.
 *
 * Every live session on every worker has one entry: who it is (session id,
 * user, room, ssrc, ip, perm, mute state), which worker process owns it, and
 * its counters. Entries are chained per room and per user (hash buckets), so
 * a worker answers "who else is in this room?" (welcome.members) and "which
 * connections does this user have?" (max_conns_per_user, kick) for the whole
 * host without asking the other workers; the supervisor lists sessions and,
 * when a worker dies, finds the sessions it held (audit worker_crash rows,
 * member "left" events) because the knowledge lives outside the worker.
 *
 * Writers (the owning worker, the supervisor after a crash) take one robust
 * process-shared mutex: membership changes are rare next to audio frames and
 * hold it for a few hundred nanoseconds; a worker killed while holding it
 * costs the next locker a pthread_mutex_consistent(). Counters are relaxed
 * atomics the owner updates without the lock. */
#ifndef AGW_REGISTRY_H
#define AGW_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define REG_NAME_MAX 128
#define REG_ID_LEN 24
#define REG_BUCKETS 65536        /* per index; a power of two */
#define REG_NONE (-1)
#define REG_IP_SLOTS 131072      /* distinct client addresses tracked at once; a power of two */
#define REG_IP_LEN 48

/* A RESUMABLE session lost its connection but may be resumed (SPEC 4.6):
 * it keeps its room membership and ssrc, and nothing else counts it. */
enum reg_state { REG_FREE = 0, REG_LIVE = 1, REG_RESUMABLE = 2 };

typedef struct reg_session {
	int32_t state;
	int32_t proc;                /* owner's entry in the shared area's procs */
	int32_t worker;              /* owner's slot */
	int32_t next_room, next_user, next_free;
	uint32_t ssrc;
	uint8_t muted, listen_only, evicting;
	int64_t connected_at_us;     /* wall clock */
	char id[REG_ID_LEN + 1];
	char user[REG_NAME_MAX + 1];
	char room[REG_NAME_MAX + 1];
	char dev[REG_NAME_MAX + 1];
	char ip[REG_IP_LEN];
	/* the owner's rtp_seq_stats of the session's frames (SPEC 4.3), for listings */
	_Atomic uint32_t frames_lost;
	_Atomic uint64_t frames_in, frames_out, frames_dropped;
	_Atomic int64_t last_audio_ms; /* monotonic; "speakers" = sent audio in the last 2 s */
	int64_t resume_until_ms;     /* RESUMABLE: monotonic deadline */
	_Atomic uint32_t frames_duplicate, frames_out_of_order;
} reg_session;

/* Connections per client address, host-wide (max_conns_per_ip). */
typedef struct reg_ip {
	char ip[REG_IP_LEN];         /* "" = empty slot */
	int32_t count;
} reg_ip;

#define REG_BAN_SLOTS 4096         /* users banned at once; a power of two */

/* kick --ban: handshakes of the user are refused 403 until until_us. */
typedef struct reg_ban {
	char user[REG_NAME_MAX + 1];
	int64_t until_us;            /* wall clock; 0 = empty slot */
} reg_ban;

typedef struct reg_area {
	pthread_mutex_t lock;
	int32_t capacity;
	int32_t free_head;           /* released entries */
	int32_t high_water;          /* entries [high_water, capacity) were never used: untouched pages */
	int32_t live;
	_Atomic int32_t resumable;   /* RESUMABLE entries (changed under the lock) */
	int32_t room_head[REG_BUCKETS];
	int32_t user_head[REG_BUCKETS];
	int32_t ips_used;
	reg_ip ips[REG_IP_SLOTS];    /* open addressing, linear probing */
	reg_ban bans[REG_BAN_SLOTS]; /* open addressing; expired slots are reused */
	reg_session s[];
} reg_area;

/* What a new session is registered with. */
typedef struct reg_info {
	const char *id, *user, *room, *dev, *ip;
	uint32_t ssrc;
	int listen_only;
	int64_t connected_at_us;
} reg_info;

typedef void (*reg_visit)(const reg_session *s, int index, void *arg);

size_t reg_bytes(int capacity);
int reg_init(reg_area *r, int capacity);        /* supervisor, before workers exist */
void reg_lock(reg_area *r);
void reg_unlock(reg_area *r);

/* These take the lock themselves. */
int reg_add(reg_area *r, int proc, int worker, const reg_info *info); /* index, or -1 when full */
void reg_remove(reg_area *r, int index);
void reg_move(reg_area *r, int index, const char *room);
void reg_set_muted(reg_area *r, int index, int muted);
/* Visit the sessions of a room (live and resumable: both are members) /
 * of a user (the callback runs under the lock; check ->state). */
int reg_each_in_room(reg_area *r, const char *room, reg_visit fn, void *arg);
int reg_each_of_user(reg_area *r, const char *user, reg_visit fn, void *arg);
/* Live connections from this address (lock taken). */
int reg_ip_count(reg_area *r, const char *ip);
/* max_conns_per_user: marks the oldest sessions of the user as being
 * replaced until at most max others remain, and returns them (at most
 * out_max); their owners close them 4003. */
int reg_user_evict(reg_area *r, const char *user, int max, int *out, int out_max);
/* Bans (lock taken). reg_ban_user returns -1 when the table is full of live bans. */
int reg_ban_user(reg_area *r, const char *user, int64_t until_us, int64_t now_us);
int reg_is_banned(reg_area *r, const char *user, int64_t now_us);
/* Visit every live session (the callback runs under the lock). */
int reg_each_live(reg_area *r, reg_visit fn, void *arg);
/* Remove every session a dead worker process owned, visiting each first;
 * with resume_until_ms > 0 its live sessions are parked instead. */
int reg_remove_proc(reg_area *r, int proc, int64_t resume_until_ms, reg_visit fn, void *arg);
/* A live session lost its connection: keep it resumable until the deadline. */
void reg_park(reg_area *r, int index, int64_t until_ms);
/* Takes over a resumable session (same id and user) for a new connection:
 * 0, or -1 if it is not there (expired, resumed already, another id). */
int reg_resume(reg_area *r, int index, const char *id, const char *user, int proc, int worker,
               const char *ip, int64_t connected_at_us);
/* Removes the resumable sessions whose deadline passed, visiting each first. */
int reg_expire(reg_area *r, int64_t now_ms, reg_visit fn, void *arg);

#endif
