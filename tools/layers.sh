#!/bin/sh
# The layers, checked: csrc/engine has no I/O and no Lua (it includes only
# its own headers, and its objects call no system I/O), csrc/host has no
# Lua, csrc/lua only translates (its objects make no system call), the
# module exports one symbol, and no C file passes 700 lines.
set -eu
cd "$(dirname "$0")/.."
fail=0
say() { echo "layers: $*" >&2; fail=1; }

for f in csrc/engine/*.[ch]; do
  if grep -nE '#include *"[^"]*/' "$f"; then say "$f: an engine file includes only engine headers"; fi
  if grep -nE '#include *<(lua|lauxlib|lualib|unistd|fcntl|pthread|time|poll|sys/(epoll|stat|mman|time)|ifaddrs|netdb|dirent|openssl/rand)\.h>' "$f"; then
    say "$f: an engine file includes an I/O, thread, clock or Lua header"
  fi
done
for f in csrc/host/*.[ch]; do
  if grep -nE '#include *("lua/|<(lua|lauxlib|lualib)\.h>)' "$f"; then say "$f: a host file includes a Lua header"; fi
done

# What the engine's objects may call: memory, strings, formatting, OpenSSL's
# hashes, MACs, ciphers and KDFs, and the compiler's 128-bit division
# (budget.c). Anything else (sockets, files, threads, clocks) is I/O.
allowed='^(mem(cpy|set|cmp|move|chr)|str(len|cmp|ncmp|chr|rchr|error|ncpy|tol|toul)|inet_(ntop|pton)|v?snprintf|(m|c|re)alloc|free|qsort|abort|__assert_fail|__stack_chk_fail|EVP_[A-Za-z0-9_]+|HMAC|CRYPTO_[a-z_]+|OPENSSL_cleanse|OSSL_PARAM_construct_[a-z0-9_]+)$'
if ls build/rel/engine/*.o >/dev/null 2>&1; then
  defined=$(nm --defined-only build/rel/engine/*.o | awk 'NF==3 {print $3}' | sort -u)
  bad=$(nm -u build/rel/engine/*.o | awk 'NF==2 {print $2}' | sort -u | grep -Ev "$allowed" |
        grep -vxF "$defined" || true)
  [ -z "$bad" ] || say "engine objects call outside the engine: $bad"
fi
# What the binding's objects may call besides Lua, the host and each other:
# memory, strings, formatting. Every system call lives in the host layer.
bind_allowed='^(lua_[a-z_]+|luaL_[a-z_]+|ux_[a-z0-9_]+|mem(cpy|set|cmp|move|chr)|str(len|cmp|ncmp|chr|rchr|error|dup)|v?snprintf|(m|c|re)alloc|free|__stack_chk_fail|_GLOBAL_OFFSET_TABLE_)$'
if ls build/rel/lua/*.o >/dev/null 2>&1; then
  defined=$(nm --defined-only build/rel/lua/*.o | awk 'NF==3 {print $3}' | sort -u)
  bad=$(nm -u build/rel/lua/*.o | awk 'NF==2 {print $2}' | sort -u | grep -Ev "$bind_allowed" |
        grep -vxF "$defined" || true)
  [ -z "$bad" ] || say "binding objects call outside Lua and the host: $bad"
fi
if [ -f lua/udpxfer/core.so ]; then
  syms=$(nm -D --defined-only lua/udpxfer/core.so | awk '$2 ~ /^[TDB]$/ {print $3}' | sort -u)
  [ "$syms" = "luaopen_udpxfer_core" ] || say "core.so exports more than luaopen_udpxfer_core: $syms"
fi
for f in csrc/*/*.c; do
  n=$(wc -l < "$f")
  [ "$n" -le 700 ] || say "$f has $n lines (700 at most)"
done
[ "$fail" -eq 0 ] && echo "layers: engine (no I/O, no Lua), host (no Lua), binding (no system call), one exported symbol, files <= 700 lines"
exit "$fail"
