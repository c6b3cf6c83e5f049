#!/bin/bash
# Run the busted suite and close with "N passed, N failed, N skipped",
# counted from busted's own TAP results.
set -u
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
${UDPXFER_LUA:-lua5.4} /usr/bin/busted -o TAP "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
total_ok=$(grep -c '^ok ' "$out")
skipped=$(grep -c '^ok [0-9]* - # SKIP' "$out")
failed=$(grep -c '^not ok ' "$out")
passed=$((total_ok - skipped))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "# busted exited with status $rc without a failing test: counted as one failure"
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
