#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# oxidize-client's tunnel against kudp-relay, in two namespaces of its own:
#
#   netns oxc-r-PID                              netns oxc-c-PID
#   kudp-relay :51820 (keepalive 2 s, GSO)       oxidize-client up -> tun oxt0
#     answers ping to 100.64.0.1,                  100.64.0.2/10
#     fd6f:7869:647a::1                            fd6f:7869:647a::2/64, mtu 1420
#   oxr0 198.18.5.1/24 ------------ veth ------------ oxc0 198.18.5.2/24
#
# Checks: handshake, ping v4 (0% loss) and v6 through the tunnel, the
# tun's addresses and MTU, the all-traffic routes with the relay pinned to
# the veth, recovery after the relay is killed -9 and restarted, a flood
# whose replies arrive as GSO super-datagrams (the client's GRO split), a
# key not on the allow-list gets nothing, SIGTERM exits 0 and cleans up.
# Nothing leaves the two namespaces; both are always deleted.
#
# usage: test_client_tunnel.sh OXIDIZE_CLIENT KUDP_RELAY
set -u
client=$1 relay=$2

skip() { echo "SKIP: $1"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, TUN)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v ping >/dev/null || skip "no ping"

R=oxc-r-$$ C=oxc-c-$$
tmp=$(mktemp -d /tmp/oxc-tunnel.XXXXXX)
relay_pid="" client_pid="" fail=0

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	for p in $client_pid $relay_pid; do
		kill -9 "$p" 2>/dev/null
	done
	ip netns del "$C" 2>/dev/null
	ip netns del "$R" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

check() { if [ "$1" = 0 ]; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
inr() { ip netns exec "$R" "$@"; }
inc() { ip netns exec "$C" "$@"; }

# wait_for FILE PATTERN SECONDS: 0 once PATTERN is in FILE.
wait_for() {
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_exit PID SECONDS: the exit status, or 124 (killed) after SECONDS.
wait_exit() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}

start_relay() {
	# Not through inr: $! must be the relay itself (ip netns exec execs it).
	ip netns exec "$R" "$relay" --port 51820 --key "$tmp/relay.key" --allow "$tmp/allow" \
		--keepalive 2 --duration 150 --gso --verbose >"$tmp/$1" 2>&1 &
	relay_pid=$!
	wait_for "$tmp/$1" "ready" 5
}

# Keys, private ones readable by root only.
umask 077
for k in relay alice stranger; do
	"$client" genkey >"$tmp/$k.key" && chmod 600 "$tmp/$k.key" || exit 1
	"$client" pubkey <"$tmp/$k.key" >"$tmp/$k.pub" || exit 1
done
echo "$(cat "$tmp/alice.pub") alice" >"$tmp/allow"

ip netns add "$R" && ip netns add "$C" || exit 1
ip link add name oxr0 netns "$R" type veth peer name oxc0 netns "$C" || exit 1
inr ip addr add 198.18.5.1/24 dev oxr0 && inr ip link set oxr0 up && inr ip link set lo up &&
	inc ip addr add 198.18.5.2/24 dev oxc0 && inc ip link set oxc0 up &&
	inc ip link set lo up || exit 1
# A default route the all-traffic mode must leave alone.
inc ip route add default via 198.18.5.254 dev oxc0 || exit 1

start_relay relay.log
check $? "kudp-relay listens"

# Most settings from a file; the command line wins over its duration.
cat >"$tmp/client.conf" <<EOF
# oxidize-client test configuration
server-key = $(cat "$tmp/relay.pub")
key = $tmp/alice.key
tun = oxt0
route = 0.0.0.0/0     # all traffic
route = 10.99.0.0/16
duration = 1
EOF
ip netns exec "$C" "$client" up --config "$tmp/client.conf" --server 198.18.5.1:51820 \
	--duration 120 --verbose 2>"$tmp/client.log" &
client_pid=$!

wait_for "$tmp/client.log" "handshake complete: 100.64.0.2/10 fd6f:7869:647a::2/64 mtu 1420" 10
check $? "handshake complete, addresses and MTU from the relay"
grep "handshake complete\|UDP GRO" "$tmp/client.log" | head -2

out=$(inc ping -c 5 -i 0.2 -W 2 100.64.0.1 2>&1)
echo "$out" | grep -q " 0% packet loss"
check $? "ping 100.64.0.1 through the tunnel: 0% loss"
inc ping -6 -c 3 -i 0.2 -W 2 fd6f:7869:647a::1 >/dev/null 2>&1
check $? "ping fd6f:7869:647a::1 through the tunnel"

addr=$(inc ip addr show dev oxt0)
echo "$addr" | grep -q "inet 100.64.0.2/10" &&
	echo "$addr" | grep -q "inet6 fd6f:7869:647a::2/64" &&
	echo "$addr" | grep -q "mtu 1420" && echo "$addr" | grep -q "<POINTOPOINT,.*UP" &&
	! echo "$addr" | grep -q "inet6 fe80"
check $? "oxt0 is up with 100.64.0.2/10, fd6f:7869:647a::2/64, mtu 1420, no link-local"

inc ip route get 192.0.2.7 | grep -q "dev oxt0" && inc ip route get 10.99.1.1 | grep -q "dev oxt0"
check $? "0.0.0.0/0 and 10.99.0.0/16 go through the tunnel"
inc ip route show 198.18.5.1 | grep -q "dev oxc0" &&
	inc ip route get 198.18.5.1 | grep -q "dev oxc0"
check $? "the relay's own address is pinned to the veth"
inc ip route show default | grep -q "via 198.18.5.254 dev oxc0"
check $? "the default route is left as it was"

# The relay dies and comes back with no memory; the client notices that
# its pings go unanswered (3 s) and handshakes again by itself.
kill -9 "$relay_pid" 2>/dev/null
wait "$relay_pid" 2>/dev/null
relay_pid=
t0=$(date +%s)
start_relay relay2.log
check $? "kudp-relay restarted"
ok=1
while [ $(($(date +%s) - t0)) -lt 25 ]; do
	if inc ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1; then
		ok=0
		break
	fi
done
took=$(($(date +%s) - t0))
[ $ok = 0 ] && [ $took -le 20 ]
check $? "ping works again ${took} s after the relay restarted"
grep -q "relay 198.18.5.1:51820: traffic unanswered for [0-9]* s, re-handshaking" \
	"$tmp/client.log"
check $? "client logged the unanswered traffic"
out=$(inc ping -c 5 -i 0.2 -W 2 100.64.0.1 2>&1)
echo "$out" | grep -q " 0% packet loss"
check $? "ping after recovery: 0% loss"

# Bursts of 32 requests: the relay answers each burst with one GSO send,
# which reaches the client's GRO socket whole and must be split.
out=$(inc ping -q -f -l 32 -c 3000 -s 1000 -W 2 100.64.0.1 2>&1)
echo "$out" | grep -q " 0% packet loss"
check $? "flood ping of 3000 x 1000 bytes, 32 in flight: 0% loss"

# A key the relay does not list gets no tunnel.
stranger_conf="--server 198.18.5.1 --server-key $(cat "$tmp/relay.pub") --key $tmp/stranger.key"
# shellcheck disable=SC2086
ip netns exec "$C" "$client" up $stranger_conf --tun oxs0 --duration 4 2>"$tmp/stranger.log" &
spid=$!
wait_exit $spid 10
rc=$?
! grep -q "handshake complete" "$tmp/stranger.log" && [ $rc = 0 ]
check $? "a key not on the allow-list gets no handshake (and --duration exits 0)"
! inc ip link show oxs0 >/dev/null 2>&1
check $? "its TUN device is gone"

# SIGTERM: DISCONNECT, routes and TUN removed, exit 0.
kill -TERM "$client_pid" 2>/dev/null
wait_exit "$client_pid" 5
rc=$?
client_pid=
[ $rc = 0 ]
check $? "SIGTERM: client exits 0 (got $rc)"
! inc ip link show oxt0 >/dev/null 2>&1
check $? "SIGTERM: oxt0 removed"
[ -z "$(inc ip route show 198.18.5.1)" ] && [ -z "$(inc ip route show 0.0.0.0/1)" ] &&
	[ -z "$(inc ip route show 10.99.0.0/16)" ]
check $? "SIGTERM: the client's routes are gone"
grep -q "^oxidize-client: exit: rx [0-9]* datagrams" "$tmp/client.log"
check $? "client printed its summary line"

kill -TERM "$relay_pid" 2>/dev/null
wait_exit "$relay_pid" 5
relay_pid=
grep -q '"disconnect": 1,' "$tmp/relay2.log" && grep -q '"unknown_peer": [1-9]' "$tmp/relay2.log"
check $? "relay saw the DISCONNECT and refused the stranger"
if grep -q "UDP GRO off" "$tmp/client.log"; then
	echo "ok: (UDP GRO off in this kernel: GRO split not exercised)"
elif grep -q '"gso_sends": [1-9]' "$tmp/relay2.log"; then
	grep -q "^oxidize-client: exit: .* gro [1-9]" "$tmp/client.log"
	check $? "GSO replies arrived as GRO super-datagrams and were split: $(grep -o \
		'"gso_sends": [0-9]*' "$tmp/relay2.log"), client $(grep -o 'gro [0-9]*' \
		"$tmp/client.log" | tail -1)"
else
	echo "ok: (the relay never had two replies at once: GRO split not exercised)"
fi

! grep -q "runtime error\|Sanitizer" "$tmp"/*.log
check $? "no sanitizer reports in the logs"

if [ $fail != 0 ]; then
	for f in client.log stranger.log relay.log relay2.log; do
		echo "--- $f"
		cat "$tmp/$f"
	done
fi
exit $fail
