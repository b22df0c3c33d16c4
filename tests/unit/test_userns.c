/* Unit tests for rootless's pure part (userns.c): which /etc/subuid lines belong to a user.
 * Entering the namespace is tested end to end in tests/e2e/test_rootless.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "userns.h"
#include "util.h"

static void
test_subid_parse(void **state)
{
  sw_subid_t r[4];
  const char *text = "# comment\n"
                     "alice:100000:65536\n"
                     "bob:165536:65536\n"
                     "1001:300000:10\n"
                     "alice:400000:0\n"      /* empty range: skipped */
                     "alice:x:5\n"           /* malformed */
                     "alice:1:2:3\n"         /* too many fields */
                     "alice:4294967290:10\n" /* past the last id */
                     "alice:500000:1000\n";

  assert_int_equal(sw_subid_parse(text, "alice", 1000, r, 4), 2);
  assert_int_equal(r[0].start, 100000);
  assert_int_equal(r[0].count, 65536);
  assert_int_equal(r[1].start, 500000);
  assert_int_equal(r[1].count, 1000);
  /* By uid, and by name: both lines count. */
  assert_int_equal(sw_subid_parse(text, "bob", 1001, r, 4), 2);
  assert_int_equal(r[0].start, 165536);
  assert_int_equal(r[1].start, 300000);
  assert_int_equal(sw_subid_parse(text, NULL, 1001, r, 4), 1);
  assert_int_equal(sw_subid_parse(text, "carol", 1002, r, 4), 0);
  assert_int_equal(sw_subid_parse(text, "alice", 1000, r, 1), 1);
  assert_int_equal(sw_subid_parse("", "alice", 1000, r, 4), 0);
  assert_int_equal(sw_subid_parse(NULL, "alice", 1000, r, 4), 0);
  /* A name is not a prefix match. */
  assert_int_equal(sw_subid_parse("alic:1:5\nalice2:9:5\n", "alice", 1000, r, 4), 0);
}

static void
test_subid_inside(void **state)
{
  const sw_subid_t r[] = {{100000, 65536}, {500000, 10}};

  assert_int_equal(sw_subid_inside(1000, r, 2, 1000), 0);
  assert_int_equal(sw_subid_inside(1000, r, 2, 100000), 1);
  assert_int_equal(sw_subid_inside(1000, r, 2, 100999), 1000);
  assert_int_equal(sw_subid_inside(1000, r, 2, 165535), 65536);
  /* The second range follows the first inside. */
  assert_int_equal(sw_subid_inside(1000, r, 2, 500000), 65537);
  assert_int_equal(sw_subid_inside(1000, r, 2, 500009), 65546);
  /* Unmapped: just past a range, below it, root of the host. */
  assert_int_equal(sw_subid_inside(1000, r, 2, 165536), 65534);
  assert_int_equal(sw_subid_inside(1000, r, 2, 500010), 65534);
  assert_int_equal(sw_subid_inside(1000, r, 2, 99999), 65534);
  assert_int_equal(sw_subid_inside(1000, r, 2, 0), 65534);
  assert_int_equal(sw_subid_inside(1000, r, 0, 1000), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_subid_parse),
      cmocka_unit_test(test_subid_inside),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
