// SPDX-License-Identifier: GPL-2.0

//! What runs this guest: the engine (QEMU's TCG emulator, QEMU with KVM,
//! or User-Mode Linux), the kernel flavour and source (Debian's package,
//! or a tree and its commit) and the host's CPU model, as
//! scripts/run-vm.sh wrote them into `/etc/memlab/engine` (`key=value`
//! lines). Every timing report names them: a latency means something only
//! with the engine that produced it.

use serde::Serialize;
use std::fs;

/// The file run-vm.sh leaves in every initramfs.
const ENGINE_FILE: &str = "/etc/memlab/engine";

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Engine {
    /// `tcg`, `kvm`, `uml`, or `unknown`.
    pub engine: String,
    /// The kernel flavour: `test`, `bench`, `uml`.
    pub flavour: String,
    /// Where the kernel comes from: `Debian linux-source-7.2 7.2.13-1`,
    /// or `tree /path (git 0123abcd, dirty)` for a KSRC tree.
    pub kernel_source: String,
    /// The host's CPU model (`/proc/cpuinfo` on the host).
    pub host_cpu: String,
}

impl Engine {
    /// This guest's engine, from the file, else from the kernel command line.
    pub fn current() -> Self {
        let text = fs::read_to_string(ENGINE_FILE).unwrap_or_default();
        let mut e = Self::parse(&text);
        let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
        for w in cmdline.split_whitespace() {
            if let (true, Some(v)) = (e.engine.is_empty(), w.strip_prefix("memlab.engine=")) {
                e.engine = v.into();
            }
            if let (true, Some(v)) = (e.flavour.is_empty(), w.strip_prefix("memlab.flavour=")) {
                e.flavour = v.into();
            }
        }
        for f in [
            &mut e.engine,
            &mut e.flavour,
            &mut e.kernel_source,
            &mut e.host_cpu,
        ] {
            if f.is_empty() {
                *f = "unknown".into();
            }
        }
        e
    }

    /// The `key=value` lines of the engine file; unknown keys are ignored.
    pub fn parse(text: &str) -> Self {
        let mut e = Engine::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("engine", v)) => e.engine = v.trim().into(),
                Some(("flavour", v)) => e.flavour = v.trim().into(),
                Some(("kernel_source", v)) => e.kernel_source = v.trim().into(),
                Some(("host_cpu", v)) => e.host_cpu = v.trim().into(),
                _ => {}
            }
        }
        e
    }

    /// The engine as a report names it, with what it means for timings.
    pub fn label(&self) -> String {
        match self.engine.as_str() {
            "tcg" => "TCG (QEMU's emulator: emulated timings)".into(),
            "kvm" => "KVM (QEMU, virtualised: the host CPU's timings)".into(),
            "uml" => "UML (User-Mode Linux: kernel code native on the host CPU)".into(),
            other => format!("{other} (engine not recorded)"),
        }
    }

    /// One line for report headers: engine, kernel, flavour, the kernel's
    /// source and host CPU.
    pub fn describe(&self, kernel_release: &str) -> String {
        format!(
            "engine {}, kernel {} ({} flavour, {}), host CPU {}",
            self.label(),
            kernel_release,
            self.flavour,
            self.kernel_source,
            self.host_cpu
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_file_run_vm_writes() {
        let e = Engine::parse(
            "engine=uml\nflavour=uml\nkernel_source=Debian linux-source-7.2 7.2.13-1\n\
             host_cpu=AMD EPYC 7B13\nother=x\n",
        );
        assert_eq!(e.engine, "uml");
        assert_eq!(e.flavour, "uml");
        assert_eq!(e.kernel_source, "Debian linux-source-7.2 7.2.13-1");
        assert_eq!(e.host_cpu, "AMD EPYC 7B13");
        assert!(e.label().starts_with("UML"));
        assert!(e.describe("7.2.13").contains(
            "kernel 7.2.13 (uml flavour, Debian linux-source-7.2 7.2.13-1), host CPU AMD EPYC 7B13"
        ));
    }

    #[test]
    fn an_unknown_engine_says_so() {
        let e = Engine::parse("engine=xen\n");
        assert_eq!(e.label(), "xen (engine not recorded)");
        assert_eq!(Engine::parse("").engine, "");
    }
}
