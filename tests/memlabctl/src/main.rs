// SPDX-License-Identifier: GPL-2.0

//! `memlabctl`: the user-space side of memlab inside the VM.
//!
//! Built statically (x86_64-unknown-linux-musl) for the busybox initramfs.
//! `memlabctl --help` and `memlabctl SUBCOMMAND --help` describe it all:
//!
//! ```text
//! memlabctl version [--json]          ABI version of the loaded module
//! memlabctl demo                      what the module exposes, for people
//! memlabctl test [--inject-failure] [--list] [--only TEXT]   in-VM tests, TAP on stdout
//! memlabctl alloc FAMILY [SIZE] [order=N] [gfp=G[+zero]] [align=N] [count=N] [backend=real|mirror] [--json]
//! memlabctl exercise NAME...|all [reps=N] [--json]
//! memlabctl report [--json]
//! memlabctl bench [scale=N] [--json]  standard workloads, real vs mirror
//! memlabctl replay FILE [--backend real|mirror|both] [--per-step | --compare] [--json]
//! memlabctl frag [--steps N] [--sample-every S] [--seed X] [--live N] [--out FILE] [--json]
//! memlabctl trace record [-o FILE] [--json-stats] [--buffer-kb N] -- CMD ARGS...
//! memlabctl pagemap --real|--mirror [--zone NAME] [-o FILE]
//! memlabctl slabinfo [REGEX] [--side real|mirror|both] [-T] [-z] [-S|-L|-P] [-B] [--json]
//! memlabctl ab [--json FILE] A:DIR B:DIR B:DIR A:DIR ...   (host) two kernels' bench.json
//! memlabctl diverge [--trace FILE | --stream fragment|mixed] [--steps N] [--seed X] [--fill PCT] [--sample-every S] [--out FILE] [--json] [--all]
//! ```
//!
//! Every `key=value` may also be written `--key value`.

mod args;
mod bench;
mod cli;
mod demo;
mod dev;
mod diverge;
mod engine;
mod explain;
mod frag;
mod kpage;
mod names;
mod replay;
mod slabinfo;
mod slabstat;
mod suite;
mod tap;
mod trace;
mod tracefs;

use args::Cmd;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed stdout (`memlabctl exercise all | head -1`) ends memlabctl
    // quietly, as it ends any filter: SIGPIPE's default action, which the
    // Rust runtime sets to ignore (a write would then fail with EPIPE and
    // println! panic). `bench` ignores it again so that it still writes
    // --out.
    // SAFETY: sets a signal disposition to the default before any thread
    // starts; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match args::parse(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version come here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.cmd {
        Cmd::Version { json } => cli::version(json),
        Cmd::Demo => demo::demo(),
        Cmd::Test {
            inject_failure,
            list,
            only,
        } => suite::run(inject_failure, list, only.as_deref()),
        Cmd::Alloc(a) => cli::alloc(&a),
        Cmd::Exercise(a) => cli::exercise(&a),
        Cmd::Report { json } => cli::report(json),
        Cmd::Bench(a) => bench::bench(&a),
        Cmd::Ab { json, boots } => bench::ab(&boots, json.as_ref()),
        Cmd::Replay(a) => replay::replay(&a),
        Cmd::Frag(a) => frag::frag(&a),
        Cmd::Trace(args::TraceCmd::Record(a)) => tracefs::record_cmd(&a),
        Cmd::Slabinfo(a) => slabinfo::slabinfo(&a),
        Cmd::Diverge(a) => diverge::diverge(&a),
        Cmd::Pagemap(a) => kpage::pagemap_cmd(a.side.mirror, a.zone.as_deref(), a.output.as_ref()),
    }
}
