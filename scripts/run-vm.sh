#!/usr/bin/env bash
# Boot memlab in QEMU and run one command inside it.
#
#   run-vm.sh [--flavour test|bench] [--cmd test|demo|bench|fuzz] [--inject fail|warn]
#             [--timeout SECONDS] [--fuzz-args secs=N,seed=S,...]
#
# MEMLAB_VM_MEM sets the guest's RAM (default 5G: above 4 GiB the guest has a
# ZONE_NORMAL, so GFP_KERNEL and GFP_DMA32 land in different zones).
#
# Builds (or reuses) the kernel, builds the module and memlabctl, packs the
# initramfs, boots QEMU under TCG with a timeout, and keeps the console log in
# out/console-<flavour>-<cmd>.log. Exits with the guest's status (from the
# MEMLAB-EXIT sentinel), 124 on timeout, 125 if the sentinel is missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local flavour=test cmd=demo inject= timeout=900 fuzz_args=
	while [ $# -gt 0 ]; do
		case "$1" in
		--flavour) flavour=$2; shift 2 ;;
		--cmd) cmd=$2; shift 2 ;;
		--inject) inject=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		# Fuzzing: memlab-fuzz's arguments, comma-separated (no spaces: they
		# travel on the kernel command line as memlab.fuzz=...).
		--fuzz-args) fuzz_args=$2; shift 2 ;;
		*) die "unknown argument '$1'" ;;
		esac
	done
	case "$inject" in "" | fail | warn) ;; *) die "--inject takes fail or warn" ;; esac

	bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh"
	local kdir
	kdir=$(bash "$MEMLAB_ROOT/scripts/build-kernel.sh" "$flavour")

	# Each flavour gets its own module output directory (Kbuild's MO=), so
	# test and bench objects never mix in the source tree.
	local mo=$MEMLAB_OUT/module-$flavour
	mkdir -p "$mo"
	say "building rust_memlab.ko against the $flavour kernel"
	make -s -C "$kdir" M="$MEMLAB_ROOT" MO="$mo" LLVM="$LLVM_SUFFIX" CLIPPY=1 modules >"$MEMLAB_OUT/module-$flavour.log" 2>&1 ||
		{ cat "$MEMLAB_OUT/module-$flavour.log" >&2; die "module build failed"; }
	if [ -s "$MEMLAB_OUT/module-$flavour.log" ]; then
		cat "$MEMLAB_OUT/module-$flavour.log" >&2
		die "module build printed warnings (the build must be warning-free)"
	fi

	say "building memlabctl (static, musl)"
	cargo build --quiet --release --locked --target x86_64-unknown-linux-musl -p memlabctl \
		--manifest-path "$MEMLAB_ROOT/Cargo.toml"
	local ctl=$MEMLAB_ROOT/target/x86_64-unknown-linux-musl/release/memlabctl

	# Fuzzing: the ioctl fuzzer goes into the initramfs for --cmd fuzz only.
	local fuzz=
	if [ "$cmd" = fuzz ]; then
		say "building memlab-fuzz (static, musl)"
		cargo build --quiet --release --locked --target x86_64-unknown-linux-musl -p memlab-fuzz \
			--manifest-path "$MEMLAB_ROOT/Cargo.toml"
		fuzz=$MEMLAB_ROOT/target/x86_64-unknown-linux-musl/release/memlab-fuzz
	fi

	local initrd=$MEMLAB_OUT/initramfs-$flavour.cpio.gz
	bash "$MEMLAB_ROOT/scripts/mkinitramfs.sh" "$mo/rust_memlab.ko" "$ctl" "$initrd" $fuzz

	local log=$MEMLAB_OUT/console-$flavour-$cmd${inject:+-inject-$inject}.log
	# loglevel=5: warnings (WARN, lockdep) and worse reach the console; info does not.
	local append="console=ttyS0 panic=-1 loglevel=5 memlab.cmd=$cmd${inject:+ memlab.inject=$inject}"
	[ -n "$fuzz_args" ] && append+=" memlab.fuzz=$fuzz_args" # Fuzzing
	# Without ACPI there is no HPET or PM timer, and the PIT cannot calibrate
	# the TSC under TCG, leaving a jiffies (4 ms) clock. TCG's guest TSC runs
	# at the host's rate, so tell the guest that rate: latencies get ns
	# resolution.
	local khz
	khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
	[ -n "$khz" ] && [ "$khz" -gt 0 ] && append+=" tsc_early_khz=$khz tsc=reliable"
	say "booting QEMU (TCG, 2 vCPUs, timeout ${timeout}s); console log: $log"
	# TCG: KVM guests hang on these machines (see README). Guest RAM is only
	# backed as it is touched.
	set +e
	# la57=off: with 5-level paging KASAN reported a wild access in early
	# boot (identify_cpu interrupted) on some runs; 4-level paging is what
	# memlab studies anyway.
	timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max,la57=off -smp 2 -m "${MEMLAB_VM_MEM:-5G}" \
		-kernel "$kdir/arch/x86/boot/bzImage" -initrd "$initrd" -append "$append" \
		-display none -monitor none -serial stdio -no-reboot </dev/null |
		tr -d '\r' | tee "$log"
	local rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		say "QEMU timed out after ${timeout}s"
		return 124
	fi
	local status
	status=$(sed -n 's/^MEMLAB-EXIT: \([0-9]*\)$/\1/p' "$log" | tail -n 1)
	if [ -z "$status" ]; then
		say "no MEMLAB-EXIT line in the console: the guest died or hung (see $log)"
		return 125
	fi
	return "$status"
}
main "$@"
