#!/usr/bin/env bash
# Boot memlab in a VM (QEMU, or User-Mode Linux) and run something inside it.
#
#   run-vm.sh [--flavour test|bench|distro|uml] [--cmd test|demo|bench|fuzz] [--inject fail|warn]
#             [--fuzz-args secs=N,seed=S,...]   (with --cmd fuzz; or --cmd test: the fuzzer runs after the suite)
#   run-vm.sh [--flavour test|bench|distro|uml] --shell
#   run-vm.sh [--flavour test|bench|distro|uml] --run 'SHELL COMMAND LINE'
#   common:   [--timeout SECONDS] [--mem SIZE] [--lowmem SIZE] [--cpus N] [--share DIR]
#             [--accel auto|kvm|tcg] [--module-args 'pool_mb=64 ...'] [--no-module] [--verbose]
#
# Engines: the flavours test and bench are x86-64 kernels booted by QEMU,
# under KVM or TCG (--accel, default $MEMLAB_ACCEL or auto: KVM when
# /dev/kvm is usable and a probe boot of a few seconds succeeds, else TCG
# with a one-line reason; kvm insists and fails fast without it). The
# flavour uml is a User-Mode Linux kernel: an ordinary host process whose
# code runs natively, with the same init, memlabctl and sentinel; its
# console is the process's stdio, /share is a hostfs mount, and it has no
# DMA zones and no DMA API. --lowmem is QEMU's only. The guest learns its
# engine as memlab.engine=tcg|kvm|uml on its command line.
#
# --cmd test|demo|bench runs that job of tests/vm/init (default: demo on the
# test kernel) and streams the whole console.
#
# --shell gives an interactive shell on the console (memlab loaded,
# debugfs mounted, memlabctl on PATH); `poweroff` or `exit` ends the VM and
# the script exits 0 (non-zero only if the VM died or memlab did not load). Ctrl-C goes to the guest;
# Ctrl-A x kills QEMU. With stdin not a terminal, the piped text is run as a
# shell script instead (like --run), and its output is printed.
#
# --run CMD runs one shell command line in the guest (in /share, stdin
# /dev/null), prints its output (stdout and stderr, through the guest's
# second serial port, ttyS1, on QEMU and UML alike) and nothing else, and
# exits with its status. The
# command reaches the guest as a file in the initramfs, so quotes survive as
# typed.
#
# --share DIR (default $MEMLAB_SHARE or out/share, created if missing) is
# mounted read-write at /share in the guest through 9p over virtio (QEMU)
# or hostfs (UML) (shell, run and bench: bench writes bench.json and
# latency.json there).
# --timeout: seconds before QEMU is killed (default 900; an interactive
# shell has none).
# --module-args: insmod parameters of rust_memlab (default: $MEMLAB_ARGS).
# --no-module: do not load memlab (it stays at /lib/modules/rust_memlab.ko).
# --verbose: print the whole console (kernel boot included) for run as well.
# --mem (default $MEMLAB_VM_MEM or 5G: above 4 GiB the guest has a
# ZONE_NORMAL, so GFP_KERNEL and GFP_DMA32 land in different zones) and
# --lowmem (default $MEMLAB_VM_LOWMEM, else QEMU's own split: 3 GiB below
# 4 GiB once --mem passes 3.5 GiB): guest RAM below 4 GiB, so that the rest
# of --mem, and only that, is ZONE_NORMAL (QEMU's pc max-ram-below-4g). The
# fragmentation benchmark uses it to give the real zone Normal the mirror's
# size.
# --cpus (default $MEMLAB_VM_CPUS or 2; the kernel has NR_CPUS=4).
#
# Builds (or reuses) the kernel, builds the module and memlabctl, packs the
# initramfs, boots with a timeout, and keeps the console log in
# out/console-<flavour>-<cmd>.log. Exits with the guest's status (from the
# MEMLAB-EXIT sentinel); 124 if the VM timed out; 125 if it died or the guest
# kernel panicked (a one-line message on stderr says which); 1 for a bad
# option or a failed build (the message says which).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	local flavour=test cmd=demo inject="" timeout="" verbose=0 run_cmd="" nomodule=0
	local mem=${MEMLAB_VM_MEM:-5G} cpus=${MEMLAB_VM_CPUS:-2} share=${MEMLAB_SHARE:-}
	local lowmem=${MEMLAB_VM_LOWMEM:-} accel=${MEMLAB_ACCEL:-auto} accel_given=${MEMLAB_ACCEL:+1}
	local module_args=${MEMLAB_ARGS:-}
	local fuzz_args=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--flavour) flavour=$2; shift 2 ;;
		--cmd) cmd=$2; shift 2 ;;
		--shell) cmd=shell; shift ;;
		--run) cmd=run; run_cmd=$2; shift 2 ;;
		--inject) inject=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--mem) mem=$2; shift 2 ;;
		--lowmem) lowmem=$2; shift 2 ;;
		--cpus) cpus=$2; shift 2 ;;
		--share) share=$2; shift 2 ;;
		--accel) accel=$2; accel_given=1; shift 2 ;;
		--module-args) module_args=$2; shift 2 ;;
		--no-module) nomodule=1; shift ;;
		--verbose) verbose=1; shift ;;
		# Fuzzing: memlab-fuzz's arguments, comma-separated (no spaces: they
		# travel on the kernel command line as memlab.fuzz=...).
		--fuzz-args) fuzz_args=$2; shift 2 ;;
		*) die "unknown argument '$1' (see the top of scripts/run-vm.sh)" ;;
		esac
	done
	check_args

	# --shell with piped stdin: the piped text is the script; no terminal.
	local interactive=0 mode=$cmd
	if [ "$cmd" = shell ]; then
		if [ -t 0 ]; then
			interactive=1
		else
			run_cmd=$(cat)
			mode=run
		fi
	fi
	# Only the run's own output goes to stdout (and, in a shell, the guest's
	# terminal); the rig's progress lines only with --verbose.
	local quiet=0
	if [ "$mode" = run ] || [ "$interactive" = 1 ]; then
		[ "$verbose" = 1 ] || quiet=1
	fi
	note() { [ "$quiet" = 1 ] || say "$@"; }
	# An interactive shell has no time limit (Ctrl-A x ends it); the others do.
	[ -n "$timeout" ] || timeout=900

	bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh"
	local tools_pid tools_log
	tools_start
	local kdir arch
	kdir=$(bash "$MEMLAB_ROOT/scripts/build-kernel.sh" "$flavour")
	arch=$(flavour_arch "$flavour")
	build_module
	local ctl fuzz run_initrd
	build_tools
	local engine
	pick_engine

	local log=$MEMLAB_OUT/console-$flavour$KERNEL_SUFFIX-$cmd${inject:+-inject-$inject}.log
	# loglevel=5: warnings (WARN, lockdep) and worse reach the console; info does not.
	# memlab.cpus: the suite checks that the kernel brought them all up.
	local append="loglevel=5 memlab.cmd=$mode memlab.flavour=$flavour memlab.engine=$engine memlab.cpus=$cpus"
	[ -n "$inject" ] && append+=" memlab.inject=$inject"
	[ "$nomodule" = 1 ] && append+=" memlab.nomodule=1"
	[ -n "$fuzz_args" ] && append+=" memlab.fuzz=$fuzz_args" # Fuzzing
	if [ "$cmd" = shell ] || [ "$cmd" = run ] || [ "$cmd" = bench ]; then
		share=${share:-$MEMLAB_OUT/share}
		mkdir -p "$share" || die "cannot create the share directory $share"
		share=$(cd "$share" && pwd)
		case "$share" in *,*) die "the share directory's path must not contain a comma (QEMU and UML option syntax): $share" ;; esac
	else
		share=
	fi
	pack_run_initrd

	if [ "$engine" = uml ]; then
		boot_uml
	else
		boot_qemu
	fi
}

# check_args: refuse bad options before anything is built.
check_args() {
	flavour_arch "$flavour" >/dev/null
	case "$cmd" in test | demo | bench | fuzz | shell | run) ;; *) die "unknown command '$cmd' (test, demo, bench, fuzz; or --shell, --run CMD)" ;; esac
	case "$inject" in "" | fail | warn) ;; *) die "--inject takes fail or warn" ;; esac
	case "$accel" in auto | kvm | tcg) ;; *) die "--accel/ACCEL takes auto, kvm or tcg, not '$accel'" ;; esac
	[[ "$cpus" =~ ^[1-4]$ ]] || die "--cpus/CPUS takes 1 to 4 (the kernels are built with NR_CPUS=4), not '$cpus'"
	[[ "$mem" =~ ^[0-9]+[MG]?$ ]] || die "--mem/MEM takes a size such as 5G or 2048M, not '$mem'"
	if [ -n "$lowmem" ]; then
		[ "$flavour" != uml ] || die "--lowmem/LOWMEM is QEMU's (zone DMA32 below 4 GiB); UML has zone Normal only: size it with --mem"
		[[ "$lowmem" =~ ^[0-9]+[MG]?$ ]] || die "--lowmem/LOWMEM takes a QEMU size such as 2G or 2048M, not '$lowmem'"
		local lo_mb hi_mb
		lo_mb=$(mib "$lowmem") hi_mb=$(mib "$mem")
		# QEMU reads a bare property size as bytes, a bare -m as MiB.
		lowmem=${lo_mb}M
		# QEMU's pc machine lowers anything above 3 GiB to 3 GiB once the
		# RAM passes it (and --mem is above --lowmem).
		[ "$lo_mb" -ge 256 ] && [ "$lo_mb" -le 3072 ] ||
			die "--lowmem/LOWMEM must be 256M..3072M (QEMU's pc machine splits at 3 GiB at most), not '$lowmem'"
		[ "$lo_mb" -lt "$hi_mb" ] ||
			die "--lowmem ($lowmem) must be below --mem ($mem): the difference is the guest's ZONE_NORMAL"
	fi
	[[ -z "$timeout" || "$timeout" =~ ^[0-9]+$ ]] || die "--timeout takes seconds, not '$timeout'"
	if [ "$cmd" = run ] && [ -z "$run_cmd" ]; then
		die "--run needs a command line, e.g. --run 'memlabctl version' (make run CMD='...')"
	fi
	case "$module_args" in *$'\n'*) die "module arguments must be one line" ;; esac
}

# build_module: rust_memlab.ko against $kdir, warning-free. Each flavour gets
# its own module output directory (Kbuild's MO=), so objects never mix.
build_module() {
	mo=$MEMLAB_OUT/module-$flavour$KERNEL_SUFFIX
	mkdir -p "$mo"
	note "building rust_memlab.ko against the $flavour kernel"
	kernel_make "$flavour" -s -C "$kdir" M="$MEMLAB_ROOT" MO="$mo" CLIPPY=1 modules \
		>"$MEMLAB_OUT/module-$flavour$KERNEL_SUFFIX.log" 2>&1 ||
		{ cat "$MEMLAB_OUT/module-$flavour$KERNEL_SUFFIX.log" >&2; die "module build failed"; }
	if [ -s "$MEMLAB_OUT/module-$flavour$KERNEL_SUFFIX.log" ]; then
		cat "$MEMLAB_OUT/module-$flavour$KERNEL_SUFFIX.log" >&2
		# Kbuild would reuse these objects next time, silently: drop them so
		# every run sees the warnings until they are fixed.
		rm -f "$mo/rust_memlab.o" "$mo/rust_memlab.ko"
		die "module build printed warnings (the build must be warning-free)"
	fi
}

# tools_start: memlabctl and memlab-fuzz (static, musl: the initramfs has
# no libc; the same binaries run under QEMU and UML), built in the
# background from the start: they do not depend on the kernel, so a kernel
# or module build goes on beside them (a fresh clone builds them from
# nothing, a cold cache a kernel). build_tools waits for them; if the
# script ends first (a failed kernel build), they are stopped.
tools_start() {
	note "building memlabctl and memlab-fuzz (static, musl), beside the kernel and module"
	tools_log=$(mktemp)
	# A process group of its own, so that stopping it stops rustc too.
	set -m
	cargo build --quiet --release --locked --target x86_64-unknown-linux-musl -p memlabctl -p memlab-fuzz \
		--manifest-path "$MEMLAB_ROOT/Cargo.toml" </dev/null >"$tools_log" 2>&1 &
	tools_pid=$!
	set +m
	# The values now: a set -e exit leaves main's locals unset by the time
	# an EXIT trap runs.
	trap "kill -- -$tools_pid 2>/dev/null; rm -f $(printf '%q' "$tools_log")" EXIT
}

# build_tools: waits for tools_start's build, then the initramfs ($initrd),
# packed again only when one of its inputs changed.
build_tools() {
	local rc=0
	wait "$tools_pid" || rc=$?
	trap - EXIT
	cat "$tools_log" >&2
	rm -f "$tools_log"
	[ "$rc" = 0 ] || die "building memlabctl and memlab-fuzz failed (exit $rc)"
	ctl=$MEMLAB_ROOT/target/x86_64-unknown-linux-musl/release/memlabctl
	fuzz=$MEMLAB_ROOT/target/x86_64-unknown-linux-musl/release/memlab-fuzz
	initrd=$MEMLAB_OUT/initramfs-$flavour$KERNEL_SUFFIX.cpio.gz
	# The kernel's own modules the guest needs (distro: 9p), if any.
	local kmods=
	[ ! -f "$kdir/memlab-modules/order" ] || kmods=$kdir/memlab-modules
	local input fresh=1
	for input in "$mo/rust_memlab.ko" "$ctl" "$fuzz" "$MEMLAB_ROOT/tests/vm/init" \
		"$MEMLAB_ROOT/scripts/mkinitramfs.sh" /bin/busybox ${kmods:+"$kmods/order"}; do
		[ "$initrd" -nt "$input" ] || fresh=0
	done
	[ "$fresh" = 1 ] || bash "$MEMLAB_ROOT/scripts/mkinitramfs.sh" "$mo/rust_memlab.ko" "$ctl" "$initrd" "$fuzz" ${kmods:+"$kmods"}
}

# pack_run_initrd: this run's own settings travel in a second, small cpio
# appended to the initramfs (the kernel unpacks concatenated archives in
# order): the command to run, the module parameters, the host directory of
# the share (UML) and what runs the guest, as files, so no quoting of the
# kernel command line is involved.
pack_run_initrd() {
	local extra
	extra=$(mktemp -d)
	mkdir -p "$extra/etc/memlab"
	[ "$mode" = run ] && printf '%s\n' "$run_cmd" >"$extra/etc/memlab/run.sh"
	printf '%s\n' "$module_args" >"$extra/etc/memlab/module-args"
	[ "$engine" = uml ] && [ -n "$share" ] && printf '%s\n' "$share" >"$extra/etc/memlab/hostfs-share"
	{
		echo "engine=$engine"
		echo "flavour=$flavour"
		echo "kernel_source=$(kernel_source "$flavour")"
		echo "host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	} >"$extra/etc/memlab/engine"
	run_initrd=$MEMLAB_OUT/initramfs-$flavour$KERNEL_SUFFIX-$cmd.cpio.gz
	{
		cat "$initrd"
		(cd "$extra" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0) | gzip -1
	} >"$run_initrd.tmp"
	mv "$run_initrd.tmp" "$run_initrd"
	rm -rf "$extra"
}

# pick_engine: uml for the uml flavour; for QEMU, kvm or tcg as --accel
# says (auto: KVM when it works here, else TCG and a one-line reason).
pick_engine() {
	if [ "$arch" = um ]; then
		engine=uml
		[ "$accel" = auto ] || [ -z "$accel_given" ] ||
			die "--accel/ACCEL is for the QEMU flavours; FLAVOUR=uml runs natively as a host process"
		return
	fi
	local why
	case "$accel" in
	tcg) engine=tcg ;;
	kvm)
		why=$(kvm_unusable "$flavour") && die "ACCEL=kvm: KVM is not usable here: $why (ACCEL=auto falls back to TCG)"
		engine=kvm
		;;
	auto)
		if why=$(kvm_unusable "$flavour"); then
			engine=tcg
			# Said where the rig talks anyway, or when ACCEL was asked for.
			if [ "$quiet" = 0 ] || [ -n "$accel_given" ]; then
				say "KVM not usable ($why): using TCG"
			fi
		else
			engine=kvm
		fi
		;;
	esac
}

# boot_qemu: the QEMU flavours, under $engine (kvm or tcg).
boot_qemu() {
	append="console=ttyS0 panic=-1 $append"
	# A kernel with EDD (Debian's) probes the firmware's disks before it
	# starts, and qboot passes that probe's "Probing EDD" line to the serial
	# console, where it would be the first line of every run's output.
	# There are no disks.
	grep -q '^CONFIG_EDD=' "$kdir/.config" 2>/dev/null && append+=" edd=off"
	local cpu=(-accel kvm -cpu host)
	if [ "$engine" = tcg ]; then
		# la57=off: with 5-level paging KASAN reported a wild access in
		# early boot (identify_cpu interrupted) on some runs; 4-level paging
		# is what memlab studies anyway.
		cpu=(-accel tcg -cpu max,la57=off)
		# Without ACPI (the test kernel) there is no HPET or PM timer, and
		# the PIT cannot calibrate the TSC under TCG, leaving a jiffies
		# (4 ms) clock. TCG's
		# guest TSC runs at the host's rate, so tell the guest that rate:
		# latencies get ns resolution.
		local khz
		khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
		[ -n "$khz" ] && [ "$khz" -gt 0 ] && append+=" tsc_early_khz=$khz tsc=reliable"
	fi
	# Guest RAM is only backed as it is touched. The firmware is qboot
	# (QEMU's own minimal one, from qemu-system-data): it passes QEMU's ACPI
	# tables on as SeaBIOS does, boots faster, and its MP table lists every
	# CPU, where SeaBIOS's lists only the boot CPU, so a kernel without ACPI
	# (the test kernel) still brings them all up.
	qemu=(qemu-system-x86_64 "${cpu[@]}" -bios qboot.rom -smp "$cpus" -m "$mem"
		${lowmem:+-machine "pc,max-ram-below-4g=$lowmem"}
		-kernel "$kdir/arch/x86/boot/bzImage" -initrd "$run_initrd"
		-display none -monitor none -no-reboot)
	[ -z "$share" ] || qemu+=(-fsdev "local,id=share,path=$share,security_model=none"
		-device virtio-9p-pci,fsdev=share,mount_tag=share)

	if [ "$interactive" = 1 ]; then
		run_shell
		return
	fi

	note "booting QEMU (${engine^^}, $cpus vCPUs, $mem${lowmem:+ ($lowmem below 4 GiB)}, timeout ${timeout}s); console log: $log"
	local rc
	set +e
	# timeout --foreground: in this script's process group, not one of its
	# own, so that a caller who ends the group (make test's on_exit) ends
	# QEMU too.
	if [ "$mode" = run ]; then
		# The command's stdout and stderr go to the guest's second serial
		# port (ttyS1), which is this script's stdout: the output and nothing
		# else, byte for byte. The console (ttyS0) goes to the log, and to
		# stdout too with --verbose. QEMU's own messages go to a file.
		local qerr=$MEMLAB_OUT/qemu-$flavour$KERNEL_SUFFIX-$cmd.err
		rm -f "$log"
		if [ "$verbose" = 1 ]; then
			timeout --foreground -k 10 "$timeout" "${qemu[@]}" -append "$append" \
				-chardev "stdio,id=con,mux=on,logfile=$log,logappend=off" \
				-serial chardev:con -serial chardev:con </dev/null 2>"$qerr"
		else
			timeout --foreground -k 10 "$timeout" "${qemu[@]}" -append "$append" \
				-chardev "file,id=con,path=$log" -serial chardev:con \
				-chardev stdio,id=out -serial chardev:out </dev/null 2>"$qerr"
		fi
		rc=$?
		sed -i 's/\r$//' "$log" 2>/dev/null
		if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$rc" != 137 ] && [ -s "$qerr" ]; then
			cat "$qerr" >&2
		fi
	else
		timeout --foreground -k 10 "$timeout" "${qemu[@]}" -append "$append" -serial stdio </dev/null |
			sed -u 's/\r$//' | tee "$log"
		rc=${PIPESTATUS[0]}
	fi
	set -e
	verdict "$rc"
}

# boot_uml: the uml flavour. The kernel is a host process: its console
# (con0) is written to the log, a run's output port (ssl1, the guest's
# ttyS1) is this script's stdout. It runs in a process group of its own
# (job control on for that one job), since a panicking UML signals its whole
# process group (os_dump_core), and with core dumps off; the time limit
# kills that group. Not a session of its own: under the scheduler's
# autogroups that would take it out of its caller's nice (make test runs
# its native suites at nice 10 beside the test kernel's job).
boot_uml() {
	local uml=("$kdir/vmlinux" "mem=$(mib "$mem")M" "ncpus=$cpus" seccomp=on
		"initrd=$run_initrd" con=null ssl=null)
	if [ "$interactive" = 1 ]; then
		note "starting UML ($cpus CPUs, $mem); console log: $log"
		local saved rc=0
		saved=$(stty -g)
		set +e
		(ulimit -c 0; exec "${uml[@]}" con0=fd:0,fd:1 $append) | tee "$log"
		rc=${PIPESTATUS[0]}
		set -e
		end_shell "$rc" "$saved"
		return
	fi
	note "starting UML ($cpus CPUs, $mem, native; timeout ${timeout}s); console log: $log"
	rm -f "$log"
	: >"$log"
	local out=(ssl1=null)
	[ "$mode" = run ] && out=(ssl1=null,fd:1)
	set -m
	# SIGTTOU ignored: a run's output port may be the terminal, and UML
	# sets its lines raw (tcsetattr), which stops a background group.
	(ulimit -c 0; trap '' TTOU TTIN; exec "${uml[@]}" con0=null,fd:3 "${out[@]}" $append) \
		</dev/null 3>>"$log" 2>>"$MEMLAB_OUT/uml-$flavour$KERNEL_SUFFIX-$cmd.err" &
	local pid=$! follow=""
	set +m
	# The console as it comes: to stdout for the jobs, and with --verbose
	# for a run; stops when the kernel's process does.
	if [ "$mode" != run ] || [ "$verbose" = 1 ]; then
		tail -n +1 -f --pid="$pid" "$log" | sed -u 's/\r$//' &
		follow=$!
	fi
	local rc=0 waited=0 wrc=0
	# With stderr quiet until the kernel is reaped: bash reports a
	# background job that died of a signal (a panicking UML aborts, a timed
	# out one is killed) on its stderr, and verdict says it in one line.
	{
		while kill -0 "$pid" && [ "$waited" -lt "$timeout" ]; do
			sleep 1
			waited=$((waited + 1))
		done
		if kill -0 "$pid"; then
			kill -KILL -- "-$pid" || kill -KILL "$pid" || true
			rc=124
		fi
		wait "$pid" || wrc=$?
	} 2>/dev/null
	[ "$rc" = 124 ] || rc=$wrc
	[ -z "$follow" ] || wait "$follow" 2>/dev/null || true
	# Whatever of the session is left (helper processes of a dead kernel).
	kill -KILL -- "-$pid" 2>/dev/null || true
	sed -i 's/\r$//' "$log" 2>/dev/null || true
	verdict "$rc"
}

# The interactive shell: QEMU owns the terminal (raw, with Ctrl-C passed to
# the guest: signal=off; mux=on for QEMU's Ctrl-A escapes) and copies the
# console to the log itself.
run_shell() {
	local rows cols
	read -r rows cols < <(stty size 2>/dev/null || echo "0 0")
	[ "${rows:-0}" -gt 0 ] && [ "${cols:-0}" -gt 0 ] && append+=" memlab.tty=${rows}x${cols}"
	local saved
	saved=$(stty -g)
	rm -f "$log"
	set +e
	"${qemu[@]}" -append "$append" \
		-chardev "stdio,id=con,mux=on,signal=off,logfile=$log,logappend=off" -serial chardev:con
	local rc=$?
	set -e
	end_shell "$rc" "$saved"
}

# end_shell STATUS SAVED_STTY: after an interactive shell (QEMU or UML),
# the terminal restored and the session judged: one that ended cleanly is
# a success, whatever the last command typed returned; a VM that died, or
# memlab not loading, is not.
end_shell() {
	stty "$2" 2>/dev/null || true
	sed -i 's/\r$//' "$log" 2>/dev/null || true
	# The guest erased its sentinel line on the terminal; end on a clean line.
	printf '\n'
	local st=0
	verdict "$1" || st=$?
	if [ "$st" != 124 ] && [ "$st" != 125 ] && ! grep -aq '^MEMLAB: insmod failed' "$log"; then
		st=0
	fi
	return "$st"
}

# verdict QEMU_STATUS: the run's status, with a one-line message if the VM
# did not end the way tests/vm/init ends it.
verdict() {
	local qrc=$1
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		printf '[memlab] error: the VM timed out after %ss (console: %s)\n' "$timeout" "$log" >&2
		return 124
	fi
	local panic
	panic=$(grep -a -m 1 -o 'Kernel panic - .*' "$log" | tr -d '\r' || true)
	if [ -n "$panic" ]; then
		printf '[memlab] error: the guest kernel panicked: %s (console: %s)\n' "$panic" "$log" >&2
		return 125
	fi
	local status
	status=$(grep -a -o "MEMLAB-EXIT: [0-9]*" "$log" | tail -n 1 | cut -d' ' -f2 || true)
	if [ -z "$status" ]; then
		if [ "$qrc" != 0 ]; then
			printf '[memlab] error: QEMU failed (exit %s) before the guest finished (console: %s)\n' "$qrc" "$log" >&2
		else
			printf '[memlab] error: the VM died before the guest finished: no MEMLAB-EXIT line (console: %s)\n' "$log" >&2
		fi
		return 125
	fi
	if grep -aq '^MEMLAB: insmod failed' "$log"; then
		printf '[memlab] error: insmod rust_memlab.ko failed in the guest (module args: %s; console: %s)\n' \
			"${module_args:-none}" "$log" >&2
	fi
	return "$status"
}
main "$@"; exit
