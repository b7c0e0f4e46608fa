/* media.c: Ogg Opus and WAV writers, and the RTP/Opus helpers they need
 * (see media.h). */
#include "downstream/media.h"

#include <stdlib.h>
#include <string.h>

/* ---- RTP and Opus ---- */

int rtp_payload_bounds(const uint8_t *p, size_t len, size_t *off, size_t *plen)
{
	if (len < 12 || (p[0] >> 6) != 2)
		return -1;
	size_t o = 12 + (size_t)(p[0] & 0x0f) * 4;
	if (o > len)
		return -1;
	if (p[0] & 0x10) {
		if (o + 4 > len)
			return -1;
		o += 4 + (size_t)((p[o + 2] << 8) | p[o + 3]) * 4;
		if (o > len)
			return -1;
	}
	size_t end = len;
	if (p[0] & 0x20) {
		size_t pad = p[len - 1];
		if (pad == 0 || pad > end - o)
			return -1;
		end -= pad;
	}
	*off = o;
	*plen = end - o;
	return 0;
}

static int opus_frame_samples(uint8_t toc)
{
	int config = toc >> 3;
	static const int silk[4] = { 480, 960, 1920, 2880 };
	static const int hybrid[2] = { 480, 960 };
	static const int celt[4] = { 120, 240, 480, 960 };
	if (config < 12)
		return silk[config & 3];
	if (config < 16)
		return hybrid[config & 1];
	return celt[config & 3];
}

int opus_packet_samples(const uint8_t *p, size_t len)
{
	if (len < 1)
		return -1;
	int frames;
	switch (p[0] & 3) {
	case 0: frames = 1; break;
	case 1:
	case 2: frames = 2; break;
	default:
		if (len < 2 || (p[1] & 0x3f) == 0)
			return -1;
		frames = p[1] & 0x3f;
	}
	int n = frames * opus_frame_samples(p[0]);
	return n > 5760 ? -1 : n;   /* at most 120 ms */
}

int opus_packet_channels(const uint8_t *p, size_t len)
{
	return len >= 1 && (p[0] & 0x04) ? 2 : 1;
}

uint8_t opus_filler_toc(int samples)
{
	/* CELT fullband configs 28..31 (2.5, 5, 10, 20 ms), mono, code 0 */
	int config = samples >= 960 ? 31 : samples >= 480 ? 30 : samples >= 240 ? 29 : 28;
	return (uint8_t)(config << 3);
}

/* ---- Ogg Opus ---- */

static void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { le16(p, (uint16_t)v); le16(p + 2, (uint16_t)(v >> 16)); }

static int write_page(oggw *w, const ogg_page *og)
{
	if (fwrite(og->header, 1, (size_t)og->header_len, w->f) != (size_t)og->header_len ||
	    fwrite(og->body, 1, (size_t)og->body_len, w->f) != (size_t)og->body_len)
		return -1;
	w->bytes += (uint64_t)og->header_len + (uint64_t)og->body_len;
	return 0;
}

static int pages_out(oggw *w, int flush)
{
	ogg_page og;
	while (flush ? ogg_stream_flush(&w->os, &og) : ogg_stream_pageout(&w->os, &og))
		if (write_page(w, &og) < 0)
			return -1;
	return 0;
}

static int packet_in(oggw *w, const uint8_t *p, size_t len, int64_t granule, int bos, int eos)
{
	ogg_packet op = { .packet = (unsigned char *)p, .bytes = (long)len, .b_o_s = bos,
	                  .e_o_s = eos, .granulepos = granule, .packetno = w->packetno++ };
	return ogg_stream_packetin(&w->os, &op) == 0 ? 0 : -1;
}

int oggw_start(oggw *w, FILE *f, uint32_t serial, int channels, const char *vendor,
               const char *const *comments, int ncomments)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	if (ogg_stream_init(&w->os, (int)serial) != 0)
		return -1;
	w->started = 1;
	/* OpusHead (RFC 7845 5.1): version 1, channels, pre-skip 0, 48 kHz input,
	 * gain 0, mapping family 0. Alone on the first page. */
	uint8_t head[19];
	memcpy(head, "OpusHead", 8);
	head[8] = 1;
	head[9] = (uint8_t)(channels == 2 ? 2 : 1);
	le16(head + 10, 0);
	le32(head + 12, 48000);
	le16(head + 16, 0);
	head[18] = 0;
	if (packet_in(w, head, sizeof head, 0, 1, 0) < 0 || pages_out(w, 1) < 0)
		return -1;
	/* OpusTags (5.2): vendor string and user comments, on their own page(s). */
	size_t vlen = strlen(vendor), total = 8 + 4 + vlen + 4;
	for (int i = 0; i < ncomments; i++)
		total += 4 + strlen(comments[i]);
	uint8_t *tags = malloc(total);
	if (!tags)
		return -1;
	uint8_t *q = tags;
	memcpy(q, "OpusTags", 8);
	le32(q + 8, (uint32_t)vlen);
	memcpy(q + 12, vendor, vlen);
	q += 12 + vlen;
	le32(q, (uint32_t)ncomments);
	q += 4;
	for (int i = 0; i < ncomments; i++) {
		size_t n = strlen(comments[i]);
		le32(q, (uint32_t)n);
		memcpy(q + 4, comments[i], n);
		q += 4 + n;
	}
	int rc = packet_in(w, tags, total, 0, 0, 0) < 0 || pages_out(w, 1) < 0 ? -1 : 0;
	free(tags);
	return rc;
}

static int release_held(oggw *w, int eos)
{
	if (!w->has_held)
		return 0;
	w->has_held = 0;
	if (packet_in(w, w->held, w->held_len, w->held_granule, 0, eos) < 0)
		return -1;
	return pages_out(w, eos);
}

int oggw_packet(oggw *w, const uint8_t *p, size_t len, int64_t granule)
{
	if (release_held(w, 0) < 0)
		return -1;
	if (len > w->held_cap) {
		size_t cap = len < 256 ? 256 : len;
		uint8_t *n = realloc(w->held, cap);
		if (!n)
			return -1;
		w->held = n;
		w->held_cap = cap;
	}
	memcpy(w->held, p, len);
	w->held_len = len;
	w->held_granule = granule;
	w->has_held = 1;
	w->granule = granule;
	return 0;
}

int oggw_flush(oggw *w)
{
	return w->started ? pages_out(w, 1) : 0;
}

int oggw_finish(oggw *w)
{
	if (!w->started)
		return 0;
	int rc = release_held(w, 1);
	if (rc == 0)
		rc = pages_out(w, 1);
	ogg_stream_clear(&w->os);
	free(w->held);
	w->held = NULL;
	w->held_cap = 0;
	w->started = 0;
	return rc;
}

/* ---- WAV ---- */

/* RIFF, fmt (16 bytes for PCM; 18 with cbSize = 0 plus a fact chunk for
 * the others, as the WAVE spec asks of non-PCM formats), data. */
static int wav_header(wavw *w)
{
	uint8_t h[64];
	size_t n = 0;
	int pcm = w->format == WAV_PCM;
	uint32_t data = (uint32_t)w->data_bytes;
	uint32_t frames = (uint32_t)(w->data_bytes / ((uint64_t)w->channels * w->bits / 8));
	memcpy(h, "RIFF", 4);
	memcpy(h + 8, "WAVE", 4);
	memcpy(h + 12, "fmt ", 4);
	le32(h + 16, pcm ? 16 : 18);
	le16(h + 20, w->format);
	le16(h + 22, w->channels);
	le32(h + 24, w->rate);
	le32(h + 28, w->rate * w->channels * w->bits / 8);
	le16(h + 32, (uint16_t)(w->channels * w->bits / 8));
	le16(h + 34, w->bits);
	n = 36;
	if (!pcm) {
		le16(h + n, 0);           /* cbSize */
		n += 2;
		memcpy(h + n, "fact", 4);
		le32(h + n + 4, 4);
		le32(h + n + 8, frames);
		n += 12;
	}
	memcpy(h + n, "data", 4);
	le32(h + n + 4, data);
	n += 8;
	uint64_t riff = n - 8 + w->data_bytes + (w->data_bytes & 1);
	le32(h + 4, (uint32_t)riff);
	w->header_len = (long)n;
	return fwrite(h, 1, n, w->f) == n ? 0 : -1;
}

int wavw_start(wavw *w, FILE *f, uint16_t format, uint32_t rate, uint16_t bits, uint16_t channels)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	w->format = format;
	w->rate = rate;
	w->bits = bits;
	w->channels = channels;
	return wav_header(w);
}

int wavw_write(wavw *w, const void *p, size_t n)
{
	if (w->data_bytes + n > WAV_MAX_DATA)
		return WAV_FULL;
	if (n && fwrite(p, 1, n, w->f) != n)
		return -1;
	w->data_bytes += n;
	w->dirty = 1;
	return 0;
}

int wavw_silence(wavw *w, uint64_t samples)
{
	uint8_t zero[4096];
	int fill = w->format == WAV_MULAW ? 0xff : w->format == WAV_ALAW ? 0xd5 : 0;
	memset(zero, fill, sizeof zero);
	uint64_t bytes = samples * w->channels * (w->bits / 8);
	while (bytes) {
		size_t n = bytes < sizeof zero ? (size_t)bytes : sizeof zero;
		int rc = wavw_write(w, zero, n);
		if (rc)
			return rc;
		bytes -= n;
	}
	return 0;
}

int wavw_fixup(wavw *w)
{
	if (fseek(w->f, 0, SEEK_SET) != 0 || wav_header(w) < 0 || fseek(w->f, 0, SEEK_END) != 0)
		return -1;
	w->dirty = 0;
	return 0;
}

int wavw_finish(wavw *w)
{
	if ((w->data_bytes & 1) && fputc(0, w->f) == EOF)
		return -1;
	return wavw_fixup(w);
}

void l16_be_to_le(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint8_t hi = src[i], lo = src[i + 1];
		dst[i] = lo;
		dst[i + 1] = hi;
	}
}
