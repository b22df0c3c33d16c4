#!/usr/bin/env bash
# Compress the base image tar with slipway's layer codecs (the same sink layer_write uses:
# compress + sha256 of both sides in one pass) and with command-line references, printing MB/s
# and the size against `gzip -6`. Usage: bench/compress-bench.sh [TAR] [RUNS]
# Wall-clock MB/s depend on what else runs on the machine: the script prints the load average
# and the CPU seconds too, and keeps the best of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
tar=${1:-$(./scripts/base-image.sh)}
runs=${2:-3}
out=$(mktemp -d /tmp/sw-compress-bench-XXXXXX)
trap 'rm -rf "$out"' EXIT
make -s build/libslipway.a
cc -O2 -D_GNU_SOURCE -Isrc/lib -o "$out/compress_bench" bench/compress_bench.c build/libslipway.a \
	$(pkg-config --libs libarchive libzstd libcrypto libdeflate) -lisal -lpthread
cat "$tar" >/dev/null # page cache: measure the codecs, not the disk
mb=$(($(stat -c %s "$tar") / 1000000))
echo "input: $tar (${mb} MB), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ref=$(gzip -6 -c "$tar" | wc -c)
echo "reference gzip -6: $((ref / 1000)) kB"
for spec in gzip:1 gzip:2 gzip:3 gzip:4 zstd:3 none; do
	best=
	for _ in $(seq "$runs"); do
		line=$(/usr/bin/time -f 'cpu %U+%S s' "$out/compress_bench" "$tar" "$spec" -o "$out" 2>&1 | tr '\n' ' ')
		mbs=$(sed -E 's/.*compress ([0-9]+) MB\/s.*/\1/' <<<"$line")
		if [ -z "$best" ] || [ "$mbs" -gt "$(sed -E 's/.*compress ([0-9]+) MB\/s.*/\1/' <<<"$best")" ]; then best=$line; fi
	done
	size=$(sed -E 's/.*out=([0-9.]+)MB.*/\1/' <<<"$best")
	pct=$(awk -v s="$size" -v r="$ref" 'BEGIN { printf "%+.1f%%", (s * 1e6 / r - 1) * 100 }')
	echo "$best | size vs gzip -6: $pct"
done
