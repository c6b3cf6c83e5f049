#!/bin/bash
# Folder sync against an rsync daemon, in the same run, over an emulated
# LAN (network namespaces; each server's link limited to 1 Gbit/s by tbf,
# the client's unshaped). The tree: a copy of /usr/share/doc, 1,000 files
# of 4 KiB and one of 64 MiB; the client writes into a tmpfs (both tools).
#   first run          udpxfer sync vs rsync -rlpt rsync://..., empty folder
#   no change          the same again, nothing to do
#   1 KiB changed      in the middle of the 64 MiB file: time and bytes received
#   three servers      udpxfer from three servers vs rsync from one
# Median of BENCH_SYNC_RUNS (3) runs per case. Needs root (namespaces);
# skips with a message elsewhere. Appends markdown rows to $BENCH_ROWS.
set -eu
cd "$(dirname "$0")/.."
ROWS=${BENCH_ROWS:-/dev/null}
RUNS=${BENCH_SYNC_RUNS:-3}
DOC=${BENCH_SYNC_DOC:-/usr/share/doc}
if ! bash tools/lan.sh check >/dev/null 2>&1; then
  echo "bench/sync.sh: skipped: $(bash tools/lan.sh check 2>&1 || true)"
  exit 0
fi
command -v rsync >/dev/null || { echo "bench/sync.sh: skipped: rsync is not installed"; exit 0; }
tag="uxy$$"
work=$(mktemp -d /tmp/udpxfer-bsync.XXXXXX)
out=$(mktemp -d /dev/shm/udpxfer-bsync.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash tools/lan.sh down "$tag"
  rm -rf "$work" "$out"
}
trap cleanup EXIT INT TERM
bash tools/lan.sh up "$tag" 3
for i in 1 2 3; do bash tools/lan.sh rate "$tag" "$i" 1000; done

. bench/lib.sh
now() { date +%s.%N; }
middle() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The tree, three identical copies (cp -a keeps the mtimes both tools compare).
tree=$work/tree
mkdir -p "$tree/many"
cp -a "$DOC" "$tree/doc" 2>/dev/null || true
(cd "$tree/many" && head -c $((1000 * 4096)) /dev/urandom | split -b 4096 -a 4 - f)
head -c $((64 << 20)) /dev/urandom > "$tree/big.bin"
for i in 1 2 3; do cp -a "$tree" "$work/s$i"; done
entries=$(find "$tree" | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $entries entries, $(calc "$bytes / 1048576" | cut -d. -f1) MiB"

cat > "$work/rsyncd.conf" <<EOF
uid = root
gid = root
use chroot = no
[tree]
path = $work/s1
read only = yes
EOF
ns() { echo "ip netns exec ${tag}-$1"; }
$(ns s1) rsync --daemon --no-detach --config="$work/rsyncd.conf" --port=8730 &
pids+=($!)
for i in 1 2 3; do
  $(ns "s$i") lua5.4 bin/udpxfer serve "$work/s$i" -q > /dev/null &
  pids+=($!)
done
U="$(ns c) lua5.4 bin/udpxfer"
for _ in $(seq 1 100); do $U ls --server 10.77.0.11 --broadcast none -q --timeout 60 > /dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do $(ns c) rsync rsync://10.77.0.11:8730/tree/ > /dev/null 2>&1 && break; sleep 0.1; done
# Every server hashes its tree once (a listing of each), as rsync reads its own.
for i in 2 3; do $U ls --server 10.77.0.1$i --broadcast none -q --timeout 120 > /dev/null; done

rsync_run() { # dst -> "seconds bytes_received"
  local t0 t1 stats
  t0=$(now)
  stats=$($(ns c) rsync -rlpt --stats rsync://10.77.0.11:8730/tree/ "$1/")
  t1=$(now)
  echo "$(calc "$t1 - $t0") $(echo "$stats" | awk -F': ' '/Total bytes received/ {gsub(",", "", $2); print $2+0}')"
}
ux_run() { # dst servers... -> "seconds bytes_wire"
  local dst=$1 t0 t1 j
  shift
  local args=()
  for s in "$@"; do args+=(--server "$s"); done
  t0=$(now)
  j=$($U sync . "$dst" "${args[@]}" --broadcast none --json | tail -1)
  t1=$(now)
  echo "$j" | grep -q '"type":"done"' || { echo "udpxfer sync failed: $j" >&2; exit 1; }
  echo "$(calc "$t1 - $t0") $(echo "$j" | grep -o '"bytes_wire":[0-9]*' | cut -d: -f2)"
}
fresh() { rm -rf "$1" && mkdir -p "$1"; }

first_r=() first_u=() same_r=() same_u=() delta_r=() delta_u=() three=()
for run in $(seq 1 "$RUNS"); do
  fresh "$out/r"; first_r+=("$(rsync_run "$out/r")")
  fresh "$out/u"; first_u+=("$(ux_run "$out/u" 10.77.0.11)")
  same_r+=("$(rsync_run "$out/r")")
  same_u+=("$(ux_run "$out/u" 10.77.0.11)")
  # the same 1 KiB change on every server, at a new place each run
  off=$(( (32 << 20) + run * 8192 + 100 ))
  head -c 1024 /dev/urandom > "$work/patch"
  for i in 1 2 3; do dd if="$work/patch" of="$work/s$i/big.bin" bs=1 seek=$off conv=notrunc status=none; done
  touch -r "$work/s1/big.bin" "$work/s2/big.bin" "$work/s3/big.bin"
  delta_r+=("$(rsync_run "$out/r")")
  delta_u+=("$(ux_run "$out/u" 10.77.0.11)")
  fresh "$out/t"; three+=("$(ux_run "$out/t" 10.77.0.11 10.77.0.12 10.77.0.13)")
  for d in r u t; do diff -r --no-dereference -x .udpxfer-index "$out/$d" "$work/s1" > /dev/null 2>&1 || echo "sync into $d differs from the tree" >&2; done
done
col() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{print $i}' | middle; }
list() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{printf "%.2f ", $i}'; }

fr=$(col 1 "${first_r[@]}") fu=$(col 1 "${first_u[@]}")
sr=$(col 1 "${same_r[@]}") su=$(col 1 "${same_u[@]}")
dr=$(col 1 "${delta_r[@]}") du=$(col 1 "${delta_u[@]}")
dbr=$(col 2 "${delta_r[@]}") dbu=$(col 2 "${delta_u[@]}")
tu=$(col 1 "${three[@]}")
echo "runs, s: rsync first $(list 1 "${first_r[@]}")| udpxfer first $(list 1 "${first_u[@]}")"
echo "         rsync same $(list 1 "${same_r[@]}")| udpxfer same $(list 1 "${same_u[@]}")"
echo "         rsync 1 KiB $(list 1 "${delta_r[@]}")| udpxfer 1 KiB $(list 1 "${delta_u[@]}")| 3 servers $(list 1 "${three[@]}")"
r=$(calc "$fu / $fr"); row "sync, first run ($entries entries)" "rsync $(fmt "$fr") s" "$(fmt "$fu") s" "$(fmt "$r")x" "<= 0.9x" "$(met "$r <= 0.9")"
r=$(calc "$su / $sr"); row "sync, nothing changed" "rsync $(fmt "$sr") s" "$(fmt "$su") s" "$(fmt "$r")x" "<= 1.0x" "$(met "$r <= 1.0")"
r=$(calc "$du / $dr"); row "sync, 1 KiB changed in 64 MiB: time" "rsync $(fmt "$dr") s" "$(fmt "$du") s" "$(fmt "$r")x" "<= 0.5x" "$(met "$r <= 0.5")"
r=$(calc "$dbu / $dbr"); row "sync, 1 KiB changed in 64 MiB: bytes received" "rsync $dbr B" "$dbu B" "$(fmt "$r")x" "<= 0.5x" "$(met "$r <= 0.5")"
r=$(calc "$fr / $tu"); row "sync, 3 servers vs rsync from 1 (speed-up)" "rsync $(fmt "$fr") s" "$(fmt "$tu") s" "$(fmt "$r")x" ">= 2.5x" "$(met "$r >= 2.5")"
