/* slipway: the smaller blob of an imported layer, made when an image ships it.
 *
 * `slipway import` spends its time unpacking the tar; compressing it at gzip -6 as well would
 * more than double that (libdeflate 6 is ~4.4 CPU s for the 275 MB base on 2 cores, ISA-L at the
 * build's level ~1.3). Yet a base is shipped in every image built on it, so its blob should be
 * small. So import stores the layer with the build's fast codec and records a reblob row ("an
 * image that ships this diffID gets a blob at COMPRESSION"), as Docker stores an import
 * uncompressed and compresses at push. A build whose final image ships such a layer starts the
 * recompression when it starts, on one background thread at SCHED_IDLE (the codec runs serially
 * on it: one core at most): it takes only the CPU the build leaves idle (apt, pip and the
 * network leave most of a cold build's). If the commit must wait, the job gets normal priority
 * and all CPUs. The commit waits for it, then uses the smaller blob; later
 * builds find it recorded and use it at once. The imported image itself keeps its fast blob (its
 * manifest, hence its digest, never changes). The codec's output is deterministic, so every
 * store makes the same smaller blob from the same tar.
 *
 * The source is the stored fast blob, decompressed; the diffID of what is recompressed must
 * match, so a damaged blob is an error, never a silently different layer. */
#include "store_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

typedef struct {
  sw_layer_desc_t src; /* the stored blob */
  char comp_spec[32];  /* "gzip:6" */
  int rc;              /* 0 made, -1 failed (err) */
  sw_error_t err;
  sw_layer_desc_t made;
} job_t;

struct sw_reblob_s {
  sw_store_t *s;
  job_t *jobs;
  size_t n;
  pthread_t thread;
  bool running; /* thread started and not joined yet */
  atomic_bool cancel;
  atomic_bool urgent; /* the commit waits: all CPUs, normal priority */
};

int
sw_reblob_mark(sw_store_t *s, const char *diff_id, const char *comp_spec, sw_error_t *err)
{
  sw_compression_t c;
  if (sw_compression_parse(comp_spec, &c, err) < 0)
    return -1;
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s, "INSERT OR IGNORE INTO reblob (diff_id, compression, digest) VALUES (?, ?, '')", err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, comp_spec, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "record reblob");
  }
  return sw_db_end(s, r == 0, err);
}

/* 1 and the row's compression (and its blob's layer in *have, digest "" if not made yet or gone)
 * if diff_id is marked, 0 if not. */
static int
lookup(sw_store_t *s, const char *diff_id, char comp_spec[32], sw_layer_desc_t *have,
       sw_error_t *err)
{
  _cleanup_free_ char *digest = NULL;
  sw_db_lock(s);
  int r;
  {
    _cleanup_stmt_ sqlite3_stmt *st =
        sw_db_prepare(s, "SELECT compression, digest FROM reblob WHERE diff_id = ?", err);
    r = st ? 0 : -1;
    if (st) {
      sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        snprintf(comp_spec, 32, "%s", (const char *)sqlite3_column_text(st, 0));
        digest = xstrdup((const char *)sqlite3_column_text(st, 1));
        r = 1;
      } else if (rc != SQLITE_DONE) {
        r = sw_db_error(s, err, "reblob lookup");
      }
    }
  }
  sw_db_unlock(s);
  memset(have, 0, sizeof(*have));
  if (r == 1 && digest[0] && sw_layer_get_by_digest(s, digest, have, err) < 0)
    return -1;
  return r;
}

/* Decompress the stored blob and compress it again with comp into a file under ROOT/tmp; check
 * the diffID; store the blob, then its layer row and the reblob row's digest in one transaction.
 * In the background (urgent != NULL) the codec runs serially on this thread until *urgent. */
static int
make(sw_store_t *s, const sw_layer_desc_t *src, const char *comp_spec, const atomic_bool *cancel,
     const atomic_bool *urgent, sw_layer_desc_t *made, sw_error_t *err)
{
  sw_compression_t comp;
  if (sw_compression_parse(comp_spec, &comp, err) < 0)
    return -1;
  _cleanup_close_ int in = sw_blob_open(s, src->digest, NULL, err);
  if (in < 0)
    return -1;
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int out = sw_store_mkstemp(s, "reblob-", &tmp, err);
  if (out < 0)
    return -1;
  _cleanup_source_ sw_source_t *source =
      sw_source_new(in, sw_codec_from_media_type(src->media_type), -1);
  _cleanup_sink_ sw_sink_t *sink = sw_sink_new(&comp, out);
  sw_source_skip_hash(source);  /* the sink hashes the same bytes (diffID) */
  bool serial = urgent != NULL; /* same bytes either way */
  sw_sink_set_serial(sink, serial);
  sw_sink_result_t res;
  int r = 0;
  for (;;) {
    if (serial && atomic_load(urgent))
      sw_sink_set_serial(sink, serial = false);
    const void *data;
    ssize_t n = sw_source_read_block(source, &data, err);
    if (n < 0 || (n > 0 && sw_sink_write(sink, data, (size_t)n, err) < 0)) {
      r = -1;
      break;
    }
    if (n == 0)
      break;
    if (atomic_load(cancel)) {
      r = sw_error(err, 0, "cancelled");
      break;
    }
  }
  if (r == 0)
    r = sw_sink_finish(sink, &res, err);
  if (r == 0 && strcmp(res.diff_id, src->diff_id) != 0)
    r = sw_error(err, 0,
                 "blob %s no longer holds layer %s (it decompresses to %s): remove the image "
                 "that uses it (slipway rmi) and import it again",
                 src->digest, src->diff_id, res.diff_id);
  if (r < 0) {
    unlink(tmp);
    return sw_error_wrap(err, "recompressing layer %s at %s", src->diff_id, comp_spec);
  }
  memset(made, 0, sizeof(*made));
  snprintf(made->diff_id, sizeof(made->diff_id), "%s", res.diff_id);
  snprintf(made->digest, sizeof(made->digest), "%s", res.digest);
  snprintf(made->media_type, sizeof(made->media_type), "%s",
           sw_codec_media_type(comp.codec, false));
  made->size = (int64_t)res.size;
  made->tar_size = (int64_t)res.raw_size;
  if (sw_blob_adopt(s, tmp, made->digest, err) < 0 || sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_layer_record(s, made, 0, err) < 0
          ? NULL
          : sw_db_prepare(s, "UPDATE reblob SET digest = ? WHERE diff_id = ?", err);
  r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, made->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, made->diff_id, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "record reblob");
  }
  return sw_db_end(s, r == 0, err);
}

static void *
worker(void *arg)
{
  sw_reblob_t *r = arg;
  /* Only the CPU nobody else wants (the codec runs serially on this thread until urgent). */
  struct sched_param sp = {.sched_priority = 0};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
  for (size_t i = 0; i < r->n; i++) {
    job_t *j = &r->jobs[i];
    double t0 = sw_now();
    sw_debug("reblob: layer %s to %s in the background (SCHED_IDLE)", j->src.diff_id, j->comp_spec);
    j->rc = make(r->s, &j->src, j->comp_spec, &r->cancel, &r->urgent, &j->made, &j->err);
    sw_debug("reblob: layer %s: %s after %.2fs", j->src.diff_id,
             j->rc == 0 ? j->made.digest : j->err->msg, sw_now() - t0);
  }
  return NULL;
}

sw_reblob_t *
sw_reblob_start(sw_store_t *s, const sw_image_t *img)
{
  sw_reblob_t *r = xcalloc(1, sizeof(*r));
  r->s = s;
  for (size_t i = 0; img && i < img->n_layers; i++) {
    const sw_layer_desc_t *l = &img->layers[i];
    char spec[32];
    sw_layer_desc_t have;
    sw_error_t e = NULL;
    if (l->digest[0] == '\0' || lookup(s, l->diff_id, spec, &have, &e) != 1 || have.digest[0]) {
      sw_error_release(&e); /* a lookup failure is reported again by sw_reblob_apply */
      continue;
    }
    r->jobs = xrealloc(r->jobs, (r->n + 1) * sizeof(*r->jobs));
    job_t *j = &r->jobs[r->n++];
    memset(j, 0, sizeof(*j));
    j->src = *l;
    snprintf(j->comp_spec, sizeof(j->comp_spec), "%s", spec);
  }
  if (r->n > 0 && pthread_create(&r->thread, NULL, worker, r) == 0)
    r->running = true;
  return r;
}

static void
join(sw_reblob_t *r)
{
  if (r && r->running) {
    pthread_join(r->thread, NULL);
    r->running = false;
  }
}

int
sw_reblob_apply(sw_store_t *s, sw_reblob_t *r, sw_image_t *img, double *waited, sw_error_t *err)
{
  if (waited)
    *waited = 0;
  for (size_t i = 0; i < img->n_layers; i++) {
    sw_layer_desc_t *l = &img->layers[i];
    char spec[32];
    sw_layer_desc_t have;
    int f = l->digest[0] ? lookup(s, l->diff_id, spec, &have, err) : 0;
    if (f < 0)
      return -1;
    if (f == 0)
      continue;
    if (have.digest[0] == '\0' && r && r->running) {
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      /* Now the build waits for it: normal priority (SCHED_IDLE could starve it for minutes on
       * a machine kept busy by others), then all CPUs (its codec threads start from it, so
       * they inherit that priority). */
      struct sched_param sp = {.sched_priority = 0};
      pthread_setschedparam(r->thread, SCHED_OTHER, &sp);
      atomic_store(&r->urgent, true);
      join(r);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      if (waited)
        *waited += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
      for (size_t k = 0; k < r->n; k++)
        if (strcmp(r->jobs[k].src.diff_id, l->diff_id) == 0 && r->jobs[k].rc < 0) {
          *err = steal_ptr(&r->jobs[k].err);
          return -1;
        }
      if (lookup(s, l->diff_id, spec, &have, err) < 0)
        return -1;
    }
    /* Not started (or its blob was pruned since): made now, at normal priority. */
    if (have.digest[0] == '\0') {
      atomic_bool never = false;
      sw_debug("reblob: layer %s to %s now", l->diff_id, spec);
      if (make(s, l, spec, &never, NULL, &have, err) < 0)
        return -1;
    }
    *l = have;
  }
  return 0;
}

void
sw_reblob_free(sw_reblob_t *r)
{
  if (r == NULL)
    return;
  atomic_store(&r->cancel, true);
  join(r);
  for (size_t i = 0; i < r->n; i++)
    sw_error_release(&r->jobs[i].err);
  free(r->jobs);
  free(r);
}
