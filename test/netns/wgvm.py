# SPDX-License-Identifier: BSD-3-Clause
"""The Linux kernel's WireGuard as a test peer: Debian 12's cloud kernel
booted in QEMU (TCG, no KVM needed) from a small initramfs that holds
busybox, `wg`, `ip`, the wireguard module and what it depends on, and a
script that brings up wg0 and runs the checks it is given, printing
"OXVM ok NAME" / "OXVM fail NAME" on the serial console.

The kernel package is fetched and unpacked by usertools/oxidize-setup.sh
into WGVM_DIR (boot/vmlinuz-*, lib/modules/*); the kernel this machine runs
needs no WireGuard module of its own.
"""

import os
import re
import shutil
import stat
import subprocess
import threading
import time

WGVM_DIR = os.environ.get("OX_WGVM_DIR", "/opt/oxidize/wgvm")
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
# What the guest needs: the NIC, and WireGuard with its dependencies.
MODULES = ["virtio_pci", "virtio_net", "wireguard"]


def missing():
    """Why a kernel peer cannot run here, or None."""
    if shutil.which(QEMU) is None:
        return "%s not installed (Debian package qemu-system-x86)" % QEMU
    if not os.path.exists(BUSYBOX) or "not a dynamic" not in subprocess.run(
            ["ldd", BUSYBOX], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True).stdout:
        return "no static busybox (Debian package busybox-static)"
    for tool in ("wg", "ip"):
        if shutil.which(tool) is None:
            return "%s not installed" % tool
    if kernel() is None:
        return ("no Debian kernel unpacked in %s (usertools/oxidize-setup.sh fetches "
                "linux-image-cloud-amd64's image there)" % WGVM_DIR)
    return None


def kernel():
    """(vmlinuz, modules directory) of the unpacked kernel, or None."""
    boot = os.path.join(WGVM_DIR, "boot")
    mods = os.path.join(WGVM_DIR, "lib", "modules")
    if not os.path.isdir(boot) or not os.path.isdir(mods):
        return None
    for f in sorted(os.listdir(boot)):
        if f.startswith("vmlinuz-"):
            ver = f[len("vmlinuz-"):]
            if os.path.isdir(os.path.join(mods, ver)):
                return os.path.join(boot, f), os.path.join(mods, ver)
    return None


def _norm(name):
    return name.replace("-", "_")


def module_order(moddir, wanted):
    """The .ko files for `wanted` and what they depend on (read from each
    module's .modinfo depends=), dependencies first."""
    files = {}
    for root, _, names in os.walk(moddir):
        for n in names:
            if n.endswith(".ko"):
                files[_norm(n[:-3])] = os.path.join(root, n)
    order, seen = [], set()

    def visit(name, chain):
        name = _norm(name)
        if name in seen:
            return
        if name not in files:
            # Built into the kernel: nothing to load.
            seen.add(name)
            return
        if name in chain:
            raise RuntimeError("module dependency loop at %s" % name)
        with open(files[name], "rb") as f:
            data = f.read()
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
        for dep in (m.group(1).decode().split(",") if m and m.group(1) else []):
            visit(dep, chain + [name])
        seen.add(name)
        order.append(files[name])

    for w in wanted:
        visit(w, [])
    return order


def _libs(binary):
    """A dynamic binary's libraries and loader (absolute paths)."""
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True).stdout
    return sorted(set(re.findall(r"(/\S+\.so[.\d]*)", out)))


class Cpio:
    """A newc archive, as the kernel unpacks an initramfs."""

    def __init__(self):
        self.parts, self.ino, self.dirs = [], 1, set()

    def _entry(self, name, mode, data=b""):
        self.ino += 1
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.parts.append(hdr.encode() + name.encode() + b"\0")
        self._pad()
        self.parts.append(data)
        self._pad()

    def _pad(self):
        n = sum(len(p) for p in self.parts)
        self.parts.append(b"\0" * ((4 - n % 4) % 4))

    def mkdir(self, path):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def copy(self, src, dst=None, mode=None):
        with open(os.path.realpath(src), "rb") as f:
            data = f.read()
        self.file(dst or src, data, mode if mode is not None else
                  (os.stat(src).st_mode & 0o777))

    def symlink(self, path, target):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def bytes(self):
        self._entry("TRAILER!!!", 0)
        return b"".join(self.parts)


# The guest: modules, wg0, then each check of /checks ("NAME<TAB>COMMAND"),
# then it stays up for the host's own checks until QEMU is stopped.
INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
    insmod "$m" || echo "OXVM fail insmod $m"
done
. /oxvm.env
ip link set lo up
ip link set eth0 up
ip addr add "$LAN" dev eth0
ip link add wg0 type wireguard || echo "OXVM fail wireguard-link"
if [ -f /psk ]; then PSK="preshared-key /psk"; else PSK=""; fi
wg set wg0 private-key /key peer "$PEER" $PSK endpoint "$ENDPOINT" \
    allowed-ips "$ALLOWED" persistent-keepalive 5 || echo "OXVM fail wg-set"
ip addr add "$WG4/32" dev wg0
ip addr add "$WG6/128" dev wg0
ip link set wg0 mtu "$MTU" up
for r in $ROUTES; do ip route add "$r" dev wg0; done
for a in $LOOPBACK; do ip addr add "$a" dev lo; done
echo "OXVM ready $(uname -r)"
TAB=$(printf '\t')
while IFS="$TAB" read -r name cmd; do
    [ -n "$name" ] || continue
    if sh -c "$cmd" < /dev/null > /tmp/out 2>&1; then
        echo "OXVM ok $name"
    else
        echo "OXVM fail $name"
        sed 's/^/OXVM   /' /tmp/out
    fi
done < /checks
echo "OXVM handshakes $(wg show wg0 latest-handshakes)"
echo "OXVM done"
while :; do sleep 3600; done
"""


def build_initramfs(path, env, checks, key, psk=None):
    """Write an initramfs for one boot: `env` (NAME=value lines the init
    script reads), `checks` [(name, shell command)], the guest's private
    key (base64) and its preshared key."""
    vmlinuz, moddir = kernel()
    c = Cpio()
    c.copy(BUSYBOX, "/bin/busybox", 0o755)
    libs = set()
    for tool in (shutil.which("wg"), shutil.which("ip")):
        c.copy(tool, "/bin/" + os.path.basename(tool) + ".real", 0o755)
        libs.update(_libs(tool))
    for lib in sorted(libs):
        c.copy(lib, lib, 0o755)
    # busybox's own ip and wg would shadow them: wrappers first on PATH.
    c.file("/usr/local/bin/ip", b"#!/bin/busybox sh\nexec /bin/ip.real \"$@\"\n", 0o755)
    c.file("/usr/local/bin/wg", b"#!/bin/busybox sh\nexec /bin/wg.real \"$@\"\n", 0o755)
    order = []
    for ko in module_order(moddir, MODULES):
        dst = "/lib/modules/" + os.path.basename(ko)
        c.copy(ko, dst, 0o644)
        order.append(dst)
    c.file("/modules.order", ("\n".join(order) + "\n").encode())
    c.file("/oxvm.env", "".join("%s=\"%s\"\n" % kv for kv in env.items()).encode() +
           b"PATH=/usr/local/bin:/bin\nexport PATH\n")
    c.file("/checks", "".join("%s\t%s\n" % nc for nc in checks).encode())
    c.file("/key", (key + "\n").encode(), 0o600)
    if psk:
        c.file("/psk", (psk + "\n").encode(), 0o600)
    c.file("/init", INIT.encode(), 0o755)
    with open(path, "wb") as f:
        f.write(c.bytes())
    return vmlinuz


class Guest:
    """QEMU with the kernel and an initramfs, its NIC a TAP in namespace ns
    (created by QEMU there, named tap), its console collected."""

    def __init__(self, tb, ns, tap, initrd, vmlinuz, mac, offload):
        self.lines = []
        dev = "virtio-net-pci,netdev=n0,mac=%s" % mac
        if not offload:
            # Full checksums from the guest, as a remote host's.
            dev += ",csum=off,guest_csum=off,gso=off,guest_tso4=off,guest_tso6=off"
        argv = [QEMU, "-accel", "tcg", "-m", "256", "-smp", "1", "-nographic", "-no-reboot",
                "-kernel", vmlinuz, "-initrd", initrd,
                "-append", "console=ttyS0 panic=-1 loglevel=4",
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off,vnet_hdr=on"
                % tap, "-device", dev]
        self.proc = tb.popen(ns, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace")
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\r\n"))

    @property
    def log(self):
        return "\n".join(self.lines)

    def wait_for(self, text, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if any(text in ln for ln in self.lines):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return any(text in ln for ln in self.lines)
            time.sleep(0.1)
        return False

    def result(self, name):
        """True, False, or None (not run)."""
        for ln in self.lines:
            if ln.startswith("OXVM ok %s" % name) and ln.split()[2] == name:
                return True
            if ln.startswith("OXVM fail %s" % name) and ln.split()[2] == name:
                return False
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
