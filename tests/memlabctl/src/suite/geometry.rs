// SPDX-License-Identifier: GPL-2.0

//! The mirror's slab geometry against SLUB's, cache by cache: for every
//! `kmalloc-N` cache the mirror's `mirror/slabinfo` line has the objsize,
//! objperslab and pagesperslab of the kernel's `/proc/slabinfo` line.
//!
//! Under KASAN (the test kernel) the kernel's object sizes carry KASAN's
//! metadata, so the lines cannot be equal there. What is checked on every
//! kernel is the rule: SLUB's `calculate_order()`, compiled here from the
//! very file the module uses (`src/core/slab/order.rs`), given the kernel's
//! objsize and CPU count yields the kernel's objperslab and pagesperslab;
//! and given the class size it yields the mirror's. Where the kernel's
//! objsize is the class size (no KASAN) the two lines must be equal.
//!
//! So only the bench kernel compares the mirror's lines with SLUB's own.
//! Under KASAN the mirror is checked against `order.rs`, the file it is
//! built from, which proves only that the mirror follows its own rule (the
//! first case ties that rule to the running kernel); the TAP line of each
//! such row says so.

#[path = "../../../../src/core/slab/order.rs"]
#[allow(dead_code)]
mod order;

use super::{mirror_file, read};
use crate::bench::{cpulist_count, line_geometry};
use crate::tap::{check, Outcome, Suite};

/// The kmalloc caches SLUB and the mirror both have (`kmalloc_info[]`).
const CLASSES: [(&str, usize); 13] = [
    ("kmalloc-8", 8),
    ("kmalloc-16", 16),
    ("kmalloc-32", 32),
    ("kmalloc-64", 64),
    ("kmalloc-96", 96),
    ("kmalloc-128", 128),
    ("kmalloc-192", 192),
    ("kmalloc-256", 256),
    ("kmalloc-512", 512),
    ("kmalloc-1k", 1024),
    ("kmalloc-2k", 2048),
    ("kmalloc-4k", 4096),
    ("kmalloc-8k", 8192),
];

/// The TAP note of a row checked against the rule alone. It names no
/// sanitizer: the console judge (tests/vmcheck) fails a run on such words.
pub const DEBUG_KERNEL_NOTE: &str =
    "objsizes with debug metadata here: mirror checked against order.rs, \
     its own rule; SLUB's lines are compared on the bench kernel only";

/// (objsize, objperslab, pagesperslab) of a slabinfo line.
type Geometry = (usize, usize, usize);

pub fn cases(s: &mut Suite) {
    s.case(
        "geometry: SLUB's calculate_order() gives every real kmalloc-N line its objperslab and pagesperslab",
        real_lines_follow_the_rule,
    );
    s.table(
        CLASSES,
        |(name, _)| {
            format!("geometry: mirror {name} has the kernel's objsize, objperslab, pagesperslab")
        },
        |(name, size)| mirror_matches_kernel(name, size),
    );
}

/// The geometry of cache `name` in a slabinfo text.
pub fn geometry_of(slabinfo: &str, name: &str) -> Result<Geometry, String> {
    let line = slabinfo
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .ok_or_else(|| format!("no {name} line"))?;
    let (_, g) = line_geometry(line)?;
    Ok((
        g.objsize as usize,
        g.objperslab as usize,
        g.pagesperslab as usize,
    ))
}

/// The CPU count SLUB sized its caches for: `num_present_cpus()`, or
/// `nr_cpu_ids` when that is 1 or less.
fn slub_cpus() -> Result<u32, String> {
    let present = cpulist_count(&read("/sys/devices/system/cpu/present")?)?;
    if present > 1 {
        return Ok(present);
    }
    let possible = read("/sys/devices/system/cpu/possible")?;
    let last = possible
        .trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| format!("possible cpus {possible:?}"))?;
    Ok(last + 1)
}

/// What the rule says a cache of `objsize`-byte objects looks like.
fn rule(objsize: usize, cpus: u32) -> Result<Geometry, String> {
    order::slub_geometry(objsize, cpus).ok_or_else(|| format!("no order for {objsize} B"))
}

fn real_lines_follow_the_rule() -> Outcome {
    let real = read("/proc/slabinfo")?;
    let cpus = slub_cpus()?;
    let mut bad = Vec::new();
    for (name, _) in CLASSES {
        let line = geometry_of(&real, name)?;
        let want = rule(line.0, cpus)?;
        if line != want {
            bad.push(format!("{name}: kernel {line:?}, rule {want:?}"));
        }
    }
    check(bad.is_empty(), || {
        format!("{cpus} CPUs: {}", bad.join("; "))
    })
}

/// Whether the running kernel has KASAN (its objsizes then differ). Read
/// once: /proc/kallsyms is long, and making it took about 3 s a read
/// under TCG, once per class.
fn kasan() -> Result<bool, String> {
    static KASAN: std::sync::OnceLock<Result<bool, String>> = std::sync::OnceLock::new();
    KASAN
        .get_or_init(|| {
            let syms = read("/proc/kallsyms")?;
            Ok(syms.lines().any(|l| l.ends_with(" kasan_report")))
        })
        .clone()
}

fn mirror_matches_kernel(name: &str, size: usize) -> Outcome {
    let real = geometry_of(&read("/proc/slabinfo")?, name)?;
    let mirror = geometry_of(&mirror_file("slabinfo")?, name)?;
    if real.0 == size {
        return check(mirror == real, || {
            format!("mirror {mirror:?}, kernel {real:?}")
        });
    }
    // The kernel's objects are larger than the class: only KASAN may do that.
    check(kasan()?, || {
        format!(
            "kernel objsize {} for {name} on a kernel without KASAN",
            real.0
        )
    })?;
    crate::tap::note(DEBUG_KERNEL_NOTE);
    let cpus = slub_cpus()?;
    let want = rule(size, cpus)?;
    check(mirror == want, || {
        format!("mirror {mirror:?}, SLUB's rule for {size} B on {cpus} CPUs {want:?}")
    })?;
    check(rule(real.0, cpus)? == real, || {
        format!(
            "the rule given the kernel's objsize {} does not give {real:?}",
            real.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slabinfo_and_cpulists() {
        let text = "slabinfo - version: 2.1\n\
            # name <active_objs> ...\n\
            kmalloc-8k 4 4 8192 4 8 : tunables 0 0 0 : slabdata 1 1 0\n\
            kmalloc-8 2880 3072 8 512 1 : tunables 0 0 0 : slabdata 6 6 0\n";
        assert_eq!(geometry_of(text, "kmalloc-8"), Ok((8, 512, 1)));
        assert_eq!(geometry_of(text, "kmalloc-8k"), Ok((8192, 4, 8)));
        assert!(geometry_of(text, "kmalloc-16").is_err());
        assert_eq!(cpulist_count("0\n"), Ok(1));
        assert_eq!(cpulist_count("0-3"), Ok(4));
        assert_eq!(cpulist_count("0-1,3"), Ok(3));
        assert!(cpulist_count("x").is_err());
    }

    #[test]
    fn the_rule_matches_a_one_cpu_bench_kernel() {
        // /proc/slabinfo of the bench kernel (1 CPU), 2026-11-23.
        for (size, want) in [
            (8, (8, 512, 1)),
            (96, (96, 42, 1)),
            (192, (192, 21, 1)),
            (512, (512, 8, 1)),
            (1024, (1024, 8, 2)),
            (2048, (2048, 8, 4)),
            (4096, (4096, 8, 8)),
            (8192, (8192, 4, 8)),
        ] {
            assert_eq!(rule(size, 1), Ok(want), "{size}");
        }
    }
}
