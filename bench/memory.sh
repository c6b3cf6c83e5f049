#!/bin/bash
# A client's peak RSS for large listings, on loopback (/usr/bin/time -v):
# a tree of MEM_ENTRIES (200,000) folders and one of as many small files
# (16 bytes, 1,000 a folder; MEM_TREES picks), each served by `udpxfer
# serve`; per tree a
# first sync into an empty folder, the same sync again (nothing to do),
# and `ls`. Prints one line per run: seconds, peak RSS, exit status.
set -eu
cd "$(dirname "$0")/.."
N=${MEM_ENTRIES:-200000}
TREES=${MEM_TREES:-folders files}
LUA=${LUA:-lua5.4}
work=$(mktemp -d /tmp/udpxfer-mem.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# N folders: N/500 of them each holding 499.
mkdir -p "$work/folders"
for i in $(seq 1 $((N / 500))); do
  [[ " $TREES " == *" folders "* ]] || break
  d=$(printf "d%04d" "$i")
  mkdir -p "$work/folders/$d"
  (cd "$work/folders/$d" && seq -f "s%03g" 1 499 | xargs mkdir)
done
# N files of 16 bytes, 1,000 a folder.
mkdir -p "$work/files"
for i in $(seq 1 $((N / 1000))); do
  [[ " $TREES " == *" files "* ]] || break
  d=$(printf "d%04d" "$i")
  mkdir -p "$work/files/$d"
  (cd "$work/files/$d" && head -c $((1000 * 16)) /dev/urandom | split -b 16 -a 3 - f)
done

serve() { # tree: its server's port in $port (not in a subshell: the trap kills it)
  $LUA bin/udpxfer serve "$work/$1" --port 0 --json > "$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do grep -q '"port"' "$work/$1.log" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o '"port":[0-9]*' "$work/$1.log" | head -1 | cut -d: -f2)
}

run() { # label command...
  local label=$1
  shift
  /usr/bin/time -f "%e %M %x" -o "$work/t" "$@" > /dev/null 2> "$work/err" || true
  read -r secs kib rc < <(tail -1 "$work/t")
  printf '%-34s %7.2f s  peak RSS %4d MiB  exit %s\n' "$label" "$secs" $((kib / 1024)) "$rc"
  [ "$rc" = 0 ] || head -3 "$work/err"
}

for tree in $TREES; do
  serve "$tree"
  entries=$(find "$work/$tree" | wc -l)
  mkdir -p "$work/dst-$tree"
  common=(--server "127.0.0.1:$port" --broadcast none --timeout 60)
  run "$tree ($entries): first sync" $LUA bin/udpxfer sync . "$work/dst-$tree" "${common[@]}" --quiet
  run "$tree ($entries): sync again" $LUA bin/udpxfer sync . "$work/dst-$tree" "${common[@]}" --quiet
  run "$tree ($entries): ls" $LUA bin/udpxfer ls . "${common[@]}"
done
