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

static void unlink_entry(reg_area *r, int index)
{
	reg_session *s = &r->s[index];
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
	s->listen_only = (uint8_t)(info->listen_only != 0);
	s->connected_at_us = 0;
	copy_name(s->id, sizeof s->id, info->id);
	copy_name(s->user, sizeof s->user, info->user);
	copy_name(s->room, sizeof s->room, info->room);
	copy_name(s->dev, sizeof s->dev, info->dev);
	copy_name(s->ip, sizeof s->ip, info->ip);
	atomic_store_explicit(&s->frames_in, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_out, 0, memory_order_relaxed);
	atomic_store_explicit(&s->frames_dropped, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_audio_ms, 0, memory_order_relaxed);
	link_room(r, index);
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
	if (r->s[index].state == REG_LIVE)
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
		if (strcmp(r->s[i].user, user) == 0) {
			fn(&r->s[i], i, arg);
			n++;
		}
	reg_unlock(r);
	return n;
}

int reg_remove_proc(reg_area *r, int proc, reg_visit fn, void *arg)
{
	int n = 0;
	reg_lock(r);
	for (int i = 0; i < r->high_water; i++)
		if (r->s[i].state == REG_LIVE && r->s[i].proc == proc) {
			if (fn)
				fn(&r->s[i], i, arg);
			unlink_entry(r, i);
			n++;
		}
	reg_unlock(r);
	return n;
}
