/* registry.c: the host-wide session registry (see registry.h). */
#include "common/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

size_t reg_bytes(int capacity)
{
	return sizeof(reg_area) + (size_t)capacity * sizeof(reg_session);
}

int reg_init(reg_area *r, int capacity)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(&r->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (rc)
		return -1;
	r->capacity = capacity;
	r->live = 0;
	for (int i = 0; i < REG_BUCKETS; i++)
		r->room_head[i] = r->user_head[i] = REG_NONE;
	r->free_head = REG_NONE;
	r->high_water = 0;
	atomic_init(&r->resumable, 0);
	return 0;
}

void reg_lock(reg_area *r)
{
	if (pthread_mutex_lock(&r->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&r->lock);  /* a worker died holding it */
}

void reg_unlock(reg_area *r) { pthread_mutex_unlock(&r->lock); }

static uint32_t reg_hash(const char *s)
{
	uint32_t h = 2166136261u;  /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (REG_BUCKETS - 1);
}

static void copy_name(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* Unlink index from a chain whose links live at offset link_off in each entry. */
static void chain_unlink(reg_area *r, int32_t *head, int index, size_t link_off)
{
	for (int32_t *p = head; *p != REG_NONE;
	     p = (int32_t *)((char *)&r->s[*p] + link_off)) {
		if (*p == index) {
			*p = *(int32_t *)((char *)&r->s[index] + link_off);
			return;
		}
	}
}

static void link_room(reg_area *r, int index)
{
	int32_t *head = &r->room_head[reg_hash(r->s[index].room)];
	r->s[index].next_room = *head;
	*head = index;
}

static void unlink_room(reg_area *r, int index)
{
	chain_unlink(r, &r->room_head[reg_hash(r->s[index].room)], index,
	             offsetof(reg_session, next_room));
}

/* -- connections per address: open addressing with backward-shift delete -- */

static uint32_t ip_home(const char *ip) { return reg_hash(ip) & (REG_IP_SLOTS - 1); }

/* The slot holding ip, or the empty slot where it would go; -1 if full. */
static int ip_slot(reg_area *r, const char *ip)
{
	uint32_t i = ip_home(ip);
	for (int n = 0; n < REG_IP_SLOTS; n++, i = (i + 1) & (REG_IP_SLOTS - 1))
		if (!r->ips[i].ip[0] || !strcmp(r->ips[i].ip, ip))
			return (int)i;
	return -1;
}

static void ip_add(reg_area *r, const char *ip, int delta)
{
	if (!ip[0])
		return;  /* unknown address: "" would look like an empty slot */
	int i = ip_slot(r, ip);
	if (i < 0 || (!r->ips[i].ip[0] && (delta < 0 || r->ips_used >= REG_IP_SLOTS - 1)))
		return;  /* full: this address goes uncounted rather than refused */
	if (!r->ips[i].ip[0]) {
		copy_name(r->ips[i].ip, sizeof r->ips[i].ip, ip);
		r->ips[i].count = 0;
		r->ips_used++;
	}
	if ((r->ips[i].count += delta) > 0)
		return;
	/* remove, shifting back later entries of the probe run */
	uint32_t hole = (uint32_t)i, j = hole;
	for (;;) {
		j = (j + 1) & (REG_IP_SLOTS - 1);
		if (!r->ips[j].ip[0])
			break;
		uint32_t home = ip_home(r->ips[j].ip);
		/* j may move into the hole unless its home lies cyclically in (hole, j] */
		if (((j - home) & (REG_IP_SLOTS - 1)) >= ((j - hole) & (REG_IP_SLOTS - 1))) {
			r->ips[hole] = r->ips[j];
			hole = j;
		}
	}
	r->ips[hole].ip[0] = '\0';
	r->ips[hole].count = 0;
	r->ips_used--;
}

int reg_ip_count(reg_area *r, const char *ip)
{
	reg_lock(r);
	int i = ip_slot(r, ip);
	int n = i >= 0 && r->ips[i].ip[0] ? r->ips[i].count : 0;
	reg_unlock(r);
	return n;
}

/* Marks the oldest sessions of a user (not yet being replaced) as being
 * replaced until at most max remain, and returns them (at most out_max). */
int reg_user_evict(reg_area *r, const char *user, int max, int *out, int out_max)
{
	int n = 0, live = 0;
	reg_lock(r);
	for (int i = r->user_head[reg_hash(user)]; i != REG_NONE; i = r->s[i].next_user)
		live += r->s[i].state == REG_LIVE && !strcmp(r->s[i].user, user) && !r->s[i].evicting;
	while (live > max && n < out_max) {
		int oldest = REG_NONE;
		for (int i = r->user_head[reg_hash(user)]; i != REG_NONE; i = r->s[i].next_user)
			if (r->s[i].state == REG_LIVE && !strcmp(r->s[i].user, user) && !r->s[i].evicting &&
			    (oldest == REG_NONE || r->s[i].connected_at_us < r->s[oldest].connected_at_us))
				oldest = i;
		r->s[oldest].evicting = 1;
		out[n++] = oldest;
		live--;
	}
	reg_unlock(r);
	return n;
}

static void unlink_entry(reg_area *r, int index)
{
	reg_session *s = &r->s[index];
	if (s->state == REG_LIVE)
		ip_add(r, s->ip, -1);  /* a parked session gave its address back already */
	else if (s->state == REG_RESUMABLE)
		r->resumable--;
	unlink_room(r, index);
	chain_unlink(r, &r->user_head[reg_hash(s->user)], index, offsetof(reg_session, next_user));
	s->state = REG_FREE;
	s->next_free = r->free_head;
	r->free_head = index;
	r->live--;
}

int reg_add(reg_area *r, int proc, int worker, const reg_info *info)
{
	reg_lock(r);
	int index = r->free_head;
	if (index != REG_NONE)
		r->free_head = r->s[index].next_free;
	else if (r->high_water < r->capacity)
		index = r->high_water++;
	else {
		reg_unlock(r);
		return -1;
	}
	reg_session *s = &r->s[index];
	s->proc = proc;
	s->worker = worker;
	s->ssrc = info->ssrc;
	s->muted = 0;
	s->evicting = 0;
	s->listen_only = (uint8_t)(info->listen_only != 0);
	copy_name(s->id, sizeof s->id, info->id);
	copy_name(s->user, sizeof s->user, info->user);
	copy_name(s->room, sizeof s->room, info->room);
	copy_name(s->dev, sizeof s->dev, info->dev);
	copy_name(s->ip, sizeof s->ip, info->ip);
	atomic_store_explicit(&s->frames_in, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_out, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_dropped, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_lost, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_duplicate, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_out_of_order, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_audio_ms, 0, memory_order_relaxed);
	link_room(r, index);
	s->connected_at_us = info->connected_at_us;
	ip_add(r, s->ip, +1);
	int32_t *uhead = &r->user_head[reg_hash(s->user)];
	s->next_user = *uhead;
	*uhead = index;
	s->state = REG_LIVE;
	r->live++;
	reg_unlock(r);
	return index;
}

void reg_remove(reg_area *r, int index)
{
	reg_lock(r);
	if (r->s[index].state != REG_FREE)
		unlink_entry(r, index);
	reg_unlock(r);
}

void reg_move(reg_area *r, int index, const char *room)
{
	reg_lock(r);
	unlink_room(r, index);
	copy_name(r->s[index].room, sizeof r->s[index].room, room);
	link_room(r, index);
	reg_unlock(r);
}

void reg_set_muted(reg_area *r, int index, int muted)
{
	reg_lock(r);
	r->s[index].muted = (uint8_t)(muted != 0);
	reg_unlock(r);
}

int reg_each_in_room(reg_area *r, const char *room, reg_visit fn, void *arg)
{
	int n = 0;
	reg_lock(r);
	for (int i = r->room_head[reg_hash(room)]; i != REG_NONE; i = r->s[i].next_room)
		if (strcmp(r->s[i].room, room) == 0) {
			fn(&r->s[i], i, arg);
			n++;
		}
	reg_unlock(r);
	return n;
}

int reg_each_of_user(reg_area *r, const char *user, reg_visit fn, void *arg)
{
	int n = 0;
	reg_lock(r);
	for (int i = r->user_head[reg_hash(user)]; i != REG_NONE; i = r->s[i].next_user)
		if (r->s[i].state == REG_LIVE && strcmp(r->s[i].user, user) == 0) {
			fn(&r->s[i], i, arg);
			n++;
		}
	reg_unlock(r);
	return n;
}

static void park_entry(reg_area *r, int index, int64_t until_ms)
{
	reg_session *s = &r->s[index];
	ip_add(r, s->ip, -1);
	s->state = REG_RESUMABLE;
	s->resume_until_ms = until_ms;
	r->resumable++;
}

int reg_each_live(reg_area *r, reg_visit fn, void *arg)
{
	int n = 0;
	reg_lock(r);
	for (int i = 0; i < r->high_water; i++)
		if (r->s[i].state == REG_LIVE) {
			fn(&r->s[i], i, arg);
			n++;
		}
	reg_unlock(r);
	return n;
}

int reg_remove_proc(reg_area *r, int proc, int64_t resume_until_ms, reg_visit fn, void *arg)
{
	int n = 0;
	reg_lock(r);
	for (int i = 0; i < r->high_water; i++)
		if (r->s[i].state == REG_LIVE && r->s[i].proc == proc) {
			if (fn)
				fn(&r->s[i], i, arg);
			if (resume_until_ms > 0)
				park_entry(r, i, resume_until_ms);
			else
				unlink_entry(r, i);
			n++;
		}
	reg_unlock(r);
	return n;
}

void reg_park(reg_area *r, int index, int64_t until_ms)
{
	reg_lock(r);
	if (r->s[index].state == REG_LIVE)
		park_entry(r, index, until_ms);
	reg_unlock(r);
}

int reg_resume(reg_area *r, int index, const char *id, const char *user, int proc, int worker,
               const char *ip, int64_t connected_at_us)
{
	int rc = -1;
	if (index < 0 || index >= r->capacity)
		return -1;
	reg_lock(r);
	reg_session *s = &r->s[index];
	if (s->state == REG_RESUMABLE && !strcmp(s->id, id) && !strcmp(s->user, user)) {
		s->state = REG_LIVE;
		r->resumable--;
		s->proc = proc;
		s->worker = worker;
		s->evicting = 0;
		s->connected_at_us = connected_at_us;
		copy_name(s->ip, sizeof s->ip, ip);
		ip_add(r, s->ip, +1);
		rc = 0;
	}
	reg_unlock(r);
	return rc;
}

/* Called every housekeeping tick: without parked sessions it returns at
 * once, neither taking the lock the workers' handshakes need nor touching
 * every entry's page (which would count the whole registry in the caller's
 * RSS). The unlocked read may miss a session parked just now: the next tick
 * sees it. */
int reg_expire(reg_area *r, int64_t now_ms, reg_visit fn, void *arg)
{
	int n = 0;
	if (!atomic_load_explicit(&r->resumable, memory_order_relaxed))
		return 0;
	reg_lock(r);
	for (int i = 0; i < r->high_water; i++)
		if (r->s[i].state == REG_RESUMABLE && r->s[i].resume_until_ms <= now_ms) {
			if (fn)
				fn(&r->s[i], i, arg);
			unlink_entry(r, i);
			n++;
		}
	reg_unlock(r);
	return n;
}

/* -- bans: open addressing; a slot once used keeps its user until reused -- */

int reg_ban_user(reg_area *r, const char *user, int64_t until_us, int64_t now_us)
{
	int rc = -1;
	reg_lock(r);
	uint32_t i = reg_hash(user) & (REG_BAN_SLOTS - 1);
	for (int n = 0; n < REG_BAN_SLOTS; n++, i = (i + 1) & (REG_BAN_SLOTS - 1)) {
		reg_ban *b = &r->bans[i];
		if (b->until_us && strcmp(b->user, user) && b->until_us > now_us)
			continue;  /* another user's live ban */
		copy_name(b->user, sizeof b->user, user);
		b->until_us = until_us;
		rc = 0;
		break;
	}
	reg_unlock(r);
	return rc;
}

int reg_is_banned(reg_area *r, const char *user, int64_t now_us)
{
	int banned = 0;
	reg_lock(r);
	uint32_t i = reg_hash(user) & (REG_BAN_SLOTS - 1);
	for (int n = 0; n < REG_BAN_SLOTS && r->bans[i].until_us; n++, i = (i + 1) & (REG_BAN_SLOTS - 1))
		if (!strcmp(r->bans[i].user, user)) {
			banned = r->bans[i].until_us > now_us;
			break;
		}
	reg_unlock(r);
	return banned;
}
