/* Unit tests for the build plan: stages, dependencies, needed stages, --target, global ARGs in
 * FROM, ARG/ENV scope, --mount parsing and the errors that name a Dockerfile line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "plan.h"
#include "platform.h"

typedef struct {
  sw_dockerfile_t *df;
  sw_plan_t *plan;
  sw_error_t err;
} fx_t;

static int
plan_of(fx_t *f, const char *text, char **build_args, const char *target)
{
  memset(f, 0, sizeof(*f));
  if (sw_dockerfile_parse("Dockerfile", text, strlen(text), &f->df, &f->err) < 0)
    return -1; /* some bad input is the parser's to reject */
  sw_plan_opts_t o = {.platform = "linux/amd64", .build_args = build_args, .target = target};
  return sw_plan_new(f->df, &o, &f->plan, &f->err);
}

static void
fx_free(fx_t *f)
{
  sw_plan_free(f->plan);
  sw_dockerfile_free(f->df);
  sw_error_release(&f->err);
}

static const char *multi = "ARG BASE=alpine\n"
                           "FROM $BASE AS common\n"
                           "ENV A=1\n"
                           "FROM common AS deps\n"
                           "RUN make deps\n"
                           "FROM common AS builder\n"
                           "COPY --from=deps /out /deps\n"
                           "RUN make\n"
                           "FROM scratch AS unused\n"
                           "COPY x y\n"
                           "FROM common\n"
                           "COPY --from=builder /app /app\n"
                           "RUN --mount=type=bind,from=deps,target=/d true\n";

static void
test_stages_and_deps(void **state)
{
  fx_t f;
  assert_int_equal(plan_of(&f, multi, NULL, NULL), 0);
  sw_plan_t *p = f.plan;
  assert_int_equal(p->n_stages, 5);
  assert_string_equal(p->stages[0].base, "alpine"); /* global ARG expanded in FROM */
  assert_string_equal(p->stages[0].name, "common");
  assert_int_equal(p->stages[1].base_stage, 0);
  assert_int_equal(p->stages[2].steps[0].from_stage, 1);
  assert_true(p->stages[3].scratch);
  assert_int_equal(p->target, 4);
  assert_true(p->stages[0].needed && p->stages[1].needed && p->stages[2].needed);
  assert_false(p->stages[3].needed); /* nothing uses it */
  assert_true(p->stages[4].needed);
  assert_string_equal(p->stages[4].display, "stage-4");
  assert_int_equal(p->stages[4].steps[1].mount_stages[0], 1);
  /* "[stage i/n]": FROM image counts 1, then ADD/COPY/RUN/WORKDIR */
  assert_int_equal(p->stages[0].total, 1);
  assert_int_equal(p->stages[2].total, 2);
  int order[8];
  size_t n = sw_plan_order(p, order);
  assert_int_equal(n, 4);
  assert_int_equal(order[0], 0);
  assert_int_equal(order[3], 4);
  fx_free(&f);
}

static void
test_target_and_build_args(void **state)
{
  fx_t f;
  char *args[] = {"BASE=debian", "UNUSED=1", NULL};
  assert_int_equal(plan_of(&f, multi, args, "DEPS"), 0); /* case-insensitive */
  assert_int_equal(f.plan->target, 1);
  assert_string_equal(f.plan->stages[0].base, "debian");
  assert_false(f.plan->stages[2].needed);
  assert_false(f.plan->stages[4].needed);
  char **unused = sw_plan_unused_build_args(f.plan);
  assert_int_equal(sw_strv_len(unused), 1);
  assert_string_equal(unused[0], "UNUSED");
  sw_strv_free(unused);
  fx_free(&f);

  assert_int_equal(plan_of(&f, multi, NULL, "nosuch"), -1);
  assert_int_equal(f.err->code, SW_EXIT_USAGE);
  assert_non_null(strstr(f.err->msg, "nosuch"));
  assert_non_null(strstr(f.err->msg, "builder")); /* lists the stages */
  fx_free(&f);
}

static void
expect_error(const char *text, const char *needle, const char *line)
{
  fx_t f;
  assert_int_equal(plan_of(&f, text, NULL, NULL), -1);
  assert_non_null(f.err);
  if (strstr(f.err->msg, needle) == NULL || strstr(f.err->msg, line) == NULL)
    fail_msg("error `%s` lacks `%s` or `%s`", f.err->msg, needle, line);
  fx_free(&f);
}

static void
test_errors_name_the_line(void **state)
{
  expect_error("FROM a\nFROBNICATE x\n", "unknown instruction", "Dockerfile:2");
  expect_error("FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\n", "defined after",
               "Dockerfile:2");
  expect_error("FROM a AS one\nCOPY --from=one /x /x\n", "circular", "Dockerfile:2");
  expect_error("FROM a\nCOPY --from=5 /x /x\n", "invalid stage index", "Dockerfile:2");
  expect_error("FROM a\nCOPY --from=$X /x /x\n", "variable expansion", "Dockerfile:2");
  expect_error("FROM a\nRUN --frob=1 true\n", "unknown flag", "Dockerfile:2");
  expect_error("RUN true\nFROM a\n", "only ARG", "Dockerfile:1");
  expect_error("FROM a AS x\nFROM b AS X\n", "duplicate stage name", "Dockerfile:2");
  expect_error("FROM a AS 1x\n", "invalid name", "Dockerfile:1");
  expect_error("FROM a\nRUN --mount=type=weird,target=/x true\n", "unknown mount type",
               "Dockerfile:2");
  expect_error("ARG X=1\n", "no build stage", "Dockerfile");
}

static void
test_from_image_and_index(void **state)
{
  fx_t f;
  assert_int_equal(
      plan_of(&f, "FROM a\nRUN x\nFROM b\nCOPY --from=0 /x /x\nCOPY --from=nginx:1 /y /y\n", NULL,
              NULL),
      0);
  sw_stage_t *s = &f.plan->stages[1];
  assert_int_equal(s->steps[0].from_stage, 0);
  assert_int_equal(s->steps[1].from_stage, -1);
  assert_string_equal(s->steps[1].from_image, "nginx:1");
  assert_true(f.plan->stages[0].needed);
  assert_string_equal(s->display, "stage-1");
  fx_free(&f);

  /* a single stage has no name in progress lines */
  assert_int_equal(plan_of(&f, "FROM a\nRUN x\n", NULL, NULL), 0);
  assert_string_equal(f.plan->stages[0].display, "");
  fx_free(&f);
}

static void
test_onbuild_of_base_stage(void **state)
{
  fx_t f;
  assert_int_equal(plan_of(&f,
                           "FROM a AS base\nONBUILD RUN echo trig\nRUN own\nFROM base\nRUN mine\n",
                           NULL, NULL),
                   0);
  sw_stage_t *s = &f.plan->stages[1];
  assert_int_equal(s->n_steps, 2);
  assert_true(s->steps[0].onbuild); /* the trigger runs right after FROM */
  assert_int_equal(s->steps[0].insn->kind, SW_INSN_RUN);
  assert_false(s->steps[1].onbuild);
  fx_free(&f);
}

static void
test_scope(void **state)
{
  fx_t f;
  char *args[] = {"GIVEN=fromcli", "http_proxy=http://proxy:3128", NULL};
  assert_int_equal(plan_of(&f, "ARG GLOBAL=g\nFROM a\n", args, NULL), 0);
  sw_scope_t sc;
  sw_scope_init(&sc);
  /* a meta arg is inherited by a redeclaration without value */
  assert_string_equal(sw_scope_declare(&sc, f.plan, "GLOBAL", NULL), "g");
  /* a build arg wins over the default */
  assert_string_equal(sw_scope_declare(&sc, f.plan, "GIVEN", "default"), "fromcli");
  assert_string_equal(sw_scope_declare(&sc, f.plan, "DEF", "d"), "d");
  assert_null(sw_scope_declare(&sc, f.plan, "NOVALUE", NULL));
  /* platform args are meta args: visible once declared */
  assert_string_equal(sw_scope_declare(&sc, f.plan, "TARGETARCH", NULL), "amd64");
  assert_string_equal(sw_scope_declare(&sc, f.plan, "TARGETPLATFORM", NULL), "linux/amd64");

  char *cenv[] = {"DEF=fromenv", "PATH=/bin", NULL};
  sw_scope_env_set(&sc, "DEF"); /* ENV DEF=fromenv after ARG DEF=d */
  char **ex = sw_scope_env(&sc, cenv);
  assert_string_equal(sw_env_get(ex, "DEF"), "fromenv"); /* the later ENV wins */
  assert_string_equal(sw_env_get(ex, "GIVEN"), "fromcli");
  assert_null(sw_env_get(ex, "NOVALUE"));
  sw_strv_free(ex);

  char **run = sw_scope_run_env(&sc, f.plan, cenv);
  assert_string_equal(sw_env_get(run, "DEF"), "fromenv");
  assert_string_equal(sw_env_get(run, "GLOBAL"), "g");
  assert_string_equal(sw_env_get(run, "http_proxy"), "http://proxy:3128"); /* proxy: undeclared */
  sw_strv_free(run);
  assert_true(sw_is_proxy_arg("HTTPS_PROXY"));
  assert_false(sw_is_proxy_arg("HOME"));
  sw_scope_clear(&sc);
  fx_free(&f);
}

/* BuildKit's state env: the last ARG or ENV of a name wins; a stage FROM another stage
 * inherits its arg values, except those its config's Env sets. */
static void
test_scope_last_wins(void **state)
{
  fx_t f;
  char *args[] = {"V=fromcli", NULL};
  assert_int_equal(plan_of(&f, "FROM a\n", args, NULL), 0);
  sw_scope_t sc;
  sw_scope_init(&sc);
  char *cenv[] = {"V=fromenv", "X=envx", NULL}; /* ENV V=fromenv X=envx */
  sw_scope_env_set(&sc, "V");
  sw_scope_env_set(&sc, "X");
  assert_string_equal(sw_scope_declare(&sc, f.plan, "V", NULL), "fromcli"); /* ARG V after ENV */
  assert_string_equal(sw_scope_declare(&sc, f.plan, "Y", "y"), "y");
  char **env = sw_scope_env(&sc, cenv);
  assert_string_equal(sw_env_get(env, "V"), "fromcli");
  assert_string_equal(sw_env_get(env, "X"), "envx");
  assert_string_equal(sw_env_get(env, "Y"), "y");
  sw_strv_free(env);
  /* redeclared without a value and no build arg: the value in effect stays */
  assert_null(sw_scope_declare(&sc, f.plan, "X", NULL));
  env = sw_scope_env(&sc, cenv);
  assert_string_equal(sw_env_get(env, "X"), "envx");
  sw_strv_free(env);

  sw_scope_t child;
  sw_scope_init(&child);
  char *benv[] = {"Y=set-by-env", NULL};
  sw_scope_inherit(&child, &sc, cenv); /* V is in the base's Env: re-applied over the arg */
  env = sw_scope_env(&child, cenv);
  assert_string_equal(sw_env_get(env, "V"), "fromenv");
  assert_string_equal(sw_env_get(env, "Y"), "y");
  /* the names for RUN |N (current BuildKit), not the declarations' values */
  assert_int_equal(sw_strv_len(child.keys), sw_strv_len(sc.keys));
  assert_int_equal(sw_strv_len(child.args), 0);
  sw_strv_free(env);
  sw_scope_clear(&child);
  sw_scope_init(&child);
  sw_scope_inherit(&child, &sc, benv);
  env = sw_scope_env(&child, benv);
  assert_string_equal(sw_env_get(env, "Y"), "set-by-env");
  assert_string_equal(sw_env_get(env, "V"), "fromcli");
  sw_strv_free(env);
  sw_scope_clear(&child);
  sw_scope_clear(&sc);
  fx_free(&f);
}

/* BUILD* is the host, TARGET* the target (as BuildKit); each stage runs on its FROM
 * --platform, else its base stage's, else the target's. */
static void
test_platforms(void **state)
{
  (void)state;
  const char *text = "FROM --platform=$BUILDPLATFORM alpine AS build\n"
                     "ARG TARGETARCH\n"
                     "RUN make\n"
                     "FROM build AS more\n"
                     "FROM alpine\n"
                     "COPY --from=more /out /out\n"
                     "FROM --platform=linux/aarch64/v8 alpine AS fixed\n";
  fx_t f;
  memset(&f, 0, sizeof(f));
  assert_int_equal(sw_dockerfile_parse("Dockerfile", text, strlen(text), &f.df, &f.err), 0);
  sw_plan_opts_t o = {.platform = "linux/ARM/v7"};
  assert_int_equal(sw_plan_new(f.df, &o, &f.plan, &f.err), 0);
  sw_plan_t *p = f.plan;
  char *host = sw_platform_host();
  assert_string_equal(p->platform, "linux/arm/v7");
  assert_string_equal(p->build_platform, host);
  assert_string_equal(sw_env_get(p->global_args, "TARGETPLATFORM"), "linux/arm/v7");
  assert_string_equal(sw_env_get(p->global_args, "TARGETOS"), "linux");
  assert_string_equal(sw_env_get(p->global_args, "TARGETARCH"), "arm");
  assert_string_equal(sw_env_get(p->global_args, "TARGETVARIANT"), "v7");
  assert_string_equal(sw_env_get(p->global_args, "BUILDPLATFORM"), host);
  assert_string_equal(sw_env_get(p->global_args, "BUILDVARIANT"), "");
  assert_string_equal(p->stages[0].platform, host);
  assert_true(p->stages[0].platform_given);
  assert_string_equal(p->stages[1].platform, host); /* FROM build */
  assert_string_equal(p->stages[2].platform, "linux/arm/v7");
  assert_string_equal(p->stages[3].platform, "linux/arm64"); /* normalised */
  free(host);
  fx_free(&f);

  /* no --platform: the host's, everywhere */
  assert_int_equal(plan_of(&f, "FROM alpine\n", NULL, NULL), 0);
  assert_string_equal(f.plan->stages[0].platform, "linux/amd64");
  fx_free(&f);

  /* a bad platform names the line; a bad --platform is a usage error */
  assert_int_equal(plan_of(&f, "FROM scratch\nFROM --platform=linux alpine\n", NULL, NULL), -1);
  assert_non_null(strstr(f.err->msg, "Dockerfile:2"));
  assert_non_null(strstr(f.err->msg, "invalid platform `linux`"));
  fx_free(&f);
  memset(&f, 0, sizeof(f));
  assert_int_equal(sw_dockerfile_parse("Dockerfile", "FROM a\n", 7, &f.df, &f.err), 0);
  o.platform = "arm64";
  assert_int_equal(sw_plan_new(f.df, &o, &f.plan, &f.err), -1);
  assert_int_equal(f.err->code, 2);
  assert_non_null(strstr(f.err->msg, "--platform"));
  fx_free(&f);
}

static void
test_platform_normalize(void **state)
{
  (void)state;
  static const char *cases[][2] = {
      {"linux/amd64", "linux/amd64"},     {"Linux/X86_64", "linux/amd64"},
      {"linux/aarch64", "linux/arm64"},   {"linux/arm64/v8", "linux/arm64"},
      {"linux/arm", "linux/arm/v7"},      {"linux/armhf", "linux/arm/v7"},
      {"linux/arm/6", "linux/arm/v6"},    {"linux/i686", "linux/386"},
      {"linux/riscv64", "linux/riscv64"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *out = NULL;
    sw_error_t err = NULL;
    assert_int_equal(sw_platform_normalize(cases[i][0], &out, &err), 0);
    assert_string_equal(out, cases[i][1]);
    free(out);
  }
  static const char *bad[] = {"", "linux", "linux/", "/amd64", "linux/amd64/v1/x", "linux/a b"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *out = NULL;
    sw_error_t err = NULL;
    assert_int_equal(sw_platform_normalize(bad[i], &out, &err), -1);
    assert_int_equal(err->code, 2);
    sw_error_release(&err);
  }
  json_t *cfg = json_pack("{s:s}", "architecture", "arm64");
  char *p = sw_platform_of_config(cfg);
  assert_string_equal(p, "linux/arm64");
  free(p);
  sw_platform_set_config(cfg, "linux/arm/v7");
  assert_string_equal(json_string_value(json_object_get(cfg, "variant")), "v7");
  sw_platform_set_config(cfg, "linux/amd64");
  assert_null(json_object_get(cfg, "variant"));
  assert_true(sw_platform_native("linux/amd64") || sw_platform_native("linux/arm64"));
  json_decref(cfg);
}

static void
test_runmount_parse(void **state)
{
  sw_runmount_t m;
  sw_error_t err = NULL;
  assert_int_equal(sw_runmount_parse("type=cache,target=/root/.cache,sharing=locked", &m, &err), 0);
  assert_int_equal(m.type, SW_RUNMOUNT_CACHE);
  assert_string_equal(m.target, "/root/.cache");
  assert_string_equal(m.id, "/root/.cache"); /* id defaults to the target */
  assert_int_equal(m.sharing, 2);
  assert_false(m.readonly);
  sw_runmount_clear(&m);

  assert_int_equal(sw_runmount_parse("target=/src,from=builder,source=/out", &m, &err), 0);
  assert_int_equal(m.type, SW_RUNMOUNT_BIND); /* the default type */
  assert_true(m.readonly);                    /* binds are read-only by default */
  assert_string_equal(m.from, "builder");
  sw_runmount_clear(&m);

  assert_int_equal(sw_runmount_parse("type=bind,target=/src,rw", &m, &err), 0);
  assert_false(m.readonly);
  sw_runmount_clear(&m);

  assert_int_equal(sw_runmount_parse("type=secret,id=tok", &m, &err), 0);
  assert_string_equal(m.target, "/run/secrets/tok");
  sw_runmount_clear(&m);

  assert_int_equal(sw_runmount_parse("type=tmpfs,target=/t,size=64m", &m, &err), 0);
  assert_int_equal(m.size, 64000000);
  sw_runmount_clear(&m);

  assert_int_equal(sw_runmount_parse("type=cache", &m, &err), -1); /* no target */
  assert_int_equal(err->code, SW_EXIT_USAGE);
  sw_error_release(&err);
  assert_int_equal(sw_runmount_parse("type=cache,target=/x,bogus=1", &m, &err), -1);
  sw_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stages_and_deps),
      cmocka_unit_test(test_target_and_build_args),
      cmocka_unit_test(test_errors_name_the_line),
      cmocka_unit_test(test_from_image_and_index),
      cmocka_unit_test(test_onbuild_of_base_stage),
      cmocka_unit_test(test_scope),
      cmocka_unit_test(test_scope_last_wins),
      cmocka_unit_test(test_runmount_parse),
      cmocka_unit_test(test_platforms),
      cmocka_unit_test(test_platform_normalize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
