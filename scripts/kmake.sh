#!/usr/bin/env bash
# Usage: kmake.sh FLAVOUR MAKE-ARGS...: make for a kernel of FLAVOUR with
# the compilers that built it (scripts/lib.sh, kernel_make); the Makefile's
# module targets use it for the distro kernel.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	kernel_make "$@"
}
main "$@"; exit
