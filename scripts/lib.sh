# shellcheck shell=bash
# Shared settings and helpers for memlab's scripts. Sourced, never run.

set -euo pipefail

MEMLAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive results (kernel source, kernel builds) live outside the repo so a
# fresh clone reuses them; everything in here is keyed by what produced it.
MEMLAB_CACHE=${MEMLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memlab}
# Per-run artefacts (initramfs, console logs) stay in the work tree, ignored.
MEMLAB_OUT=${MEMLAB_OUT:-$MEMLAB_ROOT/out}

# The kernel memlab is built against: Debian's source package, pinned.
KERNEL_PKG=linux-source-7.2
KERNEL_PKG_VERSION=7.2.13-1
KERNEL_PKG_SUITE=sid
KERNEL_PKG_SHA256=$(cat "$MEMLAB_ROOT/scripts/kernel/linux-source.sha256" 2>/dev/null || true)
KERNEL_SRC=$MEMLAB_CACHE/src/$KERNEL_PKG-$KERNEL_PKG_VERSION

LLVM_SUFFIX=-19
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
BINDGEN_VERSION=0.73.2
export PATH=$HOME/.cargo/bin:$PATH

mkdir -p "$MEMLAB_CACHE" "$MEMLAB_OUT"

say() { printf '\033[1m[memlab]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[memlab] error:\033[0m %s\n' "$*" >&2; exit 1; }

# flavour_arch FLAVOUR: the kernel's ARCH for a flavour (x86 for the QEMU
# flavours test and bench, um for uml); dies on an unknown flavour.
flavour_arch() {
	case "$1" in
	test | bench) echo x86 ;;
	uml) echo um ;;
	*) die "unknown kernel flavour '$1' (test, bench or uml)" ;;
	esac
}

# kvm_unusable FLAVOUR: succeeds, printing why, when KVM cannot run
# memlab's guest here; fails (prints nothing) when it can. Cheap checks
# first, so that a machine without KVM builds no kernel for the question;
# then one probe boot of FLAVOUR's x86-64 kernel with no initramfs (it
# panics at once, and -no-reboot turns that into an exit) under a 20 s
# limit, remembered per host boot and kernel build, so a KVM that hangs
# costs seconds, once. MEMLAB_KVM_PROBE_FAKE=hang makes the probe boot a
# command that never answers, with a 3 s limit (the test of the fallback on
# machines where KVM works).
kvm_unusable() {
	local limit=20 probe stamp
	if [ "${MEMLAB_KVM_PROBE_FAKE:-}" = hang ]; then
		limit=3 probe=(sleep 600) stamp=$MEMLAB_OUT/kvm-probe-fake
		rm -f "$stamp"
	else
		[ -e /dev/kvm ] || { echo "no /dev/kvm"; return 0; }
		[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "/dev/kvm is not read-writable by $(id -un)"; return 0; }
		grep -qwE 'vmx|svm' /proc/cpuinfo ||
			{ echo "the CPU shows no vmx/svm flag: nested virtualisation is off"; return 0; }
		local bzimage boot_id
		bzimage=$(bash "$MEMLAB_ROOT/scripts/build-kernel.sh" "$1")/arch/x86/boot/bzImage
		probe=(qemu-system-x86_64 -accel kvm -cpu host -m 256M -smp 1 -kernel "$bzimage"
			-append "console=ttyS0 panic=-1" -display none -monitor none -no-reboot -serial stdio)
		boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
		stamp=$MEMLAB_CACHE/kvm-probe-$boot_id-$(stat -c '%n %Y' "$bzimage" | sha256sum | cut -c1-12)
	fi
	if [ ! -f "$stamp" ]; then
		local out
		out=$(timeout -k 2 "$limit" "${probe[@]}" </dev/null 2>&1 | tr -d '\r')
		if grep -q 'Kernel panic' <<<"$out"; then
			echo ok >"$stamp"
		else
			echo "a KVM probe boot did not reach the kernel's root mount in $limit s" >"$stamp"
		fi
	fi
	[ "$(cat "$stamp")" = ok ] && return 1
	cat "$stamp"
	return 0
}

# The fragmentation benchmark's VM (scripts/bench.sh): zone Normal of this
# many MiB (QEMU: the guest's RAM above 4 GiB) and the mirror's pool_mb,
# chosen so that both zones Normal start with about the same free memory.
FRAG_NORMAL_MB_DEFAULT=300
FRAG_POOL_MB_DEFAULT=256
# UML has zone Normal only, so the whole pool comes out of it: the pool is
# the mirror's arena, and the guest gets twice that plus what the kernel,
# its memory map and the initramfs take (measured: FRAG_UML_OVERHEAD_MB).
FRAG_UML_POOL_MB=112
FRAG_UML_OVERHEAD_MB=30

# frag_vm_args NORMAL POOL [ENGINE [MODULE_ARGS]]: sets FRAG_VM, run-vm.sh's
# arguments for that VM: on QEMU (tcg, kvm) NORMAL MiB of zone Normal above
# 2 GiB below 4 GiB and pool_mb=POOL; on uml, equal arenas of
# FRAG_UML_POOL_MB (bench.sh runs it, test.sh checks it). MODULE_ARGS are
# more module parameters (diverge's raised pin caps).
frag_vm_args() {
	local more=${4:+ $4}
	if [ "${3:-tcg}" = uml ]; then
		FRAG_VM=(--mem "$((2 * FRAG_UML_POOL_MB + FRAG_UML_OVERHEAD_MB))M"
			--module-args "pool_mb=$FRAG_UML_POOL_MB$more")
	else
		FRAG_VM=(--lowmem 2048M --mem "$((2048 + $1))M" --module-args "pool_mb=$2$more")
	fi
}

# A replay session charges the most its stream holds to the file's pin cap
# and the module's budget, for the whole run: diverge's streams fill most
# of an arena, so its VM raises both caps (a few hundred MiB at most are
# ever held).
DIVERGE_CAPS="max_pinned_mb=2048 max_pinned_total_mb=4096"

# A QEMU -m size (a bare number is MiB; M or G suffix) in MiB.
mib() {
	case "$1" in
	*G) echo $((10#${1%G} * 1024)) ;;
	*M) echo $((10#${1%M})) ;;
	*) echo $((10#$1)) ;;
	esac
}

# Run a long command with its output in LOG, printing elapsed time and the
# log's last line every few seconds so a 10-minute step is never silent.
run_with_progress() {
	local label=$1 log=$2
	shift 2
	local start=$SECONDS
	"$@" >"$log" 2>&1 &
	local pid=$!
	local tty_out=0
	[ -t 2 ] && tty_out=1
	local last_print=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		local el=$((SECONDS - start))
		local line
		line=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-90)
		if [ "$tty_out" = 1 ]; then
			printf '\r\033[K[memlab] %s %dm%02ds  %s' "$label" $((el / 60)) $((el % 60)) "$line" >&2
		elif [ $((SECONDS - last_print)) -ge 30 ]; then
			# Not a terminal (CI): one line every 30 s is progress enough.
			printf '[memlab] %s %dm%02ds  %s\n' "$label" $((el / 60)) $((el % 60)) "$line" >&2
			last_print=$SECONDS
		fi
	done
	local rc=0
	wait "$pid" || rc=$?
	[ "$tty_out" = 1 ] && printf '\r\033[K' >&2
	local el=$((SECONDS - start))
	if [ "$rc" != 0 ]; then
		tail -n 40 "$log" >&2
		die "$label failed after ${el}s (exit $rc); full log: $log"
	fi
	say "$label done in $((el / 60))m$((el % 60))s (log: $log)"
}
