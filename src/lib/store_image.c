/* slipway: images in the store: commit (config + manifest blobs, rows, names), lookup by name /
 * ID / manifest digest, tag, untag, list, delete. The manifest and config blobs are the truth;
 * the rows index them (and list the layers, for GC). */
#include "store_internal.h"

#include <ctype.h>
#include <time.h>

#define MAX_META_BLOB (16u << 20) /* manifests and configs are small; refuse absurd ones */

static int
check_layers_present(sw_store_t *s, const sw_image_t *img, sw_error_t *err)
{
  for (size_t i = 0; i < img->n_layers; i++) {
    sw_layer_desc_t l;
    int r = sw_layer_get_by_digest(s, img->layers[i].digest, &l, err);
    if (r < 0)
      return -1;
    if (r == 0)
      return sw_error(err, 0, "image layer %zu (%s) is not in the store", i, img->layers[i].digest);
    img->layers[i].tar_size = l.tar_size;
  }
  return 0;
}

static int
insert_names(sw_store_t *s, const char *manifest, char *const *names, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s, "INSERT OR REPLACE INTO names (name, manifest_digest, created) VALUES (?,?,?)", err);
  _cleanup_stmt_ sqlite3_stmt *del =
      sw_db_prepare(s, "DELETE FROM index_names WHERE name = ?", err);
  if (st == NULL || del == NULL)
    return -1;
  for (size_t i = 0; names && names[i]; i++) {
    _cleanup_free_ char *n = sw_ref_normalize(names[i], err);
    if (n == NULL)
      return -1;
    sqlite3_reset(st);
    sqlite3_reset(del);
    sqlite3_bind_text(del, 1, n, -1, SQLITE_STATIC); /* a name names an image or an index */
    if (sqlite3_step(del) != SQLITE_DONE)
      return sw_db_error(s, err, "take name from image index");
    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, manifest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
      return sw_db_error(s, err, "record image name");
  }
  return 0;
}

static char **
names_of(sw_store_t *s, const char *manifest, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT name FROM names WHERE manifest_digest = ? ORDER BY name", err);
  char **v = xcalloc(1, sizeof(*v));
  if (st == NULL) {
    free(v);
    return NULL;
  }
  sqlite3_bind_text(st, 1, manifest, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW)
    sw_strv_push(&v, (const char *)sqlite3_column_text(st, 0));
  return v;
}

static int
insert_image_rows(sw_store_t *s, const sw_image_t *img, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *im = sw_db_prepare(
      s,
      "INSERT INTO images (manifest_digest, config_digest, manifest_size, config_size, "
      "created, last_used) VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT(manifest_digest) DO UPDATE "
      "SET last_used = ?6",
      err);
  _cleanup_stmt_ sqlite3_stmt *del =
      sw_db_prepare(s, "DELETE FROM image_layers WHERE manifest_digest = ?", err);
  _cleanup_stmt_ sqlite3_stmt *il = sw_db_prepare(
      s, "INSERT INTO image_layers (manifest_digest, idx, digest, diff_id) VALUES (?,?,?,?)", err);
  if (!im || !del || !il)
    return -1;
  sqlite3_bind_text(im, 1, img->manifest_digest, -1, SQLITE_STATIC);
  sqlite3_bind_text(im, 2, img->config_digest, -1, SQLITE_STATIC);
  sqlite3_bind_int64(im, 3, img->manifest_size);
  sqlite3_bind_int64(im, 4, img->config_size);
  sqlite3_bind_int64(im, 5, sw_config_created(img->config));
  sqlite3_bind_int64(im, 6, (int64_t)time(NULL));
  sqlite3_bind_text(del, 1, img->manifest_digest, -1, SQLITE_STATIC);
  if (sqlite3_step(im) != SQLITE_DONE || sqlite3_step(del) != SQLITE_DONE)
    return sw_db_error(s, err, "record image");
  for (size_t i = 0; i < img->n_layers; i++) {
    sqlite3_reset(il);
    sqlite3_bind_text(il, 1, img->manifest_digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(il, 2, (int64_t)i);
    sqlite3_bind_text(il, 3, img->layers[i].digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(il, 4, img->layers[i].diff_id, -1, SQLITE_STATIC);
    if (sqlite3_step(il) != SQLITE_DONE)
      return sw_db_error(s, err, "record image layers");
  }
  return 0;
}

/* The manifest blob is stored; write the rows and names in one transaction. */
static int
record_image(sw_store_t *s, sw_image_t *img, char *const *names, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  bool ok =
      insert_image_rows(s, img, err) == 0 && insert_names(s, img->manifest_digest, names, err) == 0;
  char **all = ok ? names_of(s, img->manifest_digest, err) : NULL;
  if (sw_db_end(s, ok && all, err) < 0) {
    sw_strv_free(all);
    return -1;
  }
  sw_strv_free(img->names);
  img->names = all;
  img->created = sw_config_created(img->config);
  img->last_used = (int64_t)time(NULL);
  return 0;
}

int
sw_image_commit_raw(sw_store_t *s, sw_image_t *img, char *const *names, sw_error_t *err)
{
  if (!sw_blob_exists(s, img->config_digest))
    return sw_error(err, 0, "image config %s is not in the store", img->config_digest);
  if (check_layers_present(s, img, err) < 0)
    return -1;
  _cleanup_free_ char *manifest = sw_manifest_build(img, false);
  char *md = NULL;
  if (sw_blob_put(s, manifest, strlen(manifest), NULL, &md, err) < 0)
    return -1;
  free(img->manifest_digest);
  img->manifest_digest = md;
  img->manifest_size = (int64_t)strlen(manifest);
  return record_image(s, img, names, err);
}

int
sw_image_commit(sw_store_t *s, sw_image_t *img, char *const *names, sw_error_t *err)
{
  /* A build's layers may have no blob yet (sw_layer_commit_snapshot). */
  if (sw_image_make_blobs(s, img, NULL, err) < 0)
    return -1;
  _cleanup_free_ char *cfg = sw_json_dump(img->config);
  char *cd = NULL;
  if (sw_blob_put(s, cfg, strlen(cfg), NULL, &cd, err) < 0)
    return -1;
  free(img->config_digest);
  img->config_digest = cd;
  img->config_size = (int64_t)strlen(cfg);
  return sw_image_commit_raw(s, img, names, err);
}

/* Read manifest + config blobs of a stored manifest digest into a new image. */
static int
load_image(sw_store_t *s, const char *manifest_digest, sw_image_t **out, sw_error_t *err)
{
  _cleanup_(sw_image_freep) sw_image_t *img = xcalloc(1, sizeof(*img));
  _cleanup_free_ char *mtext = NULL, *ctext = NULL;
  size_t mlen, clen;
  json_error_t je;

  if (sw_blob_read(s, manifest_digest, MAX_META_BLOB, &mtext, &mlen, err) < 0 ||
      sw_manifest_parse(mtext, mlen, img, err) < 0 ||
      sw_blob_read(s, img->config_digest, MAX_META_BLOB, &ctext, &clen, err) < 0)
    return sw_error_wrap(err, "image %s", manifest_digest);
  json_t *cfg = json_loadb(ctext, clen, 0, &je);
  if (cfg == NULL)
    return sw_error(err, 0, "image %s: config %s: invalid JSON: %s", manifest_digest,
                    img->config_digest, je.text);
  if (sw_image_set_config(img, cfg, err) < 0)
    return sw_error_wrap(err, "image %s", manifest_digest);
  img->manifest_digest = xstrdup(manifest_digest);
  img->manifest_size = (int64_t)mlen;
  img->created = sw_config_created(img->config);
  for (size_t i = 0; i < img->n_layers; i++) {
    sw_layer_desc_t l;
    if (sw_layer_get_by_digest(s, img->layers[i].digest, &l, err) == 1)
      img->layers[i].tar_size = l.tar_size;
  }
  sw_db_lock(s);
  img->names = names_of(s, manifest_digest, err);
  sw_db_unlock(s);
  if (img->names == NULL)
    return -1;
  *out = steal_ptr(&img);
  return 0;
}

int
sw_image_commit_manifest(sw_store_t *s, const char *manifest_digest, char *const *names,
                         sw_image_t **out, sw_error_t *err)
{
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  if (load_image(s, manifest_digest, &img, err) < 0 || check_layers_present(s, img, err) < 0 ||
      record_image(s, img, names, err) < 0)
    return -1;
  if (out)
    *out = steal_ptr(&img);
  return 0;
}

/* A single text column of the first row, or NULL. *n_rows counts up to 2 rows. */
static char *
query_text(sw_store_t *s, const char *sql, const char *arg, int *n_rows, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  char *r = NULL;
  *n_rows = 0;
  if (st == NULL)
    return NULL;
  sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  while (*n_rows < 2 && sqlite3_step(st) == SQLITE_ROW) {
    if (*n_rows == 0)
      r = xstrdup((const char *)sqlite3_column_text(st, 0));
    (*n_rows)++;
  }
  return r;
}

static bool
is_hex(const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
      return false;
  return true;
}

/* Resolve ref to a manifest digest: 1 found, 0 not, -1 error (ambiguous, bad ref). */
static int
resolve(sw_store_t *s, const char *ref, char **manifest, bool *by_name, sw_error_t *err)
{
  int n = 0;
  const char *hex = sw_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
  *by_name = false;
  *manifest = NULL;
  sw_db_lock(s);
  if (strlen(hex) == SW_SHA256_HEX_LEN && is_hex(hex)) {
    _cleanup_free_ char *d = xasprintf("sha256:%s", hex);
    *manifest = query_text(
        s, "SELECT manifest_digest FROM images WHERE manifest_digest = ?1 OR config_digest = ?1", d,
        &n, err);
  }
  if (*manifest == NULL && strcmp(hex, ref) == 0) {
    sw_error_t perr = NULL;
    _cleanup_(sw_ref_freep) sw_ref_t *r = NULL;
    if (sw_ref_parse(ref, &r, &perr) == 0) {
      _cleanup_free_ char *name = sw_ref_string(r);
      if (r->digest)
        *manifest = query_text(s, "SELECT manifest_digest FROM images WHERE manifest_digest = ?",
                               r->digest, &n, err);
      else
        *manifest =
            query_text(s, "SELECT manifest_digest FROM names WHERE name = ?", name, &n, err);
      *by_name = *manifest != NULL && r->digest == NULL;
    } else if (!is_hex(hex)) {
      sw_db_unlock(s);
      *err = perr;
      return -1;
    }
    sw_error_release(&perr);
  }
  if (*manifest == NULL && strlen(hex) >= 4 && strlen(hex) < SW_SHA256_HEX_LEN && is_hex(hex)) {
    _cleanup_free_ char *like = xasprintf("sha256:%s%%", hex);
    *manifest = query_text(
        s, "SELECT DISTINCT manifest_digest FROM images WHERE config_digest LIKE ?", like, &n, err);
    if (n > 1) {
      sw_db_unlock(s);
      free(steal_ptr(manifest));
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "image ID `%s` is ambiguous: give more characters", ref);
    }
  }
  sw_db_unlock(s);
  return *manifest ? 1 : 0;
}

int
sw_image_get_plain(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err)
{
  _cleanup_free_ char *m = NULL;
  bool by_name;
  int r = resolve(s, ref, &m, &by_name, err);
  if (r <= 0)
    return r;
  return load_image(s, m, out, err) < 0 ? -1 : 1;
}

int
sw_image_get(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err)
{
  int r = sw_image_get_plain(s, ref, out, err);
  if (r != 0)
    return r;
  /* an index name: the host platform's image */
  if (sw_index_get(s, ref, NULL, err) != 1)
    return r;
  return sw_image_get_platform(s, ref, NULL, out, err);
}

int
sw_image_load_recorded(sw_store_t *s, const char *manifest_digest, sw_image_t **out,
                       sw_error_t *err)
{
  sw_db_lock(s);
  int n = 0;
  _cleanup_free_ char *m = query_text(
      s, "SELECT manifest_digest FROM images WHERE manifest_digest = ?", manifest_digest, &n, err);
  sw_db_unlock(s);
  if (m == NULL)
    return 0;
  return load_image(s, m, out, err) < 0 ? -1 : 1;
}

int
sw_image_find(sw_store_t *s, const char *ref, sw_image_t **out, sw_error_t *err)
{
  int r = sw_image_get(s, ref, out, err);
  if (r == 0)
    return sw_error(err, 0, "no such image `%s` in `%s` (see `slipway images`)", ref, s->root);
  return r < 0 ? -1 : 0;
}

/* tag of an index: the index gets the name (sw_index_commit_blob keeps its rows). */
static int
tag_index(sw_store_t *s, const char *ref, char *const *names, sw_error_t *err)
{
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  int r = sw_index_get(s, ref, &idx, err);
  if (r == 0)
    return sw_error(err, 0, "no such image `%s` in `%s` (see `slipway images`)", ref, s->root);
  return r < 0 ? -1 : sw_index_commit_blob(s, idx->digest, names, NULL, err);
}

int
sw_image_tag(sw_store_t *s, const char *ref, const char *new_name, sw_error_t *err)
{
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  char *names[] = {(char *)new_name, NULL};
  int r = sw_image_get_plain(s, ref, &img, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return tag_index(s, ref, names, err);
  if (sw_db_begin(s, err) < 0)
    return -1;
  r = insert_names(s, img->manifest_digest, names, err);
  return sw_db_end(s, r == 0, err);
}

/* Remove one name (normalised) inside a transaction: 1 removed, 0 not there, -1 error. */
static int
delete_name(sw_store_t *s, const char *name, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, "DELETE FROM names WHERE name = ?", err);
  if (st == NULL)
    return -1;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->db) > 0
                                         : sw_db_error(s, err, "remove name");
}

int
sw_image_untag(sw_store_t *s, const char *name, sw_error_t *err)
{
  _cleanup_free_ char *n = sw_ref_normalize(name, err);
  if (n == NULL || sw_db_begin(s, err) < 0)
    return -1;
  int r = delete_name(s, n, err);
  if (sw_db_end(s, r >= 0, err) < 0)
    return -1;
  return r;
}

static int
delete_rows(sw_store_t *s, const char *manifest, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "DELETE FROM images WHERE manifest_digest = ?", err);
  if (st == NULL)
    return -1;
  sqlite3_bind_text(st, 1, manifest, -1, SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "delete image");
}

/* The same build step in two histories: what it ran, and whether it made a layer (its time
 * is left out: SOURCE_DATE_EPOCH may have rewritten it). */
static bool
same_step(json_t *a, json_t *b)
{
  const char *ca = json_string_value(json_object_get(a, "created_by"));
  const char *cb = json_string_value(json_object_get(b, "created_by"));
  return (ca == NULL) == (cb == NULL) && (ca == NULL || strcmp(ca, cb) == 0) &&
         json_is_true(json_object_get(a, "empty_layer")) ==
             json_is_true(json_object_get(b, "empty_layer"));
}

/* Is child built on parent: its layers and its history begin with all of parent's, and it
 * has more of either. */
static bool
builds_on(const sw_image_t *child, const sw_image_t *parent)
{
  if (strcmp(child->manifest_digest, parent->manifest_digest) == 0 ||
      child->n_layers < parent->n_layers)
    return false;
  for (size_t i = 0; i < parent->n_layers; i++)
    if (strcmp(child->layers[i].diff_id, parent->layers[i].diff_id) != 0)
      return false;
  json_t *ph = json_object_get(parent->config, "history");
  json_t *ch = json_object_get(child->config, "history");
  size_t np = json_array_size(ph), nc = json_array_size(ch);
  if (nc < np)
    return false;
  for (size_t i = 0; i < np; i++)
    if (!same_step(json_array_get(ph, i), json_array_get(ch, i)))
      return false;
  return nc > np || child->n_layers > parent->n_layers;
}

int
sw_image_children(sw_store_t *s, const sw_image_t *img, char **first, sw_error_t *err)
{
  sw_image_t **v;
  size_t n, count = 0;
  if (sw_image_list(s, &v, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (!builds_on(v[i], img))
      continue;
    if (count++ == 0 && first) {
      char *repo = NULL, *tag = NULL;
      if (v[i]->names && v[i]->names[0]) {
        sw_ref_display(v[i]->names[0], &repo, &tag);
        *first = xasprintf("%s:%s", repo, tag);
      } else {
        *first = xasprintf("%.12s", v[i]->config_digest + 7);
      }
      free(repo);
      free(tag);
    }
  }
  sw_image_list_free(v, n);
  return (int)count;
}

/* docker rmi's conflicts for an image given by ID or digest: 0 if it may go. */
static int
id_conflict(const sw_image_t *img, int children, const char *child, bool force,
            const sw_image_users_t *users, sw_error_t *err)
{
  const char *id = img->config_digest + 7;
  if (children > 0)
    return sw_error(err, 0,
                    "conflict: unable to delete %.12s (cannot be forced): %d image%s built on "
                    "it (`%s`%s): remove %s first",
                    id, children, children > 1 ? "s are" : " is", child,
                    children > 1 ? ", ..." : "", children > 1 ? "them" : "it");
  if (users->running)
    return sw_error(err, 0,
                    "conflict: unable to delete %.12s (cannot be forced): container %s is running "
                    "it: `slipway stop %s` and `slipway rm %s` first",
                    id, users->running, users->running, users->running);
  if (force)
    return 0;
  if (sw_strv_len(img->names) > 1)
    return sw_error(err, 0,
                    "image %.12s has several names (%s, ...): remove them by name or use --force",
                    id, img->names[0]);
  if (users->stopped)
    return sw_error(err, 0,
                    "conflict: unable to delete %.12s (must be forced): stopped container %s "
                    "uses it: `slipway rm %s` first, or --force",
                    id, users->stopped, users->stopped);
  return 0;
}

int
sw_image_delete(sw_store_t *s, const char *ref, bool force, const sw_image_users_t *users,
                char ***untagged, bool *deleted, sw_error_t *err)
{
  static const sw_image_users_t nobody = {NULL, NULL};
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_free_ char *m = NULL, *child = NULL;
  _cleanup_strv_ char **gone = xcalloc(1, sizeof(char *));
  bool by_name, remove_image = true;
  int r = resolve(s, ref, &m, &by_name, err);
  if (r == 0 && (r = sw_index_get(s, ref, NULL, err)) == 1) {
    if (sw_index_delete(s, ref, force, deleted, err) < 0)
      return -1;
    *untagged = steal_ptr(&gone);
    return 0;
  }
  if (r == 0)
    return sw_error(err, 0, "no such image `%s` in `%s` (see `slipway images`)", ref, s->root);
  if (r < 0 || load_image(s, m, &img, err) < 0)
    return -1;
  users = users ? users : &nobody;
  int children = sw_image_children(s, img, &child, err);
  if (children < 0)
    return -1;
  size_t n_names = sw_strv_len(img->names);
  if (by_name) {
    const char *ctr = users->running ? users->running : users->stopped;
    if (n_names == 1 && ctr && !force)
      return sw_error(err, 0,
                      "conflict: unable to remove the last name `%s` of image %.12s (must be "
                      "forced): container %s uses it: `slipway rm -f %s` first, or --force "
                      "(the image stays, untagged, while the container runs)",
                      ref, img->config_digest + 7, ctr, ctr);
    char *n = sw_ref_normalize(ref, err);
    if (n == NULL)
      return -1;
    sw_strv_push_take(&gone, n);
    /* the last name: the image goes unless something is built on it or runs it */
    remove_image = n_names == 1 && children == 0 && users->running == NULL;
  } else {
    if (id_conflict(img, children, child, force, users, err) < 0)
      return -1;
    for (size_t i = 0; i < n_names; i++)
      sw_strv_push(&gone, img->names[i]);
  }
  if (remove_image) {
    /* an index's image goes with the index (sw_index_delete), never alone */
    _cleanup_free_ char *in_index = NULL;
    int n_idx = 0;
    sw_db_lock(s);
    in_index = query_text(s, "SELECT index_digest FROM index_entries WHERE manifest_digest = ?", m,
                          &n_idx, err);
    sw_db_unlock(s);
    if (in_index)
      return sw_error(err, 0,
                      "image %.19s is part of image index %.19s: remove the index (`slipway rmi` "
                      "with its name or ID)",
                      img->config_digest, in_index);
  }
  if (sw_db_begin(s, err) < 0)
    return -1;
  r = 0;
  for (size_t i = 0; r == 0 && gone[i]; i++)
    r = delete_name(s, gone[i], err) < 0 ? -1 : 0;
  if (r == 0 && remove_image)
    r = delete_rows(s, m, err); /* names and image_layers go by ON DELETE CASCADE */
  if (sw_db_end(s, r == 0, err) < 0)
    return -1;
  *untagged = steal_ptr(&gone);
  *deleted = remove_image;
  return 0;
}

int
sw_image_touch(sw_store_t *s, const char *manifest_digest, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "UPDATE images SET last_used = ? WHERE manifest_digest = ?", err);
  int r = -1;
  if (st) {
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_text(st, 2, manifest_digest, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, "touch image");
  }
  return sw_db_end(s, r == 0, err);
}

int
sw_image_list(sw_store_t *s, sw_image_t ***out, size_t *n, sw_error_t *err)
{
  _cleanup_strv_ char **digests = xcalloc(1, sizeof(char *));
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(
      s, "SELECT manifest_digest FROM images ORDER BY created DESC, last_used DESC", err);
  if (st)
    while (sqlite3_step(st) == SQLITE_ROW)
      sw_strv_push(&digests, (const char *)sqlite3_column_text(st, 0));
  sw_db_unlock(s);
  if (st == NULL)
    return -1;
  size_t k = sw_strv_len(digests);
  sw_image_t **v = xcalloc(k + 1, sizeof(*v));
  for (size_t i = 0; i < k; i++)
    if (load_image(s, digests[i], &v[i], err) < 0) {
      sw_image_list_free(v, i);
      return -1;
    }
  *out = v;
  *n = k;
  return 0;
}

void
sw_image_list_free(sw_image_t **v, size_t n)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    sw_image_free(v[i]);
  free(v);
}
