/* Unit tests for containers (container.c): signal names as stop/kill take them, and the
 * directory, state and lookup rules on a temp directory (no process is started). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "container.h"
#include "util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_signal_parse(void **state)
{
  (void)state;
  assert_int_equal(sw_signal_parse("SIGTERM"), SIGTERM);
  assert_int_equal(sw_signal_parse("term"), SIGTERM);
  assert_int_equal(sw_signal_parse("SigUsr1"), SIGUSR1);
  assert_int_equal(sw_signal_parse("9"), SIGKILL);
  assert_int_equal(sw_signal_parse("HUP"), SIGHUP);
  assert_int_equal(sw_signal_parse("0"), -1);
  assert_int_equal(sw_signal_parse("65"), -1);
  assert_int_equal(sw_signal_parse("9x"), -1);
  assert_int_equal(sw_signal_parse("SIG"), -1);
  assert_int_equal(sw_signal_parse("NOPE"), -1);
  assert_int_equal(sw_signal_parse(""), -1);
  assert_int_equal(sw_signal_parse(NULL), -1);
}

static void
test_create_state_lookup(void **state)
{
  (void)state;
  char tmpl[] = "/tmp/sw-ctr-unit-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  sw_error_t err = NULL;
  sw_container_t *c = NULL, *d = NULL, *o = NULL;
  json_t *cfg = json_object();

  assert_int_equal(sw_container_create(tmpl, "web", cfg, &c, &err), 0);
  assert_int_equal(strlen(c->id), 64);
  assert_true(sw_container_owned(c));
  sw_container_state_t st;
  sw_container_state_read(c, &st);
  assert_string_equal(st.status, "created");
  sw_container_state_clear(&st);

  /* the name is taken: a usage error that says how to free it */
  assert_int_equal(sw_container_create(tmpl, "web", cfg, &d, &err), -1);
  assert_int_equal(err->code, SW_EXIT_USAGE);
  assert_non_null(strstr(err->msg, "slipway rm web"));
  sw_error_release(&err);
  assert_int_equal(sw_container_create(tmpl, "../x", cfg, &d, &err), -1);
  sw_error_release(&err);

  /* found by name and by id prefix; a reader does not own it */
  assert_int_equal(sw_container_open(tmpl, "web", &o, &err), 0);
  assert_false(o->lock_fd >= 0);
  sw_container_free(o);
  char prefix[7];
  snprintf(prefix, sizeof(prefix), "%s", c->id);
  assert_int_equal(sw_container_open(tmpl, prefix, &o, &err), 0);
  assert_string_equal(o->name, "web");
  sw_container_started(c, 12345);
  sw_container_state_read(o, &st);
  assert_string_equal(st.status, "running");
  assert_int_equal(st.pid, 12345);
  sw_container_state_clear(&st);

  /* the owner goes without recording the end: dead, and removable without -f */
  sw_container_free(c);
  sw_container_state_read(o, &st);
  assert_string_equal(st.status, "dead");
  sw_container_state_clear(&st);
  int64_t bytes = -1;
  assert_int_equal(sw_container_remove(o, false, &bytes, &err), 0);
  assert_true(bytes >= 0);
  sw_container_free(o);
  assert_int_equal(sw_container_open(tmpl, "web", &o, &err), -1);
  assert_non_null(strstr(err->msg, "no such container"));
  sw_error_release(&err);
  /* what a killed create leaves (a dot dir, its lock free) is swept by prune */
  char *dot = xasprintf("%s/.new-killed", tmpl);
  assert_int_equal(mkdir(dot, 0700), 0);
  char **ids = NULL;
  assert_int_equal(sw_container_prune(tmpl, false, &ids, &bytes), 0);
  assert_null(ids);
  assert_int_equal(access(dot, F_OK), -1);
  free(dot);
  json_decref(cfg);
  assert_int_equal(rmdir(tmpl), 0); /* nothing else left: no dot dir of the creates */
}

int
main(void)
{
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_signal_parse),
                                     cmocka_unit_test(test_create_state_lookup)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
