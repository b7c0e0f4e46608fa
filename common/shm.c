/* shm.c: creation, mapping and entry allocation of the shared area (shm.h). */
#include "common/shm.h"
#include "common/clock.h"

#include <string.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_REG_ALIGN 4096

static size_t shm_header_bytes(void)
{
	return (sizeof(shm_area) + SHM_REG_ALIGN - 1) / SHM_REG_ALIGN * SHM_REG_ALIGN;
}

shm_area *shm_create(int reg_capacity, int *fd)
{
	size_t total = shm_header_bytes() + reg_bytes(reg_capacity);
	int mfd = memfd_create("audiogwd-shm", MFD_CLOEXEC);
	if (mfd < 0)
		return NULL;
	if (ftruncate(mfd, (off_t)total) < 0)
		goto err;
	shm_area *a = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (a == MAP_FAILED)
		goto err;
	a->magic = SHM_MAGIC;
	a->size = (uint32_t)sizeof(shm_area);
	a->reg_offset = shm_header_bytes();
	randombytes_buf(a->resume_key, sizeof a->resume_key);
	if (reg_init(shm_registry(a), reg_capacity) < 0)
		goto err;
	/* Start the allocator at a random-ish point so ssrcs differ between runs. */
	atomic_store(&a->ssrc_next, (uint32_t)(clock_wall_us() & 0x3fffffff) | 1);
	*fd = mfd;
	return a;
err:
	close(mfd);
	return NULL;
}

shm_area *shm_attach(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < shm_header_bytes())
		return NULL;
	shm_area *a = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED)
		return NULL;
	if (a->magic != SHM_MAGIC || a->size != sizeof(shm_area) ||
	    a->reg_offset + reg_bytes(shm_registry(a)->capacity) > (uint64_t)st.st_size) {
		munmap(a, (size_t)st.st_size);
		return NULL;
	}
	return a;
}

int shm_proc_claim(shm_area *a, int slot, int generation)
{
	for (int i = 0; i < SHM_MAX_PROCS; i++) {
		shm_proc *p = &a->procs[i];
		if (atomic_load(&p->state) != SHM_PROC_FREE)
			continue;
		memset(&p->c, 0, sizeof p->c);
		p->slot = slot;
		p->generation = generation;
		p->started_at_us = clock_wall_us();
		atomic_store(&p->pid, 0);
		atomic_store(&p->command, SHM_CMD_NONE);
		atomic_store(&p->state, SHM_PROC_STARTING);
		return i;
	}
	return -1;
}

void shm_proc_release(shm_area *a, int index)
{
	atomic_store(&a->procs[index].state, SHM_PROC_FREE);
}

uint32_t shm_next_ssrc(shm_area *a)
{
	uint32_t v;
	do
		v = atomic_fetch_add_explicit(&a->ssrc_next, 1, memory_order_relaxed);
	while (v == 0);
	return v;
}
