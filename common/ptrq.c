/* ptrq.c: see ptrq.h. */
#include "common/ptrq.h"

#include <stdlib.h>

int ptrq_init(ptrq *q, uint32_t cap)
{
	q->head = q->count = 0;
	q->cap = cap;
	q->slots = calloc(cap ? cap : 1, sizeof *q->slots);
	return q->slots ? 0 : -1;
}

void ptrq_free(ptrq *q)
{
	free(q->slots);
	q->slots = NULL;
	q->cap = q->count = q->head = 0;
}

int ptrq_push(ptrq *q, void *p)
{
	if (q->count == q->cap)
		return -1;
	q->slots[(q->head + q->count++) % q->cap] = p;
	return 0;
}

void *ptrq_push_drop_oldest(ptrq *q, void *p)
{
	void *old = NULL;
	if (q->cap == 0)
		return p;
	if (q->count == q->cap)
		old = ptrq_pop(q);
	ptrq_push(q, p);
	return old;
}

void *ptrq_pop(ptrq *q)
{
	if (!q->count)
		return NULL;
	void *p = q->slots[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return p;
}

int ptrq_resize(ptrq *q, uint32_t cap, void (*drop)(void *))
{
	ptrq n;
	if (ptrq_init(&n, cap) < 0)
		return -1;
	while (q->count > cap)
		drop(ptrq_pop(q));
	void *p;
	while ((p = ptrq_pop(q)))
		ptrq_push(&n, p);
	free(q->slots);
	*q = n;
	return 0;
}
