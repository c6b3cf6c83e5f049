#!/bin/sh
# Install the Debian packages udpxfer needs, if any is missing. Debian's archive only.
# `deps.sh bench` adds what the benchmarks compare against, `deps.sh fuzz` libFuzzer.
set -e
need=""
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
extra=""
case "${1:-}" in
  bench) extra="netcat-openbsd iperf3 time openssl uftp udpcast" ;;
  fuzz) extra="clang libclang-rt-14-dev" ;;
esac
for p in lua5.4 liblua5.4-dev libssl-dev lua-busted lua-dkjson lua-argparse lua-cqueues lua-luv lua-socket luarocks gcc make pkg-config iproute2 nftables bc valgrind rsync $extra; do
  have "$p" || need="$need $p"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages:$need (run as root, or: sudo apt-get install$need)" >&2
    exit 1
  fi
  echo "installing:$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $need >/dev/null
fi
# Plain `lua` runs the examples (lua examples/get.lua): make it Lua 5.4,
# which installing lua-busted (Lua 5.1) would otherwise take over.
if [ "$(readlink -f /usr/bin/lua 2>/dev/null)" != /usr/bin/lua5.4 ]; then
  if [ "$(id -u)" = 0 ] && update-alternatives --set lua-interpreter /usr/bin/lua5.4 >/dev/null 2>&1; then
    update-alternatives --set lua-compiler /usr/bin/luac5.4 >/dev/null 2>&1 || true
    echo "'lua' now runs Lua 5.4 (update-alternatives --set lua-interpreter /usr/bin/lua5.4)"
  else
    echo "note: 'lua' is not Lua 5.4; run the examples with lua5.4, or as root:" \
      "update-alternatives --set lua-interpreter /usr/bin/lua5.4" >&2
  fi
fi
