/* shm.h: the shared memory area the supervisor creates before starting any
 * worker and every worker maps from an inherited descriptor. It holds one
 * entry per worker process (state and counters, written only by that worker,
 * read by the supervisor for status and /metrics) and host-wide state
 * (the ssrc allocator, the connection count behind max_connections).
 * Everything is lock-free: relaxed atomics, one writer per field. */
#ifndef AGW_SHM_H
#define AGW_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/registry.h"

#define SHM_MAGIC 0x61677731u /* "agw1" */
#define SHM_MAX_PROCS 256

enum shm_proc_state {
	SHM_PROC_FREE = 0,
	SHM_PROC_STARTING,
	SHM_PROC_READY,
	SHM_PROC_DRAINING,
	SHM_PROC_EXITED,
};

/* Why a handshake was refused (audiogw_handshake_rejected_total{reason}). */
enum shm_reject { REJ_AUTH, REJ_BANNED, REJ_PATH, REJ_IP_LIMIT, REJ_RATE, REJ_DRAINING,
                  REJ_FULL, SHM_REJECT_REASONS };
/* Why an audio frame was dropped (audiogw_audio_frames_dropped_total{reason}). */
enum shm_drop { DROP_INVALID, DROP_RATE, DROP_MUTED, DROP_QUEUE, DROP_LISTEN_ONLY,
                SHM_DROP_REASONS };
/* Close codes counted (audiogw_closes_total{code}). */
enum shm_close { CLOSE_1000, CLOSE_1001, CLOSE_1006, CLOSE_1008, CLOSE_1009, CLOSE_1011,
                 CLOSE_4001, CLOSE_4002, CLOSE_4003, CLOSE_4004, CLOSE_4008, SHM_CLOSE_CODES };

/* Relay latency histogram bounds in microseconds (the last bucket is +Inf). */
#define SHM_LATENCY_BUCKETS 14
static const int64_t shm_latency_bounds_us[SHM_LATENCY_BUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000 };

/* Counters of one worker process. Totals only grow; gauges go up and down. */
typedef struct shm_counters {
	_Atomic int64_t connections;        /* gauge: open WebSocket sessions */
	_Atomic uint64_t accepted_total;    /* upgrades completed */
	_Atomic uint64_t tcp_accepted_total;/* TCP connections accepted */
	_Atomic uint64_t handshake_rejected[SHM_REJECT_REASONS];
	_Atomic uint64_t frames_in, frames_out, bytes_in, bytes_out;
	_Atomic uint64_t frames_dropped[SHM_DROP_REASONS];
	_Atomic uint64_t closes[SHM_CLOSE_CODES];
	_Atomic uint64_t bus_in_total, bus_out_total;
	_Atomic int64_t outbound_queue_frames;        /* gauge: audio frames queued */
	_Atomic uint64_t latency_buckets[SHM_LATENCY_BUCKETS]; /* sampled relay latency, cumulative "le" */
	_Atomic uint64_t latency_count, latency_sum_us;
	_Atomic uint64_t audit_events, audit_dropped;
	_Atomic int64_t write_coalesce_ms;  /* gauge: the hold in force (write_coalesce = auto) */
} shm_counters;

/* What the supervisor asks of a worker (set, then SIGUSR2 to wake it). */
enum shm_command {
	SHM_CMD_NONE = 0,
	SHM_CMD_DRAIN_RELOAD,   /* stop accepting, drain (reason drain), exit */
	SHM_CMD_DRAIN_HOST,     /* keep accepting but answer 503, drain (reason drain), stay */
	SHM_CMD_SHUTDOWN,       /* stop accepting, drain (reason shutdown), exit */
	SHM_CMD_SHUTDOWN_NOW,   /* the same with no wait */
};

typedef struct shm_proc {
	_Atomic int32_t state;
	_Atomic int32_t command;            /* enum shm_command */
	_Atomic int32_t pid;
	int32_t slot;
	int32_t generation;
	int64_t started_at_us;              /* wall clock */
	shm_counters c;
} __attribute__((aligned(64))) shm_proc;

/* The downstream process (audiogwd --downstream: recording, RTP forward,
 * tap). It has no entry in procs (workers would dial it as a peer); its
 * totals live here, only ever added to, so they survive its restarts. */
enum shm_ds_kind { SHM_DS_RECORD, SHM_DS_FORWARD, SHM_DS_TAP, SHM_DS_KINDS };

typedef struct shm_downstream {
	_Atomic uint64_t frames[SHM_DS_KINDS];   /* written to a file, sent by UDP, published */
	_Atomic uint64_t dropped;                /* frames it had to discard (queue full, send failed) */
	_Atomic int32_t recordings, forwards;    /* gauges, set by the downstream process */
} shm_downstream;

typedef struct shm_area {
	uint32_t magic;
	uint32_t size;
	_Atomic uint32_t ssrc_next;         /* host-wide ssrc allocator */
	_Atomic int64_t host_connections;   /* sum over workers, for max_connections */
	uint64_t reg_offset;                /* the session registry follows the header */
	unsigned char resume_key[32];       /* signs resume tokens; lives as long as the supervisor */
	shm_proc procs[SHM_MAX_PROCS];
	shm_downstream downstream;
} shm_area;

/* Supervisor: create (memfd) and map, with a registry of reg_capacity
 * sessions. Returns the area and sets *fd. Untouched pages cost nothing. */
shm_area *shm_create(int reg_capacity, int *fd);
/* Worker: map an inherited descriptor; NULL if it is not our area. */
shm_area *shm_attach(int fd);
/* Supervisor: claim a free process entry; -1 if none. */
int shm_proc_claim(shm_area *a, int slot, int generation);
void shm_proc_release(shm_area *a, int index);
/* Host-wide unique, never 0. */
uint32_t shm_next_ssrc(shm_area *a);
/* A process entry whose owner is (or is about to be) on the bus. */
static inline int shm_proc_live(int state)
{
	return state == SHM_PROC_STARTING || state == SHM_PROC_READY || state == SHM_PROC_DRAINING;
}

static inline reg_area *shm_registry(shm_area *a)
{
	return (reg_area *)((char *)a + a->reg_offset);
}

#endif
