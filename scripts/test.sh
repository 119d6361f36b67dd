#!/usr/bin/env bash
# memlab's whole test suite: set-up, host checks and tests, then the in-VM
# tests on the test (KASAN/lockdep/kmemleak) kernel. Ends with
# "N passed, N failed" and exits non-zero on any failure.
#
# MEMLAB_INJECT=fail  makes the in-VM harness add a failing test;
# MEMLAB_INJECT=warn  makes the module WARN at load.
# Both exist to prove that this command notices; both must make it fail.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

passed=0
failed=0
failures=()

record() { # record NAME STATUS
	if [ "$2" = 0 ]; then
		passed=$((passed + 1))
		echo "PASS $1"
	else
		failed=$((failed + 1))
		failures+=("$1")
		echo "FAIL $1"
	fi
}

main() {
	cd "$MEMLAB_ROOT"
	bash scripts/setup-toolchain.sh

	say "host: formatting, lints, unit and property tests"
	local rc=0
	cargo fmt --all --check >/dev/null 2>&1 || rc=$?
	[ "$rc" = 0 ] || cargo fmt --all --check 2>&1 | head -n 40 || true
	record "rustfmt (host crates)" "$rc"

	rc=0
	rustfmt --edition 2021 --check rust_memlab.rs >/dev/null 2>&1 || rc=$?
	[ "$rc" = 0 ] || rustfmt --edition 2021 --check rust_memlab.rs 2>&1 | head -n 40 || true
	record "rustfmt (module sources)" "$rc"

	rc=0
	cargo clippy --quiet --locked --workspace --all-targets -- -D warnings 2>&1 || rc=$?
	record "clippy -D warnings (host crates)" "$rc"

	local log=$MEMLAB_OUT/cargo-test.log
	set +e
	cargo test --locked --workspace --release 2>&1 | tee "$log" | grep -E '^test result:|FAILED|panicked'
	rc=${PIPESTATUS[0]}
	set -e
	local p f
	p=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
	f=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	echo "host cargo test: ${p:-0} passed, ${f:-0} failed"
	if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
		record "cargo test (did not build or crashed; see $log)" 1
	fi

	say "VM: in-VM tests on the test kernel"
	local vmrc=0
	bash scripts/run-vm.sh --flavour test --cmd test ${MEMLAB_INJECT:+--inject "$MEMLAB_INJECT"} || vmrc=$?
	local console=$MEMLAB_OUT/console-test-test${MEMLAB_INJECT:+-inject-$MEMLAB_INJECT}.log
	if [ -f "$console" ] && [ "$vmrc" != 124 ]; then
		local out
		out=$(cargo run --quiet --locked --release -p vmcheck -- "$console") || true
		echo "$out" | grep -v '^vm: [0-9]* passed'
		p=$(echo "$out" | sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
		f=$(echo "$out" | sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
		passed=$((passed + ${p:-0}))
		failed=$((failed + ${f:-0}))
		[ -n "$p" ] || record "vmcheck produced no verdict" 1
		[ "${f:-0}" = 0 ] || failures+=("in-VM checks (console: $console)")
	else
		record "VM run (exit $vmrc; console: $console)" 1
	fi

	echo
	if [ "${#failures[@]}" -gt 0 ]; then
		printf 'failed: %s\n' "${failures[@]}"
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}
main "$@"
