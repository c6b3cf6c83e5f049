#!/bin/sh
# make demo: serve a sample folder, fetch a file over loopback, verify it.
# Discovery is broadcast to 127.255.255.255 only: nothing leaves this host.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/udpxfer-demo.XXXXXX)
port=${UDPXFER_DEMO_PORT:-10526}
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/data" "$work/received"
head -c 8388608 /dev/urandom > "$work/data/sample.bin"
echo "sample folder: $work/data (8 MiB sample.bin)"
lua5.4 bin/udpxfer serve "$work/data" --port "$port" > "$work/server.log" 2>&1 &
server_pid=$!
# wait for the server's "serving" line instead of sleeping a fixed time
for _ in $(seq 1 50); do grep -q "^serving" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^serving" "$work/server.log" || { cat "$work/server.log"; exit 1; }
lua5.4 bin/udpxfer get sample.bin --port "$port" --broadcast 127.255.255.255 --out "$work/received"
a=$(openssl dgst -sha256 -r "$work/data/sample.bin" | cut -d' ' -f1)
b=$(openssl dgst -sha256 -r "$work/received/sample.bin" | cut -d' ' -f1)
echo "sent     sha256 $a"
echo "received sha256 $b"
cat "$work/server.log"
[ "$a" = "$b" ] && cmp -s "$work/data/sample.bin" "$work/received/sample.bin"
echo "demo OK: identical"
