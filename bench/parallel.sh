#!/bin/bash
# Benchmark: one file from 1 server against 3 servers on an emulated LAN
# (network namespaces on a bridge, tbf per server link). Prints ratios
# against a baseline measured in the same run. Needs root and ip netns.
set -eu
cd "$(dirname "$0")/.."
ROWS=${BENCH_ROWS:-/dev/null}
if ! bash tools/lan.sh check >/dev/null 2>&1; then
  echo "bench/parallel.sh: skipped: needs root and network namespaces"
  exit 0
fi
tag="uxb$$"
work=$(mktemp -d /tmp/udpxfer-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash tools/lan.sh down "$tag"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
size_mib=${BENCH_MIB:-64}
bash tools/lan.sh up "$tag" 3
mkdir -p "$work/srv" "$work/out"
head -c $((size_mib * 1048576)) /dev/urandom > "$work/srv/f"

serve() { # host index
  ip netns exec "$tag-s$1" lua5.4 bin/udpxfer serve "$work/srv" --json > "$work/s$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q listening "$work/s$1.log" && return; sleep 0.05; done
  echo "server $1 did not start"; exit 1
}
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
fetch() { # prints wall seconds; checks the result
  rm -f "$work/out/f"
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$tag-c" lua5.4 bin/udpxfer get f --out "$work/out" --quiet
  t1=$(date +%s.%N)
  cmp -s "$work/srv/f" "$work/out/f" || { echo "MISMATCH"; exit 1; }
  echo "$t1 - $t0" | bc -l
}

echo "## 1 vs 3 servers, ${size_mib} MiB, each server link 100 Mbit/s"
for i in 1 2 3; do bash tools/lan.sh rate "$tag" "$i" 100; done
serve 1; fetch >/dev/null # warm: the server hashes the file once
t1=$(fetch); stop_servers
serve 1; serve 2; serve 3; fetch >/dev/null
t3=$(fetch); stop_servers
r=$(echo "$t3 / $t1" | bc -l)
printf '1 server  %.2f s\n3 servers %.2f s\nratio %.3f (target <= 0.37), speed-up %.2fx\n' "$t1" "$t3" \
  "$r" "$(echo "$t1 / $t3" | bc -l)"
printf '| 3 servers vs 1, %s MiB, 100 Mbit/s links: time | %.2f s | %.2f s | %.3fx | <= 0.37x | %s |\n' \
  "$size_mib" "$t1" "$t3" "$r" "$([ "$(echo "$r <= 0.37" | bc -l)" = 1 ] && echo yes || echo NO)" >> "$ROWS"

echo "## 3 servers at 40/80/160 Mbit/s, ${size_mib} MiB"
bash tools/lan.sh rate "$tag" 1 40; bash tools/lan.sh rate "$tag" 2 80; bash tools/lan.sh rate "$tag" 3 160
serve 1; serve 2; serve 3; fetch >/dev/null
t=$(fetch); stop_servers
ideal=$(echo "$size_mib * 1048576 * 8 / 280000000" | bc -l)
r=$(echo "$t / $ideal" | bc -l)
printf 'took %.2f s, size/sum of rates %.2f s: %.3fx (target <= 1.20)\n' "$t" "$ideal" "$r"
printf '| 3 servers at 40/80/160 Mbit/s, %s MiB: time vs size/sum of rates | %.2f s | %.2f s | %.3fx | <= 1.20x | %s |\n' \
  "$size_mib" "$ideal" "$t" "$r" "$([ "$(echo "$r <= 1.20" | bc -l)" = 1 ] && echo yes || echo NO)" >> "$ROWS"
