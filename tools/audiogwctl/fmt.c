/* fmt.c: audiogwctl's output helpers: human units (counts with k/M/G,
 * durations like 3h12m, RFC 3339 times shortened), JSON fields as display
 * strings, and aligned text tables. Cells are made terminal-safe (control
 * characters become '?') and aligned by UTF-8 code points. */
#include "tools/audiogwctl/ctl.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- units ---- */

static char *scaled(char *buf, size_t n, double v, const char *plain_fmt)
{
	static const char suffix[] = "kMGTP";
	double a = fabs(v);
	int i = -1;

	if (a < 9999.5) {
		snprintf(buf, n, plain_fmt, v);
		return buf;
	}
	while (a >= 999.95 && i < 4) {
		a /= 1000;
		v /= 1000;
		i++;
	}
	snprintf(buf, n, a < 99.95 ? "%.1f%c" : "%.0f%c", v, suffix[i]);
	return buf;
}

char *fmt_count(char *buf, size_t n, int64_t v)
{
	if (v > -10000 && v < 10000) {
		snprintf(buf, n, "%" PRId64, v);
		return buf;
	}
	return scaled(buf, n, (double)v, "%.0f");
}

char *fmt_rate(char *buf, size_t n, double v)
{
	if (fabs(v) < 9.95 && v != 0)
		snprintf(buf, n, "%.1f", v);
	else
		scaled(buf, n, v, "%.0f");
	return buf;
}

char *fmt_duration(char *buf, size_t n, int64_t s)
{
	if (s < 0)
		snprintf(buf, n, "-");
	else if (s < 60)
		snprintf(buf, n, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, n, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)"; *frac points at the
 * fraction digits (or ""). Returns 0 or -1. */
static int parse_rfc3339(const char *s, struct tm *tm, const char **frac)
{
	int used = 0;

	memset(tm, 0, sizeof *tm);
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm->tm_year, &tm->tm_mon,
		   &tm->tm_mday, &tm->tm_hour, &tm->tm_min, &tm->tm_sec, &used) != 6 || used != 19)
		return -1;
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	s += used;
	*frac = "";
	if (*s == '.') {
		*frac = ++s;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0 && strcmp(s, "+00:00") != 0)
		return -1;
	return 0;
}

char *fmt_time(char *buf, size_t n, const char *ts, int frac_digits)
{
	struct tm tm;
	const char *frac;

	if (!ts || parse_rfc3339(ts, &tm, &frac) != 0) {
		snprintf(buf, n, "%s", ts ? ts : "-");
		return buf;
	}
	char f[8] = "";
	if (frac_digits > 0) {
		f[0] = '.';
		for (int i = 0; i < frac_digits && i < 3; i++)
			f[i + 1] = frac[0] >= '0' && frac[0] <= '9' ? *frac++ : '0';
	}
	snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
	return buf;
}

int64_t age_of(const char *ts)
{
	struct tm tm;
	const char *frac;

	if (!ts || parse_rfc3339(ts, &tm, &frac) != 0)
		return -1;
	int64_t d = (int64_t)time(NULL) - (int64_t)timegm(&tm);
	return d < 0 ? 0 : d;
}

/* ---- JSON fields ---- */

#define RING 32
static char *ring_buf(void)
{
	static char bufs[RING][256];
	static int next;
	next = (next + 1) % RING;
	return bufs[next];
}

int64_t jf_int(const json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return dflt;
}

const char *jf_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char *b = ring_buf();

	if (json_is_string(v))
		return json_string_value(v)[0] ? json_string_value(v) : "-";
	if (json_is_integer(v))
		snprintf(b, 256, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(b, 256, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(b, 256, "%s", json_is_true(v) ? "true" : "false");
	else if (!v || json_is_null(v))
		return "-";
	else {
		char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(b, 256, "%s", d ? d : "?");
		free(d);
	}
	return b;
}

const char *jf_count(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_number(v))
		return jf_str(o, key);
	return fmt_count(ring_buf(), 256, jf_int(o, key, 0));
}

const char *jf_time(const json_t *o, const char *key, int frac_digits)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		return jf_str(o, key);
	return fmt_time(ring_buf(), 256, s, frac_digits);
}

const char *jf_age(const json_t *o, const char *key)
{
	return fmt_duration(ring_buf(), 256,
		age_of(json_string_value(json_object_get(o, key))));
}

const char *jf_bool(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (json_is_boolean(v))
		return json_is_true(v) ? "yes" : "no";
	return jf_str(o, key);
}

const char *jf_ssrc(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		return jf_str(o, key);
	char *b = ring_buf();
	snprintf(b, 256, "0x%08" PRIx64, (uint64_t)json_integer_value(v) & 0xffffffffu);
	return b;
}

void print_json(const json_t *v, FILE *f)
{
	json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', f);
}

/* ---- tables ---- */

void table_init(table *t, const char *spec)
{
	char tmp[512];
	char *save = NULL;

	memset(t, 0, sizeof *t);
	snprintf(tmp, sizeof tmp, "%s", spec);
	for (char *w = strtok_r(tmp, " ", &save); w && t->ncols < 16; w = strtok_r(NULL, " ", &save)) {
		size_t n = strlen(w);
		t->right[t->ncols] = n > 1 && w[n - 1] == '>';
		if (t->right[t->ncols])
			w[n - 1] = '\0';
		t->hdr[t->ncols++] = strdup(w);
	}
}

static char *safe_copy(const char *s)
{
	char *c = strdup(s ? s : "-");
	if (!c) {
		fputs("audiogwctl: out of memory\n", stderr);
		exit(CTL_FAIL);
	}
	for (unsigned char *p = (unsigned char *)c; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}

void table_add(table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
		if (!cells) {
			fputs("audiogwctl: out of memory\n", stderr);
			exit(CTL_FAIL);
		}
		t->cells = cells;
		t->cap = cap;
	}
	va_start(ap, t);
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = safe_copy(va_arg(ap, const char *));
	va_end(ap);
	t->nrows++;
}

/* Display width: UTF-8 code points. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void put_cell(FILE *f, const char *s, size_t w, int right, int last)
{
	size_t pad = w - width(s);
	if (right)
		fprintf(f, "%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, f);
	else
		fprintf(f, "%s%*s", s, (int)pad, "");
}

void table_print(const table *t, FILE *f)
{
	size_t w[16];

	for (int c = 0; c < t->ncols; c++) {
		w[c] = width(t->hdr[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t cw = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (cw > w[c])
				w[c] = cw;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->hdr[c] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
			if (c > 0)
				fputs("  ", f);
			put_cell(f, s, w[c], t->right[c], c == t->ncols - 1);
		}
		fputc('\n', f);
	}
}

void table_free(table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	for (int c = 0; c < t->ncols; c++)
		free(t->hdr[c]);
	free(t->cells);
	memset(t, 0, sizeof *t);
}
