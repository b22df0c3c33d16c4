/* slipway: layer codecs (gzip via ISA-L, zstd via libzstd, none) and the hashing sink/source
 * built on them; see compress.h. */
#include "compress.h"

#include <isa-l.h>
#include <libdeflate.h>
#include <pthread.h>
#include <zstd.h>

#define IO_BUF (1u << 20)

/* ------------------------------------------------------------------------------------------ */
/* gzip encoder: pigz-style blocks on worker threads                                            */
/* ------------------------------------------------------------------------------------------ */

/* Block size of the uncompressed stream. Fixed (never derived from the thread count) so that the
 * output bytes are reproducible. Each ISA-L block starts with the previous 32 KiB as its
 * dictionary, so the ratio is within a fraction of a percent of one single-threaded stream. */
#define GZ_BLOCK (1u << 20)
#define GZ_DICT  (32u * 1024u)
/* Blocks in flight per worker thread. The main thread reads, hashes and writes in stream order
 * while the workers compress, and the block that must go out next may be a slow one (text, at
 * the higher level) or the main thread may stall on a write: a deep ring lets the workers run on
 * meanwhile. 275 MB base tar, 2 CPUs, 5 interleaved runs: 2 per thread 346-387 MB/s (median
 * 371), 8 per thread 355-418 (median 383); an earlier quiet run 382 vs 413.
 * A block's input buffer goes back to a pool as soon as the block is compressed (its CRC is
 * taken when it is submitted), so only GZ_IN_PER_THREAD * threads + 1 input buffers exist: the
 * deep ring holds compressed output (~0.4 MiB a block), not 1 MiB inputs. */
#define GZ_JOBS_PER_THREAD 8
#define GZ_IN_PER_THREAD   2

/* A block whose sample is at least this many per mille printable ASCII (text, source code,
 * JSON...) is compressed at the backend's text_level. */
#define GZ_TEXT_PERMILLE 800
/* Classify a block from every GZ_TEXT_STRIDE-th byte: ~17K samples a block, about one a cache
 * line (cheap), and an odd stride, so they do not all fall on the same offset of tar's 512-byte
 * records. */
#define GZ_TEXT_STRIDE 61

enum { JOB_FREE, JOB_READY, JOB_BUSY, JOB_DONE };

typedef struct {
  uint8_t *in; /* from the pool while filled, queued or compressed; NULL otherwise */
  size_t in_len;
  uint8_t *dict;
  size_t dict_len;
  bool last; /* the last block of the stream */
  bool ld;   /* libdeflate: a whole gzip member of its own; else ISA-L raw deflate */
  int level; /* ISA-L: the level of this block */
  uint8_t *out;
  size_t out_len, out_cap;
  int state;
  int ret; /* non-zero: compression failed */
} gz_job_t;

/* What a gzip level means.
 *
 * ISA-L is the fastest deflate there is. Its blocks are pigz-style pieces of ONE gzip member
 * (each primed with the previous 32 KiB, ended by a sync flush): a single-member stream, which
 * every gzip reader takes (some, such as Rust's GzDecoder, read only the first member). Its
 * levels 1-2 match greedily with one hash probe: on binaries the output is ~10% larger than
 * `gzip -6`, on text and source code ~15%. Level 3 is ~2% smaller and, without AVX-512, half as
 * fast. libdeflate (levels 4-9) takes no dictionary, so each of its blocks is a gzip member of its
 * own (multi-member: valid for gzip(1), Go and Docker).
 *
 * ISA-L's levels 1-3 collect tokens in the level buffer and write one deflate block (with its own
 * Huffman tables) each time it fills: 6K tokens instead of the default 64K let the tables follow
 * the data (a tar changes between text and binaries every few KiB) and make the output ~2%
 * smaller for ~20% more CPU (4K: -0.25% more for +7% CPU; 8K: +0.25% for -3%).
 *
 * `text_level` (the default gzip level) compresses the blocks that look like text at ISA-L level
 * 3 and the others at `level`: the extra CPU goes where level 2 loses the most. Whether a block is
 * text depends only on its bytes, so the output is the same for any thread count. Measurements:
 * ARCHITECTURE.md, "Layer compression". */
typedef struct {
  bool isal;         /* ISA-L (else every block is a libdeflate member) */
  int level;         /* of that library */
  uint32_t tokens_k; /* ISA-L: deflate block size in 1024 tokens (0 = ISA-L's default) */
  int text_level;    /* ISA-L: the level of text blocks; 0 = `level` */
} gz_backend_t;

static const gz_backend_t gz_levels[10] = {
    {true, 1, 0, 0},  {true, 1, 0, 0},  {true, 2, 6, 0},  {true, 2, 6, 3},  {false, 1, 0, 0},
    {false, 3, 0, 0}, {false, 6, 0, 0}, {false, 7, 0, 0}, {false, 9, 0, 0}, {false, 12, 0, 0},
};

/* One compression context per thread: the ISA-L stream and its level buffer, or libdeflate's. */
typedef struct {
  struct isal_zstream s;
  uint8_t *level_buf; /* big enough for the backend's levels */
  struct libdeflate_compressor *ld;
} gz_ctx_t;

typedef struct {
  gz_backend_t be;
  int nthreads;
  sw_codec_out_fn out;
  void *out_arg;
  uint64_t total;

  uint8_t *tail; /* last GZ_DICT bytes of the previous block: the next dictionary */
  size_t tail_len;
  /* The ISA-L member being written (main thread, in order). */
  bool member_open;
  uint32_t member_crc;
  uint32_t member_size; /* mod 2^32, as gzip's ISIZE */

  gz_job_t *jobs;
  size_t njobs;
  uint8_t **pool; /* free input buffers (under mu) */
  size_t npool;
  uint64_t fill_seq;  /* the job main is filling; all before it are submitted */
  uint64_t claim_seq; /* next submitted job nobody compresses yet */
  uint64_t write_seq; /* next job whose output goes out */

  gz_ctx_t *main_ctx;
  bool serial; /* compress on the caller's thread only (gz_set_serial) */
  pthread_t *threads;
  int started;
  bool stop;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
} gz_enc_t;

/* ISA-L's level buffer: the level's hash tables, then the token buffer, whose size sets how long
 * a deflate block gets. */
static uint32_t
isal_level_buf_size(int level, uint32_t tokens_k)
{
  uint32_t req, def;
  switch (level) {
  case 0:
    return ISAL_DEF_LVL0_DEFAULT;
  case 1:
    req = ISAL_DEF_LVL1_REQ, def = ISAL_DEF_LVL1_DEFAULT;
    break;
  case 2:
    req = ISAL_DEF_LVL2_REQ, def = ISAL_DEF_LVL2_DEFAULT;
    break;
  default:
    req = ISAL_DEF_LVL3_REQ, def = ISAL_DEF_LVL3_DEFAULT;
    break;
  }
  return tokens_k == 0 ? def : req + ISAL_DEF_LVL3_TOKEN_SIZE * tokens_k * IGZIP_K;
}

/* Text (printable ASCII, tabs, newlines) in at least GZ_TEXT_PERMILLE of a sample of the block. */
static bool
gz_looks_like_text(const uint8_t *p, size_t len)
{
  size_t n = 0, text = 0;
  for (size_t i = 0; i < len; i += GZ_TEXT_STRIDE, n++)
    text += (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\t' || p[i] == '\r';
  return n > 0 && text * 1000 >= n * GZ_TEXT_PERMILLE;
}

static gz_ctx_t *
gz_ctx_new(gz_backend_t be)
{
  gz_ctx_t *c = xcalloc(1, sizeof(*c));
  if (be.isal) {
    int top = be.text_level > be.level ? be.text_level : be.level;
    c->level_buf = xmalloc(isal_level_buf_size(top, be.tokens_k));
  } else {
    c->ld = libdeflate_alloc_compressor(be.level);
    if (c->ld == NULL)
      abort();
  }
  return c;
}

static void
gz_ctx_free(gz_ctx_t *c)
{
  if (c == NULL)
    return;
  free(c->level_buf);
  if (c->ld)
    libdeflate_free_compressor(c->ld);
  free(c);
}

static void
gz_job_reserve(gz_job_t *j, size_t need)
{
  if (j->out_cap < need) {
    free(j->out);
    j->out = xmalloc(need);
    j->out_cap = need;
  }
}

/* libdeflate: the block as a whole gzip member. */
static void
gz_compress_ld(gz_ctx_t *c, gz_job_t *j)
{
  gz_job_reserve(j, libdeflate_gzip_compress_bound(c->ld, j->in_len));
  j->out_len = libdeflate_gzip_compress(c->ld, j->in, j->in_len, j->out, j->out_cap);
  j->ret = j->out_len == 0 ? -1 : 0;
}

/* ISA-L: the block as raw deflate, ending on a byte boundary (sync flush) unless it is the last
 * one, which carries the final-block bit. */
static void
gz_compress_isal(gz_ctx_t *c, gz_backend_t be, gz_job_t *j)
{
  struct isal_zstream *s = &c->s;

  gz_job_reserve(j, j->in_len + j->in_len / 8 + 4096);
  isal_deflate_init(s);
  s->level = (uint32_t)j->level;
  s->level_buf = c->level_buf;
  s->level_buf_size = isal_level_buf_size(j->level, be.tokens_k);
  s->gzip_flag = IGZIP_DEFLATE;
  if (j->dict_len > 0 && isal_deflate_set_dict(s, j->dict, (uint32_t)j->dict_len) != COMP_OK) {
    j->ret = -1;
    return;
  }
  s->next_in = j->in;
  s->avail_in = (uint32_t)j->in_len;
  s->end_of_stream = j->last ? 1 : 0;
  s->flush = j->last ? NO_FLUSH : SYNC_FLUSH;
  s->next_out = j->out;
  s->avail_out = (uint32_t)j->out_cap;
  for (;;) {
    int ret = isal_deflate(s);
    if (ret != COMP_OK) {
      j->ret = ret;
      return;
    }
    bool flushed = s->avail_in == 0 && s->avail_out > 0 &&
                   (j->last ? s->internal_state.state == ZSTATE_END
                            : s->internal_state.state == ZSTATE_NEW_HDR);
    if (flushed)
      break;
    if (s->avail_out == 0) { /* incompressible data expanded: grow and go on */
      size_t used = j->out_cap;
      j->out_cap *= 2;
      j->out = xrealloc(j->out, j->out_cap);
      s->next_out = j->out + used;
      s->avail_out = (uint32_t)(j->out_cap - used);
    }
  }
  j->out_len = j->out_cap - s->avail_out;
  j->ret = 0;
}

static void
gz_compress_job(gz_ctx_t *c, gz_backend_t be, gz_job_t *j)
{
  if (j->ld)
    gz_compress_ld(c, j);
  else
    gz_compress_isal(c, be, j);
}

/* A job is compressed: its input buffer goes back to the pool (mu held). */
static void
gz_job_done(gz_enc_t *g, gz_job_t *j)
{
  j->state = JOB_DONE;
  g->pool[g->npool++] = j->in;
  j->in = NULL;
}

static void *
gz_worker(void *arg)
{
  gz_enc_t *g = arg;
  gz_ctx_t *c = gz_ctx_new(g->be);

  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (!g->stop && g->claim_seq == g->fill_seq)
      pthread_cond_wait(&g->work_cv, &g->mu);
    if (g->claim_seq == g->fill_seq)
      break; /* stopping and nothing left */
    gz_job_t *j = &g->jobs[g->claim_seq % g->njobs];
    g->claim_seq++;
    j->state = JOB_BUSY;
    pthread_mutex_unlock(&g->mu);
    gz_compress_job(c, g->be, j);
    pthread_mutex_lock(&g->mu);
    gz_job_done(g, j);
    pthread_cond_broadcast(&g->done_cv);
  }
  pthread_mutex_unlock(&g->mu);
  gz_ctx_free(c);
  return NULL;
}

/* The gzip trailer of the ISA-L member, after its final block. */
static int
gz_member_close(gz_enc_t *g, sw_error_t *err)
{
  uint8_t trailer[8];

  for (int i = 0; i < 4; i++) {
    trailer[i] = (uint8_t)(g->member_crc >> (8 * i));
    trailer[4 + i] = (uint8_t)(g->member_size >> (8 * i));
  }
  g->member_open = false;
  return g->out(g->out_arg, trailer, sizeof(trailer), err);
}

static int
gz_emit(gz_enc_t *g, gz_job_t *j, sw_error_t *err)
{
  if (j->ret != 0)
    return sw_error(err, 0, "gzip: deflate failed (error %d)", j->ret);
  if (!j->ld && !g->member_open) {
    /* No name, no mtime (reproducible), OS "unknown" as Go's compress/gzip writes. */
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    if (g->out(g->out_arg, hdr, sizeof(hdr), err) < 0)
      return -1;
    g->member_open = true; /* the only one: member_crc/size cover the whole stream */
  }
  if (g->out(g->out_arg, j->out, j->out_len, err) < 0)
    return -1;
  if (!j->ld && j->last && gz_member_close(g, err) < 0)
    return -1;
  j->in_len = 0;
  j->state = JOB_FREE;
  return 0;
}

/* With mu held: compress the next queued job on the main thread if there is one (help rather
 * than sleep), else wait for a worker to finish one. */
static void
gz_help_or_wait(gz_enc_t *g)
{
  if (g->claim_seq < g->fill_seq) {
    gz_job_t *mine = &g->jobs[g->claim_seq % g->njobs];
    g->claim_seq++;
    mine->state = JOB_BUSY;
    pthread_mutex_unlock(&g->mu);
    gz_compress_job(g->main_ctx, g->be, mine);
    pthread_mutex_lock(&g->mu);
    gz_job_done(g, mine);
  } else {
    pthread_cond_wait(&g->done_cv, &g->mu);
  }
}

/* Write out, in order, the finished jobs; with wait_until, block (helping with compression
 * meanwhile) until write_seq reaches it. */
static int
gz_collect(gz_enc_t *g, uint64_t wait_until, sw_error_t *err)
{
  for (;;) {
    pthread_mutex_lock(&g->mu);
    gz_job_t *j = g->write_seq < g->fill_seq ? &g->jobs[g->write_seq % g->njobs] : NULL;
    if (j == NULL || (j->state != JOB_DONE && g->write_seq >= wait_until)) {
      pthread_mutex_unlock(&g->mu);
      return 0;
    }
    if (j->state != JOB_DONE) {
      gz_help_or_wait(g);
      pthread_mutex_unlock(&g->mu);
      continue;
    }
    pthread_mutex_unlock(&g->mu);
    if (gz_emit(g, j, err) < 0)
      return -1;
    g->write_seq++;
  }
}

static void
gz_start_threads(gz_enc_t *g)
{
  g->threads = xcalloc((size_t)g->nthreads, sizeof(pthread_t));
  for (int i = 0; i < g->nthreads; i++) {
    if (pthread_create(&g->threads[i], NULL, gz_worker, g) != 0)
      break; /* fewer workers; main compresses the rest itself */
    g->started++;
  }
}

/* An input buffer for job j, the one main fills next (its slot is written out already). While
 * the pool is empty, help compress a queued block, or wait for a worker to finish one. */
static void
gz_acquire_in(gz_enc_t *g, gz_job_t *j)
{
  pthread_mutex_lock(&g->mu);
  while (g->npool == 0)
    gz_help_or_wait(g);
  j->in = g->pool[--g->npool];
  pthread_mutex_unlock(&g->mu);
}

static int
gz_submit(gz_enc_t *g, bool last, sw_error_t *err)
{
  gz_job_t *j = &g->jobs[g->fill_seq % g->njobs];

  j->last = last;
  j->ld = !g->be.isal;
  j->level = g->be.level;
  if (g->be.text_level > 0 && gz_looks_like_text(j->in, j->in_len))
    j->level = g->be.text_level;
  j->dict_len = j->ld ? 0 : g->tail_len;
  memcpy(j->dict, g->tail, j->dict_len);
  if (!j->ld) { /* in stream order, here: the input buffer may be reused once compressed */
    g->member_crc = crc32_gzip_refl(g->member_crc, j->in, j->in_len);
    g->member_size += (uint32_t)j->in_len;
  }
  if (j->in_len >= GZ_DICT) {
    memcpy(g->tail, j->in + j->in_len - GZ_DICT, GZ_DICT);
    g->tail_len = GZ_DICT;
  }
  /* Small streams (one block) and single-threaded mode compress inline: no thread start-up.
   * Serial mode too, once the workers' jobs are written (the output stays in order). */
  if (g->serial && g->write_seq != g->fill_seq && gz_collect(g, g->fill_seq, err) < 0)
    return -1;
  if (g->nthreads <= 1 || g->serial || (last && g->started == 0 && g->write_seq == g->fill_seq)) {
    gz_compress_job(g->main_ctx, g->be, j);
    pthread_mutex_lock(&g->mu); /* workers may exist (serial mode after threads) */
    gz_job_done(g, j);
    g->fill_seq++;
    g->claim_seq++;
    pthread_mutex_unlock(&g->mu);
    if (gz_emit(g, j, err) < 0)
      return -1;
    g->write_seq++;
    return 0;
  }
  if (g->started == 0 && g->threads == NULL)
    gz_start_threads(g);
  pthread_mutex_lock(&g->mu);
  j->state = JOB_READY;
  g->fill_seq++;
  pthread_cond_signal(&g->work_cv);
  pthread_mutex_unlock(&g->mu);
  /* The next slot must be free before main fills it. */
  uint64_t need = g->fill_seq + 1 > g->njobs ? g->fill_seq + 1 - g->njobs : 0;
  return gz_collect(g, last ? g->fill_seq : need, err);
}

static sw_codec_enc_t *
gz_enc_new(int level, int threads, sw_codec_out_fn out, void *out_arg)
{
  gz_enc_t *g = xcalloc(1, sizeof(*g));

  g->be = gz_levels[level < 0 ? 1 : level > 9 ? 9 : level];
  g->nthreads = threads;
  g->out = out;
  g->out_arg = out_arg;
  g->njobs = threads <= 1 ? 1 : (size_t)threads * GZ_JOBS_PER_THREAD + 1;
  g->jobs = xcalloc(g->njobs, sizeof(gz_job_t));
  for (size_t i = 0; i < g->njobs; i++)
    g->jobs[i].dict = xmalloc(GZ_DICT);
  size_t nin = threads <= 1 ? 1 : (size_t)threads * GZ_IN_PER_THREAD + 1;
  g->pool = xcalloc(nin, sizeof(uint8_t *));
  for (size_t i = 0; i < nin; i++)
    g->pool[g->npool++] = xmalloc(GZ_BLOCK);
  g->tail = xmalloc(GZ_DICT);
  g->main_ctx = gz_ctx_new(g->be);
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->work_cv, NULL);
  pthread_cond_init(&g->done_cv, NULL);
  return (sw_codec_enc_t *)g;
}

static void
gz_set_serial(sw_codec_enc_t *e, bool serial)
{
  ((gz_enc_t *)e)->serial = serial;
}

static int
gz_enc_write(sw_codec_enc_t *e, const void *data, size_t len, sw_error_t *err)
{
  gz_enc_t *g = (gz_enc_t *)e;
  const uint8_t *p = data;

  g->total += len;
  while (len > 0) {
    gz_job_t *j = &g->jobs[g->fill_seq % g->njobs];
    if (j->in == NULL)
      gz_acquire_in(g, j);
    size_t n = GZ_BLOCK - j->in_len;
    if (n > len)
      n = len;
    memcpy(j->in + j->in_len, p, n);
    j->in_len += n;
    p += n;
    len -= n;
    if (j->in_len == GZ_BLOCK && gz_submit(g, false, err) < 0)
      return -1;
  }
  return 0;
}

static int
gz_enc_finish(sw_codec_enc_t *e, sw_error_t *err)
{
  gz_enc_t *g = (gz_enc_t *)e;

  /* libdeflate members: an empty last block adds nothing, unless it is the only one. ISA-L: the
   * last block (empty or not) carries the final-block bit. */
  gz_job_t *j = &g->jobs[g->fill_seq % g->njobs];
  if (!g->be.isal && j->in_len == 0 && g->total > 0)
    return gz_collect(g, g->fill_seq, err);
  if (j->in == NULL)
    gz_acquire_in(g, j);
  return gz_submit(g, true, err);
}

static void
gz_enc_free(sw_codec_enc_t *e)
{
  gz_enc_t *g = (gz_enc_t *)e;
  if (g == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  g->stop = true;
  /* Abandoned jobs (an error on the way) are dropped rather than compressed. */
  g->fill_seq = g->claim_seq;
  pthread_cond_broadcast(&g->work_cv);
  pthread_mutex_unlock(&g->mu);
  for (int i = 0; i < g->started; i++)
    pthread_join(g->threads[i], NULL);
  free(g->threads);
  for (size_t i = 0; i < g->njobs; i++) {
    free(g->jobs[i].in);
    free(g->jobs[i].dict);
    free(g->jobs[i].out);
  }
  free(g->jobs);
  for (size_t i = 0; i < g->npool; i++)
    free(g->pool[i]);
  free(g->pool);
  free(g->tail);
  gz_ctx_free(g->main_ctx);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->work_cv);
  pthread_cond_destroy(&g->done_cv);
  free(g);
}

/* ------------------------------------------------------------------------------------------ */
/* gzip decoder: ISA-L inflate, any number of members                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  struct inflate_state st;
  bool in_member;
  bool any_member;
} gz_dec_t;

static sw_codec_dec_t *
gz_dec_new(void)
{
  return (sw_codec_dec_t *)xcalloc(1, sizeof(gz_dec_t));
}

static void
gz_dec_free(sw_codec_dec_t *d)
{
  free(d);
}

static const char *
isal_inflate_strerror(int ret)
{
  switch (ret) {
  case ISAL_INVALID_BLOCK:
    return "invalid deflate block";
  case ISAL_INVALID_SYMBOL:
    return "invalid deflate symbol";
  case ISAL_INVALID_LOOKBACK:
    return "invalid deflate distance";
  case ISAL_INVALID_WRAPPER:
    return "invalid gzip header or trailer";
  case ISAL_UNSUPPORTED_METHOD:
    return "unsupported compression method";
  case ISAL_INCORRECT_CHECKSUM:
    return "CRC mismatch";
  default:
    return "corrupt gzip stream";
  }
}

static int
gz_dec_run(sw_codec_dec_t *dd, const uint8_t **in, size_t *in_len, bool in_eof, uint8_t *out,
           size_t out_len, size_t *produced, bool *done, sw_error_t *err)
{
  gz_dec_t *d = (gz_dec_t *)dd;

  *produced = 0;
  *done = false;
  for (;;) {
    if (!d->in_member) {
      /* Between members: another member, zero padding (some tools pad), or the end. */
      while (*in_len > 0 && **in == 0) {
        (*in)++;
        (*in_len)--;
      }
      if (*in_len == 0) {
        if (in_eof && !d->any_member)
          return sw_error(err, 0, "gzip: empty stream");
        *done = in_eof;
        return 0;
      }
      if (**in != 0x1f)
        return sw_error(err, 0, "gzip: garbage after the end of the compressed data");
      isal_inflate_reset(&d->st);
      d->st.crc_flag = ISAL_GZIP;
      d->in_member = true;
    }
    d->st.next_in = (uint8_t *)*in;
    d->st.avail_in = (uint32_t)(*in_len > UINT32_MAX ? UINT32_MAX : *in_len);
    d->st.next_out = out + *produced;
    d->st.avail_out = (uint32_t)(out_len - *produced);
    size_t before_in = d->st.avail_in;
    int ret = isal_inflate(&d->st);
    if (ret < 0)
      return sw_error(err, 0, "gzip: %s", isal_inflate_strerror(ret));
    *in += before_in - d->st.avail_in;
    *in_len -= before_in - d->st.avail_in;
    *produced = out_len - d->st.avail_out;
    if (d->st.block_state == ISAL_BLOCK_FINISH) {
      d->in_member = false;
      d->any_member = true;
      if (*produced == out_len)
        return 0;
      continue;
    }
    if (*produced == out_len)
      return 0;
    if (*in_len == 0) {
      if (in_eof)
        return sw_error(err, 0, "gzip: unexpected end of compressed data (truncated?)");
      return 0;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* zstd                                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  ZSTD_CCtx *cctx;
  sw_codec_out_fn out;
  void *out_arg;
  uint8_t *buf;
  size_t cap;
} zs_enc_t;

static sw_codec_enc_t *
zs_enc_new(int level, int threads, sw_codec_out_fn out, void *out_arg)
{
  zs_enc_t *z = xcalloc(1, sizeof(*z));
  z->cctx = ZSTD_createCCtx();
  if (z->cctx == NULL)
    abort();
  ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
  /* Always >= 1 worker: zstd's output is then the same for any worker count. */
  ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, threads < 1 ? 1 : threads);
  z->out = out;
  z->out_arg = out_arg;
  z->cap = IO_BUF;
  z->buf = xmalloc(z->cap);
  return (sw_codec_enc_t *)z;
}

static int
zs_run(zs_enc_t *z, const void *data, size_t len, ZSTD_EndDirective mode, sw_error_t *err)
{
  ZSTD_inBuffer in = {data, len, 0};
  for (;;) {
    ZSTD_outBuffer o = {z->buf, z->cap, 0};
    size_t r = ZSTD_compressStream2(z->cctx, &o, &in, mode);
    if (ZSTD_isError(r))
      return sw_error(err, 0, "zstd: %s", ZSTD_getErrorName(r));
    if (o.pos > 0 && z->out(z->out_arg, z->buf, o.pos, err) < 0)
      return -1;
    if (mode == ZSTD_e_end ? r == 0 : in.pos == in.size)
      return 0;
  }
}

static int
zs_enc_write(sw_codec_enc_t *e, const void *data, size_t len, sw_error_t *err)
{
  return zs_run((zs_enc_t *)e, data, len, ZSTD_e_continue, err);
}

static int
zs_enc_finish(sw_codec_enc_t *e, sw_error_t *err)
{
  return zs_run((zs_enc_t *)e, NULL, 0, ZSTD_e_end, err);
}

static void
zs_enc_free(sw_codec_enc_t *e)
{
  zs_enc_t *z = (zs_enc_t *)e;
  if (z == NULL)
    return;
  ZSTD_freeCCtx(z->cctx);
  free(z->buf);
  free(z);
}

typedef struct {
  ZSTD_DStream *ds;
  size_t last_ret; /* 0 when the last frame is complete */
  bool any;
} zs_dec_t;

static sw_codec_dec_t *
zs_dec_new(void)
{
  zs_dec_t *z = xcalloc(1, sizeof(*z));
  z->ds = ZSTD_createDStream();
  if (z->ds == NULL)
    abort();
  ZSTD_initDStream(z->ds);
  return (sw_codec_dec_t *)z;
}

static void
zs_dec_free(sw_codec_dec_t *d)
{
  zs_dec_t *z = (zs_dec_t *)d;
  if (z == NULL)
    return;
  ZSTD_freeDStream(z->ds);
  free(z);
}

static int
zs_dec_run(sw_codec_dec_t *dd, const uint8_t **in, size_t *in_len, bool in_eof, uint8_t *out,
           size_t out_len, size_t *produced, bool *done, sw_error_t *err)
{
  zs_dec_t *z = (zs_dec_t *)dd;
  ZSTD_inBuffer ib = {*in, *in_len, 0};
  ZSTD_outBuffer ob = {out, out_len, 0};

  *done = false;
  while (ib.pos < ib.size && ob.pos < ob.size) {
    size_t r = ZSTD_decompressStream(z->ds, &ob, &ib);
    if (ZSTD_isError(r))
      return sw_error(err, 0, "zstd: %s", ZSTD_getErrorName(r));
    z->last_ret = r;
    z->any = true;
  }
  /* Output may still be buffered inside zstd although all input was consumed. */
  if (ib.pos == ib.size && ob.pos < ob.size && z->last_ret != 0) {
    size_t r = ZSTD_decompressStream(z->ds, &ob, &ib);
    if (ZSTD_isError(r))
      return sw_error(err, 0, "zstd: %s", ZSTD_getErrorName(r));
    z->last_ret = r;
  }
  *in += ib.pos;
  *in_len -= ib.pos;
  *produced = ob.pos;
  if (in_eof && *in_len == 0 && ob.pos < ob.size) {
    if (!z->any)
      return sw_error(err, 0, "zstd: empty stream");
    if (z->last_ret != 0)
      return sw_error(err, 0, "zstd: unexpected end of compressed data (truncated?)");
    *done = true;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* none                                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  sw_codec_out_fn out;
  void *out_arg;
  uint8_t *buf;
  size_t len;
} none_enc_t;

static sw_codec_enc_t *
none_enc_new(int level, int threads, sw_codec_out_fn out, void *out_arg)
{
  none_enc_t *n = xcalloc(1, sizeof(*n));
  n->out = out;
  n->out_arg = out_arg;
  n->buf = xmalloc(IO_BUF);
  return (sw_codec_enc_t *)n;
}

static int
none_enc_write(sw_codec_enc_t *e, const void *data, size_t len, sw_error_t *err)
{
  none_enc_t *n = (none_enc_t *)e;
  if (n->len + len > IO_BUF) {
    if (n->len > 0 && n->out(n->out_arg, n->buf, n->len, err) < 0)
      return -1;
    n->len = 0;
    if (len >= IO_BUF)
      return n->out(n->out_arg, data, len, err);
  }
  memcpy(n->buf + n->len, data, len);
  n->len += len;
  return 0;
}

static int
none_enc_finish(sw_codec_enc_t *e, sw_error_t *err)
{
  none_enc_t *n = (none_enc_t *)e;
  if (n->len > 0 && n->out(n->out_arg, n->buf, n->len, err) < 0)
    return -1;
  n->len = 0;
  return 0;
}

static void
none_enc_free(sw_codec_enc_t *e)
{
  none_enc_t *n = (none_enc_t *)e;
  if (n == NULL)
    return;
  free(n->buf);
  free(n);
}

static sw_codec_dec_t *
none_dec_new(void)
{
  return (sw_codec_dec_t *)xcalloc(1, 1);
}

static void
none_dec_free(sw_codec_dec_t *d)
{
  free(d);
}

static int
none_dec_run(sw_codec_dec_t *d, const uint8_t **in, size_t *in_len, bool in_eof, uint8_t *out,
             size_t out_len, size_t *produced, bool *done, sw_error_t *err)
{
  size_t n = *in_len < out_len ? *in_len : out_len;
  memcpy(out, *in, n);
  *in += n;
  *in_len -= n;
  *produced = n;
  *done = in_eof && *in_len == 0;
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* the codec table                                                                              */
/* ------------------------------------------------------------------------------------------ */

const sw_codec_t sw_codec_gzip = {
    .name = "gzip",
    .kind = SW_COMPRESS_GZIP,
    /* ISA-L level 2 for binaries, level 3 for text, 6K-token deflate blocks: within 10% of
     * `gzip -6` on binaries, ~385 MB/s on 2 quiet cores. Figures: ARCHITECTURE.md, "Layer
     * compression". */
    .default_level = 3,
    .min_level = 1,
    .max_level = 9,
    .oci_media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
    .docker_media_type = "application/vnd.docker.image.rootfs.diff.tar.gzip",
    .file_suffix = ".gz",
    .enc_new = gz_enc_new,
    .enc_write = gz_enc_write,
    .enc_finish = gz_enc_finish,
    .enc_free = gz_enc_free,
    .enc_set_serial = gz_set_serial,
    .dec_new = gz_dec_new,
    .dec_run = gz_dec_run,
    .dec_free = gz_dec_free,
};

const sw_codec_t sw_codec_zstd = {
    .name = "zstd",
    .kind = SW_COMPRESS_ZSTD,
    .default_level = 3,
    .min_level = 1,
    .max_level = 22,
    .oci_media_type = "application/vnd.oci.image.layer.v1.tar+zstd",
    /* Docker has no zstd type of its own; it writes the OCI one in schema2 manifests too. */
    .docker_media_type = "application/vnd.oci.image.layer.v1.tar+zstd",
    .file_suffix = ".zst",
    .enc_new = zs_enc_new,
    .enc_write = zs_enc_write,
    .enc_finish = zs_enc_finish,
    .enc_free = zs_enc_free,
    .dec_new = zs_dec_new,
    .dec_run = zs_dec_run,
    .dec_free = zs_dec_free,
};

const sw_codec_t sw_codec_none = {
    .name = "none",
    .kind = SW_COMPRESS_NONE,
    .default_level = 0,
    .min_level = 0,
    .max_level = 0,
    .oci_media_type = "application/vnd.oci.image.layer.v1.tar",
    .docker_media_type = "application/vnd.docker.image.rootfs.diff.tar",
    .file_suffix = "",
    .enc_new = none_enc_new,
    .enc_write = none_enc_write,
    .enc_finish = none_enc_finish,
    .enc_free = none_enc_free,
    .dec_new = none_dec_new,
    .dec_run = none_dec_run,
    .dec_free = none_dec_free,
};

const sw_codec_t *
sw_codec_by_name(const char *name)
{
  if (name == NULL)
    return NULL;
  if (strcmp(name, "gzip") == 0 || strcmp(name, "gz") == 0)
    return &sw_codec_gzip;
  if (strcmp(name, "zstd") == 0 || strcmp(name, "zst") == 0)
    return &sw_codec_zstd;
  if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0)
    return &sw_codec_none;
  return NULL;
}

const sw_codec_t *
sw_codec_detect(const void *buf, size_t len)
{
  const uint8_t *p = buf;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
    return &sw_codec_gzip;
  if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
    return &sw_codec_zstd;
  return &sw_codec_none;
}

const sw_codec_t *
sw_codec_from_media_type(const char *mt)
{
  static const struct {
    const char *mt;
    const sw_codec_t *c;
  } map[] = {
      {"application/vnd.oci.image.layer.v1.tar", &sw_codec_none},
      {"application/vnd.oci.image.layer.v1.tar+gzip", &sw_codec_gzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", &sw_codec_zstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", &sw_codec_none},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", &sw_codec_gzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", &sw_codec_zstd},
      {"application/vnd.docker.image.rootfs.diff.tar", &sw_codec_none},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", &sw_codec_gzip},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", &sw_codec_zstd},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", &sw_codec_gzip},
  };
  for (size_t i = 0; mt && i < SW_ARRAY_SIZE(map); i++)
    if (strcmp(mt, map[i].mt) == 0)
      return map[i].c;
  return NULL;
}

const char *
sw_codec_media_type(const sw_codec_t *c, bool docker)
{
  if (c == NULL)
    c = &sw_codec_gzip;
  return docker ? c->docker_media_type : c->oci_media_type;
}

sw_compression_t
sw_compression_default(void)
{
  return (sw_compression_t){.codec = &sw_codec_gzip, .level = 0, .threads = 0};
}

int
sw_compression_parse(const char *spec, sw_compression_t *out, sw_error_t *err)
{
  _cleanup_free_ char *name = xstrdup(spec);
  char *colon = strchr(name, ':');
  sw_compression_t c = sw_compression_default();

  if (colon)
    *colon = '\0';
  c.codec = sw_codec_by_name(name);
  if (c.codec == NULL)
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "unknown compression `%s`: use gzip, zstd or none (e.g. zstd:3)", spec);
  if (colon) {
    char *end = NULL;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || v < c.codec->min_level || v > c.codec->max_level)
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "compression `%s`: level must be a number from %d to %d", spec,
                           c.codec->min_level, c.codec->max_level);
    c.level = (int)v;
  }
  *out = c;
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* sink                                                                                         */
/* ------------------------------------------------------------------------------------------ */

struct sw_sink_s {
  const sw_codec_t *codec;
  sw_codec_enc_t *enc;
  int fd;
  sw_sha256_t *raw_hash, *out_hash;
  uint64_t raw_size, size;
  bool finished;
};

static int
default_threads(int threads)
{
  if (threads > 0)
    return threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* 0 = the codec's default. */
static int
codec_level(const sw_codec_t *c, int level)
{
  return level <= 0 ? c->default_level : level;
}

static int
sink_out(void *arg, const void *data, size_t len, sw_error_t *err)
{
  sw_sink_t *s = arg;
  if (s->codec->kind != SW_COMPRESS_NONE) /* uncompressed: the same bytes, hashed once */
    sw_sha256_update(s->out_hash, data, len);
  s->size += len;
  if (sw_write_all(s->fd, data, len) < 0)
    return sw_error(err, errno, "write compressed layer");
  return 0;
}

sw_sink_t *
sw_sink_new(const sw_compression_t *comp, int out_fd)
{
  sw_compression_t c = comp && comp->codec ? *comp : sw_compression_default();
  sw_sink_t *s = xcalloc(1, sizeof(*s));

  s->codec = c.codec;
  s->fd = out_fd;
  s->raw_hash = sw_sha256_new();
  s->out_hash = sw_sha256_new();
  s->enc = c.codec->enc_new(codec_level(c.codec, c.level), default_threads(c.threads), sink_out, s);
  return s;
}

int
sw_sink_write(sw_sink_t *s, const void *data, size_t len, sw_error_t *err)
{
  if (len == 0)
    return 0;
  sw_sha256_update(s->raw_hash, data, len);
  s->raw_size += len;
  return s->codec->enc_write(s->enc, data, len, err);
}

void
sw_sink_set_serial(sw_sink_t *s, bool serial)
{
  if (s->codec->enc_set_serial)
    s->codec->enc_set_serial(s->enc, serial);
}

int
sw_sink_finish(sw_sink_t *s, sw_sink_result_t *res, sw_error_t *err)
{
  char hex[SW_SHA256_HEX_LEN + 1];

  if (s->finished)
    return sw_error(err, 0, "compressed layer: finished twice");
  if (s->codec->enc_finish(s->enc, err) < 0)
    return -1;
  s->finished = true;
  sw_sha256_final_hex(s->raw_hash, hex);
  s->raw_hash = NULL;
  snprintf(res->diff_id, sizeof(res->diff_id), "sha256:%s", hex);
  if (s->codec->kind == SW_COMPRESS_NONE) {
    memcpy(res->digest, res->diff_id, sizeof(res->digest));
    sw_sha256_free(s->out_hash);
  } else {
    sw_sha256_final_hex(s->out_hash, hex);
    snprintf(res->digest, sizeof(res->digest), "sha256:%s", hex);
  }
  s->out_hash = NULL;
  res->size = s->size;
  res->raw_size = s->raw_size;
  return 0;
}

void
sw_sink_free(sw_sink_t *s)
{
  if (s == NULL)
    return;
  s->codec->enc_free(s->enc);
  sw_sha256_free(s->raw_hash);
  sw_sha256_free(s->out_hash);
  free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* source                                                                                       */
/* ------------------------------------------------------------------------------------------ */

struct sw_source_s {
  int fd, tee_fd;
  const sw_codec_t *codec;
  sw_codec_dec_t *dec;
  uint8_t *inbuf;
  const uint8_t *in;
  size_t in_len;
  bool in_eof;
  uint8_t *outbuf;
  const uint8_t *pending; /* for sw_source_read: the rest of the last block */
  size_t pending_len;
  sw_sha256_t *raw_hash, *out_hash;
  uint64_t raw_size, out_size;
  bool done;
  sw_sink_result_t result;
};

sw_source_t *
sw_source_new(int in_fd, const sw_codec_t *codec, int tee_fd)
{
  sw_source_t *s = xcalloc(1, sizeof(*s));
  s->fd = in_fd;
  s->tee_fd = tee_fd;
  s->codec = codec;
  s->inbuf = xmalloc(IO_BUF);
  s->raw_hash = sw_sha256_new();
  s->out_hash = sw_sha256_new();
  return s;
}

void
sw_source_skip_hash(sw_source_t *s)
{
  sw_sha256_free(s->raw_hash);
  sw_sha256_free(s->out_hash);
  s->raw_hash = s->out_hash = NULL;
}

/* Refill the input buffer (only when it is empty). */
static int
source_fill(sw_source_t *s, sw_error_t *err)
{
  size_t got = 0;

  /* The first fill reads at least 4 bytes (unless the input is shorter) for the magic. */
  size_t want = s->codec ? 1 : 4;
  while (got < want) {
    ssize_t n = read(s->fd, s->inbuf + got, IO_BUF - got);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return sw_error(err, errno, "read layer");
    }
    if (n == 0) {
      s->in_eof = true;
      break;
    }
    got += (size_t)n;
  }
  if (got > 0) {
    if (s->raw_hash)
      sw_sha256_update(s->raw_hash, s->inbuf, got);
    s->raw_size += got;
    if (s->tee_fd >= 0 && sw_write_all(s->tee_fd, s->inbuf, got) < 0)
      return sw_error(err, errno, "write copy of layer");
  }
  s->in = s->inbuf;
  s->in_len = got;
  if (s->codec == NULL)
    s->codec = sw_codec_detect(s->inbuf, got);
  if (s->dec == NULL && s->codec->kind != SW_COMPRESS_NONE) {
    s->dec = s->codec->dec_new();
    s->outbuf = xmalloc(IO_BUF);
  }
  return 0;
}

static void
source_end(sw_source_t *s)
{
  char hex[SW_SHA256_HEX_LEN + 1];
  s->done = true;
  s->result.size = s->raw_size;
  s->result.raw_size = s->out_size;
  if (s->raw_hash == NULL) /* sw_source_skip_hash */
    return;
  sw_sha256_final_hex(s->raw_hash, hex);
  s->raw_hash = NULL;
  snprintf(s->result.digest, sizeof(s->result.digest), "sha256:%s", hex);
  if (s->codec == NULL || s->codec->kind == SW_COMPRESS_NONE) {
    memcpy(s->result.diff_id, s->result.digest, sizeof(s->result.diff_id));
    sw_sha256_free(s->out_hash);
  } else {
    sw_sha256_final_hex(s->out_hash, hex);
    snprintf(s->result.diff_id, sizeof(s->result.diff_id), "sha256:%s", hex);
  }
  s->out_hash = NULL;
  s->result.size = s->raw_size;
  s->result.raw_size = s->out_size;
}

ssize_t
sw_source_read_block(sw_source_t *s, const void **data, sw_error_t *err)
{
  while (!s->done) {
    if (s->in_len == 0 && !s->in_eof && source_fill(s, err) < 0)
      return -1;
    if (s->codec->kind == SW_COMPRESS_NONE) {
      if (s->in_len == 0) {
        if (s->in_eof)
          source_end(s);
        continue;
      }
      size_t n = s->in_len;
      *data = s->in;
      s->in_len = 0;
      s->out_size += n; /* the raw hash covers these very bytes */
      return (ssize_t)n;
    }
    size_t produced = 0;
    bool done = false;
    if (s->codec->dec_run(s->dec, &s->in, &s->in_len, s->in_eof, s->outbuf, IO_BUF, &produced,
                          &done, err) < 0)
      return -1;
    if (produced > 0) {
      if (s->out_hash)
        sw_sha256_update(s->out_hash, s->outbuf, produced);
      s->out_size += produced;
      *data = s->outbuf;
      return (ssize_t)produced;
    }
    if (done)
      source_end(s);
  }
  return 0;
}

ssize_t
sw_source_read(sw_source_t *s, void *buf, size_t len, sw_error_t *err)
{
  if (s->pending_len == 0) {
    const void *p;
    ssize_t n = sw_source_read_block(s, &p, err);
    if (n <= 0)
      return n;
    s->pending = p;
    s->pending_len = (size_t)n;
  }
  size_t n = s->pending_len < len ? s->pending_len : len;
  memcpy(buf, s->pending, n);
  s->pending += n;
  s->pending_len -= n;
  return (ssize_t)n;
}

int
sw_source_drain(sw_source_t *s, sw_error_t *err)
{
  const void *p;
  ssize_t n;
  s->pending_len = 0;
  while ((n = sw_source_read_block(s, &p, err)) > 0)
    ;
  return n < 0 ? -1 : 0;
}

const sw_codec_t *
sw_source_codec(sw_source_t *s)
{
  return s->codec;
}

int
sw_source_result(sw_source_t *s, sw_sink_result_t *res, sw_error_t *err)
{
  if (!s->done)
    return sw_error(err, 0, "layer: digest asked before the end of the stream");
  *res = s->result;
  return 0;
}

void
sw_source_free(sw_source_t *s)
{
  if (s == NULL)
    return;
  if (s->dec)
    s->codec->dec_free(s->dec);
  free(s->inbuf);
  free(s->outbuf);
  sw_sha256_free(s->raw_hash);
  sw_sha256_free(s->out_hash);
  free(s);
}
