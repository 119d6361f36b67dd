# SPDX-License-Identifier: GPL-2.0
#
# Module build in the style of the Rust-for-Linux out-of-tree template, plus
# memlab's entry points. KDIR defaults to memlab's cached test kernel build
# (made on first use by scripts/build-kernel.sh); override it to build
# against another tree built by the same rustc.
#
#   make demo    set everything up, boot the VM, load memlab, show its output
#   make test    set everything up, run host tests and in-VM tests (test kernel
#                under QEMU, uml kernel natively, Debian's kernel under QEMU)
#   make bench   benchmarks (ratios, not tests): host mirror core vs crates.io
#                peers, then real vs mirror in one VM run on a native engine
#                (KVM where it works, else User-Mode Linux; ENGINE=tcg: QEMU TCG)
#   make plots   PNG and SVG into out/ from the data make bench left in
#                out/bench (host only: tests/memplot)
#   make shell   an interactive shell in the VM, memlab loaded
#   make run CMD='...'  one shell command line in the VM, its output only
#   make help    these targets and their variables
#   make fuzz    the in-VM ioctl fuzzer on the test kernel (FUZZ_SECS=120,
#                FUZZ_SEED=random, FUZZ_ARGS=procs=N,threads=N,fds=N)
#   make matrix  the in-VM suite on the other kernels memlab supports
#                (Debian 7.3, bench flavour; MATRIX_KERNELS='KVER=7.3 ...')
#   make         build rust_memlab.ko against KDIR

# FLAVOUR picks the kernel: distro (Debian's own prebuilt kernel, nothing
# compiled) for shell, run and demo, bench (x86-64, production-like, built
# here) for them when KVER or KSRC names another kernel, test (x86-64:
# KASAN, lockdep, kmemleak) for the module build, uml (User-Mode Linux,
# production-like, runs natively); make test runs test, uml and distro.
FLAVOUR ?=
# The kernel: KVER=7.2 (Debian's, the default) or 7.3, or KSRC=/path/to/linux
# (a tree of your own, checked before anything is built). Every target
# honours them: scripts/lib.sh reads them from the environment.
KVER ?=
KSRC ?=
ifneq ($(KVER),)
export KVER
endif
ifneq ($(KSRC),)
export KSRC
endif
KDIR ?= $(shell bash scripts/build-kernel.sh $(or $(FLAVOUR),test))
# Make in KDIR with the compilers that built its kernel (scripts/lib.sh,
# kernel_make): LLVM 19 for memlab's own, gcc and Debian's rustc for distro.
KMAKE = bash scripts/kmake.sh $(or $(FLAVOUR),test) -C $(KDIR)
# The lab's kernel (demo, shell, run): Debian's prebuilt one, unless KVER
# or KSRC names another kernel, which bench builds (lab_flavour in
# scripts/lib.sh: the same rule, for the scripts).
LAB_FLAVOUR = $(if $(or $(KSRC),$(filter-out 7.2,$(KVER))),bench,distro)
# The QEMU flavours' accelerator: auto (KVM if it works here, else TCG),
# kvm or tcg. bench's ENGINE picks its engine (see make help).
ACCEL ?=
export MEMLAB_ACCEL = $(ACCEL)
# The VM: guest RAM (above 4G the guest has a ZONE_NORMAL) and vCPUs (1-4).
MEM ?= 5G
# Guest RAM below 4 GiB (the rest of MEM is ZONE_NORMAL); empty: QEMU's split.
LOWMEM ?=
CPUS ?= 2
# shell and run: the host directory seen at /share in the guest.
SHARE ?= out/share
# run: the command line; its time limit in seconds.
CMD ?=
TIMEOUT ?= 900
# 1: print the rig's steps and the whole guest console (boot included).
V ?= 0
# Module parameters for insmod (e.g. 'pool_mb=64 max_pinned_mb=128'), and
# NOMODULE=1 to leave memlab unloaded (/lib/modules/rust_memlab.ko).
MEMLAB_ARGS ?=
NOMODULE ?=

# CMD and MEMLAB_ARGS reach the scripts as typed: unexpanded by make ($ stays
# $) and single-quoted for the shell.
quote = '$(subst ','\'',$(value $(1)))'
VM_OPTS = --flavour $(or $(FLAVOUR),$(LAB_FLAVOUR)) --mem '$(MEM)' --cpus '$(CPUS)' \
	--module-args $(call quote,MEMLAB_ARGS) \
	$(if $(filter 1,$(NOMODULE)),--no-module) $(if $(filter 1,$(V)),--verbose)
export MEMLAB_VM_MEM = $(MEM)
export MEMLAB_VM_CPUS = $(CPUS)
export MEMLAB_VM_LOWMEM = $(LOWMEM)

default:
	+$(KMAKE) M=$$PWD

modules_install: default
	+$(KMAKE) M=$$PWD modules_install

clean:
	+$(KMAKE) M=$$PWD clean

rust-analyzer:
	+$(KMAKE) M=$$PWD rust-analyzer

setup:
	bash scripts/setup-toolchain.sh

demo:
	@bash scripts/demo.sh $(VM_OPTS) --timeout '$(TIMEOUT)'

test:
	bash scripts/test.sh

matrix:
	bash scripts/test.sh matrix

bench:
	bash scripts/bench.sh

# memplot draws whatever of latency.json, frag.json, pagemap-{real,mirror}.txt
# exists in out/bench; it fails only when none does or one is malformed.
plots:
	cargo run --quiet --locked --release -p memplot -- out/bench --out out

# QEMU owns the terminal: Ctrl-C goes to the guest; poweroff or exit leaves.
shell:
	@bash scripts/run-vm.sh $(VM_OPTS) --share '$(SHARE)' --shell

# make exits 2 when the command fails ("Error N" names the command's status
# N); scripts/run-vm.sh --run exits with N itself.
run:
	@if [ -z $(call quote,CMD) ]; then echo "usage: make run CMD='memlabctl version' (see make help)" >&2; exit 2; fi
	@bash scripts/run-vm.sh $(VM_OPTS) --share '$(SHARE)' --timeout '$(TIMEOUT)' --run $(call quote,CMD)

help:
	@echo 'memlab targets:'
	@echo '  make demo             boot the VM, run every allocator, print the report'
	@echo '  make test             every test: host, then in-VM on the test kernel (QEMU), on UML and on Debian'"'"'s kernel (QEMU)'
	@echo '  make bench            benchmarks: ratios, never pass/fail; then the pictures (make plots)'
	@echo '  make plots            pictures (PNG+SVG) in out/ from the data in out/bench'
	@echo '  make shell            interactive shell in the VM, memlab loaded (poweroff or exit leaves)'
	@echo "  make run CMD='...'    run one shell command line in the VM; print its output only"
	@echo '  make                  build rust_memlab.ko against KDIR (default: the test kernel)'
	@echo '  make fuzz             the in-VM ioctl fuzzer on the test kernel (FUZZ_SECS, FUZZ_SEED, FUZZ_ARGS)'
	@echo '  make setup            install the toolchain only'
	@echo '  make matrix           the in-VM suite on the other kernels (Debian 7.3, bench flavour; a cold build each)'
	@echo 'kernels (every target):'
	@echo '  KVER=7.2|7.3          Debian'"'"'s linux-source package, pinned by sha256 (default 7.2)'
	@echo '  KSRC=/path/to/linux   your own tree (git or unpacked), built with memlab'"'"'s config into the cache'
	@echo 'variables (shell, run, demo; MEM and CPUS for every VM):'
	@echo '  FLAVOUR=distro|bench|test|uml  kernel: distro (default: Debian'"'"'s own prebuilt 7.2.13, nothing'
	@echo '                        compiled; bench when KVER/KSRC is given), bench (x86-64, production-like),'
	@echo '                        test (x86-64: KASAN, lockdep, kmemleak) or uml (User-Mode Linux: native,'
	@echo '                        zone Normal only, no DMA)'
	@echo '  ACCEL=auto|kvm|tcg    QEMU flavours: KVM where it works (auto, the default), else TCG'
	@echo '  ENGINE=native|uml|kvm|tcg  bench: where its VM parts run (native: KVM if usable, else UML)'
	@echo "  CMD='...'             run: the command line (runs in /share, stdin /dev/null)"
	@echo "  MEMLAB_ARGS='...'     insmod parameters, e.g. MEMLAB_ARGS='pool_mb=64 max_pinned_mb=128'"
	@echo '  NOMODULE=1            do not load memlab (insmod /lib/modules/rust_memlab.ko by hand)'
	@echo '  SHARE=DIR             host directory mounted at /share in the guest (default out/share)'
	@echo '  MEM=5G CPUS=2         guest RAM and vCPUs (1-4)'
	@echo '  LOWMEM=2G             guest RAM below 4 GiB: the rest of MEM is ZONE_NORMAL (default: QEMU'"'"'s 3G split)'
	@echo '  TIMEOUT=900           run and demo: seconds before the VM is killed'
	@echo '  V=1                   verbose: the rig'"'"'s steps and the whole console, boot included'
	@echo 'exit status of run: the command'"'"'s own from scripts/run-vm.sh --run CMD;'
	@echo '  make run exits 2 on any failure (124: timeout, 125: VM died or panicked).'

# Fuzzing: tests/fuzzer in the VM, judged by vmcheck (scripts/fuzz.sh); on
# the test kernel unless FLAVOUR says otherwise.
FUZZ_SECS ?= 120
fuzz:
	FLAVOUR=$(or $(FLAVOUR),test) FUZZ_SECS=$(FUZZ_SECS) FUZZ_SEED=$(FUZZ_SEED) FUZZ_ARGS=$(FUZZ_ARGS) bash scripts/fuzz.sh

.PHONY: default modules_install clean rust-analyzer setup demo test matrix bench plots shell run help fuzz
