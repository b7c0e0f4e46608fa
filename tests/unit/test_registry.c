/* test_registry.c: unit tests for common/registry.c, the host-wide session
 * registry in the shared area: entries and their reuse, the room and user
 * chains, connections per address (open addressing with backward-shift
 * deletion), max_conns_per_user eviction and the cleanup after a worker
 * crash. */
#include "common/registry.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static reg_area *new_reg(int cap)
{
	reg_area *r = calloc(1, reg_bytes(cap));
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(reg_init(r, cap), 0);
	return r;
}

static void free_reg(reg_area *r)
{
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int add(reg_area *r, int proc, const char *id, const char *user, const char *room,
               const char *ip, int64_t at_us)
{
	reg_info info = { id, user, room, "dev", ip, 1000, 0, at_us };
	return reg_add(r, proc, proc, &info);
}

/* The same hash as registry.c (FNV-1a, REG_BUCKETS buckets), to build
 * names that share a bucket. */
static uint32_t fnv(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (REG_BUCKETS - 1);
}

/* Two different names "<prefix>N" in the same bucket. */
static void colliding_names(const char *prefix, char a[64], char b[64])
{
	static uint32_t seen[REG_BUCKETS];   /* bucket -> 1 + N */
	memset(seen, 0, sizeof seen);
	for (uint32_t n = 0;; n++) {
		char name[64];
		snprintf(name, sizeof name, "%s%u", prefix, n);
		uint32_t h = fnv(name);
		if (seen[h]) {
			snprintf(a, 64, "%s%u", prefix, seen[h] - 1);
			snprintf(b, 64, "%s", name);
			return;
		}
		seen[h] = n + 1;
	}
}

/* Collects what a reg_visit callback saw. */
typedef struct seen_set {
	int n;
	int idx[8192];
	int proc[8192];
	int muted[8192];
	char room[8][REG_NAME_MAX + 1];
} seen_set;

static void collect(const reg_session *s, int index, void *arg)
{
	seen_set *v = arg;
	ck_assert_int_eq(s->state, REG_LIVE);
	ck_assert_int_lt(v->n, 8192);
	if (v->n < 8)
		snprintf(v->room[v->n], sizeof v->room[0], "%s", s->room);
	v->idx[v->n] = index;
	v->proc[v->n] = s->proc;
	v->muted[v->n] = s->muted;
	v->n++;
}

static int has(const seen_set *v, int index)
{
	for (int i = 0; i < v->n; i++)
		if (v->idx[i] == index)
			return 1;
	return 0;
}

static seen_set *in_room(reg_area *r, const char *room)
{
	static seen_set v;
	memset(&v, 0, sizeof v);
	ck_assert_int_eq(reg_each_in_room(r, room, collect, &v), v.n);
	return &v;
}

static seen_set *of_user(reg_area *r, const char *user)
{
	static seen_set v;
	memset(&v, 0, sizeof v);
	ck_assert_int_eq(reg_each_of_user(r, user, collect, &v), v.n);
	return &v;
}

/* ---- entries ------------------------------------------------------------ */

START_TEST(test_add_fields)
{
	reg_area *r = new_reg(4);
	ck_assert_int_eq(r->live, 0);
	reg_info info = { "sess-1", "alice", "lobby", "phone", "10.0.0.1", 0xdeadbeefu, 1,
	                  1700000000123456 };
	int i = reg_add(r, 3, 7, &info);
	ck_assert_int_ge(i, 0);
	const reg_session *s = &r->s[i];
	ck_assert_int_eq(s->state, REG_LIVE);
	ck_assert_int_eq(s->proc, 3);
	ck_assert_int_eq(s->worker, 7);
	ck_assert_uint_eq(s->ssrc, 0xdeadbeefu);
	ck_assert_uint_eq(s->listen_only, 1);
	ck_assert_uint_eq(s->muted, 0);
	ck_assert_uint_eq(s->evicting, 0);
	ck_assert_int_eq(s->connected_at_us, 1700000000123456);
	ck_assert_str_eq(s->id, "sess-1");
	ck_assert_str_eq(s->user, "alice");
	ck_assert_str_eq(s->room, "lobby");
	ck_assert_str_eq(s->dev, "phone");
	ck_assert_str_eq(s->ip, "10.0.0.1");
	ck_assert_uint_eq(atomic_load(&s->frames_in), 0);
	ck_assert_int_eq(r->live, 1);
	/* NULL dev, listen_only any nonzero value, names of the maximum length
	 * and longer (cut to REG_NAME_MAX) */
	char longname[300];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	reg_info info2 = { "sess-2", longname, longname, NULL, "::1", 5, 42, 1 };
	int j = reg_add(r, 0, 0, &info2);
	ck_assert_int_ge(j, 0);
	ck_assert_int_ne(j, i);
	ck_assert_str_eq(r->s[j].dev, "");
	ck_assert_uint_eq(r->s[j].listen_only, 1);
	ck_assert_uint_eq(strlen(r->s[j].user), REG_NAME_MAX);
	ck_assert_uint_eq(strlen(r->s[j].room), REG_NAME_MAX);
	longname[REG_NAME_MAX] = '\0';
	ck_assert_int_eq(in_room(r, longname)->n, 1);
	ck_assert_int_eq(of_user(r, longname)->n, 1);
	free_reg(r);
}
END_TEST

START_TEST(test_remove_and_reuse)
{
	reg_area *r = new_reg(4);
	int idx[4];
	for (int k = 0; k < 4; k++) {
		char id[16];
		snprintf(id, sizeof id, "s%d", k);
		idx[k] = add(r, 0, id, "u", "room", "1.1.1.1", k);
		ck_assert_int_ge(idx[k], 0);
		ck_assert_int_lt(idx[k], 4);
		for (int m = 0; m < k; m++)
			ck_assert_int_ne(idx[k], idx[m]);
	}
	ck_assert_int_eq(r->live, 4);
	/* full */
	ck_assert_int_eq(add(r, 0, "s4", "u", "room", "1.1.1.1", 4), -1);
	ck_assert_int_eq(add(r, 1, "s5", "v", "other", "2.2.2.2", 5), -1);
	ck_assert_int_eq(r->live, 4);
	ck_assert_int_eq(reg_ip_count(r, "2.2.2.2"), 0);   /* a refused add leaves no trace */
	ck_assert_int_eq(in_room(r, "other")->n, 0);

	/* a removed entry's index is reused, with fresh state */
	reg_set_muted(r, idx[2], 1);
	r->s[idx[2]].evicting = 1;
	atomic_store(&r->s[idx[2]].frames_in, 99);
	reg_remove(r, idx[2]);
	ck_assert_int_eq(r->s[idx[2]].state, REG_FREE);
	ck_assert_int_eq(r->live, 3);
	reg_remove(r, idx[2]);                             /* twice: no effect */
	ck_assert_int_eq(r->live, 3);
	ck_assert_int_eq(in_room(r, "room")->n, 3);
	ck_assert_int_eq(of_user(r, "u")->n, 3);
	ck_assert_int_eq(reg_ip_count(r, "1.1.1.1"), 3);
	int again = add(r, 2, "s6", "w", "hall", "3.3.3.3", 6);
	ck_assert_int_eq(again, idx[2]);
	ck_assert_str_eq(r->s[again].id, "s6");
	ck_assert_uint_eq(r->s[again].muted, 0);
	ck_assert_uint_eq(r->s[again].evicting, 0);
	ck_assert_uint_eq(atomic_load(&r->s[again].frames_in), 0);
	ck_assert_int_eq(in_room(r, "room")->n, 3);
	ck_assert_int_eq(in_room(r, "hall")->n, 1);
	ck_assert_int_eq(add(r, 0, "s7", "u", "room", "1.1.1.1", 7), -1);

	/* free everything, then fill again: exactly capacity entries, all indexes */
	for (int k = 0; k < 4; k++)
		reg_remove(r, idx[k]);
	ck_assert_int_eq(r->live, 0);
	ck_assert_int_eq(in_room(r, "room")->n, 0);
	ck_assert_int_eq(in_room(r, "hall")->n, 0);
	int used[4] = { 0 };
	for (int k = 0; k < 4; k++) {
		int i = add(r, 0, "x", "u", "room", "1.1.1.1", k);
		ck_assert_int_ge(i, 0);
		ck_assert_int_lt(i, 4);
		ck_assert_int_eq(used[i], 0);
		used[i] = 1;
	}
	ck_assert_int_eq(add(r, 0, "x", "u", "room", "1.1.1.1", 9), -1);
	ck_assert_int_eq(reg_ip_count(r, "1.1.1.1"), 4);
	free_reg(r);
}
END_TEST

START_TEST(test_capacity_edge)
{
	reg_area *r = new_reg(0);
	ck_assert_int_eq(add(r, 0, "a", "u", "r", "1.2.3.4", 0), -1);
	ck_assert_int_eq(reg_ip_count(r, "1.2.3.4"), 0);
	free_reg(r);
	r = new_reg(1);
	int i = add(r, 0, "a", "u", "r", "1.2.3.4", 0);
	ck_assert_int_eq(i, 0);
	ck_assert_int_eq(add(r, 0, "b", "u", "r", "1.2.3.4", 0), -1);
	for (int k = 0; k < 1000; k++) {          /* churn through the one entry */
		reg_remove(r, 0);
		ck_assert_int_eq(add(r, 0, "c", "u", "r", "1.2.3.4", k), 0);
		ck_assert_int_eq(add(r, 0, "d", "u", "r", "1.2.3.4", k), -1);
	}
	ck_assert_int_eq(reg_ip_count(r, "1.2.3.4"), 1);
	ck_assert_int_eq(r->live, 1);
	free_reg(r);
}
END_TEST

START_TEST(test_shared_mapping)
{
	/* as in the daemon: an anonymous shared mapping */
	int cap = 64;
	size_t len = reg_bytes(cap);
	reg_area *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(r, MAP_FAILED);
	ck_assert_int_eq(reg_init(r, cap), 0);
	int i = add(r, 1, "a", "u", "r", "9.9.9.9", 0);
	ck_assert_int_ge(i, 0);
	/* a child process registers through the same mapping */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int j = add(r, 2, "b", "v", "r", "9.9.9.9", 1);
		_exit(j >= 0 ? 0 : 1);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(in_room(r, "r")->n, 2);
	ck_assert_int_eq(reg_ip_count(r, "9.9.9.9"), 2);
	/* a process that dies holding the lock: the next locker recovers */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		reg_lock(r);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_int_ge(add(r, 3, "c", "w", "r", "9.9.9.9", 2), 0);
	ck_assert_int_eq(in_room(r, "r")->n, 3);
	ck_assert_int_eq(r->live, 3);
	munmap(r, len);
}
END_TEST

/* ---- rooms and users ---------------------------------------------------- */

START_TEST(test_rooms_basic)
{
	reg_area *r = new_reg(16);
	int a1 = add(r, 0, "1", "u1", "a", "1.0.0.1", 1);
	int ab = add(r, 0, "2", "u2", "ab", "1.0.0.2", 2);
	int a2 = add(r, 1, "3", "u3", "a", "1.0.0.3", 3);
	int b1 = add(r, 1, "4", "u4", "b", "1.0.0.4", 4);
	seen_set *v = in_room(r, "a");
	ck_assert_int_eq(v->n, 2);
	ck_assert(has(v, a1) && has(v, a2));
	v = in_room(r, "ab");
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, ab));
	v = in_room(r, "b");
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, b1));
	ck_assert_int_eq(in_room(r, "")->n, 0);
	ck_assert_int_eq(in_room(r, "A")->n, 0);
	ck_assert_int_eq(in_room(r, "nobody")->n, 0);
	/* removing the head, the middle and the tail of a chain */
	reg_remove(r, a2);
	v = in_room(r, "a");
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, a1));
	reg_remove(r, a1);
	ck_assert_int_eq(in_room(r, "a")->n, 0);
	ck_assert_int_eq(in_room(r, "ab")->n, 1);
	free_reg(r);
}
END_TEST

START_TEST(test_rooms_same_bucket)
{
	char x[64], y[64];
	colliding_names("room-", x, y);
	ck_assert_str_ne(x, y);
	ck_assert_uint_eq(fnv(x), fnv(y));
	reg_area *r = new_reg(32);
	int ix[5], iy[5];
	for (int k = 0; k < 5; k++) {     /* interleaved in the shared chain */
		ix[k] = add(r, 0, "s", "u", x, "1.1.1.1", k);
		iy[k] = add(r, 0, "s", "u", y, "1.1.1.1", k);
	}
	seen_set *v = in_room(r, x);
	ck_assert_int_eq(v->n, 5);
	for (int k = 0; k < 5; k++) {
		ck_assert(has(v, ix[k]));
		ck_assert(!has(v, iy[k]));
	}
	v = in_room(r, y);
	ck_assert_int_eq(v->n, 5);
	for (int k = 0; k < 5; k++)
		ck_assert(has(v, iy[k]));
	/* unlinking from a shared chain keeps the other room's entries */
	for (int k = 0; k < 5; k += 2)
		reg_remove(r, ix[k]);
	v = in_room(r, x);
	ck_assert_int_eq(v->n, 2);
	ck_assert(has(v, ix[1]) && has(v, ix[3]));
	ck_assert_int_eq(in_room(r, y)->n, 5);
	for (int k = 0; k < 5; k++)
		reg_remove(r, iy[k]);
	ck_assert_int_eq(in_room(r, y)->n, 0);
	ck_assert_int_eq(in_room(r, x)->n, 2);
	free_reg(r);
}
END_TEST

START_TEST(test_rooms_many)
{
	enum { ROOMS = 700, PER = 3 };
	reg_area *r = new_reg(ROOMS * PER);
	static int idx[ROOMS][PER];
	char room[32];
	for (int k = 0; k < PER; k++)
		for (int n = 0; n < ROOMS; n++) {
			snprintf(room, sizeof room, "r%d", n);
			idx[n][k] = add(r, n % 4, "s", "u", room, "1.1.1.1", k);
			ck_assert_int_ge(idx[n][k], 0);
		}
	ck_assert_int_eq(add(r, 0, "s", "u", "extra", "1.1.1.1", 0), -1);
	for (int n = 0; n < ROOMS; n++) {
		snprintf(room, sizeof room, "r%d", n);
		seen_set *v = in_room(r, room);
		ck_assert_int_eq(v->n, PER);
		for (int k = 0; k < PER; k++)
			ck_assert(has(v, idx[n][k]));
	}
	/* drop the middle one of every room */
	for (int n = 0; n < ROOMS; n++)
		reg_remove(r, idx[n][1]);
	for (int n = 0; n < ROOMS; n++) {
		snprintf(room, sizeof room, "r%d", n);
		seen_set *v = in_room(r, room);
		ck_assert_int_eq(v->n, PER - 1);
		ck_assert(has(v, idx[n][0]) && has(v, idx[n][2]));
	}
	free_reg(r);
}
END_TEST

START_TEST(test_move)
{
	char x[64], y[64];
	colliding_names("hall-", x, y);
	reg_area *r = new_reg(8);
	int a = add(r, 0, "a", "ua", "one", "1.1.1.1", 1);
	int b = add(r, 0, "b", "ub", "one", "1.1.1.2", 2);
	int c = add(r, 0, "c", "uc", "two", "1.1.1.3", 3);
	reg_move(r, a, "two");
	ck_assert_str_eq(r->s[a].room, "two");
	seen_set *v = in_room(r, "one");
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, b));
	v = in_room(r, "two");
	ck_assert_int_eq(v->n, 2);
	ck_assert(has(v, a) && has(v, c));
	/* the move touched only the room */
	ck_assert_str_eq(r->s[a].user, "ua");
	ck_assert_int_eq(of_user(r, "ua")->n, 1);
	ck_assert_int_eq(reg_ip_count(r, "1.1.1.1"), 1);
	/* to the same room: still listed once */
	reg_move(r, a, "two");
	ck_assert_int_eq(in_room(r, "two")->n, 2);
	/* between two rooms of one bucket */
	reg_move(r, a, x);
	reg_move(r, b, y);
	ck_assert_int_eq(in_room(r, "one")->n, 0);
	ck_assert_int_eq(in_room(r, "two")->n, 1);
	v = in_room(r, x);
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, a));
	reg_move(r, a, y);
	ck_assert_int_eq(in_room(r, x)->n, 0);
	v = in_room(r, y);
	ck_assert_int_eq(v->n, 2);
	ck_assert(has(v, a) && has(v, b));
	/* a moved entry is removed from its new room */
	reg_remove(r, a);
	v = in_room(r, y);
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, b));
	/* and its index, reused, joins only the room it is added to */
	int d = add(r, 0, "d", "ud", "one", "1.1.1.4", 4);
	ck_assert_int_eq(in_room(r, "one")->n, 1);
	ck_assert_int_eq(in_room(r, y)->n, 1);
	ck_assert(has(in_room(r, "one"), d));
	free_reg(r);
}
END_TEST

START_TEST(test_muted)
{
	reg_area *r = new_reg(4);
	int a = add(r, 0, "a", "ua", "room", "1.1.1.1", 1);
	int b = add(r, 0, "b", "ub", "room", "1.1.1.1", 2);
	reg_set_muted(r, a, 1);
	ck_assert_uint_eq(r->s[a].muted, 1);
	ck_assert_uint_eq(r->s[b].muted, 0);
	seen_set *v = in_room(r, "room");
	for (int i = 0; i < v->n; i++)
		ck_assert_int_eq(v->muted[i], v->idx[i] == a);
	reg_set_muted(r, b, 7);                  /* any nonzero value is 1 */
	ck_assert_uint_eq(r->s[b].muted, 1);
	reg_set_muted(r, a, 0);
	ck_assert_uint_eq(r->s[a].muted, 0);
	ck_assert_uint_eq(r->s[b].muted, 1);
	free_reg(r);
}
END_TEST

START_TEST(test_each_of_user)
{
	char x[64], y[64];
	colliding_names("user-", x, y);
	reg_area *r = new_reg(16);
	int xa = add(r, 0, "1", x, "r1", "1.1.1.1", 1);
	int ya = add(r, 1, "2", y, "r1", "1.1.1.1", 2);
	int xb = add(r, 2, "3", x, "r2", "1.1.1.1", 3);
	int z = add(r, 0, "4", "zed", "r1", "1.1.1.1", 4);
	seen_set *v = of_user(r, x);
	ck_assert_int_eq(v->n, 2);
	ck_assert(has(v, xa) && has(v, xb));
	v = of_user(r, y);
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, ya));
	v = of_user(r, "zed");
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, z));
	ck_assert_int_eq(of_user(r, "nobody")->n, 0);
	reg_move(r, xa, "r9");                   /* moving does not change the user chain */
	ck_assert_int_eq(of_user(r, x)->n, 2);
	reg_remove(r, xb);
	v = of_user(r, x);
	ck_assert_int_eq(v->n, 1);
	ck_assert(has(v, xa));
	ck_assert_int_eq(of_user(r, y)->n, 1);
	free_reg(r);
}
END_TEST

/* ---- connections per address -------------------------------------------- */

START_TEST(test_ip_count_basic)
{
	reg_area *r = new_reg(16);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), 0);
	int s[5];
	for (int k = 0; k < 5; k++) {
		s[k] = add(r, 0, "s", "u", "room", "10.0.0.1", k);
		ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), k + 1);
	}
	int o = add(r, 0, "s", "u", "room", "10.0.0.2", 9);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.2"), 1);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), 5);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.10"), 0);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0."), 0);
	ck_assert_int_eq(r->ips_used, 2);
	for (int k = 0; k < 5; k++) {
		reg_remove(r, s[k]);
		ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), 4 - k);
	}
	ck_assert_int_eq(r->ips_used, 1);
	reg_remove(r, o);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.2"), 0);
	ck_assert_int_eq(r->ips_used, 0);
	/* back from 0 */
	add(r, 0, "s", "u", "room", "10.0.0.1", 0);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), 1);
	ck_assert_int_eq(r->ips_used, 1);
	free_reg(r);
}
END_TEST

START_TEST(test_ip_empty_address)
{
	/* a peer address that could not be read ("") is not counted and leaves
	 * nothing behind in the table */
	reg_area *r = new_reg(4);
	for (int k = 0; k < 1000; k++) {
		int i = add(r, 0, "s", "u", "room", "", k);
		ck_assert_int_ge(i, 0);
		int j = add(r, 0, "s", "u", "room", NULL, k);
		ck_assert_int_ge(j, 0);
		reg_remove(r, i);
		reg_remove(r, j);
	}
	ck_assert_int_eq(r->ips_used, 0);
	ck_assert_int_eq(reg_ip_count(r, ""), 0);
	/* so that a table's worth of them does not stop the counting of real
	 * addresses (max_conns_per_ip) */
	for (int k = 0; k < REG_IP_SLOTS; k++) {
		int j = add(r, 0, "s", "u", "room", "", k);
		reg_remove(r, j);
	}
	int i = add(r, 0, "s", "u", "room", "7.7.7.7", 0);
	ck_assert_int_eq(reg_ip_count(r, "7.7.7.7"), 1);
	ck_assert_int_eq(r->ips_used, 1);
	reg_remove(r, i);
	ck_assert_int_eq(r->ips_used, 0);
	free_reg(r);
}
END_TEST

static void ip_name(char *out, size_t len, int n)
{
	snprintf(out, len, "10.%d.%d.%d", (n >> 16) & 255, (n >> 8) & 255, n & 255);
}

START_TEST(test_ip_count_many)
{
	enum { IPS = 5000 };
	/* every address once, every third address a second time */
	reg_area *r = new_reg(IPS + IPS / 3 + 1);
	static int first[IPS], second[IPS];
	char ip[REG_IP_LEN];
	for (int n = 0; n < IPS; n++) {
		ip_name(ip, sizeof ip, n);
		first[n] = add(r, n % 3, "s", "u", "room", ip, n);
		ck_assert_int_ge(first[n], 0);
		second[n] = -1;
		if (n % 3 == 0) {
			second[n] = add(r, 1, "t", "u", "room", ip, n);
			ck_assert_int_ge(second[n], 0);
		}
	}
	ck_assert_int_eq(r->ips_used, IPS);
	/* the addresses do share probe runs: some are away from home */
	int displaced = 0;
	for (int i = 0; i < REG_IP_SLOTS; i++)
		if (r->ips[i].ip[0] && (uint32_t)i != (fnv(r->ips[i].ip) & (REG_IP_SLOTS - 1)))
			displaced++;
	ck_assert_int_gt(displaced, 10);
	for (int n = 0; n < IPS; n++) {
		ip_name(ip, sizeof ip, n);
		ck_assert_int_eq(reg_ip_count(r, ip), n % 3 == 0 ? 2 : 1);
	}
	/* remove every other address entirely */
	for (int n = 0; n < IPS; n += 2) {
		reg_remove(r, first[n]);
		if (second[n] >= 0)
			reg_remove(r, second[n]);
	}
	ck_assert_int_eq(r->ips_used, IPS / 2);
	for (int n = 0; n < IPS; n++) {
		ip_name(ip, sizeof ip, n);
		int want = n % 2 == 0 ? 0 : n % 3 == 0 ? 2 : 1;
		ck_assert_int_eq(reg_ip_count(r, ip), want);
	}
	/* every entry still reachable from its home without crossing a hole */
	for (int i = 0; i < REG_IP_SLOTS; i++) {
		if (!r->ips[i].ip[0])
			continue;
		ck_assert_int_gt(r->ips[i].count, 0);
		uint32_t j = fnv(r->ips[i].ip) & (REG_IP_SLOTS - 1);
		for (; j != (uint32_t)i; j = (j + 1) & (REG_IP_SLOTS - 1))
			ck_assert(r->ips[j].ip[0]);
	}
	/* add the removed ones back, then remove the rest one session at a time */
	for (int n = 0; n < IPS; n += 2) {
		ip_name(ip, sizeof ip, n);
		first[n] = add(r, 0, "s", "u", "room", ip, n);
		ck_assert_int_ge(first[n], 0);
		second[n] = -1;
	}
	for (int n = 0; n < IPS; n++) {
		ip_name(ip, sizeof ip, n);
		ck_assert_int_eq(reg_ip_count(r, ip), n % 2 == 0 ? 1 : n % 3 == 0 ? 2 : 1);
	}
	for (int n = IPS - 1; n >= 0; n--) {
		ip_name(ip, sizeof ip, n);
		reg_remove(r, first[n]);
		ck_assert_int_eq(reg_ip_count(r, ip), second[n] >= 0 ? 1 : 0);
		if (second[n] >= 0)
			reg_remove(r, second[n]);
		ck_assert_int_eq(reg_ip_count(r, ip), 0);
	}
	ck_assert_int_eq(r->ips_used, 0);
	for (int i = 0; i < REG_IP_SLOTS; i++)
		ck_assert(!r->ips[i].ip[0]);
	ck_assert_int_eq(r->live, 0);
	free_reg(r);
}
END_TEST

static void ip192(char *out, uint32_t n)
{
	snprintf(out, REG_IP_LEN, "192.%u.%u.%u", (n >> 16) & 255, (n >> 8) & 255, n & 255);
}

/* The first address "192.x.y.z" whose home slot is home. */
static void ip_homed_at(char *out, uint32_t home)
{
	for (uint32_t n = 1; n < (1u << 24); n++) {
		ip192(out, n);
		if (fnv(out) == home)
			return;
	}
	ck_abort_msg("no address for slot %u", home);
}

START_TEST(test_ip_same_home)
{
	/* K addresses with the same home slot h form one probe run; two more,
	 * homed at h + 1 and h + 3, are displaced behind it. Deleting in any
	 * order must keep every remaining one reachable, and must not shift
	 * the neighbours before their homes. */
	enum { K = 6, ALL = K + 2 };
	char ips[ALL][REG_IP_LEN];
	static uint8_t load[REG_BUCKETS];
	memset(load, 0, sizeof load);
	uint32_t h = 0;
	for (uint32_t n = 1;; n++) {
		char ip[REG_IP_LEN];
		ip192(ip, n);
		uint32_t b = fnv(ip);
		if (++load[b] == K && b + 3 < REG_BUCKETS) {
			h = b;
			break;
		}
		ck_assert_uint_lt(n, 1u << 24);
	}
	int found = 0;
	for (uint32_t n = 1; found < K; n++) {
		ip192(ips[found], n);
		if (fnv(ips[found]) == h)
			found++;
	}
	ip_homed_at(ips[K], h + 1);
	ip_homed_at(ips[K + 1], h + 3);
	static const int orders[][ALL] = {
		{ 0, 1, 2, 3, 4, 5, 6, 7 }, { 7, 6, 5, 4, 3, 2, 1, 0 }, { 2, 4, 0, 5, 1, 3, 6, 7 },
		{ 6, 0, 7, 1, 2, 3, 4, 5 }, { 0, 6, 1, 2, 7, 3, 5, 4 },
	};
	for (size_t o = 0; o < sizeof orders / sizeof *orders; o++) {
		reg_area *r = new_reg(ALL);
		int idx[ALL];
		for (int k = 0; k < ALL; k++)
			idx[k] = add(r, 0, "s", "u", "room", ips[k], k);
		for (int k = 0; k < ALL; k++)
			ck_assert_int_eq(reg_ip_count(r, ips[k]), 1);
		ck_assert_int_eq(r->ips_used, ALL);
		for (int d = 0; d < ALL; d++) {
			int k = orders[o][d];
			reg_remove(r, idx[k]);
			ck_assert_int_eq(reg_ip_count(r, ips[k]), 0);
			for (int e = d + 1; e < ALL; e++)
				ck_assert_int_eq(reg_ip_count(r, ips[orders[o][e]]), 1);
			/* nothing sits before its home within the run */
			for (uint32_t i = h; i < h + ALL; i++)
				if (r->ips[i].ip[0])
					ck_assert_uint_le(fnv(r->ips[i].ip), i);
		}
		ck_assert_int_eq(r->ips_used, 0);
		free_reg(r);
	}
}
END_TEST

/* ---- max_conns_per_user ------------------------------------------------- */

START_TEST(test_user_evict)
{
	char x[64], y[64];
	colliding_names("evict-", x, y);
	reg_area *r = new_reg(16);
	/* the user's sessions, not in index order of age; another user in the
	 * same bucket with older sessions must not be touched */
	int other1 = add(r, 0, "o1", y, "r", "1.1.1.1", 1);
	int s300 = add(r, 0, "a", x, "r", "1.1.1.1", 300);
	int s100 = add(r, 1, "b", x, "r", "1.1.1.1", 100);
	int other2 = add(r, 0, "o2", y, "r", "1.1.1.1", 2);
	int s200 = add(r, 0, "c", x, "r", "1.1.1.1", 200);
	int out[8];
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 0);     /* 3 <= max */
	int s400 = add(r, 2, "d", x, "r", "1.1.1.1", 400);      /* the 4th */
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 1);
	ck_assert_int_eq(out[0], s100);
	ck_assert_uint_eq(r->s[s100].evicting, 1);
	ck_assert_uint_eq(r->s[s200].evicting, 0);
	ck_assert_uint_eq(r->s[s300].evicting, 0);
	ck_assert_uint_eq(r->s[s400].evicting, 0);
	ck_assert_uint_eq(r->s[other1].evicting, 0);
	ck_assert_uint_eq(r->s[other2].evicting, 0);
	/* again (another worker, or the same one): nothing more */
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 0);
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 0);
	/* the evicted one is still listed until its owner closes it */
	ck_assert_int_eq(of_user(r, x)->n, 4);
	/* a 5th before the first one is gone: the next oldest */
	int s500 = add(r, 0, "e", x, "r", "1.1.1.1", 500);
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 1);
	ck_assert_int_eq(out[0], s200);
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 0);
	/* owners close them; a new session takes a reused index, fresh */
	reg_remove(r, s100);
	reg_remove(r, s200);
	int s600 = add(r, 0, "f", x, "r", "1.1.1.1", 600);
	ck_assert(s600 == s100 || s600 == s200);
	ck_assert_uint_eq(r->s[s600].evicting, 0);
	ck_assert_int_eq(reg_user_evict(r, x, 3, out, 8), 1);
	ck_assert_int_eq(out[0], s300);
	/* the other user */
	ck_assert_int_eq(reg_user_evict(r, y, 3, out, 8), 0);
	ck_assert_int_eq(reg_user_evict(r, y, 1, out, 8), 1);
	ck_assert_int_eq(out[0], other1);
	ck_assert_int_eq(reg_user_evict(r, "nobody", 0, out, 8), 0);
	(void)s400;
	(void)s500;
	free_reg(r);
}
END_TEST

START_TEST(test_user_evict_many)
{
	reg_area *r = new_reg(16);
	int idx[10];
	for (int k = 0; k < 10; k++)            /* ages 10, 9, ..., 1 */
		idx[k] = add(r, 0, "s", "u", "r", "1.1.1.1", 10 - k);
	int out[4];
	/* out_max bounds each call; later calls continue with the next oldest */
	ck_assert_int_eq(reg_user_evict(r, "u", 3, out, 4), 4);
	for (int k = 0; k < 4; k++)
		ck_assert_int_eq(out[k], idx[9 - k]);
	ck_assert_int_eq(reg_user_evict(r, "u", 3, out, 4), 3);
	for (int k = 0; k < 3; k++)
		ck_assert_int_eq(out[k], idx[5 - k]);
	ck_assert_int_eq(reg_user_evict(r, "u", 3, out, 4), 0);
	int evicting = 0;
	for (int k = 0; k < 10; k++)
		evicting += r->s[idx[k]].evicting;
	ck_assert_int_eq(evicting, 7);
	for (int k = 0; k < 3; k++)
		ck_assert_uint_eq(r->s[idx[k]].evicting, 0);   /* the newest three stay */
	/* max 0: all the rest */
	ck_assert_int_eq(reg_user_evict(r, "u", 0, out, 4), 3);
	ck_assert_int_eq(reg_user_evict(r, "u", 0, out, 4), 0);
	free_reg(r);
}
END_TEST

/* ---- worker crash ------------------------------------------------------- */

/* Parked sessions are counted: reg_expire looks at entries only while
 * there are some, and resuming, expiring and removing give the count back. */
START_TEST(test_park_resume_expire)
{
	reg_area *r = new_reg(16);
	for (int k = 0; k < 6; k++)
		ck_assert_int_eq(add(r, 0, k % 2 ? "odd" : "even", "u", "room", "10.0.0.1", k), k);
	ck_assert_int_eq(reg_expire(r, 1000000, NULL, NULL), 0);
	for (int k = 0; k < 4; k++)
		reg_park(r, k, 100 + k);
	reg_park(r, 0, 500);                      /* already parked: no change */
	ck_assert_int_eq(r->resumable, 4);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.1"), 2);
	ck_assert_int_eq(reg_resume(r, 1, "odd", "u", 1, 1, "10.0.0.2", 7), 0);
	ck_assert_int_eq(reg_resume(r, 1, "odd", "u", 1, 1, "10.0.0.2", 7), -1);  /* live again */
	ck_assert_int_eq(reg_resume(r, 2, "odd", "u", 1, 1, "10.0.0.2", 7), -1);  /* wrong id */
	ck_assert_int_eq(r->resumable, 3);
	reg_remove(r, 3);                         /* a parked entry removed directly */
	ck_assert_int_eq(r->resumable, 2);
	ck_assert_int_eq(reg_expire(r, 99, NULL, NULL), 0);   /* none due yet */
	ck_assert_int_eq(reg_expire(r, 102, NULL, NULL), 2);  /* entries 0 and 2 */
	ck_assert_int_eq(r->resumable, 0);
	ck_assert_int_eq(r->s[0].state, REG_FREE);
	ck_assert_int_eq(r->s[1].state, REG_LIVE);
	ck_assert_int_eq(r->s[2].state, REG_FREE);
	ck_assert_int_eq(reg_ip_count(r, "10.0.0.2"), 1);
	ck_assert_int_eq(r->live, 3);
	free_reg(r);
}
END_TEST

START_TEST(test_remove_proc)
{
	reg_area *r = new_reg(64);
	int procs[40];
	char ip[REG_IP_LEN], room[16];
	for (int k = 0; k < 40; k++) {
		procs[k] = k % 3;
		ip_name(ip, sizeof ip, k % 5);
		snprintf(room, sizeof room, "room%d", k % 4);
		ck_assert_int_eq(add(r, procs[k], "s", "u", room, ip, k), k);
	}
	/* free some entries first so the scan meets free ones too */
	reg_remove(r, 4);     /* proc 1 */
	reg_remove(r, 9);     /* proc 0 */
	seen_set *v = calloc(1, sizeof *v);
	ck_assert_ptr_nonnull(v);
	int n = reg_remove_proc(r, 1, 0, collect, v);
	int want = 0;
	for (int k = 0; k < 40; k++)
		want += procs[k] == 1 && k != 4;
	ck_assert_int_eq(n, want);
	ck_assert_int_eq(v->n, want);
	for (int i = 0; i < v->n; i++) {
		ck_assert_int_eq(v->proc[i], 1);
		ck_assert_int_eq(r->s[v->idx[i]].state, REG_FREE);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(v->idx[i], v->idx[j]);   /* each visited once */
	}
	ck_assert(!has(v, 4));
	ck_assert_int_eq(r->live, 38 - want);
	for (int k = 0; k < 40; k++)
		if (procs[k] != 1 && k != 9)
			ck_assert_int_eq(r->s[k].state, REG_LIVE);
	/* rooms, users and addresses no longer hold them */
	int total = 0;
	for (int q = 0; q < 4; q++) {
		snprintf(room, sizeof room, "room%d", q);
		seen_set *w = in_room(r, room);
		for (int i = 0; i < w->n; i++)
			ck_assert_int_ne(w->proc[i], 1);
		total += w->n;
	}
	ck_assert_int_eq(total, r->live);
	ck_assert_int_eq(of_user(r, "u")->n, r->live);
	int ips = 0;
	for (int a = 0; a < 5; a++) {
		ip_name(ip, sizeof ip, a);
		int c = 0;
		for (int k = 0; k < 40; k++)
			c += k % 5 == a && procs[k] != 1 && k != 9;
		ck_assert_int_eq(reg_ip_count(r, ip), c);
		ips += c;
	}
	ck_assert_int_eq(ips, r->live);
	/* again: nothing left; without a callback; a proc that has none */
	ck_assert_int_eq(reg_remove_proc(r, 1, 0, collect, v), 0);
	ck_assert_int_eq(reg_remove_proc(r, 7, 0, NULL, NULL), 0);
	int left0 = 0;
	for (int k = 0; k < 40; k++)
		left0 += procs[k] == 0 && k != 9;
	ck_assert_int_eq(reg_remove_proc(r, 0, 0, NULL, NULL), left0);
	int left2 = r->live;
	ck_assert_int_eq(reg_remove_proc(r, 2, 0, NULL, NULL), left2);
	ck_assert_int_eq(r->live, 0);
	ck_assert_int_eq(r->ips_used, 0);
	/* the freed entries are all reusable */
	for (int k = 0; k < 64; k++)
		ck_assert_int_ge(add(r, 5, "s", "u", "room0", "1.1.1.1", k), 0);
	ck_assert_int_eq(add(r, 5, "s", "u", "room0", "1.1.1.1", 0), -1);
	ck_assert_int_eq(in_room(r, "room0")->n, 64);
	free(v);
	free_reg(r);
}
END_TEST

static Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *ent = tcase_create("entries");
	tcase_add_test(ent, test_add_fields);
	tcase_add_test(ent, test_remove_and_reuse);
	tcase_add_test(ent, test_capacity_edge);
	tcase_add_test(ent, test_shared_mapping);
	suite_add_tcase(s, ent);

	TCase *chains = tcase_create("chains");
	tcase_add_test(chains, test_rooms_basic);
	tcase_add_test(chains, test_rooms_same_bucket);
	tcase_add_test(chains, test_rooms_many);
	tcase_add_test(chains, test_move);
	tcase_add_test(chains, test_muted);
	tcase_add_test(chains, test_each_of_user);
	suite_add_tcase(s, chains);

	TCase *ip = tcase_create("ip");
	tcase_set_timeout(ip, 30);
	tcase_add_test(ip, test_ip_count_basic);
	tcase_add_test(ip, test_ip_empty_address);
	tcase_add_test(ip, test_ip_count_many);
	tcase_add_test(ip, test_ip_same_home);
	suite_add_tcase(s, ip);

	TCase *ev = tcase_create("evict");
	tcase_add_test(ev, test_user_evict);
	tcase_add_test(ev, test_user_evict_many);
	tcase_add_test(ev, test_remove_proc);
	tcase_add_test(ev, test_park_resume_expire);
	suite_add_tcase(s, ev);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(registry_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
