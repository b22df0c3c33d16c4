/* Unit tests for the build checks: a rule fires on the line it names, UndefinedVar follows
 * ARG/ENV scope and a parent stage and stays quiet on an unknown base, the check directive
 * skips rules and sets error=true, warnings come in line order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lint.h"

#include <string.h>

static sw_dockerfile_t *
parse(const char *text)
{
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  assert_int_equal(sw_dockerfile_parse("Dockerfile", text, strlen(text), &df, &err), 0);
  return df;
}

static int
count(const sw_lint_t *l, const char *rule, int line)
{
  int n = 0;
  for (size_t i = 0; i < l->n; i++)
    n += strcmp(l->v[i].rule, rule) == 0 && (line == 0 || l->v[i].line == line);
  return n;
}

static char **
env_of(void *ud, const char *ref)
{
  (void)ud;
  if (strcmp(ref, "known:1") != 0)
    return NULL;
  char **v = calloc(2, sizeof(char *));
  v[0] = strdup("PATH=/bin");
  return v;
}

static void
test_undefined_var_scope(void **state)
{
  (void)state;
  sw_dockerfile_t *df = parse("FROM scratch AS a\n"
                              "ARG A\n"
                              "ENV B=$A C=$B D=$NOPE1\n"
                              "FROM a\n"
                              "COPY $A$B $C /x/\n"
                              "FROM known:1\n"
                              "WORKDIR $PATH/$NOPE2/${NOPE3:-x}\n"
                              "FROM unknown:1\n"
                              "WORKDIR /$ANYTHING\n"
                              "RUN echo $NOT_CHECKED_IN_RUN\n");
  sw_lint_opts_t o = {.image_env = env_of};
  sw_lint_t l;
  sw_lint_run(df, &o, &l);
  assert_int_equal(count(&l, "UndefinedVar", 0), 2);
  assert_int_equal(count(&l, "UndefinedVar", 3), 1);
  assert_int_equal(count(&l, "UndefinedVar", 7), 1);
  for (size_t i = 1; i < l.n; i++)
    assert_true(l.v[i - 1].line <= l.v[i].line);
  sw_lint_clear(&l);
  sw_dockerfile_free(df);
}

static void
test_directive(void **state)
{
  (void)state;
  sw_dockerfile_t *df = parse("# check=skip=StageNameCasing;error=true\n"
                              "FROM scratch AS Big\nMAINTAINER x\n");
  sw_lint_t l;
  sw_lint_run(df, NULL, &l);
  assert_true(l.error);
  assert_null(l.invalid);
  assert_int_equal(count(&l, "StageNameCasing", 0), 0);
  assert_int_equal(count(&l, "MaintainerDeprecated", 3), 1);
  sw_lint_clear(&l);
  sw_dockerfile_free(df);
  df = parse("# check=skip=Nope;bogus=1\nFROM scratch\n");
  sw_lint_run(df, NULL, &l);
  assert_non_null(l.invalid);
  assert_false(l.error);
  sw_lint_clear(&l);
  sw_dockerfile_free(df);
}

static void
test_casing_majority(void **state)
{
  (void)state;
  sw_dockerfile_t *df = parse("from scratch\nlabel a=1\nLABEL b=2\nLaBeL c=3\n");
  sw_lint_t l;
  sw_lint_run(df, NULL, &l);
  assert_int_equal(count(&l, "ConsistentInstructionCasing", 3), 1);
  assert_int_equal(count(&l, "ConsistentInstructionCasing", 4), 1);
  assert_int_equal(count(&l, "ConsistentInstructionCasing", 0), 2);
  sw_lint_clear(&l);
  sw_dockerfile_free(df);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_undefined_var_scope),
      cmocka_unit_test(test_directive),
      cmocka_unit_test(test_casing_majority),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
