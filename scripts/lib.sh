# shellcheck shell=bash
# Shared settings and helpers for memlab's scripts. Sourced, never run.

set -euo pipefail

MEMLAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive results (kernel source, kernel builds) live outside the repo so a
# fresh clone reuses them; everything in here is keyed by what produced it.
MEMLAB_CACHE=${MEMLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memlab}
# Per-run artefacts (initramfs, console logs) stay in the work tree, ignored.
MEMLAB_OUT=${MEMLAB_OUT:-$MEMLAB_ROOT/out}

say() { printf '\033[1m[memlab]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[memlab] error:\033[0m %s\n' "$*" >&2; exit 1; }

# The kernel memlab is built against: Debian's source package, pinned
# (KVER picks one of the versions below; 7.2 is the default), or a tree of
# the user's own (KSRC=/path/to/linux, see kernel_preflight).
KVER=${KVER:-7.2}
KSRC=${KSRC:-}
case "$KVER" in
7.2) KERNEL_PKG_VERSION=7.2.13-1 KERNEL_PKG_SUITE=sid ;;
7.3) KERNEL_PKG_VERSION=7.3.4-1~bpo13+1 KERNEL_PKG_SUITE=trixie-backports ;;
*) die "KVER=$KVER: memlab pins Debian's 7.2 and 7.3 (or give KSRC=/path/to/linux)" ;;
esac
KERNEL_PKG=linux-source-$KVER
KERNEL_PKG_SHA256_FILE=$MEMLAB_ROOT/scripts/kernel/linux-source-$KVER.sha256
KERNEL_PKG_SHA256=$(cat "$KERNEL_PKG_SHA256_FILE" 2>/dev/null || true)
KERNEL_SRC=$MEMLAB_CACHE/src/$KERNEL_PKG-$KERNEL_PKG_VERSION
# Where this kernel's builds live under $MEMLAB_CACHE/kernel: the default
# (Debian 7.2) at the top, as it always was, any other kernel in a
# subdirectory of its own, so that no kernel's cache pruning touches another's.
KERNEL_CACHE_SUBDIR=
[ "$KVER" = 7.2 ] || KERNEL_CACHE_SUBDIR=debian-$KVER

# The kernel versions memlab supports (src/platform/compat.rs has a case for
# each): a tree outside this range is refused before anything is built.
KERNEL_MIN_VERSION=7.2
KERNEL_MAX_VERSION=7.3

# kernel_tree_version DIR: VERSION.PATCHLEVEL from DIR's top Makefile.
kernel_tree_version() {
	awk '$1 == "VERSION" && $2 == "=" { v = $3 } $1 == "PATCHLEVEL" && $2 == "=" { p = $3 }
		END { if (v != "" && p != "") print v "." p }' "$1/Makefile" 2>/dev/null
}

# kernel_preflight: the checks on a KSRC tree that cost milliseconds and
# would otherwise fail minutes into a build (or, worse, build a kernel
# memlab cannot load into): a kernel tree, a version memlab supports, Rust
# support, a tree not configured in place (kbuild refuses O= then).
kernel_preflight() {
	local src=$1 ver
	[ -f "$src/Makefile" ] && [ -f "$src/Kconfig" ] ||
		die "KSRC=$src is not a Linux source tree (no top-level Makefile and Kconfig)"
	ver=$(kernel_tree_version "$src")
	[ -n "$ver" ] || die "KSRC=$src: no VERSION/PATCHLEVEL in its Makefile"
	if ! version_in_range "$ver" "$KERNEL_MIN_VERSION" "$KERNEL_MAX_VERSION"; then
		die "KSRC=$src is Linux $ver; memlab supports $KERNEL_MIN_VERSION to $KERNEL_MAX_VERSION (src/platform/compat.rs)"
	fi
	[ -d "$src/rust/kernel" ] && [ -f "$src/rust/kernel/lib.rs" ] ||
		die "KSRC=$src (Linux $ver) has no Rust support: no rust/kernel/ crate (memlab is a Rust module)"
	grep -qx 'config RUST' "$src/init/Kconfig" 2>/dev/null ||
		die "KSRC=$src (Linux $ver) has no Rust support: init/Kconfig offers no RUST option"
	[ ! -e "$src/.config" ] && [ ! -d "$src/include/config" ] ||
		die "KSRC=$src is configured in place (it has .config or include/config); memlab builds with O= into its cache, which kbuild refuses then: run 'make mrproper' in it"
}

# version_in_range V MIN MAX: succeeds when MIN <= V <= MAX (MAJOR.MINOR).
version_in_range() {
	[ "$(printf '%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ] &&
		[ "$(printf '%s\n' "$1" "$3" | sort -V | head -n 1)" = "$1" ]
}

# kernel_identity: the text that names the kernel source in a build's cache
# key: Debian's package, version and sha256, or for a KSRC tree its path
# and state: a git tree's HEAD, a hash of its diff against HEAD (whatever
# the user's git config) and of its untracked files' contents; another
# tree's list of paths, sizes and mtimes (a cheap stand-in for its
# contents: an edit changes the mtime).
kernel_identity() {
	if [ -z "$KSRC" ]; then
		echo "$KERNEL_PKG=$KERNEL_PKG_VERSION $KERNEL_PKG_SHA256"
		return
	fi
	echo "tree $KSRC"
	if [ "$(git -C "$KSRC" rev-parse --show-toplevel 2>/dev/null)" = "$KSRC" ]; then
		git -C "$KSRC" rev-parse HEAD
		# Full object names: git abbreviates them to a length that grows
		# with the repository's object count, which would change the key
		# of an unchanged tree.
		git -C "$KSRC" -c core.quotePath=true diff --binary --full-index --no-ext-diff --no-color \
			--no-renames --src-prefix=a/ --dst-prefix=b/ HEAD | sha256sum
		(cd "$KSRC" && git ls-files -z --others --exclude-standard | LC_ALL=C sort -z |
			xargs -0r sha256sum) | sha256sum
	else
		(cd "$KSRC" && find . -type f ! -name .memlab-unpacked -printf '%P %s %T@\n' | LC_ALL=C sort) | sha256sum
	fi
}

# kernel_source [FLAVOUR]: where the kernel comes from, for reports:
# Debian's package and version (for the distro flavour, its prebuilt
# image), or the tree's path with its git commit (and ", dirty").
kernel_source() {
	if [ "${1:-}" = distro ]; then
		echo "Debian linux-image-$DISTRO_RELEASE $DISTRO_VERSION (prebuilt)"
		return
	fi
	if [ -z "$KSRC" ]; then
		echo "Debian $KERNEL_PKG $KERNEL_PKG_VERSION"
		return
	fi
	local src="tree $KSRC" head
	if [ "$(git -C "$KSRC" rev-parse --show-toplevel 2>/dev/null)" = "$KSRC" ]; then
		head=$(git -C "$KSRC" rev-parse --short=12 HEAD)
		src+=" (git $head"
		[ -z "$(git -C "$KSRC" status --porcelain --untracked-files=normal | head -n 1)" ] || src+=", dirty"
		src+=")"
	fi
	echo "$src"
}

# kernel_describe [FLAVOUR]: one line naming the kernel: version, source,
# flavour.
kernel_describe() {
	echo "Linux $(kernel_tree_version "$KERNEL_SRC"), $(kernel_source "${1:-}")${1:+, flavour $1}"
}

if [ -n "$KSRC" ]; then
	[ -d "$KSRC" ] || die "KSRC=$KSRC is not a directory"
	KSRC=$(cd "$KSRC" && pwd -P)
	KERNEL_SRC=$KSRC
	kernel_preflight "$KSRC"
	KERNEL_CACHE_SUBDIR=tree-$(basename "$KSRC")-$(printf '%s' "$KSRC" | sha256sum | cut -c1-8)
fi
# Per-run artefacts in $MEMLAB_OUT (module objects, initramfs, console
# logs) of a kernel other than the default carry this after the flavour, so
# that two kernels' runs (KVER, KSRC, an A/B bench) never share one.
KERNEL_SUFFIX=${KERNEL_CACHE_SUBDIR:+-$KERNEL_CACHE_SUBDIR}

LLVM_SUFFIX=-19
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
BINDGEN_VERSION=0.73.2
export PATH=$HOME/.cargo/bin:$PATH

mkdir -p "$MEMLAB_CACHE" "$MEMLAB_OUT"

# flavour_arch FLAVOUR: the kernel's ARCH for a flavour (x86 for the QEMU
# flavours test, bench and distro, um for uml); dies on an unknown flavour.
# lab_flavour: the lab's kernel (demo, shell, run, and make test's lab
# checks): Debian's prebuilt 7.2 one (distro), unless KVER or KSRC names
# another kernel, which the bench flavour builds. (The Makefile's
# LAB_FLAVOUR states the same rule.)
lab_flavour() {
	if [ -z "$KSRC" ] && [ "$KVER" = 7.2 ]; then echo distro; else echo bench; fi
}

flavour_arch() {
	case "$1" in
	test | bench | distro) echo x86 ;;
	uml) echo um ;;
	*) die "unknown kernel flavour '$1' (test, bench, distro or uml)" ;;
	esac
}

# The distro flavour: Debian's own prebuilt kernel (image, .config,
# Module.symvers and modules of linux 7.2.13-1, the source package the
# other flavours build), pinned in $DISTRO_DEBS and unpacked into
# $DISTRO_SRC by fetch-kernel.sh --distro. Nothing of it is compiled:
# build-kernel.sh prepares a tree for out-of-tree modules from its config
# (the Rust crates' metadata, which Debian's headers do not ship).
DISTRO_DEBS=$MEMLAB_ROOT/scripts/kernel/distro.debs
DISTRO_RELEASE=$(awk '$1 ~ /^linux-binary-/ { sub(/^linux-binary-/, "", $1); print $1 }' "$DISTRO_DEBS")
DISTRO_VERSION=$(awk '$1 ~ /^linux-binary-/ { print $2 }' "$DISTRO_DEBS")
DISTRO_SRC=$MEMLAB_CACHE/src/linux-image-$DISTRO_RELEASE-$DISTRO_VERSION

# distro_rustc_text: the rustc that built Debian's kernel, as its config
# names it (CONFIG_RUSTC_VERSION_TEXT), e.g. "rustc 1.97.1 (8bab26f4f
# 2026-07-14) (built from a source tarball)".
distro_rustc_text() {
	sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$DISTRO_SRC/.config"
}

# distro_rustc_env: exports what builds Rust for Debian's kernel: rustup's
# toolchain of the release Debian used (setup-toolchain.sh --rustc installs
# it) first on PATH, and RUSTC_FORCE_RUSTC_VERSION. Debian's rustc is built
# from the same commit, but its version text ends in "(built from a source
# tarball)", and rustc hashes that text into every crate's symbol names;
# told Debian's text, rustup's rustc names the kernel's Rust symbols as
# Debian's kernel exports them (build-kernel.sh checks it).
distro_rustc_env() {
	local text release sysroot
	text=$(distro_rustc_text)
	release=$(awk '{ print $2 }' <<<"$text")
	[ -n "$release" ] || die "no CONFIG_RUSTC_VERSION_TEXT in $DISTRO_SRC/.config"
	sysroot=$(rustup run "$release" rustc --print sysroot 2>/dev/null) ||
		die "rustup has no $release toolchain (run scripts/setup-toolchain.sh --rustc $release)"
	export PATH=$sysroot/bin:$PATH RUSTC_FORCE_RUSTC_VERSION=${text#rustc }
}

# kernel_make FLAVOUR MAKE-ARGS...: make, for a kernel of FLAVOUR, with the
# compilers that built it: clang/LLVM 19 and rustup's default rustc for
# memlab's own kernels; for distro, gcc (Debian's kernel is a GCC build:
# the module's few C objects need no more than the machine's gcc) and
# Debian's rustc (distro_rustc_env). The distro module carries no BTF:
# bookworm's pahole cannot make a Rust module's, and the kernel loads a
# module without it. memlab's own kernels have no BTF and are configured
# and used as if no pahole were installed (PAHOLE names none), so that the
# one the distro flavour installs changes neither their config nor, through
# kbuild's "pahole version differs" warning, their module builds.
kernel_make() {
	local flavour=$1
	shift
	if [ "$flavour" = distro ]; then
		(distro_rustc_env && make ARCH=x86 CONFIG_DEBUG_INFO_BTF_MODULES= "$@")
	else
		make ARCH="$(flavour_arch "$flavour")" LLVM="$LLVM_SUFFIX" PAHOLE=memlab-no-pahole "$@"
	fi
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
		probe=(qemu-system-x86_64 -accel kvm -cpu host -bios qboot.rom -m 256M -smp 1 -kernel "$bzimage"
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
