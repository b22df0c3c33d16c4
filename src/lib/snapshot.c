/* slipway: layers and snapshots. A layer row ties a diffID to a blob (digest, size, media type)
 * and to the snapshot ROOT/snapshots/<diffID hex>, the extracted layer in overlay format. The
 * row is written only after both are in place, so a row always means "usable". */
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

char **
sw_image_lowerdirs(sw_store_t *s, const sw_image_t *img)
{
  char **v = xcalloc(img->n_layers + 1, sizeof(*v));
  for (size_t i = 0; i < img->n_layers; i++)
    v[i] = sw_snapshot_path(s, img->layers[img->n_layers - 1 - i].diff_id);
  return v;
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

/* Rename dir to the snapshot of diff_id; if that snapshot exists, drop dir (same content). */
static int
commit_snapshot(sw_store_t *s, const char *dir, const char *diff_id, sw_error_t *err)
{
  _cleanup_free_ char *dst = sw_snapshot_path(s, diff_id);
  if (rename(dir, dst) == 0)
    return 0;
  if (errno == EEXIST || errno == ENOTEMPTY)
    return sw_rm_rf(dir, err);
  return sw_error(err, errno, "rename `%s` to `%s`", dir, dst);
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
  if (commit_snapshot(s, dir, l->diff_id, err) < 0)
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

static int
import_common(sw_store_t *s, int in_fd, const sw_layer_apply_opts_t *base,
              const sw_compression_t *recompress, const char *media_type, sw_layer_desc_t *out,
              sw_error_t *err)
{
  _cleanup_free_ char *tmp = NULL;
  _cleanup_free_ char *dir = sw_store_mkdtemp(s, "snap-", err);
  _cleanup_close_ int fd = -1;
  _cleanup_sink_ sw_sink_t *sink = NULL;
  sw_layer_apply_opts_t opts = *base;
  sw_layer_info_t info = {0};
  sw_sink_result_t res;
  sw_layer_desc_t l;
  sw_error_t ignored = NULL;

  if (dir == NULL || (fd = sw_store_mkstemp(s, "layer-", &tmp, err)) < 0)
    goto fail;
  if (recompress) {
    sink = sw_sink_new(recompress, fd);
    opts.tar_sink = sink;
  } else {
    opts.tee_fd = fd;
  }
  if (sw_layer_apply(in_fd, dir, &opts, &info, err) < 0)
    goto fail_tmp;
  if (sink) {
    if (sw_sink_finish(sink, &res, err) < 0)
      goto fail_tmp;
    memcpy(info.digest, res.digest, sizeof(info.digest));
    info.size = res.size;
    info.media_type = sw_codec_media_type(recompress->codec, false);
  }
  fill_desc(&l, &info, media_type);
  if (commit_layer(s, tmp, dir, &l, err) < 0)
    goto fail;
  *out = l;
  return 0;
fail_tmp:
  unlink(tmp);
fail:
  if (dir)
    sw_rm_rf(dir, &ignored);
  sw_error_release(&ignored);
  return -1;
}

int
sw_layer_import(sw_store_t *s, int in_fd, const char *media_type, const char *expected_digest,
                const char *expected_diff_id, sw_layer_desc_t *out, sw_error_t *err)
{
  sw_layer_apply_opts_t opts = sw_layer_apply_opts_default();
  if (expected_digest) {
    int r = sw_layer_get_by_digest(s, expected_digest, out, err);
    if (r != 0)
      return r < 0 ? -1 : 0;
  }
  opts.name = expected_digest;
  opts.expect_digest = expected_digest;
  opts.expect_diff_id = expected_diff_id;
  if (media_type)
    opts.codec = sw_codec_from_media_type(media_type);
  if (import_common(s, in_fd, &opts, NULL, media_type, out, err) < 0)
    return sw_error_wrap(err, "importing layer %s", expected_digest ? expected_digest : "");
  return 0;
}

int
sw_layer_import_tar(sw_store_t *s, int in_fd, const sw_compression_t *comp, sw_layer_desc_t *out,
                    sw_error_t *err)
{
  sw_layer_apply_opts_t opts = sw_layer_apply_opts_default();
  sw_compression_t c = comp && comp->codec ? *comp : sw_compression_default();
  opts.name = "rootfs tar";
  return import_common(s, in_fd, &opts, &c, NULL, out, err);
}
