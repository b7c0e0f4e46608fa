/* main.c (downstream): the downstream process's life (see downstream.h).
 * The supervisor fork+execs it with
 *   fd 3 = shared area, fd 4 = config text
 * and "--downstream -c FILE [--restore]" (--restore when it restarts the
 * process after a crash: the recordings and forwards saved in
 * RUN_DIR/downstream.state are started again; without it a state file
 * left by a previous run of the daemon is removed).
 * One thread runs the loop: poll() on the bus SUB socket and the command
 * REP socket, and a DS_TICK_MS tick (dial new workers, log drops, free
 * finished recordings). The recorder's writer thread does the disk I/O. */
#include "downstream/downstream.h"
#include "downstream/media.h"
#include "common/clock.h"
#include "common/child.h"
#include "common/ipc.h"
#include "common/log.h"
#include "proto/rtp.h"

#include <errno.h>
#include <grp.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DS_FD_SHM 3
#define DS_FD_CONFIG 4
#define DS_BUS_QUEUE 8192           /* NNG's maximum receive queue */
#define DS_RECV_BATCH 2048
#define DS_BUS_WAIT_MS 1000         /* a new subscription waits this long for the mesh */
#define DS_STOP_WAIT_MS 1000        /* record stop waits this long for the files */

static nng_dialer dialers[SHM_MAX_PROCS], sup_dialer;


unsigned ds_pt_bit(int pt)
{
	switch (pt) {
	case PT_PCMU: return DS_PT_PCMU;
	case PT_PCMA: return DS_PT_PCMA;
	case PT_L16: return DS_PT_L16;
	case PT_OPUS: return DS_PT_OPUS;
	default: return 0;
	}
}

json_t *ds_timestamp(int64_t wall_us)
{
	char buf[40];
	clock_format_rfc3339(wall_us, buf, sizeof buf);
	return json_string(buf);
}

/* ---- startup ---- */


/* ---- rooms ---- */

ds_room *ds_room_get(downstream *d, const char *name, int create)
{
	ds_room *r = NULL;
	HASH_FIND_STR(d->rooms, name, r);
	if (r || !create)
		return r;
	if (!(r = calloc(1, sizeof *r)))
		return NULL;
	snprintf(r->name, sizeof r->name, "%s", name);
	HASH_ADD_STR(d->rooms, name, r);
	char topic[DS_NAME_MAX + 2];
	size_t len = strlen(name) + 1;
	memcpy(topic, name, len);
	nng_socket_set(d->sub, NNG_OPT_SUB_SUBSCRIBE, topic, len);
	return r;
}

void ds_room_release(downstream *d, ds_room *r)
{
	if (r->rec || r->fwd)
		return;
	char topic[DS_NAME_MAX + 2];
	size_t len = strlen(r->name) + 1;
	memcpy(topic, r->name, len);
	nng_socket_set(d->sub, NNG_OPT_SUB_UNSUBSCRIBE, topic, len);
	HASH_DEL(d->rooms, r);
	free(r);
}

static void publish_gauges(downstream *d)
{
	atomic_store(&d->counters->recordings, d->n_recordings);
	atomic_store(&d->counters->forwards, d->n_forwards);
}

/* ---- the bus ---- */

static int bus_open(downstream *d)
{
	int rv;
	if ((rv = nng_sub0_open(&d->sub)) ||
	    (rv = nng_socket_set_int(d->sub, NNG_OPT_RECVBUF, DS_BUS_QUEUE)) ||
	    (rv = nng_socket_set_ms(d->sub, NNG_OPT_RECONNMINT, 20)) ||
	    (rv = nng_socket_set_ms(d->sub, NNG_OPT_RECONNMAXT, 1000)) ||
	    (rv = ipc_count_pipes(d->sub, &d->sub_pipes)) ||
	    (rv = nng_socket_set(d->sub, NNG_OPT_SUB_SUBSCRIBE, BUS_BATCH_TOPIC,
	                         sizeof BUS_BATCH_TOPIC)) ||  /* workers' frames come batched */
	    (rv = nng_socket_get_int(d->sub, NNG_OPT_RECVFD, &d->sub_fd))) {
		log_error("bus", "cannot open the bus subscriber: %s", nng_strerror(rv));
		return -1;
	}
	d->sub_open = 1;
	return 0;
}

static int bus_needed(const downstream *d)
{
	return d->n_recordings > 0 || d->n_forwards > 0 || d->tap_open;
}

/* Dials the supervisor's and every live worker's publisher not dialled yet
 * (a restarted worker reuses its entry's address: NNG redials it). */
static void bus_dial(downstream *d)
{
	char url[CFG_PATH_MAX + 32];
	if (!d->dialed_sup) {
		ipc_bus_url(d->cfg.run_dir, -1, url, sizeof url);
		d->dialed_sup = nng_dial(d->sub, url, &sup_dialer, NNG_FLAG_NONBLOCK) == 0;
	}
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		if (d->dialed[i] || !shm_proc_live(atomic_load(&d->shm->procs[i].state)))
			continue;
		ipc_bus_url(d->cfg.run_dir, i, url, sizeof url);
		int rv = nng_dial(d->sub, url, &dialers[i], NNG_FLAG_NONBLOCK);
		if (rv != 0)
			log_warn("bus", "cannot dial %s: %s", url, nng_strerror(rv));
		else
			d->dialed[i] = 1;
	}
}

static void bus_hangup(downstream *d)
{
	if (d->dialed_sup)
		nng_dialer_close(sup_dialer);
	d->dialed_sup = 0;
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		if (d->dialed[i]) {
			nng_dialer_close(dialers[i]);
			d->dialed[i] = 0;
		}
}

static int bus_complete(downstream *d)
{
	int peers = 1;   /* the supervisor */
	for (int i = 0; i < SHM_MAX_PROCS; i++)
		peers += shm_proc_live(atomic_load(&d->shm->procs[i].state));
	return atomic_load(&d->sub_pipes) >= peers;
}

static int bus_dialing(const downstream *d)
{
	return d->dialed_sup;
}

/* Connected to the bus exactly while something needs it. A new
 * connection waits (bounded) for every publisher, so that the frames that
 * follow the command's answer are not missed. */
static void bus_update(downstream *d)
{
	if (bus_needed(d) && !bus_dialing(d)) {
		bus_dial(d);
		int64_t until = clock_mono_ms() + DS_BUS_WAIT_MS;
		while (!bus_complete(d) && clock_mono_ms() < until) {
			usleep(5000);
			bus_dial(d);
		}
		log_info("bus", "listening to the workers (%d publishers)", atomic_load(&d->sub_pipes));
	} else if (!bus_needed(d) && bus_dialing(d)) {
		bus_hangup(d);
		log_info("bus", "nothing recorded, forwarded or tapped: off the bus");
	}
}

static void dispatch(downstream *d, nng_msg *msg);

/* Workers batch their frames (proto/bus.h): each record becomes a message
 * of its own here, as recordings, forwards and the tap expect. */
static void dispatch_batch(downstream *d, const bus_msg *batch)
{
	const uint8_t *inner;
	size_t off = 0, n;
	while (bus_batch_next(batch, &off, &inner, &n) == 0) {
		nng_msg *one;
		if (inner[0] == BUS_BATCH_TOPIC[0] || nng_msg_alloc(&one, n) != 0)
			continue;
		memcpy(nng_msg_body(one), inner, n);
		dispatch(d, one);
	}
}

static void dispatch(downstream *d, nng_msg *msg)
{
	bus_msg m;
	const uint8_t *body = nng_msg_body(msg);
	size_t len = nng_msg_len(msg);
	if (bus_decode(body, len, &m) == 0 && m.type == BUS_BATCH) {
		dispatch_batch(d, &m);
		nng_msg_free(msg);
		return;
	}
	if (bus_decode(body, len, &m) < 0 || (m.type != BUS_FRAME && m.type != BUS_MEMBER) ||
	    (unsigned char)m.room[0] < 0x20) {
		nng_msg_free(msg);   /* worker topics and operator messages */
		return;
	}
	int frame = m.type == BUS_FRAME && m.payload_len >= RTP_HEADER_LEN;
	if (d->tap_open) {
		tap_publish(d, body, len);
		if (frame)
			atomic_fetch_add_explicit(&d->counters->frames[SHM_DS_TAP], 1, memory_order_relaxed);
	}
	ds_room *r = frame ? ds_room_get(d, m.room, 0) : NULL;
	if (!r) {
		nng_msg_free(msg);
		return;
	}
	r->pts |= ds_pt_bit(rtp_payload_type(m.payload));
	for (forward *f = r->fwd; f; f = f->next)
		forward_frame(d, f, &m);
	if (r->rec)
		recording_frame(d->recorder, r->rec, msg);
	else
		nng_msg_free(msg);
}

static void bus_receive(downstream *d)
{
	for (int i = 0; i < DS_RECV_BATCH; i++) {
		nng_msg *msg;
		if (nng_recvmsg(d->sub, &msg, NNG_FLAG_NONBLOCK) != 0)
			return;
		dispatch(d, msg);
	}
}

/* ---- saved state ---- */

static void save_state(downstream *d)
{
	json_t *recs = json_array(), *fwds = json_array();
	for (ds_room *r = d->rooms; r; r = r->hh.next) {
		if (r->rec)
			json_array_append_new(recs, json_pack("{s:s, s:s}", "room", r->name,
			                                      "dir", recording_dir(r->rec)));
		for (forward *f = r->fwd; f; f = f->next)
			json_array_append_new(fwds, json_pack("{s:s, s:s, s:I}", "room", f->room,
			                                      "url", f->url, "ssrc", (json_int_t)f->ssrc));
	}
	json_t *st = json_pack("{s:o, s:o}", "recordings", recs, "forwards", fwds);
	char tmp[sizeof d->state_path + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", d->state_path);
	if (json_dump_file(st, tmp, JSON_COMPACT) < 0 || rename(tmp, d->state_path) < 0)
		log_warn("state", "cannot save %s: %s", d->state_path, strerror(errno));
	json_decref(st);
}

/* ---- commands ---- */

typedef struct cmd_ctx {
	downstream *d;
	json_t *args;
	int status;
	char error[480];
} cmd_ctx;

static json_t *fail(cmd_ctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *fail(cmd_ctx *c, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	c->status = status;
	return NULL;
}

static const char *arg_str(cmd_ctx *c, const char *key)
{
	return json_string_value(json_object_get(c->args, key));
}

static int valid_room(const char *room)
{
	size_t n = room ? strlen(room) : 0;
	if (n < 1 || n > DS_NAME_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)room; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static const char *room_arg(cmd_ctx *c)
{
	const char *room = arg_str(c, "room");
	if (!valid_room(room)) {
		fail(c, 400, "room: a room name of 1-%d bytes without control characters is required",
		     DS_NAME_MAX);
		return NULL;
	}
	return room;
}

/* dir: absolute, or relative to record_dir; default record_dir. */
static int resolve_dir(cmd_ctx *c, char *out, size_t cap)
{
	const char *dir = arg_str(c, "dir");
	json_t *v = json_object_get(c->args, "dir");
	if (v && !json_is_string(v) && !json_is_null(v)) {
		fail(c, 400, "dir: a directory path is expected");
		return -1;
	}
	int n;
	if (!dir || !*dir)
		n = snprintf(out, cap, "%s", c->d->cfg.record_dir);
	else if (dir[0] == '/')
		n = snprintf(out, cap, "%s", dir);
	else
		n = snprintf(out, cap, "%s/%s", c->d->cfg.record_dir, dir);
	if (n < 0 || (size_t)n >= cap) {
		fail(c, 400, "dir: too long");
		return -1;
	}
	return 0;
}

static json_t *start_recording(cmd_ctx *c, const char *room, const char *dir)
{
	downstream *d = c->d;
	ds_room *r = ds_room_get(d, room, 0);
	if (r && r->rec)
		return fail(c, 409, "room %s is being recorded already (into %s)", room,
		            recording_dir(r->rec));
	if (d->n_recordings >= DS_MAX_RECORDINGS)
		return fail(c, 409, "too many recordings (at most %d at once)", DS_MAX_RECORDINGS);
	char err[400];
	struct recording *rec = recording_start(d->recorder, room, dir, err, sizeof err);
	if (!rec)
		return fail(c, 500, "%s", err);
	if (!(r = ds_room_get(d, room, 1))) {
		json_decref(recording_stop(d->recorder, rec, 0));
		return fail(c, 500, "out of memory");
	}
	r->rec = rec;
	d->n_recordings++;
	publish_gauges(d);
	bus_update(d);
	log_info("record_start", "room %s into %s", room, dir);
	return recording_json(rec);
}

static json_t *cmd_record_start(cmd_ctx *c)
{
	char dir[CFG_PATH_MAX];
	const char *room = room_arg(c);
	if (!room || resolve_dir(c, dir, sizeof dir) < 0)
		return NULL;
	json_t *j = start_recording(c, room, dir);
	if (j)
		save_state(c->d);
	return j;
}

static json_t *stop_recording(downstream *d, ds_room *r, int wait_ms)
{
	struct recording *rec = r->rec;
	r->rec = NULL;
	d->n_recordings--;
	publish_gauges(d);
	json_t *j = recording_stop(d->recorder, rec, wait_ms);
	log_info("record_stop", "room %s: %lld frames in %zu files", r->name,
	         (long long)json_integer_value(json_object_get(j, "frames")),
	         json_array_size(json_object_get(j, "files")));
	ds_room_release(d, r);
	return j;
}

static json_t *cmd_record_stop(cmd_ctx *c)
{
	const char *room = room_arg(c);
	if (!room)
		return NULL;
	ds_room *r = ds_room_get(c->d, room, 0);
	if (!r || !r->rec)
		return fail(c, 404, "room %s is not being recorded", room);
	json_t *j = stop_recording(c->d, r, DS_STOP_WAIT_MS);
	bus_update(c->d);
	save_state(c->d);
	return j;
}

static json_t *list_recordings(downstream *d)
{
	json_t *list = json_array();
	for (ds_room *r = d->rooms; r; r = r->hh.next)
		if (r->rec)
			json_array_append_new(list, recording_json(r->rec));
	return list;
}

static json_t *cmd_recordings(cmd_ctx *c)
{
	return list_recordings(c->d);
}

static int ssrc_arg(cmd_ctx *c, uint32_t *ssrc)
{
	json_t *v = json_object_get(c->args, "ssrc");
	*ssrc = 0;
	if (!v || json_is_null(v))
		return 0;
	json_int_t n = json_integer_value(v);
	if (!json_is_integer(v) || n < 1 || n > 0xffffffffLL) {
		fail(c, 400, "ssrc: a number from 1 to 4294967295 is expected");
		return -1;
	}
	*ssrc = (uint32_t)n;
	return 0;
}

static json_t *start_forward(cmd_ctx *c, const char *room, const char *url, uint32_t ssrc)
{
	downstream *d = c->d;
	char err[400];
	int status = 500;
	if (!url)
		return fail(c, 400, "url: a destination udp://HOST:PORT is required");
	forward *f = forward_open(d, room, url, ssrc, &status, err, sizeof err);
	if (!f)
		return fail(c, status, "%s", err);
	ds_room *r = ds_room_get(d, room, 0);
	for (forward *o = r ? r->fwd : NULL; o; o = o->next)
		if (!strcmp(o->url, f->url) && o->ssrc == f->ssrc) {
			forward_close(f);
			return fail(c, 409, "room %s is forwarded to %s already", room, o->url);
		}
	if (d->n_forwards >= DS_MAX_FORWARDS || (r && r->n_fwd >= DS_MAX_FORWARDS_PER_ROOM)) {
		forward_close(f);
		return fail(c, 409, "too many forwards (at most %d, %d per room)", DS_MAX_FORWARDS,
		            DS_MAX_FORWARDS_PER_ROOM);
	}
	if (!r && !(r = ds_room_get(d, room, 1))) {
		forward_close(f);
		return fail(c, 500, "out of memory");
	}
	f->next = r->fwd;
	r->fwd = f;
	r->n_fwd++;
	d->n_forwards++;
	publish_gauges(d);
	bus_update(d);
	if (ssrc)
		log_info("forward_start", "room %s (ssrc %u) to %s", room, ssrc, f->url);
	else
		log_info("forward_start", "room %s to %s", room, f->url);
	json_t *j = forward_json(f);
	char *sdp = forward_sdp(f, r->pts);
	json_object_set_new(j, "sdp", sdp ? json_string(sdp) : json_null());
	free(sdp);
	return j;
}

static json_t *cmd_forward_start(cmd_ctx *c)
{
	uint32_t ssrc;
	const char *room = room_arg(c);
	if (!room || ssrc_arg(c, &ssrc) < 0)
		return NULL;
	json_t *j = start_forward(c, room, arg_str(c, "url"), ssrc);
	if (j)
		save_state(c->d);
	return j;
}

/* The canonical form of an optional url argument, "" when absent. */
static int url_arg(cmd_ctx *c, char *out, size_t cap)
{
	const char *url = arg_str(c, "url");
	out[0] = '\0';
	if (!url || !*url)
		return 0;
	struct sockaddr_storage ss;
	socklen_t len;
	char err[300];
	if (cidr_parse_udp_url(url, &ss, &len, err, sizeof err) < 0) {
		fail(c, 400, "%s", err);
		return -1;
	}
	cidr_format((struct sockaddr *)&ss, 1, out, cap);
	return 0;
}

static void stop_forward(downstream *d, ds_room *r, forward **link, json_t *stopped)
{
	forward *f = *link;
	*link = f->next;
	r->n_fwd--;
	d->n_forwards--;
	json_array_append_new(stopped, forward_json(f));
	log_info("forward_stop", "room %s to %s: %llu frames sent, %llu dropped", f->room, f->url,
	         (unsigned long long)f->frames, (unsigned long long)f->dropped);
	forward_close(f);
}

static json_t *cmd_forward_stop(cmd_ctx *c)
{
	downstream *d = c->d;
	char url[CIDR_URL_MAX];
	const char *room = room_arg(c);
	if (!room || url_arg(c, url, sizeof url) < 0)
		return NULL;
	ds_room *r = ds_room_get(d, room, 0);
	json_t *stopped = json_array();
	for (forward **p = r ? &r->fwd : NULL; p && *p;) {
		if (url[0] && strcmp((*p)->url, url))
			p = &(*p)->next;
		else
			stop_forward(d, r, p, stopped);
	}
	if (!json_array_size(stopped)) {
		json_decref(stopped);
		return fail(c, 404, url[0] ? "room %s is not forwarded to %s" : "room %s is not forwarded%s",
		            room, url);
	}
	ds_room_release(d, r);
	publish_gauges(d);
	bus_update(d);
	save_state(d);
	return json_pack("{s:s, s:o}", "room", room, "stopped", stopped);
}

static json_t *list_forwards(downstream *d)
{
	json_t *list = json_array();
	for (ds_room *r = d->rooms; r; r = r->hh.next)
		for (forward *f = r->fwd; f; f = f->next)
			json_array_append_new(list, forward_json(f));
	return list;
}

static json_t *cmd_forwards(cmd_ctx *c)
{
	return list_forwards(c->d);
}

static json_t *cmd_forward_sdp(cmd_ctx *c)
{
	char url[CIDR_URL_MAX];
	const char *room = room_arg(c);
	if (!room || url_arg(c, url, sizeof url) < 0)
		return NULL;
	ds_room *r = ds_room_get(c->d, room, 0);
	forward *f = r ? r->fwd : NULL, *pick = NULL;
	for (; f && !pick; f = f->next)
		if (!url[0] || !strcmp(f->url, url))
			pick = f;
	if (!pick)
		return fail(c, 404, "room %s is not forwarded%s%s: start a forward first", room,
		            url[0] ? " to " : "", url);
	char *sdp = forward_sdp(pick, r->pts);
	if (!sdp)
		return fail(c, 500, "out of memory");
	json_t *j = json_pack("{s:s, s:s, s:s}", "room", room, "url", pick->url, "sdp", sdp);
	free(sdp);
	return j;
}

/* A reload: the new allowlist, tap and record_dir. Forwards the new
 * allowlist refuses are stopped and listed. */
static json_t *cmd_reconfigure(cmd_ctx *c)
{
	static cfg next;
	static cfg_errors errs;
	downstream *d = c->d;
	const char *text = arg_str(c, "config");
	if (!text)
		return fail(c, 400, "config: the config text is required");
	cfg_defaults(&next);
	if (cfg_load_buffer(&next, d->cfg.file, text, &errs) > 0)
		return fail(c, 400, "%s", errs.msg[0]);
	cidr_list allow;
	char err[200];
	if (cidr_parse_list(next.downstream_allow, &allow, err, sizeof err) < 0)
		return fail(c, 400, "%s", err);
	d->allow = allow;
	snprintf(d->cfg.downstream_allow, sizeof d->cfg.downstream_allow, "%s", next.downstream_allow);
	snprintf(d->cfg.record_dir, sizeof d->cfg.record_dir, "%s", next.record_dir);
	d->cfg.log_level = next.log_level;
	log_set_level(next.log_level);
	json_t *stopped = json_array();
	for (ds_room *r = d->rooms, *rn; r; r = rn) {
		rn = r->hh.next;
		for (forward **p = &r->fwd; *p;) {
			if (cidr_match(&d->allow, (struct sockaddr *)&(*p)->dst))
				p = &(*p)->next;
			else
				stop_forward(d, r, p, stopped);
		}
		ds_room_release(d, r);
	}
	if (strcmp(next.downstream_tap, d->tap_url)) {
		tap_close(d);
		if (next.downstream_tap[0])
			tap_open(d, next.downstream_tap);
		nng_socket_set(d->sub, d->tap_open ? NNG_OPT_SUB_SUBSCRIBE : NNG_OPT_SUB_UNSUBSCRIBE, "", 0);
	}
	publish_gauges(d);
	bus_update(d);
	save_state(d);
	return json_pack("{s:o}", "stopped", stopped);
}

/* The daemon stops: what was running, for the supervisor's audit. The
 * state file goes at exit: nothing is restored by the next daemon. */
static json_t *cmd_shutdown(cmd_ctx *c)
{
	c->d->clean_exit = 1;
	return json_pack("{s:o, s:o}", "recordings", list_recordings(c->d), "forwards",
	                 list_forwards(c->d));
}

static const struct command {
	const char *name;
	json_t *(*run)(cmd_ctx *c);
} commands[] = {
	{ "record-start", cmd_record_start }, { "record-stop", cmd_record_stop },
	{ "recordings", cmd_recordings }, { "forward-start", cmd_forward_start },
	{ "forward-stop", cmd_forward_stop }, { "forwards", cmd_forwards },
	{ "forward-sdp", cmd_forward_sdp }, { "reconfigure", cmd_reconfigure },
	{ "shutdown", cmd_shutdown },
};

static char *answer(downstream *d, const char *body, size_t len)
{
	cmd_ctx c = { d, NULL, 400, "" };
	json_t *result = NULL;
	c.args = json_loadb(body, len, 0, NULL);
	const char *name = json_string_value(json_object_get(c.args, "cmd"));
	if (!json_is_object(c.args) || !name) {
		fail(&c, 400, "the request is not a JSON object with a \"cmd\"");
	} else {
		size_t i = 0;
		for (; i < sizeof commands / sizeof commands[0]; i++)
			if (!strcmp(commands[i].name, name)) {
				result = commands[i].run(&c);
				break;
			}
		if (i == sizeof commands / sizeof commands[0])
			fail(&c, 400, "unknown command \"%s\"", name);
	}
	json_t *reply = result ? json_pack("{s:b, s:o}", "ok", 1, "result", result)
	                       : json_pack("{s:b, s:i, s:s}", "ok", 0, "status", c.status, "error", c.error);
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	json_decref(c.args);
	return text;
}

static void command_receive(downstream *d)
{
	for (int i = 0; i < 16; i++) {
		char *body;
		size_t len;
		if (nng_recv(d->cmd, &body, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) != 0)
			return;
		char *reply = answer(d, body, len);
		nng_free(body, len);
		if (reply) {
			nng_send(d->cmd, reply, strlen(reply), NNG_FLAG_NONBLOCK);
			free(reply);
		}
	}
}

static int command_open(downstream *d)
{
	char url[CFG_PATH_MAX + 32];
	int rv;
	snprintf(url, sizeof url, "ipc://%s/downstream.ipc", d->cfg.run_dir);
	unlink(url + 6);
	if ((rv = nng_rep0_open(&d->cmd)) || (rv = nng_listen(d->cmd, url, NULL, 0)) ||
	    (rv = nng_socket_get_int(d->cmd, NNG_OPT_RECVFD, &d->cmd_fd))) {
		log_error("startup", "downstream: cannot listen on %s: %s", url, nng_strerror(rv));
		return -1;
	}
	return 0;
}

/* After a crash: start again what the saved state lists. */
static void restore_state(downstream *d)
{
	json_t *st = json_load_file(d->state_path, 0, NULL);
	if (!st)
		return;
	int recs = 0, fwds = 0;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(st, "recordings"), i, e) {
		cmd_ctx c = { d, e, 0, "" };
		const char *room = json_string_value(json_object_get(e, "room"));
		const char *dir = json_string_value(json_object_get(e, "dir"));
		json_t *j = valid_room(room) && dir ? start_recording(&c, room, dir) : NULL;
		if (j)
			recs++;
		else
			log_error("state", "cannot restore the recording of %s: %s", room ? room : "?", c.error);
		json_decref(j);
	}
	json_array_foreach(json_object_get(st, "forwards"), i, e) {
		cmd_ctx c = { d, e, 0, "" };
		const char *room = json_string_value(json_object_get(e, "room"));
		json_int_t ssrc = json_integer_value(json_object_get(e, "ssrc"));
		json_t *j = valid_room(room) && ssrc >= 0 && ssrc <= 0xffffffffLL
		            ? start_forward(&c, room, json_string_value(json_object_get(e, "url")),
		                            (uint32_t)ssrc) : NULL;
		if (j)
			fwds++;
		else
			log_error("state", "cannot restore a forward of %s: %s", room ? room : "?", c.error);
		json_decref(j);
	}
	json_decref(st);
	log_warn("state", "restarted: %d recordings (in new files) and %d forwards restored", recs, fwds);
	save_state(d);
}

/* ---- the loop ---- */

/* Publishers come and go (workers start, restart, retire): the count is
 * logged when it changes, so an operator (and a test) can tell when frames
 * from every worker reach the recordings, forwards and tap. */
static void log_bus_pipes(downstream *d)
{
	int pipes = atomic_load(&d->sub_pipes);
	if (pipes == d->logged_pipes)
		return;
	d->logged_pipes = pipes;
	log_info("bus_pipes", "connected to %d publishers (the supervisor and the workers)", pipes);
}

static void run(downstream *d)
{
	int64_t next_tick = clock_mono_ms() + DS_TICK_MS;
	while (!child_stop_signal) {
		struct pollfd p[2] = { { d->cmd_fd, POLLIN, 0 }, { d->sub_fd, POLLIN, 0 } };
		int64_t wait = next_tick - clock_mono_ms();
		poll(p, 2, wait < 0 ? 0 : (int)wait);
		if (child_reopen_log) {
			child_reopen_log = 0;
			log_reopen();
		}
		bus_receive(d);
		command_receive(d);
		if (clock_mono_ms() >= next_tick) {
			next_tick = clock_mono_ms() + DS_TICK_MS;
			if (bus_dialing(d))
				bus_dial(d);
			log_bus_pipes(d);
			recorder_tick(d->recorder);
		}
	}
}

static void shutdown_all(downstream *d)
{
	for (ds_room *r = d->rooms, *rn; r; r = rn) {
		rn = r->hh.next;
		while (r->fwd) {
			forward *f = r->fwd;
			r->fwd = f->next;
			forward_close(f);
			d->n_forwards--;
		}
		if (r->rec) {
			r->rec = NULL;   /* the recorder finishes it when it closes */
			d->n_recordings--;
		}
		HASH_DEL(d->rooms, r);
		free(r);
	}
	recorder_close(d->recorder);   /* every file finished */
	d->recorder = NULL;
	publish_gauges(d);
}

int downstream_main(int argc, char **argv)
{
	static downstream d;
	const char *file = NULL;
	int restore = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--restore"))
			restore = 1;
		else
			file = NULL, i = argc;
	}
	if (!file) {
		fprintf(stderr, "audiogwd: --downstream is internal: the supervisor starts it\n");
		return 2;
	}
	if (child_load_config(&d.cfg, file, "downstream") < 0)
		return 1;
	if (log_open(d.cfg.log_file, d.cfg.log_level, DS_LOG_ID) < 0)
		log_open(NULL, d.cfg.log_level, DS_LOG_ID);
	if (!(d.shm = shm_attach(DS_FD_SHM))) {
		log_error("startup", "downstream: the shared area (fd %d) is missing or foreign", DS_FD_SHM);
		return 1;
	}
	close(DS_FD_SHM);
	d.counters = &d.shm->downstream;
	char err[200];
	if (cidr_parse_list(d.cfg.downstream_allow, &d.allow, err, sizeof err) < 0) {
		log_error("startup", "downstream: allow: %s", err);
		return 1;
	}
	if (child_drop_privileges(d.cfg.user) < 0)
		return 1;
	child_watch_signals();
	snprintf(d.state_path, sizeof d.state_path, "%s/downstream.state", d.cfg.run_dir);
	if (bus_open(&d) < 0 || command_open(&d) < 0 || !(d.recorder = recorder_open(&d)))
		return 1;
	if (d.cfg.downstream_tap[0] && tap_open(&d, d.cfg.downstream_tap) == 0) {
		nng_socket_set(d.sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
		bus_update(&d);
	}
	if (restore)
		restore_state(&d);
	else
		unlink(d.state_path);   /* a previous daemon's: this one starts with nothing */
	publish_gauges(&d);
	log_info("downstream_start", "pid %d: recordings in %s, forwards allowed to %s, tap %s",
	         (int)getpid(), d.cfg.record_dir,
	         d.cfg.downstream_allow[0] ? d.cfg.downstream_allow : "nowhere",
	         d.tap_open ? d.tap_url : "off");
	run(&d);
	log_info("downstream_stop", "%s: finishing %d recordings", strsignal(child_stop_signal), d.n_recordings);
	shutdown_all(&d);
	tap_close(&d);
	nng_close(d.sub);
	nng_close(d.cmd);
	if (d.clean_exit)
		unlink(d.state_path);
	log_info("downstream_exit", "stopped");
	return 0;
}
