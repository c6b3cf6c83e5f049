#!/bin/sh
# A source rock, installable without the network:
#   luarocks --lua-version 5.4 install build/udpxfer-VERSION-1.src.rock
# It holds a versioned rockspec (udpxfer-scm-1.rockspec with the version
# and the archive's name filled in) and the tracked files of this checkout.
set -eu
cd "$(dirname "$0")/.."
ver=$(sed -n 's/^M.VERSION = "\(.*\)"$/\1/p' lua/udpxfer/cli.lua)
[ -n "$ver" ] || { echo "rock.sh: no M.VERSION in lua/udpxfer/cli.lua" >&2; exit 1; }
name=udpxfer-$ver
out=$(pwd)/build/rock
rm -rf "$out"
mkdir -p "$out/$name"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$out/$name"
tar -C "$out" -czf "$out/$name.tar.gz" "$name"
sed -e "s/^version = .*/version = \"$ver-1\"/" \
    -e "s|^  url = .*|  url = \"file://$out/$name.tar.gz\", dir = \"$name\",|" \
    udpxfer-scm-1.rockspec > "$out/$name-1.rockspec"
(cd "$out" && luarocks --lua-version 5.4 pack "$name-1.rockspec" >/dev/null)
mv "$out/$name-1.src.rock" build/
echo "build/$name-1.src.rock"
