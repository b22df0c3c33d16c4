/* slipway: the store's consistency check (`slipway fsck`). With the lock held exclusively (no
 * other process is half-way through a commit), every layer blob is read once, its digest and
 * diffID verified, and its entries compared with the layer's snapshot (layer_check.c: names,
 * types, sizes, modes, link targets); a snapshot with no blob is re-hashed and its tar size
 * compared with the recorded one; every other blob is hashed; every row's references are
 * followed (images → manifest, config, layers; image indexes → their blob and images; cache
 * records → layers or snapshots).
 * --repair: a bad snapshot is replaced by a fresh unpack of its blob (or trashed with its row and
 * the cache records that use it when it has no blob), a bad or missing blob's rows go, and so do
 * images and cache records that name what is gone. */
#include "layer_apply.h"
#include "layer_check.h"
#include "layer_write.h"
#include "store_internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

struct fsck {
  sw_store_t *s;
  const sw_fsck_opts_t *o;
  sw_fsck_report_t *rep;
  char **verified; /* blob digests hashed already (layer blobs, while unpacked) */
};

static void __attribute__((format(printf, 2, 3))) problem(struct fsck *f, const char *fmt, ...)
{
  va_list ap;
  f->rep->problems++;
  fputs("problem: ", f->o->out);
  va_start(ap, fmt);
  vfprintf(f->o->out, fmt, ap);
  va_end(ap);
  fputc('\n', f->o->out);
}

static void __attribute__((format(printf, 2, 3))) repaired(struct fsck *f, const char *fmt, ...)
{
  va_list ap;
  f->rep->repaired++;
  fputs("  repaired: ", f->o->out);
  va_start(ap, fmt);
  vfprintf(f->o->out, fmt, ap);
  va_end(ap);
  fputc('\n', f->o->out);
}

/* Run sql with one text parameter (NULL: none) to completion. */
static int
exec1(sw_store_t *s, const char *sql, const char *a, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  int r = -1;
  if (st) {
    if (a)
      sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, sql);
  }
  return sw_db_end(s, r == 0, err);
}

/* Rows of a query with one text parameter (NULL: none), flattened: row i's column k is
 * v[i * columns + k] (a NULL column is ""). */
static char **
rows(sw_store_t *s, const char *sql, const char *a, sw_error_t *err)
{
  char **v = xcalloc(1, sizeof(*v));
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  if (st == NULL) {
    sw_db_unlock(s);
    free(v);
    return NULL;
  }
  if (a)
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW)
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      const char *c = (const char *)sqlite3_column_text(st, i);
      sw_strv_push(&v, c ? c : "");
    }
  sw_db_unlock(s);
  return v;
}

/* "image foo:latest" / "2 cache records" / "nothing": who uses a diffID, for messages. */
static char *
users_of(struct fsck *f, const char *diff_id)
{
  sw_error_t ignored = NULL;
  _cleanup_strv_ char **img = rows(f->s,
                                   "SELECT COALESCE((SELECT name FROM names n WHERE "
                                   "n.manifest_digest = il.manifest_digest LIMIT 1), "
                                   "il.manifest_digest) FROM image_layers il WHERE diff_id = ?",
                                   diff_id, &ignored);
  _cleanup_strv_ char **rec =
      rows(f->s, "SELECT key FROM cache_layers WHERE diff_id = ?", diff_id, &ignored);
  sw_error_release(&ignored);
  size_t ni = sw_strv_len(img), nr = sw_strv_len(rec);
  if (ni)
    return xasprintf("used by image %s%s", img[0], ni > 1 ? " and others" : "");
  return nr ? xasprintf("used by %zu cache records", nr) : xstrdup("used by nothing");
}

/* ---- layers: blob verified by unpacking it, snapshot compared with the result ---- */

static void
drop_tree(char *dir)
{
  sw_error_t ignored = NULL;
  if (dir && sw_rm_rf(dir, &ignored) < 0)
    sw_error_release(&ignored);
}

/* Rows of the layer whose blob is bad or missing go (images that use it are caught later). */
static void
repair_blob(struct fsck *f, const char *digest)
{
  sw_error_t err = NULL;
  _cleanup_free_ char *path = sw_blob_path(f->s, digest);
  if (sw_store_trash_at(f->s, AT_FDCWD, path, &err) < 0 ||
      exec1(f->s, "DELETE FROM layers WHERE digest = ?", digest, &err) < 0) {
    fprintf(f->o->out, "  cannot repair: %s\n", err->msg);
    sw_error_release(&err);
    return;
  }
  repaired(f, "blob %s and its layer row removed (pull, load or build the images again)", digest);
}

/* The snapshot differs from its (sound) blob: unpack the blob and swap the result in. */
static void
repair_snapshot(struct fsck *f, const char *digest, const char *diff_id, const char *media_type)
{
  sw_error_t err = NULL;
  _cleanup_close_ int fd = sw_blob_open(f->s, digest, NULL, &err);
  _cleanup_free_ char *fresh = fd < 0 ? NULL : sw_store_mkdtemp(f->s, "fsck-", &err);
  sw_layer_apply_opts_t o = sw_layer_apply_opts_default();
  o.name = digest;
  o.codec = sw_codec_from_media_type(media_type);
  o.expect_diff_id = diff_id;
  if (fresh == NULL || sw_layer_apply(fd, fresh, &o, NULL, &err) < 0 ||
      sw_snapshot_commit(f->s, fresh, diff_id, &err) < 0) {
    fprintf(f->o->out, "  cannot repair: %s\n", err->msg);
    sw_error_release(&err);
    drop_tree(fresh);
    return;
  }
  repaired(f, "snapshot of layer %s replaced by its blob's content", diff_id);
}

static void
check_layer(struct fsck *f, const char *digest, const char *diff_id, const char *media_type)
{
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, diff_id);
  bool has_snap = access(snap, F_OK) == 0;
  sw_layer_diff_t d = {0};
  sw_error_t why = NULL;
  f->rep->blobs++;
  sw_strv_push(&f->verified, digest);
  _cleanup_close_ int fd = sw_blob_open(f->s, digest, NULL, &why);
  if (fd < 0 || sw_layer_check(fd, sw_codec_from_media_type(media_type), digest, diff_id,
                               has_snap ? snap : NULL, &d, &why) < 0) {
    _cleanup_free_ char *who = users_of(f, diff_id);
    problem(f, "layer %s (%s): blob %s: %s", diff_id, who, digest, why->msg);
    sw_error_release(&why);
    if (f->o->repair)
      repair_blob(f, digest);
    return;
  }
  if (!has_snap)
    return; /* unpacked on first use */
  f->rep->snapshots++;
  if (d.missing + d.extra + d.changed == 0)
    return;
  _cleanup_free_ char *who = users_of(f, diff_id);
  problem(f,
          "snapshot `%s` of layer %s (%s) differs from its blob: %zu missing, %zu extra, %zu "
          "changed (first: %s)",
          snap, diff_id, who, d.missing, d.extra, d.changed, d.first);
  free(d.first);
  if (f->o->repair)
    repair_snapshot(f, digest, diff_id, media_type);
}

static int
check_layers(struct fsck *f, sw_error_t *err)
{
  /* One blob per diffID is enough to check its snapshot; every blob is hashed. */
  _cleanup_strv_ char **v = rows(
      f->s, "SELECT digest, diff_id, media_type FROM layers ORDER BY diff_id, digest", NULL, err);
  if (v == NULL)
    return -1;
  for (char **c = v; *c; c += 3)
    check_layer(f, c[0], c[1], c[2]);
  return 0;
}

/* ---- snapshots with no blob (build steps): re-hashed, tar size compared ---- */

static void
repair_snapshot_row(struct fsck *f, const char *diff_id)
{
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, diff_id);
  sw_error_t err = NULL;
  if (sw_store_trash_at(f->s, AT_FDCWD, snap, &err) < 0 ||
      exec1(f->s,
            "DELETE FROM cache WHERE key IN (SELECT key FROM cache_layers WHERE diff_id = ?1)",
            diff_id, &err) < 0 ||
      exec1(f->s, "DELETE FROM snapshots WHERE diff_id = ?", diff_id, &err) < 0) {
    fprintf(f->o->out, "  cannot repair: %s\n", err->msg);
    sw_error_release(&err);
    return;
  }
  repaired(f,
           "snapshot %s and the cache records that use it removed (the next build makes "
           "it again)",
           diff_id);
}

static void
check_snapshot_only(struct fsck *f, const char *diff_id, int64_t recorded)
{
  _cleanup_free_ char *snap = sw_snapshot_path(f->s, diff_id);
  _cleanup_free_ char *who = users_of(f, diff_id);
  char got[SW_DIGEST_LEN + 1];
  int64_t size = 0;
  sw_error_t why = NULL;
  if (access(snap, F_OK) < 0) {
    problem(f, "snapshot `%s` of layer %s (%s) is missing and has no blob", snap, diff_id, who);
  } else {
    f->rep->snapshots++;
    if (sw_layer_hash_dir(snap, got, &size, &why) < 0) {
      problem(f, "snapshot `%s` (%s): %s", snap, who, why->msg);
      sw_error_release(&why);
    } else if (strcmp(got, diff_id) == 0 || size == recorded) {
      /* Same tar size with another diffID: mtimes clamped by another SOURCE_DATE_EPOCH. */
      return;
    } else {
      problem(f,
              "snapshot `%s` of layer %s (%s): its tar is %lld bytes, %lld when committed: "
              "files are missing or changed",
              snap, diff_id, who, (long long)size, (long long)recorded);
    }
  }
  if (f->o->repair)
    repair_snapshot_row(f, diff_id);
}

static int
check_snapshots(struct fsck *f, sw_error_t *err)
{
  _cleanup_strv_ char **v = rows(f->s,
                                 "SELECT diff_id, tar_size FROM snapshots WHERE diff_id NOT IN "
                                 "(SELECT diff_id FROM layers) ORDER BY diff_id",
                                 NULL, err);
  if (v == NULL)
    return -1;
  for (char **c = v; *c; c += 2)
    check_snapshot_only(f, c[0], strtoll(c[1], NULL, 10));
  return 0;
}

/* ---- images and cache records: every reference resolves ---- */

/* An image going: first the indexes that list it (an index of missing images is broken). */
static void
repair_image(struct fsck *f, const char *manifest, const char *name)
{
  sw_error_t err = NULL;
  _cleanup_strv_ char **idx =
      rows(f->s, "SELECT DISTINCT index_digest FROM index_entries WHERE manifest_digest = ?",
           manifest, &err);
  for (char **c = idx; c && *c; c++)
    if (exec1(f->s, "DELETE FROM indexes WHERE digest = ?", *c, &err) == 0)
      repaired(f, "image index %s removed (it lists image %s)", *c, name);
  if (idx == NULL ||
      exec1(f->s, "DELETE FROM images WHERE manifest_digest = ?", manifest, &err) < 0) {
    fprintf(f->o->out, "  cannot repair: %s\n", err->msg);
    sw_error_release(&err);
    return;
  }
  repaired(f, "image %s removed (pull, load or build it again)", name);
}

static int
check_images(struct fsck *f, sw_error_t *err)
{
  _cleanup_strv_ char **v =
      rows(f->s,
           "SELECT manifest_digest, config_digest, COALESCE((SELECT name FROM names n WHERE "
           "n.manifest_digest = i.manifest_digest LIMIT 1), manifest_digest) FROM images i",
           NULL, err);
  if (v == NULL)
    return -1;
  for (char **c = v; *c; c += 3) {
    f->rep->images++;
    _cleanup_strv_ char **lost = rows(f->s,
                                      "SELECT digest FROM image_layers WHERE manifest_digest = ? "
                                      "AND digest NOT IN (SELECT digest FROM layers) ORDER BY idx",
                                      c[0], err);
    if (lost == NULL)
      return -1;
    const char *bad = !sw_blob_exists(f->s, c[0])   ? "manifest"
                      : !sw_blob_exists(f->s, c[1]) ? "config"
                      : lost[0]                     ? "layer"
                                                    : NULL;
    if (bad == NULL)
      continue;
    problem(f, "image %s: its %s blob %s is not in the store", c[2], bad,
            strcmp(bad, "manifest") == 0 ? c[0]
            : strcmp(bad, "config") == 0 ? c[1]
                                         : lost[0]);
    if (f->o->repair)
      repair_image(f, c[0], c[2]);
  }
  return 0;
}

/* Every index's blob is there and lists recorded images (their blobs: check_images). */
static int
check_indexes(struct fsck *f, sw_error_t *err)
{
  _cleanup_strv_ char **v = rows(
      f->s,
      "SELECT digest, COALESCE((SELECT name FROM index_names n WHERE n.index_digest = x.digest "
      "LIMIT 1), digest), COALESCE((SELECT manifest_digest FROM index_entries e WHERE "
      "e.index_digest = x.digest AND manifest_digest NOT IN (SELECT manifest_digest FROM images) "
      "LIMIT 1), '') FROM indexes x",
      NULL, err);
  if (v == NULL)
    return -1;
  for (char **c = v; *c; c += 3) {
    f->rep->images++;
    if (sw_blob_exists(f->s, c[0]) && c[2][0] == '\0')
      continue;
    if (c[2][0])
      problem(f, "image index %s: its image %s is not in the store", c[1], c[2]);
    else
      problem(f, "image index %s: its blob %s is not in the store", c[1], c[0]);
    if (!f->o->repair)
      continue;
    sw_error_t e = NULL;
    if (exec1(f->s, "DELETE FROM indexes WHERE digest = ?", c[0], &e) < 0) {
      fprintf(f->o->out, "  cannot repair: %s\n", e->msg);
      sw_error_release(&e);
    } else {
      repaired(f, "image index %s removed (build, pull or load it again)", c[1]);
    }
  }
  return 0;
}

static int
check_cache_records(struct fsck *f, sw_error_t *err)
{
  f->rep->records = sw_db_scalar(f->s, "SELECT COUNT(*) FROM cache", err);
  if (f->rep->records < 0)
    return -1;
  _cleanup_strv_ char **v = rows(f->s,
                                 "SELECT key, diff_id FROM cache_layers WHERE diff_id NOT IN "
                                 "(SELECT diff_id FROM layers UNION SELECT diff_id FROM snapshots)",
                                 NULL, err);
  if (v == NULL)
    return -1;
  for (char **c = v; *c; c += 2) {
    problem(f, "cache record %.19s…: layer %s is not in the store", c[0], c[1]);
    if (!f->o->repair)
      continue;
    sw_error_t e = NULL;
    if (exec1(f->s, "DELETE FROM cache WHERE key = ?", c[0], &e) < 0) {
      fprintf(f->o->out, "  cannot repair: %s\n", e->msg);
      sw_error_release(&e);
    } else {
      repaired(f, "cache record %.19s… removed", c[0]);
    }
  }
  return 0;
}

/* ---- the other blobs (configs, manifests, orphans): hashed ---- */

static int
check_other_blobs(struct fsck *f, sw_error_t *err)
{
  _cleanup_free_ char *dir = sw_store_path(f->s, "blobs/sha256");
  _cleanup_dir_ DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL)
    return sw_error(err, errno, "open `%s`", dir);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    _cleanup_free_ char *digest = xasprintf("sha256:%s", e->d_name);
    if (sw_strv_contains(f->verified, digest))
      continue;
    sw_error_t why = NULL;
    f->rep->blobs++;
    if (sw_blob_verify(f->s, digest, &why) == 1)
      continue;
    problem(f, "%s", why->msg);
    sw_error_release(&why);
    if (!f->o->repair)
      continue;
    if (sw_store_trash_at(f->s, dirfd(d), e->d_name, &why) < 0) {
      fprintf(f->o->out, "  cannot repair: %s\n", why->msg);
      sw_error_release(&why);
    } else {
      repaired(f, "blob %s removed", digest);
    }
  }
  return 0;
}

int
sw_store_fsck(sw_store_t *s, const sw_fsck_opts_t *o, sw_fsck_report_t *rep, sw_error_t *err)
{
  struct fsck f = {.s = s, .o = o, .rep = rep, .verified = xcalloc(1, sizeof(char *))};
  memset(rep, 0, sizeof(*rep));
  if (sw_store_lock_exclusive(s, err) < 0) {
    sw_strv_free(f.verified);
    return -1;
  }
  /* Layers first: a repair there drops rows that images and cache records then miss. */
  int r = check_layers(&f, err) < 0 || check_snapshots(&f, err) < 0 ||
                  check_other_blobs(&f, err) < 0 || check_images(&f, err) < 0 ||
                  check_indexes(&f, err) < 0 || check_cache_records(&f, err) < 0
              ? -1
              : 0;
  if (r == 0 && o->repair)
    sw_store_empty_trash(s);
  sw_store_lock_shared(s);
  sw_strv_free(f.verified);
  return r;
}
