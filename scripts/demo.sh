#!/usr/bin/env bash
# memlab's main job: set everything up, boot the VM, load the module, run
# the demo (memlabctl demo) and print what it shows.
#
#   demo.sh [--flavour distro|bench|test|uml] [other run-vm.sh options]
#
# Debian's own prebuilt kernel (distro: production-like, nothing compiled)
# by default, the bench kernel when KVER or KSRC names another; the test
# kernel's KASAN, lockdep and kmemleak inflate every latency the demo prints.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local flavour args=() rc=0
	flavour=$(lab_flavour)
	while [ $# -gt 0 ]; do
		case "$1" in
		--flavour) flavour=$2; shift 2 ;;
		*) args+=("$1"); shift ;;
		esac
	done
	bash "$MEMLAB_ROOT/scripts/run-vm.sh" --flavour "$flavour" --cmd demo "${args[@]}" || rc=$?
	local log=$MEMLAB_OUT/console-$flavour$KERNEL_SUFFIX-demo.log
	if [ "$rc" = 0 ]; then
		say "demo finished on the $flavour kernel; console log: $log"
	else
		say "demo failed on the $flavour kernel (status $rc); console log: $log"
	fi
	return "$rc"
}
main "$@"; exit
