/* slipway: binfmt_misc handlers for foreign platforms (see binfmt.h). */
#include "binfmt.h"

#include "platform.h"
#include "userns.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define MISC_DIR "/proc/sys/fs/binfmt_misc"
#define CONF_DIR "/usr/lib/binfmt.d"
#define ELF_HDR  20 /* e_ident, e_type, e_machine */

/* An architecture's ELF header fields and qemu's name for it. */
static const struct arch {
  const char *goarch, *qemu;
  uint8_t class64, big_endian;
  uint16_t machine;
} arches[] = {
    {"amd64", "x86_64", 1, 0, 62},
    {"arm64", "aarch64", 1, 0, 183},
    {"386", "i386", 0, 0, 3},
    {"arm", "arm", 0, 0, 40},
    {"ppc64le", "ppc64le", 1, 0, 21},
    {"s390x", "s390x", 1, 1, 22},
    {"riscv64", "riscv64", 1, 0, 243},
    {"mips64le", "mips64el", 1, 0, 8},
    {"loong64", "loongarch64", 1, 0, 258},
};

static const struct arch *
arch_of(const char *platform)
{
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
  sw_platform_split(platform, &os, &arch, &variant);
  for (size_t i = 0; i < SW_ARRAY_SIZE(arches); i++)
    if (strcmp(arches[i].goarch, arch) == 0)
      return &arches[i];
  return NULL;
}

const char *
sw_binfmt_qemu_arch(const char *platform)
{
  const struct arch *a = arch_of(platform);
  return a ? a->qemu : NULL;
}

/* The first bytes of an executable of that architecture (ET_EXEC or ET_DYN). */
static void
elf_header(const struct arch *a, uint16_t type, uint8_t out[ELF_HDR])
{
  static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
  memset(out, 0, ELF_HDR);
  memcpy(out, elf_magic, sizeof(elf_magic));
  out[4] = a->class64 ? 2 : 1;
  out[5] = a->big_endian ? 2 : 1;
  out[6] = 1; /* EV_CURRENT */
  uint16_t v[2] = {type, a->machine};
  for (size_t i = 0; i < 2; i++) {
    out[16 + 2 * i] = (uint8_t)(a->big_endian ? v[i] >> 8 : v[i]);
    out[17 + 2 * i] = (uint8_t)(a->big_endian ? v[i] : v[i] >> 8);
  }
}

/* One entry of binfmt_misc as the kernel shows it. */
typedef struct {
  bool enabled;
  char interpreter[4096];
  char flags[32];
  long offset;
  uint8_t magic[128], mask[128];
  size_t n_magic, n_mask;
} entry_t;

static size_t
parse_hex(const char *s, uint8_t *out, size_t cap)
{
  size_t n = 0;
  while (n < cap && isxdigit((unsigned char)s[0]) && isxdigit((unsigned char)s[1])) {
    char byte[3] = {s[0], s[1], 0};
    out[n++] = (uint8_t)strtoul(byte, NULL, 16);
    s += 2;
  }
  return n;
}

static void
parse_entry(char *text, entry_t *e)
{
  memset(e, 0, sizeof(*e));
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strcmp(line, "enabled") == 0)
      e->enabled = true;
    else if (sw_str_has_prefix(line, "interpreter "))
      snprintf(e->interpreter, sizeof(e->interpreter), "%s", line + strlen("interpreter "));
    else if (sw_str_has_prefix(line, "flags:"))
      snprintf(e->flags, sizeof(e->flags), "%s", line + strspn(line + 6, " ") + 6);
    else if (sw_str_has_prefix(line, "offset "))
      e->offset = strtol(line + 7, NULL, 10);
    else if (sw_str_has_prefix(line, "magic "))
      e->n_magic = parse_hex(line + 6, e->magic, sizeof(e->magic));
    else if (sw_str_has_prefix(line, "mask "))
      e->n_mask = parse_hex(line + 5, e->mask, sizeof(e->mask));
  }
}

static bool
entry_matches_header(const entry_t *e, const uint8_t hdr[ELF_HDR])
{
  if (e->n_magic == 0 || e->offset < 0 || (size_t)e->offset + e->n_magic > ELF_HDR)
    return false; /* an extension entry, or one that looks past the ELF header */
  for (size_t i = 0; i < e->n_magic; i++) {
    uint8_t m = i < e->n_mask ? e->mask[i] : 0xff;
    if ((hdr[e->offset + i] & m) != (e->magic[i] & m))
      return false;
  }
  return true;
}

static bool
entry_matches(const entry_t *e, const struct arch *a)
{
  uint8_t exec_hdr[ELF_HDR], dyn_hdr[ELF_HDR];
  elf_header(a, 2, exec_hdr);
  elf_header(a, 3, dyn_hdr);
  return entry_matches_header(e, exec_hdr) && entry_matches_header(e, dyn_hdr);
}

/* What scanning misc_dir found for an architecture. */
typedef struct {
  bool mounted;         /* misc_dir/register exists */
  bool disabled_global; /* misc_dir/status says disabled */
  char usable[256];     /* an enabled entry with F */
  char no_f[256];       /* an enabled entry without F */
  char no_f_interp[4096];
  char disabled[256]; /* a matching entry, disabled */
} scan_t;

static int
scan(const char *misc_dir, const struct arch *a, scan_t *out, sw_error_t *err)
{
  memset(out, 0, sizeof(*out));
  _cleanup_free_ char *reg = xasprintf("%s/register", misc_dir);
  out->mounted = access(reg, F_OK) == 0;
  _cleanup_free_ char *status_path = xasprintf("%s/status", misc_dir);
  _cleanup_free_ char *status = NULL;
  if (sw_read_file(status_path, 64, &status, NULL, NULL) == 0 &&
      sw_str_has_prefix(status, "disabled"))
    out->disabled_global = true;
  _cleanup_dir_ DIR *d = opendir(misc_dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : sw_error(err, errno, "open `%s`", misc_dir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' || strcmp(de->d_name, "register") == 0 ||
        strcmp(de->d_name, "status") == 0)
      continue;
    _cleanup_free_ char *p = xasprintf("%s/%s", misc_dir, de->d_name);
    _cleanup_free_ char *text = NULL;
    if (sw_read_file(p, 65536, &text, NULL, NULL) < 0)
      continue; /* removed meanwhile */
    entry_t e;
    parse_entry(text, &e);
    if (!entry_matches(&e, a))
      continue;
    if (!e.enabled)
      snprintf(out->disabled, sizeof(out->disabled), "%s", de->d_name);
    else if (strchr(e.flags, 'F'))
      snprintf(out->usable, sizeof(out->usable), "%s", de->d_name);
    else {
      snprintf(out->no_f, sizeof(out->no_f), "%s", de->d_name);
      snprintf(out->no_f_interp, sizeof(out->no_f_interp), "%s", e.interpreter);
    }
  }
  return 0;
}

/* The registration line of a binfmt.d file (`:name:type:offset:magic:mask:interpreter:flags`),
 * with F added when its flags lack it. NULL when the file is missing or has none. */
static char *
conf_line(const char *conf)
{
  _cleanup_free_ char *text = NULL;
  if (sw_read_file(conf, 65536, &text, NULL, NULL) < 0)
    return NULL;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] != ':')
      continue;
    const char *flags = strrchr(line, ':') + 1;
    return strchr(flags, 'F') ? xstrdup(line) : xasprintf("%sF", line);
  }
  return NULL;
}

static int
register_entry(const char *misc_dir, const char *line, sw_error_t *err)
{
  _cleanup_free_ char *reg = xasprintf("%s/register", misc_dir);
  _cleanup_close_ int fd = open(reg, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || sw_write_all(fd, line, strlen(line)) < 0)
    return sw_error(err, errno, "register a binfmt_misc handler: write `%s`", reg);
  return 0;
}

static int
no_handler(const char *misc_dir, const char *conf, const char *platform, const struct arch *a,
           bool installed, sw_error_t *err)
{
  if (installed)
    return sw_error(err, 0,
                    "no binfmt_misc handler runs %s binaries: qemu-user-static is installed but "
                    "its handler is not registered in `%s`; as root, run `cat %s > %s/register` "
                    "(slipway does it itself when run as root)",
                    platform, misc_dir, conf, misc_dir);
  return sw_error(err, 0,
                  "no binfmt_misc handler runs %s binaries (none in `%s` matches an %s ELF "
                  "header): install Debian's emulators with `apt-get install qemu-user-static`, "
                  "then register the handler as root: `cat %s > %s/register` (slipway does it "
                  "itself when run as root)",
                  platform, misc_dir, a->qemu, conf, misc_dir);
}

int
sw_binfmt_check(const char *misc_dir, const char *conf_dir, const char *platform, bool may_register,
                sw_error_t *err)
{
  const struct arch *a = arch_of(platform);
  if (a == NULL)
    return sw_error(err, 0, "platform %s: slipway knows no emulator for this architecture",
                    platform);
  _cleanup_free_ char *conf = xasprintf("%s/qemu-%s.conf", conf_dir, a->qemu);
  scan_t s;
  if (scan(misc_dir, a, &s, err) < 0)
    return -1;
  if (s.disabled_global)
    return sw_error(err, 0,
                    "binfmt_misc is disabled (`%s/status`), so %s binaries cannot run: as root, "
                    "`echo 1 > %s/status`",
                    misc_dir, platform, misc_dir);
  if (s.usable[0])
    return 0;
  if (s.no_f[0])
    return sw_error(err, 0,
                    "the binfmt_misc handler `%s` for %s binaries was registered without the F "
                    "flag: the kernel would look for its interpreter `%s` inside the container's "
                    "root, where it is not. Register it with F (as root: `echo -1 > %s/%s; cat "
                    "%s > %s/register`; Debian's qemu-user-static has F)",
                    s.no_f, platform, s.no_f_interp, misc_dir, s.no_f, conf, misc_dir);
  if (s.disabled[0])
    return sw_error(err, 0,
                    "the binfmt_misc handler `%s` for %s binaries is disabled: as root, `echo 1 > "
                    "%s/%s`",
                    s.disabled, platform, misc_dir, s.disabled);
  if (!s.mounted)
    return sw_error(err, 0,
                    "binfmt_misc is not mounted at `%s`, so %s binaries cannot run: as root, "
                    "`mount -t binfmt_misc binfmt_misc %s`, and install qemu-user-static "
                    "(`apt-get install qemu-user-static`) if it is not",
                    misc_dir, platform, misc_dir);
  _cleanup_free_ char *line = conf_line(conf);
  if (line == NULL || !may_register)
    return no_handler(misc_dir, conf, platform, a, line != NULL, err);
  if (register_entry(misc_dir, line, err) < 0)
    return -1;
  if (scan(misc_dir, a, &s, err) < 0)
    return -1;
  if (!s.usable[0])
    return sw_error(err, 0,
                    "registered `%s` in `%s/register`, but no handler for %s binaries with the F "
                    "flag appeared there",
                    conf, misc_dir, platform);
  /* Not a warning: what was asked for is done; but the handler is the whole system's (until a
   * reboot), so say so once, when it is made. */
  fprintf(stderr,
          "slipway: registered the binfmt_misc handler of qemu-user-static for %s (`%s`), for "
          "the whole system until reboot\n",
          platform, conf);
  return 0;
}

/* Root of the initial user namespace may mount binfmt_misc and register handlers. */
static bool
may_administer(void)
{
  return geteuid() == 0 && !sw_userns_nested();
}

static pthread_mutex_t ok_lock = PTHREAD_MUTEX_INITIALIZER;
static char **ok_platforms; /* found usable in this process */

static int
ensure_locked(const char *misc, const char *conf, bool hooked, const char *platform,
              sw_error_t *err)
{
  _cleanup_free_ char *reg = xasprintf("%s/register", misc);
  if (!hooked && access(reg, F_OK) < 0 && may_administer() &&
      mount("binfmt_misc", misc, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    sw_warn("mount binfmt_misc on `%s`: %s", misc, strerror(errno));
  if (sw_binfmt_check(misc, conf, platform, may_administer(), err) < 0)
    return -1;
  sw_strv_push(&ok_platforms, platform);
  return 0;
}

int
sw_binfmt_ensure(const char *platform, sw_error_t *err)
{
  if (sw_platform_native(platform))
    return 0;
  const char *misc = getenv("SLIPWAY_BINFMT_MISC");
  const char *conf = getenv("SLIPWAY_BINFMT_CONF");
  bool hooked = misc && *misc;
  misc = hooked ? misc : MISC_DIR;
  conf = conf && *conf ? conf : CONF_DIR;
  pthread_mutex_lock(&ok_lock);
  int r = sw_strv_contains(ok_platforms, platform)
              ? 0
              : ensure_locked(misc, conf, hooked, platform, err);
  pthread_mutex_unlock(&ok_lock);
  return r;
}
