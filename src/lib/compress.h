/* slipway: layer compression codecs (gzip, zstd, none) behind one struct of function pointers,
 * in libarchive's filter style, and the two streaming objects built on them:
 *
 *   sw_sink_t    write side: bytes in → compressed into an fd, hashing BOTH the uncompressed
 *                bytes (a layer's diffID) and the compressed bytes (its digest) in the same pass.
 *   sw_source_t  read side: an fd of gzip / zstd / plain bytes (detected from the magic bytes) →
 *                decompressed bytes, hashing both sides too, so pull/load verify while reading.
 *
 * gzip output is cut into 1 MiB blocks compressed on worker threads. Levels 1-3 use ISA-L (pigz
 * style: the blocks form one member, each block primed with the previous 32 KiB as dictionary and
 * ended by a sync flush; at the default level 3 a block that looks like text gets ISA-L level 3,
 * the others level 2); levels 4-9 use libdeflate, a gzip member per block; see gz_levels in
 * compress.c. Block boundaries and each block's backend depend only on the input, so the bytes
 * are the same whatever the thread count: layer digests are reproducible. zstd uses libzstd's
 * own worker threads (always >= 1 worker, whose output does not depend on the worker count
 * either).
 * Memory per gzip sink: threads * 2 + 1 input buffers of 1 MiB, and the compressed output of up
 * to threads * 8 + 1 blocks in flight (a small layer touches only what it fills).
 */
#ifndef SW_COMPRESS_H
#define SW_COMPRESS_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
  SW_COMPRESS_NONE = 0,
  SW_COMPRESS_GZIP = 1,
  SW_COMPRESS_ZSTD = 2,
} sw_compress_kind_t;

/* Internal per-stream state of a codec (compress.c). */
typedef struct sw_codec_enc_s sw_codec_enc_t;
typedef struct sw_codec_dec_s sw_codec_dec_t;

/* Where an encoder sends compressed bytes (the sink hashes them and writes them out). */
typedef int (*sw_codec_out_fn)(void *arg, const void *data, size_t len, sw_error_t *err);

/* A codec. Use the three instances below; callers only read the descriptive fields and pass
 * the pointer around. The function pointers are the backend interface used by sinks/sources. */
typedef struct sw_codec_s {
  const char *name; /* "gzip", "zstd", "none" */
  sw_compress_kind_t kind;
  int default_level, min_level, max_level;
  const char *oci_media_type;    /* application/vnd.oci.image.layer.v1.tar[+gzip|+zstd] */
  const char *docker_media_type; /* application/vnd.docker.image.rootfs.diff.tar[.gzip|...] */
  const char *file_suffix;       /* ".gz", ".zst", "" */

  sw_codec_enc_t *(*enc_new)(int level, int threads, sw_codec_out_fn out, void *out_arg);
  int (*enc_write)(sw_codec_enc_t *e, const void *data, size_t len, sw_error_t *err);
  int (*enc_finish)(sw_codec_enc_t *e, sw_error_t *err); /* flush everything, write trailer */
  void (*enc_free)(sw_codec_enc_t *e);
  /* Optional (NULL: ignored): compress on the calling thread only while serial is true, with
   * the encoder's threads after. The output bytes are the same either way. */
  void (*enc_set_serial)(sw_codec_enc_t *e, bool serial);

  sw_codec_dec_t *(*dec_new)(void);
  /* Consume from *in (advancing it), produce into out; *produced bytes written. Sets *done at
   * the end of the compressed stream (after all members/frames, once in_eof says so). */
  int (*dec_run)(sw_codec_dec_t *d, const uint8_t **in, size_t *in_len, bool in_eof, uint8_t *out,
                 size_t out_len, size_t *produced, bool *done, sw_error_t *err);
  void (*dec_free)(sw_codec_dec_t *d);
} sw_codec_t;

extern const sw_codec_t sw_codec_gzip;
extern const sw_codec_t sw_codec_zstd;
extern const sw_codec_t sw_codec_none;

/* "gzip", "zstd", "none"/"uncompressed" → codec; NULL if unknown. */
const sw_codec_t *sw_codec_by_name(const char *name);
/* Detect from the first bytes (>= 4 wanted): gzip 1f 8b, zstd 28 b5 2f fd; anything else is
 * "none" (a plain tar). */
const sw_codec_t *sw_codec_detect(const void *buf, size_t len);
/* OCI or Docker layer media type → codec; NULL for unknown / foreign layer types. */
const sw_codec_t *sw_codec_from_media_type(const char *media_type);
/* The layer media type for this codec; docker=true for docker-archive / schema2 manifests. */
const char *sw_codec_media_type(const sw_codec_t *c, bool docker);

/* What `--compression gzip|zstd[:LEVEL]|none` selects. level 0 = the codec's default, threads 0 =
 * online CPUs. */
typedef struct {
  const sw_codec_t *codec;
  int level;
  int threads;
} sw_compression_t;

/* The default: gzip at its default level, all CPUs. */
sw_compression_t sw_compression_default(void);
/* Parse "gzip", "zstd", "zstd:19", "gzip:3", "none" (exit code 2 on bad input). */
int sw_compression_parse(const char *spec, sw_compression_t *out, sw_error_t *err);

/* ---- write side ---- */

typedef struct sw_sink_s sw_sink_t;

/* Results of a finished sink. Digests are "sha256:<hex>". */
typedef struct {
  char diff_id[SW_DIGEST_LEN + 1]; /* sha256 of the uncompressed bytes written */
  char digest[SW_DIGEST_LEN + 1];  /* sha256 of the compressed bytes produced */
  uint64_t size;                   /* compressed bytes */
  uint64_t raw_size;               /* uncompressed bytes */
} sw_sink_result_t;

/* Compress into out_fd (not closed by the sink). comp NULL = sw_compression_default(). */
sw_sink_t *sw_sink_new(const sw_compression_t *comp, int out_fd);
int sw_sink_write(sw_sink_t *s, const void *data, size_t len, sw_error_t *err);
/* Compress on the calling thread only (serial) or with comp's threads again; call between writes,
 * from the writing thread. Same bytes either way (a background job that turns urgent). */
void sw_sink_set_serial(sw_sink_t *s, bool serial);
/* Flush, write the trailer and fill *res. The sink must still be freed. */
int sw_sink_finish(sw_sink_t *s, sw_sink_result_t *res, sw_error_t *err);
void sw_sink_free(sw_sink_t *s);
static inline void
sw_sink_freep(sw_sink_t **s)
{
  sw_sink_free(*s);
}
#define _cleanup_sink_ _cleanup_(sw_sink_freep)

/* ---- read side ---- */

typedef struct sw_source_s sw_source_t;

/* Decompress from in_fd (not closed). codec NULL = detect from the magic bytes. tee_fd >= 0
 * receives a copy of the raw (compressed, as read) bytes, e.g. to store a pulled blob while
 * extracting it. */
sw_source_t *sw_source_new(int in_fd, const sw_codec_t *codec, int tee_fd);
/* Hash nothing (call before the first read): the caller hashes the bytes itself. The result's
 * digests are then empty strings. */
void sw_source_skip_hash(sw_source_t *s);
/* Read up to len decompressed bytes; returns the count, 0 at the end, -1 on error. */
ssize_t sw_source_read(sw_source_t *s, void *buf, size_t len, sw_error_t *err);
/* Borrow a block of decompressed bytes (no copy): *data valid until the next call. Returns the
 * length, 0 at the end, -1 on error. */
ssize_t sw_source_read_block(sw_source_t *s, const void **data, sw_error_t *err);
/* Read and hash whatever is left (so the digests cover the whole stream). */
int sw_source_drain(sw_source_t *s, sw_error_t *err);
/* The codec in use (detected once the first bytes were read); NULL before that. */
const sw_codec_t *sw_source_codec(sw_source_t *s);
/* After the end was reached (read returned 0 or drain): diffID/raw_size of the decompressed
 * bytes, digest/size of the raw input. Fails if called before the end. */
int sw_source_result(sw_source_t *s, sw_sink_result_t *res, sw_error_t *err);
void sw_source_free(sw_source_t *s);
static inline void
sw_source_freep(sw_source_t **s)
{
  sw_source_free(*s);
}
#define _cleanup_source_ _cleanup_(sw_source_freep)

#endif
