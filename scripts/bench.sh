#!/usr/bin/env bash
# memlab's benchmarks: ratios, never pass/fail.
#  1. host: the mirror core against crates.io peers (cargo bench);
#  2. VM: the standard workloads on the real allocators and on the mirror,
#     in one run of the bench kernel (no KASAN/lockdep), as mirror/real
#     ratios of the median alloc and free latency and p99, with their
#     spread over ABBA rounds; then a size sweep and 2-CPU scaling.
#
# The mirror's pool is 1600 MiB (pool_mb=1600: about 785 MiB of it in zone
# Normal, with room above the 688 MiB from which the kernel's rule gives a
# zone the real zone's per-CPU page batch, 63), so the page rows compare
# the same pcp batching; no workload's live set comes near a quarter of it.
# Override with MEMLAB_ARGS. The data land in out/bench: bench.json (the full
# report), latency.json (raw per-operation samples, for the CDF plots),
# and pagemap-{real,mirror}.txt (the free-area maps), written by the guest
# through the /share mount; without the share, bench.json and latency.json
# are cut out of the console.
#  3. VM: fragmentation over time (frag.json) in a second boot, on arenas
#     of equal size: the guest's zone Normal is FRAG_NORMAL_MB, of which the
#     mirror's pool takes its share, so that both zones start with about the
#     same free memory (memlabctl frag prints both and their ratio).
#  4. VM: divergence (diverge-trace.json, diverge-fragment.json) on the
#     same equal arenas: a recorded `find /` and a synthetic stream that
#     fragments the arena, each replayed on both sides in chunks, sampled
#     alike (memlabctl diverge prints the tables).
# memplot then draws out/*.png and out/*.svg from them (diverge-*.png too).
#
# The in-kernel parts run on a native engine by default (ENGINE=native):
# QEMU with KVM where it works here, else User-Mode Linux (the uml kernel,
# whose code runs as host instructions). ENGINE=tcg runs them under QEMU's
# TCG emulator as memlab used to (emulated timings); ENGINE=uml or kvm
# insist on one. Every report names its engine, kernel and host CPU.
#
#   BENCH_HOST=0   skip the host benchmark
#   FRAG=0         skip the fragmentation boot
#   DIVERGE=0      skip the two divergence boots
#   ENGINE=native|uml|kvm|tcg   (or FLAVOUR=uml|bench)
#
# A/B of two kernels: with KSRC_B=/path/to/linux or KVER_B=7.3, the
# kernel KVER/KSRC name (default Debian's 7.2) is A and that one B; both are
# built first, then the standard workloads (memlabctl bench --no-extras)
# run in AB_ROUNDS groups of four boots, A B B A, on one engine, and
# memlabctl ab (on the host) prints each row as B/A with its spread across
# boot pairs, real and mirror, into out/bench-ab (ab.json, and each boot's
# bench.json). Nothing else of make bench runs then.
#   AB_ROUNDS=2    ABBA groups (boots: 4 per group)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# pick_engine: sets FLAVOUR_ARGS (run-vm.sh's --flavour and --accel) and
# ENGINE_NAME for $ENGINE.
pick_engine() {
	local engine=${ENGINE:-} why
	# FLAVOUR picks an engine too: uml is UML, bench is QEMU (KVM where it
	# works, else TCG, as ACCEL says).
	if [ -z "$engine" ]; then
		case "${FLAVOUR:-}" in
		uml) engine=uml ;;
		bench) engine=qemu ;;
		"") engine=native ;;
		*) die "make bench runs on FLAVOUR=bench or uml, not '$FLAVOUR' (the test kernel's debug options would swamp every figure)" ;;
		esac
	fi
	case "$engine" in
	qemu | native)
		# ACCEL may insist on an accelerator for QEMU; otherwise KVM where
		# it works, else TCG (qemu) or UML (native).
		local fallback=uml
		[ "$engine" = qemu ] && fallback=tcg
		if [ "$engine" = qemu ] && [ "${MEMLAB_ACCEL:-auto}" != auto ]; then
			engine=$MEMLAB_ACCEL
		elif why=$(kvm_unusable bench); then
			engine=$fallback
		else
			engine=kvm
		fi
		;;
	uml | kvm | tcg) ;;
	*) die "ENGINE takes native, uml, kvm or tcg, not '$engine'" ;;
	esac
	case "$engine" in
	uml) FLAVOUR_ARGS=(--flavour uml) ;;
	*) FLAVOUR_ARGS=(--flavour bench --accel "$engine") ;;
	esac
	ENGINE_NAME=$engine
}

# Fragmentation on equal arenas. The guest has 2 GiB below 4 GiB and
# FRAG_NORMAL_MB above, which is all of zone Normal. pool_mb=FRAG_POOL_MB
# takes about 7/16 of the pool (plus what zone DMA cannot give) from zone
# Normal, and the kernel's own memory map and the initramfs take some: the
# defaults (scripts/lib.sh) leave both zones about the same free memory,
# which make test checks. The live set, at most 4096 objects (half of them
# pages, 3.75 on average), peaks at roughly 30 MiB: a quarter of an arena.
frag() {
	local dir=$1 pool=${FRAG_POOL_MB:-$FRAG_POOL_MB_DEFAULT} normal=${FRAG_NORMAL_MB:-$FRAG_NORMAL_MB_DEFAULT}
	rm -f "$dir/frag.json"
	frag_vm_args "$normal" "$pool" "$ENGINE_NAME"
	say "VM fragmentation on $ENGINE_NAME: real vs mirror zone Normal, equal arenas (${FRAG_VM[*]})"
	bash scripts/run-vm.sh "${FLAVOUR_ARGS[@]}" --share "$dir" --timeout 900 "${FRAG_VM[@]}" \
		--run 'memlabctl frag --steps 40000 --live 4096 --out frag.json' ||
		die "the fragmentation run failed (console: $MEMLAB_OUT/console-${FLAVOUR_ARGS[1]}$KERNEL_SUFFIX-run.log)"
	[ -s "$dir/frag.json" ] || die "the fragmentation run left no frag.json in $dir"
}

# kernel_env A|B: the environment that names kernel A (as given) or B.
kernel_env() {
	if [ "$1" = A ]; then
		echo "KVER=$KVER" "KSRC=$KSRC"
	else
		echo "KVER=${KVER_B:-7.2}" "KSRC=${KSRC_B:-}"
	fi
}

# ab: kernels A and B, ABBA across boots (see the top of this file).
ab() {
	local rounds=${AB_ROUNDS:-2} k
	case "$rounds" in '' | *[!0-9]* | 0) die "AB_ROUNDS takes a whole number of ABBA groups, not '$rounds'" ;; esac
	# B's checks (lib.sh's, on its KSRC or KVER) before anything is built.
	# shellcheck disable=SC2046
	env $(kernel_env B) bash -c "source scripts/lib.sh" || die "kernel B cannot be used (see above)"
	pick_engine
	local flavour=${FLAVOUR_ARGS[1]}
	for k in A B; do
		# shellcheck disable=SC2046
		say "kernel $k: $(env $(kernel_env $k) bash -c "source scripts/lib.sh; bash scripts/fetch-kernel.sh; kernel_describe $flavour")"
		# shellcheck disable=SC2046
		env $(kernel_env $k) bash scripts/build-kernel.sh "$flavour" >/dev/null
	done
	local dir=$MEMLAB_OUT/bench-ab args=${MEMLAB_ARGS:-} order="" boots=() i=0
	case " $args " in *" pool_mb="*) ;; *) args="$args pool_mb=1600" ;; esac
	rm -rf "$dir"
	mkdir -p "$dir"
	for ((g = 0; g < rounds; g++)); do order+=ABBA; done
	for ((i = 0; i < ${#order}; i++)); do
		k=${order:i:1}
		local boot=$dir/$((i + 1))-$k
		mkdir -p "$boot"
		say "A/B boot $((i + 1)) of ${#order}: kernel $k on $ENGINE_NAME"
		# shellcheck disable=SC2046
		env $(kernel_env "$k") bash scripts/run-vm.sh "${FLAVOUR_ARGS[@]}" --share "$boot" \
			--module-args "${args# }" --timeout 3000 --run 'memlabctl bench --no-extras --out /share >/dev/null' ||
			die "A/B boot $((i + 1)) (kernel $k) failed"
		[ -s "$boot/bench.json" ] || die "A/B boot $((i + 1)) (kernel $k) left no bench.json in $boot"
		boots+=("$k:$boot")
	done
	cargo run --quiet --locked --release -p memlabctl -- ab --json "$dir/ab.json" "${boots[@]}"
	say "wrote $dir/ab.json (each boot's bench.json beside it)"
}

# Divergence (issue 21) on the same equal arenas, the pin caps raised for
# the replay sessions: a real workload recorded in one boot (`find /`,
# traced with the kmem tracepoints, so that the recording's own page cache
# and dentries are gone in the next), then in a second boot that trace and
# the synthetic fragmenting stream, each on both sides (diverge-*.json and
# the divergence tables).
diverge() {
	local dir=$1 pool=${FRAG_POOL_MB:-$FRAG_POOL_MB_DEFAULT} normal=${FRAG_NORMAL_MB:-$FRAG_NORMAL_MB_DEFAULT}
	rm -f "$dir"/diverge-*.json "$dir/find.trace"
	frag_vm_args "$normal" "$pool" "$ENGINE_NAME" "$DIVERGE_CAPS"
	say "VM divergence on $ENGINE_NAME: recording a real workload (find /) for the replay (${FRAG_VM[*]})"
	bash scripts/run-vm.sh "${FLAVOUR_ARGS[@]}" --share "$dir" --timeout 900 "${FRAG_VM[@]}" \
		--run 'memlabctl trace record -o find.trace -- find / >/dev/null' ||
		die "recording the trace failed (console: $MEMLAB_OUT/console-${FLAVOUR_ARGS[1]}-run.log)"
	[ -s "$dir/find.trace" ] || die "the recording left no find.trace in $dir"
	say "VM divergence on $ENGINE_NAME: the trace and the fragmenting stream on both sides"
	bash scripts/run-vm.sh "${FLAVOUR_ARGS[@]}" --share "$dir" --timeout 1800 "${FRAG_VM[@]}" \
		--run 'memlabctl diverge --trace find.trace --sample-every 2000 --out diverge-trace.json &&
			memlabctl diverge --stream fragment --out diverge-fragment.json' ||
		die "the divergence run failed (console: $MEMLAB_OUT/console-${FLAVOUR_ARGS[1]}-run.log)"
	local f
	for f in trace fragment; do
		[ -s "$dir/diverge-$f.json" ] || die "the divergence run left no diverge-$f.json in $dir"
	done
}

main() {
	cd "$MEMLAB_ROOT"
	bash scripts/setup-toolchain.sh
	if [ -n "${KSRC_B:-}" ] || [ -n "${KVER_B:-}" ]; then
		ab
		return
	fi
	if [ "${BENCH_HOST:-1}" != 0 ]; then
		say "host benchmark: mirror core vs buddy_system_allocator and slabmalloc"
		cargo bench --locked -p memlab-core
	fi
	pick_engine
	local dir=$MEMLAB_OUT/bench log=$MEMLAB_OUT/console-${FLAVOUR_ARGS[1]}$KERNEL_SUFFIX-bench.log
	# The pool the workloads are sized for, unless MEMLAB_ARGS sets one.
	local args=${MEMLAB_ARGS:-}
	case " $args " in *" pool_mb="*) ;; *) args="$args pool_mb=1600" ;; esac
	mkdir -p "$dir"
	rm -f "$dir"/{bench,latency,frag}.json "$dir"/pagemap-{real,mirror}.txt "$dir"/diverge-*.json
	say "VM benchmark: real vs mirror on the ${FLAVOUR_ARGS[1]} kernel under $ENGINE_NAME (data: $dir)"
	set +e
	bash scripts/run-vm.sh "${FLAVOUR_ARGS[@]}" --cmd bench --share "$dir" \
		--module-args "${args# }" --timeout 3000 "$@" |
		sed -n '/^memlab bench:/,/^MEMLAB-EXIT/p' | grep -v '^MEMLAB-DATA' | sed '/^{/d'
	local rc=${PIPESTATUS[0]}
	set -e
	# Without the share, the guest printed the files between markers.
	local f
	for f in bench.json latency.json; do
		[ -s "$dir/$f" ] && continue
		awk -v f="$f" '$0 == "MEMLAB-DATA-END " f { on = 0 } on { print } $0 == "MEMLAB-DATA-BEGIN " f { on = 1 }' \
			"$log" >"$dir/$f"
		[ -s "$dir/$f" ] || rm -f "$dir/$f"
	done
	[ "$rc" = 0 ] || die "VM benchmark failed (status $rc; console: $log)"
	[ -s "$dir/latency.json" ] || die "the VM benchmark left no latency.json in $dir"
	say "wrote $dir/bench.json and $dir/latency.json"
	[ "${FRAG:-1}" = 0 ] || frag "$dir"
	[ "${DIVERGE:-1}" = 0 ] || diverge "$dir"
	# Pictures of the data the VM left in out/bench (host-only tool).
	say "plots: $dir -> $MEMLAB_OUT/*.png, *.svg"
	cargo run --quiet --locked --release -p memplot -- "$dir" --out "$MEMLAB_OUT" ||
		die "memplot failed (see its messages above)"
}
main "$@"; exit
