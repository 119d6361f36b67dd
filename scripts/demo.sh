#!/usr/bin/env bash
# memlab's main job: set everything up, boot the VM, load the module, run
# the demo (memlabctl demo) and print what it shows.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local rc=0
	bash "$MEMLAB_ROOT/scripts/run-vm.sh" --flavour test --cmd demo "$@" || rc=$?
	if [ "$rc" = 0 ]; then
		say "demo finished; console log: $MEMLAB_OUT/console-test-demo.log"
	else
		say "demo failed (status $rc); console log: $MEMLAB_OUT/console-test-demo.log"
	fi
	return "$rc"
}
main "$@"
