/* Unit tests for the sandbox's capability logic (sandbox-security.c): names as Docker accepts
 * them and --cap-add/--cap-drop/--privileged as moby's TweakCapabilities combines them. The
 * kernel side (bounding set, masks, seccomp) is tested end to end in tests/e2e/test_security.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sandbox.h"
#include "util.h"

#define BIT(c) ((uint64_t)1 << (c))

static void
test_names(void **state)
{
  assert_int_equal(sw_cap_from_name("CAP_NET_ADMIN"), 12);
  assert_int_equal(sw_cap_from_name("net_admin"), 12);
  assert_int_equal(sw_cap_from_name("Net_Admin"), 12);
  assert_int_equal(sw_cap_from_name("cap_chown"), 0);
  assert_int_equal(sw_cap_from_name("CHECKPOINT_RESTORE"), 40);
  assert_int_equal(sw_cap_from_name("ALL"), -1);
  assert_int_equal(sw_cap_from_name("NET"), -1);
  assert_int_equal(sw_cap_from_name("CAP_"), -1);
  assert_int_equal(sw_cap_from_name(""), -1);
  assert_string_equal(sw_cap_name(21), "CAP_SYS_ADMIN");
  assert_string_equal(sw_cap_name(0), "CAP_CHOWN");
  assert_null(sw_cap_name(SW_CAP_COUNT));
  assert_null(sw_cap_name(-1));
  for (int c = 0; c < SW_CAP_COUNT; c++)
    assert_int_equal(sw_cap_from_name(sw_cap_name(c)), c);
}

static void
test_default_set(void **state)
{
  static const char *const docker[] = {"CHOWN",   "DAC_OVERRIDE", "FSETID",           "FOWNER",
                                       "MKNOD",   "NET_RAW",      "SETGID",           "SETUID",
                                       "SETFCAP", "SETPCAP",      "NET_BIND_SERVICE", "SYS_CHROOT",
                                       "KILL",    "AUDIT_WRITE"};
  uint64_t mask = 0;
  for (size_t i = 0; i < SW_ARRAY_SIZE(docker); i++)
    mask |= BIT(sw_cap_from_name(docker[i]));
  assert_int_equal(mask, SW_CAPS_DEFAULT);
  assert_int_equal(__builtin_popcountll(SW_CAPS_DEFAULT), 14);
}

static uint64_t
tweak(char **add, char **drop, bool privileged)
{
  sw_error_t err = NULL;
  uint64_t out = 12345;
  assert_int_equal(sw_caps_tweak(add, drop, privileged, &out, &err), 0);
  assert_null(err);
  return out;
}

static void
test_tweak(void **state)
{
  assert_int_equal(tweak(NULL, NULL, false), SW_CAPS_DEFAULT);
  assert_int_equal(tweak((char *[]){"SYS_ADMIN", NULL}, NULL, false), SW_CAPS_DEFAULT | BIT(21));
  assert_int_equal(tweak(NULL, (char *[]){"cap_chown", "NET_RAW", NULL}, false),
                   SW_CAPS_DEFAULT & ~(BIT(0) | BIT(13)));
  /* drop ALL: only the adds */
  assert_int_equal(tweak((char *[]){"CHOWN", NULL}, (char *[]){"ALL", NULL}, false), BIT(0));
  assert_int_equal(tweak(NULL, (char *[]){"all", NULL}, false), 0);
  /* add ALL: everything but the drops */
  assert_int_equal(tweak((char *[]){"ALL", NULL}, (char *[]){"NET_RAW", NULL}, false),
                   SW_CAPS_ALL & ~BIT(13));
  /* privileged wins over drops */
  assert_int_equal(tweak(NULL, (char *[]){"ALL", NULL}, true), SW_CAPS_ALL);
  /* a drop of a cap also added: Docker drops from the defaults, then adds */
  assert_int_equal(tweak((char *[]){"CHOWN", NULL}, (char *[]){"CHOWN", NULL}, false),
                   SW_CAPS_DEFAULT);
}

static void
test_tweak_errors(void **state)
{
  sw_error_t err = NULL;
  uint64_t out = 7;
  assert_int_equal(sw_caps_tweak((char *[]){"CAP_BOGUS", NULL}, NULL, false, &out, &err), -1);
  assert_non_null(err);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  assert_non_null(strstr(err->msg, "--cap-add `CAP_BOGUS`"));
  assert_int_equal(out, 7);
  sw_error_release(&err);
  assert_int_equal(sw_caps_tweak(NULL, (char *[]){"", NULL}, false, &out, &err), -1);
  assert_non_null(strstr(err->msg, "--cap-drop"));
  sw_error_release(&err);
}

static void
test_opts_default_caps(void **state)
{
  sw_sandbox_opts_t o;
  memset(&o, 0x5a, sizeof(o));
  sw_sandbox_opts_init(&o);
  assert_int_equal(o.caps, SW_CAPS_DEFAULT);
  assert_false(o.privileged);
  assert_false(o.no_new_privs);
  assert_false(o.seccomp_unconfined);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_default_set),
      cmocka_unit_test(test_tweak),
      cmocka_unit_test(test_tweak_errors),
      cmocka_unit_test(test_opts_default_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
