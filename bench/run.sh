#!/bin/bash
# All benchmarks: bench/speed.sh (issue 4) and bench/parallel.sh (issue 3).
# Writes bench/RESULTS.md. Parts needing root and namespaces skip with a message.
set -eu
cd "$(dirname "$0")/.."
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
BENCH_ROWS=$rows bash bench/speed.sh
BENCH_ROWS=$rows bash bench/parallel.sh
{
  echo "# Benchmark results"
  echo
  echo "\`make bench\` on $(uname -n), $(nproc) cores, $(date -u +%Y-%m-%d). Every ratio is against a"
  echo "baseline measured in the same run."
  echo
  echo "| case | baseline | udpxfer | ratio | target | met |"
  echo "|---|---|---|---|---|---|"
  cat "$rows"
} > bench/RESULTS.md
echo "wrote bench/RESULTS.md"
