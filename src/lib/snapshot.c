/* slipway: layers and snapshots. A layer row ties a diffID to a blob (digest, size, media type)
 * and to the snapshot ROOT/snapshots/<diffID hex>, the extracted layer in overlay format. The
 * row is written only after the blob and the snapshot are in place. A committed build step's
 * snapshot is its renamed upper dir, recorded with its diffID in a snapshot row: its blob is
 * made only when an image that uses it is committed (sw_layer_make_blob); imported, loaded and
 * pulled layers are unpacked in the same single pass that stores and hashes them (sw_layer_apply's
 * producer thread feeds the compressor and the hashes while the caller's thread creates the files),
 * so the first build or run pays nothing. A layer that cannot be unpacked is still stored and is
 * unpacked on first use (sw_snapshot_ensure), which reports why; that is also the fallback for a
 * missing snapshot. */
#include "layer_apply.h"
#include "layer_write.h"
#include "store_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

char *
sw_snapshot_path(sw_store_t *s, const char *diff_id)
{
  const char *hex = sw_digest_hex(diff_id);
  return xasprintf("%s/snapshots/%s", s->root, hex ? hex : "invalid");
}

static void
row_to_desc(sqlite3_stmt *st, sw_layer_desc_t *out)
{
  memset(out, 0, sizeof(*out));
  snprintf(out->digest, sizeof(out->digest), "%s", (const char *)sqlite3_column_text(st, 0));
  snprintf(out->diff_id, sizeof(out->diff_id), "%s", (const char *)sqlite3_column_text(st, 1));
  out->size = sqlite3_column_int64(st, 2);
  snprintf(out->media_type, sizeof(out->media_type), "%s",
           (const char *)sqlite3_column_text(st, 3));
  out->tar_size = sqlite3_column_int64(st, 4);
}

#define LAYER_COLS "digest, diff_id, size, media_type, tar_size"

static int
layer_query(sw_store_t *s, const char *sql, const char *a, const char *b, sw_layer_desc_t *out,
            sw_error_t *err)
{
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
      sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      row_to_desc(st, out);
      r = 1;
    } else {
      r = rc == SQLITE_DONE ? 0 : sw_db_error(s, err, "layer lookup");
    }
  }
  sw_db_unlock(s);
  return r;
}

int
sw_layer_get(sw_store_t *s, const char *diff_id, const char *media_type, sw_layer_desc_t *out,
             sw_error_t *err)
{
  return layer_query(s,
                     "SELECT " LAYER_COLS " FROM layers WHERE diff_id = ?1 "
                     "ORDER BY media_type = ?2 DESC, created LIMIT 1",
                     diff_id, media_type ? media_type : SW_MT_OCI_LAYER_GZIP, out, err);
}

int
sw_layer_get_by_digest(sw_store_t *s, const char *digest, sw_layer_desc_t *out, sw_error_t *err)
{
  return layer_query(s, "SELECT " LAYER_COLS " FROM layers WHERE digest = ?", digest, NULL, out,
                     err);
}

int
sw_layer_record(sw_store_t *s, const sw_layer_desc_t *l, int64_t snapshot_size, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s,
      "INSERT OR IGNORE INTO layers (digest, diff_id, size, media_type, tar_size, created) "
      "VALUES (?,?,?,?,?,?)",
      err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, l->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->diff_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, l->size);
    sqlite3_bind_text(st, 4, l->media_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, snapshot_size ? snapshot_size : l->tar_size);
    sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "record layer");
  }
  return sw_db_end(s, r == 0, err);
}

/* Rename dir (complete) to the snapshot of diff_id. A directory already there is never
 * adopted: it may be what a killed process left (issue 18: a half-deleted snapshot kept in place
 * of a complete one lost files in every later image). dir takes its place in one atomic exchange
 * and the old one goes to the trash, not removed at once: a build or a container may use it as
 * a lower dir. */
int
sw_snapshot_commit(sw_store_t *s, const char *dir, const char *diff_id, sw_error_t *err)
{
  _cleanup_free_ char *dst = sw_snapshot_path(s, diff_id);
  for (int tries = 0; tries < 8; tries++) {
    if (rename(dir, dst) == 0)
      return 0;
    if (errno != EEXIST && errno != ENOTEMPTY)
      break;
    if (renameat2(AT_FDCWD, dir, AT_FDCWD, dst, RENAME_EXCHANGE) == 0)
      return sw_store_trash_at(s, AT_FDCWD, dir, err);
    if (errno == ENOENT)
      continue; /* dst went away meanwhile: plain rename again */
    if (errno != EINVAL && errno != ENOSYS)
      break;
    /* No RENAME_EXCHANGE on this filesystem: trash it, then rename (dst is missing for a
     * moment; a reader then unpacks it from its blob or retries). */
    if (sw_store_trash_at(s, AT_FDCWD, dst, err) < 0)
      return -1;
  }
  return sw_error(err, errno, "rename `%s` to `%s`", dir, dst);
}

/* Is the snapshot of diff_id in place and recorded (a layer or snapshot row names it)? A
 * directory without a row may be a leftover of a killed process: not trusted. */
static bool
snapshot_recorded(sw_store_t *s, const char *diff_id)
{
  _cleanup_free_ char *path = sw_snapshot_path(s, diff_id);
  sw_error_t ignored = NULL;
  if (access(path, F_OK) < 0)
    return false;
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s,
                    "SELECT 1 FROM layers WHERE diff_id = ?1 "
                    "UNION ALL SELECT 1 FROM snapshots WHERE diff_id = ?1 LIMIT 1",
                    &ignored);
  bool found = false;
  if (st) {
    sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sw_db_unlock(s);
  sw_error_release(&ignored);
  return found;
}

static void
fill_desc(sw_layer_desc_t *out, const sw_layer_info_t *info, const char *media_type)
{
  memset(out, 0, sizeof(*out));
  snprintf(out->diff_id, sizeof(out->diff_id), "%s", info->diff_id);
  snprintf(out->digest, sizeof(out->digest), "%s", info->digest);
  snprintf(out->media_type, sizeof(out->media_type), "%s",
           media_type ? media_type : info->media_type);
  out->size = (int64_t)info->size;
  out->tar_size = (int64_t)info->tar_size;
}

/* Blob file at tmp and snapshot dir are complete: move both in and write the row. */
static int
commit_layer(sw_store_t *s, const char *tmp, const char *dir, const sw_layer_desc_t *l,
             sw_error_t *err)
{
  if (sw_blob_adopt(s, tmp, l->digest, err) < 0)
    return -1;
  if (sw_snapshot_commit(s, dir, l->diff_id, err) < 0)
    return -1;
  return sw_layer_record(s, l, 0, err);
}

int
sw_layer_commit_dir(sw_store_t *s, const char *dir, const sw_compression_t *comp,
                    sw_layer_desc_t *out, sw_error_t *err)
{
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = sw_store_mkstemp(s, "layer-", &tmp, err);
  sw_layer_write_opts_t opts = sw_layer_write_opts_default();
  sw_layer_info_t info = {0};
  sw_layer_desc_t l;
  sw_error_t ignored = NULL;

  if (fd < 0)
    goto fail;
  if (comp)
    opts.comp = *comp;
  if (sw_layer_write(dir, &opts, fd, &info, err) < 0) {
    unlink(tmp);
    goto fail;
  }
  fill_desc(&l, &info, NULL);
  if (commit_layer(s, tmp, dir, &l, err) < 0)
    goto fail;
  *out = l;
  return 0;
fail:
  sw_rm_rf(dir, &ignored);
  sw_error_release(&ignored);
  return sw_error_wrap(err, "committing layer from `%s`", dir);
}

/* ---- build steps: snapshot now, blob when an image needs it ----
 * A step's layer is committed as its snapshot plus diffID (the tar hashed, not compressed: the
 * compressed blob of an intermediate stage's layer is never needed). The blob is made from the
 * snapshot when an image that uses the layer is committed: the tar is deterministic, so the
 * blob is the one an eager commit would have made. */

static int
record_snapshot(sw_store_t *s, const char *diff_id, int64_t tar_size, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s, "INSERT OR IGNORE INTO snapshots (diff_id, tar_size, created) VALUES (?,?,?)", err);
  int r = -1;
  if (st) {
    sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, tar_size);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "record snapshot");
  }
  return sw_db_end(s, r == 0, err);
}

/* diffID and size of the tar of dir, nothing written. */
int
sw_layer_hash_dir(const char *dir, char diff_id[SW_DIGEST_LEN + 1], int64_t *tar_size,
                  sw_error_t *err)
{
  _cleanup_close_ int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  sw_layer_write_opts_t opts = sw_layer_write_opts_default();
  sw_layer_info_t info = {0};
  if (null < 0)
    return sw_error(err, errno, "open `/dev/null`");
  opts.comp = (sw_compression_t){.codec = &sw_codec_none};
  if (sw_layer_write(dir, &opts, null, &info, err) < 0)
    return sw_error_wrap(err, "hashing layer `%s`", dir);
  snprintf(diff_id, SW_DIGEST_LEN + 1, "%s", info.diff_id);
  *tar_size = (int64_t)info.tar_size;
  return 0;
}

int
sw_layer_commit_hashed(sw_store_t *s, const char *dir, const char *diff_id, int64_t tar_size,
                       sw_layer_desc_t *out, sw_error_t *err)
{
  sw_layer_desc_t l = {0};
  sw_error_t ignored = NULL;
  snprintf(l.diff_id, sizeof(l.diff_id), "%s", diff_id);
  l.tar_size = tar_size;
  if (sw_snapshot_commit(s, dir, l.diff_id, err) < 0 ||
      record_snapshot(s, l.diff_id, l.tar_size, err) < 0)
    return sw_error_wrap(err, "committing layer from `%s`", dir);
  /* Built before (and its blob made by an image commit)? Then the layer is complete. */
  sw_layer_desc_t have;
  if (sw_layer_get(s, l.diff_id, NULL, &have, &ignored) == 1)
    l = have;
  sw_error_release(&ignored);
  *out = l;
  return 0;
}

int
sw_layer_commit_snapshot(sw_store_t *s, const char *dir, sw_layer_desc_t *out, sw_error_t *err)
{
  char diff_id[SW_DIGEST_LEN + 1];
  int64_t tar_size = 0;
  if (sw_layer_hash_dir(dir, diff_id, &tar_size, err) < 0) {
    sw_error_t ignored = NULL;
    sw_rm_rf(dir, &ignored);
    sw_error_release(&ignored);
    return sw_error_wrap(err, "committing layer from `%s`", dir);
  }
  return sw_layer_commit_hashed(s, dir, diff_id, tar_size, out, err);
}

int
sw_layer_make_blob(sw_store_t *s, sw_layer_desc_t *l, const sw_compression_t *comp, sw_error_t *err)
{
  if (l->digest[0])
    return 0;
  const char *media = comp && comp->codec ? comp->codec->oci_media_type : NULL;
  sw_layer_desc_t have;
  int f = sw_layer_get(s, l->diff_id, media, &have, err);
  if (f != 0) {
    if (f == 1)
      *l = have;
    return f < 0 ? -1 : 0;
  }
  _cleanup_free_ char *snap = sw_snapshot_path(s, l->diff_id);
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = sw_store_mkstemp(s, "layer-", &tmp, err);
  sw_layer_write_opts_t opts = sw_layer_write_opts_default();
  sw_layer_info_t info = {0};
  sw_layer_desc_t made;
  if (fd < 0)
    return -1;
  if (comp && comp->codec)
    opts.comp = *comp;
  if (sw_layer_write(snap, &opts, fd, &info, err) < 0) {
    unlink(tmp);
    return sw_error_wrap(err, "making the blob of layer %s", l->diff_id);
  }
  if (strcmp(info.diff_id, l->diff_id) != 0) {
    unlink(tmp);
    return sw_error(
        err, 0, "snapshot `%s` no longer matches its diffID (now %s): remove it and build again",
        snap, info.diff_id);
  }
  fill_desc(&made, &info, NULL);
  if (sw_blob_adopt(s, tmp, made.digest, err) < 0 || sw_layer_record(s, &made, 0, err) < 0)
    return sw_error_wrap(err, "making the blob of layer %s", l->diff_id);
  *l = made;
  return 0;
}

int
sw_image_make_blobs(sw_store_t *s, sw_image_t *img, const sw_compression_t *comp, sw_error_t *err)
{
  for (size_t i = 0; i < img->n_layers; i++)
    if (sw_layer_make_blob(s, &img->layers[i], comp, err) < 0)
      return -1;
  return 0;
}

/* Stream in_fd through a source (decompress + hash both sides; raw bytes teed to tee_fd) and,
 * if sink is set, the decompressed bytes into it. No extraction: snapshots are unpacked on
 * demand by sw_snapshot_ensure. */
static int
stream_layer(int in_fd, const sw_codec_t *codec, int tee_fd, sw_sink_t *sink, sw_sink_result_t *res,
             sw_error_t *err)
{
  _cleanup_source_ sw_source_t *src = sw_source_new(in_fd, codec, tee_fd);
  const void *data;
  ssize_t n;
  while ((n = sw_source_read_block(src, &data, err)) > 0)
    if (sink && sw_sink_write(sink, data, (size_t)n, err) < 0)
      return -1;
  if (n < 0 || sw_source_result(src, res, err) < 0)
    return -1;
  return 0;
}

/* Apply in_fd into a fresh temp dir while streaming it (o: codec, tee_fd, tar_sink, expected
 * digests; info as sw_layer_apply fills it). Strict: a tar that cannot be applied (an entry that
 * would leave the root, go through a symlink, link outside...) is an error, reported once the
 * stream was read to its end and verified, so that a corrupt blob is named as such rather than
 * by the garbage entry it happens to produce. Every door that takes a layer comes here. */
static int
stream_unpack(sw_store_t *s, int in_fd, sw_layer_apply_opts_t *o, sw_layer_info_t *info,
              char **dir_out, sw_error_t *err)
{
  _cleanup_free_ char *dir = sw_store_mkdtemp(s, "unpack-", err);
  sw_error_t ignored = NULL;
  if (dir == NULL)
    return -1;
  o->finish_stream = true;
  int r = sw_layer_apply(in_fd, dir, o, info, err);
  if (r < 0 && sw_rm_rf(dir, &ignored) < 0)
    sw_error_release(&ignored);
  if (r < 0)
    return -1;
  *dir_out = steal_ptr(&dir);
  return 0;
}

static void
drop_dir(char *dir)
{
  sw_error_t ignored = NULL;
  if (dir && sw_rm_rf(dir, &ignored) < 0)
    sw_error_release(&ignored);
}

static const sw_codec_t *
codec_of(const sw_codec_t *codec, int fd)
{
  unsigned char magic[4] = {0};
  if (codec)
    return codec;
  ssize_t m = pread(fd, magic, sizeof(magic), 0);
  return sw_codec_detect(magic, m > 0 ? (size_t)m : 0);
}

void
sw_layer_staged_clear(sw_layer_staged_t *st)
{
  if (st->tmp && !st->kept)
    unlink(st->tmp);
  free(st->tmp);
  drop_dir(st->dir);
  free(st->dir);
  memset(st, 0, sizeof(*st));
}

/* The blob is stored already (a layer row may exist too): unpack it into st->dir unless its
 * snapshot is in place; without a row, read it once for the diffID (checked). */
static int
stage_stored(sw_store_t *s, const char *digest, const sw_codec_t *codec, const char *media_type,
             const char *expected_diff_id, sw_layer_staged_t *st, sw_error_t *err)
{
  sw_layer_info_t info = {0};
  const char *diff_id = st->row ? st->desc.diff_id : expected_diff_id;
  _cleanup_free_ char *snap = diff_id ? sw_snapshot_path(s, diff_id) : NULL;
  if (st->row && access(snap, F_OK) == 0)
    return 0; /* stored and unpacked: nothing to do */
  _cleanup_close_ int fd = sw_blob_open(s, digest, NULL, err);
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();

  if (fd < 0)
    return sw_error_wrap(err, "layer %s", digest);
  o.codec = codec;
  o.name = digest;
  o.expect_digest = digest;
  o.expect_diff_id = diff_id;
  /* Unpacked already (a directory with a row: one without may be a killed process's
   * leftover, never trusted): hash only. */
  if (diff_id && snapshot_recorded(s, diff_id)) {
    sw_sink_result_t res;
    if (stream_layer(fd, codec, -1, NULL, &res, err) < 0)
      return -1;
    memcpy(info.diff_id, res.diff_id, sizeof(info.diff_id));
    memcpy(info.digest, res.digest, sizeof(info.digest));
    info.size = res.size;
    info.tar_size = res.raw_size;
    if (strcmp(info.digest, digest) != 0)
      return sw_error(err, 0, "layer %s: stored blob has digest %s", digest, info.digest);
    if (expected_diff_id && strcmp(expected_diff_id, info.diff_id) != 0)
      return sw_error(err, 0, "layer %s: diffID mismatch: the config says %s, the layer is %s",
                      digest, expected_diff_id, info.diff_id);
  } else if (stream_unpack(s, fd, &o, &info, &st->dir, err) < 0) {
    return -1;
  }
  if (!st->row) {
    info.media_type = sw_codec_media_type(codec_of(codec, fd), false);
    fill_desc(&st->desc, &info, media_type);
  }
  return 0;
}

int
sw_layer_stage(sw_store_t *s, int in_fd, const char *kept, const char *media_type,
               const char *expected_digest, const char *expected_diff_id, sw_layer_staged_t *st,
               sw_error_t *err)
{
  _cleanup_close_ int fd = -1;
  sw_layer_info_t info = {0};
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  const char *what = expected_digest ? expected_digest : "blob";
  const sw_codec_t *codec = media_type ? sw_codec_from_media_type(media_type) : NULL;

  memset(st, 0, sizeof(*st));
  if (expected_digest) {
    int r = sw_layer_get_by_digest(s, expected_digest, &st->desc, err);
    if (r < 0)
      return -1;
    st->row = r == 1;
    if (st->row && expected_diff_id && strcmp(st->desc.diff_id, expected_diff_id) != 0)
      return sw_error(err, 0, "layer %s: the config says its diffID is %s, but it is %s",
                      expected_digest, expected_diff_id, st->desc.diff_id);
    if (st->row || sw_blob_exists(s, expected_digest)) {
      if (stage_stored(s, expected_digest, codec, media_type, expected_diff_id, st, err) < 0) {
        sw_layer_staged_clear(st);
        return -1; /* the error names the layer */
      }
      return 0;
    }
  }
  if (kept) {
    st->tmp = xstrdup(kept);
    st->kept = true;
  } else if ((fd = sw_store_mkstemp(s, "layer-", &st->tmp, err)) < 0) {
    return -1;
  }
  o.codec = codec;
  o.tee_fd = fd;
  o.name = what;
  o.expect_digest = expected_digest;
  o.expect_diff_id = expected_diff_id;
  if (stream_unpack(s, in_fd, &o, &info, &st->dir, err) < 0) {
    sw_layer_staged_clear(st);
    return -1; /* the error names the layer ("layer sha256:…: entry `x`: …") */
  }
  fill_desc(&st->desc, &info, media_type);
  return 0;
}

int
sw_layer_stage_commit(sw_store_t *s, sw_layer_staged_t *st, sw_error_t *err)
{
  if (st->tmp) {
    int r = sw_blob_adopt(s, st->tmp, st->desc.digest, err);
    free(st->tmp);
    st->tmp = NULL;
    if (r < 0)
      return -1;
  }
  if (st->dir) {
    int r = sw_snapshot_commit(s, st->dir, st->desc.diff_id, err);
    free(st->dir);
    st->dir = NULL;
    if (r < 0)
      return -1;
  }
  if (!st->row && sw_layer_record(s, &st->desc, 0, err) < 0)
    return -1;
  st->row = true;
  return 0;
}

/* Stage then commit: the one-layer doors. */
static int
import_staged(sw_store_t *s, sw_layer_staged_t *st, sw_layer_desc_t *out, sw_error_t *err)
{
  int r = sw_layer_stage_commit(s, st, err);
  if (r < 0)
    sw_error_wrap(err, "importing layer %s", st->desc.digest);
  else
    *out = st->desc;
  sw_layer_staged_clear(st);
  return r;
}

int
sw_layer_import(sw_store_t *s, int in_fd, const char *media_type, const char *expected_digest,
                const char *expected_diff_id, sw_layer_desc_t *out, sw_error_t *err)
{
  sw_layer_staged_t st;
  if (sw_layer_stage(s, in_fd, NULL, media_type, expected_digest, expected_diff_id, &st, err) < 0)
    return -1;
  return import_staged(s, &st, out, err);
}

int
sw_layer_import_path(sw_store_t *s, const char *tmp_path, const char *media_type,
                     const char *expected_digest, const char *expected_diff_id,
                     sw_layer_desc_t *out, sw_error_t *err)
{
  _cleanup_close_ int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
  sw_layer_staged_t st;
  if (fd < 0)
    return sw_error(err, errno, "open `%s`", tmp_path);
  if (sw_layer_stage(s, fd, tmp_path, media_type, expected_digest, expected_diff_id, &st, err) < 0)
    return -1;
  return import_staged(s, &st, out, err);
}

int
sw_layer_stage_tar(sw_store_t *s, int in_fd, const sw_compression_t *comp,
                   const char *expected_diff_id, sw_layer_staged_t *st, sw_error_t *err)
{
  sw_compression_t c = comp && comp->codec ? *comp : sw_compression_default();
  _cleanup_sink_ sw_sink_t *sink = NULL;
  sw_sink_result_t res;
  sw_layer_info_t info = {0};
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();

  memset(st, 0, sizeof(*st));
  _cleanup_close_ int fd = sw_store_mkstemp(s, "layer-", &st->tmp, err);
  if (fd < 0)
    return -1;
  sink = sw_sink_new(&c, fd);
  /* One read of the input: the producer thread feeds the sink (diffID, compression on its own
   * workers, digest) while this thread creates the snapshot's files. */
  o.tar_sink = sink;
  o.skip_source_hash = true;
  if (stream_unpack(s, in_fd, &o, NULL, &st->dir, err) < 0) {
    /* The stream was read to its end: a tar that is not the one expected is reported as such
     * (the garbage entry is a symptom); else name the refused layer by its diffID (that of a
     * layer of a docker-archive, `sha256sum` of the tar): "layer: …" → "layer sha256:…: …". */
    sw_error_t ignored = NULL;
    if (sw_sink_finish(sink, &res, &ignored) == 0) {
      if (expected_diff_id && strcmp(expected_diff_id, res.diff_id) != 0) {
        sw_error_release(err);
        sw_error(err, 0, "layer %s: diffID mismatch: expected %s", res.diff_id, expected_diff_id);
      } else if (sw_str_has_prefix((*err)->msg, "layer: ")) {
        char *named = xasprintf("layer %s: %s", res.diff_id, (*err)->msg + strlen("layer: "));
        free((*err)->msg);
        (*err)->msg = named;
      }
    }
    sw_error_release(&ignored);
    sw_layer_staged_clear(st);
    return -1;
  }
  if (sw_sink_finish(sink, &res, err) < 0) {
    sw_layer_staged_clear(st);
    return -1;
  }
  if (expected_diff_id && strcmp(expected_diff_id, res.diff_id) != 0) {
    sw_layer_staged_clear(st);
    return sw_error(err, 0, "layer %s: diffID mismatch: expected %s", res.diff_id,
                    expected_diff_id);
  }
  memcpy(info.diff_id, res.diff_id, sizeof(info.diff_id));
  memcpy(info.digest, res.digest, sizeof(info.digest));
  info.size = res.size;
  info.tar_size = res.raw_size;
  info.media_type = sw_codec_media_type(c.codec, false);
  fill_desc(&st->desc, &info, NULL);
  return 0;
}

int
sw_layer_import_tar(sw_store_t *s, int in_fd, const sw_compression_t *comp, sw_layer_desc_t *out,
                    sw_error_t *err)
{
  sw_layer_staged_t st;
  if (sw_layer_stage_tar(s, in_fd, comp, NULL, &st, err) < 0)
    return -1;
  return import_staged(s, &st, out, err);
}

int
sw_snapshot_ensure(sw_store_t *s, const char *diff_id, sw_error_t *err)
{
  _cleanup_free_ char *path = sw_snapshot_path(s, diff_id);
  sw_layer_desc_t l;
  if (access(path, F_OK) == 0)
    return 0;
  int r = sw_layer_get(s, diff_id, NULL, &l, err);
  if (r <= 0)
    return r < 0 ? -1 : sw_error(err, 0, "layer %s is not in the store", diff_id);
  _cleanup_close_ int fd = sw_blob_open(s, l.digest, NULL, err);
  _cleanup_free_ char *dir = fd < 0 ? NULL : sw_store_mkdtemp(s, "unpack-", err);
  sw_layer_apply_opts_t opts = sw_layer_apply_opts_default();
  sw_error_t ignored = NULL;
  if (dir == NULL)
    return -1;
  opts.name = l.digest;
  opts.codec = sw_codec_from_media_type(l.media_type);
  opts.expect_diff_id = diff_id;
  if (sw_layer_apply(fd, dir, &opts, NULL, err) < 0 ||
      sw_snapshot_commit(s, dir, diff_id, err) < 0) {
    sw_rm_rf(dir, &ignored);
    sw_error_release(&ignored);
    return sw_error_wrap(err, "unpacking layer %s", diff_id);
  }
  return 0;
}

int
sw_image_unpack(sw_store_t *s, const sw_image_t *img, sw_error_t *err)
{
  for (size_t i = 0; i < img->n_layers; i++)
    if (sw_snapshot_ensure(s, img->layers[i].diff_id, err) < 0)
      return -1;
  return 0;
}

char **
sw_image_lowerdirs(sw_store_t *s, const sw_image_t *img)
{
  sw_error_t err = NULL;
  char **v = xcalloc(img->n_layers + 1, sizeof(*v));
  if (sw_image_unpack(s, img, &err) < 0) {
    /* The paths are still returned; the missing one makes the caller's mount fail. */
    sw_warn("%s", err->msg);
    sw_error_release(&err);
  }
  for (size_t i = 0; i < img->n_layers; i++)
    v[i] = sw_snapshot_path(s, img->layers[img->n_layers - 1 - i].diff_id);
  return v;
}
