#!/bin/sh
# The release's source rock, installable without the network:
#   luarocks --lua-version 5.4 install build/udpxfer-VERSION-1.src.rock
# `luarocks pack` of udpxfer-VERSION-1.rockspec, its source archive made
# here from this checkout's files (those git tracks or does not ignore)
# instead of downloaded.
set -eu
cd "$(dirname "$0")/.."
ver=$(sed -n 's/^M.VERSION = "\(.*\)"$/\1/p' lua/udpxfer/cli.lua)
spec=udpxfer-$ver-1.rockspec
[ -f "$spec" ] || { echo "rock.sh: no $spec for version $ver (lua/udpxfer/cli.lua)" >&2; exit 1; }
name=udpxfer-$ver
out=$(pwd)/build/rock
rm -rf "$out"
mkdir -p "$out/$name"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$out/$name"
tar -C "$out" -czf "$out/$name.tar.gz" "$name"
sed "s|^  url = .*|  url = \"file://$out/$name.tar.gz\",|" "$spec" > "$out/$spec"
(cd "$out" && luarocks --lua-version 5.4 pack "$spec" >/dev/null)
mv "$out/$name-1.src.rock" build/
echo "build/$name-1.src.rock"
