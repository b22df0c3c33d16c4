/* Unit tests for the gzip encoder's block layout (compress.c): ISA-L levels write one member of
 * blocks primed with the previous 32 KiB (checked by inflating a block on its own), the default
 * level picks ISA-L level 3 for text blocks and 2 for the others, libdeflate levels write one
 * member per block; every mix of text, binary, short and empty last blocks round-trips, the bytes
 * are the same for any thread count, and gzip(1) accepts the output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "compress.h"

#include <fcntl.h>
#include <inttypes.h>
#include <isa-l.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MIB (1u << 20)

static uint32_t rng = 1;

static uint32_t
next_rand(void)
{
  rng = rng * 1103515245u + 12345u;
  return rng >> 8;
}

/* Source-code-like text: printable words and newlines (compressible, > 70% printable). */
static void
fill_text(uint8_t *p, size_t len)
{
  static const char *const words[] = {"def ", "return ", "self",    ".value",  " = ",
                                      "(",    ")",       ":\n    ", "import ", "os",
                                      "\n",   "# why\n", "0x1f8b"};
  size_t i = 0;
  while (i < len) {
    const char *w = words[next_rand() % SW_ARRAY_SIZE(words)];
    for (; *w && i < len; w++)
      p[i++] = (uint8_t)*w;
  }
}

/* Binary-like bytes: random runs with repeats (compressible, ~40% printable). */
static void
fill_binary(uint8_t *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    p[i] = (i % 3 == 0) ? (uint8_t)next_rand() : (uint8_t)(i >> 4);
}

/* Blocks described by a string: 't' = 1 MiB of text, 'b' = 1 MiB binary, 's' = 1000 bytes of
 * text (a short last block). */
static uint8_t *
make_data(const char *layout, size_t *len)
{
  size_t n = 0;
  for (const char *c = layout; *c; c++)
    n += *c == 's' ? 1000 : MIB;
  uint8_t *d = xmalloc(n + 1), *p = d;
  for (const char *c = layout; *c; c++) {
    size_t l = *c == 's' ? 1000 : MIB;
    if (*c == 'b')
      fill_binary(p, l);
    else
      fill_text(p, l);
    p += l;
  }
  *len = n;
  return d;
}

static int
memfd(void)
{
  int fd = memfd_create("gz", MFD_CLOEXEC);
  assert_true(fd >= 0);
  return fd;
}

/* Compress data at gzip level `level` with `threads` threads into a new memfd. */
static int
compress_to_fd(int level, int threads, const uint8_t *data, size_t len, sw_sink_result_t *res)
{
  sw_compression_t comp = {.codec = &sw_codec_gzip, .level = level, .threads = threads};
  sw_error_t err = NULL;
  int fd = memfd();
  sw_sink_t *s = sw_sink_new(&comp, fd);
  /* odd write sizes, so blocks are filled across calls */
  for (size_t off = 0; off < len;) {
    size_t n = len - off < 123457 ? len - off : 123457;
    assert_int_equal(sw_sink_write(s, data + off, n, &err), 0);
    off += n;
  }
  assert_int_equal(sw_sink_finish(s, res, &err), 0);
  sw_sink_free(s);
  assert_int_equal(res->raw_size, len);
  return fd;
}

static uint8_t *
slurp(int fd, size_t *len)
{
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  uint8_t *b = xmalloc((size_t)st.st_size + 1);
  assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
  *len = (size_t)st.st_size;
  return b;
}

/* Decompress with sw_source and compare; also check the digests it computes. */
static void
assert_roundtrip(int fd, const uint8_t *data, size_t len, const sw_sink_result_t *res)
{
  sw_error_t err = NULL;
  sw_sink_result_t back;
  lseek(fd, 0, SEEK_SET);
  sw_source_t *src = sw_source_new(fd, NULL, -1);
  uint8_t *out = xmalloc(len + 1);
  size_t got = 0;
  ssize_t n;
  while ((n = sw_source_read(src, out + got, len + 1 - got, &err)) > 0)
    got += (size_t)n;
  assert_int_equal(n, 0);
  assert_int_equal(got, len);
  assert_memory_equal(out, data, len);
  assert_int_equal(sw_source_result(src, &back, &err), 0);
  assert_string_equal(back.diff_id, res->diff_id);
  assert_string_equal(back.digest, res->digest);
  sw_source_free(src);
  free(out);
}

/* gzip(1) accepts the stream (every member's CRC and size included). */
static void
assert_gzip_t(int fd)
{
  /* the memfd is close-on-exec: gzip opens it through our /proc entry */
  _cleanup_free_ char *cmd = xasprintf("gzip -t < /proc/%d/fd/%d", (int)getpid(), fd);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_int_equal(pclose(p), 0);
}

/* Number of gzip members in buf (each fully inflated and CRC-checked by ISA-L). */
static int
count_members(const uint8_t *buf, size_t len)
{
  static uint8_t out[1 << 16];
  struct inflate_state st;
  int members = 0;
  size_t off = 0;
  while (off < len) {
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    st.next_in = (uint8_t *)buf + off;
    st.avail_in = (uint32_t)(len - off);
    do {
      st.next_out = out;
      st.avail_out = sizeof(out);
      assert_true(isal_inflate(&st) >= 0);
    } while (st.block_state != ISAL_BLOCK_FINISH && st.avail_in > 0);
    assert_int_equal(st.block_state, ISAL_BLOCK_FINISH);
    off = len - st.avail_in;
    members++;
  }
  return members;
}

static void
test_layouts_roundtrip_and_members(void **state)
{
  /* ISA-L levels (1-3, the default 3 mixing levels 2 and 3 by block) write ONE member whatever
   * the blocks; libdeflate levels one member per block (an empty stream: one empty member). */
  static const struct {
    const char *layout;
    int ld_members;
  } cases[] = {
      {"bbtbb", 5}, {"tbt", 3}, {"bb", 2}, {"tt", 2}, {"bts", 3},
      {"btbs", 4},  {"bbs", 3}, {"s", 1},  {"", 1},   {"tbbtt", 5},
  };
  static const int levels[] = {0, 1, 2, 4};
  for (size_t k = 0; k < SW_ARRAY_SIZE(cases); k++) {
    size_t len, clen;
    _cleanup_free_ uint8_t *data = make_data(cases[k].layout, &len);
    for (size_t l = 0; l < SW_ARRAY_SIZE(levels); l++) {
      sw_sink_result_t res;
      _cleanup_close_ int fd = compress_to_fd(levels[l], 2, data, len, &res);
      assert_roundtrip(fd, data, len, &res);
      assert_gzip_t(fd);
      _cleanup_free_ uint8_t *c = slurp(fd, &clen);
      int want = levels[l] >= 4 ? cases[k].ld_members : 1;
      if (count_members(c, clen) != want)
        fail_msg("layout `%s` gzip:%d: %d members, want %d", cases[k].layout, levels[l],
                 count_members(c, clen), want);
    }
  }
}

/* The default level compresses text blocks at ISA-L level 3 and binary ones at level 2 (the
 * bytes of `gzip:2` exactly), deciding from each block's own bytes. */
static void
test_text_blocks_get_level_3(void **state)
{
  size_t len;
  sw_sink_result_t mixed, l2;
  _cleanup_free_ uint8_t *bin = make_data("bbs", &len);
  int fd1 = compress_to_fd(3, 2, bin, len - 1000, &mixed);
  int fd2 = compress_to_fd(2, 2, bin, len - 1000, &l2);
  assert_string_equal(mixed.digest, l2.digest);
  close(fd1);
  close(fd2);
  _cleanup_free_ uint8_t *text = make_data("tt", &len);
  fd1 = compress_to_fd(3, 2, text, len, &mixed);
  fd2 = compress_to_fd(2, 2, text, len, &l2);
  if (mixed.size >= l2.size)
    fail_msg("text: gzip:3 %" PRIu64 " bytes, gzip:2 %" PRIu64 ": not compressed at level 3",
             mixed.size, l2.size);
  close(fd1);
  close(fd2);
}

/* The same bytes whatever the thread count and write sizes: layer digests are reproducible. */
static void
test_deterministic_across_threads(void **state)
{
  size_t len;
  _cleanup_free_ uint8_t *data = make_data("btbbttbs", &len);
  static const int levels[] = {1, 2, 3, 4, 6};
  for (size_t l = 0; l < SW_ARRAY_SIZE(levels); l++) {
    int level = levels[l];
    sw_sink_result_t first = {0};
    for (int threads = 1; threads <= 4; threads++) {
      sw_sink_result_t res;
      _cleanup_close_ int fd = compress_to_fd(level, threads, data, len, &res);
      if (threads == 1) {
        first = res;
        assert_roundtrip(fd, data, len, &res);
        assert_gzip_t(fd);
      } else {
        assert_string_equal(res.digest, first.digest);
      }
      assert_string_equal(res.diff_id, first.diff_id);
    }
  }
}

/* A stream longer than the ring of blocks in flight (8 per thread + 1) and than the pool of
 * input buffers (2 per thread + 1): slots and buffers are reused many times over, in any order
 * the workers finish, and the bytes still match the single-threaded stream. */
static void
test_long_stream_reuses_ring(void **state)
{
  size_t len;
  _cleanup_free_ uint8_t *data = make_data("tbbtbbbtttbbbbtbtbtbbbbbbtttbtbbbbtbbbtbtbbbtbs", &len);
  sw_sink_result_t first = {0};
  static const int threads[] = {1, 2, 3};
  for (size_t t = 0; t < SW_ARRAY_SIZE(threads); t++) {
    sw_sink_result_t res;
    _cleanup_close_ int fd = compress_to_fd(3, threads[t], data, len, &res);
    assert_roundtrip(fd, data, len, &res);
    if (t == 0)
      first = res;
    assert_string_equal(res.digest, first.digest);
  }
}

/* Serial mode (the calling thread only) switched on and off mid-stream, in both directions,
 * gives the bytes of the plain threaded stream: a background job may turn urgent. */
static void
test_serial_switch_same_bytes(void **state)
{
  size_t len;
  _cleanup_free_ uint8_t *data = make_data("btbbttbs", &len);
  static const int levels[] = {3, 6};
  const size_t step = 300 * 1024; /* not a block multiple */
  for (size_t l = 0; l < SW_ARRAY_SIZE(levels); l++) {
    sw_sink_result_t want;
    _cleanup_close_ int ref = compress_to_fd(levels[l], 2, data, len, &want);
    for (int pattern = 0; pattern < 3; pattern++) {
      sw_error_t err = NULL;
      sw_compression_t comp = {.codec = &sw_codec_gzip, .level = levels[l], .threads = 2};
      _cleanup_close_ int fd = memfd();
      sw_sink_t *sink = sw_sink_new(&comp, fd);
      sw_sink_set_serial(sink, pattern != 1); /* 0: serial then threads; 1: the other way */
      for (size_t off = 0, k = 0; off < len; off += step, k++) {
        if (k == 4)
          sw_sink_set_serial(sink, pattern == 1);
        if (pattern == 2)
          sw_sink_set_serial(sink, k % 2 == 0); /* 2: flip at every write */
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(sw_sink_write(sink, data + off, n, &err), 0);
      }
      sw_sink_result_t res;
      assert_int_equal(sw_sink_finish(sink, &res, &err), 0);
      sw_sink_free(sink);
      assert_string_equal(res.digest, want.digest);
      assert_string_equal(res.diff_id, want.diff_id);
      assert_roundtrip(fd, data, len, &res);
    }
  }
}

/* Raw-inflate buf (no gzip wrapper) with an optional dictionary into out; the ISA-L result. */
static int
inflate_raw(const uint8_t *buf, size_t len, const uint8_t *dict, size_t dict_len, uint8_t *out,
            size_t out_len, size_t *produced)
{
  struct inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_DEFLATE;
  if (dict_len > 0)
    assert_int_equal(isal_inflate_set_dict(&st, (uint8_t *)dict, (uint32_t)dict_len), COMP_OK);
  st.next_in = (uint8_t *)buf;
  st.avail_in = (uint32_t)len;
  st.next_out = out;
  st.avail_out = (uint32_t)out_len;
  int ret = isal_inflate(&st);
  *produced = out_len - st.avail_out;
  return ret;
}

/* ISA-L blocks start on a byte boundary (after the previous block's sync flush, 00 00 ff ff) and
 * take the previous 32 KiB as their dictionary: the second block's deflate data, inflated on its
 * own, refers back before its start (fails), and inflated with the last 32 KiB of the first block
 * as dictionary gives back everything from the second block on. */
static void
test_dictionary_primed_blocks(void **state)
{
  size_t len = 3 * MIB, clen, got;
  _cleanup_free_ uint8_t *data = xmalloc(len);
  _cleanup_free_ uint8_t *out = xmalloc(len);
  uint8_t pattern[100];
  for (size_t i = 0; i < sizeof(pattern); i++)
    pattern[i] = (uint8_t)next_rand();
  for (size_t i = 0; i < len; i++)
    data[i] = pattern[i % sizeof(pattern)];
  for (int level = 1; level <= 3; level++) {
    sw_sink_result_t res;
    _cleanup_close_ int fd = compress_to_fd(level, 2, data, len, &res);
    assert_roundtrip(fd, data, len, &res);
    _cleanup_free_ uint8_t *c = slurp(fd, &clen);
    assert_int_equal(count_members(c, clen), 1);
    const uint8_t *flush = memmem(c + 10, clen - 10, "\x00\x00\xff\xff", 4);
    assert_non_null(flush);
    const uint8_t *block2 = flush + 4;
    size_t rest = (size_t)(c + clen - 8 - block2); /* without the gzip trailer */
    assert_int_not_equal(inflate_raw(block2, rest, NULL, 0, out, len, &got), ISAL_DECOMP_OK);
    assert_int_equal(inflate_raw(block2, rest, data + MIB - 32768, 32768, out, len, &got),
                     ISAL_DECOMP_OK);
    assert_int_equal(got, len - MIB);
    assert_memory_equal(out, data + MIB, len - MIB);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layouts_roundtrip_and_members),
      cmocka_unit_test(test_text_blocks_get_level_3),
      cmocka_unit_test(test_deterministic_across_threads),
      cmocka_unit_test(test_long_stream_reuses_ring),
      cmocka_unit_test(test_serial_switch_same_bytes),
      cmocka_unit_test(test_dictionary_primed_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
