// SPDX-License-Identifier: GPL-2.0

//! `memlabctl demo`: what the module exposes, for people.

use crate::cli::{block_header, BlockRow};
use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::names;
use std::fs;
use std::process::ExitCode;

/// Prints `path` (at most `max_lines`); false if it cannot be read.
fn show_file(path: &str, max_lines: usize) -> Option<String> {
    println!("\n$ cat {path}");
    match fs::read_to_string(path) {
        Ok(s) => {
            for l in s.lines().take(max_lines) {
                println!("{l}");
            }
            if s.lines().count() > max_lines {
                println!("... ({} lines in all)", s.lines().count());
            }
            Some(s)
        }
        Err(e) => {
            println!("memlabctl: {path}: {e}");
            None
        }
    }
}

/// The same requests on both backends, one table: what the kernel's
/// allocators hand out next to what memlab's mirror hands out.
fn side_by_side(d: &Memlab) -> bool {
    use uapi::*;
    let req = |family, size, order, gfp, align| MemlabAlloc {
        family,
        gfp,
        size,
        order,
        align,
        ..Default::default()
    };
    let reqs: [(&str, MemlabAlloc); 9] = [
        ("kmalloc 100 B", req(MEMLAB_FAMILY_KMALLOC, 100, 0, 0, 0)),
        ("kmalloc 5000 B", req(MEMLAB_FAMILY_KMALLOC, 5000, 0, 0, 0)),
        ("kmalloc 64 KiB", req(MEMLAB_FAMILY_KMALLOC, 65536, 0, 0, 0)),
        ("pages order 3", req(MEMLAB_FAMILY_PAGES, 0, 3, 0, 0)),
        (
            "pages, GFP_DMA",
            req(MEMLAB_FAMILY_PAGES, 0, 0, MEMLAB_GFP_DMA, 0),
        ),
        (
            "pages, GFP_DMA32",
            req(MEMLAB_FAMILY_PAGES, 0, 0, MEMLAB_GFP_DMA32, 0),
        ),
        (
            "kmem_cache 100 B align 256",
            req(MEMLAB_FAMILY_KMEM_CACHE, 100, 0, 0, 256),
        ),
        (
            "vmalloc 1 MiB",
            req(MEMLAB_FAMILY_VMALLOC, 1 << 20, 0, 0, 0),
        ),
        (
            "dma 64 KiB, GFP_DMA32",
            req(MEMLAB_FAMILY_DMA, 64 << 10, 0, MEMLAB_GFP_DMA32, 0),
        ),
    ];
    println!("\n-- real vs mirror: the same requests on both backends --");
    println!("{:<28} {:<7} {}", "request", "backend", block_header());
    let mut ok = true;
    for (what, req) in reqs {
        for (bname, backend) in [
            ("real", MEMLAB_BACKEND_REAL),
            ("mirror", MEMLAB_BACKEND_MIRROR),
        ] {
            let r = MemlabAlloc { backend, ..req };
            match d.alloc(&r).and_then(|h| d.inspect(h)) {
                Ok(i) => println!(
                    "{what:<28} {bname:<7} {}",
                    BlockRow::new(&i, backend).human()
                ),
                Err(e) if crate::dev::is_no_dma(r.family, &e) => {
                    println!("{what:<28} {bname:<7} skipped: {}", crate::dev::NO_DMA);
                }
                Err(e) => {
                    ok = false;
                    println!(
                        "{what:<28} {bname:<7} {} failed: {e}",
                        names::family_api(r.family, backend)
                    );
                }
            }
        }
    }
    println!("(call: the kernel function; on the mirror, memlab's function of that name, or what maps its pages)");
    ok
}

pub fn demo() -> ExitCode {
    println!("== memlab demo ==");
    let d = match crate::cli::open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    match d.version() {
        Ok(v) => println!(
            "/dev/memlab: ABI {}, page size {} B, MAX_PAGE_ORDER {}",
            v.abi_version, v.page_size, v.max_page_order
        ),
        Err(e) => return crate::cli::fail(format!("VERSION: {e}")),
    }
    let mut ok = true;
    println!("\n-- 1. the real allocators: every exercise --");
    ok &= crate::cli::run_exercises(names::EXERCISES, 0, false) == ExitCode::SUCCESS;
    match show_file(&format!("{DEBUGFS}/real/report"), 400) {
        Some(text) => crate::cli::print_legend(&text),
        None => ok = false,
    }
    ok &= side_by_side(&d);
    println!("\n-- 2. the mirror's own view, in the kernel's formats --");
    for f in [
        "pool",
        "buddyinfo",
        "extfrag_index",
        "unusable_index",
        "slabinfo",
    ] {
        ok &= show_file(&format!("{DEBUGFS}/mirror/{f}"), 40).is_some();
    }
    println!("\n-- 3. the kernel's own free lists, for comparison --");
    ok &= show_file("/proc/buddyinfo", 10).is_some();
    if ok {
        ExitCode::SUCCESS
    } else {
        crate::cli::fail("demo: some steps failed (see above)")
    }
}
