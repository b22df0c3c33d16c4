/* slipway: docker-archive / oci-archive / OCI layout export and import. See archive.h. */
#include "image_archive.h"

#include "compress.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MAX_META (16u << 20)

int
sw_archive_format_parse(const char *s, sw_archive_format_t *out, sw_error_t *err)
{
  if (strcmp(s, "docker") == 0 || strcmp(s, "docker-archive") == 0)
    *out = SW_ARCHIVE_DOCKER;
  else if (strcmp(s, "oci") == 0 || strcmp(s, "oci-archive") == 0)
    *out = SW_ARCHIVE_OCI;
  else if (strcmp(s, "oci-dir") == 0 || strcmp(s, "oci-layout") == 0)
    *out = SW_ARCHIVE_OCI_DIR;
  else
    return sw_error_code(err, SW_EXIT_USAGE, 0,
                         "unknown archive format `%s` (use docker, oci or oci-dir)", s);
  return 0;
}

/* ---- output: a tar stream or a directory, behind two functions ---- */

typedef struct {
  struct archive *a; /* tar output, or NULL for a directory */
  char *dir;
  sw_store_t *s;
  char **written; /* blob hexes already written */
} out_t;

static int
out_file_data(out_t *o, const char *name, const void *data, size_t len, sw_error_t *err)
{
  if (o->a == NULL) {
    _cleanup_free_ char *p = xasprintf("%s/%s", o->dir, name);
    return sw_write_file_atomic(p, data, len, 0644, err);
  }
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)len);
  archive_entry_set_mtime(e, 0, 0);
  int r = archive_write_header(o->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK || (len && archive_write_data(o->a, data, len) != (la_ssize_t)len))
    return sw_error(err, 0, "write `%s` to archive: %s", name, archive_error_string(o->a));
  return 0;
}

static int
out_dir_entry(out_t *o, const char *name, sw_error_t *err)
{
  if (o->a == NULL) {
    _cleanup_free_ char *p = xasprintf("%s/%s", o->dir, name);
    return sw_mkdir_p(p, 0755, err);
  }
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFDIR);
  archive_entry_set_perm(e, 0755);
  archive_entry_set_mtime(e, 0, 0);
  int r = archive_write_header(o->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK)
    return sw_error(err, 0, "write `%s` to archive: %s", name, archive_error_string(o->a));
  return 0;
}

/* Copy a stored blob as blobs/sha256/<hex>: a hard link (or a copy) for a directory, streamed
 * for a tar. Each blob once. */
static int
out_blob(out_t *o, const char *digest, sw_error_t *err)
{
  const char *hex = digest + 7;
  if (sw_strv_contains(o->written, hex))
    return 0;
  sw_strv_push(&o->written, hex);
  _cleanup_free_ char *name = xasprintf("blobs/sha256/%s", hex);
  int64_t size;
  _cleanup_close_ int fd = sw_blob_open(o->s, digest, &size, err);
  if (fd < 0)
    return -1;
  if (o->a == NULL) {
    _cleanup_free_ char *src = sw_blob_path(o->s, digest);
    _cleanup_free_ char *dst = xasprintf("%s/%s", o->dir, name);
    if (link(src, dst) == 0 || errno == EEXIST)
      return 0;
    _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
      return sw_error(err, errno, "create `%s`", dst);
    for (int64_t left = size; left > 0;) {
      ssize_t n = copy_file_range(fd, NULL, out, NULL, (size_t)left, 0);
      if (n <= 0)
        return sw_error(err, n < 0 ? errno : EIO, "copy blob to `%s`", dst);
      left -= n;
    }
    return 0;
  }
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, size);
  archive_entry_set_mtime(e, 0, 0);
  int r = archive_write_header(o->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK)
    return sw_error(err, 0, "write `%s` to archive: %s", name, archive_error_string(o->a));
  /* On the heap: a 1 MiB __thread array was zeroed at every pthread_create of the process. */
  enum { BUF_SIZE = 1 << 20 };
  _cleanup_free_ char *buf = xmalloc(BUF_SIZE);
  ssize_t n;
  while ((n = read(fd, buf, BUF_SIZE)) > 0)
    if (archive_write_data(o->a, buf, (size_t)n) != n)
      return sw_error(err, 0, "write `%s` to archive: %s", name, archive_error_string(o->a));
  if (n < 0)
    return sw_error(err, errno, "read blob %s", digest);
  return 0;
}

static int
out_image_blobs(out_t *o, const sw_image_t *img, sw_error_t *err)
{
  if (out_blob(o, img->manifest_digest, err) < 0 || out_blob(o, img->config_digest, err) < 0)
    return -1;
  for (size_t i = 0; i < img->n_layers; i++)
    if (out_blob(o, img->layers[i].digest, err) < 0)
      return -1;
  return 0;
}

/* One thing saved: an image, or an index with its images in the index's order. */
typedef struct {
  sw_image_t *img;       /* not owned */
  const sw_index_t *idx; /* not owned */
  sw_image_t **plat;     /* the index's images (owned) */
  size_t n_plat;
  const char *name;
} item_t;

static int
out_item_blobs(out_t *o, const item_t *it, sw_error_t *err)
{
  if (it->img)
    return out_image_blobs(o, it->img, err);
  if (out_blob(o, it->idx->digest, err) < 0)
    return -1;
  for (size_t i = 0; i < it->n_plat; i++)
    if (out_image_blobs(o, it->plat[i], err) < 0)
      return -1;
  return 0;
}

/* index.json: one descriptor per image or index, named the way BuildKit's oci exporter names
 * them. */
static int
out_index(out_t *o, const item_t *items, size_t n, sw_error_t *err)
{
  json_t *ms = json_array();
  for (size_t i = 0; i < n; i++) {
    const item_t *it = &items[i];
    json_t *d =
        it->img ? json_pack("{s:s, s:s, s:I}", "mediaType", SW_MT_OCI_MANIFEST, "digest",
                            it->img->manifest_digest, "size", (json_int_t)it->img->manifest_size)
                : json_pack("{s:s, s:s, s:I}", "mediaType", SW_MT_OCI_INDEX, "digest",
                            it->idx->digest, "size", (json_int_t)it->idx->size);
    sw_ref_t *r = NULL;
    sw_error_t e = NULL;
    if (it->name && sw_ref_parse(it->name, &r, &e) == 0 && r->tag) {
      _cleanup_free_ char *full = sw_ref_string(r);
      json_object_set_new(d, "annotations",
                          json_pack("{s:s, s:s}", "io.containerd.image.name", full,
                                    SW_ANNOTATION_REF_NAME, r->tag));
    }
    sw_ref_free(r);
    sw_error_release(&e);
    json_array_append_new(ms, d);
  }
  json_t *idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", SW_MT_OCI_INDEX,
                          "manifests", ms);
  _cleanup_free_ char *text = sw_json_dump(idx);
  json_decref(idx);
  static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  if (out_file_data(o, "oci-layout", layout, strlen(layout), err) < 0)
    return -1;
  return out_file_data(o, "index.json", text, strlen(text), err);
}

/* One manifest.json entry (and its `repositories` line when it has a name). */
static void
docker_meta_add(json_t *man, json_t *repos, const sw_image_t *img, const char *name)
{
  json_t *tags = json_array(), *layers = json_array();
  for (size_t l = 0; l < img->n_layers; l++)
    json_array_append_new(layers, json_sprintf("blobs/sha256/%s", img->layers[l].digest + 7));
  sw_ref_t *r = NULL;
  sw_error_t e = NULL;
  if (name && sw_ref_parse(name, &r, &e) == 0 && r->tag) {
    _cleanup_free_ char *repo = sw_ref_familiar_repository(r);
    json_array_append_new(tags, json_sprintf("%s:%s", repo, r->tag));
    if (img->n_layers) {
      json_t *t = json_object_get(repos, repo);
      if (t == NULL)
        json_object_set_new(repos, repo, t = json_object());
      json_object_set_new(t, r->tag, json_string(img->layers[img->n_layers - 1].digest + 7));
    }
  }
  sw_ref_free(r);
  sw_error_release(&e);
  json_array_append_new(man, json_pack("{s:o, s:o, s:o}", "Config",
                                       json_sprintf("blobs/sha256/%s", img->config_digest + 7),
                                       "RepoTags", tags, "Layers", layers));
}

/* Of an index's images, the one a docker without the containerd store gets the name: the
 * host platform's, else the first. */
static size_t
host_entry(const item_t *it)
{
  sw_error_t e = NULL;
  const sw_index_entry_t *h = sw_index_entry_for(it->idx, NULL, &e);
  sw_error_release(&e);
  for (size_t i = 0; h && i < it->n_plat; i++)
    if (strcmp(it->plat[i]->manifest_digest, h->manifest_digest) == 0)
      return i;
  return 0;
}

/* manifest.json and repositories, as `docker save` writes them. */
static int
out_docker_meta(out_t *o, const item_t *items, size_t n, sw_error_t *err)
{
  json_t *man = json_array(), *repos = json_object();
  for (size_t i = 0; i < n; i++) {
    const item_t *it = &items[i];
    if (it->img)
      docker_meta_add(man, repos, it->img, it->name);
    size_t h = it->idx ? host_entry(it) : 0;
    for (size_t k = 0; k < it->n_plat; k++)
      docker_meta_add(man, repos, it->plat[k], k == h ? it->name : NULL);
  }
  _cleanup_free_ char *mtext = json_dumps(man, JSON_COMPACT);
  _cleanup_free_ char *rtext = json_dumps(repos, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(man);
  json_decref(repos);
  if (out_file_data(o, "manifest.json", mtext, strlen(mtext), err) < 0)
    return -1;
  return out_file_data(o, "repositories", rtext, strlen(rtext), err);
}

static int
save_all(out_t *o, const item_t *items, size_t n, sw_archive_format_t fmt, sw_error_t *err)
{
  if (out_dir_entry(o, "blobs", err) < 0 || out_dir_entry(o, "blobs/sha256", err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (out_item_blobs(o, &items[i], err) < 0)
      return -1;
  if (out_index(o, items, n, err) < 0)
    return -1;
  if (fmt == SW_ARCHIVE_DOCKER)
    return out_docker_meta(o, items, n, err);
  return 0;
}

static int
save_to(sw_store_t *s, const item_t *items, size_t n, sw_archive_format_t fmt, const char *path,
        sw_error_t *err)
{
  out_t o = {.s = s};
  int r;
  if (fmt == SW_ARCHIVE_OCI_DIR) {
    o.dir = xstrdup(path);
    r = sw_mkdir_p(path, 0755, err);
    if (r == 0)
      r = save_all(&o, items, n, fmt, err);
    free(o.dir);
    sw_strv_free(o.written);
    return r < 0 ? sw_error_wrap(err, "saving to `%s`", path) : 0;
  }
  _cleanup_free_ char *tmp = strcmp(path, "-") == 0 ? NULL : xasprintf("%s.tmp.%d", path, getpid());
  /* A kill leaves tmp behind: the lease lets prune remove it once this process is gone. */
  sw_lease_t *lease = tmp ? sw_lease_new(s, tmp, err) : NULL;
  if (tmp && lease == NULL) {
    /* A full store must not stop a save to another disk (it is how space is made): then go
     * on without the lease, at the price of a leftover that prune cannot name if killed. */
    if ((*err)->status != ENOSPC && (*err)->status != EDQUOT)
      return sw_error_wrap(err, "saving to `%s`", path);
    sw_debug("%s: saving without a lease", (*err)->msg);
    sw_error_release(err);
  }
  o.a = archive_write_new();
  archive_write_set_format_pax_restricted(o.a);
  archive_write_set_bytes_in_last_block(o.a, 1);
  r = tmp ? archive_write_open_filename(o.a, tmp) : archive_write_open_fd(o.a, 1);
  if (r != ARCHIVE_OK)
    r = sw_error(err, 0, "create `%s`: %s", tmp ? tmp : "stdout", archive_error_string(o.a));
  else
    r = save_all(&o, items, n, fmt, err);
  if (r == 0 && archive_write_close(o.a) != ARCHIVE_OK)
    r = sw_error(err, 0, "write `%s`: %s", path, archive_error_string(o.a));
  archive_write_free(o.a);
  sw_strv_free(o.written);
  if (r == 0 && tmp && rename(tmp, path) < 0)
    r = sw_error(err, errno, "rename `%s` to `%s`", tmp, path);
  if (r < 0 && tmp)
    unlink(tmp);
  sw_lease_free(lease);
  return r < 0 ? sw_error_wrap(err, "saving to `%s`", path) : 0;
}

int
sw_archive_save_items(sw_store_t *s, const sw_archive_item_t *in, size_t n, sw_archive_format_t fmt,
                      const char *path, sw_error_t *err)
{
  item_t *items = xcalloc(n ? n : 1, sizeof(*items));
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    item_t *it = &items[i];
    *it = (item_t){.img = in[i].img, .idx = in[i].index, .name = in[i].name};
    if (it->idx == NULL)
      continue;
    it->plat = xcalloc(it->idx->n_entries ? it->idx->n_entries : 1, sizeof(*it->plat));
    for (size_t k = 0; k < it->idx->n_entries && r == 0; k++) {
      const sw_index_entry_t *e = &it->idx->entries[k];
      if (sw_image_find(s, e->manifest_digest, &it->plat[k], err) < 0)
        r = sw_error_wrap(err, "saving to `%s`: index %s (%s)", path, it->idx->digest, e->platform);
      else
        it->n_plat++;
    }
  }
  if (r == 0)
    r = save_to(s, items, n, fmt, path, err);
  for (size_t i = 0; i < n; i++) {
    sw_image_list_free(items[i].plat, items[i].n_plat);
  }
  free(items);
  return r;
}

int
sw_archive_save(sw_store_t *s, sw_image_t *const *imgs, const char *const *names, size_t n,
                sw_archive_format_t fmt, const char *path, sw_error_t *err)
{
  sw_archive_item_t *items = xcalloc(n ? n : 1, sizeof(*items));
  for (size_t i = 0; i < n; i++)
    items[i] = (sw_archive_item_t){.img = imgs[i], .name = names ? names[i] : NULL};
  int r = sw_archive_save_items(s, items, n, fmt, path, err);
  free(items);
  return r;
}

/* ---- load ---- */

/* "blobs/sha256/<64 hex>" -> "sha256:<hex>" in out (size >= SW_DIGEST_LEN + 1), else false. */
static bool
blob_entry_digest(const char *name, char *out)
{
  const char *hex = name + strlen("blobs/sha256/");
  if (!sw_str_has_prefix(name, "blobs/sha256/") || strlen(hex) != SW_SHA256_HEX_LEN)
    return false;
  snprintf(out, SW_DIGEST_LEN + 1, "sha256:%s", hex);
  return sw_digest_valid(out);
}

/* The archive being loaded: an unpacked/OCI directory, minus the blobs the store holds already
 * (not unpacked again: read from the store). Nothing else enters the store before every layer
 * of every image is staged: a refused layer leaves nothing behind. */
static sw_store_t *load_store;

static int
openat2_in_root(int root, const char *name, int flags, sw_error_t *err)
{
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT};
  char digest[SW_DIGEST_LEN + 1];
  int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof(how));
  if (fd < 0 && errno == ENOENT && load_store && blob_entry_digest(name, digest) &&
      sw_blob_exists(load_store, digest))
    return sw_blob_open(load_store, digest, NULL, err);
  if (fd < 0)
    return sw_error(err, errno, "archive entry `%s`", name);
  return fd;
}

/* Create the directories of name under root, never following a symlink. */
static int
mkdirs_beneath(int root, const char *name, sw_error_t *err)
{
  _cleanup_free_ char *p = xstrdup(name);
  char *slash = strrchr(p, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  int dfd = dup(root);
  for (char *c = strtok(p, "/"); c; c = strtok(NULL, "/")) {
    mkdirat(dfd, c, 0755);
    int n = openat(dfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (n < 0)
      return sw_error(err, errno, "archive entry `%s`", name);
    dfd = n;
  }
  close(dfd);
  return 0;
}

static bool
entry_name_ok(const char *n)
{
  if (*n == '/' || *n == '\0')
    return false;
  for (const char *c = n; c;) {
    if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || c[2] == '\0'))
      return false;
    c = strchr(c, '/');
    if (c)
      c++;
  }
  return true;
}

/* Unpack the archive's regular files, directories and symlinks into dir (in ROOT/tmp); blobs
 * are checked against their names when they are imported. */
static int
unpack(const char *path, int dirfd_, sw_error_t *err)
{
  struct archive *a = archive_read_new();
  struct archive_entry *e;
  char digest[SW_DIGEST_LEN + 1];
  int r = 0;
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  if ((strcmp(path, "-") == 0 ? archive_read_open_fd(a, 0, 1 << 20)
                              : archive_read_open_filename(a, path, 1 << 20)) != ARCHIVE_OK) {
    r = sw_error(err, 0, "open `%s`: %s", path, archive_error_string(a));
    goto out;
  }
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    while (sw_str_has_prefix(name, "./"))
      name += 2;
    if (*name == '\0')
      continue;
    if (!entry_name_ok(name)) {
      r = sw_error(err, 0, "`%s`: unsafe entry name `%s`", path, name);
      goto out;
    }
    if (mkdirs_beneath(dirfd_, name, err) < 0) {
      r = -1;
      goto out;
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFDIR) {
      _cleanup_free_ char *d = xasprintf("%s/", name);
      if (mkdirs_beneath(dirfd_, d, err) < 0) {
        r = -1;
        goto out;
      }
    } else if (type == AE_IFLNK) {
      const char *t = archive_entry_symlink(e);
      if (t && symlinkat(t, dirfd_, name) < 0 && errno != EEXIST) {
        r = sw_error(err, errno, "`%s`: entry `%s`", path, name);
        goto out;
      }
    } else if (type == AE_IFREG && blob_entry_digest(name, digest) &&
               sw_blob_exists(load_store, digest)) {
      continue; /* stored already: openat2_in_root reads it from the store */
    } else if (type == AE_IFREG) {
      struct open_how how = {.flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                             .mode = 0644,
                             .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
      _cleanup_close_ int fd = (int)syscall(SYS_openat2, dirfd_, name, &how, sizeof(how));
      if (fd < 0) {
        r = sw_error(err, errno, "`%s`: entry `%s`", path, name);
        goto out;
      }
      if (archive_read_data_into_fd(a, fd) != ARCHIVE_OK) {
        r = sw_error(err, 0, "`%s`: entry `%s`: %s", path, name, archive_error_string(a));
        goto out;
      }
    }
  }
  r = r == ARCHIVE_EOF ? 0 : sw_error(err, 0, "read `%s`: %s", path, archive_error_string(a));
out:
  archive_read_free(a);
  return r;
}

static int
read_in_root(int root, const char *name, char **out, size_t *len, sw_error_t *err)
{
  _cleanup_close_ int fd = openat2_in_root(root, name, O_RDONLY, err);
  if (fd < 0)
    return -1;
  _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
  if (sw_read_file(proc, MAX_META, out, len, err) < 0)
    return sw_error_wrap(err, "archive entry `%s`", name);
  return 0;
}

static json_t *
load_json_in_root(int root, const char *name, sw_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  size_t len;
  json_error_t je;
  if (read_in_root(root, name, &text, &len, err) < 0)
    return NULL;
  json_t *j = json_loadb(text, len, 0, &je);
  if (j == NULL)
    sw_error(err, 0, "`%s`: invalid JSON: %s", name, je.text);
  return j;
}

/* A load in two phases: every layer of every image is staged (verified and unpacked under
 * ROOT/tmp, sw_layer_stage), then, only if all were, the layers, configs, manifests and images
 * are committed. */
typedef struct {
  sw_image_t *img;
  char **names;
  char *config; /* bytes of the config blob */
  size_t config_len;
  char *manifest; /* OCI: bytes of the manifest blob (its digest is img->manifest_digest) */
  size_t manifest_len;
  bool in_index; /* listed by an index: returned with it, not on its own */
} pending_t;

/* An index of index.json, recorded once its images are. */
typedef struct {
  char *digest;
  char *blob;
  size_t len;
  char **names;
} pending_index_t;

typedef struct {
  sw_store_t *s;
  int root;
  const char *tmp; /* the unpacked archive in ROOT/tmp (its blobs become the store's), or NULL */
  sw_layer_staged_t *staged;
  size_t nstaged;
  pending_t *pending;
  size_t npending;
  pending_index_t *pidx;
  size_t npidx;
} load_t;

static void
load_clear(load_t *ld)
{
  for (size_t i = 0; i < ld->nstaged; i++)
    sw_layer_staged_clear(&ld->staged[i]);
  free(ld->staged);
  for (size_t i = 0; i < ld->npending; i++) {
    sw_image_free(ld->pending[i].img);
    sw_strv_free(ld->pending[i].names);
    free(ld->pending[i].config);
    free(ld->pending[i].manifest);
  }
  free(ld->pending);
  for (size_t i = 0; i < ld->npidx; i++) {
    free(ld->pidx[i].digest);
    free(ld->pidx[i].blob);
    sw_strv_free(ld->pidx[i].names);
  }
  free(ld->pidx);
}

/* A layer staged earlier in this load (same blob, or same diffID for an unnamed tar). */
static const sw_layer_staged_t *
staged_find(const load_t *ld, const char *digest, const char *diff_id)
{
  for (size_t i = 0; i < ld->nstaged; i++) {
    const sw_layer_desc_t *d = &ld->staged[i].desc;
    if (digest ? strcmp(d->digest, digest) == 0 : diff_id && strcmp(d->diff_id, diff_id) == 0)
      return &ld->staged[i];
  }
  return NULL;
}

/* Stage a layer file: compressed blobs are kept as they are, plain tars are compressed. */
static int
stage_layer_file(load_t *ld, const char *name, const char *media_type, const char *expected_digest,
                 const char *diff_id, sw_layer_desc_t *out, sw_error_t *err)
{
  char named[SW_DIGEST_LEN + 1];
  if (expected_digest == NULL && blob_entry_digest(name, named))
    expected_digest = named; /* content-addressed entry (docker 25+, OCI) */
  const sw_layer_staged_t *have = staged_find(ld, expected_digest, diff_id);
  if (have) {
    *out = have->desc;
    return 0;
  }
  if (expected_digest == NULL && diff_id && sw_layer_get(ld->s, diff_id, NULL, out, err) == 1)
    return 0;
  _cleanup_close_ int fd = openat2_in_root(ld->root, name, O_RDONLY, err);
  unsigned char magic[4] = {0};
  if (fd < 0)
    return -1;
  ssize_t n = pread(fd, magic, sizeof(magic), 0);
  const sw_codec_t *c = sw_codec_detect(magic, n > 0 ? (size_t)n : 0);
  sw_layer_staged_t st;
  int r;
  if (c->kind != SW_COMPRESS_NONE || expected_digest) {
    /* A blob of the unpacked archive becomes the store's blob (renamed, not copied), if it is
     * a regular file reached without a symlink: what is read is what is renamed. */
    _cleanup_free_ char *kept = NULL;
    _cleanup_close_ int own = -1;
    struct stat kst;
    if (ld->tmp && expected_digest) {
      struct open_how how = {.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                             .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
      own = (int)syscall(SYS_openat2, ld->root, name, &how, sizeof(how));
      if (own >= 0 && fstat(own, &kst) == 0 && S_ISREG(kst.st_mode))
        kept = xasprintf("%s/%s", ld->tmp, name);
    }
    r = sw_layer_stage(ld->s, kept ? own : fd, kept, media_type, expected_digest, diff_id, &st,
                       err);
  } else {
    /* Checked against the config's diffID, which names the layer in messages. */
    r = sw_layer_stage_tar(ld->s, fd, NULL, diff_id, &st, err);
  }
  if (r < 0)
    return -1;
  ld->staged = xrealloc(ld->staged, (ld->nstaged + 1) * sizeof(*ld->staged));
  ld->staged[ld->nstaged++] = st;
  *out = st.desc;
  return 0;
}

static void
push_image(sw_image_t ***v, size_t *n, sw_image_t *img)
{
  *v = xrealloc(*v, (*n + 1) * sizeof(**v));
  (*v)[(*n)++] = img;
}

static void
push_pending(load_t *ld, pending_t p)
{
  ld->pending = xrealloc(ld->pending, (ld->npending + 1) * sizeof(*ld->pending));
  ld->pending[ld->npending++] = p;
}

/* The name an image goes by in messages: its first tag, else its manifest or config digest. */
static const char *
image_label(char *const *names, const char *digest)
{
  return names && names[0] ? names[0] : digest;
}

static int
load_docker_one(load_t *ld, json_t *entry, sw_error_t *err)
{
  const char *cfg_name = json_string_value(json_object_get(entry, "Config"));
  json_t *layers = json_object_get(entry, "Layers"), *tags = json_object_get(entry, "RepoTags");
  pending_t p = {.img = xcalloc(1, sizeof(sw_image_t)), .names = xcalloc(1, sizeof(char *))};
  sw_image_t *img = p.img;
  size_t i;
  json_t *v;
  json_error_t je;
  char cd[SW_DIGEST_LEN + 1];

  push_pending(ld, p); /* freed with the load */
  if (cfg_name == NULL || !json_is_array(layers))
    return sw_error(err, 0, "manifest.json: entry without Config or Layers");
  pending_t *pp = &ld->pending[ld->npending - 1];
  json_array_foreach(tags, i, v) if (json_is_string(v))
      sw_strv_push(&pp->names, json_string_value(v));
  if (read_in_root(ld->root, cfg_name, &pp->config, &pp->config_len, err) < 0)
    return -1;
  sw_sha256_hex(pp->config, pp->config_len, cd + 7);
  memcpy(cd, "sha256:", 7);
  img->config_digest = xstrdup(cd);
  img->config_size = (int64_t)pp->config_len;
  img->config = json_loadb(pp->config, pp->config_len, 0, &je);
  if (img->config == NULL)
    return sw_error(err, 0, "`%s`: invalid JSON: %s", cfg_name, je.text);
  json_t *ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
  if (json_array_size(ids) != json_array_size(layers))
    return sw_error(err, 0, "`%s`: %zu diff_ids for %zu layers", cfg_name, json_array_size(ids),
                    json_array_size(layers));
  json_array_foreach(layers, i, v)
  {
    sw_layer_desc_t l;
    const char *diff_id = json_string_value(json_array_get(ids, i));
    if (!json_is_string(v) ||
        stage_layer_file(ld, json_string_value(v), NULL, NULL, diff_id, &l, err) < 0)
      return sw_error_wrap(err, "image `%s` (layer %zu)", image_label(pp->names, cd), i);
    img->layers = xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
    img->layers[img->n_layers++] = l;
  }
  return 0;
}

static int
load_docker(load_t *ld, sw_error_t *err)
{
  json_t *man = load_json_in_root(ld->root, "manifest.json", err);
  size_t i;
  json_t *v;
  int r = 0;
  if (man == NULL)
    return -1;
  json_array_foreach(man, i, v) if ((r = load_docker_one(ld, v, err)) < 0) break;
  json_decref(man);
  return r;
}

/* The name an index entry gives its image, if it is a full reference. */
static char *
oci_entry_name(json_t *desc)
{
  json_t *ann = json_object_get(desc, "annotations");
  const char *full = json_string_value(json_object_get(ann, "io.containerd.image.name"));
  const char *ref = json_string_value(json_object_get(ann, SW_ANNOTATION_REF_NAME));
  if (full == NULL && ref && (strchr(ref, ':') || strchr(ref, '/')))
    full = ref;
  sw_error_t e = NULL;
  char *n = full ? sw_ref_normalize(full, &e) : NULL;
  sw_error_release(&e);
  return n;
}

static int
load_oci_manifest(load_t *ld, const char *digest, const char *name, sw_error_t *err)
{
  _cleanup_free_ char *bname = xasprintf("blobs/sha256/%s", digest + 7);
  pending_t p = {.img = xcalloc(1, sizeof(sw_image_t)), .names = xcalloc(1, sizeof(char *))};
  sw_image_t *img = p.img;
  char got[SW_DIGEST_LEN + 1];
  json_error_t je;

  if (name)
    sw_strv_push(&p.names, name);
  push_pending(ld, p); /* freed with the load */
  pending_t *pp = &ld->pending[ld->npending - 1];
  if (read_in_root(ld->root, bname, &pp->manifest, &pp->manifest_len, err) < 0 ||
      sw_manifest_parse(pp->manifest, pp->manifest_len, img, err) < 0)
    return sw_error_wrap(err, "manifest %s", digest);
  free(img->manifest_digest);
  img->manifest_digest = xstrdup(digest);
  const char *label = image_label(pp->names, digest);
  _cleanup_free_ char *cname = xasprintf("blobs/sha256/%s", img->config_digest + 7);
  if (read_in_root(ld->root, cname, &pp->config, &pp->config_len, err) < 0)
    return sw_error_wrap(err, "image `%s`", label);
  memcpy(got, "sha256:", 7);
  sw_sha256_hex(pp->config, pp->config_len, got + 7);
  if (strcmp(got, img->config_digest) != 0)
    return sw_error(err, 0, "image `%s`: config %s: digest mismatch: got %s", label,
                    img->config_digest, got);
  json_t *config = json_loadb(pp->config, pp->config_len, 0, &je);
  if (config == NULL)
    return sw_error(err, 0, "image `%s`: config `%s`: invalid JSON: %s", label, cname, je.text);
  if (sw_image_set_config(img, config, err) < 0)
    return sw_error_wrap(err, "image `%s`", label);
  for (size_t i = 0; i < img->n_layers; i++) {
    sw_layer_desc_t l;
    _cleanup_free_ char *lname = xasprintf("blobs/sha256/%s", img->layers[i].digest + 7);
    if (stage_layer_file(ld, lname, img->layers[i].media_type, img->layers[i].digest,
                         img->layers[i].diff_id, &l, err) < 0)
      return sw_error_wrap(err, "image `%s`", label); /* the error names the layer */
  }
  return 0;
}

static bool
is_index_mt(const char *mt)
{
  return mt && (strcmp(mt, SW_MT_OCI_INDEX) == 0 || strcmp(mt, SW_MT_DOCKER_LIST) == 0);
}

/* An image index's entries, checked before any is read: image manifests with a digest, each
 * once (a nested index is refused: no chain or loop of indexes is followed), at most
 * ARCHIVE_INDEX_MAX. */
#define ARCHIVE_INDEX_MAX 256
static int
index_entries_check(json_t *ms, sw_error_t *err)
{
  if (!json_is_array(ms))
    return sw_error(err, 0, "no `manifests` array");
  if (json_array_size(ms) > ARCHIVE_INDEX_MAX)
    return sw_error(err, 0, "it lists %zu manifests (more than %d): refused as hostile or broken",
                    json_array_size(ms), ARCHIVE_INDEX_MAX);
  if (json_array_size(ms) == 0)
    return sw_error(err, 0, "it lists no manifest");
  size_t i;
  json_t *d;
  json_array_foreach(ms, i, d)
  {
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    const char *digest = json_string_value(json_object_get(d, "digest"));
    if (!sw_digest_valid(digest))
      return sw_error(err, 0, "manifests[%zu] has no valid sha256 digest", i);
    if (is_index_mt(mt))
      return sw_error(err, 0,
                      "manifests[%zu] (%s) is itself an index: nested indexes are not supported "
                      "(an index must list image manifests)",
                      i, digest);
    if (mt && strcmp(mt, SW_MT_OCI_MANIFEST) != 0 && strcmp(mt, SW_MT_DOCKER_MANIFEST) != 0)
      return sw_error(err, 0, "manifests[%zu] (%s) has media type `%s`, not an image manifest", i,
                      digest, mt);
    for (size_t k = 0; k < i; k++)
      if (strcmp(json_string_value(json_object_get(json_array_get(ms, k), "digest")), digest) == 0)
        return sw_error(err, 0, "manifests[%zu] and [%zu] are the same manifest %s", k, i, digest);
  }
  return 0;
}

int
sw_archive_index_check(const char *json, size_t len, sw_error_t *err)
{
  json_error_t je;
  json_t *idx = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (idx == NULL)
    return sw_error(err, 0, "invalid JSON at line %d: %s", je.line, je.text);
  int r = json_is_object(idx) ? index_entries_check(json_object_get(idx, "manifests"), err)
                              : sw_error(err, 0, "not a JSON object");
  json_decref(idx);
  return r;
}

/* "linux/arm64/v8" of an index entry (malloc'd), "unknown/unknown" for an attestation. */
static char *
entry_platform(json_t *d)
{
  json_t *plat = json_object_get(d, "platform");
  const char *os = json_string_value(json_object_get(plat, "os"));
  const char *arch = json_string_value(json_object_get(plat, "architecture"));
  const char *variant = json_string_value(json_object_get(plat, "variant"));
  return xasprintf("%s/%s%s%s", os ? os : "?", arch ? arch : "?", variant ? "/" : "",
                   variant ? variant : "");
}

/* An index listed by index.json: its blob (digest checked) and every image it lists are loaded,
 * the index recorded after them under name. BuildKit's attestation manifests (platform
 * unknown/unknown) are not images: left out, as the store leaves them out of its rows. */
static int
load_oci_index(load_t *ld, const char *digest, const char *name, sw_error_t *err)
{
  _cleanup_free_ char *bname = xasprintf("blobs/sha256/%s", digest + 7);
  pending_index_t pi = {.digest = xstrdup(digest), .names = xcalloc(1, sizeof(char *))};
  json_error_t je;
  char got[SW_DIGEST_LEN + 1];

  if (name)
    sw_strv_push(&pi.names, name);
  ld->pidx = xrealloc(ld->pidx, (ld->npidx + 1) * sizeof(*ld->pidx));
  ld->pidx[ld->npidx++] = pi; /* freed with the load */
  pending_index_t *pp = &ld->pidx[ld->npidx - 1];
  if (read_in_root(ld->root, bname, &pp->blob, &pp->len, err) < 0)
    return sw_error_wrap(err, "index %s", digest);
  memcpy(got, "sha256:", 7);
  sw_sha256_hex(pp->blob, pp->len, got + 7);
  if (strcmp(got, digest) != 0)
    return sw_error(err, 0, "index %s: digest mismatch: got %s", digest, got);
  if (sw_archive_index_check(pp->blob, pp->len, err) < 0)
    return sw_error_wrap(err, "index %s", digest);
  json_t *idx = json_loadb(pp->blob, pp->len, 0, &je);
  json_t *ms = json_object_get(idx, "manifests"), *d;
  size_t i;
  int r = 0;
  json_array_foreach(ms, i, d)
  {
    _cleanup_free_ char *plat = entry_platform(d);
    if (strcmp(plat, "unknown/unknown") == 0)
      continue;
    const char *md = json_string_value(json_object_get(d, "digest"));
    if ((r = load_oci_manifest(ld, md, NULL, err)) < 0) {
      sw_error_wrap(err, "index %s: entry %zu (%s)", digest, i, plat);
      break;
    }
    ld->pending[ld->npending - 1].in_index = true;
  }
  json_decref(idx);
  return r;
}

static int
load_oci(load_t *ld, sw_error_t *err)
{
  json_t *idx = load_json_in_root(ld->root, "index.json", err);
  json_t *ms = json_object_get(idx, "manifests"), *d;
  size_t i;
  int r = 0;
  if (idx == NULL)
    return -1;
  json_array_foreach(ms, i, d)
  {
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    const char *digest = json_string_value(json_object_get(d, "digest"));
    if (mt == NULL || digest == NULL || !sw_digest_valid(digest)) {
      r = sw_error(err, 0, "`index.json`: bad manifest descriptor %zu", i);
      break;
    }
    _cleanup_free_ char *name = oci_entry_name(d);
    if (is_index_mt(mt)) {
      if ((r = load_oci_index(ld, digest, name, err)) < 0)
        break;
      continue;
    }
    json_t *plat = json_object_get(d, "platform");
    const char *arch = json_string_value(json_object_get(plat, "architecture"));
    if (arch && strcmp(arch, sw_host_arch()) != 0)
      continue; /* another platform's image listed on its own */
    if ((r = load_oci_manifest(ld, digest, name, err)) < 0)
      break;
  }
  json_decref(idx);
  return r;
}

/* Does index.json list an index? Then it is read rather than a docker archive's manifest.json
 * (which lists the index's images one by one), as docker 25+ with the containerd store does. */
static bool
lists_index(int root)
{
  sw_error_t e = NULL;
  json_t *idx = faccessat(root, "index.json", F_OK, 0) == 0
                    ? load_json_in_root(root, "index.json", &e)
                    : NULL;
  json_t *d;
  size_t i;
  bool found = false;
  json_array_foreach(json_object_get(idx, "manifests"), i, d) found =
      found || is_index_mt(json_string_value(json_object_get(d, "mediaType")));
  json_decref(idx);
  sw_error_release(&e);
  return found;
}

/* Phase two: every layer was staged; now make them, the configs, manifests and images
 * visible. */
static int
load_commit(load_t *ld, sw_image_t ***out, size_t *n, sw_index_t ***idx_out, size_t *n_idx,
            sw_error_t *err)
{
  for (size_t i = 0; i < ld->nstaged; i++)
    if (sw_layer_stage_commit(ld->s, &ld->staged[i], err) < 0)
      return sw_error_wrap(err, "layer %s", ld->staged[i].desc.digest);
  for (size_t i = 0; i < ld->npending; i++) {
    pending_t *p = &ld->pending[i];
    sw_image_t *img = NULL;
    if (sw_blob_put(ld->s, p->config, p->config_len, p->img->config_digest, NULL, err) < 0)
      return -1;
    if (p->manifest) {
      if (sw_blob_put(ld->s, p->manifest, p->manifest_len, p->img->manifest_digest, NULL, err) <
              0 ||
          sw_image_commit_manifest(ld->s, p->img->manifest_digest, p->names[0] ? p->names : NULL,
                                   &img, err) < 0)
        return -1;
    } else {
      if (sw_image_commit_raw(ld->s, p->img, p->names, err) < 0)
        return -1;
      img = steal_ptr(&p->img);
    }
    if (p->in_index)
      sw_image_free(img);
    else
      push_image(out, n, img);
  }
  for (size_t i = 0; i < ld->npidx; i++) {
    pending_index_t *p = &ld->pidx[i];
    sw_index_t *idx = NULL;
    if (sw_blob_put(ld->s, p->blob, p->len, p->digest, NULL, err) < 0 ||
        sw_index_commit_blob(ld->s, p->digest, p->names[0] ? p->names : NULL, &idx, err) < 0)
      return sw_error_wrap(err, "index %s", p->digest);
    if (idx_out) {
      *idx_out = xrealloc(*idx_out, (*n_idx + 1) * sizeof(**idx_out));
      (*idx_out)[(*n_idx)++] = idx;
    } else {
      sw_index_free(idx);
    }
  }
  return 0;
}

int
sw_archive_load(sw_store_t *s, const char *path, sw_image_t ***out, size_t *n,
                sw_index_t ***idx_out, size_t *n_idx, sw_error_t *err)
{
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int root = -1;
  struct stat st;
  sw_error_t ignored = NULL;
  int r = -1;
  bool staged = false; /* a failure before: nothing was stored */

  *out = NULL;
  *n = 0;
  if (idx_out) {
    *idx_out = NULL;
    *n_idx = 0;
  }
  load_store = s;
  if (strcmp(path, "-") != 0 && stat(path, &st) < 0)
    return sw_error(err, errno, "load `%s`", path);
  if (strcmp(path, "-") != 0 && S_ISDIR(st.st_mode)) {
    root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    tmp = sw_store_mkdtemp(s, "load-", err);
    if (tmp == NULL)
      return -1;
    root = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root >= 0 && unpack(path, root, err) < 0)
      goto out;
  }
  if (root < 0) {
    sw_error(err, errno, "open `%s`", tmp ? tmp : path);
    goto out;
  }
  load_t ld = {.s = s, .root = root, .tmp = tmp};
  if (faccessat(root, "manifest.json", F_OK, 0) == 0 && !lists_index(root))
    r = load_docker(&ld, err);
  else if (faccessat(root, "index.json", F_OK, 0) == 0)
    r = load_oci(&ld, err);
  else
    r = sw_error(err, 0, "neither manifest.json (docker-archive) nor index.json (OCI) found");
  staged = r == 0;
  if (r == 0)
    r = load_commit(&ld, out, n, idx_out, n_idx, err);
  load_clear(&ld);
out:
  load_store = NULL;
  if (tmp)
    sw_rm_rf(tmp, &ignored);
  sw_error_release(&ignored);
  if (r < 0) {
    sw_image_list_free(*out, *n);
    *out = NULL;
    *n = 0;
    if (idx_out) {
      sw_index_list_free(*idx_out, *n_idx);
      *idx_out = NULL;
      *n_idx = 0;
    }
    return sw_error_wrap(err, "loading `%s`%s", path, staged ? "" : " (nothing was stored)");
  }
  return 0;
}
