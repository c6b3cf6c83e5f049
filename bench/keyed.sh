#!/bin/bash
# What shared-key mode costs: a loopback fetch sealed (--key-file) against
# the same fetch keyless, and sealed on a 1 Gbit/s link (tbf) against nc,
# each pair measured in the same run (median of 5). Sizes: BENCH_MB
# (loopback, default 1024), BENCH_LAN_MB (256). Appends markdown rows to
# $BENCH_ROWS when set, and every run to $BENCH_RUNS.
set -eu
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-1024}
LAN_MB=${BENCH_LAN_MB:-256}
ROWS=${BENCH_ROWS:-/dev/null}
RUNS=${BENCH_RUNS:-/dev/null}
work=$(mktemp -d /tmp/udpxfer-keyed.XXXXXX)
out=$(mktemp -d /dev/shm/udpxfer-keyed.XXXXXX)
tag="uxk$$"
pids=()
lan=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$lan" = 1 ] && bash tools/lan.sh down "$tag"
  rm -rf "$work" "$out"
}
trap cleanup EXIT INT TERM
. bench/lib.sh
mkdir -p "$work/srv"
lua5.4 bin/udpxfer keygen > "$work/key"

serve() { # prefix bind port [key args]
  $1 lua5.4 bin/udpxfer serve "$work/srv" --port "$3" --bind "$2" --json ${4:-} > "$work/serve$3.log" 2>&1 &
  pids+=("$!")
  wait_for "$work/serve$3.log" listening
}

get_timed() { # prefix server port [key args]
  rm -f "$out/big"
  $1 /usr/bin/time -f "%e" -o "$work/t" lua5.4 bin/udpxfer get big --server "$2" --port "$3" \
    --broadcast none --timeout 120 --out "$out" -q ${4:-}
  cmp -s "$work/srv/big" "$out/big" || { echo "MISMATCH after udpxfer get" >&2; exit 1; }
  rm -f "$out/big"
  cat "$work/t"
}

echo "## loopback, ${MB} MiB in page cache, keyless against sealed"
size=$((MB * 1048576))
head -c "$size" /dev/urandom > "$work/srv/big"
serve "" 127.0.0.1 10530
serve "" 127.0.0.1 10531 "--key-file $work/key"
get_timed "" 127.0.0.1 10530 > /dev/null # warm: each server hashes the file once
get_timed "" 127.0.0.1 10531 "--key-file $work/key" > /dev/null
t_plain=$(RUNS_LABEL="loopback: udpxfer keyless" median get_timed "" 127.0.0.1 10530)
t_key=$(RUNS_LABEL="loopback: udpxfer --key-file" median get_timed "" 127.0.0.1 10531 "--key-file $work/key")
r=$(calc "$t_plain / $t_key")
row "loopback ${MB} MiB: sealed goodput vs keyless" "$(fmt "$(calc "$size / $t_plain / 1e6")" 0) MB/s" \
  "$(fmt "$(calc "$size / $t_key / 1e6")" 0) MB/s" "$(fmt "$r")x" ">= 0.8x" "$(met "$r >= 0.8")"

if ! bash tools/lan.sh check > /dev/null 2>&1; then
  echo "## 1 Gbit/s link: skipped: needs root and ip netns"
  exit 0
fi
echo "## 1 Gbit/s link (tbf), ${LAN_MB} MiB, sealed against nc"
size=$((LAN_MB * 1048576))
head -c "$size" /dev/urandom > "$work/srv/big"
lan=1
bash tools/lan.sh up "$tag" 1
bash tools/lan.sh rate "$tag" 1 1000
C="ip netns exec $tag-c"
S="ip netns exec $tag-s1"
t_nc=$(RUNS_LABEL="1 Gbit/s tbf: nc" median nc_time "$C" "$S" 10.77.0.1 15996 "$work/srv/big")
serve "$S" 10.77.0.11 10526 "--key-file $work/key"
get_timed "$C" 10.77.0.11 10526 "--key-file $work/key" > /dev/null
t_key=$(RUNS_LABEL="1 Gbit/s tbf: udpxfer --key-file" median get_timed "$C" 10.77.0.11 10526 "--key-file $work/key")
r=$(calc "$t_nc / $t_key")
row "1 Gbit/s tbf, ${LAN_MB} MiB: sealed goodput vs nc" "$(fmt "$(calc "$size / $t_nc / 1e6")" 0) MB/s" \
  "$(fmt "$(calc "$size / $t_key / 1e6")" 0) MB/s" "$(fmt "$r")x" ">= 0.93x" "$(met "$r >= 0.93")"
