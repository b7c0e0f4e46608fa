/* ptrq.h: a bounded FIFO ring of pointers. The session queues are built on
 * it: pushing onto a full ring with ptrq_push_drop_oldest hands back the
 * oldest entry so the caller can release it. A zeroed ptrq is an empty
 * ring of capacity 0; ptrq_resize grows it (the only allocation). */
#ifndef AGW_PTRQ_H
#define AGW_PTRQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct ptrq {
	void **slots;
	uint32_t head, count, cap;
} ptrq;

int ptrq_init(ptrq *q, uint32_t cap);        /* 0, or -1 if out of memory */
void ptrq_free(ptrq *q);                      /* the entries are the caller's */
static inline int ptrq_empty(const ptrq *q) { return q->count == 0; }
static inline int ptrq_full(const ptrq *q) { return q->count == q->cap; }
/* 0, or -1 when full (nothing pushed). */
int ptrq_push(ptrq *q, void *p);
/* Pushes; when full, first removes and returns the oldest entry, else NULL. */
void *ptrq_push_drop_oldest(ptrq *q, void *p);
void *ptrq_pop(ptrq *q);                      /* NULL when empty */
static inline void *ptrq_peek(const ptrq *q) { return q->count ? q->slots[q->head] : NULL; }
/* Grows or shrinks keeping the newest entries; returns the dropped ones
 * through drop(). 0, or -1 if out of memory (unchanged). */
int ptrq_resize(ptrq *q, uint32_t cap, void (*drop)(void *));

#endif
