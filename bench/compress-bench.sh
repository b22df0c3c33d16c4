#!/usr/bin/env bash
# Compress a tar with slipway's layer codecs (the same sink layer_write and import use: compress
# + sha256 of both sides in one pass) and print, per setting, MB/s (input bytes / wall time), the
# CPU seconds of the compression, and the size against `gzip -6`.
# Usage: bench/compress-bench.sh [TAR] [RUNS] [SPEC...]   (default: the base image tar, 5 runs)
# Other builds on the machine change the wall-clock figures: the script prints the load average,
# the best and the median of RUNS runs (interleaved: setting A B C, A B C...), and the median CPU
# seconds, whose "2-core" column (input / (CPU / 2)) is what the same work gets with both cores
# free. "codec alone": the same codec without the sink's two sha256 passes (diffID and digest),
# as the command-line compressors in issue 6's table were timed.
set -euo pipefail
cd "$(dirname "$0")/.."
tar=${1:-$(./scripts/base-image.sh)}
runs=${2:-5}
shift $(($# < 2 ? $# : 2))
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(gzip:1 gzip:2 gzip:3 gzip:4 gzip:6 zstd:3)
out=$(mktemp -d /tmp/sw-compress-bench-XXXXXX)
trap 'rm -rf "$out"' EXIT
make -s build/libslipway.a
cc -O2 -D_GNU_SOURCE -Isrc/lib -o "$out/compress_bench" bench/compress_bench.c build/libslipway.a \
	$(pkg-config --libs libarchive libzstd libcrypto libdeflate) -lisal -lpthread
cat "$tar" >/dev/null # page cache: measure the codecs, not the disk
mb=$(($(stat -c %s "$tar") / 1000000))
ref=$(gzip -6 -c "$tar" | wc -c)
echo "input: $tar (${mb} MB), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gzip -6: $ref bytes; $runs runs per setting, interleaved"
for _ in $(seq "$runs"); do
	for spec in "${specs[@]}"; do
		# "gzip:3 threads=0 in=275.5MB out=98.35MB compress 221 MB/s (1.25s wall, 1.37s cpu) ..."
		"$out/compress_bench" "$tar" "$spec" -o "$out" |
			sed -E 's/^([^ ]+).* in=([0-9.]+)MB out=([0-9.]+)MB +compress ([0-9]+) MB\/s \(([0-9.]+)s wall, ([0-9.]+)s cpu\).*roundtrip ([a-zA-Z]+) +codec-only ([0-9]+) MB\/s.*/\1 \2 \3 \4 \6 \7 \8/'
	done
done >"$out/raw"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| setting | MB/s wall, best | MB/s wall, median | CPU s, median | MB/s 2-core (from CPU) | codec alone MB/s, best / median | output MB | vs gzip -6 |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for spec in "${specs[@]}"; do
	awk -v s="$spec" -v ref="$ref" '
		$1 == s { n++; mbs[n] = $4; cpu[n] = $5; in_mb = $2; out_mb = $3; if ($6 != "ok") bad = 1; alone[n] = $7 }
		function median(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END {
			best = 0; for (i = 1; i <= n; i++) if (mbs[i] > best) best = mbs[i]
			abest = 0; for (i = 1; i <= n; i++) if (alone[i] > abest) abest = alone[i]
			c = median(cpu, n)
			printf "| `%s` | %d | %d | %.2f | %d | %d / %d | %.2f | %+.1f%%%s |\n", s, best, median(mbs, n), c,
				in_mb / (c / 2), abest, median(alone, n), out_mb, (out_mb * 1e6 / ref - 1) * 100,
				bad ? " ROUNDTRIP MISMATCH" : ""
		}' "$out/raw"
done
