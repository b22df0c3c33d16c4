/* slipway sandbox: the default seccomp filter, Docker's rules as a deny list (libseccomp).
 *
 * What is refused (EPERM, as Docker's profile answers): syscalls no container needs or that
 * reach kernel state shared with the host (kexec, modules, keyrings, swap, acct, reboot, bpf,
 * perf, open_by_handle_at, userfaultfd, io_uring, obsolete ones), the same capability-gated
 * groups as Docker's profile (mount and the new mount API, namespaces, time, NUMA policy,
 * ptrace-like process access, raw I/O...) unless the container has the capability, clone()
 * with namespace flags and clone3() (ENOSYS, so libc falls back to clone()) without
 * CAP_SYS_ADMIN, personality() beyond the values Docker allows, and AF_VSOCK sockets.
 * Difference from Docker: its profile is an allow list, so syscalls it does not name (new
 * ones) fail there and pass here.
 *
 * Cost: the filter is compiled once per capability set in the calling process (before fork)
 * into a BPF program; pid 1 only installs it (one prctl), just before the user switch. */
#include "sandbox-private.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define CAP(name) ((uint64_t)1 << (name))

/* Refused unless the container holds one of `caps` (0: always refused). Names unknown to
 * libseccomp or to an architecture are skipped. */
static const struct {
  const char *name;
  uint64_t caps;
} denied[] = {
    /* host-wide kernel state, never namespaced */
    {"kexec_load", 0},
    {"kexec_file_load", 0},
    {"add_key", 0},
    {"keyctl", 0},
    {"request_key", 0},
    {"swapon", 0},
    {"swapoff", 0},
    {"userfaultfd", 0},
    {"io_uring_setup", 0},
    {"io_uring_enter", 0},
    {"io_uring_register", 0},
    /* obsolete */
    {"uselib", 0},
    {"ustat", 0},
    {"sysfs", 0},
    {"_sysctl", 0},
    {"nfsservctl", 0},
    {"vm86", 0},
    {"vm86old", 0},
    {"create_module", 0},
    {"get_kernel_syms", 0},
    {"query_module", 0},
    {"afs_syscall", 0},
    /* capability-gated, as Docker's profile groups them */
    {"init_module", CAP(CAP_SYS_MODULE)},
    {"finit_module", CAP(CAP_SYS_MODULE)},
    {"delete_module", CAP(CAP_SYS_MODULE)},
    {"acct", CAP(CAP_SYS_PACCT)},
    {"reboot", CAP(CAP_SYS_BOOT)},
    {"iopl", CAP(CAP_SYS_RAWIO)},
    {"ioperm", CAP(CAP_SYS_RAWIO)},
    {"settimeofday", CAP(CAP_SYS_TIME)},
    {"stime", CAP(CAP_SYS_TIME)},
    {"clock_settime", CAP(CAP_SYS_TIME)},
    {"clock_settime64", CAP(CAP_SYS_TIME)},
    {"clock_adjtime", CAP(CAP_SYS_TIME)},
    {"clock_adjtime64", CAP(CAP_SYS_TIME)},
    {"vhangup", CAP(CAP_SYS_TTY_CONFIG)},
    {"mbind", CAP(CAP_SYS_NICE)},
    {"get_mempolicy", CAP(CAP_SYS_NICE)},
    {"set_mempolicy", CAP(CAP_SYS_NICE)},
    {"set_mempolicy_home_node", CAP(CAP_SYS_NICE)},
    {"move_pages", CAP(CAP_SYS_NICE)},
    {"kcmp", CAP(CAP_SYS_PTRACE)},
    {"pidfd_getfd", CAP(CAP_SYS_PTRACE)},
    {"process_madvise", CAP(CAP_SYS_PTRACE)},
    {"open_by_handle_at", CAP(CAP_DAC_READ_SEARCH)},
    {"name_to_handle_at", CAP(CAP_SYS_ADMIN) | CAP(CAP_DAC_READ_SEARCH)},
    {"bpf", CAP(CAP_SYS_ADMIN) | CAP(CAP_BPF)},
    {"perf_event_open", CAP(CAP_SYS_ADMIN) | CAP(CAP_PERFMON)},
    {"syslog", CAP(CAP_SYS_ADMIN) | CAP(CAP_SYSLOG)},
    {"mount", CAP(CAP_SYS_ADMIN)},
    {"umount", CAP(CAP_SYS_ADMIN)},
    {"umount2", CAP(CAP_SYS_ADMIN)},
    {"pivot_root", CAP(CAP_SYS_ADMIN)},
    {"fsopen", CAP(CAP_SYS_ADMIN)},
    {"fsconfig", CAP(CAP_SYS_ADMIN)},
    {"fsmount", CAP(CAP_SYS_ADMIN)},
    {"fspick", CAP(CAP_SYS_ADMIN)},
    {"open_tree", CAP(CAP_SYS_ADMIN)},
    {"move_mount", CAP(CAP_SYS_ADMIN)},
    {"mount_setattr", CAP(CAP_SYS_ADMIN)},
    {"unshare", CAP(CAP_SYS_ADMIN)},
    {"setns", CAP(CAP_SYS_ADMIN)},
    {"sethostname", CAP(CAP_SYS_ADMIN)},
    {"setdomainname", CAP(CAP_SYS_ADMIN)},
    {"quotactl", CAP(CAP_SYS_ADMIN)},
    {"quotactl_fd", CAP(CAP_SYS_ADMIN)},
    {"lookup_dcookie", CAP(CAP_SYS_ADMIN)},
    {"fanotify_init", CAP(CAP_SYS_ADMIN)},
};

/* personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 of both, and the query.
 * "Not one of these" needs several comparisons of one argument, which libseccomp refuses in a
 * rule, so this check is a hand-written block run before libseccomp's program: it falls
 * through (to that program) for any other syscall or an allowed value. */
#define AUDIT_ARCH_X86_64_ 0xc000003eu /* <linux/audit.h> values, without its includes */
#define AUDIT_ARCH_I386_   0x40000003u
#define X32_BIT            0x40000000u
#define NR_PERSONALITY_64  135u
#define NR_PERSONALITY_32  136u
#define PERSONALITY_BLOCK  18

static size_t
personality_block(struct sock_filter *f)
{
  enum { END = PERSONALITY_BLOCK, DENY = END - 1 };
  const unsigned int nr = offsetof(struct seccomp_data, nr),
                     arch = offsetof(struct seccomp_data, arch),
                     a0 = offsetof(struct seccomp_data, args); /* little-endian: low half */
  size_t i = 0;
#define AT(pc, target) ((unsigned char)((target) - (pc)-1))
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arch);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64_, 0, AT(1, 6));
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, nr);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_PERSONALITY_64, AT(3, 9), 0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, X32_BIT | NR_PERSONALITY_64,
                                        AT(4, 9), AT(4, END));
  f[i++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, AT(5, END));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386_, 0, AT(6, END));
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, nr);
  /* i386: 32-bit arguments, only the low half counts (as libseccomp compares them) */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_PERSONALITY_32, AT(8, 11),
                                        AT(8, END));
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, a0 + 4); /* 9: high half */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, AT(10, DENY));
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, a0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0, AT(12, END), 0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8, AT(13, END), 0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000, AT(14, END), 0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008, AT(15, END), 0);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, AT(16, END), 0);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM); /* DENY */
#undef AT
  return i;
}

/* clone(2) flags that make namespaces. */
#define NS_FLAGS                                                                                   \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |       \
   CLONE_NEWCGROUP)
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static int
deny(scmp_filter_ctx ctx, const char *name, unsigned int n, const struct scmp_arg_cmp *args)
{
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    return 0;
  /* -EDOM, -EOPNOTSUPP: the syscall does not exist on one of the architectures. */
  int r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, n, args);
  return r == -EOPNOTSUPP || r == -EDOM ? 0 : r;
}

static int
add_rules(scmp_filter_ctx ctx, uint64_t caps)
{
  int r = 0;

  for (size_t i = 0; i < SW_ARRAY_SIZE(denied) && r == 0; i++)
    if ((denied[i].caps & caps) == 0)
      r = deny(ctx, denied[i].name, 0, NULL);
  if (r == 0 && !(caps & CAP(CAP_SYS_ADMIN))) {
    /* One rule per flag: libseccomp compares masked values for equality only. */
    for (int bit = 0; bit < 32 && r == 0; bit++) {
      uint64_t f = (uint64_t)1 << bit;
      if (NS_FLAGS & f) {
        struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, f, f);
        r = deny(ctx, "clone", 1, &a);
      }
    }
    int nr = seccomp_syscall_resolve_name("clone3");
    if (r == 0 && nr != __NR_SCMP_ERROR)
      r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
  }
  struct scmp_arg_cmp vsock = SCMP_A0(SCMP_CMP_EQ, AF_VSOCK);
  if (r == 0)
    r = deny(ctx, "socket", 1, &vsock);
  return r;
}

/* The filter for one capability set as a BPF program (malloc'd), via libseccomp's export. */
static struct sock_fprog *
compile(uint64_t caps, sw_error_t *err)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  struct sock_fprog *prog = NULL;
  int r = ctx ? 0 : -ENOMEM;

  /* 32-bit and x32 processes get the same rules (else they would bypass them). */
  if (r == 0 && seccomp_arch_native() == SCMP_ARCH_X86_64) {
    r = seccomp_arch_add(ctx, SCMP_ARCH_X86);
    if (r == 0)
      r = seccomp_arch_add(ctx, SCMP_ARCH_X32);
  }
  /* Docker does not set no_new_privs by default: setuid programs must keep working. */
  if (r == 0)
    r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (r == 0)
    r = add_rules(ctx, caps);
  int fd = r == 0 ? memfd_create("slipway-seccomp", MFD_CLOEXEC) : -1;
  if (r == 0 && fd < 0)
    r = -errno;
  if (r == 0)
    r = seccomp_export_bpf(ctx, fd);
  off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : 0;
  if (r == 0 && (size <= 0 || size % sizeof(struct sock_filter) != 0))
    r = -EINVAL;
  if (r == 0) {
    size_t n = (size_t)size / sizeof(struct sock_filter);
    prog = xmalloc(sizeof(*prog));
    prog->filter = xcalloc(PERSONALITY_BLOCK + n, sizeof(struct sock_filter));
    prog->len = (unsigned short)(personality_block(prog->filter) + n);
    if (pread(fd, prog->filter + PERSONALITY_BLOCK, (size_t)size, 0) != size) {
      r = -EIO;
      free(prog->filter);
      free(steal_ptr(&prog));
    }
  }
  if (fd >= 0)
    close(fd);
  if (ctx)
    seccomp_release(ctx);
  if (r < 0)
    sw_error(err, -r, "sandbox: build the seccomp filter");
  return prog;
}

/* Compiled programs by capability set: filled by the caller's threads before fork, read by
 * the forked child (its copy), so entries are published whole through `n_filters`. */
#define MAX_FILTERS 8
static struct {
  uint64_t caps;
  struct sock_fprog *prog;
} filters[MAX_FILTERS];
static _Atomic size_t n_filters;
static pthread_mutex_t filters_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sock_fprog *
lookup(uint64_t caps)
{
  size_t n = atomic_load(&n_filters);
  for (size_t i = 0; i < n; i++)
    if (filters[i].caps == caps)
      return filters[i].prog;
  return NULL;
}

int
sb_seccomp_prepare(const sw_sandbox_opts_t *o, sw_error_t *err)
{
  if (o->privileged || o->seccomp_unconfined || lookup(o->caps))
    return 0;
  pthread_mutex_lock(&filters_lock);
  int r = 0;
  if (lookup(o->caps) == NULL) {
    struct sock_fprog *prog = compile(o->caps, err);
    size_t n = atomic_load(&n_filters);
    if (prog == NULL) {
      r = -1;
    } else if (n == MAX_FILTERS) {
      free(prog->filter); /* more distinct sets than any real caller: compile in the child */
      free(prog);
    } else {
      filters[n].caps = o->caps;
      filters[n].prog = prog;
      atomic_store(&n_filters, n + 1);
    }
  }
  pthread_mutex_unlock(&filters_lock);
  return r;
}

void
sb_seccomp_load(const sw_sandbox_opts_t *o, int sock)
{
  sw_error_t err = NULL;

  if (o->privileged || o->seccomp_unconfined)
    return;
  struct sock_fprog *prog = lookup(o->caps);
  if (prog == NULL)
    prog = compile(o->caps, &err);
  if (prog == NULL)
    sb_fail(sock, 1, err->status, "%s", err->msg);
  /* Without no_new_privs this needs CAP_SYS_ADMIN: pid 1 still has it here. */
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0)
    sb_fail(sock, 1, errno, "sandbox: install the seccomp filter");
}
