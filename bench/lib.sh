# What the benchmark scripts share: arithmetic, formatting, result rows.
# Sourced; ROWS names the markdown file rows are appended to.

# bc wants plain decimals: 1e6 and the like are expanded first.
calc() { echo "$*" | sed -E "s/([0-9.]+)e\+?([0-9]+)/(\1*10^\2)/g" | bc -l; }
fmt() { printf "%.${2:-2}f" "$1"; }
row() { # case baseline udpxfer ratio target met
  printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >> "$ROWS"
  printf '%-46s %-28s %-28s ratio %s (target %s) %s\n' "$@"
}
met() { [ "$(calc "$1")" = 1 ] && echo yes || echo NO; }
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }

wait_for() { # file pattern
  local _
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2
  exit 1
}

# nc from SEND_NS to RECV_NS (prefixes: "" or "ip netns exec X"); prints seconds.
nc_time() { # recv_prefix send_prefix addr port file
  local t0 t1 _
  $1 nc -l "$3" "$4" > /dev/null &
  local lp=$!
  for _ in $(seq 1 200); do $1 ss -ltn 2>/dev/null | grep -q "$3:$4 " && break; sleep 0.02; done
  t0=$(date +%s.%N)
  $2 nc -N "$3" "$4" < "$5"
  wait "$lp"
  t1=$(date +%s.%N)
  calc "$t1 - $t0"
}

# Run a command 5 times; prints the line of its output with the median first
# field, and every run's first field on stderr. Five, not three: on a VM,
# writing fresh memory (udpxfer's output; not nc's or openssl's) is now and
# then 4x slower for a whole run, and three runs let two such runs decide.
# With RUNS_LABEL set, the runs also go to $BENCH_RUNS as a markdown row.
# The CPU time the hypervisor took from this VM during them goes along:
# a busy host slows a CPU-bound fetch more than nc or openssl.
median() {
  local i runs list s0 stolen
  s0=$(steal_ticks)
  runs=$(for i in 1 2 3 4 5; do "$@"; done | sort -n)
  stolen=$(calc "($(steal_ticks) - $s0) / $(getconf CLK_TCK)")
  list=$(echo "$runs" | awk '{printf "%.2f ", $1}')
  echo "  runs: $list(steal $(fmt "$stolen") s)" >&2
  [ -n "${RUNS_LABEL:-}" ] && printf '| %s | %s| %s s |\n' "$RUNS_LABEL" "$list" "$(fmt "$stolen")" >> "$RUNS"
  echo "$runs" | sed -n 3p
}

# Prints "elapsed user sys maxrss_kb" of a command.
timed() {
  /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" > /dev/null
  cat "$work/t"
}
