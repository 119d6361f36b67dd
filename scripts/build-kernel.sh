#!/usr/bin/env bash
# Build (or reuse) a memlab kernel. Usage: build-kernel.sh test|bench|uml|distro
# Prints the build directory (usable as KDIR) on stdout. With
# MEMLAB_CACHED_ONLY=1 it builds nothing: exit 3 when the build is missing.
#   test   x86-64 for QEMU: KASAN, lockdep, kmemleak (base + test fragments)
#   bench  x86-64 for QEMU: production-like (base + bench fragments)
#   uml    User-Mode Linux (ARCH=um): production-like, runs natively as a
#          host process (um + bench fragments; no DMA zones, no DMA API)
#   distro x86-64 for QEMU: Debian's own prebuilt kernel, not compiled here
#          (build_distro prepares a tree for out-of-tree modules from it)
# The build lives in the cache, keyed by kernel version, the config fragments
# and the compiler versions, so a matching build is reused and any change
# rebuilds in a fresh directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The whole script is one function, read before it runs, and the line that
# calls it exits (bash reads a line whole before running it), so editing
# this file during a long build cannot derail the running copy.
main() {
	flavour=${1:-test}
	if [ "$flavour" = distro ]; then
		build_distro
		return
	fi
	frag_dir=$MEMLAB_ROOT/scripts/kernel
	local arch frags target
	arch=$(flavour_arch "$flavour")
	case "$flavour" in
	test | bench) frags=("$frag_dir/base.config" "$frag_dir/$flavour.config") target=bzImage ;;
	uml) frags=("$frag_dir/um.config" "$frag_dir/bench.config") target=vmlinux ;;
	esac

	bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh"
	bash "$MEMLAB_ROOT/scripts/fetch-kernel.sh"

	key=$( {
		kernel_identity
		cat "${frags[@]}"
		rustc --version
		"clang$LLVM_SUFFIX" --version | head -n 1
		bindgen --version
	} | sha256sum | cut -c1-16)
	local cache=$MEMLAB_CACHE/kernel${KERNEL_CACHE_SUBDIR:+/$KERNEL_CACHE_SUBDIR}
	build=$cache/$flavour-$key
	build_ready "$cache" "$flavour" "$build" && return 0

	[ -z "$KERNEL_CACHE_SUBDIR" ] || say "kernel: $(kernel_describe "$flavour")"
	case "$arch" in
	um) say "building the $flavour kernel (ARCH=um) into $build (cold: 6-10 min on 2 cores, measured)" ;;
	*) say "building the $flavour kernel into $build (cold: 6-20 min on 2 cores, measured, as fast as the host CPU is)" ;;
	esac
	rm -rf "$build"
	mkdir -p "$build"
	kmake=(kernel_make "$flavour" -C "$KERNEL_SRC" O="$build" -j"$(($(nproc) + 1))")

	"${kmake[@]}" tinyconfig >"$build/config.log" 2>&1
	"$KERNEL_SRC/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" \
		"${frags[@]}" >>"$build/config.log" 2>&1
	"${kmake[@]}" olddefconfig >>"$build/config.log" 2>&1

	# merge_config silently drops options whose dependencies are not met; a
	# kernel without what we asked for must not be used. A later fragment
	# may override an earlier one (the test kernel turns ACPI off): the last
	# value asked for is the one checked.
	missing=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=n) opt=${line%%=*}; grep -q "^$opt=" "$build/.config" && { say "wanted $line, got $(grep "^$opt=" "$build/.config")"; missing=1; } ;;
		CONFIG_*) grep -qxF "$line" "$build/.config" || { say "wanted $line, got: $(grep "^${line%%=*}[= ]" "$build/.config" || echo unset)"; missing=1; } ;;
		esac
	done < <(grep -h '^CONFIG_' "${frags[@]}" | awk -F= '!($1 in v) { k[++n] = $1 } { v[$1] = $0 } END { for (i = 1; i <= n; i++) print v[k[i]] }')
	[ "$missing" = 0 ] || die "kernel config lacks requested options (see above; log: $build/config.log)"

	run_with_progress "kernel build ($flavour)" "$build/build.log" "${kmake[@]}" "$target" modules_prepare
	# Module.symvers comes from 'make modules'; without it modpost reports every
	# kernel symbol as undefined in out-of-tree modules.
	run_with_progress "kernel modules ($flavour)" "$build/modules.log" "${kmake[@]}" modules
	[ -f "$build/Module.symvers" ] || die "no Module.symvers in $build"
	build_done "$cache" "$flavour" "$build"
}

# build_ready CACHE FLAVOUR BUILD: prints BUILD and succeeds when it is
# complete. Otherwise it takes FLAVOUR's lock (fd 9, held until the script
# ends: one build of a flavour at a time, so a second make, demo beside
# test say, waits here instead of wiping the build in progress, then
# reuses it) and fails if the build is still missing, to be made.
build_ready() {
	local cache=$1 flavour=$2 build=$3
	if [ -f "$build/.memlab-complete" ]; then
		echo "$build"
		return 0
	fi
	# MEMLAB_CACHED_ONLY=1: a question (is it built?), never a build (the
	# toolchain and the source, which the key needs, are set up first).
	[ "${MEMLAB_CACHED_ONLY:-0}" != 1 ] || exit 3
	mkdir -p "$cache"
	exec 9>"$cache/.lock-$flavour"
	if ! flock -n 9; then
		say "waiting for another build of the $flavour kernel to finish"
		flock 9
	fi
	if [ -f "$build/.memlab-complete" ]; then
		echo "$build"
		return 0
	fi
	return 1
}

# build_done CACHE FLAVOUR BUILD: marks BUILD complete, keeps the cache
# bounded (drops failed builds of FLAVOUR and all but the two newest
# complete ones) and prints BUILD.
build_done() {
	local cache=$1 flavour=$2 build=$3 d
	kernel_describe "$flavour" >"$build/memlab-kernel.txt"
	touch "$build/.memlab-complete"
	for d in "$cache/$flavour"-*; do
		[ "$d" = "$build" ] || [ -f "$d/.memlab-complete" ] || rm -rf "$d"
	done
	ls -dt "$cache/$flavour"-*/.memlab-complete 2>/dev/null | tail -n +3 |
		while read -r stamp; do rm -rf "$(dirname "$stamp")"; done
	echo "$build"
}
# Options where Debian's config, as this machine's compilers see it, may
# differ from Debian's own: the compilers' versions and the C compiler's
# features (gcc 12 here, gcc 16 there), which change code, never a
# structure memlab or the Rust crates see.
DISTRO_CONFIG_MAY_DIFFER='^CONFIG_(CC_VERSION_TEXT|GCC_VERSION|AS_VERSION|LD_VERSION|PAHOLE_VERSION|RUSTC_LLVM_VERSION|RUSTC_VERSION_TEXT|BINDGEN_VERSION_TEXT|CC_HAS_[A-Z0-9_]+|CC_OPT_[A-Z0-9_]+|GCC_ASM_GOTO_OUTPUT_BROKEN|OPENSSL_SUPPORTS_[A-Z0-9_]+)$'

# build_distro: Debian's prebuilt kernel, ready for out-of-tree modules.
# Debian's headers carry its config and Module.symvers but no rust/
# metadata, so the tree is prepared here from the same source and config
# with the rustc Debian used (distro_rustc_env): `make prepare
# modules_prepare` (the Rust crates' .rmeta and proc macros, the generated
# headers; no vmlinux, no modules), then Debian's Module.symvers for
# modpost and its image as arch/x86/boot/bzImage. Refuses a config that
# differs beyond $DISTRO_CONFIG_MAY_DIFFER, or Rust symbol names that
# differ from the ones Debian's kernel exports.
build_distro() {
	[ -z "$KSRC" ] && [ "$KVER" = 7.2 ] ||
		die "FLAVOUR=distro is Debian's 7.2.13 kernel image: it takes no KVER or KSRC"
	bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh"
	bash "$MEMLAB_ROOT/scripts/fetch-kernel.sh"
	bash "$MEMLAB_ROOT/scripts/fetch-kernel.sh" --distro
	local text
	text=$(distro_rustc_text)
	bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh" --rustc "$(awk '{ print $2 }' <<<"$text")"

	local key cache=$MEMLAB_CACHE/kernel build
	key=$( {
		kernel_identity
		grep -v '^#' "$DISTRO_DEBS"
		declare -f build_distro distro_modules distro_module
		echo "$DISTRO_CONFIG_MAY_DIFFER"
		(distro_rustc_env && rustc --version --verbose)
		gcc --version | head -n 1
		bindgen --version
		pahole --version
	} | sha256sum | cut -c1-16)
	build=$cache/distro-$key
	build_ready "$cache" distro "$build" && return 0

	say "kernel: $(kernel_describe distro), built by $text"
	say "preparing it for out-of-tree modules in $build: its config and the Rust crates' metadata, no kernel build (cold: about 3 min on 2 cores)"
	rm -rf "$build"
	mkdir -p "$build"
	cp "$DISTRO_SRC/.config" "$build/.config"
	local kmake=(kernel_make distro -C "$KERNEL_SRC" O="$build" KERNELRELEASE="$DISTRO_RELEASE" -j"$(($(nproc) + 1))")
	"${kmake[@]}" olddefconfig >"$build/config.log" 2>&1
	local differ
	differ=$(diff <(grep '^CONFIG_' "$DISTRO_SRC/.config" | sort) <(grep '^CONFIG_' "$build/.config" | sort) |
		sed -n 's/^[<>] \(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u | grep -vE "$DISTRO_CONFIG_MAY_DIFFER" | tr '\n' ' ' || true)
	[ -z "$differ" ] || die "Debian's config, with this machine's compilers, differs in $differ(Debian's: $DISTRO_SRC/.config; here: $build/.config)"

	run_with_progress "kernel prepare (distro: Rust metadata)" "$build/build.log" "${kmake[@]}" prepare modules_prepare

	# rustc hashes its version text into symbol names: with the wrong one
	# every kernel crate symbol a module calls would be missing at modpost.
	# The panic handler's symbol (crate ___rustc) is named apart and is not
	# a module's to call.
	local ours theirs
	# Empty (no files, no symbols) reaches the die below, not set -e.
	ours=$(sed -n 's/^EXPORT_SYMBOL_RUST_GPL(\(_R.*\));$/\1/p' "$build"/rust/exports_*_generated.h 2>/dev/null |
		{ grep -v ___rustc || true; } | sort -u)
	theirs=$(awk '$2 ~ /^_R/ && $2 !~ /___rustc/ { print $2 }' "$DISTRO_SRC/Module.symvers" | sort -u)
	[ -n "$ours" ] && [ "$ours" = "$theirs" ] ||
		die "the Rust symbols prepared here differ from those Debian's kernel exports ($(comm -3 <(echo "$ours") <(echo "$theirs") | wc -l) differ): not the rustc Debian used"

	cp "$DISTRO_SRC/Module.symvers" "$build/Module.symvers"
	mkdir -p "$build/arch/x86/boot"
	cp "$DISTRO_SRC/vmlinuz" "$build/arch/x86/boot/bzImage"
	# 9p for /share: built-in in memlab's kernels, modules in Debian's.
	distro_modules "$build/memlab-modules" 9p 9pnet_virtio
	build_done "$cache" distro "$build"
}

# distro_modules DIR NAME...: Debian's modules NAME and those they depend
# on, uncompressed into DIR, and DIR/order listing them with each after its
# dependencies (the initramfs loads them with insmod: no modprobe, no
# modules.dep).
distro_modules() {
	local dir=$1 m
	shift
	rm -rf "$dir"
	mkdir -p "$dir"
	: >"$dir/order"
	for m in "$@"; do
		distro_module "$dir" "$m"
	done
}

distro_module() {
	local dir=$1 m=$2 f d
	grep -qx "$m.ko" "$dir/order" && return 0
	f=$(find "$DISTRO_SRC/kernel" \( -name "$m.ko.xz" -o -name "${m//_/-}.ko.xz" \) -print -quit)
	[ -n "$f" ] || die "Debian's kernel has no module $m"
	xz -dc "$f" >"$dir/$m.ko"
	for d in $(strings "$dir/$m.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
		distro_module "$dir" "$d"
	done
	echo "$m.ko" >>"$dir/order"
}
main "$@"; exit
