/* slipway sandbox: the security defaults a `docker run` / `docker build` process gets, applied
 * by pid 1 of the container after the mounts and pivot_root and before exec: Docker's 14
 * capabilities (or --cap-add/--cap-drop/--privileged), masked and read-only /proc and /sys
 * paths, no_new_privs on request, and the seccomp filter (sandbox-seccomp.c). Also the pure
 * capability-name logic the CLI uses. No file is read here: everything runs on every RUN step.
 *
 * Order matters: mounts need CAP_SYS_ADMIN, the bounding set needs CAP_SETPCAP, the user
 * switch needs CAP_SETUID/SETGID and the seccomp filter CAP_SYS_ADMIN (or no_new_privs); the
 * permitted/effective sets are cut last. */
#include "sandbox-private.h"

#include <linux/capability.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Indexed by capability number (<linux/capability.h>). */
#define N(c) [c] = #c
static const char *const cap_names[SW_CAP_COUNT] = {
    N(CAP_CHOWN),
    N(CAP_DAC_OVERRIDE),
    N(CAP_DAC_READ_SEARCH),
    N(CAP_FOWNER),
    N(CAP_FSETID),
    N(CAP_KILL),
    N(CAP_SETGID),
    N(CAP_SETUID),
    N(CAP_SETPCAP),
    N(CAP_LINUX_IMMUTABLE),
    N(CAP_NET_BIND_SERVICE),
    N(CAP_NET_BROADCAST),
    N(CAP_NET_ADMIN),
    N(CAP_NET_RAW),
    N(CAP_IPC_LOCK),
    N(CAP_IPC_OWNER),
    N(CAP_SYS_MODULE),
    N(CAP_SYS_RAWIO),
    N(CAP_SYS_CHROOT),
    N(CAP_SYS_PTRACE),
    N(CAP_SYS_PACCT),
    N(CAP_SYS_ADMIN),
    N(CAP_SYS_BOOT),
    N(CAP_SYS_NICE),
    N(CAP_SYS_RESOURCE),
    N(CAP_SYS_TIME),
    N(CAP_SYS_TTY_CONFIG),
    N(CAP_MKNOD),
    N(CAP_LEASE),
    N(CAP_AUDIT_WRITE),
    N(CAP_AUDIT_CONTROL),
    N(CAP_SETFCAP),
    N(CAP_MAC_OVERRIDE),
    N(CAP_MAC_ADMIN),
    N(CAP_SYSLOG),
    N(CAP_WAKE_ALARM),
    N(CAP_BLOCK_SUSPEND),
    N(CAP_AUDIT_READ),
    N(CAP_PERFMON),
    N(CAP_BPF),
    N(CAP_CHECKPOINT_RESTORE),
};
#undef N

/* ---- names (pure) ---- */

int
sw_cap_from_name(const char *name)
{
  if (strncasecmp(name, "CAP_", 4) == 0)
    name += 4;
  for (int i = 0; i < SW_CAP_COUNT; i++)
    if (strcasecmp(name, cap_names[i] + 4) == 0)
      return i;
  return -1;
}

const char *
sw_cap_name(int cap)
{
  return cap >= 0 && cap < SW_CAP_COUNT ? cap_names[cap] : NULL;
}

static bool
is_all(const char *name)
{
  return strcasecmp(name, "ALL") == 0 || strcasecmp(name, "CAP_ALL") == 0;
}

/* The mask named by a list; *all set if "ALL" is in it. */
static int
caps_mask(char *const *names, const char *flag, uint64_t *mask, bool *all, sw_error_t *err)
{
  *mask = 0;
  *all = false;
  for (char *const *n = names; n && *n; n++) {
    if (is_all(*n)) {
      *all = true;
      continue;
    }
    int c = sw_cap_from_name(*n);
    if (c < 0)
      return sw_error_code(err, SW_EXIT_USAGE, 0,
                           "%s `%s`: unknown capability: use a name such as NET_ADMIN or "
                           "CAP_NET_ADMIN, or ALL",
                           flag, *n);
    *mask |= (uint64_t)1 << c;
  }
  return 0;
}

int
sw_caps_tweak(char *const *add, char *const *drop, bool privileged, uint64_t *out, sw_error_t *err)
{
  uint64_t a, d;
  bool add_all, drop_all;

  if (caps_mask(add, "--cap-add", &a, &add_all, err) < 0 ||
      caps_mask(drop, "--cap-drop", &d, &drop_all, err) < 0)
    return -1;
  if (privileged)
    *out = SW_CAPS_ALL;
  else if (add_all)
    *out = SW_CAPS_ALL & ~d;
  else if (drop_all)
    *out = a;
  else
    *out = (SW_CAPS_DEFAULT & ~d) | a;
  return 0;
}

/* ---- masked and read-only paths ---- */

/* Docker's (moby oci/defaults.go) lists. A missing path is skipped. */
static const struct {
  const char *path;
  bool dir;
} masked[] = {
    {"/proc/acpi", true},         {"/proc/kcore", false},
    {"/proc/keys", false},        {"/proc/latency_stats", false},
    {"/proc/timer_list", false},  {"/proc/timer_stats", false},
    {"/proc/sched_debug", false}, {"/proc/scsi", true},
    {"/sys/firmware", true},      {"/sys/devices/virtual/powercap", true},
};

static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                       "/proc/sysrq-trigger"};

static int
mask_path(const char *path, bool dir)
{
  if (!dir) {
    if (mount("/dev/null", path, NULL, MS_BIND, NULL) == 0)
      return 0;
    if (errno != ENOTDIR)
      return -1;
  }
  /* An empty read-only tmpfs hides a directory's entries. */
  return mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
}

static int
readonly_path(const char *path)
{
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return -1;
  return mount(NULL, path, NULL,
               MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REC, NULL);
}

void
sb_security_mounts(const sw_sandbox_opts_t *o, int sock)
{
  if (o->privileged || o->systempaths_unconfined)
    return;
  for (size_t i = 0; i < SW_ARRAY_SIZE(masked); i++)
    if (mask_path(masked[i].path, masked[i].dir) < 0 && errno != ENOENT)
      sb_fail(sock, 1, errno, "sandbox: mask `%s`", masked[i].path);
  for (size_t i = 0; i < SW_ARRAY_SIZE(readonly); i++)
    if (readonly_path(readonly[i]) < 0 && errno != ENOENT)
      sb_fail(sock, 1, errno, "sandbox: make `%s` read-only", readonly[i]);
}

/* ---- capabilities ---- */

static int
capget_now(struct __user_cap_data_struct data[2])
{
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  return (int)syscall(SYS_capget, &h, data);
}

void
sb_security_restrict(const sw_sandbox_opts_t *o, int sock)
{
  if (!o->privileged) {
    /* PR_CAPBSET_DROP fails with EINVAL past the kernel's last capability. */
    for (int c = 0; c < 64; c++) {
      if (o->caps & ((uint64_t)1 << c))
        continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
        if (errno == EINVAL)
          break;
        sb_fail(sock, 1, errno, "sandbox: drop %s from the bounding set",
                sw_cap_name(c) ? sw_cap_name(c) : "a capability");
      }
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    sb_fail(sock, 1, errno, "sandbox: clear the ambient capabilities");
  if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    sb_fail(sock, 1, errno, "sandbox: set no_new_privs");
  sb_seccomp_load(o, sock);
}

void
sb_security_caps(const sw_sandbox_opts_t *o, int sock)
{
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2];

  if (capget_now(d) < 0)
    sb_fail(sock, 1, errno, "sandbox: read capabilities");
  /* Never ask for more than we hold (a kernel with fewer capabilities than SW_CAPS_ALL). A
   * non-root user has nothing permitted left after setuid(): this only empties inheritable. */
  uint64_t have = (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
  uint64_t keep = o->privileged ? have : have & o->caps;
  d[0].permitted = d[0].effective = (uint32_t)keep;
  d[1].permitted = d[1].effective = (uint32_t)(keep >> 32);
  d[0].inheritable = d[1].inheritable = 0;
  if (syscall(SYS_capset, &h, d) < 0)
    sb_fail(sock, 1, errno, "sandbox: set capabilities");
}
