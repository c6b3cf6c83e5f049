#!/bin/bash
# Folder sync against an rsync daemon, in the same run, over an emulated
# LAN (network namespaces; each server's link limited to 1 Gbit/s by tbf,
# the client's unshaped). The tree: a copy of /usr/share/doc, 1,000 files
# of 4 KiB and one of 64 MiB; the client writes into a tmpfs (both tools).
#   first run          udpxfer sync vs rsync -rlpt rsync://..., empty folder
#   no change          the same again, nothing to do
#   1 KiB changed      in the middle of the 64 MiB file: time and bytes received
#   three servers      udpxfer from three servers vs rsync from one
#   many small files   BENCH_SYNC_MANY (100000) files of 1 KiB, first run
# CPU-seconds of both sides are printed: the client's from /usr/bin/time,
# the servers' from /proc (rsyncd's children included).
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
MANY=${BENCH_SYNC_MANY:-100000}
for d in $(seq 0 $(( (MANY + 999) / 1000 - 1 ))); do
  mkdir -p "$work/small/d$d"
  n=$(( MANY - d * 1000 < 1000 ? MANY - d * 1000 : 1000 ))
  (cd "$work/small/d$d" && head -c $((n * 1024)) /dev/urandom | split -b 1024 -a 3 - f)
done
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
[small]
path = $work/small
read only = yes
EOF
ns() { echo "ip netns exec ${tag}-$1"; }
$(ns s1) rsync --daemon --no-detach --config="$work/rsyncd.conf" --port=8730 &
pids+=($!)
RSYNCD=$!
UXD=()
for i in 1 2 3; do
  $(ns "s$i") lua5.4 bin/udpxfer serve "$work/s$i" --share "small=$work/small" -q > /dev/null &
  pids+=($!)
  UXD+=($!)
done
U="$(ns c) lua5.4 bin/udpxfer"
for _ in $(seq 1 100); do $U ls --server 10.77.0.11 --broadcast none -q --timeout 60 > /dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do $(ns c) rsync rsync://10.77.0.11:8730/tree/ > /dev/null 2>&1 && break; sleep 0.1; done
# Every server hashes its trees once (a listing of each), as rsync reads its own.
for i in 1 2 3; do
  $U ls --server 10.77.0.1$i --broadcast none -q --timeout 120 > /dev/null
  $U ls small --server 10.77.0.1$i --broadcast none -q --timeout 300 > /dev/null
done

# CPU-seconds a process and its reaped children have used (rsyncd forks
# one per connection).
cpu_of() { awk '{printf "%.3f\n", ($14 + $15 + $16 + $17) / 100}' "/proc/$1/stat"; }
servers_cpu() { local t=0 p; for p in "$@"; do t=$(calc "$t + $(cpu_of "$p")"); done; echo "$t"; }

rsync_run() { # dst -> "seconds bytes_received client_cpu server_cpu peak_rss_kib"
  local t0 t1 stats s0 s1 tf
  tf=$(mktemp)
  s0=$(servers_cpu "$RSYNCD")
  t0=$(now)
  stats=$(/usr/bin/time -o "$tf" -f "%U %S %M" $(ns c) rsync -rlpt --stats "rsync://10.77.0.11:8730/${2:-tree}/" "$1/")
  t1=$(now)
  s1=$(servers_cpu "$RSYNCD")
  read -r u sy m < "$tf"
  rm -f "$tf"
  echo "$(calc "$t1 - $t0") $(echo "$stats" | awk -F': ' '/Total bytes received/ {gsub(",", "", $2); print $2+0}') $(calc "$u + $sy") $(calc "$s1 - $s0") $m"
}
ux_run() { # dst servers... -> "seconds bytes_wire client_cpu server_cpu peak_rss_kib"
  local dst=$1 t0 t1 j s0 s1 tf
  shift
  local args=()
  for s in "$@"; do args+=(--server "$s"); done
  tf=$(mktemp)
  s0=$(servers_cpu "${UXD[@]}")
  t0=$(now)
  j=$(/usr/bin/time -o "$tf" -f "%U %S %M" $U sync "${SYNC_REMOTE:-.}" "$dst" "${args[@]}" --broadcast none --json -q | tail -1)
  t1=$(now)
  s1=$(servers_cpu "${UXD[@]}")
  read -r u sy m < "$tf"
  rm -f "$tf"
  echo "$j" | grep -q '"type":"done"' || { echo "udpxfer sync failed: $j" >&2; exit 1; }
  echo "$(calc "$t1 - $t0") $(echo "$j" | grep -o '"bytes_wire":[0-9]*' | cut -d: -f2) $(calc "$u + $sy") $(calc "$s1 - $s0") $m"
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
  for d in r u t; do diff -r --no-dereference -x .udpxfer-index "$out/$d" "$work/s1" >&2 || echo "sync into $d differs from the tree" >&2; done
done
col() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{print $i}' | middle; }
list() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{printf "%.2f ", $i}'; }

fr=$(col 1 "${first_r[@]}") fu=$(col 1 "${first_u[@]}")
sr=$(col 1 "${same_r[@]}") su=$(col 1 "${same_u[@]}")
dr=$(col 1 "${delta_r[@]}") du=$(col 1 "${delta_u[@]}")
dbr=$(col 2 "${delta_r[@]}") dbu=$(col 2 "${delta_u[@]}")
tu=$(col 1 "${three[@]}")
cpu() { echo "client $(fmt "$(col 3 "$@")") + server $(fmt "$(col 4 "$@")") CPU-s"; }
echo "runs, s: rsync first $(list 1 "${first_r[@]}")| udpxfer first $(list 1 "${first_u[@]}")"
echo "         rsync same $(list 1 "${same_r[@]}")| udpxfer same $(list 1 "${same_u[@]}")"
echo "         rsync 1 KiB $(list 1 "${delta_r[@]}")| udpxfer 1 KiB $(list 1 "${delta_u[@]}")| 3 servers $(list 1 "${three[@]}")"
echo "CPU, medians: first run rsync $(cpu "${first_r[@]}"), udpxfer $(cpu "${first_u[@]}")"
echo "              nothing changed rsync $(cpu "${same_r[@]}"), udpxfer $(cpu "${same_u[@]}")"
echo "              1 KiB changed rsync $(cpu "${delta_r[@]}"), udpxfer $(cpu "${delta_u[@]}")"
echo "              3 servers udpxfer $(cpu "${three[@]}")"
r=$(calc "$fu / $fr"); row "sync, first run ($entries entries): time" "rsync $(fmt "$fr") s" "$(fmt "$fu") s" "$(fmt "$r")x" "<= 1.0x" "$(met "$r <= 1.0")"
cr=$(calc "$(col 3 "${first_r[@]}") + $(col 4 "${first_r[@]}")") cu=$(calc "$(col 3 "${first_u[@]}") + $(col 4 "${first_u[@]}")")
r=$(calc "$cu / $cr"); row "sync, first run: client + server CPU" "rsync $(fmt "$cr") s" "$(fmt "$cu") s" "$(fmt "$r")x" "<= 1.0x" "$(met "$r <= 1.0")"
r=$(calc "$su / $sr"); row "sync, nothing changed: time" "rsync $(fmt "$sr") s" "$(fmt "$su") s" "$(fmt "$r")x" "<= 0.5x" "$(met "$r <= 0.5")"
r=$(calc "$du / $dr"); row "sync, 1 KiB changed in 64 MiB: time" "rsync $(fmt "$dr") s" "$(fmt "$du") s" "$(fmt "$r")x" "<= 0.5x" "$(met "$r <= 0.5")"
c=$(col 3 "${delta_u[@]}"); row "sync, 1 KiB changed in 64 MiB: client CPU" "rsync $(fmt "$(col 3 "${delta_r[@]}")") s" "$(fmt "$c") s" "-" "<= 0.1 s" "$(met "$c <= 0.1")"
r=$(calc "$dbu / $dbr"); row "sync, 1 KiB changed in 64 MiB: bytes received" "rsync $dbr B" "$dbu B" "$(fmt "$r")x" "<= 0.5x" "$(met "$r <= 0.5")"
r=$(calc "$fr / $tu"); row "sync, 3 servers vs rsync from 1 (speed-up)" "rsync $(fmt "$fr") s" "$(fmt "$tu") s" "$(fmt "$r")x" ">= 2.0x" "$(met "$r >= 2.0")"
r=$(calc "$fu / $tu"); row "sync, 3 servers vs udpxfer from 1 (speed-up)" "udpxfer $(fmt "$fu") s" "$(fmt "$tu") s" "$(fmt "$r")x" ">= 1.5x" "$(met "$r >= 1.5")"

# Many small files: BENCH_SYNC_MANY (100000) files of 1 KiB in folders of 1,000.
many_r=() many_u=()
for run in $(seq 1 "$RUNS"); do
  fresh "$out/mr"; many_r+=("$(rsync_run "$out/mr" small)")
  fresh "$out/mu"; many_u+=("$(SYNC_REMOTE=small ux_run "$out/mu" 10.77.0.11)")
  diff -r -q "$out/mu" "$work/small" -x .udpxfer-index > /dev/null 2>&1 || echo "sync of many small files differs" >&2
  rm -rf "$out/mr" "$out/mu"
done
mr=$(col 1 "${many_r[@]}") mu=$(col 1 "${many_u[@]}")
echo "runs, s: $MANY x 1 KiB: rsync $(list 1 "${many_r[@]}")| udpxfer $(list 1 "${many_u[@]}")"
echo "CPU, medians: rsync $(cpu "${many_r[@]}"), udpxfer $(cpu "${many_u[@]}")"
r=$(calc "$mu / $mr"); row "sync, $MANY files of 1 KiB, first run: time" "rsync $(fmt "$mr") s" "$(fmt "$mu") s" "$(fmt "$r")x" "<= 0.8x" "$(met "$r <= 0.8")"
rss=$(calc "$(col 5 "${many_u[@]}") / 1024"); row "sync, $MANY files of 1 KiB: client peak RSS" "rsync $(fmt "$(calc "$(col 5 "${many_r[@]}") / 1024")" 0) MiB" "$(fmt "$rss" 0) MiB" "-" "<= 128 MiB" "$(met "$rss <= 128")"
