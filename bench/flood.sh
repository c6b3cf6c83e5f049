#!/bin/bash
# What unauthenticated listing and tree requests cost a server, on
# loopback: a tree of FLOOD_FILES (100,000) small files in 300 folders and
# one file of FLOOD_BIG_MB (512) MiB; bench/flood.lua sends REQUESTs from
# 127.0.0.2-5 that never echo a cookie, for FLOOD_SECONDS (10) per case:
#   tree-cs   the listing of "." with its tree at a new chunk size each time
#   folders   listings of ".", d000 ... in turn: FLOOD_FOLDERS (17) names
#   file-cs   the big file's tree at a new chunk size each time
# Per case: the server's CPU (user + system) and bytes read (rchar) over
# the flood, and a legitimate sync of the folder d000 (nothing changed)
# timed three times during it. Prints one line per case.
#   FLOOD_RATE (200; file-cs: FLOOD_FILE_RATE, 50), FLOOD_SEED (1),
#   FLOOD_MODES (all three).
set -eu
cd "$(dirname "$0")/.."
FILES=${FLOOD_FILES:-100000}
BIG=${FLOOD_BIG_MB:-512}
SECS=${FLOOD_SECONDS:-10}
RATE=${FLOOD_RATE:-200}
FRATE=${FLOOD_FILE_RATE:-50}
SEED=${FLOOD_SEED:-1}
FOLDERS=${FLOOD_FOLDERS:-17}
MODES=${FLOOD_MODES:-tree-cs folders file-cs}
LUA=${LUA:-lua5.4}
work=$(mktemp -d /tmp/udpxfer-flood.XXXXXX)
spid=
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

tree=$work/tree
per=$(( (FILES + 299) / 300 ))
for d in $(seq -f %03g 0 299); do
  mkdir -p "$tree/d$d"
  (cd "$tree/d$d" && head -c $((per * 16)) /dev/urandom | split -b 16 -a 3 - f)
done
head -c $((BIG << 20)) /dev/urandom > "$tree/big.bin"
echo "tree: $(find "$tree" -type f | wc -l) files, big.bin $BIG MiB"

$LUA bin/udpxfer serve "$tree" --port 0 --json > "$work/log" 2>&1 &
spid=$!
for _ in $(seq 1 600); do grep -q '"port"' "$work/log" 2>/dev/null && break; sleep 0.05; done
port=$(grep -o '"port":[0-9]*' "$work/log" | head -1 | cut -d: -f2)
[ -n "$port" ] || { echo "the server did not start" >&2; exit 1; }

dst=$work/dst
mkdir -p "$dst"
sync_once() { # seconds a sync of d000 into $dst takes (exit status on stderr if not 0)
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  $LUA bin/udpxfer sync d000 "$dst" --server "127.0.0.1:$port" --broadcast none --quiet --timeout 20 || rc=$?
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || echo "  sync exit $rc" >&2
  echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
t0=$(date +%s.%N)
$LUA bin/udpxfer ls . --server "127.0.0.1:$port" --broadcast none --timeout 60 > /dev/null
echo "warm-up: the listing of . (every file hashed) in $(echo "$t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}') s"
echo "first sync: $(sync_once) s"
echo "no flood: sync (nothing changed) $(sync_once) s, $(sync_once) s, $(sync_once) s"

ticks() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
rchar() { awk '/^rchar/ {print $2}' "/proc/$spid/io"; }
hz=$(getconf CLK_TCK)
for mode in $MODES; do
  rate=$RATE name=.
  [ "$mode" = file-cs ] && rate=$FRATE name=big.bin
  c0=$(ticks) r0=$(rchar) t0=$(date +%s.%N)
  $LUA bench/flood.lua "$port" "$mode" "$rate" "$SECS" "$SEED" "$name" 4 "$FOLDERS" > "$work/flood.out" &
  fpid=$!
  (sleep 1; for _ in 1 2 3; do sync_once; echo; done) > "$work/syncs" &
  ypid=$!
  wait "$fpid"
  c1=$(ticks) r1=$(rchar) t1=$(date +%s.%N)
  wait "$ypid"
  read -r s1 s2 s3 <<< "$(tr '\n' ' ' < "$work/syncs")"
  echo "$mode at $rate/s: server CPU $(echo "$c0 $c1 $t0 $t1 $hz" | awk '{printf "%.0f%%", 100 * ($2 - $1) / $5 / ($4 - $3)}')," \
    "read $(echo "$r0 $r1" | awk '{printf "%.2f GiB", ($2 - $1) / 1073741824}') in $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s;" \
    "sync during it $s1 s, $s2 s, $s3 s; $(cat "$work/flood.out")"
  sleep 1
done
