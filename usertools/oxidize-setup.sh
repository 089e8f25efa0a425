#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Prepare a Debian 12 host for building, testing and running Oxidize.
# Idempotent: a second run on a prepared host takes seconds.
#
#  1. installs the Debian packages the build, tests and tools need (waiting
#     up to 10 minutes, OX_APT_LOCK_WAIT seconds, for another apt's lock);
#  2. reserves 2 MB hugepages and mounts hugetlbfs and bpffs where missing;
#  3. provides a DPDK whose net_af_xdp PMD supports shared UMEM (FLASH):
#     Debian 12's package was built without it, so where the installed PMD
#     lacks it, DPDK is rebuilt from Debian's own source package of the
#     installed version, with the feature on and only the drivers Oxidize
#     uses, into $OX_DPDK_PREFIX (default /opt/oxidize/dpdk), and cached;
#  4. fetches Debian 12's cloud kernel package (apt-get download, never
#     installed) and unpacks it into $OX_WGVM_DIR (default /opt/oxidize/wgvm):
#     QEMU boots it as a test peer whose kernel has WireGuard, which the
#     host's kernel need not have.
#
# Usage: oxidize-setup.sh [--hugepages N] [--no-dpdk-build] [--quiet]
# Prints, last, the PKG_CONFIG_PATH to build against.

set -euo pipefail

OX_DPDK_PREFIX=${OX_DPDK_PREFIX:-/opt/oxidize/dpdk}
OX_SRC_CACHE=${OX_SRC_CACHE:-/var/cache/oxidize}
OX_WGVM_DIR=${OX_WGVM_DIR:-/opt/oxidize/wgvm}
WGVM_META=linux-image-cloud-amd64	# the package that names the current cloud kernel
HUGEPAGES=1536		# 2 MB pages: 3 GB: tests, demo and a relay with 1M sessions (2,648 MB measured with 2 queues)
BUILD_DPDK=1
QUIET=0

# Drivers in the rebuilt DPDK: virtual devices for the testbed, the native
# PMDs a bare-metal operator needs, and nothing else.
DPDK_DRIVERS=bus/pci,bus/vdev,mempool/ring,net/af_xdp,net/i40e,net/ice,net/ixgbe,net/null,net/ring,net/tap
# Its applications: testpmd (the benchmark's floors) and dumpcap, which
# captures a running relay's ports and must come from the same build. DPDK
# links its apps statically with every library, and a secondary process
# that registers a tail queue the primary lacks cannot attach: dumpcap is
# linked again against this build's shared libraries (build_dumpcap).
DPDK_APPS=test-pmd,dumpcap

PACKAGES=(
	ansible-core
	bird2
	build-essential
	busybox-static
	clang
	clang-format
	dpdk
	dpdk-dev
	dnsmasq-base
	dpkg-dev
	ethtool
	iperf3
	xxd
	iproute2
	iputils-ping
	libbpf-dev
	libclang-rt-14-dev
	libipsec-mb-dev
	libdpdk-dev
	libnuma-dev
	libpcap-dev
	libsodium-dev
	libssl-dev
	libxdp-dev
	llvm
	meson
	ninja-build
	nftables
	python3-cryptography
	python3-flake8
	openssl
	pkg-config
	python3
	python3-matplotlib
	python3-prometheus-client
	python3-pyelftools
	qemu-system-x86
	qrencode
	shellcheck
	tcpdump
	wireguard-go
	wireguard-tools
	xdp-tools
)

log() { [ "$QUIET" = 1 ] || echo "oxidize-setup: $*" >&2; }
die() { echo "oxidize-setup: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--hugepages) HUGEPAGES=$2; shift 2 ;;
	--no-dpdk-build) BUILD_DPDK=0; shift ;;
	--quiet) QUIET=1; shift ;;
	-h|--help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, reserves hugepages, mounts bpffs)"

export DEBIAN_FRONTEND=noninteractive
# Another apt (unattended-upgrades on a cloud VM's first boot) may hold
# dpkg's lock: install waits for it (DPkg::Lock::Timeout); update does
# not honour that for its lists lock, so it is retried here.
APT_LOCK_WAIT=${OX_APT_LOCK_WAIT:-600}
APT_OPTS=(-o "DPkg::Lock::Timeout=$APT_LOCK_WAIT")
APT_UPDATED=0
apt_update_once() {
	local waited=0 out
	[ "$APT_UPDATED" = 0 ] || return 0
	while ! out=$(apt-get "${APT_OPTS[@]}" update -q 2>&1 >/dev/null); do
		if ! grep -q "Could not get lock" <<<"$out" || [ "$waited" -ge "$APT_LOCK_WAIT" ]; then
			echo "$out" >&2
			die "apt-get update failed"
		fi
		[ "$waited" = 0 ] &&
			log "another apt process holds its lock; waiting up to $APT_LOCK_WAIT s"
		sleep 5
		waited=$((waited + 5))
	done
	APT_UPDATED=1
}

install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	log "installing ${missing[*]}"
	apt_update_once
	apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${missing[@]}" \
		>/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

setup_hugepages() {
	local nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages cur
	[ -w "$nr" ] || die "no 2 MB hugepage support in this kernel ($nr)"
	cur=$(cat "$nr")
	if [ "$cur" -lt "$HUGEPAGES" ]; then
		echo "$HUGEPAGES" > "$nr"
		cur=$(cat "$nr")
		[ "$cur" -ge "$HUGEPAGES" ] ||
			log "warning: only $cur of $HUGEPAGES hugepages could be reserved"
	fi
	if ! grep -q '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
		log "mounted hugetlbfs on /dev/hugepages"
	fi
	if ! grep -q '^[^ ]* /sys/fs/bpf bpf ' /proc/mounts; then
		mount -t bpf bpf /sys/fs/bpf
		log "mounted bpffs on /sys/fs/bpf"
	fi
	if [ -w /proc/sys/net/core/bpf_jit_enable ]; then
		echo 1 > /proc/sys/net/core/bpf_jit_enable
	fi
}

# The one probe of the PMD, flash-bind.py's: no PMD under $1 counts as
# lacking it.
HERE=$(cd "$(dirname "$0")" && pwd)
pmd_lacks_shared_umem() {
	! python3 "$HERE/flash-bind.py" --shared-umem "$1" >/dev/null
}

dpdk_build_id() {
	echo "v2 $1 $DPDK_DRIVERS apps=$DPDK_APPS -DRTE_NET_AF_XDP_SHARED_UMEM" \
		"$(dpkg-query -W -f='${Version}' libbpf-dev libxdp-dev | tr '\n' ' ')"
}

build_dpdk() {
	local ver upstream src stamp id
	ver=$(dpkg-query -W -f='${Version}' libdpdk-dev)
	id=$(dpdk_build_id "$ver")
	stamp=$OX_DPDK_PREFIX/.oxidize-build
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$id" ] &&
	   ! pmd_lacks_shared_umem "$OX_DPDK_PREFIX"; then
		log "DPDK $ver with shared UMEM already in $OX_DPDK_PREFIX"
		return 0
	fi
	upstream=${ver%%-*}
	upstream=${upstream#*:}
	mkdir -p "$OX_SRC_CACHE"
	chmod 755 "$OX_SRC_CACHE"
	src=$OX_SRC_CACHE/dpdk-$upstream
	if [ ! -f "$src/meson.build" ]; then
		if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			log "enabling Debian source packages"
			sed -e 's/^Types: deb$/Types: deb-src/' \
				/etc/apt/sources.list.d/debian.sources \
				> /etc/apt/sources.list.d/oxidize-deb-src.sources 2>/dev/null ||
				die "no deb-src entries and no debian.sources to derive them from"
			APT_UPDATED=0
		fi
		apt_update_once
		log "fetching Debian source of dpdk $ver"
		(cd "$OX_SRC_CACHE" && apt-get "${APT_OPTS[@]}" source -q "dpdk=$ver" >/dev/null 2>&1) ||
			return 1
		[ -f "$src/meson.build" ] || return 1
	fi
	log "building DPDK $upstream with shared UMEM into $OX_DPDK_PREFIX (about 3 minutes)"
	rm -rf "$OX_SRC_CACHE/build" "$OX_DPDK_PREFIX"
	(cd "$src" &&
	 meson setup "$OX_SRC_CACHE/build" --prefix="$OX_DPDK_PREFIX" --libdir=lib \
		-Dbuildtype=release -Dplatform=generic -Dtests=false -Denable_docs=false \
		-Dexamples= -Denable_apps="$DPDK_APPS" -Denable_drivers="$DPDK_DRIVERS" \
		-Dc_args=-DRTE_NET_AF_XDP_SHARED_UMEM &&
	 ninja -C "$OX_SRC_CACHE/build" &&
	 ninja -C "$OX_SRC_CACHE/build" install) > "$OX_SRC_CACHE/build.log" 2>&1 ||
		die "DPDK build failed; see $OX_SRC_CACHE/build.log"
	pmd_lacks_shared_umem "$OX_DPDK_PREFIX" &&
		die "rebuilt net_af_xdp still lacks shared UMEM; see $OX_SRC_CACHE/build.log"
	echo "$id" > "$stamp"
	rm -rf "$OX_SRC_CACHE/build"
	log "DPDK with shared UMEM installed in $OX_DPDK_PREFIX"
}

# The kernel for the WireGuard test peer: the image package the meta-package
# points at, unpacked (not installed); kept until that changes.
fetch_wgvm_kernel() {
	local pkg stamp="$OX_WGVM_DIR/.package" tmp
	pkg=$(apt-cache depends "$WGVM_META" 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		log "no $WGVM_META in the archive: the kernel WireGuard test will skip"
		return 0
	fi
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkg" ]; then
		return 0
	fi
	log "fetching $pkg for the kernel WireGuard test peer into $OX_WGVM_DIR"
	tmp=$(mktemp -d)
	# apt's sandbox user must be able to write where it downloads.
	chmod 755 "$tmp"
	if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -q "$pkg" >/dev/null 2>&1); then
		rm -rf "$tmp"
		log "cannot download $pkg: the kernel WireGuard test will skip"
		return 0
	fi
	rm -rf "$OX_WGVM_DIR"
	mkdir -p "$OX_WGVM_DIR"
	if ! dpkg-deb -x "$tmp"/*.deb "$tmp/x" ||
		! mv "$tmp/x/boot" "$tmp/x/lib" "$OX_WGVM_DIR/"; then
		die "cannot unpack $pkg into $OX_WGVM_DIR"
	fi
	rm -rf "$tmp"
	echo "$pkg" > "$stamp"
}

# dpdk-dumpcap from the DPDK source, linked against $OX_DPDK_PREFIX's
# shared libraries (only those it uses, as the relay does), with the library
# path baked in as RPATH so that the drivers EAL loads find the same build's
# libraries, not Debian's.
build_dumpcap() {
	local bin=$OX_DPDK_PREFIX/bin/dpdk-dumpcap src
	if [ -x "$bin" ] && ldd "$bin" 2>/dev/null | grep -q "$OX_DPDK_PREFIX/lib/librte_pdump"; then
		return 0
	fi
	src=$(find "$OX_SRC_CACHE" -maxdepth 3 -path "*/dpdk-*/app/dumpcap" -type d 2>/dev/null | head -1)
	if [ -z "$src" ]; then
		log "no DPDK source in $OX_SRC_CACHE: no dpdk-dumpcap for a running relay"
		return 0
	fi
	log "linking dpdk-dumpcap against $OX_DPDK_PREFIX's shared libraries"
	# shellcheck disable=SC2046 # pkg-config's flags are words
	cc -O2 -D_GNU_SOURCE -DALLOW_EXPERIMENTAL_API -include rte_config.h \
		-o "$bin.new" "$src/main.c" \
		$(PKG_CONFIG_PATH=$OX_DPDK_PREFIX/lib/pkgconfig pkg-config --cflags --libs libdpdk) \
		-lpcap -Wl,--disable-new-dtags,-rpath,"$OX_DPDK_PREFIX/lib" ||
		die "cannot link dpdk-dumpcap"
	mv "$bin.new" "$bin"
}

install_packages "${PACKAGES[@]}"
setup_hugepages
fetch_wgvm_kernel

PKGCFG=""
if pmd_lacks_shared_umem /usr/lib/x86_64-linux-gnu/dpdk; then
	if [ "$BUILD_DPDK" = 1 ]; then
		if build_dpdk; then
			PKGCFG=$OX_DPDK_PREFIX/lib/pkgconfig
			build_dumpcap
		else
			log "no DPDK source to be had: building against the stock package;" \
			    "FLASH will use one UMEM per queue"
		fi
	fi
else
	log "installed net_af_xdp already supports shared UMEM"
fi
echo "PKG_CONFIG_PATH=$PKGCFG"
