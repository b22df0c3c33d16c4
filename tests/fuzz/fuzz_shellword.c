/* libFuzzer target: word expansion. Input: first byte picks options (escape char, raw quotes,
 * raw escapes, skip unset, skip quotes), then WORD, then "K=V" env entries, one a line. */
#include "shellword.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sw_shlex_t lx = {0};
  char *text, *word, *save = NULL, *out = NULL;
  char **env = NULL, **words = NULL;
  sw_error_t err = NULL;

  if (size < 1 || size > 8192)
    return 0;
  lx.escape = (data[0] & 1) ? '`' : '\\';
  lx.flags = (data[0] >> 1) & 0xF;
  lx.track = (data[0] & 0x20) != 0;
  text = xstrndup((const char *)data + 1, size - 1);
  word = strtok_r(text, "\n", &save);
  if (word == NULL)
    word = "";
  for (char *e; (e = strtok_r(NULL, "\n", &save)) != NULL;)
    sw_strv_push(&env, e);
  if (sw_shlex_expand(&lx, word, env, &out, &err) < 0)
    sw_error_release(&err);
  free(out);
  if (sw_shlex_expand_words(&lx, word, env, &words, &err) < 0)
    sw_error_release(&err);
  sw_strv_free(words);
  sw_strv_free(lx.matched);
  sw_strv_free(env);
  free(text);
  return 0;
}
