# SPDX-License-Identifier: GPL-2.0
#
# Module build in the style of the Rust-for-Linux out-of-tree template, plus
# memlab's entry points. KDIR defaults to memlab's cached test kernel build
# (made on first use by scripts/build-kernel.sh); override it to build
# against another tree built by the same rustc.
#
#   make demo    set everything up, boot the VM, load memlab, show its output
#   make test    set everything up, run host tests and in-VM tests
#   make bench   benchmarks (ratios, not tests): host mirror core vs crates.io
#                peers, then real vs mirror in the VM on the bench kernel
#   make fuzz    the in-VM ioctl fuzzer on the test kernel (FUZZ_SECS=120,
#                FUZZ_SEED=random, FUZZ_ARGS=procs=N,threads=N,fds=N)
#   make         build rust_memlab.ko against KDIR

FLAVOUR ?= test
KDIR ?= $(shell bash scripts/build-kernel.sh $(FLAVOUR))
LLVM ?= -19

default:
	$(MAKE) -C $(KDIR) M=$$PWD LLVM=$(LLVM)

modules_install: default
	$(MAKE) -C $(KDIR) M=$$PWD LLVM=$(LLVM) modules_install

clean:
	$(MAKE) -C $(KDIR) M=$$PWD LLVM=$(LLVM) clean

rust-analyzer:
	$(MAKE) -C $(KDIR) M=$$PWD LLVM=$(LLVM) rust-analyzer

setup:
	bash scripts/setup-toolchain.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

# Fuzzing: tests/fuzzer in the VM, judged by vmcheck (scripts/fuzz.sh).
FUZZ_SECS ?= 120
fuzz:
	FLAVOUR=$(FLAVOUR) FUZZ_SECS=$(FUZZ_SECS) FUZZ_SEED=$(FUZZ_SEED) FUZZ_ARGS=$(FUZZ_ARGS) bash scripts/fuzz.sh

.PHONY: default modules_install clean rust-analyzer setup demo test bench fuzz
