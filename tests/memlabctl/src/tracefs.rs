// SPDX-License-Identifier: GPL-2.0

//! `memlabctl trace record`: the kmem tracepoints around a command, through
//! a tracefs instance of our own (`instances/memlabctl-PID`: its own ring
//! buffer, events and options, removed afterwards, so the global tracing
//! state is left as it was).

use crate::args::TraceRecordArgs;
use crate::cli::{fail, json_line};
use crate::trace::{self, Stats, EVENTS};
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Where tracefs is mounted (or mounted by us).
pub const TRACEFS: &str = "/sys/kernel/tracing";

fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("writing {value:?} to {}: {e}", path.display()))
}

/// tracefs' root, mounting it at [`TRACEFS`] if needed.
pub fn mount() -> Result<PathBuf, String> {
    let root = Path::new(TRACEFS);
    if root.join("events").is_dir() {
        return Ok(root.into());
    }
    if !root.is_dir() {
        return Err(format!(
            "{TRACEFS} does not exist: this kernel has no tracefs (CONFIG_FTRACE / CONFIG_TRACING)"
        ));
    }
    // SAFETY: every argument is a NUL-terminated literal; a null `data` is
    // allowed for tracefs.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mount -t tracefs nodev {TRACEFS}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(root.into())
}

/// One line for `memlabctl bench`: are kmem tracepoints on anywhere (the
/// top-level buffer or any instance)? They add a trace call, and when
/// enabled a ring-buffer write, to every allocation the bench times.
pub fn kmem_events_note() -> String {
    let root = Path::new(TRACEFS);
    if !root.join("events").is_dir() {
        return "off (tracefs not mounted)".into();
    }
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rd) = fs::read_dir(root.join("instances")) {
        dirs.extend(rd.flatten().map(|e| e.path()));
    }
    let on: Vec<String> = dirs
        .iter()
        .filter(|d| {
            fs::read_to_string(d.join("events/kmem/enable"))
                .is_ok_and(|s| matches!(s.trim(), "1" | "X"))
        })
        .map(|d| d.display().to_string())
        .collect();
    if on.is_empty() {
        "off (events/kmem/enable is 0)".into()
    } else {
        format!(
            "ON in {} (every allocation also writes a trace event)",
            on.join(", ")
        )
    }
}

/// Our tracefs instance; removed on drop (after disabling its events).
struct Instance {
    dir: PathBuf,
}

impl Instance {
    fn create(root: &Path) -> Result<Self, String> {
        let dir = root.join(format!("instances/memlabctl-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        Ok(Instance { dir })
    }

    fn event(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join(format!("events/kmem/{name}/{file}"))
    }

    fn set_events(&self, events: &[&str], on: bool) -> Result<(), String> {
        events
            .iter()
            .try_for_each(|e| write(&self.event(e, "enable"), if on { "1" } else { "0" }))
    }

    /// Events the ring buffer lost: `overrun` (overwritten) plus `dropped
    /// events`, summed over CPUs.
    fn lost(&self) -> u64 {
        let Ok(rd) = fs::read_dir(self.dir.join("per_cpu")) else {
            return 0;
        };
        rd.flatten()
            .filter_map(|cpu| fs::read_to_string(cpu.path().join("stats")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        matches!(k, "overrun" | "dropped events")
                            .then(|| v.trim().parse::<u64>().ok())?
                    })
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = write(&self.dir.join("events/enable"), "0");
        let _ = fs::remove_dir(&self.dir);
    }
}

/// What to record and how.
pub struct Recording<'a> {
    pub cmd: &'a [String],
    /// Ring buffer per CPU, KiB.
    pub buffer_kb: u32,
    /// Where CMD's standard output goes.
    pub child_stdout: Stdio,
}

/// Runs `r.cmd` with the kmem events on; returns the trace in memlab's
/// format, the stats, and CMD's exit status.
pub fn record(r: Recording) -> Result<(String, Stats, Option<i32>), String> {
    let Some((prog, args)) = r.cmd.split_first() else {
        return Err("no command given (trace record -- CMD ARGS...)".into());
    };
    let root = mount()?;
    for e in EVENTS {
        let f = root.join(format!("events/kmem/{e}/format"));
        if !f.is_file() {
            return Err(format!(
                "tracefs has no event kmem:{e} ({} missing: kernel without CONFIG_TRACEPOINTS/EVENT_TRACING?)",
                f.display()
            ));
        }
    }
    let inst = Instance::create(&root)?;
    write(&inst.dir.join("buffer_size_kb"), &r.buffer_kb.to_string())?;
    // Raw pointers: hashed ones (the default) would pair as well, but 32-bit
    // hashes can collide over a long trace.
    let _ = write(&inst.dir.join("options/hash-ptr"), "0");
    // Not memlabctl's own allocations (opening and reading tracefs).
    let filter = format!("common_pid != {}", std::process::id());
    for e in EVENTS {
        write(&inst.event(e, "filter"), &filter)?;
    }
    inst.set_events(&EVENTS, true)?;
    let status = Command::new(prog)
        .args(args)
        .stdout(r.child_stdout)
        .status();
    let off = inst.set_events(&EVENTS, false);
    let status = status.map_err(|e| format!("cannot run {prog}: {e}"))?;
    off?;
    let lost = inst.lost();
    let path = inst.dir.join("trace");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(inst);
    let (steps, mut stats) = trace::convert(&text);
    stats.lost_events = lost;
    let mut out = format!(
        "# memlab trace 1: kmem tracepoints around `{}`, recorded by memlabctl trace record\n\
         # a ID FAMILY ARG [gfp=NAME] / f ID; objects live at the end stay allocated\n",
        r.cmd.join(" ")
    );
    out.push_str(&steps);
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|sig| 128 + sig));
    Ok((out, stats, code))
}

/// `memlabctl trace record [-o FILE] [--json-stats] [--buffer-kb N] -- CMD...`.
pub fn record_cmd(a: &TraceRecordArgs) -> ExitCode {
    // With the trace on stdout, CMD's output goes to stderr.
    let child_stdout = if a.output.is_some() {
        Stdio::inherit()
    } else {
        match io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => Stdio::from(fd),
            Err(e) => return fail(format!("trace record: {e}")),
        }
    };
    let (text, stats, status) = match record(Recording {
        cmd: &a.cmd,
        buffer_kb: a.buffer_kb,
        child_stdout,
    }) {
        Ok(r) => r,
        Err(e) => return fail(format!("trace record: {e}")),
    };
    let written = match &a.output {
        Some(path) => fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display())),
        None => io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
        return fail(format!("trace record: {e}"));
    }
    if a.json_stats {
        eprintln!("{}", json_line(&stats));
    } else {
        eprintln!("{}", stats.human());
        match status {
            Some(0) => {}
            Some(c) if c > 128 => eprintln!("  (the command was killed by signal {})", c - 128),
            Some(c) => eprintln!("  (the command exited with status {c})"),
            None => eprintln!("  (the command ended without a status)"),
        }
    }
    if stats.lost_events > 0 {
        eprintln!(
            "memlabctl: warning: the ring buffer lost {} events: pairing is incomplete; raise --buffer-kb",
            stats.lost_events
        );
    }
    // CMD's status is the command's: the trace is written either way.
    exit_code(status)
}

/// The status `trace record` passes on for CMD's: its exit status, 128 +
/// the signal that killed it (as a shell reports it), 1 without either.
fn exit_code(status: Option<i32>) -> ExitCode {
    match status {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use crate::args::{parse, Cmd, PagemapArgs, TraceCmd, TraceRecordArgs};
    use std::ffi::OsString;

    fn p(line: &str) -> Result<Cmd, clap::error::ErrorKind> {
        parse(
            std::iter::once("memlabctl")
                .chain(line.split_whitespace())
                .map(OsString::from),
        )
        .map(|c| c.cmd)
        .map_err(|e| e.kind())
    }

    #[test]
    fn the_command_status_is_passed_on() {
        use std::process::ExitCode;
        assert_eq!(super::exit_code(Some(0)), ExitCode::SUCCESS);
        assert_eq!(super::exit_code(Some(3)), ExitCode::from(3));
        assert_eq!(super::exit_code(Some(128 + 9)), ExitCode::from(137));
        assert_eq!(super::exit_code(None), ExitCode::FAILURE);
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            p("trace record -o /share/t --json-stats -- find / -name x"),
            Ok(Cmd::Trace(TraceCmd::Record(TraceRecordArgs {
                output: Some("/share/t".into()),
                json_stats: true,
                buffer_kb: 32768,
                cmd: ["find", "/", "-name", "x"].map(String::from).to_vec(),
            })))
        );
        // CMD's own options are CMD's, even ones memlabctl also has.
        assert!(matches!(
            p("trace record -- tar -o x"),
            Ok(Cmd::Trace(TraceCmd::Record(TraceRecordArgs {
                output: None,
                ..
            })))
        ));
        assert!(p("trace record").is_err());
        assert!(p("trace record --buffer-kb 1 -- true").is_err());
        let Ok(Cmd::Pagemap(PagemapArgs { side, zone, output })) =
            p("pagemap --real --zone Normal -o m.txt")
        else {
            panic!("pagemap --real did not parse");
        };
        assert!(side.real && !side.mirror);
        assert_eq!(
            (zone.as_deref(), output),
            (Some("Normal"), Some("m.txt".into()))
        );
        assert!(p("pagemap").is_err());
        assert!(p("pagemap --real --mirror").is_err());
        assert!(p("pagemap --mirror --zone DMA").is_err());
    }
}
