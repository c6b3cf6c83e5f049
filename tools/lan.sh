#!/bin/bash
# An emulated LAN in network namespaces: one client host and N server hosts
# on a Linux bridge that lives in its own namespace, so nothing touches the
# host's interfaces. Addresses 10.77.0.0/24: client .1, servers .11, .12, ...
#
#   lan.sh up TAG N          create (TAG keeps parallel runs apart)
#   lan.sh rate TAG I MBIT   limit server I's link (tbf on its egress)
#   lan.sh loss TAG PCT      drop PCT% of UDP and TCP packets at random on the client's ingress (nft)
#   lan.sh clear TAG N       remove rate limits and loss rules
#   lan.sh down TAG          remove everything (namespaces take their veths along)
#   lan.sh check             exit 0 if namespaces can be made here
set -eu
cmd=${1:-}; tag=${2:-ux}
ns() { echo "${tag}-$1"; }

up() {
  local n=$1
  ip netns add "$(ns br)"
  ip -n "$(ns br)" link add br0 type bridge
  ip -n "$(ns br)" link set br0 up
  ip -n "$(ns br)" link set lo up
  local hosts="c" i
  for i in $(seq 1 "$n"); do hosts="$hosts s$i"; done
  for h in $hosts; do
    ip netns add "$(ns "$h")"
    ip -n "$(ns "$h")" link set lo up
    ip link add "${tag}${h}" type veth peer name eth0 netns "$(ns "$h")"
    ip link set "${tag}${h}" netns "$(ns br)"
    ip -n "$(ns br)" link set "${tag}${h}" master br0 up
    if [ "$h" = c ]; then addr=10.77.0.1; else addr=10.77.0.$((10 + ${h#s})); fi
    ip -n "$(ns "$h")" addr add "$addr/24" broadcast 10.77.0.255 dev eth0
    ip -n "$(ns "$h")" link set eth0 up
  done
}

rate() {
  # burst of 64 KiB, queue bounded in time: a slow link, not a lossy one
  ip netns exec "$(ns "s$1")" tc qdisc replace dev eth0 root tbf rate "${2}mbit" burst 64kb latency 50ms
}

loss() {
  ip netns exec "$(ns c)" nft -f - <<NFT
table inet uxloss {
  chain input { type filter hook input priority 0; meta l4proto { tcp, udp } numgen random mod 100 < $1 drop; }
}
NFT
}

clear() {
  local i
  for i in $(seq 1 "$1"); do
    ip netns exec "$(ns "s$i")" tc qdisc del dev eth0 root 2>/dev/null || true
  done
  ip netns exec "$(ns c)" nft delete table inet uxloss 2>/dev/null || true
}

down() {
  local n
  for n in $(ip netns list | awk '{print $1}' | grep -E "^${tag}-(br|c|s[0-9]+)$"); do
    ip netns del "$n" 2>/dev/null || true
  done
}

check() {
  [ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
  command -v ip >/dev/null || { echo "needs iproute2"; exit 1; }
  local t="uxchk$$"
  ip netns add "$t" 2>/dev/null || { echo "cannot create network namespaces"; exit 1; }
  ip netns del "$t"
}

case "$cmd" in
  up) up "${3:?N}";;
  rate) rate "${3:?I}" "${4:?MBIT}";;
  loss) loss "${3:?PCT}";;
  clear) clear "${3:?N}";;
  down) down;;
  check) check;;
  *) sed -n '2,13p' "$0"; exit 2;;
esac
