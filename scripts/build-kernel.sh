#!/usr/bin/env bash
# Build (or reuse) a memlab kernel. Usage: build-kernel.sh test|bench|uml
# Prints the build directory (usable as KDIR) on stdout.
#   test   x86-64 for QEMU: KASAN, lockdep, kmemleak (base + test fragments)
#   bench  x86-64 for QEMU: production-like (base + bench fragments)
#   uml    User-Mode Linux (ARCH=um): production-like, runs natively as a
#          host process (um + bench fragments; no DMA zones, no DMA API)
# The build lives in the cache, keyed by kernel version, the config fragments
# and the compiler versions, so a matching build is reused and any change
# rebuilds in a fresh directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The whole script is one function, read before it runs, and the line that
# calls it exits (bash reads a line whole before running it), so editing
# this file during a long build cannot derail the running copy.
main() {
	flavour=${1:-test}
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

	if [ -f "$build/.memlab-complete" ]; then
		echo "$build"
		return 0
	fi
	# One build of a flavour at a time: a second make (demo beside test, say)
	# waits here instead of wiping the build in progress, then reuses it.
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

	[ -z "$KERNEL_CACHE_SUBDIR" ] || say "kernel: $(kernel_describe "$flavour")"
	case "$arch" in
	um) say "building the $flavour kernel (ARCH=um) into $build (cold: about 4 min on 2 cores)" ;;
	*) say "building the $flavour kernel into $build (cold: about 7-12 min on 2 cores)" ;;
	esac
	rm -rf "$build"
	mkdir -p "$build"
	# PAHOLE= (none): these kernels carry no BTF; see $KBUILD_NO_PAHOLE.
	kmake=(make -C "$KERNEL_SRC" O="$build" ARCH="$arch" LLVM="$LLVM_SUFFIX" "$KBUILD_NO_PAHOLE"
		-j"$(($(nproc) + 1))")

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
	kernel_describe "$flavour" >"$build/memlab-kernel.txt"
	touch "$build/.memlab-complete"

	# Keep the cache bounded: drop failed builds of this flavour and all but the
	# two newest complete ones.
	for d in "$cache/$flavour"-*; do
		[ "$d" = "$build" ] || [ -f "$d/.memlab-complete" ] || rm -rf "$d"
	done
	ls -dt "$cache/$flavour"-*/.memlab-complete 2>/dev/null | tail -n +3 |
		while read -r stamp; do rm -rf "$(dirname "$stamp")"; done
	echo "$build"
}
main "$@"; exit
