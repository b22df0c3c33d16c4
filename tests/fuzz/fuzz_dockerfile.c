/* libFuzzer target: the Dockerfile parser on arbitrary bytes, then everything a consumer does
 * with the AST (dump, flag lookup, heredoc bodies, error formatting). */
#include "dockerfile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sw_dockerfile_t *df = NULL;
  sw_error_t err = NULL;

  if (sw_dockerfile_parse("fuzz", (const char *)data, size, &df, &err) < 0) {
    sw_error_release(&err);
    return 0;
  }
  free(sw_dockerfile_dump(df));
  for (size_t i = 0; i < df->n_insns; i++) {
    const sw_insn_t *in = &df->insns[i];
    sw_strv_free(sw_insn_flag_all(in, "mount"));
    (void)sw_insn_flag(in, "from");
    for (size_t h = 0; h < in->n_heredocs; h++)
      free(sw_heredoc_content(&in->heredocs[h]));
    sw_dockerfile_error(df, in->line, in->col, &err, "check %s", in->name);
    sw_error_release(&err);
  }
  sw_dockerfile_free(df);
  return 0;
}
