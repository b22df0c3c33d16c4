/* Unit tests for the sandbox's user resolution (runc/Docker rules against /etc/passwd and
 * /etc/group text) and the status helper. The sandbox itself needs root and mounts: it is tested
 * end to end in tests/e2e/test_run.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sandbox.h"
#include "util.h"

#include <signal.h>

static const char *passwd = "# comment\n"
                            "root:x:0:0:root:/root:/bin/sh\n"
                            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                            "\n"
                            "app:x:1000:1000:App,,,:/home/app:/bin/bash\n"
                            "broken:x:notanumber:1::/:/bin/sh\n"
                            "42:x:4242:4242::/srv/fortytwo:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\r\n";

static const char *group = "root:x:0:\n"
                           "daemon:x:1:\n"
                           "staff:x:50:app,daemon\n"
                           "app:x:1000:\n"
                           "audio:x:29: app \n"
                           "video:x:44:other\n"
                           "nogroup:x:65534:\n"
                           "dup:x:50:app\n";

static void
resolve_ok(const char *spec, sw_user_t *u)
{
  sw_error_t err = NULL;
  int r = sw_user_resolve(spec, passwd, group, u, &err);
  if (r < 0)
    fail_msg("resolve `%s`: %s", spec, err->msg);
}

static void
test_root_default(void **state)
{
  sw_user_t u;
  resolve_ok(NULL, &u);
  assert_int_equal(u.uid, 0);
  assert_int_equal(u.gid, 0);
  assert_string_equal(u.home, "/root");
  assert_int_equal(u.n_groups, 0);
  sw_user_clear(&u);
  resolve_ok("", &u);
  assert_int_equal(u.uid, 0);
  sw_user_clear(&u);
}

static void
test_name_with_supplementary_groups(void **state)
{
  sw_user_t u;
  resolve_ok("app", &u);
  assert_int_equal(u.uid, 1000);
  assert_int_equal(u.gid, 1000);
  assert_string_equal(u.name, "app");
  assert_string_equal(u.home, "/home/app");
  /* staff (50, listed twice under two names: once), audio (29, with spaces) */
  assert_int_equal(u.n_groups, 2);
  assert_int_equal(u.groups[0], 50);
  assert_int_equal(u.groups[1], 29);
  sw_user_clear(&u);
}

static void
test_numeric_uid(void **state)
{
  sw_user_t u;
  /* known uid: passwd gives gid and home */
  resolve_ok("1000", &u);
  assert_int_equal(u.uid, 1000);
  assert_int_equal(u.gid, 1000);
  assert_string_equal(u.home, "/home/app");
  sw_user_clear(&u);
  /* unknown uid: taken as is, gid 0, no home */
  resolve_ok("12345", &u);
  assert_int_equal(u.uid, 12345);
  assert_int_equal(u.gid, 0);
  assert_null(u.home);
  assert_int_equal(u.n_groups, 0);
  sw_user_clear(&u);
  /* a name made of digits wins over the number */
  resolve_ok("42", &u);
  assert_int_equal(u.uid, 4242);
  assert_int_equal(u.gid, 4242);
  sw_user_clear(&u);
}

static void
test_user_and_group(void **state)
{
  sw_user_t u;
  resolve_ok("1000:44", &u);
  assert_int_equal(u.uid, 1000);
  assert_int_equal(u.gid, 44);
  /* an explicit group means no supplementary groups (runc) */
  assert_int_equal(u.n_groups, 0);
  sw_user_clear(&u);
  resolve_ok("app:staff", &u);
  assert_int_equal(u.uid, 1000);
  assert_int_equal(u.gid, 50);
  assert_int_equal(u.n_groups, 0);
  sw_user_clear(&u);
  resolve_ok("nobody:nogroup", &u);
  assert_int_equal(u.uid, 65534);
  assert_int_equal(u.gid, 65534);
  sw_user_clear(&u);
  resolve_ok("5000:6000", &u);
  assert_int_equal(u.uid, 5000);
  assert_int_equal(u.gid, 6000);
  sw_user_clear(&u);
}

static void
test_primary_not_repeated(void **state)
{
  sw_user_t u;
  const char *g = "daemon:x:1:daemon\nstaff:x:50:daemon\n";
  sw_error_t err = NULL;
  assert_int_equal(sw_user_resolve("daemon", passwd, g, &u, &err), 0);
  assert_int_equal(u.gid, 1);
  assert_int_equal(u.n_groups, 1);
  assert_int_equal(u.groups[0], 50);
  sw_user_clear(&u);
}

static void
test_errors(void **state)
{
  sw_user_t u = {0};
  sw_error_t err = NULL;

  assert_int_equal(sw_user_resolve("ghost", passwd, group, &u, &err), -1);
  assert_string_equal(err->msg, "unable to find user ghost: no matching entries in passwd file");
  sw_error_release(&err);
  assert_int_equal(sw_user_resolve("app:ghosts", passwd, group, &u, &err), -1);
  assert_string_equal(err->msg, "unable to find group ghosts: no matching entries in group file");
  sw_error_release(&err);
  /* a malformed line is skipped, not matched */
  assert_int_equal(sw_user_resolve("broken", passwd, group, &u, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_user_resolve(":50", passwd, group, &u, &err), -1);
  sw_error_release(&err);
  /* no passwd file at all: names fail, numbers work */
  assert_int_equal(sw_user_resolve("app", NULL, NULL, &u, &err), -1);
  sw_error_release(&err);
  assert_int_equal(sw_user_resolve("7:8", NULL, NULL, &u, &err), 0);
  assert_int_equal(u.uid, 7);
  assert_int_equal(u.gid, 8);
  sw_user_clear(&u);
}

static void
test_status_code(void **state)
{
  sw_sandbox_status_t st = {.exit_code = 3, .signal = 0};
  assert_int_equal(sw_sandbox_status_code(&st), 3);
  st = (sw_sandbox_status_t){.exit_code = -1, .signal = SIGKILL};
  assert_int_equal(sw_sandbox_status_code(&st), 137);
}

static void
test_opts_init(void **state)
{
  sw_sandbox_opts_t o;
  memset(&o, 0x5a, sizeof(o));
  sw_sandbox_opts_init(&o);
  assert_int_equal(o.stdin_fd, SW_STDIO_INHERIT);
  assert_int_equal(o.stdout_fd, SW_STDIO_INHERIT);
  assert_int_equal(o.stderr_fd, SW_STDIO_INHERIT);
  assert_null(o.lowerdirs);
  assert_null(o.on_output);
  assert_int_equal(o.network, SW_NET_HOST);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_root_default),
      cmocka_unit_test(test_name_with_supplementary_groups),
      cmocka_unit_test(test_numeric_uid),
      cmocka_unit_test(test_user_and_group),
      cmocka_unit_test(test_primary_not_repeated),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_status_code),
      cmocka_unit_test(test_opts_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
