/* Unit tests for the binfmt_misc check (binfmt.c) on fake binfmt_misc and binfmt.d directories:
 * an entry matches by ELF header whatever its name, F is required, what is missing is named with
 * the package and the command, and a registration writes Debian's line (F added if absent). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "binfmt.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The kernel's view of Debian's qemu-aarch64 entry (its /usr/lib/binfmt.d line, registered). */
static const char aarch64_entry[] = "%s\n"
                                    "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n"
                                    "flags: %s\n"
                                    "offset 0\n"
                                    "magic 7f454c460201010000000000000000000200b700\n"
                                    "mask ffffffffffffff00fffffffffffffffffeffffff\n";
static const char arm_entry[] = "enabled\n"
                                "interpreter /usr/bin/qemu-arm-static\n"
                                "flags: OCF\n"
                                "offset 0\n"
                                "magic 7f454c4601010100000000000000000002002800\n"
                                "mask ffffffffffffff00fffffffffffffffffeffffff\n";
static const char conf_line[] =
    ":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
    "\\x00\\x02\\x00\\xb7\\x00:"
    "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff"
    "\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OP";

typedef struct {
  char root[64];
  char misc[96], conf[96];
} fx_t;

static void
put(const char *dir, const char *name, const char *text)
{
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int
setup(void **state)
{
  fx_t *f = calloc(1, sizeof(*f));
  snprintf(f->root, sizeof(f->root), "/tmp/sw-binfmt-test-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  snprintf(f->misc, sizeof(f->misc), "%s/misc", f->root);
  snprintf(f->conf, sizeof(f->conf), "%s/conf", f->root);
  sw_error_t err = NULL;
  assert_int_equal(sw_mkdir_p(f->misc, 0755, &err), 0);
  assert_int_equal(sw_mkdir_p(f->conf, 0755, &err), 0);
  put(f->misc, "register", "");
  put(f->misc, "status", "enabled\n");
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  fx_t *f = *state;
  sw_error_t err = NULL;
  sw_rm_rf(f->root, &err);
  free(f);
  return 0;
}

/* The check's error message (NULL when it passed). */
static char *
check(fx_t *f, const char *platform, bool may_register)
{
  sw_error_t err = NULL;
  if (sw_binfmt_check(f->misc, f->conf, platform, may_register, &err) == 0)
    return NULL;
  char *msg = xstrdup(err->msg);
  sw_error_release(&err);
  return msg;
}

static void
entry(fx_t *f, const char *name, const char *state, const char *flags)
{
  char text[1024];
  snprintf(text, sizeof(text), aarch64_entry, state, flags);
  put(f->misc, name, text);
}

static void
test_usable_entry_any_name(void **state)
{
  fx_t *f = *state;
  entry(f, "aarch64-from-elsewhere", "enabled", "POF");
  put(f->misc, "qemu-arm", arm_entry);
  assert_null(check(f, "linux/arm64", false));
  assert_null(check(f, "linux/arm/v7", false));
  assert_string_equal(sw_binfmt_qemu_arch("linux/arm64"), "aarch64");
  assert_string_equal(sw_binfmt_qemu_arch("linux/ppc64le"), "ppc64le");
  assert_null(sw_binfmt_qemu_arch("linux/sparc"));
}

static void
test_missing_names_package_and_command(void **state)
{
  fx_t *f = *state;
  put(f->misc, "qemu-arm", arm_entry); /* another architecture's handler does not count */
  char *msg = check(f, "linux/arm64", true);
  assert_non_null(msg);
  assert_non_null(strstr(msg, "no binfmt_misc handler runs linux/arm64 binaries"));
  assert_non_null(strstr(msg, "apt-get install qemu-user-static"));
  assert_non_null(strstr(msg, "qemu-aarch64.conf > "));
  assert_non_null(strstr(msg, "/register"));
  free(msg);

  /* the package is there but this user may not register it */
  put(f->conf, "qemu-aarch64.conf", conf_line);
  msg = check(f, "linux/arm64", false);
  assert_non_null(strstr(msg, "qemu-user-static is installed but its handler is not registered"));
  free(msg);

  msg = check(f, "linux/sparc", false);
  assert_non_null(strstr(msg, "knows no emulator"));
  free(msg);
}

static void
test_without_f_flag(void **state)
{
  fx_t *f = *state;
  entry(f, "qemu-aarch64", "enabled", "OC");
  char *msg = check(f, "linux/arm64", true);
  assert_non_null(msg);
  assert_non_null(strstr(msg, "without the F flag"));
  assert_non_null(strstr(msg, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"));
  assert_non_null(strstr(msg, "echo -1 > "));
  free(msg);
}

static void
test_disabled(void **state)
{
  fx_t *f = *state;
  entry(f, "qemu-aarch64", "disabled", "OCF");
  char *msg = check(f, "linux/arm64", false);
  assert_non_null(strstr(msg, "is disabled"));
  assert_non_null(strstr(msg, "qemu-aarch64`"));
  free(msg);
  entry(f, "qemu-aarch64", "enabled", "OCF");
  put(f->misc, "status", "disabled\n");
  msg = check(f, "linux/arm64", false);
  assert_non_null(strstr(msg, "binfmt_misc is disabled"));
  free(msg);
}

static void
test_not_mounted(void **state)
{
  fx_t *f = *state;
  char reg[160];
  snprintf(reg, sizeof(reg), "%s/register", f->misc);
  unlink(reg);
  char *msg = check(f, "linux/arm64", true);
  assert_non_null(strstr(msg, "binfmt_misc is not mounted"));
  assert_non_null(strstr(msg, "mount -t binfmt_misc"));
  free(msg);
}

/* A registration writes the binfmt.d line with F added; the fake directory shows no entry after
 * it (no kernel behind it), which is reported too. */
static void
test_register_writes_conf_line(void **state)
{
  fx_t *f = *state;
  put(f->conf, "qemu-aarch64.conf", "# a comment\n");
  char path[160];
  snprintf(path, sizeof(path), "%s/qemu-aarch64.conf", f->conf);
  FILE *cf = fopen(path, "a");
  assert_non_null(cf);
  fputs(conf_line, cf);
  fputs("\n", cf);
  fclose(cf);
  char *msg = check(f, "linux/arm64", true);
  assert_non_null(strstr(msg, "no handler for linux/arm64 binaries with the F flag appeared"));
  free(msg);
  snprintf(path, sizeof(path), "%s/register", f->misc);
  char *written = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_read_file(path, 0, &written, NULL, &err), 0);
  char *want = xasprintf("%sF", conf_line);
  assert_string_equal(written, want);
  free(want);
  free(written);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_usable_entry_any_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_names_package_and_command, setup, teardown),
      cmocka_unit_test_setup_teardown(test_without_f_flag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_mounted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_writes_conf_line, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
