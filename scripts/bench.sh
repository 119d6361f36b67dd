#!/usr/bin/env bash
# memlab's benchmarks: ratios, never pass/fail.
#  1. host: the mirror core against crates.io peers (cargo bench);
#  2. VM: the standard workloads on the real allocators and on the mirror,
#     in one run of the bench kernel (no KASAN/lockdep), as mirror/real
#     ratios of median and p99 latency, plus fragmentation figures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	cd "$MEMLAB_ROOT"
	bash scripts/setup-toolchain.sh
	say "host benchmark: mirror core vs buddy_system_allocator and slabmalloc"
	cargo bench --locked -p memlab-core
	say "VM benchmark: real vs mirror on the bench kernel"
	bash scripts/run-vm.sh --flavour bench --cmd bench "$@" |
		sed -n '/^memlab bench:/,/^MEMLAB-EXIT/p'
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || die "VM benchmark failed (status $rc; console: $MEMLAB_OUT/console-bench-bench.log)"
	# Pictures of the data the VM left in out/bench (host-only tool).
	say "plots: $MEMLAB_OUT/bench -> $MEMLAB_OUT/*.png, *.svg"
	cargo run --quiet --locked --release -p memplot -- "$MEMLAB_OUT/bench" --out "$MEMLAB_OUT" ||
		die "memplot failed (see its messages above)"
}
main "$@"
