// SPDX-License-Identifier: GPL-2.0

//! The `alloc`, `exercise` and `report` commands.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::names;
use std::fs;
use std::process::ExitCode;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("memlabctl: {msg}");
    ExitCode::FAILURE
}

/// Parses a size like `4096`, `64K`, `2M`.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Header of the block table.
pub const BLOCK_HEADER: &str = "handle family     gfp                      size     usable  zone    first_pfn  pages  runs  align  zeroed    alloc_ns  dma_addr";

/// One row of the block table.
pub fn block_row(i: &uapi::MemlabBlockInfo) -> String {
    format!(
        "{:>6} {:<10} {:<22} {:>8} {:>10}  {:<6} {:>10} {:>6} {:>5}  2^{:<3}  {:<6} {:>10}  {}",
        i.handle,
        names::name_of(names::FAMILIES, i.family),
        names::gfp_name(i.gfp),
        i.size,
        i.usable,
        names::zone_name(i.zone),
        format!("{:#x}", i.first_pfn),
        i.nr_pages,
        i.phys_runs,
        i.align_log2,
        if i.zeroed != 0 { "yes" } else { "-" },
        i.alloc_ns,
        if i.family == uapi::MEMLAB_FAMILY_DMA {
            format!("{:#x}", i.dma_addr)
        } else {
            "-".into()
        }
    )
}

/// One block as JSON.
pub fn block_json(i: &uapi::MemlabBlockInfo) -> String {
    format!(
        "{{\"handle\":{},\"family\":\"{}\",\"gfp\":\"{}\",\"size\":{},\"usable\":{},\"zone\":\"{}\",\"first_pfn\":{},\"nr_pages\":{},\"phys_runs\":{},\"dma_addr\":{},\"align_log2\":{},\"zeroed\":{},\"alloc_ns\":{}}}",
        i.handle,
        names::name_of(names::FAMILIES, i.family),
        names::gfp_name(i.gfp),
        i.size,
        i.usable,
        names::zone_name(i.zone),
        i.first_pfn,
        i.nr_pages,
        i.phys_runs,
        i.dma_addr,
        i.align_log2,
        i.zeroed != 0,
        i.alloc_ns
    )
}

/// `memlabctl alloc FAMILY SIZE|order=N [gfp=G[+zero]] [align=N] [count=N]
/// [backend=real|mirror] [--json]`:
/// allocates, prints what the kernel handed out, frees everything on exit
/// (handles belong to the open file).
pub fn alloc(args: &[String]) -> ExitCode {
    let Some(family) = args.first().and_then(|f| names::lookup(names::FAMILIES, f)) else {
        return fail("alloc: first argument must be kmalloc, vmalloc, pages, kmem_cache or dma");
    };
    let mut req = uapi::MemlabAlloc {
        family,
        ..Default::default()
    };
    let mut count = 1u32;
    let mut json = false;
    for a in &args[1..] {
        let parsed = if a == "--json" {
            json = true;
            Some(())
        } else if let Some(v) = a.strip_prefix("order=") {
            v.parse().ok().map(|o| req.order = o)
        } else if let Some(v) = a.strip_prefix("gfp=") {
            names::parse_gfp(v).map(|g| req.gfp = g)
        } else if let Some(v) = a.strip_prefix("align=") {
            parse_size(v)
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| req.align = n)
        } else if let Some(v) = a.strip_prefix("backend=") {
            let backend = match v {
                "real" => Some(uapi::MEMLAB_BACKEND_REAL),
                "mirror" => Some(uapi::MEMLAB_BACKEND_MIRROR),
                _ => None,
            };
            backend.map(|b| req.backend = b)
        } else if let Some(v) = a.strip_prefix("count=") {
            v.parse().ok().map(|n| count = n)
        } else {
            parse_size(a).map(|s| req.size = s)
        };
        if parsed.is_none() {
            return fail(format!("alloc: cannot parse '{a}'"));
        }
    }
    let dev = match Memlab::open() {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", crate::dev::DEV_PATH)),
    };
    if !json {
        println!("{BLOCK_HEADER}");
    }
    let mut rows = Vec::new();
    for _ in 0..count {
        match dev.alloc(&req).and_then(|h| dev.inspect(h)) {
            Ok(info) if json => rows.push(block_json(&info)),
            Ok(info) => println!("{}", block_row(&info)),
            Err(e) => return fail(format!("alloc: {e}")),
        }
    }
    if json {
        println!("[{}]", rows.join(","));
    }
    ExitCode::SUCCESS
}

/// `memlabctl exercise NAME|all [reps=N] [--json]`.
pub fn exercise(args: &[String]) -> ExitCode {
    let mut reps = 0;
    let mut json = false;
    let mut which: Vec<(&str, u32)> = Vec::new();
    for a in args {
        if a == "--json" {
            json = true;
        } else if let Some(v) = a.strip_prefix("reps=") {
            match v.parse() {
                Ok(n) => reps = n,
                Err(_) => return fail(format!("exercise: bad reps '{v}'")),
            }
        } else if a == "all" {
            which.extend_from_slice(names::EXERCISES);
        } else if let Some(id) = names::lookup(names::EXERCISES, a) {
            which.push((names::name_of(names::EXERCISES, id), id));
        } else {
            return fail(format!(
                "exercise: unknown exercise '{a}' (kmalloc vmalloc pages kmem_cache dma gfp all)"
            ));
        }
    }
    if which.is_empty() {
        return fail("exercise: name one of kmalloc vmalloc pages kmem_cache dma gfp all");
    }
    let dev = match Memlab::open() {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", crate::dev::DEV_PATH)),
    };
    let mut ok = true;
    let mut rows = Vec::new();
    if !json {
        println!("exercise     cases  passed   median_ns      p99_ns");
    }
    for (name, id) in which {
        match dev.exercise(id, reps) {
            Ok(s) => {
                ok &= s.passed == s.cases;
                if json {
                    rows.push(format!(
                        "{{\"exercise\":\"{name}\",\"cases\":{},\"passed\":{},\"median_ns\":{},\"p99_ns\":{}}}",
                        s.cases, s.passed, s.median_ns, s.p99_ns
                    ));
                } else {
                    println!(
                        "{name:<12} {:>5}  {:>6} {:>11} {:>11}",
                        s.cases, s.passed, s.median_ns, s.p99_ns
                    );
                }
            }
            Err(e) => return fail(format!("exercise {name}: {e}")),
        }
    }
    if json {
        println!("[{}]", rows.join(","));
    } else {
        println!("(full report: {DEBUGFS}/real/report)");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        fail("some cases did not behave as expected; see the report")
    }
}

/// `memlabctl report [--json]`: the last run of each exercise, from debugfs.
pub fn report(args: &[String]) -> ExitCode {
    let file = if args.iter().any(|a| a == "--json") {
        "report.json"
    } else {
        "report"
    };
    match fs::read_to_string(format!("{DEBUGFS}/real/{file}")) {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{DEBUGFS}/real/{file}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("2m"), Some(2 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }
}
