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

# The fragmentation benchmark's VM (scripts/bench.sh): zone Normal of this
# many MiB (the guest's RAM above 4 GiB) and the mirror's pool_mb, chosen so
# that both zones Normal start with about the same free memory.
FRAG_NORMAL_MB_DEFAULT=300
FRAG_POOL_MB_DEFAULT=256

# FRAG_VM: run-vm.sh's arguments for that VM with NORMAL MiB of zone Normal
# (above 2 GiB below 4 GiB) and pool_mb=POOL (bench.sh runs it, test.sh
# checks it).
frag_vm_args() {
	FRAG_VM=(--lowmem 2048M --mem "$((2048 + $1))M" --module-args "pool_mb=$2")
}

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
