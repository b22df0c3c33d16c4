/* slipway sandbox: the monitor process (namespaces, the stub layer, the overlay root, /dev,
 * /sys, binds, pivot_root) and pid 1 of the container (/proc, user, stdio, exec).
 *
 * Both run in a child made by fork(), so they may allocate. An error is sent to the caller as a
 * message (sb_fail) before exiting. Paths inside the rootfs are always resolved with
 * openat2(RESOLVE_IN_ROOT), so an image's symlinks can never point a mount outside its root. */
#include "sandbox-private.h"
#include "userns.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <signal.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define STUB_DIR     SB_RUNDIR "/stub"
#define ROOT_DIR     SB_RUNDIR "/root"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

struct monitor {
  const sw_sandbox_opts_t *o;
  int sock;
  int rootfd;               /* O_PATH of the root overlay, before pivot_root */
  int *layer_trees;         /* per mount: detached tree for LAYERS mounts, else -1 */
  bool *target_dir;         /* per mount: the target is a directory (else a file) */
  const struct winsize *ws; /* tty: the caller's window size, or NULL */
  int tty;                  /* tty: the slave of the container's pty, else -1 */
  struct sb_net net;
};

static int
open_in_root(int rootfd, const char *path, int flags)
{
  struct open_how how = {.flags = O_PATH | O_CLOEXEC | (uint64_t)flags,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  while (*path == '/')
    path++;
  if (*path == '\0')
    path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* ---- the stub layer: mount points that the image may lack, below all its layers ---- */

static void
stub_create(int stubfd, const char *path, bool is_dir)
{
  _cleanup_free_ char *p = xstrdup(path);
  char *s = p;

  while (*s == '/')
    s++;
  if (*s == '\0')
    return;
  for (char *c = strchr(s, '/'); c; c = strchr(c + 1, '/')) {
    *c = '\0';
    mkdirat(stubfd, s, 0755);
    *c = '/';
  }
  if (is_dir) {
    mkdirat(stubfd, s, 0755);
  } else {
    int fd = openat(stubfd, s, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0)
      close(fd);
  }
}

static void
make_stub_layer(struct monitor *m)
{
  const sw_sandbox_opts_t *o = m->o;
  int fd = open(STUB_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    sb_fail(m->sock, 1, errno, "sandbox: open `%s`", STUB_DIR);
  stub_create(fd, "proc", true);
  stub_create(fd, "dev", true);
  stub_create(fd, "sys", true);
  stub_create(fd, "etc/resolv.conf", false);
  stub_create(fd, "etc/hosts", false);
  if (o->cwd)
    stub_create(fd, o->cwd, true);
  for (size_t i = 0; i < o->n_mounts; i++)
    stub_create(fd, o->mounts[i].target, m->target_dir[i]);
  close(fd);
}

/* ---- overlayfs ---- */

/* The kernel's reason for a failed fsconfig(), from the fs context's log. */
static void
fs_log(int fs, char *buf, size_t len)
{
  buf[0] = '\0';
  ssize_t n = read(fs, buf, len - 1);
  if (n > 0) {
    buf[n] = '\0';
    if (buf[n - 1] == '\n')
      buf[n - 1] = '\0';
  }
}

static int
overlay_new_api(char *const *lowers, const char *upper, const char *work, const char *target,
                char *why, size_t whylen)
{
  /* In a user namespace (rootless) overlay keeps its metadata in user.overlay.* xattrs
   * (`userxattr`), which implies redirect_dir=nofollow: `off` would conflict. */
  bool userns = sw_userns_nested();
  static const char *const opts[][2] = {{"redirect_dir", "off"}, {"metacopy", "off"},
                                        {"index", "off"},        {"xino", "off"},
                                        {"volatile", NULL},      {"userxattr", NULL}};
  _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  _cleanup_close_ int mnt = -1;

  if (fs < 0)
    return -1;
  fsconfig(fs, FSCONFIG_SET_STRING, "source", "slipway", 0);
  for (char *const *l = lowers; *l; l++)
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", *l, 0) < 0)
      goto fail;
  if (upper && (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
                fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
    goto fail;
  for (size_t i = 0; i < SW_ARRAY_SIZE(opts); i++) {
    bool user_only = strcmp(opts[i][0], "userxattr") == 0;
    if (user_only != userns && (user_only || strcmp(opts[i][0], "redirect_dir") == 0))
      continue;
    if (fsconfig(fs, opts[i][1] ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opts[i][0], opts[i][1],
                 0) < 0)
      goto fail;
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    goto fail;
  mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
  if (mnt < 0)
    goto fail;
  if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    goto fail;
  return 0;
fail : {
  int e = errno;
  fs_log(fs, why, whylen);
  errno = e;
  return -1;
}
}

/* Before Linux 6.8 (no `lowerdir+`): one mount(2) data string, limited to a page, so the layers
 * are named relative to their common parent directory. */
static int
overlay_old_api(char *const *lowers, const char *upper, const char *work, const char *target)
{
  _cleanup_free_ char *common = xstrdup(lowers[0]);
  _cleanup_buf_ sw_buf_t data = {0};
  char *slash = strrchr(common, '/');

  *slash = '\0';
  for (char *const *l = lowers; *l; l++)
    while (!(sw_str_has_prefix(*l, common) && (*l)[strlen(common)] == '/')) {
      slash = strrchr(common, '/');
      *(slash == common ? slash + 1 : slash) = '\0';
      if (slash == common)
        break;
    }
  if (chdir(common[0] ? common : "/") < 0)
    return -1;
  size_t skip = strlen(common) > 1 ? strlen(common) + 1 : 1;
  sw_buf_puts(&data, "lowerdir=");
  for (char *const *l = lowers; *l; l++) {
    if (l != lowers)
      sw_buf_putc(&data, ':');
    sw_buf_puts(&data, sw_str_has_prefix(*l, common) ? *l + skip : *l);
  }
  if (upper)
    sw_buf_printf(&data, ",upperdir=%s,workdir=%s", upper, work);
  sw_buf_puts(&data, sw_userns_nested() ? ",userxattr,metacopy=off,index=off,xino=off"
                                        : ",redirect_dir=off,metacopy=off,index=off,xino=off");
  int r = mount("overlay", target, "overlay", MS_NODEV, data.data);
  int e = errno;
  if (chdir("/") < 0)
    return -1;
  errno = e;
  return r;
}

/* Mount an overlay of `layers` (top-most first) plus `bottom` (may be NULL) at `target`. */
static void
mount_overlay(int sock, char *const *layers, const char *bottom, const char *upper,
              const char *work, const char *target)
{
  _cleanup_strv_ char **lowers = sw_strv_dup(layers);
  char why[512] = "";

  if (bottom)
    sw_strv_push(&lowers, bottom);
  if (overlay_new_api(lowers, upper, work, target, why, sizeof(why)) == 0)
    return;
  int e = errno;
  if ((e == ENOSYS || e == EINVAL) && overlay_old_api(lowers, upper, work, target) == 0)
    return;
  sb_fail(sock, 1, e, "sandbox: mount overlay of %zu layers%s%s%s%s%s", sw_strv_len(layers),
          upper ? " with upper dir `" : "", upper ? upper : "", upper ? "`" : "",
          why[0] ? (xasprintf(" (%s)", why)) : "", sw_userns_hint(e));
}

/* ---- attaching mounts at paths inside the root ---- */

/* Open `path` in the root, creating it (and its parents) if missing. What had to be created
 * (only when a symlink or whiteout in the image hid the stub layer) is reported so that the
 * caller removes it from the upper dir afterwards. */
static int
target_open(struct monitor *m, const char *path, bool is_dir)
{
  int fd = open_in_root(m->rootfd, path, 0);
  if (fd >= 0 || errno != ENOENT)
    return fd;

  _cleanup_free_ char *p = xstrdup(path);
  char *s = p;
  while (*s == '/')
    s++;
  for (char *c = s;; c++) {
    if (*c != '/' && *c != '\0')
      continue;
    char saved = *c;
    *c = '\0';
    int cfd = open_in_root(m->rootfd, s, 0);
    if (cfd < 0 && errno == ENOENT) {
      char *name = strrchr(s, '/');
      _cleanup_free_ char *parent = name ? xstrndup(s, (size_t)(name - s)) : xstrdup(".");
      name = name ? name + 1 : s;
      _cleanup_close_ int pfd = open_in_root(m->rootfd, parent, O_DIRECTORY);
      if (pfd < 0)
        return -1;
      bool dir = saved == '/' || is_dir;
      int r = dir ? mkdirat(pfd, name, 0755)
                  : openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (r < 0)
        return -1;
      if (!dir)
        close(r);
      char real[PATH_MAX];
      _cleanup_free_ char *link = xasprintf("/proc/self/fd/%d", pfd);
      ssize_t n = readlink(link, real, sizeof(real) - 1);
      if (n > 0) {
        real[n] = '\0';
        if (strcmp(real, ROOT_DIR) == 0)
          sb_send(m->sock, SB_MSG_STUB, 0, "%s", name);
        else if (sw_str_has_prefix(real, ROOT_DIR "/"))
          sb_send(m->sock, SB_MSG_STUB, 0, "%s/%s", real + strlen(ROOT_DIR "/"), name);
      }
      cfd = open_in_root(m->rootfd, s, 0);
    }
    if (cfd < 0)
      return -1;
    *c = saved;
    if (saved == '\0')
      return cfd;
    close(cfd);
  }
}

static int
attach(struct monitor *m, int tree, const char *path, bool is_dir)
{
  _cleanup_close_ int t = target_open(m, path, is_dir);
  if (t < 0)
    return -1;
  return move_mount(tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* A new detached filesystem instance, e.g. tmpfs with size/mode options. */
static int
fs_new(const char *type, const char *const *kv, unsigned int attrs)
{
  _cleanup_close_ int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0)
    return -1;
  for (; kv && kv[0]; kv += 2)
    if (fsconfig(fs, kv[1] ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, kv[0], kv[1], 0) < 0)
      return -1;
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return -1;
  return fsmount(fs, FSMOUNT_CLOEXEC, attrs);
}

/* A clone of the tree at `path` with `attrs` (MOUNT_ATTR_*) set on it and every mount below. */
static int
bind_tree(int dirfd, const char *path, uint64_t attrs)
{
  int t =
      open_tree(dirfd, path,
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | (*path ? 0 : AT_EMPTY_PATH));
  if (t < 0 || attrs == 0)
    return t;
  struct mount_attr a = {.attr_set = attrs};
  if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
    close(t);
    return -1;
  }
  return t;
}

/* ---- /dev ---- */

/* Docker's default devices: the only ones the container can open. Every filesystem it can
 * write or that comes from an image is mounted nodev (the root overlay, /dev, tmpfs, bind,
 * cache and layers mounts), so a node it creates with CAP_MKNOD, or that its image ships, cannot
 * be opened (EACCES), as Docker's devices cgroup denies it. These nodes are made on a tmpfs of
 * the monitor's that allows devices, and each is bind-mounted onto a file of the nodev /dev. */
static const struct {
  const char *name;
  unsigned int major, minor;
} devices[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
               {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

#define NODES_DIR SB_RUNDIR "/nodes"

static void
bind_devices(struct monitor *m)
{
  if (mkdir(NODES_DIR, 0755) < 0 ||
      mount("tmpfs", NODES_DIR, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount tmpfs on `%s`", NODES_DIR);
  for (size_t i = 0; i < SW_ARRAY_SIZE(devices); i++) {
    _cleanup_free_ char *node = xasprintf(NODES_DIR "/%s", devices[i].name);
    _cleanup_free_ char *host = xasprintf("/dev/%s", devices[i].name);
    _cleanup_free_ char *target = xasprintf("/dev/%s", devices[i].name);
    /* No mknod (e.g. a restricted parent): bind the host's node instead. */
    bool made = mknod(node, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) == 0;
    _cleanup_close_ int t = bind_tree(AT_FDCWD, made ? node : host, 0);
    if (t < 0 || attach(m, t, target, false) < 0)
      sb_fail(m->sock, 1, errno, "sandbox: create /dev/%s", devices[i].name);
  }
}

/* `tty`: the container's pty, and its slave bound on /dev/console, as Docker (runc) does. */
static void
tty_console(struct monitor *m, int pts)
{
  unsigned int n;

  m->tty = sb_pty_open(m->sock, pts, m->ws, &n);
  _cleanup_free_ char *name = xasprintf("%u", n);
  _cleanup_close_ int t = bind_tree(pts, name, 0);
  if (t < 0 || attach(m, t, "/dev/console", false) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: bind the pty on /dev/console");
}

static void
setup_dev(struct monitor *m)
{
  static const char *const dev_opts[] = {"mode", "755", "size", "65536k", NULL};
  static const char *const pts_opts[] = {"newinstance", NULL,  "ptmxmode", "0666", "mode",
                                         "0620",        "gid", "5",        NULL};
  char shm_size[32];
  snprintf(shm_size, sizeof(shm_size), "%llu",
           (unsigned long long)(m->o->shm_size ? m->o->shm_size : 64ull << 20));
  const char *const shm_opts[] = {"mode", "1777", "size", shm_size, NULL};
  static const char *const pts_opts_1id[] = {"newinstance", NULL,   "ptmxmode", "0666",
                                             "mode",        "0620", NULL};
  static const char *const links[][2] = {
      {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
      {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}};
  _cleanup_close_ int dev =
      fs_new("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);

  if (dev < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount tmpfs for /dev");
  mkdirat(dev, "pts", 0755);
  mkdirat(dev, "shm", 01777);
  mkdirat(dev, "mqueue", 0755);
  for (size_t i = 0; i < SW_ARRAY_SIZE(links); i++)
    if (symlinkat(links[i][1], dev, links[i][0]) < 0)
      sb_fail(m->sock, 1, errno, "sandbox: symlink /dev/%s", links[i][0]);
  if (attach(m, dev, "/dev", true) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount /dev");
  bind_devices(m);

  /* devpts has no mknod: its nodes are the ptys made through its ptmx. */
  _cleanup_close_ int pts = fs_new("devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  /* Rootless with only the user's own ids mapped: there is no gid 5 (tty) to give the ptys. */
  if (pts < 0 && errno == EINVAL && sw_userns_nested())
    pts = fs_new("devpts", pts_opts_1id, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  if (pts < 0 || attach(m, pts, "/dev/pts", true) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount /dev/pts");
  if (m->o->tty)
    tty_console(m, pts);
  _cleanup_close_ int shm =
      fs_new("tmpfs", shm_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (shm < 0 || attach(m, shm, "/dev/shm", true) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount /dev/shm");
}

static void
setup_sys_and_etc(struct monitor *m)
{
  static const char *const etc[] = {"/etc/resolv.conf", "/etc/hosts"};
  /* Read-write only for --privileged, as Docker. */
  _cleanup_close_ int sys = fs_new("sysfs", NULL,
                                   (m->o->privileged ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NOSUID |
                                       MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  /* sysfs is a nicety (some tools read /sys); a host that refuses it should not stop a build. */
  if (sys >= 0 && attach(m, sys, "/sys", true) < 0)
    sw_debug("sandbox: cannot mount /sys: %s", strerrorname_np(errno));

  /* The container's own network gets its own files (writable, as Docker's), else the host's. */
  bool own = sb_net_etc(m->o, SB_RUNDIR, m->sock);
  for (size_t i = 0; i < SW_ARRAY_SIZE(etc); i++) {
    _cleanup_free_ char *src = own ? xasprintf(SB_RUNDIR "%s", strrchr(etc[i], '/')) : NULL;
    _cleanup_close_ int t =
        bind_tree(AT_FDCWD, own ? src : etc[i], (own ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NODEV);
    /* An image whose resolv.conf is a dangling link keeps it: no DNS config, as in Docker. */
    if (t >= 0 && attach(m, t, etc[i], false) < 0)
      sw_debug("sandbox: cannot bind %s: %s", etc[i], strerrorname_np(errno));
  }
}

/* ---- extra mounts ---- */

/* LAYERS mounts are built before the root so that their target's kind is known for the stub
 * layer: each is an overlay at SB_RUNDIR/l<i>, from which the subpath is cloned as a tree. */
static void
prepare_layer_mounts(struct monitor *m)
{
  const sw_sandbox_opts_t *o = m->o;

  for (size_t i = 0; i < o->n_mounts; i++) {
    const sw_mount_t *mt = &o->mounts[i];
    m->layer_trees[i] = -1;
    m->target_dir[i] = true;
    if (mt->kind == SW_MOUNT_BIND) {
      struct stat sb;
      m->target_dir[i] = stat(mt->source, &sb) < 0 || S_ISDIR(sb.st_mode);
    }
    if (mt->kind != SW_MOUNT_LAYERS)
      continue;
    _cleanup_free_ char *dir = xasprintf(SB_RUNDIR "/l%zu", i);
    _cleanup_free_ char *up = xasprintf(SB_RUNDIR "/u%zu", i);
    _cleanup_free_ char *work = xasprintf(SB_RUNDIR "/w%zu", i);
    mkdir(dir, 0755);
    if (!mt->readonly) {
      mkdir(up, 0755);
      mkdir(work, 0755);
    }
    char *const *layers = mt->layers;
    /* overlayfs wants two lower layers when there is no upper dir. */
    mount_overlay(m->sock, layers, mt->readonly && !layers[1] ? STUB_DIR : NULL,
                  mt->readonly ? NULL : up, work, dir);
    _cleanup_close_ int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int src = root < 0 ? -1 : open_in_root(root, mt->source ? mt->source : "/", 0);
    struct stat sb;
    if (src < 0 || fstat(src, &sb) < 0)
      sb_fail(m->sock, SW_EXIT_FAILURE, errno, "mount source `%s` for `%s`",
              mt->source ? mt->source : "/", mt->target);
    m->target_dir[i] = S_ISDIR(sb.st_mode);
    m->layer_trees[i] =
        bind_tree(src, "", MOUNT_ATTR_NODEV | (mt->readonly ? MOUNT_ATTR_RDONLY : 0));
    if (m->layer_trees[i] < 0)
      sb_fail(m->sock, 1, errno, "sandbox: clone mount `%s`", mt->target);
  }
}

static void
setup_mounts(struct monitor *m)
{
  const sw_sandbox_opts_t *o = m->o;

  for (size_t i = 0; i < o->n_mounts; i++) {
    const sw_mount_t *mt = &o->mounts[i];
    _cleanup_close_ int tree = m->layer_trees[i];
    if (mt->kind == SW_MOUNT_BIND) {
      tree = bind_tree(AT_FDCWD, mt->source,
                       MOUNT_ATTR_NODEV | (mt->readonly ? MOUNT_ATTR_RDONLY : 0));
    } else if (mt->kind == SW_MOUNT_TMPFS) {
      char mode[16], size[32];
      snprintf(mode, sizeof(mode), "%o", mt->mode ? (unsigned)mt->mode : 01777u);
      snprintf(size, sizeof(size), "%llu", (unsigned long long)mt->size);
      const char *kv[] = {"mode", mode, mt->size ? "size" : NULL, size, NULL};
      tree = fs_new("tmpfs", kv,
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (mt->readonly ? MOUNT_ATTR_RDONLY : 0));
    }
    if (tree < 0)
      sb_fail(m->sock, 1, errno, "mount `%s` at `%s`", mt->source ? mt->source : "tmpfs",
              mt->target);
    if (attach(m, tree, mt->target, m->target_dir[i]) < 0)
      sb_fail(m->sock, 1, errno, "mount `%s` at `%s`", mt->source ? mt->source : "tmpfs",
              mt->target);
  }
}

/* ---- namespaces ---- */

static void
enter_namespaces(struct monitor *m)
{
  const sw_sandbox_opts_t *o = m->o;
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  const char *host = o->hostname ? o->hostname : "slipway";

  if (o->network != SW_NET_HOST)
    flags |= CLONE_NEWNET;
  if (unshare(flags) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: create namespaces (slipway needs root)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: make mounts private");
  if (sethostname(host, strlen(host)) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: set hostname `%s`", host);
  sb_net_setup(&m->net, o, m->sock);
  if (mount("tmpfs", SB_RUNDIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m") < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mount tmpfs on `%s`", SB_RUNDIR);
  if (mkdir(STUB_DIR, 0755) < 0 || mkdir(ROOT_DIR, 0755) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: mkdir in `%s`", SB_RUNDIR);
}

static void
enter_root(struct monitor *m)
{
  if (chdir(ROOT_DIR) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
    sb_fail(m->sock, 1, errno, "sandbox: pivot_root");
  if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
    sb_fail(m->sock, 1, errno, "sandbox: detach the host's root");
}

/* `exec`: the namespaces and root of the running container's pid 1. Every fd is opened before
 * the first setns (its /proc is out of reach after it); the user namespace first, when it
 * differs from ours (another rootless slipway made it), as the others are owned by it. */
static void
join_namespaces(struct monitor *m)
{
  static const struct {
    const char *name;
    int type;
  } ns[] = {{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},  {"uts", CLONE_NEWUTS},
            {"ipc", CLONE_NEWIPC},   {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}};
  int fds[SW_ARRAY_SIZE(ns)];
  pid_t pid = m->o->join_pid;

  for (size_t i = 0; i < SW_ARRAY_SIZE(ns); i++) {
    _cleanup_free_ char *theirs = xasprintf("/proc/%d/ns/%s", (int)pid, ns[i].name);
    _cleanup_free_ char *ours = xasprintf("/proc/self/ns/%s", ns[i].name);
    struct stat a, b;
    fds[i] = -1;
    if (stat(theirs, &a) < 0)
      sb_fail(m->sock, 1, errno, "exec: the container's process %d is gone", (int)pid);
    if (stat(ours, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
      continue; /* shared (--network host; the user namespace of this slipway) */
    fds[i] = open(theirs, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0)
      sb_fail(m->sock, 1, errno, "exec: open `%s`", theirs);
  }
  _cleanup_free_ char *root = xasprintf("/proc/%d/root", (int)pid);
  m->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (m->rootfd < 0)
    sb_fail(m->sock, 1, errno, "exec: open `%s`", root);
  for (size_t i = 0; i < SW_ARRAY_SIZE(ns); i++) {
    if (fds[i] >= 0 && setns(fds[i], ns[i].type) < 0)
      sb_fail(m->sock, 1, errno, "exec: join the container's %s namespace", ns[i].name);
    if (fds[i] >= 0)
      close(fds[i]);
  }
  if (fchdir(m->rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0)
    sb_fail(m->sock, 1, errno, "exec: enter the container's root");
  if (m->o->tty) {
    unsigned int n;
    _cleanup_close_ int pts = open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pts < 0)
      sb_fail(m->sock, 1, errno, "exec: open the container's /dev/pts");
    m->tty = sb_pty_open(m->sock, pts, m->ws, &n);
  }
}

/* ---- pid 1: the user's process ---- */

static void
reset_signals(void)
{
  sigset_t all;
  for (int s = 1; s < NSIG; s++)
    signal(s, SIG_DFL);
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
}

static void
setup_stdio(const sw_sandbox_opts_t *o, int sock, int out_fd)
{
  int src[3] = {o->stdin_fd, out_fd >= 0 ? out_fd : o->stdout_fd,
                out_fd >= 0 ? out_fd : o->stderr_fd};
  int tmp[3];

  for (int i = 0; i < 3; i++) {
    tmp[i] = -1;
    if (src[i] == SW_STDIO_NULL)
      tmp[i] = open("/dev/null", i == 0 ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CLOEXEC);
    else if (src[i] >= 0)
      tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
    if (src[i] != SW_STDIO_INHERIT && tmp[i] < 0)
      sb_fail(sock, 1, errno, "sandbox: set up fd %d", i);
  }
  for (int i = 0; i < 3; i++)
    if (tmp[i] >= 0 && dup2(tmp[i], i) < 0)
      sb_fail(sock, 1, errno, "sandbox: set up fd %d", i);
}

static char **
make_env(const sw_sandbox_opts_t *o, const sw_user_t *u)
{
  char **env = sw_strv_dup(o->env);

  if (env == NULL)
    env = xcalloc(1, sizeof(char *));
  if (sw_env_get(env, "PATH") == NULL)
    sw_env_set(&env, "PATH", DEFAULT_PATH);
  if (sw_env_get(env, "HOME") == NULL)
    sw_env_set(&env, "HOME", u->home ? u->home : "/");
  return env;
}

static void __attribute__((noreturn)) exec_fail(int sock, const char *cmd, int e)
{
  if (e == ENOENT && strchr(cmd, '/') == NULL)
    sb_fail(sock, 127, 0, "exec `%s`: executable file not found in $PATH", cmd);
  sb_fail(sock, e == ENOENT ? 127 : 126, e, "exec `%s`", cmd);
}

/* In a user namespace (rootless) the kernel mounts a new proc only while a fully visible one
 * is in the mount namespace: the monitor left a clone of the host's on /proc (proc_placeholder),
 * the new instance is made detached, the clone dropped and the new one put in its place. */
static void
mount_proc(int sock)
{
  if (!sw_userns_nested()) {
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      sb_fail(sock, 1, errno, "sandbox: mount /proc");
    return;
  }
  _cleanup_close_ int fd =
      fs_new("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (fd < 0)
    sb_fail(sock, 1, errno,
            "sandbox: mount /proc in a user namespace (the kernel needs a proc without masked "
            "paths or mounts over it to be visible: run slipway's container with "
            "`--security-opt systempaths=unconfined`, or `procMount: Unmasked` in Kubernetes; "
            "see README, Rootless)");
  if (umount2("/proc", MNT_DETACH) < 0 ||
      move_mount(fd, "", AT_FDCWD, "/proc", MOVE_MOUNT_F_EMPTY_PATH) < 0)
    sb_fail(sock, 1, errno, "sandbox: mount /proc");
}

/* setgroups(2), except in a user namespace that denies it (rootless with only the user's own
 * ids mapped: the kernel requires it), where the groups stay as they are. */
static int
set_groups(const sw_user_t *u)
{
  if (setgroups(u->n_groups, u->groups) == 0)
    return 0;
  if (errno != EPERM || !sw_userns_nested())
    return -1;
  _cleanup_free_ char *v = NULL;
  sw_error_t err = NULL;
  if (sw_read_file("/proc/self/setgroups", 64, &v, NULL, &err) < 0) {
    sw_error_release(&err);
    errno = EPERM;
    return -1;
  }
  errno = EPERM;
  return sw_str_has_prefix(v, "deny") ? 0 : -1;
}

/* The host's /proc, cloned onto the container's /proc until mount_proc replaces it. */
static void
proc_placeholder(struct monitor *m)
{
  if (!sw_userns_nested())
    return;
  _cleanup_close_ int t = bind_tree(AT_FDCWD, "/proc", 0);
  if (t < 0 || attach(m, t, "/proc", true) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: bind the host's /proc (rootless)");
}

static void __attribute__((noreturn))
container_main(const sw_sandbox_opts_t *o, int sock, int out_fd, int tty)
{
  _cleanup_free_ char *passwd = NULL, *group = NULL;
  sw_error_t err = NULL;
  sw_user_t u;

  reset_signals();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (o->join_pid == 0) { /* exec: the container's pid 1 has set them up */
    mount_proc(sock);
    sb_security_mounts(o, sock);
  }
  /* No error object for these (an image may lack both): its message would call strerror(),
   * whose gettext lock another thread of the engine may have held at fork: this process would
   * wait for it forever (seen: a RUN on a FROM scratch stage hung). */
  sw_read_file("/etc/passwd", 0, &passwd, NULL, NULL);
  sw_read_file("/etc/group", 0, &group, NULL, NULL);
  if (sw_user_resolve(o->user, passwd, group, &u, &err) < 0)
    sb_fail(sock, err->code, 0, "%s", err->msg);
  if (tty >= 0) {
    sb_pty_attach(sock, tty, u.uid);
  } else {
    setup_stdio(o, sock, out_fd);
    setsid(); /* a terminal's Ctrl-C reaches slipway, which forwards it */
  }
  if (chdir(o->cwd ? o->cwd : "/") < 0)
    sb_fail(sock, 1, errno, "working directory `%s`", o->cwd);
  sb_apply_rlimits(o, sock);
  sb_security_restrict(o, sock);
  if (set_groups(&u) < 0 || setgid(u.gid) < 0 || setuid(u.uid) < 0)
    sb_fail(sock, 1, errno, "switch to user `%s` (uid %u, gid %u)", o->user ? o->user : "root",
            (unsigned)u.uid, (unsigned)u.gid);
  sb_security_caps(o, sock);
  umask(022);
  environ = make_env(o, &u);
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  execvp(o->argv[0], o->argv);
  exec_fail(sock, o->argv[0], errno);
}

/* ---- the monitor ---- */

static volatile pid_t init_pid;

static void
monitor_forward(int sig)
{
  if (init_pid > 0)
    kill(init_pid, sig);
}

static void __attribute__((noreturn)) monitor_wait(int sock, struct sb_net *net)
{
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  int wstatus;

  while (waitpid(init_pid, &wstatus, 0) < 0)
    if (errno != EINTR)
      sb_fail(sock, 1, errno, "sandbox: wait for the container");
  sb_net_stop(net);
  for (size_t i = 0; i < SW_ARRAY_SIZE(sigs); i++)
    signal(sigs[i], SIG_IGN);
  sb_send(sock, SB_MSG_EXIT, wstatus, "exit");
  _exit(0);
}

/* Fork the process (pid 1 of a new pid namespace, or an exec'd one), wait for it. */
static void __attribute__((noreturn)) run_process(struct monitor *m, int out_fd)
{
  int ex[2];
  if (pipe2(ex, O_CLOEXEC) < 0)
    sb_fail(m->sock, 1, errno, "sandbox: pipe");
  pid_t pid = fork();
  if (pid < 0)
    sb_fail(m->sock, 1, errno, "sandbox: fork the container's process");
  if (pid == 0) {
    close(ex[0]);
    sb_exec_fd = ex[1];
    container_main(m->o, m->sock, out_fd, m->tty);
  }
  init_pid = pid;
  close(ex[1]);
  /* on_start once the command runs: `run -d` then reports a command not found, as docker */
  char b;
  ssize_t n;
  while ((n = read(ex[0], &b, 1)) < 0 && errno == EINTR)
    ;
  close(ex[0]);
  if (n == 0)
    sb_send(m->sock, SB_MSG_PID, pid, "started");
  if (out_fd >= 0)
    close(out_fd);
  if (m->tty >= 0)
    close(m->tty); /* the master reads EIO once pid 1 and its children are gone */
  monitor_wait(m->sock, &m->net);
}

/* Close every fd from 3 up but the `n` in keep (any order, negatives ignored). */
static void
close_all_but(int *keep, size_t n)
{
  for (size_t i = 1; i < n; i++) /* insertion sort: a handful of fds */
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = 3;
  for (size_t i = 0; i < n; i++) {
    if (keep[i] < (int)lo)
      continue;
    if ((unsigned)keep[i] > lo)
      syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0U);
    lo = (unsigned)keep[i] + 1;
  }
  syscall(SYS_close_range, lo, ~0U, 0U);
}

void
sb_monitor(const sw_sandbox_opts_t *o, int sock, int out_fd, pid_t parent, const struct winsize *ws)
{
  /* A fork of a threaded process: it holds every fd the other threads had open, such as the
   * output pipe and socket of a RUN another stage runs at the same time, whose end-of-file
   * would then wait for this sandbox to end (seen: a 0.01 s RUN that took the 2 s of the
   * other stage's). Only what this sandbox uses stays open. */
  int keep[] = {sock, out_fd, o->stdin_fd, o->stdout_fd, o->stderr_fd};
  close_all_but(keep, SW_ARRAY_SIZE(keep));
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  struct monitor m = {.o = o, .sock = sock, .rootfd = -1, .ws = ws, .tty = -1};
  struct sigaction sa = {.sa_handler = monitor_forward, .sa_flags = SA_RESTART};

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(1);
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < SW_ARRAY_SIZE(sigs); i++)
    sigaction(sigs[i], &sa, NULL);
  umask(0);
  m.layer_trees = xcalloc(o->n_mounts + 1, sizeof(int));
  m.target_dir = xcalloc(o->n_mounts + 1, sizeof(bool));

  if (o->join_pid > 0) {
    join_namespaces(&m);
    run_process(&m, out_fd);
  }
  sb_net_fork(&m.net, o, sock);
  enter_namespaces(&m);
  prepare_layer_mounts(&m);
  make_stub_layer(&m);
  mount_overlay(sock, o->lowerdirs ? o->lowerdirs : (char *const[]){NULL}, STUB_DIR, o->upperdir,
                o->workdir, ROOT_DIR);
  m.rootfd = open(ROOT_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (m.rootfd < 0)
    sb_fail(sock, 1, errno, "sandbox: open `%s`", ROOT_DIR);
  setup_dev(&m);
  setup_sys_and_etc(&m);
  setup_mounts(&m);
  proc_placeholder(&m);
  if (o->cwd) {
    _cleanup_close_ int cwd = target_open(&m, o->cwd, true);
    if (cwd < 0)
      sb_fail(sock, 1, errno, "working directory `%s`", o->cwd);
  }
  enter_root(&m);
  run_process(&m, out_fd);
}
