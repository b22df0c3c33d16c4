/* slipway rootless: entering the user namespace an ordinary user's slipway runs in (see
 * userns.h). A holder child is cloned into a new user namespace; `newuidmap`/`newgidmap`
 * (setuid, they check the ranges against /etc/subuid and /etc/subgid), as podman and BuildKit
 * use them, map it while this process is still outside; then this process joins it and makes
 * its mount namespace there. Without a range or without the helpers the process unshares and
 * maps only its own ids itself, and says how to set the system up. */
#include "userns.h"
#include "util.h"

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define SUBUID_FILE "/etc/subuid"
#define SUBGID_FILE "/etc/subgid"
#define MAX_RANGES  64

static bool
parse_ulong(const char *s, unsigned long *out)
{
  char *end;

  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > 0xffffffffUL)
    return false;
  *out = v;
  return true;
}

size_t
sw_subid_parse(const char *text, const char *name, unsigned long id, sw_subid_t *out, size_t max)
{
  _cleanup_free_ char *copy = xstrdup(text ? text : "");
  char *save = NULL;
  size_t n = 0;

  for (char *line = strtok_r(copy, "\n", &save); line && n < max;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[3];
    f[0] = line;
    f[1] = strchr(line, ':');
    f[2] = f[1] ? strchr(f[1] + 1, ':') : NULL;
    if (line[0] == '#' || f[2] == NULL || strchr(f[2] + 1, ':'))
      continue;
    *f[1]++ = '\0';
    *f[2]++ = '\0';
    unsigned long owner, start, count;
    bool mine = (name && strcmp(f[0], name) == 0) || (parse_ulong(f[0], &owner) && owner == id);
    if (!mine || !parse_ulong(f[1], &start) || !parse_ulong(f[2], &count) || count == 0 ||
        start + count - 1 > 0xfffffffeUL)
      continue;
    out[n].start = start;
    out[n].count = count;
    n++;
  }
  return n;
}

/* ---- where we are ---- */

static bool nested;
static pthread_once_t nested_once = PTHREAD_ONCE_INIT;

/* The initial user namespace's inode number (PROC_USER_INIT_INO, fixed by the kernel). */
#define USER_NS_INIT_INO 0xEFFFFFFDUL

static void
nested_init(void)
{
  _cleanup_free_ char *map = NULL;
  sw_error_t err = NULL;
  unsigned long in, out, count;
  struct stat st;

  /* A namespace of root's may map all ids onto themselves too: the inode tells them apart. */
  if (stat("/proc/self/ns/user", &st) == 0) {
    nested = st.st_ino != USER_NS_INIT_INO;
    return;
  }

  if (sw_read_file("/proc/self/uid_map", 1 << 16, &map, NULL, &err) < 0) {
    sw_error_release(&err);
    return;
  }
  /* The initial namespace maps all 2^32-1 ids onto themselves, in one line. */
  nested = !(sscanf(map, "%lu %lu %lu", &in, &out, &count) == 3 && in == 0 && out == 0 &&
             count == 4294967295UL && strchr(map, '\n') == map + strlen(map) - 1);
}

/* Set while a build tries outside: what it reads was made inside (user.overlay.opaque). */
static bool nested_as_inside;

bool
sw_userns_nested(void)
{
  if (nested_as_inside)
    return true;
  pthread_once(&nested_once, nested_init);
  return nested;
}

const char *
sw_overlay_opaque_xattr(void)
{
  return sw_userns_nested() ? "user.overlay.opaque" : "trusted.overlay.opaque";
}

const char *
sw_userns_hint(int e)
{
  if (!sw_userns_nested() || (e != EPERM && e != EINVAL && e != EACCES))
    return "";
  return " (in a user namespace: overlayfs needs Linux >= 5.11 with the `userxattr` option, "
         "device nodes cannot be made, and the store must be on a filesystem with user xattrs "
         "such as ext4, xfs, btrfs or tmpfs >= 6.6; see README, Rootless)";
}

/* ---- the system's set-up ---- */

/* `name` found in $PATH (or the usual bin dirs), or NULL. */
static char *
find_program(const char *name)
{
  const char *path = getenv("PATH");
  _cleanup_free_ char *dirs =
      xasprintf("%s:/usr/bin:/bin:/usr/sbin:/sbin", path && *path ? path : "/usr/local/bin");
  char *save = NULL;

  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    _cleanup_free_ char *p = xasprintf("%s/%s", d, name);
    if (access(p, X_OK) == 0)
      return steal_ptr(&p);
  }
  return NULL;
}

static size_t
read_ranges(const char *file, const char *name, unsigned long id, sw_subid_t *out)
{
  _cleanup_free_ char *text = NULL;
  sw_error_t err = NULL;

  if (sw_read_file(file, 1 << 22, &text, NULL, &err) < 0) {
    sw_debug("rootless: %s", err->msg);
    sw_error_release(&err);
    return 0;
  }
  return sw_subid_parse(text, name, id, out, MAX_RANGES);
}

static int
read_sysctl(const char *path)
{
  _cleanup_free_ char *v = NULL;
  sw_error_t err = NULL;

  if (sw_read_file(path, 64, &v, NULL, &err) < 0) {
    sw_error_release(&err);
    return -1;
  }
  return atoi(v);
}

/* Why unshare(CLONE_NEWUSER) failed with e, and what to do. */
static int
unshare_error(int e, sw_error_t *err)
{
  const char *what = "";

  if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
    what = "unprivileged user namespaces are disabled: as root, run `sysctl -w "
           "kernel.unprivileged_userns_clone=1` (and set it in /etc/sysctl.d to keep it)";
  else if (read_sysctl("/proc/sys/user/max_user_namespaces") == 0)
    what = "user namespaces are disabled: as root, run `sysctl -w "
           "user.max_user_namespaces=15000` (and set it in /etc/sysctl.d to keep it)";
  else if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
    what = "AppArmor restricts unprivileged user namespaces: as root, run `sysctl -w "
           "kernel.apparmor_restrict_unprivileged_userns=0` or give slipway an AppArmor "
           "profile with `userns,`";
  else if (e == ENOSPC)
    what = "the limit of user namespaces is reached: raise `sysctl user.max_user_namespaces`";
  else if (e == EINVAL)
    what = "the kernel lacks user namespaces (CONFIG_USER_NS)";
  else if (e == EPERM)
    what = "something refuses unshare(CLONE_NEWUSER): a seccomp profile (a container's default "
           "one), a chroot, or an LSM; run slipway where it is allowed or as root (see README, "
           "Rootless)";
  return sw_error(err, e, "rootless: create a user namespace for uid %u: %s", (unsigned)getuid(),
                  what);
}

/* ---- the mapping ---- */

typedef struct {
  const char *tool; /* "newuidmap" */
  char *path;       /* its path, or NULL */
  unsigned long id; /* the user's own uid or gid */
  sw_subid_t r[MAX_RANGES];
  size_t n;
} idmap_t;

/* argv for `TOOL PID 0 ID 1 1 START COUNT ...`: the user is root, the ranges follow. */
static char **
map_argv(const idmap_t *m, pid_t pid)
{
  char **v = NULL;
  unsigned long inside = 1;

  sw_strv_push(&v, m->path);
  sw_strv_push_take(&v, xasprintf("%d", (int)pid));
  sw_strv_push_take(&v, xasprintf("0 %lu 1", m->id));
  for (size_t i = 0; i < m->n; i++) {
    sw_strv_push_take(&v, xasprintf("%lu %lu %lu", inside, m->r[i].start, m->r[i].count));
    inside += m->r[i].count;
  }
  /* newuidmap wants each number as its own argument. */
  char **out = NULL;
  for (char **a = v; *a; a++) {
    _cleanup_free_ char *s = xstrdup(*a);
    char *save = NULL;
    for (char *w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save))
      sw_strv_push(&out, w);
  }
  sw_strv_free(v);
  return out;
}

/* ---- children that share our memory ----
 *
 * fork() copies this process's page tables and the child then waits to be scheduled before it
 * can exec; posix_spawn() blocks us until its child has exec'd. On a busy machine each costs
 * milliseconds, on the path of every command. A child cloned with CLONE_VM costs neither; it
 * runs on a stack of its own and touches nothing of ours but that stack and what `arg` points
 * to, which stays valid until we have reaped it. All signals are blocked in it (no handler of
 * ours may run there); it restores the mask it is given before it execs. Called while slipway
 * has one thread and no signal handlers yet (sw_userns_enter). */
#define CHILD_STACK (64 * 1024)

typedef struct {
  pid_t pid;
  void *stack;
} vm_child_t;

static int
vm_child_start(vm_child_t *c, int (*fn)(void *), void *arg, int flags)
{
  sigset_t all, old;

  c->pid = -1;
  c->stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (c->stack == MAP_FAILED) {
    c->stack = NULL;
    return -1;
  }
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  c->pid = clone(fn, (char *)c->stack + CHILD_STACK, CLONE_VM | flags | SIGCHLD, arg);
  int e = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return c->pid < 0 ? -1 : 0;
}

/* Reap the child (when `block`, waiting for it): its wait status, or -1 when it is still
 * running (or was never started). The stack is freed once it is gone. */
static int
vm_child_reap(vm_child_t *c, bool block)
{
  int st = -1;
  pid_t r = 0;

  if (c->pid > 0) {
    while ((r = waitpid(c->pid, &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
      ;
    if (r == 0)
      return -1;
    c->pid = -1;
  }
  if (c->stack)
    munmap(c->stack, CHILD_STACK);
  c->stack = NULL;
  return r > 0 ? st : -1;
}

typedef struct {
  char **argv;
  sigset_t mask;
} tool_t;

static int
tool_main(void *arg)
{
  tool_t *t = arg;

  sigprocmask(SIG_SETMASK, &t->mask, NULL);
  execve(t->argv[0], t->argv, environ);
  _exit(127); /* wait_tool reports it; no stdio here (shared memory) */
}

/* Wait for a started tool: its exit status, or -1 when it could not run. */
static int
wait_tool(vm_child_t *c)
{
  int st = vm_child_reap(c, true);

  if (st < 0)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int
write_proc(const char *file, const char *text, sw_error_t *err)
{
  _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || sw_write_all(fd, text, strlen(text)) < 0)
    return sw_error(err, errno, "rootless: write `%s` to %s", text, file);
  return 0;
}

/* Without subordinate ids: only the user's own uid and gid, written by the process itself
 * (setgroups must be denied first, as the kernel requires of an unprivileged gid_map). */
static int
map_self(unsigned long uid, unsigned long gid, sw_error_t *err)
{
  _cleanup_free_ char *um = xasprintf("0 %lu 1", uid);
  _cleanup_free_ char *gm = xasprintf("0 %lu 1", gid);

  if (write_proc("/proc/self/setgroups", "deny", err) < 0 ||
      write_proc("/proc/self/uid_map", um, err) < 0 ||
      write_proc("/proc/self/gid_map", gm, err) < 0)
    return -1;
  return 0;
}

/* The first id past every range of `file` (at least 100000, login.defs's SUB_UID_MIN): where a
 * new range overlaps no other user's. */
static unsigned long
next_free_id(const char *file)
{
  _cleanup_free_ char *text = NULL;
  sw_error_t err = NULL;
  unsigned long end = 100000;

  if (sw_read_file(file, 1 << 22, &text, NULL, &err) < 0) {
    sw_error_release(&err);
    return end;
  }
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(l, ':');
    unsigned long start, count;
    if (c1 && sscanf(c1 + 1, "%lu:%lu", &start, &count) == 2 && start + count > end &&
        start + count < 0xffff0000UL)
      end = start + count;
  }
  return end;
}

static void
warn_single(const char *name, const idmap_t *u, const idmap_t *g)
{
  const char *who = name ? name : "USER";
  unsigned long su = next_free_id(SUBUID_FILE), sg = next_free_id(SUBGID_FILE);

  if (u->path == NULL || g->path == NULL)
    sw_warn("rootless: `%s` not found: install Debian's `uidmap` package (as root: apt-get "
            "install uidmap); until then builds see one uid and one gid (0, you), so a RUN or "
            "COPY that gives a file another owner fails",
            u->path == NULL ? u->tool : g->tool);
  else
    sw_warn("rootless: no subordinate %s for `%s` in %s (a line such as `%s:%lu:65536`); "
            "until one is added builds see one uid and one gid (0, you), so apt, `COPY "
            "--chown` and layers with other owners fail. As root, run: usermod --add-subuids "
            "%lu-%lu --add-subgids %lu-%lu %s",
            u->n == 0 ? "uids" : "gids", who, u->n == 0 ? SUBUID_FILE : SUBGID_FILE, who,
            u->n == 0 ? su : sg, su, su + 65535, sg, sg + 65535, who);
}

/* ---- joining a mapped user namespace ---- */

/* The holder: a child cloned (vm_child_start) straight into a new user namespace, which it
 * keeps alive while this process, still outside, maps it; then this process joins it (setns)
 * and lets the holder go. It closes the pipe's write end it inherited, then reads until we
 * close ours (or die). It may first run after we have returned (nothing waits for it to be
 * scheduled), so what it reads is static: the pipe's fds, numbers in its own copy of our fd
 * table, set before it is cloned and never changed while it may run (one holder at a time). */
typedef struct {
  vm_child_t c;
  int fds[2]; /* our copy of the pipe: [read, write] */
} holder_t;

static int holder_fds[2];

static int
holder_main(void *arg)
{
  char c;

  (void)arg;
  /* Raw syscalls: libc's close and read are cancellation points, which once slipway has
   * threads touch the cancel state in the thread descriptor we share. */
  syscall(SYS_close, holder_fds[1]);
  return syscall(SYS_read, holder_fds[0], &c, 1) < 0;
}

/* Clone the holder into a new user namespace; *clone_errno is clone's errno on failure (the
 * caller says why, as for unshare). */
static int
holder_start(holder_t *h, int *clone_errno, sw_error_t *err)
{
  *clone_errno = 0;
  h->c.pid = -1;
  h->c.stack = NULL;
  if (pipe2(h->fds, O_CLOEXEC) < 0) {
    h->fds[0] = h->fds[1] = -1;
    return sw_error(err, errno, "rootless: pipe");
  }
  holder_fds[0] = h->fds[0];
  holder_fds[1] = h->fds[1];
  if (vm_child_start(&h->c, holder_main, NULL, CLONE_NEWUSER) < 0)
    *clone_errno = errno;
  return 0;
}

/* The holder of a previous sw_userns_enter that had not exited yet when we let it go. */
static vm_child_t late_holder;

static void
reap_late_holder(void)
{
  vm_child_reap(&late_holder, true);
}

/* Let the holder go. It exits as soon as it is scheduled; not to wait for that, it is reaped
 * then if it is gone already, else when this process exits. */
static void
holder_stop(holder_t *h)
{
  for (int i = 0; i < 2; i++)
    if (h->fds[i] >= 0)
      close(h->fds[i]);
  h->fds[0] = h->fds[1] = -1;
  if (h->c.pid > 0 && vm_child_reap(&h->c, false) < 0) {
    late_holder = h->c;
    atexit(reap_late_holder);
    return;
  }
  vm_child_reap(&h->c, true);
}

/* Join the holder's (mapped) user namespace, then make a mount namespace of our own in it. */
static int
holder_join(const holder_t *h, sw_error_t *err)
{
  _cleanup_free_ char *p = xasprintf("/proc/%d/ns/user", (int)h->c.pid);
  _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);

  if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0)
    return sw_error(err, errno, "rootless: join the user namespace of `%s`", p);
  if (unshare(CLONE_NEWNS) < 0)
    return sw_error(err, errno, "rootless: create a mount namespace in the user namespace");
  return 0;
}

/* Map the holder's namespace with newuidmap and newgidmap, both at once (each is a setuid exec
 * of a few ms, on the path of every command). 0, or 1 + which failed (the tool said why). */
static int
map_with_tools(pid_t pid, const idmap_t *u, const idmap_t *g)
{
  _cleanup_strv_ char **ua = map_argv(u, pid);
  _cleanup_strv_ char **ga = map_argv(g, pid);
  tool_t ut = {.argv = ua}, gt = {.argv = ga};
  vm_child_t uc, gc;

  sigprocmask(SIG_SETMASK, NULL, &ut.mask);
  gt.mask = ut.mask;
  if (vm_child_start(&uc, tool_main, &ut, 0) < 0)
    fprintf(stderr, "slipway: start `%s`: %s\n", u->path, strerror(errno));
  if (vm_child_start(&gc, tool_main, &gt, 0) < 0)
    fprintf(stderr, "slipway: start `%s`: %s\n", g->path, strerror(errno));
  int ur = wait_tool(&uc), gr = wait_tool(&gc);
  return ur != 0 ? 1 : gr != 0 ? 2 : 0;
}

static int
enter_mapped(idmap_t *u, idmap_t *g, const char *name, sw_error_t *err)
{
  holder_t h;
  int e;

  if (holder_start(&h, &e, err) < 0)
    return -1;
  if (e != 0) {
    holder_stop(&h);
    return unshare_error(e, err);
  }
  int failed = map_with_tools(h.c.pid, u, g);
  int r = failed ? 0 : holder_join(&h, err);
  holder_stop(&h);
  if (failed) {
    const idmap_t *m = failed == 2 ? g : u;
    return sw_error(err, 0,
                    "rootless: `%s` refused to map the ranges of `%s` from %s (its message is "
                    "above): check that the file's lines for the user are right and do not "
                    "overlap another user's, and that `%s` is setuid root (ls -l %s)",
                    m->tool, name ? name : "?", m == u ? SUBUID_FILE : SUBGID_FILE, m->path,
                    m->path);
  }
  return r;
}

/* ---- the sandbox's run dir ---- */

/* The host dir sandboxes mount their tmpfs on and slirp4netns keeps its API socket in
 * (SB_RUNDIR in sandbox-private.h). Root made it 0700; an ordinary user gets a private tmpfs
 * there, in slipway's mount namespace. */
#define RUNDIR          "/run/slipway"
#define MAX_RUN_ENTRIES 256

static int
run_tmpfs(sw_error_t *err)
{
  if (mount("tmpfs", RUNDIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=1m") < 0)
    return sw_error(err, errno, "rootless: mount a tmpfs on `%s`", RUNDIR);
  return 0;
}

/* No /run/slipway and /run is root's: /run becomes a tmpfs of ours holding the host's entries
 * (each bound back, its mounts with it, symlinks copied) plus slipway's dir. */
static int
rebuild_run(sw_error_t *err)
{
  _cleanup_dir_ DIR *d = opendir("/run");
  int fds[MAX_RUN_ENTRIES];
  char *names[MAX_RUN_ENTRIES];
  size_t n = 0;
  int ret = -1;
  struct dirent *e;

  if (d == NULL)
    return sw_error(err, errno, "rootless: open /run");
  while ((e = readdir(d)) && n < MAX_RUN_ENTRIES) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *p = xasprintf("/run/%s", e->d_name);
    struct stat st;
    if (lstat(p, &st) < 0)
      continue;
    /* A symlink is copied (fd -2); anything else is cloned with what is mounted below it. */
    fds[n] = S_ISLNK(st.st_mode)
                 ? -2
                 : open_tree(AT_FDCWD, p, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fds[n] == -1)
      continue;
    names[n++] = xstrdup(e->d_name);
  }
  /* Read the links before the tmpfs hides them. */
  char *links[MAX_RUN_ENTRIES] = {0};
  for (size_t i = 0; i < n; i++)
    if (fds[i] == -2) {
      char t[4096];
      ssize_t len = readlinkat(dirfd(d), names[i], t, sizeof(t) - 1);
      links[i] = len < 0 ? NULL : xstrndup(t, (size_t)len);
    }
  if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0) {
    sw_error(err, errno, "rootless: mount a tmpfs on /run");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *p = xasprintf("/run/%s", names[i]);
    if (fds[i] == -2) {
      if (links[i] && symlink(links[i], p) < 0)
        sw_debug("rootless: keep /run/%s: %s", names[i], strerror(errno));
      continue;
    }
    struct stat st;
    if (fstat(fds[i], &st) < 0)
      continue;
    int r = S_ISDIR(st.st_mode) ? mkdir(p, 0755) : mknod(p, S_IFREG | 0644, 0);
    if (r < 0 || move_mount(fds[i], "", AT_FDCWD, p, MOVE_MOUNT_F_EMPTY_PATH) < 0)
      sw_debug("rootless: keep /run/%s: %s", names[i], strerror(errno));
  }
  if (mkdir(RUNDIR, 0700) < 0) {
    sw_error(err, errno, "rootless: mkdir `%s`", RUNDIR);
    goto out;
  }
  ret = 0;
out:
  for (size_t i = 0; i < n; i++) {
    if (fds[i] >= 0)
      close(fds[i]);
    free(names[i]);
    free(links[i]);
  }
  return ret;
}

static int
private_rundir(sw_error_t *err)
{
  struct stat st;

  if (stat(RUNDIR, &st) == 0 || sw_mkdir_p(RUNDIR, 0700, err) == 0)
    return run_tmpfs(err);
  sw_error_release(err);
  return rebuild_run(err);
}

/* ---- root without CAP_SYS_ADMIN (inside an unprivileged container) ---- */

static bool
has_sys_admin(void)
{
  _cleanup_free_ char *status = NULL;
  sw_error_t err = NULL;
  unsigned long long eff = 0;

  if (sw_read_file("/proc/self/status", 1 << 16, &status, NULL, &err) < 0) {
    sw_error_release(&err);
    return true; /* cannot tell: go on as root, whose errors say what failed */
  }
  const char *p = strstr(status, "\nCapEff:");
  if (p == NULL || sscanf(p + 8, "%llx", &eff) != 1)
    return true;
  return (eff >> 21) & 1; /* CAP_SYS_ADMIN */
}

/* The ids this namespace has, mapped onto themselves ("0 0 65536\n..."): what a root with
 * CAP_SETUID/CAP_SETGID may give a child namespace. */
static char *
identity_map(const char *file)
{
  _cleanup_free_ char *map = NULL;
  sw_error_t err = NULL;
  sw_buf_t out = {0};

  if (sw_read_file(file, 1 << 16, &map, NULL, &err) < 0) {
    sw_error_release(&err);
    return xstrdup("0 0 1\n");
  }
  char *save = NULL;
  for (char *l = strtok_r(map, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    unsigned long in, outside, count;
    if (sscanf(l, "%lu %lu %lu", &in, &outside, &count) == 3)
      sw_buf_printf(&out, "%lu %lu %lu\n", in, in, count);
  }
  return out.data ? sw_buf_steal(&out) : xstrdup("0 0 1\n");
}

/* Root that may not mount (a container's root without CAP_SYS_ADMIN): a user namespace of its
 * own gives it that, over the same ids, which it maps itself (it has CAP_SETUID/SETGID here). */
static int
enter_as_root(sw_error_t *err)
{
  holder_t h;
  int e;

  if (holder_start(&h, &e, err) < 0)
    return -1;
  if (e != 0) {
    holder_stop(&h);
    unshare_error(e, err);
    return sw_error_wrap(err, "root without CAP_SYS_ADMIN (an unprivileged container?) needs "
                              "a user namespace; run the container with `--security-opt "
                              "seccomp=unconfined` (see README, Rootless)");
  }
  _cleanup_free_ char *um = identity_map("/proc/self/uid_map");
  _cleanup_free_ char *gm = identity_map("/proc/self/gid_map");
  _cleanup_free_ char *uf = xasprintf("/proc/%d/uid_map", (int)h.c.pid);
  _cleanup_free_ char *gf = xasprintf("/proc/%d/gid_map", (int)h.c.pid);
  int r = 0;
  if (write_proc(uf, um, err) < 0 || write_proc(gf, gm, err) < 0)
    r = sw_error_wrap(err, "rootless: map ids of the user namespace (root without CAP_SYS_ADMIN "
                           "needs CAP_SETUID and CAP_SETGID)");
  else
    r = holder_join(&h, err);
  holder_stop(&h);
  return r;
}

static bool outside;

void
sw_userns_stay_outside(void)
{
  outside = geteuid() != 0;
}

bool
sw_userns_outside(void)
{
  return outside;
}

int
sw_userns_enter(sw_error_t *err)
{
  if (geteuid() == 0) {
    if (has_sys_admin())
      return 0;
    if (enter_as_root(err) < 0)
      return -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
      return sw_error(err, errno, "rootless: make the mount namespace private");
    sw_debug("rootless: root without CAP_SYS_ADMIN: in a user namespace of its own");
    return private_rundir(err);
  }
  unsigned long uid = getuid(), gid = getgid();
  struct passwd *pw = getpwuid((uid_t)uid);
  _cleanup_free_ char *name = pw ? xstrdup(pw->pw_name) : NULL;
  idmap_t u = {.tool = "newuidmap", .id = uid}, g = {.tool = "newgidmap", .id = gid};
  _cleanup_free_ char *up = find_program(u.tool);
  _cleanup_free_ char *gp = find_program(g.tool);
  u.path = up;
  g.path = gp;
  u.n = read_ranges(SUBUID_FILE, name, uid, u.r);
  g.n = read_ranges(SUBGID_FILE, name, uid, g.r);

  if (u.path && g.path && u.n > 0 && g.n > 0) {
    if (enter_mapped(&u, &g, name, err) < 0)
      return -1;
    if (setgroups(0, NULL) < 0)
      return sw_error(err, errno, "rootless: drop supplementary groups");
  } else {
    warn_single(name, &u, &g);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
      return unshare_error(errno, err);
    if (map_self(uid, gid, err) < 0)
      return -1;
  }
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
    return sw_error(err, errno, "rootless: become root in the user namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return sw_error(err, errno, "rootless: make the mount namespace private");
  if (private_rundir(err) < 0)
    return -1;
  sw_debug("rootless: uid %lu is root in a user namespace (%zu uid range(s), %zu gid range(s))",
           uid, u.n, g.n);
  return 0;
}

/* ---- a build that may need no namespace ---- */

/* The environment variable that tells the re-executed slipway to enter its user namespace at
 * once (and that this process is the second try). */
#define REEXEC_ENV "SLIPWAY_USERNS_REEXEC"

static struct {
  bool on;
  char **argv;       /* a copy: getopt permutes the real one */
  int real_fd[3];    /* the caller's stdout and stderr while held (0 is never held) */
  int held_fd[3];    /* the memfds that hold them */
  sigset_t mask;     /* the signal mask at startup */
  bool pipe_default; /* SIGPIPE was SIG_DFL at startup */
  idmap_t u, g;      /* the mapping the namespace would have (map_argv's) */
} spec = {.real_fd = {-1, -1, -1}, .held_fd = {-1, -1, -1}};

static bool
hold_fd(int fd)
{
  int real = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (real < 0)
    return false;
  int m =
      (int)syscall(SYS_memfd_create, fd == 1 ? "slipway-stdout" : "slipway-stderr", MFD_CLOEXEC);
  if (m < 0 || dup2(m, fd) < 0) {
    if (m >= 0)
      close(m);
    close(real);
    return false;
  }
  spec.real_fd[fd] = real;
  spec.held_fd[fd] = m;
  return true;
}

/* Put back the caller's fd; if `emit`, first write what was held to it. */
static void
unhold_fd(int fd, bool emit)
{
  if (spec.real_fd[fd] < 0)
    return;
  if (emit && lseek(spec.held_fd[fd], 0, SEEK_SET) == 0) {
    char buf[16384];
    ssize_t n;
    while ((n = read(spec.held_fd[fd], buf, sizeof(buf))) > 0 &&
           sw_write_all(spec.real_fd[fd], buf, (size_t)n) == 0)
      ;
  }
  dup2(spec.real_fd[fd], fd);
  close(spec.real_fd[fd]);
  close(spec.held_fd[fd]);
  spec.real_fd[fd] = spec.held_fd[fd] = -1;
}

/* Put back the caller's stdout and stderr; if `emit`, first write what was held to them
 * (stderr first: progress, then the result). */
static void
unhold_both(bool emit)
{
  fflush(stdout);
  fflush(stderr);
  unhold_fd(2, emit);
  unhold_fd(1, emit);
}

bool
sw_userns_speculate(int argc, char **argv)
{
  if (geteuid() == 0)
    return false;
  if (getenv(REEXEC_ENV)) {
    unsetenv(REEXEC_ENV);
    return false;
  }
  /* Only with the full mapping: the single-id fallback warns on every command that enters. */
  unsigned long uid = getuid();
  struct passwd *pw = getpwuid((uid_t)uid);
  const char *name = pw ? pw->pw_name : NULL;
  _cleanup_free_ char *up = find_program("newuidmap");
  _cleanup_free_ char *gp = find_program("newgidmap");
  spec.u.id = uid;
  spec.g.id = getgid();
  spec.u.n = read_ranges(SUBUID_FILE, name, uid, spec.u.r);
  spec.g.n = read_ranges(SUBGID_FILE, name, uid, spec.g.r);
  if (up == NULL || gp == NULL || spec.u.n == 0 || spec.g.n == 0)
    return false;

  struct sigaction sa;
  sigprocmask(SIG_SETMASK, NULL, &spec.mask);
  spec.pipe_default = sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL;
  fflush(stdout);
  fflush(stderr);
  if (!hold_fd(1))
    return false;
  if (!hold_fd(2)) {
    unhold_fd(1, false);
    return false;
  }
  spec.argv = xcalloc((size_t)argc + 1, sizeof(char *));
  for (int i = 0; i < argc; i++)
    spec.argv[i] = xstrdup(argv[i]);
  spec.on = true;
  nested_as_inside = true;
  sw_userns_stay_outside();
  sw_debug("rootless: trying the build outside the user namespace (cache hits only)");
  return true;
}

bool
sw_userns_speculating(void)
{
  return spec.on;
}

int
sw_userns_need(const char *what, sw_error_t *err)
{
  if (!spec.on)
    return 0;
  return sw_error(err, 0, "%s needs the user namespace", what);
}

unsigned long
sw_subid_inside(unsigned long own, const sw_subid_t *r, size_t n, unsigned long id)
{
  if (id == own)
    return 0;
  unsigned long inside = 1;
  for (size_t i = 0; i < n; i++) {
    if (id >= r[i].start && id - r[i].start < r[i].count)
      return inside + (id - r[i].start);
    inside += r[i].count;
  }
  return 65534;
}

void
sw_userns_stat_inside(struct stat *st)
{
  if (!spec.on)
    return;
  st->st_uid = (uid_t)sw_subid_inside(spec.u.id, spec.u.r, spec.u.n, st->st_uid);
  st->st_gid = (gid_t)sw_subid_inside(spec.g.id, spec.g.r, spec.g.n, st->st_gid);
}

int
sw_userns_real_fd(int fd)
{
  return fd >= 1 && fd <= 2 && spec.real_fd[fd] >= 0 ? spec.real_fd[fd] : fd;
}

void
sw_userns_release_output(void)
{
  if (spec.on)
    unhold_both(true);
}

/* How many threads this process has (0 if /proc says nothing). */
static long
thread_count(void)
{
  _cleanup_free_ char *text = NULL;
  sw_error_t err = NULL;
  if (sw_read_file("/proc/self/status", 1 << 16, &text, NULL, &err) < 0) {
    sw_error_release(&err);
    return 0;
  }
  const char *t = strstr(text, "\nThreads:");
  return t ? strtol(t + 9, NULL, 10) : 0;
}

int
sw_userns_enter_late(const char *why, sw_error_t *err)
{
  if (!spec.on)
    return 0;
  /* The namespace can be entered only by a process with one thread; the build joined its
   * own, but if one is left (a library's), start again from exec (which a test forces with
   * SLIPWAY_TEST_USERNS_REEXEC=1). */
  const char *force = getenv("SLIPWAY_TEST_USERNS_REEXEC");
  if (thread_count() != 1 || (force && strcmp(force, "1") == 0))
    sw_userns_reexec(why);
  unhold_both(false);
  spec.on = false;
  nested_as_inside = false;
  outside = false;
  sw_debug("rootless: %s: building again in the user namespace", why);
  /* The build's Ctrl-C handler is in place: not in the CLONE_VM children that map. */
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, &old);
  int r = sw_userns_enter(err);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (r < 0)
    return -1;
  /* The try outside may have asked already: overlay mounts and /proc differ inside. */
  pthread_once(&nested_once, nested_init);
  nested_init();
  return 0;
}

void
sw_userns_reexec(const char *why)
{
  if (!spec.on)
    return;
  unhold_both(false);
  sw_debug("rootless: %s: building again in the user namespace, from exec", why);
  if (spec.pipe_default)
    signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  sigprocmask(SIG_SETMASK, &spec.mask, NULL);
  setenv(REEXEC_ENV, "1", 1);
  execv("/proc/self/exe", spec.argv);
  fprintf(stderr, "slipway: re-run itself (/proc/self/exe) to enter its user namespace: %s\n",
          strerror(errno));
  _exit(1);
}
