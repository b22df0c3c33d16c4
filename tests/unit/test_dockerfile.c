/* Unit tests for dockerfile.c: the parser reads what BuildKit's parser reads. Each case gives
 * a Dockerfile and the `parse --dump` form BuildKit prints for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "dockerfile.h"
#include "util.h"

static sw_dockerfile_t *
parse_ok(const char *src)
{
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  if (sw_dockerfile_parse("Dockerfile", src, strlen(src), &df, &err) < 0)
    fail_msg("parse failed: %s\n--- input:\n%s", err->msg, src);
  return df;
}

static void
expect_dump(const char *src, const char *want)
{
  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df = parse_ok(src);
  _cleanup_free_ char *got = sw_dockerfile_dump(df);
  if (strcmp(got, want) != 0)
    fail_msg("--- input:\n%s--- got:\n%s--- want:\n%s", src, got, want);
}

static void
expect_error(const char *src, const char *needle)
{
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  if (sw_dockerfile_parse("Dockerfile", src, strlen(src), &df, &err) == 0) {
    sw_dockerfile_free(df);
    fail_msg("expected an error containing `%s` for:\n%s", needle, src);
  }
  assert_int_equal(err->code, SW_EXIT_USAGE);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("error `%s` lacks `%s`", err->msg, needle);
  sw_error_release(&err);
}

static void
test_forms(void **state)
{
  (void)state;
  expect_dump("FROM alpine:3 AS build\n", "(from \"alpine:3\" \"AS\" \"build\")\n");
  expect_dump("RUN echo  hi  there\n", "(run \"echo  hi  there\")\n");
  expect_dump("RUN [\"echo\", \"hi there\"]\n", "(run \"echo\" \"hi there\")\n");
  expect_dump("CMD [ \"a\" ,\"\\u00e9\\n\" ]\n", "(cmd \"a\" \"é\\n\")\n");
  expect_dump("CMD []\n", "(cmd)\n");
  /* not JSON: falls back to the shell form */
  expect_dump("CMD [\"a\", b]\n", "(cmd \"[\\\"a\\\", b]\")\n");
  expect_dump("CMD [\"a\"] x\n", "(cmd \"[\\\"a\\\"] x\")\n");
  expect_dump("COPY [\"a b\", \"/c\"]\nADD x  y\tz\n",
              "(copy \"a b\" \"/c\")\n(add \"x\" \"y\" \"z\")\n");
  expect_dump("VOLUME /a /b\nEXPOSE 80 443/udp\n",
              "(volume \"/a\" \"/b\")\n(expose \"80\" \"443/udp\")\n");
  expect_dump("USER app:app\nWORKDIR /srv/app dir\nSTOPSIGNAL SIGINT\nMAINTAINER Me <m@x>\n",
              "(user \"app:app\")\n(workdir \"/srv/app dir\")\n(stopsignal \"SIGINT\")\n"
              "(maintainer \"Me <m@x>\")\n");
  expect_dump("SHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT exec app\n",
              "(shell \"/bin/bash\" \"-c\")\n(entrypoint \"exec app\")\n");
  expect_dump("RUN\n", "(run)\n");
  expect_dump("frobnicate the thing\n", "(frobnicate \"\")\n");
  expect_dump("run lower case\n", "(run \"lower case\")\n");
}

static void
test_env_label_arg(void **state)
{
  (void)state;
  expect_dump("ENV A=1 B=\"two words\" C='x y'\n",
              "(env \"A\" \"1\" \"=\" \"B\" \"\\\"two words\\\"\" \"=\" \"C\" \"'x y'\" \"=\")\n");
  expect_dump("ENV PATH /usr/bin:$PATH\n", "(env \"PATH\" \"/usr/bin:$PATH\" \"\")\n");
  expect_dump("ENV K  value with  spaces\n", "(env \"K\" \"value with  spaces\" \"\")\n");
  expect_dump("LABEL \"com.x\"=\"1\" b=a\\ b\n",
              "(label \"\\\"com.x\\\"\" \"\\\"1\\\"\" \"=\" \"b\" \"a\\\\ b\" \"=\")\n");
  expect_dump("ARG A\nARG B=1 C=\"2 3\"\n", "(arg \"A\")\n(arg \"B=1\" \"C=\\\"2 3\\\"\")\n");
  expect_error("ENV a=b c\n", "can't find = in \"c\"");
  expect_error("ENV onlykey\n", "ENV must have two arguments");
  expect_error("LABEL onlykey\n", "LABEL must have two arguments");

  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df = parse_ok("ENV A=1 B=\"x y\"\nENV O v w\n");
  assert_int_equal(df->insns[0].n_kvs, 2);
  assert_string_equal(df->insns[0].kvs[1].key, "B");
  assert_string_equal(df->insns[0].kvs[1].value, "\"x y\"");
  assert_true(df->insns[0].kvs[1].has_equals);
  assert_int_equal(df->insns[1].n_kvs, 1);
  assert_string_equal(df->insns[1].kvs[0].value, "v w");
  assert_false(df->insns[1].kvs[0].has_equals);
}

static void
test_flags(void **state)
{
  (void)state;
  expect_dump("RUN --mount=type=cache,target=/c --network=none echo hi\n",
              "(run [\"--mount=type=cache,target=/c\" \"--network=none\"] \"echo hi\")\n");
  expect_dump("COPY --link --chown=1:1 a b\n", "(copy [\"--link\" \"--chown=1:1\"] \"a\" \"b\")\n");
  /* a bare `--` ends the flags */
  expect_dump("RUN -- --not-a-flag\n", "(run \"--not-a-flag\")\n");
  expect_dump("RUN --a=\"x y\" z\n", "(run [\"--a=x y\"] \"z\")\n");
  expect_dump("FROM --platform=$BUILDPLATFORM img\n",
              "(from [\"--platform=$BUILDPLATFORM\"] \"img\")\n");
  expect_dump("RUN -x y\n", "(run \"-x y\")\n");

  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
      parse_ok("RUN --mount=a --mount=b --network=host --flag x\n");
  const sw_insn_t *in = &df->insns[0];
  _cleanup_strv_ char **mounts = sw_insn_flag_all(in, "mount");
  _cleanup_strv_ char **none = sw_insn_flag_all(in, "exclude");
  assert_int_equal(sw_strv_len(mounts), 2);
  assert_string_equal(mounts[0], "a");
  assert_string_equal(mounts[1], "b");
  assert_null(none[0]);
  assert_string_equal(sw_insn_flag(in, "network"), "host");
  assert_string_equal(sw_insn_flag(in, "flag"), "");
  assert_null(sw_insn_flag(in, "net"));
  assert_int_equal(in->kind, SW_INSN_RUN);
}

static void
test_continuations(void **state)
{
  (void)state;
  expect_dump("RUN a \\\n  b\n", "(run \"a   b\")\n");
  expect_dump("RUN a \\\n# comment\n  # indented comment\n\n   \nb\n", "(run \"a b\")\n");
  expect_dump("RUN a\\\\\nRUN b\n", "(run \"a\\\\\\\\\")\n(run \"b\")\n");
  expect_dump("RUN a \\  \t\nb\n", "(run \"a b\")\n");
  expect_dump("RUN a \\", "(run \"a\")\n"); /* continuation at end of file */
  expect_dump("\\\nRUN x\n", "(run \"x\")\n");
  expect_dump("  RUN indented\n\t\n# c\nCMD x # not a comment\n",
              "(run \"indented\")\n(cmd \"x # not a comment\")\n");
}

static void
test_directives(void **state)
{
  (void)state;
  {
    _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
        parse_ok("# syntax=docker/dockerfile:1\n# ESCAPE = `\n# check=error=true\nFROM x\n"
                 "RUN a `\n  b\n");
    assert_string_equal(df->syntax, "docker/dockerfile:1");
    assert_string_equal(df->check, "error=true");
    assert_int_equal(df->escape, '`');
    assert_string_equal(df->insns[1].args[0], "a   b");
  }
  {
    /* a directive after a comment or instruction is only a comment */
    _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
        parse_ok("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n");
    assert_int_equal(df->escape, '\\');
    assert_null(df->syntax);
    assert_string_equal(df->insns[1].args[0], "a  b");
  }
  {
    /* an unknown directive ends the directive block */
    _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
        parse_ok("# foo=bar\n# syntax=x\nFROM x\n");
    assert_null(df->syntax);
  }
  expect_error("# escape=x\nFROM x\n", "invalid escape token 'x'");
  expect_error("# escape=\\\n# escape=`\nFROM x\n", "only one escape parser directive");
}

static void
test_heredocs(void **state)
{
  (void)state;
  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
      parse_ok("FROM x\n"
               "RUN <<EOF\necho $HOME\nEOF\n"
               "COPY <<-\"A\" 3<<B /dst/\n\tone\n\tA\ntwo\nB\n"
               "RUN [\"<<NOT\"]\n"
               "RUN echo \"<<NOT\"\n"
               "CMD <<NOT\n");
  assert_int_equal(df->n_insns, 6);
  const sw_insn_t *run = &df->insns[1];
  assert_int_equal(run->n_heredocs, 1);
  assert_string_equal(run->heredocs[0].name, "EOF");
  assert_string_equal(run->heredocs[0].content, "echo $HOME\n");
  assert_true(run->heredocs[0].expand);
  assert_false(run->heredocs[0].chomp);
  assert_string_equal(run->args[0], "<<EOF");
  assert_int_equal(run->line, 2);
  assert_int_equal(run->end_line, 4);

  const sw_insn_t *copy = &df->insns[2];
  assert_int_equal(copy->n_heredocs, 2);
  assert_string_equal(copy->heredocs[0].name, "A");
  assert_true(copy->heredocs[0].chomp);
  assert_false(copy->heredocs[0].expand);
  assert_string_equal(copy->heredocs[0].content, "\tone\n");
  _cleanup_free_ char *chomped = sw_heredoc_content(&copy->heredocs[0]);
  assert_string_equal(chomped, "one\n");
  assert_string_equal(copy->heredocs[1].name, "B");
  assert_int_equal(copy->heredocs[1].fd, 3);
  assert_string_equal(copy->heredocs[1].content, "two\n");
  assert_int_equal(df->insns[3].n_heredocs, 0);
  assert_int_equal(df->insns[4].n_heredocs, 0);
  assert_int_equal(df->insns[5].n_heredocs, 0);
  assert_int_equal(df->insns[5].line, 12);

  expect_dump("RUN <<EOF\n# not a comment\nEOF\nCMD x\n", "(run \"<<EOF\")\n(cmd \"x\")\n");
  expect_error("FROM x\nRUN <<EOF\nno end\n", "unterminated heredoc");
}

static void
test_onbuild_healthcheck(void **state)
{
  (void)state;
  expect_dump("ONBUILD RUN echo x\n", "(onbuild (run \"echo x\"))\n");
  expect_dump("ONBUILD COPY --from=a [\"b\", \"c\"]\n",
              "(onbuild (copy [\"--from=a\"] \"b\" \"c\"))\n");
  expect_dump("ONBUILD\n", "(onbuild)\n");
  expect_dump("HEALTHCHECK --interval=5s CMD curl -f x || exit 1\n",
              "(healthcheck [\"--interval=5s\"] \"CMD\" \"curl -f x || exit 1\")\n");
  expect_dump("HEALTHCHECK CMD [\"a\", \"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK\n",
              "(healthcheck \"CMD\" \"a\" \"b\")\n(healthcheck \"NONE\")\n(healthcheck)\n");

  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df = parse_ok("ONBUILD RUN <<EOF\nx\nEOF\n");
  assert_int_equal(df->insns[0].kind, SW_INSN_ONBUILD);
  assert_non_null(df->insns[0].sub);
  assert_int_equal(df->insns[0].sub->kind, SW_INSN_RUN);
  assert_int_equal(df->insns[0].n_heredocs, 1);
}

static void
test_bom_crlf_quote(void **state)
{
  (void)state;
  expect_dump("\xEF\xBB\xBF"
              "FROM x\r\nRUN a \\\r\n b\r\n",
              "(from \"x\")\n(run \"a  b\")\n");
  expect_dump("RUN printf '\\t\x01\xff'\n", "(run \"printf '\\\\t\\x01\\xff'\")\n");
  expect_dump("RUN é\n", "(run \"é\")\n");
}

static void
test_errors_and_limits(void **state)
{
  (void)state;
  expect_error("", "file with no instructions");
  expect_error("# only a comment\n\n", "file with no instructions");
  expect_error("CMD [\"a\", 1]\n", "arrays must be comprised of strings only");

  sw_buf_t big = {0};
  sw_buf_puts(&big, "FROM x\nRUN ");
  for (int i = 0; i < SW_DOCKERFILE_MAX_LINE; i++)
    sw_buf_putc(&big, 'a');
  sw_buf_putc(&big, '\n');
  expect_error(big.data, "Dockerfile:2:1: dockerfile line greater than max allowed size");
  sw_buf_free(&big);

  /* the message names file:line:column and shows the line */
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  const char *src = "FROM x\n\n   ENV a=b c\n";
  assert_int_equal(sw_dockerfile_parse("my/Dockerfile", src, strlen(src), &df, &err), -1);
  assert_non_null(strstr(err->msg, "my/Dockerfile:3:4: "));
  assert_non_null(strstr(err->msg, "3 |    ENV a=b c"));
  sw_error_release(&err);
}

static void
test_positions_and_helpers(void **state)
{
  (void)state;
  _cleanup_(sw_dockerfile_freep) sw_dockerfile_t *df =
      parse_ok("FROM x\nRUN a \\\n  b\n  COPY . /\n");
  sw_error_t err = NULL;
  assert_int_equal(df->insns[1].line, 2);
  assert_int_equal(df->insns[1].end_line, 3);
  assert_string_equal(df->insns[1].original, "RUN a   b");
  assert_int_equal(df->insns[2].col, 3);
  assert_string_equal(df->insns[2].name, "copy");
  assert_int_equal(sw_insn_kind_from_name("HealthCheck"), SW_INSN_HEALTHCHECK);
  assert_int_equal(sw_insn_kind_from_name("nope"), SW_INSN_UNKNOWN);
  assert_string_equal(sw_insn_kind_name(SW_INSN_WORKDIR), "WORKDIR");
  assert_int_equal(sw_dockerfile_error(df, 4, 3, &err, "unknown thing `%s`", "z"), -1);
  assert_string_equal(err->msg, "Dockerfile:4:3: unknown thing `z`\n     4 |   COPY . /");
  assert_int_equal(err->code, SW_EXIT_USAGE);
  sw_error_release(&err);
}

static void
test_suggest_instruction(void **state)
{
  (void)state;
  assert_string_equal(sw_insn_suggest("runn"), "RUN");
  assert_string_equal(sw_insn_suggest("COPPY"), "COPY");
  assert_string_equal(sw_insn_suggest("entrypiont"), "ENTRYPOINT");
  assert_string_equal(sw_insn_suggest("workdr"), "WORKDIR");
  assert_null(sw_insn_suggest("frobnicate"));
  assert_null(sw_insn_suggest(""));
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;
  const char text[] = "FROM x\nRunn  echo hi\nFrobnicate a\n";
  assert_int_equal(sw_dockerfile_parse("Dockerfile", text, sizeof(text) - 1, &df, &err), 0);
  char *m = sw_insn_unknown_msg(&df->insns[1]);
  assert_string_equal(m, "unknown instruction: Runn (did you mean RUN?)");
  free(m);
  m = sw_insn_unknown_msg(&df->insns[2]);
  assert_string_equal(m, "unknown instruction: Frobnicate");
  free(m);
  sw_dockerfile_free(df);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forms),
      cmocka_unit_test(test_env_label_arg),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_continuations),
      cmocka_unit_test(test_directives),
      cmocka_unit_test(test_heredocs),
      cmocka_unit_test(test_onbuild_healthcheck),
      cmocka_unit_test(test_bom_crlf_quote),
      cmocka_unit_test(test_errors_and_limits),
      cmocka_unit_test(test_positions_and_helpers),
      cmocka_unit_test(test_suggest_instruction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
