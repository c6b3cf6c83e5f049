#!/bin/bash
# How fast is one transfer, against what users compare us with,
# each measured in the same run: `openssl dgst -sha256` and `nc` over
# loopback; `nc` between two network namespaces; `iperf3` on a 1 Gbit/s link
# (tbf); `nc` on that link with 5% random loss (nft); peak RSS for a large
# file; bytes per CPU-second. Median of 5 runs where a case is repeated.
# udpxfer writes into a tmpfs (nc writes to /dev/null; neither pays for the
# disk); one extra row measures a loopback fetch onto the disk, fsync
# included, against `dd conv=fsync` of the same file.
# Sizes: BENCH_MB (loopback, default 1024), BENCH_LAN_MB (256), BENCH_RSS_GB (4).
# Appends markdown rows to $BENCH_ROWS when set, and every run of the
# repeated cases to $BENCH_RUNS.
set -eu
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-1024}
LAN_MB=${BENCH_LAN_MB:-256}
RSS_GB=${BENCH_RSS_GB:-4}
ROWS=${BENCH_ROWS:-/dev/null}
RUNS=${BENCH_RUNS:-/dev/null}
work=$(mktemp -d /tmp/udpxfer-bench.XXXXXX)
tag="uxs$$"
pids=()
lan=0
out=$(mktemp -d /dev/shm/udpxfer-bench.XXXXXX)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$lan" = 1 ] && bash tools/lan.sh down "$tag"
  rm -rf "$work" "$out"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/srv" "$work/out"

. bench/lib.sh

serve() { # prefix bind
  $1 lua5.4 bin/udpxfer serve "$work/srv" --port 10526 --bind "$2" --json > "$work/serve.log" 2>&1 &
  spid=$!
  pids+=("$spid")
  wait_for "$work/serve.log" listening
}

stop_server() { kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; }

# One fetch; leaves "elapsed user sys maxrss" in $work/t and the JSON in $work/get.json.
get_once() { # prefix server name [output dir]
  local dir=${4:-$out}
  rm -f "$dir/$3"
  $1 /usr/bin/time -f "%e %U %S %M" -o "$work/t" lua5.4 bin/udpxfer get "$3" --server "$2" \
    --broadcast none --timeout 120 --out "$dir" --json > "$work/get.json"
  cmp -s "$work/srv/$3" "$dir/$3" || { echo "MISMATCH after udpxfer get" >&2; exit 1; }
  rm -f "$dir/$3"
}

get_timed() { get_once "$@"; cat "$work/t"; }

# Serve big in the server namespace, warm it, and set t_get to the median
# fetch time from the client namespace. The server keeps running.
lan_fetch() { # label
  serve "$S" 10.77.0.11
  get_once "$C" 10.77.0.11 big
  read -r t_get _ < <(RUNS_LABEL="$1: udpxfer" median get_timed "$C" 10.77.0.11 big)
}

row_vs_nc() { # label
  local r
  r=$(calc "$t_nc / $t_get")
  row "$1" "$(fmt "$(calc "$size / $t_nc / 1e6")" 0) MB/s" "$(fmt "$(calc "$size / $t_get / 1e6")" 0) MB/s" \
    "$(fmt "$r")x" ">= 1.0x" "$(met "$r >= 1.0")"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$2" | tail -1; }
tck=$(getconf CLK_TCK)

echo "## loopback, one server, ${MB} MiB in page cache"
size=$((MB * 1048576))
head -c "$size" /dev/urandom > "$work/srv/big"
cat "$work/srv/big" > /dev/null
read -r t_ssl _ < <(RUNS_LABEL="loopback: openssl dgst -sha256" median timed openssl dgst -sha256 "$work/srv/big")
t_nc=$(RUNS_LABEL="loopback: nc" median nc_time "" "" 127.0.0.1 15999 "$work/srv/big")
# What writing the file alone costs where udpxfer writes it (printed, not a
# target): on a VM, fresh memory is now and then several times slower to
# touch, and that swings udpxfer's runs but not nc's or openssl's.
cat_time() { /usr/bin/time -f "%e" -o "$work/t" sh -c 'cat "$1" > "$2"' - "$1" "$2"; rm -f "$2"; cat "$work/t"; }
read -r t_cat < <(RUNS_LABEL="loopback: cat into the output tmpfs" median cat_time "$work/srv/big" "$out/copy")
serve "" 127.0.0.1
get_once "" 127.0.0.1 big # warm: the server hashes the file once
c0=$(cpu_ticks "$spid")
read -r t_get cu cs crss < <(RUNS_LABEL="loopback: udpxfer" median get_timed "" 127.0.0.1 big)
c1=$(cpu_ticks "$spid")
srss=$(hwm_kb "$spid")
get_once "" 127.0.0.1 big "$work/out"
read -r t_disk _ < "$work/t"
stop_server
/usr/bin/time -f "%e" -o "$work/t" dd if="$work/srv/big" of="$work/out/dd" bs=1M conv=fsync 2>/dev/null
read -r t_dd < "$work/t"
rm -f "$work/out/dd"
r=$(calc "$t_get / $t_ssl")
row "loopback ${MB} MiB: time vs openssl dgst -sha256" "$(fmt "$t_ssl") s" "$(fmt "$t_get") s" \
  "$(fmt "$r")x" "<= 2.0x" "$(met "$r <= 2.0")"
r=$(calc "$t_nc / $t_get")
row "loopback ${MB} MiB: goodput vs nc (TCP)" "$(fmt "$(calc "$size / $t_nc / 1e6")" 0) MB/s" \
  "$(fmt "$(calc "$size / $t_get / 1e6")" 0) MB/s" "$(fmt "$r")x" ">= 0.5x" "$(met "$r >= 0.5")"
row "loopback: writing ${MB} MiB into the output tmpfs (cat), for scale" "-" "$(fmt "$t_cat") s" "-" "(printed)" "-"
r=$(calc "$t_disk / $t_dd")
row "loopback ${MB} MiB onto the disk (fsync): time vs dd conv=fsync" "$(fmt "$t_dd") s" "$(fmt "$t_disk") s" \
  "$(fmt "$r")x" "(printed)" "-"
ccpu=$(calc "$cu + $cs")
scpu=$(calc "($c1 - $c0) / $tck / 5")
row "loopback: bytes per CPU-second" "-" \
  "client $(fmt "$(calc "$size / $ccpu / 1e6")" 0) MB/s, server $(fmt "$(calc "$size / $scpu / 1e6")" 0) MB/s" \
  "-" "(printed)" "-"
row "loopback: peak RSS, ${MB} MiB" "-" "client $((crss / 1024)) MiB, server $((srss / 1024)) MiB" "-" "< 64 MiB" \
  "$(met "$crss < 65536 && $srss < 65536")"
rm -f "$work/out/big"

if [ "$RSS_GB" -gt 0 ] && [ "$(df --output=avail -k "$work" | tail -1)" -gt $((RSS_GB * 2 * 1048576 + 1048576)) ]; then
  echo "## peak RSS for a ${RSS_GB} GiB file"
  rm -f "$work/srv/big"
  truncate -s "${RSS_GB}G" "$work/srv/huge" # sparse: the disk holds one copy, the output
  serve "" 127.0.0.1
  get_once "" 127.0.0.1 huge # hashes the chunks, reading them
  get_once "" 127.0.0.1 huge # sends them from its mapping of the file
  read -r t _ _ crss < "$work/t"
  srss=$(hwm_kb "$spid")
  stop_server
  rm -f "$work/out/huge" "$work/srv/huge"
  row "peak RSS, ${RSS_GB} GiB file ($(fmt "$t") s)" "-" "client $((crss / 1024)) MiB, server $((srss / 1024)) MiB" \
    "-" "< 64 MiB" "$(met "$crss < 65536 && $srss < 65536")"
else
  echo "## peak RSS for a ${RSS_GB} GiB file: skipped (BENCH_RSS_GB=0 or not enough disk)"
fi
head -c $((LAN_MB * 1048576)) /dev/urandom > "$work/srv/big"

if ! bash tools/lan.sh check > /dev/null 2>&1; then
  echo "## network namespaces: skipped: needs root and ip netns"
  exit 0
fi
lan=1
bash tools/lan.sh up "$tag" 1
C="ip netns exec $tag-c"
S="ip netns exec $tag-s1"
size=$((LAN_MB * 1048576))

echo "## two namespaces, no shaping, ${LAN_MB} MiB"
t_nc=$(RUNS_LABEL="2 namespaces: nc" median nc_time "$C" "$S" 10.77.0.1 15998 "$work/srv/big")
lan_fetch "2 namespaces"
stop_server
row_vs_nc "2 namespaces, ${LAN_MB} MiB: goodput vs nc"

echo "## 1 Gbit/s link (tbf), ${LAN_MB} MiB"
bash tools/lan.sh rate "$tag" 1 1000
$C iperf3 -s -1 -B 10.77.0.1 > /dev/null 2>&1 &
ip=$!
for _ in $(seq 1 200); do $C ss -ltn | grep -q ":5201 " && break; sleep 0.02; done
$S iperf3 -c 10.77.0.1 -n "${LAN_MB}M" -J > "$work/iperf.json"
wait "$ip" || true
iperf_bps=$(lua5.4 -e '
  local j = io.read("a")
  print(("%.0f"):format(tonumber(j:match("\"sum_received\"%s*:%s*{.-\"bits_per_second\"%s*:%s*([%d%.e+]+)"))))' < "$work/iperf.json")
iperf_retx=$(lua5.4 -e '
  local j = io.read("a")
  print(j:match("\"sum_sent\"%s*:%s*{.-\"retransmits\"%s*:%s*(%d+)") or 0)' < "$work/iperf.json")
lan_fetch "1 Gbit/s tbf"
lost=$(field lost "$work/get.json")
chunks=$(field chunks "$work/get.json")
stop_server
sent=$(field bytes_sent "$work/serve.log")
r=$(calc "$size * 8 / $t_get / $iperf_bps")
row "1 Gbit/s tbf, ${LAN_MB} MiB: goodput vs iperf3" "$(fmt "$(calc "$iperf_bps / 1e6")" 0) Mbit/s ($iperf_retx TCP retransmits)" \
  "$(fmt "$(calc "$size * 8 / $t_get / 1e6")" 0) Mbit/s" "$(fmt "$r")x" ">= 0.95x" "$(met "$r >= 0.95")"
retx=$(calc "100 * ($sent - $size) / $sent")
row "1 Gbit/s tbf: retransmitted share of bytes sent" "-" "$(fmt "$retx") %" "-" "< 3 %" "$(met "$retx < 3")"
lossp=$(calc "100 * $lost / ($chunks + $lost)")
row "1 Gbit/s tbf: self-inflicted loss" "-" "$(fmt "$lossp") % ($lost chunks)" "-" "< 1 %" "$(met "$lossp < 1")"

echo "## 1 Gbit/s link with 5% random loss on the client's ingress, ${LAN_MB} MiB"
bash tools/lan.sh loss "$tag" 5
t_nc=$(RUNS_LABEL="5% loss: nc" median nc_time "$C" "$S" 10.77.0.1 15997 "$work/srv/big")
lan_fetch "5% loss"
stop_server
row_vs_nc "1 Gbit/s + 5% loss, ${LAN_MB} MiB: goodput vs nc"
