#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The fleet's deployment without touching this host: fleet.yml in check
# mode against a local inventory of two relays (only the fleet's tasks and
# the allow-list update), and BIRD's template rendered for one of them and
# parsed by bird -p.
# usage: check_fleet.sh ANSIBLE_DIR
set -eu
ansible=$1
command -v ansible-playbook >/dev/null || { echo "SKIP: ansible-playbook not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/inventory" <<INV
[oxidize_fleet]
relay-a ansible_connection=local oxidize_bgp_router_id=198.18.2.2
relay-b ansible_connection=local oxidize_bgp_router_id=198.18.3.2

[oxidize_fleet:vars]
ansible_python_interpreter=/usr/bin/python3
oxidize_anycast=["198.18.255.1/32"]
oxidize_bgp_neighbors=[{"address": "198.18.2.1", "asn": 65000}]
INV
mkdir -m 700 "$tmp/fleet"
echo "# the fleet's clients, one line each" >"$tmp/fleet/allow"
ansible-playbook -i "$tmp/inventory" "$ansible/fleet.yml" --check --diff --tags fleet,allow \
	-e oxidize_fleet_dir="$tmp/fleet" -e oxidize_conf_dir="$tmp/etc" \
	-e oxidize_bird_conf="$tmp/bird.conf" -e oxidize_tools_dir="$tmp/tools" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; exit 1; }
fail=0
for h in relay-a relay-b; do
	grep -Eq "^$h +: ok=[1-9][0-9]* .*failed=0" "$tmp/log" ||
		{ echo "FAIL: $h did not run clean"; fail=1; }
done
# Both relays were to get the same key, made once on the control machine.
key=$(cat "$tmp/fleet/server.key")
[ "$(printf '%s' "$key" | base64 -d 2>/dev/null | wc -c)" = 32 ] ||
	{ echo "FAIL: no 32-byte fleet key made"; fail=1; }
[ "$(grep -c 'TASK \[oxidize_fleet : The fleet.s server key' "$tmp/log")" = 2 ] ||
	{ echo "FAIL: the key task did not run once per relay"; fail=1; }
grep -q 'router id 198.18.3.2;' "$tmp/log" ||
	{ echo "FAIL: relay-b's BIRD configuration not in the diff"; fail=1; }
grep -q 'exit-host = 198.18.255.1/32' "$tmp/log" ||
	{ echo "FAIL: the relay is not told the anycast addresses (exit-host)"; fail=1; }
grep -q -- '--address 198.18.255.1/32 --dev oxany0' "$tmp/log" ||
	{ echo "FAIL: the announcer's settings not in the diff"; fail=1; }
[ $fail = 0 ] || { cat "$tmp/log"; exit 1; }
echo "fleet.yml --check: both relays clean, one fleet key, BIRD and announcer settings"

# The relay role's source copy, run for real into a folder here: what is
# built lands, config/ansible/ (the control machine's fleet/ with the
# fleet's private key and allow-list) does not.
printf '[oxidize_relays]\nrelay-a ansible_connection=local ansible_become=false\n' \
	>"$tmp/inventory.site"
ansible-playbook -i "$tmp/inventory.site" "$ansible/site.yml" --tags src \
	-e ansible_python_interpreter=/usr/bin/python3 -e oxidize_src="$tmp/src" \
	>"$tmp/log.site" 2>&1 || { cat "$tmp/log.site"; exit 1; }
for f in meson.build app/oxidize-server lib/oxtunnel usertools/oxidize-setup.sh \
	config/oxidize-server.service; do
	[ -e "$tmp/src/$f" ] || { echo "FAIL: $f not copied to the relay"; fail=1; }
done
if [ -e "$tmp/src/config/ansible" ] || find "$tmp/src" -name fleet -o -name server.key |
	grep -q .; then
	echo "FAIL: the control machine's Ansible tree (fleet/) reached the relay"
	fail=1
fi
[ $fail = 0 ] || { cat "$tmp/log.site"; exit 1; }
echo "site.yml --tags src: the build's inputs copied, no config/ansible or fleet/ on the relay"
if command -v bird >/dev/null; then
	/usr/bin/python3 - "$ansible" "$tmp/bird.test.conf" <<'PY'
import sys, jinja2
src = sys.argv[1] + "/roles/oxidize_fleet/templates/bird.conf.j2"
t = jinja2.Template(open(src).read(), keep_trailing_newline=True, trim_blocks=True)
open(sys.argv[2], "w").write(t.render(
    oxidize_bgp_router_id="198.51.100.11", oxidize_bird_log="syslog",
    oxidize_anycast_dev="oxany0", oxidize_bgp_asn=65010, oxidize_bgp_hold_time=9,
    oxidize_anycast=["192.0.2.1/32", "2001:db8:1::1/128"],
    oxidize_bgp_neighbors=[{"address": "198.51.100.1", "asn": 65000},
                           {"address": "2001:db8::1", "asn": 65000}]))
PY
	bird -p -c "$tmp/bird.test.conf" || { cat "$tmp/bird.test.conf"; exit 1; }
	echo "bird -p: the template parses (IPv4 and IPv6 neighbours)"
fi
