/* slipway bench: compress a tar with slipway's layer codecs (the sink: compress + sha256 of both
 * sides, exactly what layer_write does after the tar), report MB/s and the output size, then
 * decompress it again (the source: what pull/load/layer_apply do) and check the diffID; then the
 * codec alone again, without the two sha256 (as a command-line compressor runs).
 * Usage: compress_bench FILE [CODEC[:LEVEL]]... [-t THREADS] [-o OUTDIR]
 * Built and driven by bench/compress-bench.sh. */
#include "compress.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/resource.h>

/* CPU seconds (user + system) of the whole process so far, all threads. */
static double
cpu_seconds(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static int
write_out(void *arg, const void *data, size_t len, sw_error_t *err)
{
  if (sw_write_all(*(int *)arg, data, len) < 0)
    return sw_error(err, errno, "write");
  return 0;
}

/* The codec alone, as the command-line compressors of issue 6's table run (no sha256 of either
 * side): input bytes / wall seconds. */
static double
codec_only(const sw_compression_t *comp, int in, int out, int threads)
{
  static char buf[1 << 20];
  sw_error_t err = NULL;
  size_t total = 0;
  ssize_t n;
  lseek(in, 0, SEEK_SET);
  if (ftruncate(out, 0) < 0 || lseek(out, 0, SEEK_SET) < 0)
    return 0;
  int level = comp->level > 0 ? comp->level : comp->codec->default_level;
  double t0 = sw_now();
  sw_codec_enc_t *e = comp->codec->enc_new(
      level, threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN), write_out, &out);
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    total += (size_t)n;
    if (comp->codec->enc_write(e, buf, (size_t)n, &err) < 0)
      break;
  }
  if (err == NULL)
    comp->codec->enc_finish(e, &err);
  comp->codec->enc_free(e);
  double t1 = sw_now();
  if (err) {
    sw_error_report(&err);
    return 0;
  }
  return total / 1e6 / (t1 - t0);
}

static int
run(const char *path, const char *spec, int threads, const char *outdir)
{
  sw_error_t err = NULL;
  sw_compression_t comp;
  sw_sink_result_t res, back;
  static char buf[1 << 20];

  if (sw_compression_parse(spec, &comp, &err) < 0)
    return sw_error_report(&err);
  comp.threads = threads;
  _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
  _cleanup_free_ char *out_path = xasprintf("%s/bench-out%s", outdir, comp.codec->file_suffix);
  _cleanup_close_ int out = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in < 0 || out < 0) {
    perror(path);
    return 1;
  }
  double t0 = sw_now(), c0 = cpu_seconds();
  sw_sink_t *s = sw_sink_new(&comp, out);
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (sw_sink_write(s, buf, (size_t)n, &err) < 0)
      return sw_error_report(&err);
  if (sw_sink_finish(s, &res, &err) < 0)
    return sw_error_report(&err);
  sw_sink_free(s);
  double t1 = sw_now(), c1 = cpu_seconds();

  lseek(out, 0, SEEK_SET);
  sw_source_t *src = sw_source_new(out, NULL, -1);
  if (sw_source_drain(src, &err) < 0 || sw_source_result(src, &back, &err) < 0)
    return sw_error_report(&err);
  sw_source_free(src);
  double t2 = sw_now();
  bool ok = strcmp(back.diff_id, res.diff_id) == 0 && strcmp(back.digest, res.digest) == 0 &&
            back.raw_size == res.raw_size;
  /* MB/s = input bytes / wall time; cpu = CPU seconds of all threads while compressing. */
  double alone = codec_only(&comp, in, out, threads);
  printf("%-8s threads=%d  in=%.1fMB out=%.2fMB  compress %.0f MB/s (%.2fs wall, %.2fs cpu)"
         "  decompress %.0f MB/s  roundtrip %s  codec-only %.0f MB/s  -> %s\n",
         spec, threads, res.raw_size / 1e6, res.size / 1e6, res.raw_size / 1e6 / (t1 - t0), t1 - t0,
         c1 - c0, res.raw_size / 1e6 / (t2 - t1), ok ? "ok" : "MISMATCH", alone, out_path);
  return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
  int threads = 0, rc = 0;
  const char *outdir = "/tmp";
  char **specs = NULL;
  const char *path = NULL;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      outdir = argv[++i];
    else if (path == NULL)
      path = argv[i];
    else
      sw_strv_push(&specs, argv[i]);
  }
  if (path == NULL) {
    fprintf(stderr, "usage: compress_bench FILE [gzip|zstd[:LEVEL]|none]... [-t N] [-o DIR]\n");
    return 2;
  }
  if (specs == NULL)
    sw_strv_push(&specs, "gzip");
  for (char **s = specs; *s; s++)
    rc |= run(path, *s, threads, outdir);
  sw_strv_free(specs);
  return rc;
}
