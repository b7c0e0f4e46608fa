/* media.h: the file formats of recordings, written through stdio.
 *
 * Ogg Opus (RFC 7845) through libogg: an OpusHead page (BOS), OpusTags
 * page(s), then one Ogg packet per Opus packet; a page's granule position
 * is the 48 kHz sample position at the end of its last packet (pre-skip 0,
 * the stream starts at position 0). Gaps are filled with one-byte Opus
 * packets (a TOC byte with one zero-length frame: the decoder conceals them
 * as lost, i.e. silence), so packet durations always add up to the granule.
 * The writer holds the last packet back so that it can carry the end of
 * stream flag.
 *
 * WAV (RIFF): PCM 16-bit little-endian (format tag 1), A-law (6) or
 * mu-law (7) with 8-bit samples; the sizes in the header are rewritten by
 * wavw_fixup() (periodically, so a crash leaves a playable file) and at
 * the end. A file stops at 4 GiB (wavw_write answers WAV_FULL). */
#ifndef AGW_DS_MEDIA_H
#define AGW_DS_MEDIA_H

#include <ogg/ogg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- RTP and Opus ---- */

#define PT_PCMU 0
#define PT_PCMA 8
#define PT_L16 96
#define PT_OPUS 111

/* The payload of a checked RTP packet (header, extension, padding removed).
 * 0, or -1 if it does not fit. */
int rtp_payload_bounds(const uint8_t *p, size_t len, size_t *off, size_t *plen);

/* Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 3.1);
 * -1 for an empty or malformed packet. */
int opus_packet_samples(const uint8_t *p, size_t len);
/* Channels an Opus packet's TOC says (1 or 2); 1 for an empty packet. */
int opus_packet_channels(const uint8_t *p, size_t len);
/* A one-byte Opus packet of a zero-length frame lasting samples (120, 240,
 * 480 or 960: CELT 2.5/5/10/20 ms), decoded as concealment. */
uint8_t opus_filler_toc(int samples);

/* ---- Ogg Opus ---- */

typedef struct oggw {
	FILE *f;
	ogg_stream_state os;
	int started;
	int64_t packetno;
	uint8_t *held;                    /* the last packet, held back for the EOS flag */
	size_t held_len, held_cap;
	int64_t held_granule;
	int has_held;
	int64_t granule;                  /* of the last packet given */
	uint64_t bytes;                   /* written to f */
} oggw;

/* Writes OpusHead and OpusTags (comments: "KEY=value" strings) to f.
 * 0, or -1 on a write error. */
int oggw_start(oggw *w, FILE *f, uint32_t serial, int channels, const char *vendor,
               const char *const *comments, int ncomments);
/* One Opus packet ending at granule (48 kHz samples from the start). */
int oggw_packet(oggw *w, const uint8_t *p, size_t len, int64_t granule);
/* Writes the pages buffered so far (a partial page too). */
int oggw_flush(oggw *w);
/* The held packet with the end-of-stream flag, the last pages; frees the
 * stream state. Does not close f. */
int oggw_finish(oggw *w);

/* ---- WAV ---- */

enum { WAV_PCM = 1, WAV_ALAW = 6, WAV_MULAW = 7 };
#define WAV_FULL 1
#define WAV_MAX_DATA 0xFFFF0000u

typedef struct wavw {
	FILE *f;
	uint16_t format, channels, bits;
	uint32_t rate;
	uint64_t data_bytes;
	long header_len;
	int dirty;                        /* data written since the last fixup */
} wavw;

int wavw_start(wavw *w, FILE *f, uint16_t format, uint32_t rate, uint16_t bits, uint16_t channels);
/* 0, WAV_FULL (nothing written: the file is at its size limit), -1 error. */
int wavw_write(wavw *w, const void *p, size_t n);
int wavw_silence(wavw *w, uint64_t samples);
/* Rewrites the RIFF, data (and fact) sizes; the file position stays at the end. */
int wavw_fixup(wavw *w);
/* Pad byte and final sizes. Does not close f. */
int wavw_finish(wavw *w);

/* Big-endian 16-bit samples (RTP L16) to little-endian (WAV), n bytes. */
void l16_be_to_le(uint8_t *dst, const uint8_t *src, size_t n);

#endif
