#!/usr/bin/env bash
# Fuzzing: boot the VM with `memlab.cmd=fuzz` and judge its console.
#
#   FUZZ_SECS=120 FUZZ_SEED=S FUZZ_ARGS=procs=4,threads=2 FLAVOUR=test fuzz.sh
#
# Runs tests/fuzzer (memlab-fuzz) in the guest for FUZZ_SECS seconds (seed
# FUZZ_SEED, random if unset: the fuzzer prints it), then judges the console
# with vmcheck --no-tap: the guest's exit status (the fuzzer's verdict:
# mirror/check, rmmod, kmemleak, errno classes) and no BUG/WARNING/Oops/
# KASAN/lockdep/kmemleak report. Exits non-zero if either fails.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	cd "$MEMLAB_ROOT"
	local flavour=${FLAVOUR:-test} secs=${FUZZ_SECS:-120}
	local args="secs=$secs${FUZZ_SEED:+,seed=$FUZZ_SEED}${FUZZ_ARGS:+,$FUZZ_ARGS}"
	local rc=0
	# Boot, the end checks (rmmod, a kmemleak scan) and slack on top.
	bash scripts/run-vm.sh --flavour "$flavour" --cmd fuzz --timeout $((secs + 600)) \
		--fuzz-args "$args" || rc=$?
	local console=$MEMLAB_OUT/console-$flavour$KERNEL_SUFFIX-fuzz.log
	say "judging $console"
	cargo run --quiet --locked --release -p vmcheck -- --no-tap "$console" || { [ "$rc" != 0 ] || rc=1; }
	grep -a '^memlab-fuzz: \(PASS\|FAIL\)' "$console" || true
	return "$rc"
}
main "$@"; exit
