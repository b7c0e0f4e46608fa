/* downstream.h: the downstream process, `audiogwd --downstream`: audio that
 * leaves the gateway for something other than its clients.
 *
 *   recorder.c  record rooms: one file per speaker (SSRC), Ogg Opus or WAV,
 *               written by a writer thread through a bounded queue
 *   forward.c   RTP forward: a room's frames (or one speaker's) as plain RTP
 *               over UDP to allowed addresses; the SDP to receive them
 *   tap.c       NNG PUB at [downstream] tap: every room's bus messages
 *   main.c      the process: config (fd 4), shared area (fd 3), the bus
 *               subscription, the command socket, the saved state, the loop
 *
 * The supervisor starts it like the journal (fork + exec, restarted with
 * backoff when it dies) and passes it the shared area at fd 3 and the
 * validated config at fd 4, as it does for workers. It finds the workers'
 * publishers the way workers find each other: ipc://RUN_DIR/bus-N.ipc for
 * every live entry N of the shared area's process table, rescanned every
 * DS_TICK_MS. It dials them only while something is recorded, forwarded
 * or tapped (NNG's publishers send every message to every subscriber, so
 * an idle downstream process costs the workers nothing), and subscribes to
 * the rooms it serves ("ROOM\0"), or to everything when the tap is on.
 *
 * Commands come from the supervisor (audiogwctl and the admin API go
 * through its command layer) on an NNG rep socket at
 * ipc://RUN_DIR/downstream.ipc: {"cmd": NAME, ...} answered with
 * {"ok":true,"result":X} or {"ok":false,"status":HTTP_STATUS,"error":MSG}.
 *
 * The main thread never touches a disk on the frame path: frames for a
 * recording go into the writer's queue, and when the queue is full (the
 * disk is slower than the audio) they are dropped and counted, per
 * recording. Forward sends are non-blocking; what they cannot send is
 * counted too. Active recordings and forwards are saved in
 * RUN_DIR/downstream.state and restored when the process is restarted
 * after a crash (recordings continue in new files). */
#ifndef AGW_DOWNSTREAM_H
#define AGW_DOWNSTREAM_H

#include "common/cidr.h"
#include "common/config.h"
#include "common/shm.h"
#include "proto/bus.h"

#include <jansson.h>
#include <nng/nng.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uthash.h>

#define DS_LOG_ID -3                 /* the "worker" of its log lines */
#define DS_TICK_MS 100
#define DS_MAX_RECORDINGS 256
#define DS_MAX_FORWARDS 256
#define DS_MAX_FORWARDS_PER_ROOM 16
#define DS_NAME_MAX REG_NAME_MAX

/* Payload types the downstream process knows (SPEC 4.3), as bits of a mask. */
enum { DS_PT_PCMU = 1, DS_PT_PCMA = 2, DS_PT_L16 = 4, DS_PT_OPUS = 8 };
unsigned ds_pt_bit(int pt);

struct recording;
struct recorder;
struct forward;

typedef struct ds_room {
	char name[DS_NAME_MAX + 1];
	struct recording *rec;           /* at most one recording per room */
	struct forward *fwd;             /* its forwards, a list */
	int n_fwd;
	unsigned pts;                    /* DS_PT_* seen in its frames */
	UT_hash_handle hh;
} ds_room;

typedef struct downstream {
	cfg cfg;
	shm_area *shm;
	shm_downstream *counters;
	cidr_list allow;
	char state_path[CFG_PATH_MAX + 32];
	/* the bus */
	nng_socket sub;
	int sub_open, sub_fd;
	int dialed[SHM_MAX_PROCS], dialed_sup;
	_Atomic int sub_pipes;
	int logged_pipes;                /* the count last logged ("bus_pipes") */
	/* commands */
	nng_socket cmd;
	int cmd_fd;
	/* the tap */
	nng_socket tap;
	int tap_open;
	char tap_url[CFG_PATH_MAX];
	/* rooms, recordings, forwards */
	ds_room *rooms;
	struct recorder *recorder;
	int n_recordings, n_forwards;
	int clean_exit;                  /* shutdown: the state file goes, nothing to restore */
} downstream;

/* main.c */
int downstream_main(int argc, char **argv);
ds_room *ds_room_get(downstream *d, const char *name, int create);
void ds_room_release(downstream *d, ds_room *r);  /* frees it when nothing uses it */
json_t *ds_timestamp(int64_t wall_us);

/* recorder.c: the writer thread and the recordings */
struct recorder *recorder_open(downstream *d);
/* Stops every recording (their files are finished) and the thread. */
void recorder_close(struct recorder *rc);
/* A new recording of room into dir (created if missing). NULL with err. */
struct recording *recording_start(struct recorder *rc, const char *room, const char *dir,
                                  char *err, size_t errlen);
/* Hands the frame message over (taken: freed here or by the writer). */
void recording_frame(struct recorder *rc, struct recording *r, nng_msg *msg);
/* Stops a recording: its files are finished by the writer; waits for that
 * up to wait_ms. Returns its description (the recording is freed once done). */
json_t *recording_stop(struct recorder *rc, struct recording *r, int wait_ms);
json_t *recording_json(struct recording *r);
const char *recording_room(const struct recording *r);
const char *recording_dir(const struct recording *r);
/* Periodic: frees stopped recordings the writer is done with, logs drops. */
void recorder_tick(struct recorder *rc);

/* forward.c */
typedef struct forward {
	char room[DS_NAME_MAX + 1];
	char url[CIDR_URL_MAX];
	uint32_t ssrc;                   /* 0 = every speaker */
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int fd;
	int64_t started_us;
	uint64_t frames, bytes, dropped;
	int last_errno;
	unsigned pts;                    /* DS_PT_* forwarded */
	struct forward *next;
} forward;

/* Checks url against the allowlist and opens its socket. NULL with *status
 * (400 bad URL, 403 not allowed, 500) and err. */
forward *forward_open(downstream *d, const char *room, const char *url, uint32_t ssrc,
                      int *status, char *err, size_t errlen);
void forward_close(forward *f);
void forward_frame(downstream *d, forward *f, const bus_msg *m);
json_t *forward_json(const forward *f);
/* The SDP a receiver of f uses (malloc'd). room_pts: what the room sent. */
char *forward_sdp(const forward *f, unsigned room_pts);

/* tap.c */
int tap_open(downstream *d, const char *url);
void tap_close(downstream *d);
void tap_publish(downstream *d, const void *msg, size_t len);

#endif
