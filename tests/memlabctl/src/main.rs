// SPDX-License-Identifier: GPL-2.0

//! `memlabctl`: the user-space side of memlab inside the VM.
//!
//! Built statically (x86_64-unknown-linux-musl) for the busybox initramfs.
//!
//! ```text
//! memlabctl version                 ABI version of the loaded module
//! memlabctl demo                    what the module exposes, for people
//! memlabctl test [--inject-failure] in-VM tests, TAP on stdout
//! memlabctl alloc FAMILY SIZE|order=N [gfp=G[+zero]] [align=N] [count=N] [backend=real|mirror] [--json]
//! memlabctl exercise NAME|all [reps=N] [--json]
//! memlabctl report [--json]
//! memlabctl bench [scale=N]          standard workloads, real vs mirror
//! memlabctl replay FILE [--backend real|mirror|both]
//! ```

mod bench;
mod cli;
mod dev;
mod mirror_tests;
mod names;
mod real_tests;
mod tap;
mod tests;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: memlabctl version | demo | test [--inject-failure]\n\
         \x20      memlabctl alloc kmalloc|vmalloc|pages|kmem_cache|dma SIZE|order=N \
         [gfp=GFP_KERNEL[+zero]] [align=N] [count=N] [backend=real|mirror] [--json]\n\
         \x20      memlabctl exercise kmalloc|vmalloc|pages|kmem_cache|dma|gfp|all [reps=N] [--json]\n\
         \x20      memlabctl report [--json]\n\
         \x20      memlabctl bench [scale=N]\n\
         \x20      memlabctl replay FILE [--backend real|mirror|both]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("version") => match dev::Memlab::open().and_then(|d| d.version()) {
            Ok(v) => {
                println!(
                    "memlab ABI {} (struct {} B, page {} B, MAX_PAGE_ORDER {})",
                    v.abi_version, v.struct_size, v.page_size, v.max_page_order
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("memlabctl: {}: {e}", dev::DEV_PATH);
                ExitCode::FAILURE
            }
        },
        Some("demo") => tests::demo(),
        Some("alloc") => cli::alloc(&args[1..]),
        Some("exercise") => cli::exercise(&args[1..]),
        Some("report") => cli::report(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("replay") => bench::replay(&args[1..]),
        Some("test") => {
            let inject = args[1..].iter().any(|a| a == "--inject-failure");
            if args[1..].iter().any(|a| a != "--inject-failure") {
                return usage();
            }
            tests::run(inject)
        }
        _ => usage(),
    }
}
