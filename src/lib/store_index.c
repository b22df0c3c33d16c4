/* slipway: image indexes in the store (multi-platform images): commit (an index blob written
 * from recorded images, or one stored already by pull/load), lookup by name or digest, the
 * entry for a platform, list, delete. As for images, the blob is the truth and the rows
 * (indexes, index_entries, index_names) index it. See store.h. */
#include "store_internal.h"
#include "platform.h"
#include "registry-private.h" /* sw_rmanifest_parse: one parser of indexes */

#include <ctype.h>
#include <time.h>

#define MAX_INDEX_BLOB (4u << 20)

void
sw_index_free(sw_index_t *idx)
{
  if (idx == NULL)
    return;
  free(idx->digest);
  for (size_t i = 0; i < idx->n_entries; i++) {
    free(idx->entries[i].manifest_digest);
    free(idx->entries[i].platform);
  }
  free(idx->entries);
  sw_strv_free(idx->names);
  free(idx);
}

const char *
sw_host_platform(void)
{
  static char p[48];
  if (p[0] == '\0') {
    _cleanup_free_ char *h = sw_platform_host();
    snprintf(p, sizeof(p), "%s", h);
  }
  return p;
}

/* Normalised (containerd's rules: platform.h), or a copy of p when it is not a platform. */
static char *
norm(const char *p)
{
  char *out = NULL;
  sw_error_t e = NULL;
  if (sw_platform_normalize(p, &out, &e) < 0) {
    sw_error_release(&e);
    return xstrdup(p);
  }
  return out;
}

const sw_index_entry_t *
sw_index_entry_for(const sw_index_t *idx, const char *platform, sw_error_t *err)
{
  const char *asked = platform ? platform : sw_host_platform();
  _cleanup_free_ char *want = NULL;
  if (sw_platform_normalize(asked, &want, err) < 0)
    return NULL;
  /* "linux/arm" (no variant written) takes another arm variant when arm/v7 is not there */
  bool any_variant = strchr(strchr(asked, '/') + 1, '/') == NULL;
  _cleanup_free_ char *wos = NULL, *warch = NULL, *wvar = NULL;
  sw_platform_split(want, &wos, &warch, &wvar);
  const sw_index_entry_t *other_variant = NULL;
  for (size_t i = 0; i < idx->n_entries; i++) {
    _cleanup_free_ char *have = norm(idx->entries[i].platform);
    if (strcmp(have, want) == 0)
      return &idx->entries[i];
    _cleanup_free_ char *os = NULL, *arch = NULL, *var = NULL;
    sw_platform_split(have, &os, &arch, &var);
    if (any_variant && other_variant == NULL && strcmp(os, wos) == 0 && strcmp(arch, warch) == 0)
      other_variant = &idx->entries[i];
  }
  if (other_variant)
    return other_variant;
  _cleanup_buf_ sw_buf_t list = {0};
  for (size_t i = 0; i < idx->n_entries; i++)
    sw_buf_printf(&list, "%s%s", i ? ", " : "", idx->entries[i].platform);
  const char *name = idx->names && idx->names[0] ? idx->names[0] : idx->digest;
  sw_error(err, 0,
           "image index `%s` has no image for platform %s (it has: %s): choose one with "
           "`--platform`",
           name, asked, list.len ? list.data : "none");
  return NULL;
}

/* ---- rows ---- */

static char **
index_names_of(sw_store_t *s, const char *digest, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT name FROM index_names WHERE index_digest = ? ORDER BY name", err);
  if (st == NULL)
    return NULL;
  char **v = xcalloc(1, sizeof(*v));
  sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW)
    sw_strv_push(&v, (const char *)sqlite3_column_text(st, 0));
  return v;
}

/* The rows of a recorded index (db locked by the caller): 1, 0 not recorded, -1. */
static int
load_index(sw_store_t *s, const char *digest, sw_index_t **out, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *ix =
      sw_db_prepare(s, "SELECT size, created FROM indexes WHERE digest = ?", err);
  _cleanup_stmt_ sqlite3_stmt *en =
      sw_db_prepare(s,
                    "SELECT manifest_digest, manifest_size, platform FROM index_entries "
                    "WHERE index_digest = ? ORDER BY idx",
                    err);
  if (!ix || !en)
    return -1;
  sqlite3_bind_text(ix, 1, digest, -1, SQLITE_STATIC);
  if (sqlite3_step(ix) != SQLITE_ROW)
    return 0;
  _cleanup_(sw_index_freep) sw_index_t *idx = xcalloc(1, sizeof(*idx));
  idx->digest = xstrdup(digest);
  idx->size = sqlite3_column_int64(ix, 0);
  idx->created = sqlite3_column_int64(ix, 1);
  sqlite3_bind_text(en, 1, digest, -1, SQLITE_STATIC);
  while (sqlite3_step(en) == SQLITE_ROW) {
    idx->entries = xrealloc(idx->entries, (idx->n_entries + 1) * sizeof(*idx->entries));
    sw_index_entry_t *e = &idx->entries[idx->n_entries++];
    e->manifest_digest = xstrdup((const char *)sqlite3_column_text(en, 0));
    e->manifest_size = sqlite3_column_int64(en, 1);
    e->platform = xstrdup((const char *)sqlite3_column_text(en, 2));
  }
  idx->names = index_names_of(s, digest, err);
  if (idx->names == NULL)
    return -1;
  *out = steal_ptr(&idx);
  return 1;
}

/* Give names to the index (taken from any image or index that had them). */
static int
insert_index_names(sw_store_t *s, const char *digest, char *const *names, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *del = sw_db_prepare(s, "DELETE FROM names WHERE name = ?", err);
  _cleanup_stmt_ sqlite3_stmt *ins = sw_db_prepare(
      s, "INSERT OR REPLACE INTO index_names (name, index_digest, created) VALUES (?,?,?)", err);
  if (!del || !ins)
    return -1;
  for (size_t i = 0; names && names[i]; i++) {
    _cleanup_free_ char *n = sw_ref_normalize(names[i], err);
    if (n == NULL)
      return -1;
    sqlite3_reset(del);
    sqlite3_reset(ins);
    sqlite3_bind_text(del, 1, n, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 1, n, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, (int64_t)time(NULL));
    if (sqlite3_step(del) != SQLITE_DONE || sqlite3_step(ins) != SQLITE_DONE)
      return sw_db_error(s, err, "record index name");
  }
  return 0;
}

static int
insert_index_rows(sw_store_t *s, const sw_index_t *idx, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *ix =
      sw_db_prepare(s, "INSERT OR IGNORE INTO indexes (digest, size, created) VALUES (?,?,?)", err);
  _cleanup_stmt_ sqlite3_stmt *del =
      sw_db_prepare(s, "DELETE FROM index_entries WHERE index_digest = ?", err);
  _cleanup_stmt_ sqlite3_stmt *en = sw_db_prepare(
      s,
      "INSERT INTO index_entries (index_digest, idx, manifest_digest, manifest_size, platform) "
      "VALUES (?,?,?,?,?)",
      err);
  if (!ix || !del || !en)
    return -1;
  sqlite3_bind_text(ix, 1, idx->digest, -1, SQLITE_STATIC);
  sqlite3_bind_int64(ix, 2, idx->size);
  sqlite3_bind_int64(ix, 3, idx->created);
  sqlite3_bind_text(del, 1, idx->digest, -1, SQLITE_STATIC);
  if (sqlite3_step(ix) != SQLITE_DONE || sqlite3_step(del) != SQLITE_DONE)
    return sw_db_error(s, err, "record index");
  for (size_t i = 0; i < idx->n_entries; i++) {
    sqlite3_reset(en);
    sqlite3_bind_text(en, 1, idx->digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(en, 2, (int64_t)i);
    sqlite3_bind_text(en, 3, idx->entries[i].manifest_digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(en, 4, idx->entries[i].manifest_size);
    sqlite3_bind_text(en, 5, idx->entries[i].platform, -1, SQLITE_STATIC);
    if (sqlite3_step(en) != SQLITE_DONE)
      return sw_db_error(s, err, "record index entry");
  }
  return 0;
}

/* Rows and names of idx (its blob is stored) in one transaction; idx->names gets all its names. */
static int
record_index(sw_store_t *s, sw_index_t *idx, char *const *names, sw_error_t *err)
{
  if (sw_db_begin(s, err) < 0)
    return -1;
  bool ok =
      insert_index_rows(s, idx, err) == 0 && insert_index_names(s, idx->digest, names, err) == 0;
  char **all = ok ? index_names_of(s, idx->digest, err) : NULL;
  if (sw_db_end(s, ok && all, err) < 0) {
    sw_strv_free(all);
    return -1;
  }
  sw_strv_free(idx->names);
  idx->names = all;
  return 0;
}

static void
add_entry(sw_index_t *idx, const sw_image_t *img, const char *platform)
{
  idx->entries = xrealloc(idx->entries, (idx->n_entries + 1) * sizeof(*idx->entries));
  sw_index_entry_t *e = &idx->entries[idx->n_entries++];
  e->manifest_digest = xstrdup(img->manifest_digest);
  e->manifest_size = img->manifest_size;
  e->platform = platform ? norm(platform) : sw_platform_of_config(img->config);
  if (img->created > idx->created)
    idx->created = img->created;
}

/* The index blob's JSON for idx's entries (OCI index; platform objects from the entries). */
static char *
index_json(const sw_index_t *idx, sw_error_t *err)
{
  json_t *ms = json_array();
  for (size_t i = 0; i < idx->n_entries; i++) {
    _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
    sw_platform_split(idx->entries[i].platform, &os, &arch, &variant);
    json_t *pj = json_pack("{s:s, s:s}", "architecture", arch, "os", os);
    if (variant[0])
      json_object_set_new(pj, "variant", json_string(variant));
    json_array_append_new(ms, json_pack("{s:s, s:s, s:I, s:o}", "mediaType", SW_MT_OCI_MANIFEST,
                                        "digest", idx->entries[i].manifest_digest, "size",
                                        (json_int_t)idx->entries[i].manifest_size, "platform", pj));
  }
  json_t *j = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", SW_MT_OCI_INDEX,
                        "manifests", ms);
  char *text = sw_json_dump(j);
  json_decref(j);
  return text;
}

int
sw_index_commit(sw_store_t *s, char *const *manifest_digests, char *const *names, sw_index_t **out,
                sw_error_t *err)
{
  return sw_index_commit_platforms(s, manifest_digests, NULL, names, out, err);
}

int
sw_index_commit_platforms(sw_store_t *s, char *const *manifest_digests, char *const *platforms,
                          char *const *names, sw_index_t **out, sw_error_t *err)
{
  _cleanup_(sw_index_freep) sw_index_t *idx = xcalloc(1, sizeof(*idx));
  for (size_t i = 0; manifest_digests && manifest_digests[i]; i++) {
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    int r = sw_image_load_recorded(s, manifest_digests[i], &img, err);
    if (r == 0)
      return sw_error(err, 0, "index entry %s is not an image of the store", manifest_digests[i]);
    if (r < 0)
      return -1;
    add_entry(idx, img, platforms ? platforms[i] : NULL);
    for (size_t k = 0; k + 1 < idx->n_entries; k++)
      if (strcmp(idx->entries[k].platform, idx->entries[i].platform) == 0)
        return sw_error(err, 0, "images %s and %s are both %s: an index has one per platform",
                        idx->entries[k].manifest_digest, manifest_digests[i],
                        idx->entries[i].platform);
  }
  if (idx->n_entries == 0)
    return sw_error(err, 0, "an image index needs at least one image");
  _cleanup_free_ char *text = index_json(idx, err);
  if (text == NULL || sw_blob_put(s, text, strlen(text), NULL, &idx->digest, err) < 0)
    return -1;
  idx->size = (int64_t)strlen(text);
  if (record_index(s, idx, names, err) < 0)
    return -1;
  if (out)
    *out = steal_ptr(&idx);
  return 0;
}

static bool
is_attestation(const sw_desc_t *d)
{
  return d->os && d->arch && strcmp(d->os, "unknown") == 0 && strcmp(d->arch, "unknown") == 0;
}

int
sw_index_commit_blob(sw_store_t *s, const char *index_digest, char *const *names, sw_index_t **out,
                     sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  _cleanup_(sw_rmanifest_freep) sw_rmanifest_t *m = NULL;
  size_t len;
  if (sw_blob_read(s, index_digest, MAX_INDEX_BLOB, &text, &len, err) < 0 ||
      sw_rmanifest_parse(text, len, NULL, &m, err) < 0)
    return sw_error_wrap(err, "image index %s", index_digest);
  if (m->kind != SW_MANIFEST_INDEX)
    return sw_error(err, 0, "%s is an image manifest, not an index", index_digest);
  _cleanup_(sw_index_freep) sw_index_t *idx = xcalloc(1, sizeof(*idx));
  idx->digest = xstrdup(index_digest);
  idx->size = (int64_t)len;
  for (size_t i = 0; i < m->n_manifests; i++) {
    const sw_desc_t *d = &m->manifests[i];
    _cleanup_(sw_image_freep) sw_image_t *img = NULL;
    int r = sw_image_load_recorded(s, d->digest, &img, err);
    if (r < 0)
      return sw_error_wrap(err, "image index %s, entry %zu", index_digest, i);
    if (r == 0 && is_attestation(d))
      continue;
    if (r == 0)
      return sw_error(err, 0, "image index %s: entry %zu (%s) is not an image of the store",
                      index_digest, i, d->digest);
    _cleanup_free_ char *p = d->os && d->arch
                                 ? xasprintf("%s/%s%s%s", d->os, d->arch, d->variant ? "/" : "",
                                             d->variant ? d->variant : "")
                                 : NULL;
    add_entry(idx, img, p);
  }
  if (idx->n_entries == 0)
    return sw_error(err, 0, "image index %s lists no image", index_digest);
  if (record_index(s, idx, names, err) < 0)
    return -1;
  if (out)
    *out = steal_ptr(&idx);
  return 0;
}

/* ---- lookup ---- */

static bool
all_hex(const char *s)
{
  for (; *s; s++)
    if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
      return false;
  return true;
}

/* The digest column of sql's first row for "sha256:" + hex: 1, 0, -1. */
static int
query_digest(sw_store_t *s, const char *sql, const char *hex, char **digest, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  if (st == NULL)
    return -1;
  _cleanup_free_ char *d = xasprintf("sha256:%s", hex);
  sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    *digest = xstrdup((const char *)sqlite3_column_text(st, 0));
  return *digest ? 1 : 0;
}

/* The index a name (or name@digest) names: 1, 0 (also when ref is not a name), -1. A name of
 * an image of the store sets *image_name (then no ID prefix is tried: names come first). */
static int
index_by_name(sw_store_t *s, const char *ref, char **digest, bool *image_name, sw_error_t *err)
{
  sw_error_t perr = NULL;
  _cleanup_(sw_ref_freep) sw_ref_t *r = NULL;
  if (sw_ref_parse(ref, &r, &perr) < 0) {
    sw_error_release(&perr);
    return 0; /* not a name: sw_image_get reports it */
  }
  _cleanup_free_ char *name = sw_ref_string(r);
  _cleanup_stmt_ sqlite3_stmt *st =
      r->digest ? sw_db_prepare(s, "SELECT digest FROM indexes WHERE digest = ?", err)
                : sw_db_prepare(s,
                                "SELECT index_digest FROM index_names WHERE name = ?1 UNION ALL "
                                "SELECT '' FROM names WHERE name = ?1",
                                err);
  if (st == NULL)
    return -1;
  sqlite3_bind_text(st, 1, r->digest ? r->digest : name, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW)
    return 0;
  const char *d = (const char *)sqlite3_column_text(st, 0);
  *image_name = *d == '\0';
  *digest = *d ? xstrdup(d) : NULL;
  return *digest ? 1 : 0;
}

/* The index ref names, as sw_image_get resolves an image: a full digest, then a name, then an
 * unambiguous digest prefix (>= 4 hex). 1, 0, -1 (ambiguous). *by_name: ref is one of its
 * names. */
static int
resolve_index(sw_store_t *s, const char *ref, char **digest, bool *by_name, sw_error_t *err)
{
  const char *hex = sw_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
  bool image_name = false;
  *digest = NULL;
  *by_name = false;
  if (strlen(hex) == SW_SHA256_HEX_LEN && all_hex(hex))
    return query_digest(s, "SELECT digest FROM indexes WHERE digest = ?", hex, digest, err);
  if (hex == ref) {
    int r = index_by_name(s, ref, digest, &image_name, err);
    *by_name = r == 1 && strchr(ref, '@') == NULL;
    if (r != 0 || image_name)
      return r;
  }
  if (strlen(hex) < 4 || !all_hex(hex))
    return 0;
  _cleanup_free_ char *like = xasprintf("sha256:%s%%", hex);
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT digest FROM indexes WHERE digest LIKE ? LIMIT 2", err);
  if (st == NULL)
    return -1;
  sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW && n++ == 0)
    *digest = xstrdup((const char *)sqlite3_column_text(st, 0));
  if (n > 1) {
    free(steal_ptr(digest));
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "image index ID `%s` is ambiguous: give more characters", ref);
  }
  return *digest ? 1 : 0;
}

static int
get_index(sw_store_t *s, const char *ref, sw_index_t **out, bool *by_name, sw_error_t *err)
{
  _cleanup_free_ char *d = NULL;
  bool named;
  sw_db_lock(s);
  int r = resolve_index(s, ref, &d, &named, err);
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  if (r == 1)
    r = load_index(s, d, &idx, err);
  sw_db_unlock(s);
  if (r == 1 && out)
    *out = steal_ptr(&idx);
  if (by_name)
    *by_name = named;
  return r;
}

int
sw_index_get(sw_store_t *s, const char *ref, sw_index_t **out, sw_error_t *err)
{
  return get_index(s, ref, out, NULL, err);
}

int
sw_index_list(sw_store_t *s, sw_index_t ***out, size_t *n, sw_error_t *err)
{
  _cleanup_strv_ char **digests = xcalloc(1, sizeof(char *));
  sw_db_lock(s);
  _cleanup_stmt_ sqlite3_stmt *st =
      sw_db_prepare(s, "SELECT digest FROM indexes ORDER BY created DESC, digest", err);
  if (st)
    while (sqlite3_step(st) == SQLITE_ROW)
      sw_strv_push(&digests, (const char *)sqlite3_column_text(st, 0));
  size_t k = sw_strv_len(digests), got = 0;
  sw_index_t **v = xcalloc(k + 1, sizeof(*v));
  int r = st ? 1 : -1;
  for (; r >= 0 && got < k; got++)
    r = load_index(s, digests[got], &v[got], err);
  sw_db_unlock(s);
  if (r < 0) {
    sw_index_list_free(v, got);
    return -1;
  }
  *out = v;
  *n = k;
  return 0;
}

void
sw_index_list_free(sw_index_t **v, size_t n)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    sw_index_free(v[i]);
  free(v);
}

int
sw_image_get_platform(sw_store_t *s, const char *ref, const char *platform, sw_image_t **out,
                      sw_error_t *err)
{
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  int r = sw_index_get(s, ref, &idx, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return sw_image_get_plain(s, ref, out, err);
  const sw_index_entry_t *e = sw_index_entry_for(idx, platform, err);
  if (e == NULL)
    return -1;
  r = sw_image_load_recorded(s, e->manifest_digest, out, err);
  if (r == 0)
    return sw_error(err, 0,
                    "image index `%s`: its %s image %s is not in the store (run `slipway fsck`)",
                    ref, e->platform, e->manifest_digest);
  return r < 0 ? -1 : 1;
}

/* ---- delete ---- */

static int
exec_bound(sw_store_t *s, const char *sql, const char *arg, const char *what, sw_error_t *err)
{
  _cleanup_stmt_ sqlite3_stmt *st = sw_db_prepare(s, sql, err);
  if (st == NULL)
    return -1;
  sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : sw_db_error(s, err, what);
}

/* The index row goes, then each of its images that nothing else keeps. */
static int
delete_index_rows(sw_store_t *s, const sw_index_t *idx, sw_error_t *err)
{
  if (exec_bound(s, "DELETE FROM indexes WHERE digest = ?", idx->digest, "delete index", err) < 0)
    return -1;
  for (size_t i = 0; i < idx->n_entries; i++)
    if (exec_bound(s,
                   "DELETE FROM images WHERE manifest_digest = ?1 "
                   "AND ?1 NOT IN (SELECT manifest_digest FROM names) "
                   "AND ?1 NOT IN (SELECT manifest_digest FROM index_entries)",
                   idx->entries[i].manifest_digest, "delete index image", err) < 0)
      return -1;
  return 0;
}

int
sw_index_delete(sw_store_t *s, const char *ref, bool force, bool *deleted, sw_error_t *err)
{
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  bool by_name;
  int r = get_index(s, ref, &idx, &by_name, err);
  if (r == 0)
    return sw_error(err, 0, "no such image index `%s` in `%s`", ref, s->root);
  if (r < 0)
    return -1;
  size_t n_names = sw_strv_len(idx->names);
  if (!by_name && n_names > 1 && !force)
    return sw_error(err, 0,
                    "image index %.19s has several names (%s, ...): remove them by name or use "
                    "--force",
                    idx->digest, idx->names[0]);
  if (sw_db_begin(s, err) < 0)
    return -1;
  bool untag = by_name && n_names > 1;
  _cleanup_free_ char *name = untag ? sw_ref_normalize(ref, err) : NULL;
  if (untag)
    r = name ? exec_bound(s, "DELETE FROM index_names WHERE name = ?", name, "remove name", err)
             : -1;
  else
    r = delete_index_rows(s, idx, err);
  if (sw_db_end(s, r == 0, err) < 0)
    return -1;
  if (deleted)
    *deleted = !untag;
  return 0;
}

/* ---- a name for the images of several platforms ---- */

static bool
same_platform(const char *a, const char *b)
{
  _cleanup_free_ char *na = NULL, *nb = NULL;
  sw_error_t e = NULL;
  if (sw_platform_normalize(a, &na, &e) < 0 || sw_platform_normalize(b, &nb, &e) < 0) {
    sw_error_release(&e);
    return strcmp(a, b) == 0;
  }
  return strcmp(na, nb) == 0;
}

int
sw_index_name_platform(sw_store_t *s, const char *ref, const char *image_id, const char *platform,
                       sw_error_t *err)
{
  _cleanup_(sw_index_freep) sw_index_t *idx = NULL;
  _cleanup_(sw_image_freep) sw_image_t *img = NULL;
  _cleanup_(sw_image_freep) sw_image_t *held = NULL;
  _cleanup_strv_ char **keep = xcalloc(1, sizeof(char *));

  if (strchr(ref, '@'))
    return 0; /* a digest names nothing */
  _cleanup_free_ char *name = sw_ref_normalize(ref, err);
  if (name == NULL)
    return -1;
  int f = sw_image_get(s, image_id, &img, err);
  if (f <= 0)
    return f < 0 ? sw_error_wrap(err, "name `%s`", name)
                 : sw_error(err, 0, "name `%s`: image %s is not in the store", name, image_id);
  f = sw_index_get(s, name, &idx, err);
  if (f < 0)
    return -1;
  if (f == 1) {
    for (size_t i = 0; i < idx->n_entries; i++)
      if (!same_platform(idx->entries[i].platform, platform))
        sw_strv_push(&keep, idx->entries[i].manifest_digest);
  } else {
    f = sw_image_get(s, name, &held, err);
    if (f < 0)
      return -1;
    _cleanup_free_ char *has = f == 1 ? sw_platform_of_config(held->config) : NULL;
    if (has && !same_platform(has, platform) &&
        strcmp(held->manifest_digest, img->manifest_digest) != 0)
      sw_strv_push(&keep, held->manifest_digest);
  }
  if (keep[0] == NULL)
    return sw_image_tag(s, image_id, name, err);
  sw_strv_push(&keep, img->manifest_digest);
  char *names[] = {(char *)name, NULL};
  return sw_index_commit(s, keep, names, NULL, err);
}
