#!/bin/sh
# One loopback transfer under valgrind: no errors, nothing definitely lost.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
exec valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite lua5.4 tools/valgrind_transfer.lua
