#!/usr/bin/env bash
# Usage: mkinitramfs.sh MODULE.ko MEMLABCTL OUT.cpio.gz [MEMLAB_FUZZ [KMODS]]
# A busybox-static initramfs holding the module, memlabctl and tests/vm/init
# (and the ioctl fuzzer as /bin/memlab-fuzz, if given: run-vm.sh always
# gives it, so `memlab-fuzz` runs in every VM), and the kernel's own
# modules in the directory KMODS (*.ko and their load order, the file
# order) at /lib/modules/kernel, which init loads before mounting /share.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local ko=$1 ctl=$2 out=$3 fuzz=${4:-} kmods=${5:-}
	# busybox-static's binary: the initramfs has no libc for a dynamic one.
	local busybox=/bin/busybox
	dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
		die "busybox-static is not installed (run scripts/setup-toolchain.sh)"

	local root
	root=$(mktemp -d)
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	local applet
	for applet in $("$busybox" --list); do
		[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
	done
	cp "$MEMLAB_ROOT/tests/vm/init" "$root/init"
	chmod 755 "$root/init"
	cp "$ko" "$root/lib/modules/rust_memlab.ko"
	cp "$ctl" "$root/bin/memlabctl"
	# Fuzzing (memlab.cmd=fuzz, or by hand): the ioctl fuzzer.
	[ -z "$fuzz" ] || cp "$fuzz" "$root/bin/memlab-fuzz"
	if [ -n "$kmods" ]; then
		mkdir -p "$root/lib/modules/kernel"
		cp "$kmods"/order "$kmods"/*.ko "$root/lib/modules/kernel/"
	fi
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0) | gzip -1 >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$root"
}
main "$@"; exit
