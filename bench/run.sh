#!/bin/bash
# All benchmarks: bench/speed.sh (one transfer), bench/parallel.sh (several
# servers), bench/sync.sh (folder sync against rsync) and bench/loops.sh
# (cqueues and luv loops) and bench/keyed.sh (shared-key mode).
# Writes bench/RESULTS.md. Parts needing root and namespaces skip with a message.
set -eu
cd "$(dirname "$0")/.."
rows=$(mktemp)
runs=$(mktemp)
trap 'rm -f "$rows" "$runs"' EXIT
BENCH_ROWS=$rows BENCH_RUNS=$runs bash bench/speed.sh
BENCH_ROWS=$rows bash bench/parallel.sh
BENCH_ROWS=$rows bash bench/sync.sh
BENCH_ROWS=$rows bash bench/loops.sh
BENCH_ROWS=$rows BENCH_RUNS=$runs bash bench/keyed.sh
{
  echo "# Benchmark results"
  echo
  echo "\`make bench\` on $(uname -n), $(nproc) cores, $(date -u +%Y-%m-%d). Every ratio is against a"
  echo "baseline measured in the same run."
  echo
  echo "| case | baseline | udpxfer | ratio | target | met |"
  echo "|---|---|---|---|---|---|"
  cat "$rows"
  if [ -s "$runs" ]; then
    echo
    echo "Every run of the repeated cases, in seconds, sorted (the median is the third),"
    echo "and the CPU time the hypervisor stole from this VM during them (/proc/stat):"
    echo
    echo "| case | runs | steal |"
    echo "|---|---|---|"
    cat "$runs"
  fi
} > bench/RESULTS.md
echo "wrote bench/RESULTS.md"
