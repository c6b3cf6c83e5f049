#!/bin/bash
# A fetch driven by luv and by cqueues (examples/luv.lua, examples/cqueues.lua)
# against the same fetch with run() (examples/get.lua's way), 200 MiB over
# loopback, median of 5 each, in the same run. Appends rows to $BENCH_ROWS.
set -eu
cd "$(dirname "$0")/.."
ROWS=${BENCH_ROWS:-/dev/null}
SIZE=$((200 << 20))
median() { sort -n | sed -n 3p; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >> "$ROWS"; printf '%-40s %-16s %-16s ratio %s (target %s) %s\n' "$@"; }
run_time() { # the fetch with run(): a server and a get in one process, like the examples
  lua5.4 - "$SIZE" <<'LUA'
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "lua/?.so;" .. package.cpath
local udpxfer = require "udpxfer"
local size = tonumber(arg[1])
local dir = io.popen("mktemp -d /tmp/udpxfer-run.XXXXXX"):read("l")
os.execute(("mkdir -p %s/srv %s/out && head -c %d /dev/urandom > %s/srv/f.bin"):format(dir, dir, size, dir))
local srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
local g = assert(udpxfer.get { name = "f.bin", out = dir .. "/out", servers = { "127.0.0.1:" .. srv:port() }, broadcast = false })
local t0 = udpxfer.core.now()
while not g:step() do
  srv:step()
  udpxfer.core.poll({ g:pollfd(), g:events(), srv:pollfd(), srv:events() }, math.min(g:timeout() or 1, srv:timeout() or 1))
end
print(("%.3f"):format(udpxfer.core.now() - t0))
g:close() srv:close()
os.execute("rm -rf " .. dir)
LUA
}
loop_time() { lua5.4 "examples/$1.lua" "$SIZE" | awk '{print $(NF-2)}'; }
for l in luv cqueues; do lua5.4 -e "require '$l'" 2>/dev/null || { echo "bench/loops.sh: $l not installed: skipped"; continue; }
  base=$(for _ in 1 2 3 4 5; do run_time; done | median)
  t=$(for _ in 1 2 3 4 5; do loop_time "$l"; done | median)
  r=$(echo "$t / $base" | bc -l)
  met=$([ "$(echo "$r <= 1.10" | bc -l)" = 1 ] && echo yes || echo NO)
  row "200 MiB loopback fetch in a $l loop vs a poll loop" "$(printf %.2f "$base") s" "$(printf %.2f "$t") s" "$(printf %.2f "$r")x" "<= 1.10x" "$met"
done
