/* slipway: the Dockerfile lexer/parser. It reads a Dockerfile exactly as BuildKit's parser does
 * (frontend/dockerfile/parser): parser directives at the top (`syntax`, `escape`, `check`),
 * comments, line continuations (comment and blank lines inside one are skipped), heredocs for
 * RUN/COPY/ADD, JSON (exec) and shell forms, `--flags` on every instruction (a bare `--` ends
 * them), a UTF-8 BOM, CRLF line ends and the 64 KiB line limit.
 *
 * The parser does not expand variables and does not judge instructions: an unknown keyword is
 * kept (kind SW_INSN_UNKNOWN) so that the build can reject it with its line, as BuildKit does.
 * Word expansion lives in shellword.h; ARG/ENV scoping in the planner.
 *
 * Parse errors have code SW_EXIT_USAGE and a message of the form
 *   FILE:LINE:COL: what is wrong
 *      LINE | the offending source line
 */
#ifndef SW_DOCKERFILE_H
#define SW_DOCKERFILE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* BuildKit's bufio.Scanner limit: a line (with its newline) longer than this is an error. */
#define SW_DOCKERFILE_MAX_LINE (64 * 1024)

typedef enum {
  SW_INSN_UNKNOWN = 0, /* kept with its name; the build rejects it */
  SW_INSN_ADD,
  SW_INSN_ARG,
  SW_INSN_CMD,
  SW_INSN_COPY,
  SW_INSN_ENTRYPOINT,
  SW_INSN_ENV,
  SW_INSN_EXPOSE,
  SW_INSN_FROM,
  SW_INSN_HEALTHCHECK,
  SW_INSN_LABEL,
  SW_INSN_MAINTAINER,
  SW_INSN_ONBUILD,
  SW_INSN_RUN,
  SW_INSN_SHELL,
  SW_INSN_STOPSIGNAL,
  SW_INSN_USER,
  SW_INSN_VOLUME,
  SW_INSN_WORKDIR,
} sw_insn_kind_t;

/* One here-document attached to a RUN/COPY/ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`). */
typedef struct {
  char *name;    /* the delimiter word, quotes removed ("EOF") */
  unsigned fd;   /* the leading file descriptor digits (`3<<EOF` -> 3), 0 when absent */
  bool chomp;    /* `<<-`: leading tabs are stripped from every line (see sw_heredoc_content) */
  bool expand;   /* unquoted delimiter: variables in the body are expanded */
  char *content; /* the body exactly as written: every line with its "\n" (or "\r\n") */
} sw_heredoc_t;

/* ENV / LABEL: one pair. `ENV k v` is the old form (one pair, has_equals false, value is the
 * rest of the line); `ENV k=v k2="v 2"` gives one pair each. The value keeps its quotes and
 * escapes as written: expand it with sw_shlex_expand() to get the final value. */
typedef struct {
  char *key;
  char *value;
  bool has_equals;
} sw_kv_t;

typedef struct sw_insn_s sw_insn_t;
struct sw_insn_s {
  sw_insn_kind_t kind;
  char *name;     /* lower-cased keyword as written: "run", "copy", "frobnicate" */
  int line;       /* 1-based line of the keyword */
  int col;        /* 1-based column of the keyword */
  int end_line;   /* last line, heredoc bodies included */
  char *original; /* the instruction text, continuation lines joined (BuildKit's Original):
                     for history "created_by" and for messages */
  char **flags;   /* raw flags as written, "--name=value" or "--name"; never NULL */
  /* The arguments, exactly the list BuildKit's parser builds (and `parse --dump` prints):
   *   RUN CMD ENTRYPOINT SHELL  json: the elements; shell form: one string, the rest of the line
   *   ADD COPY VOLUME           json: the elements; else whitespace-separated words
   *   FROM EXPOSE               whitespace-separated words ("image" "AS" "name")
   *   ARG                       words, quotes kept ("NAME=default")
   *   ENV LABEL                 triples key, value, "=" (or "" for the old form); see kvs
   *   MAINTAINER USER WORKDIR STOPSIGNAL   one string
   *   HEALTHCHECK               args[0] the type as written ("CMD"/"NONE"), then the command
   *                             (json elements or one shell string); json refers to the command
   *   ONBUILD                   none: see sub
   *   unknown                   one empty string
   * An instruction without arguments has none (args[0] == NULL). Never NULL itself. */
  char **args;
  size_t n_args;
  bool json; /* exec (JSON array) form */
  sw_heredoc_t *heredocs;
  size_t n_heredocs;
  sw_kv_t *kvs; /* ENV, LABEL */
  size_t n_kvs;
  sw_insn_t *sub; /* ONBUILD: the nested instruction (NULL for a bare ONBUILD) */
};

typedef struct {
  char *path;   /* the name used in messages */
  char *syntax; /* `# syntax=` value, or NULL */
  char *check;  /* `# check=` value, or NULL */
  char escape;  /* '\\' or '`' */
  sw_insn_t *insns;
  size_t n_insns;
  char **lines; /* the source split into lines (no line ends), for messages; never NULL */
  size_t n_lines;
} sw_dockerfile_t;

/* Parse DATA (LEN bytes, need not be NUL-terminated). PATH only names the file in messages. */
int sw_dockerfile_parse(const char *path, const char *data, size_t len, sw_dockerfile_t **out,
                        sw_error_t *err);
/* Read and parse a file. */
int sw_dockerfile_load(const char *path, sw_dockerfile_t **out, sw_error_t *err);
void sw_dockerfile_free(sw_dockerfile_t *df);
static inline void
sw_dockerfile_freep(sw_dockerfile_t **df)
{
  sw_dockerfile_free(*df);
}

/* BuildKit's parser-test form: one `(keyword ["--flag"] "arg" ...)` line per instruction,
 * strings quoted as Go's strconv.Quote does. Returns a malloc'd string. */
char *sw_dockerfile_dump(const sw_dockerfile_t *df);
/* One instruction in that form, without the surrounding parentheses' newline. */
char *sw_insn_dump(const sw_insn_t *insn);

/* "run" -> SW_INSN_RUN (case-insensitive); unknown -> SW_INSN_UNKNOWN. */
sw_insn_kind_t sw_insn_kind_from_name(const char *name);
/* SW_INSN_RUN -> "RUN" (upper case, as in messages); SW_INSN_UNKNOWN -> "UNKNOWN". */
const char *sw_insn_kind_name(sw_insn_kind_t kind);
/* The instruction keyword nearest to NAME (at most 2 edits away, as BuildKit suggests), or NULL:
 * "RUNN" -> "RUN". */
const char *sw_insn_suggest(const char *name);
/* "unknown instruction: RUNN (did you mean RUN?)" for an instruction of kind UNKNOWN (freed by
 * the caller). */
char *sw_insn_unknown_msg(const sw_insn_t *insn);

/* Flags. NAME is without dashes ("mount"). A flag written `--name=value` has value "value",
 * `--name` alone has value "" (a boolean such as --link).
 * sw_insn_flag: the last value of --NAME, or NULL when absent.
 * sw_insn_flag_all: every value of a repeatable flag (--mount, --exclude) in order; a
 *   NULL-terminated vector owned by the caller (sw_strv_free), never NULL. */
const char *sw_insn_flag(const sw_insn_t *insn, const char *name);
char **sw_insn_flag_all(const sw_insn_t *insn, const char *name);

/* The heredoc body as the build uses it: with leading tabs removed from every line when chomp
 * is set. Returns a malloc'd string. */
char *sw_heredoc_content(const sw_heredoc_t *h);

/* Build an error about a place in the file, in the parser's format:
 *   "FILE:LINE:COL: MESSAGE\n     LINE | source text"
 * (col 0 means "no column": FILE:LINE:). Sets code SW_EXIT_USAGE, returns -1. For the engine's
 * errors about an instruction (unknown instruction, bad flag, bad substitution …). */
int sw_dockerfile_error(const sw_dockerfile_t *df, int line, int col, sw_error_t *err,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
