/* slipway: leases on what a command makes outside the store's own bookkeeping (a container's
 * writable layer under ROOT/containers/, the temp twin of an output file): ROOT/leases/<name>
 * holds the thing's absolute path and is flock'ed by its owner for as long as the owner lives.
 * The kernel drops the lock when the owner dies, however it dies (SIGKILL included), so a lease
 * whose lock can be taken names a leftover: prune removes it and reports it (issue 18 §5).
 * A lease is made under a dot name and renamed into sight once locked, so a sweeper never sees
 * an unlocked lease of a live owner. */
#include "store_internal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

struct sw_lease_s {
  int fd;
  char *file; /* ROOT/leases/<name> */
};

sw_lease_t *
sw_lease_new(sw_store_t *s, const char *path, sw_error_t *err)
{
  _cleanup_free_ char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
  _cleanup_free_ char *abs = cwd ? xasprintf("%s/%s", cwd, path) : xstrdup(path);
  _cleanup_free_ char *tmp = xasprintf("%s/leases/.new-XXXXXX", s->root);
  _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    sw_error(err, errno, "create a lease in `%s/leases`", s->root);
    return NULL;
  }
  char *file = xasprintf("%s/leases/%d-%s", s->root, (int)getpid(), strrchr(tmp, '-') + 1);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0 || sw_write_all(fd, abs, strlen(abs)) < 0 ||
      rename(tmp, file) < 0) {
    sw_error(err, errno, "write lease `%s`", file);
    unlink(tmp);
    free(file);
    return NULL;
  }
  sw_lease_t *l = xcalloc(1, sizeof(*l));
  l->fd = steal_fd(&fd);
  l->file = file;
  return l;
}

void
sw_lease_free(sw_lease_t *l)
{
  if (l == NULL)
    return;
  unlink(l->file);
  close(l->fd);
  free(l->file);
  free(l);
}

/* May a lease name path? Only a container of this store or a temp twin `*.tmp.<digits>`: a
 * lease file is data, and what it names is removed. */
static bool
leasable(sw_store_t *s, const char *path)
{
  _cleanup_free_ char *containers = xasprintf("%s/containers/", s->root);
  if (sw_str_has_prefix(path, containers))
    return strchr(path + strlen(containers), '/') == NULL && strstr(path, "/..") == NULL;
  const char *dot = strstr(path, ".tmp.");
  if (dot == NULL || strchr(dot, '/') || dot[5] == '\0')
    return false;
  for (const char *c = dot + 5; *c; c++)
    if (*c < '0' || *c > '9')
      return false;
  return true;
}

/* Remove what the stale lease `name` (in dfd, locked by us) names; report it. */
static void
remove_leftover(sw_store_t *s, int dfd, const char *name, sw_prune_report_t *rep)
{
  char *path = NULL;
  size_t len = 0;
  sw_error_t err = NULL;
  if (name[0] != '.' && sw_read_file_at(dfd, name, 4096, &path, &len, &err) == 0 &&
      leasable(s, path)) {
    int64_t bytes = sw_tree_bytes(AT_FDCWD, path);
    struct stat st;
    bool there = lstat(path, &st) == 0;
    /* Removed in place: its owner, the only one that used it, is gone. */
    if (there && sw_rm_rf(path, &err) < 0) {
      sw_warn("removing the leftover `%s`: %s", path, err->msg);
      sw_error_release(&err);
      free(path);
      return;
    }
    if (there) {
      char size[32];
      sw_format_size((uint64_t)bytes, size, sizeof(size));
      sw_strv_push_take(&rep->leftovers, xasprintf("%s (%s)", path, size));
      rep->bytes += bytes;
    }
  }
  sw_error_release(&err);
  free(path);
  unlinkat(dfd, name, 0);
}

void
sw_lease_sweep(sw_store_t *s, sw_prune_report_t *rep)
{
  _cleanup_free_ char *dir = sw_store_path(s, "leases");
  _cleanup_dir_ DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    _cleanup_close_ int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
      continue; /* gone meanwhile, or its owner lives */
    remove_leftover(s, dirfd(d), e->d_name, rep);
  }
}
