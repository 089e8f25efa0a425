#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# oxidize-client: keys against RFC 7748's X25519 vector, bad input refused,
# `up`'s settings checked before it needs root, and `ping` against the
# kernel-UDP relay on loopback (no root needed). The tunnel itself is
# test/netns/test_client_tunnel.sh.
# usage: test_client.sh CLIENT KUDP_RELAY
set -u
client=$1 kudp=$2
fail=0
check() { if [ "$1" = 0 ]; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

# RFC 7748 section 6.1, Alice: private key and the public key it gives.
priv=$(printf '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a' | xxd -r -p | base64)
want=$(printf '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a' | xxd -r -p | base64)
got=$(echo "$priv" | "$client" pubkey)
[ "$got" = "$want" ]; check $? "pubkey of RFC 7748's private key is its public key"

k=$("$client" genkey)
[ ${#k} = 44 ]; check $? "genkey prints 44 base64 characters"
last=$(printf '%s' "$k" | base64 -d | od -An -tu1 -j31 -N1 | tr -d ' ')
first=$(printf '%s' "$k" | base64 -d | od -An -tu1 -N1 | tr -d ' ')
[ $((first & 7)) = 0 ] && [ $((last & 192)) = 64 ]; check $? "genkey clamps the scalar"
[ "$("$client" genkey)" != "$k" ]; check $? "two keys differ"
p1=$(echo "$k" | "$client" pubkey) && p2=$(echo "$k" | "$client" pubkey) && [ "$p1" = "$p2" ]
check $? "pubkey is deterministic"

! echo "not-a-key" | "$client" pubkey >/dev/null 2>&1
check $? "a malformed key is refused"
! echo "${k%?}" | "$client" pubkey >/dev/null 2>&1
check $? "a truncated key is refused"
"$client" ping >/dev/null 2>&1
[ $? = 2 ]; check $? "ping without a host is a usage error"

# `up`: every refusal happens before a TUN device or route is touched.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$client" up --help | grep -q "Usage: oxidize-client up"
check $? "up --help prints its usage"
"$client" up >/dev/null 2>&1
[ $? = 2 ]; check $? "up without --server, --server-key, --key is a usage error"
(umask 077; "$client" genkey >"$tmp/key")
skey=$("$client" genkey | "$client" pubkey)
"$client" up --server 192.0.2.1 --server-key "${skey%?}" --key "$tmp/key" >/dev/null 2>&1
[ $? = 2 ]; check $? "up refuses a malformed --server-key"
"$client" up --server 192.0.2.1 --server-key "$skey" --key "$tmp/key" --route 10.0.0.1/8 \
	>/dev/null 2>&1
[ $? = 2 ]; check $? "up refuses a route with host bits set"
"$client" up --server 192.0.2.1 --server-key "$skey" --key "$tmp/key" --mtu 100 >/dev/null 2>&1
[ $? = 2 ]; check $? "up refuses an MTU out of range"
"$client" up --server 192.0.2.1:0 --server-key "$skey" --key "$tmp/key" >/dev/null 2>&1
[ $? = 2 ]; check $? "up refuses port 0"
err=$("$client" up --server-key "$skey" --key "$tmp/key" --server 192.0.2.1 --server 192.0.2.2 \
	--server 192.0.2.3 --server 192.0.2.4 --server 192.0.2.5 --server 192.0.2.6 \
	--server 192.0.2.7 --server 192.0.2.8 --server 192.0.2.9 2>&1)
[ $? = 2 ] && echo "$err" | grep -q -- "--server: more than 8 relays"
check $? "up takes up to 8 relays and says so at the ninth"
printf 'server = 192.0.2.1, [2001:db8::1]:5000 192.0.2.2:0\n' >"$tmp/list.conf"
err=$("$client" up --config "$tmp/list.conf" --server-key "$skey" --key "$tmp/key" 2>&1)
[ $? = 2 ] && echo "$err" | grep -q "list.conf:1: invalid value"
check $? "a config file's list of relays: port 0 of the third refused"
printf 'server = 192.0.2.1, 192.0.2.2 192.0.2.3,192.0.2.4\nserver = %s\n' \
	"[2001:db8::1]:5000 a.example b.example:7 c.example, d.example" >"$tmp/list.conf"
err=$("$client" up --config "$tmp/list.conf" --server-key "$skey" --key "$tmp/key" 2>&1)
[ $? = 2 ] && echo "$err" | grep -q "list.conf:2: more than 8 relays"
check $? "a config file's relays, by commas or blanks, over lines, count to 8"
printf 'server = 192.0.2.1\nbogus = 1\n' >"$tmp/bad.conf"
err=$("$client" up --config "$tmp/bad.conf" 2>&1)
[ $? = 2 ] && echo "$err" | grep -q "bad.conf:2: unknown key 'bogus'"
check $? "a config file's unknown key is refused, naming the line"
cp "$tmp/key" "$tmp/open.key" && chmod 644 "$tmp/open.key"
err=$("$client" up --server 192.0.2.1 --server-key "$skey" --key "$tmp/open.key" 2>&1)
[ $? = 1 ] && echo "$err" | grep -q "chmod 600"
check $? "up refuses a private key others can read"

port=$((20000 + $$ % 20000))
"$kudp" --port $port --duration 20 >/dev/null &
kpid=$!
sleep 0.3
out=$("$client" ping 127.0.0.1 --port $port --count 50 --interval 0 --flows 4 --size 200)
rc=$?
echo "$out" | tail -2
[ $rc = 0 ] && echo "$out" | grep -q "50 sent, 50 received, 0.0% loss"
check $? "ping over loopback: 50 probes, 50 answers"
echo "$out" | grep -q "rtt us: p50 [0-9.]* p90 [0-9.]* p99 [0-9.]* p99.9"
check $? "ping prints RTT percentiles"
out=$("$client" --ping 127.0.0.1 --port $port --count 3 --interval 0) &&
	echo "$out" | grep -q "3 sent, 3 received"
check $? "--ping is the ping subcommand"
kill $kpid 2>/dev/null
wait $kpid 2>/dev/null

"$client" ping 127.0.0.1 --port $port --count 2 --interval 0 --timeout 100 >/dev/null
[ $? = 1 ]; check $? "ping with no relay exits 1"
exit $fail
