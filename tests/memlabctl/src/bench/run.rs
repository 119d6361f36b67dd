// SPDX-License-Identifier: GPL-2.0

//! `memlabctl bench`: the table, then the sweep and 2-CPU scaling; the
//! full report as `bench.json` and the raw samples as `latency.json`
//! (written to `--out DIR`, or printed between markers for the host).

use super::abba::{compare, Method};
use super::extra::{self, online_cpus, pin_to, Scaling, SweepPoint};
use super::report::{self, header, Kconfig, Latency, Row};
use super::{pattern_name, standard, Spec};
use crate::args::BenchArgs;
use crate::cli::{fail, json_line};
use crate::dev::{uapi, DEBUGFS};
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// What this bench does not measure (yet), said in its output.
const NOT_MEASURED: [&str; 3] = [
    "cross-CPU free for kmem_cache, pages and the real side's refill/flush counts (KEEP takes \
     kmalloc and pages only; SLUB's counters need CONFIG_SLUB_STATS)",
    "memory overhead from /proc/meminfo deltas under load: the overhead section is the static \
     slab geometry and page metadata only",
    "fragmentation over time: memlabctl frag (frag.json), not this command",
];

/// One zone of the mirror's pool, from debugfs `mirror/pool`.
#[derive(Serialize, Debug, PartialEq)]
pub struct PoolZone {
    pub zone: String,
    pub managed_pages: u64,
    pub free_pages: u64,
    /// The zone's per-CPU page list sizes (`pcp->batch`, `pcp->high`).
    pub pcp: Option<Pcp>,
    /// Pages on the CPUs' lists now, summed over CPUs.
    pub pcp_count: Option<u64>,
    /// Pages only GFP_ATOMIC may take (the mirror's min watermark).
    pub reserve_pages: Option<u64>,
}

/// A per-CPU page list's batch and high mark.
#[derive(Serialize, Debug, PartialEq, Clone, Copy)]
pub struct Pcp {
    pub batch: u64,
    pub high: u64,
}

/// `zone Normal managed 7168 free 7100 reserve 224 pcp_batch 1 pcp_high 4
/// pcp_count 12` lines.
pub fn parse_pool(s: &str) -> Vec<PoolZone> {
    s.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["zone", z, "managed", m, "free", f, rest @ ..] => Some(PoolZone {
                    zone: z.to_string(),
                    managed_pages: m.parse().ok()?,
                    free_pages: f.parse().ok()?,
                    // A malformed pcp pair loses the pair, not the zone.
                    pcp: match rest {
                        ["reserve", _, "pcp_batch", b, "pcp_high", h, ..] => b
                            .parse()
                            .ok()
                            .zip(h.parse().ok())
                            .map(|(batch, high)| Pcp { batch, high }),
                        _ => None,
                    },
                    pcp_count: value_after(rest, "pcp_count"),
                    reserve_pages: value_after(rest, "reserve"),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The number after the word `key` in `words`.
fn value_after(words: &[&str], key: &str) -> Option<u64> {
    let i = words.iter().position(|w| *w == key)?;
    words.get(i + 1)?.parse().ok()
}

/// Zone `zone`'s high watermark in /proc/zoneinfo (`high N` of its page
/// counts, boost included as the kernel adds it), in pages.
pub fn zoneinfo_high(zoneinfo: &str, zone: &str) -> Option<u64> {
    let mut in_zone = false;
    let (mut high, mut boost) = (None, 0);
    for l in zoneinfo.lines() {
        match l.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["Node", _, "zone", z, ..] => in_zone = *z == zone,
            ["high", n] if in_zone => high = n.parse::<u64>().ok(),
            ["boost", n] if in_zone => boost = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    high.map(|h| h + boost)
}

/// Managed pages from which `zone_batchsize` gives its largest batch, 63:
/// 43 << 12 (43 + 43 / 2 rounds down to 64).
const PCP_FULL_BATCH_PAGES: u64 = 43 << 12;

/// CPU 0's page list of `zone` in /proc/zoneinfo (its `pagesets`).
pub fn zoneinfo_pcp(zoneinfo: &str, zone: &str) -> Option<Pcp> {
    let (mut in_zone, mut cpu0) = (false, false);
    let (mut batch, mut high) = (None, None);
    for l in zoneinfo.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["Node", _, "zone", z, ..] => {
                in_zone = *z == zone;
                cpu0 = false;
            }
            ["cpu:", c] if in_zone => cpu0 = *c == "0",
            ["high:", h] if in_zone && cpu0 => high = h.parse().ok(),
            ["batch:", b] if in_zone && cpu0 => batch = b.parse().ok(),
            _ => {}
        }
    }
    Some(Pcp {
        batch: batch?,
        high: high?,
    })
}

/// Pages on the per-CPU lists of `zone` in /proc/zoneinfo, summed over
/// its CPUs' `count`s.
pub fn zoneinfo_pcp_count(zoneinfo: &str, zone: &str) -> Option<u64> {
    zoneinfo_pcp_sum(zoneinfo, zone, "count:")
}

/// The per-CPU field `field` (`count:`, `high_max:`) of `zone`'s pagesets
/// in /proc/zoneinfo, summed over its CPUs.
pub fn zoneinfo_pcp_sum(zoneinfo: &str, zone: &str, field: &str) -> Option<u64> {
    let mut in_zone = false;
    let mut sum = None;
    for l in zoneinfo.lines() {
        match l.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["Node", _, "zone", z, ..] => in_zone = *z == zone,
            [f, c] if in_zone && *f == field => *sum.get_or_insert(0) += c.parse::<u64>().ok()?,
            _ => {}
        }
    }
    sum
}

/// `bench.json`.
#[derive(Serialize, Debug)]
pub struct BenchReport {
    pub kernel: String,
    /// Where the kernel comes from (Debian's package, or a tree and commit).
    pub kernel_source: String,
    /// What ran the guest: `tcg`, `kvm` or `uml`.
    pub engine: String,
    /// The host's CPU model.
    pub host_cpu: String,
    pub kconfig: Kconfig,
    /// Boot parameters that change allocator work (init_on_*, slub_debug).
    pub boot_params: Vec<String>,
    pub clock_khz: u64,
    pub method: Method,
    pub pinned_cpu: usize,
    pub window: &'static str,
    pub mirror_pool: Vec<PoolZone>,
    /// zone Normal's per-CPU page list on the real side (CPU 0).
    pub real_normal_pcp: Option<Pcp>,
    pub scale: u32,
    pub workloads: Vec<Row>,
    pub sweep: Vec<SweepPoint>,
    pub vmalloc: Vec<SweepPoint>,
    pub overhead: Option<super::overhead::Overhead>,
    pub cross_cpu_free: Option<super::cross::CrossFree>,
    pub scaling: Vec<Scaling>,
    pub not_measured: Vec<String>,
    pub errors: Vec<String>,
}

/// Bytes an object of `s` holds at most (its size class, or its block).
fn object_bytes(s: &Spec) -> u64 {
    if s.family == uapi::MEMLAB_FAMILY_PAGES {
        4096 << s.order
    } else {
        s.size.next_power_of_two()
    }
}

fn kernel_name() -> String {
    let rel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let flavour = boot_param("memlab.flavour=").unwrap_or_else(|| "?".into());
    format!("{} {flavour}", rel.trim())
}

fn cmdline() -> Vec<String> {
    fs::read_to_string("/proc/cmdline")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn boot_param(prefix: &str) -> Option<String> {
    cmdline()
        .iter()
        .find_map(|w| w.strip_prefix(prefix).map(String::from))
}

/// Writes `name` into `dir`, or prints it between markers that
/// scripts/bench.sh cuts out of the console.
fn emit(dir: Option<&Path>, name: &str, body: &str) -> Result<(), String> {
    match dir {
        Some(d) => {
            fs::write(d.join(name), body).map_err(|e| format!("{}: {e}", d.join(name).display()))
        }
        None => writeln!(
            std::io::stdout(),
            "MEMLAB-DATA-BEGIN {name}\n{body}\nMEMLAB-DATA-END {name}"
        )
        .map_err(|e| format!("stdout: {e}")),
    }
}

/// A line on stdout; a closed stdout (`bench | head`) is not an error,
/// since the run goes on to write --out.
fn out_line(s: &str) {
    let _ = writeln!(std::io::stdout(), "{s}");
}

/// `memlabctl bench`.
pub fn bench(a: &BenchArgs) -> ExitCode {
    // SAFETY: sets a signal disposition before any thread starts: a closed
    // stdout then fails writes with EPIPE (ignored by `out_line`) instead of
    // ending the run before it writes --out.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // --out is made (or found unwritable) before the run, not after it.
    if let Some(dir) = &a.out {
        if let Err(e) = fs::create_dir_all(dir) {
            return fail(format!("bench: --out {}: {e}", dir.display()));
        }
    }
    let d = match crate::cli::open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let pinned_cpu = 0;
    if let Err(e) = pin_to(pinned_cpu) {
        return fail(format!("bench: sched_setaffinity(CPU {pinned_cpu}): {e}"));
    }
    let m = Method {
        ops_per_sample: a.k,
        rounds: a.rounds,
        warmup_div: 4,
    };
    let pool =
        parse_pool(&fs::read_to_string(format!("{DEBUGFS}/mirror/pool")).unwrap_or_default());
    let mirror_normal = pool.iter().find(|z| z.zone == "Normal");
    let normal = mirror_normal.map_or(0, |z| z.managed_pages);
    let mirror_pcp = mirror_normal.and_then(|z| z.pcp);
    let real_pcp = zoneinfo_pcp(
        &fs::read_to_string("/proc/zoneinfo").unwrap_or_default(),
        "Normal",
    );
    let say = |s: String| {
        if !a.json {
            out_line(&s);
        }
    };
    let engine = crate::engine::Engine::current();
    // The page rows compare unequal per-CPU lists when the batches differ;
    // those rows say so (and bench.json marks them).
    let unequal_pcp = matches!((real_pcp, mirror_pcp), (Some(r), Some(m)) if r.batch != m.batch);
    say(
        "memlab bench: the same workloads on the real allocators and on the mirror, one VM run"
            .into(),
    );
    say(engine.describe(&kernel_name()));
    say(format!(
        "(ns per operation, floor subtracted; x = mirror / real, < 1 means the mirror is faster; \
         median ratio over {} ABBA rounds [min-max across rounds]; K = {} ops per sample, so p99 is \
         the 99th percentile of K-operation means, not of single operations; CPU {pinned_cpu})",
        m.rounds, m.ops_per_sample
    ));
    say(format!(
        "kmem trace events: {}",
        crate::tracefs::kmem_events_note()
    ));
    say(header());
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for s in standard(a.scale) {
        match compare(&d, &s, &m) {
            Ok(c) => {
                let live_pages = u64::from(c.peak_live) * object_bytes(&s) / 4096;
                if normal > 0 && live_pages * 4 > normal {
                    errors.push(format!(
                        "{} {}: largest live set {live_pages} pages is above 1/4 of the mirror's Normal zone ({normal} pages)",
                        s.name,
                        pattern_name(s.pattern)
                    ));
                }
                let (real_calls, mirror_calls) = report::calls(s.family);
                let row = Row {
                    workload: s.name,
                    pattern: pattern_name(s.pattern),
                    count: s.count,
                    size: s.size,
                    order: s.order,
                    real_calls,
                    mirror_calls,
                    unequal_work: report::unequal_work(s.family),
                    unequal_pcp: unequal_pcp && s.family == uapi::MEMLAB_FAMILY_PAGES,
                    compared: c,
                };
                say(row.human());
                rows.push(row);
            }
            Err(e) => {
                let msg = format!("{} {}: {e}", s.name, pattern_name(s.pattern));
                say(msg.clone());
                errors.push(msg);
            }
        }
    }
    let (kbits, khz) = rows
        .first()
        .map_or((0, 0), |r| (r.compared.kconfig, r.compared.clock_khz));
    let kconfig = Kconfig::of(kbits);
    let boot_params: Vec<String> = cmdline()
        .into_iter()
        .filter(|w| {
            w.starts_with("init_on_") || w.starts_with("slub_debug") || w.starts_with("slab_")
        })
        .collect();
    say(format!(
        "\nkernel {}: on: {}",
        kernel_name(),
        kconfig.on.join(", ")
    ));
    say(format!("  off: {}", kconfig.off.join(", ")));
    say(format!(
        "  boot parameters that change allocator work: {}",
        if boot_params.is_empty() {
            "none".into()
        } else {
            boot_params.join(" ")
        }
    ));
    say(format!(
        "mirror pool: {}",
        pool.iter()
            .map(|z| format!("{} {} pages", z.zone, z.managed_pages))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let pcp_of =
        |p: Option<Pcp>| p.map_or("?".into(), |p| format!("batch {} high {}", p.batch, p.high));
    say(format!(
        "zone Normal's per-CPU page lists (the kernel's rule on each zone's size): real {} (/proc/zoneinfo, CPU 0), mirror {}",
        pcp_of(real_pcp),
        pcp_of(mirror_pcp)
    ));
    if let (true, Some(r)) = (unequal_pcp, real_pcp) {
        say(format!(
            "  the batches differ, so the page rows (marked) compare unequal per-CPU lists: give the mirror's \
             zone Normal at least {} MiB (pool_mb=1600 does) for the real zone's batch {}",
            PCP_FULL_BATCH_PAGES >> 8,
            r.batch
        ));
    }
    say(format!("timing window: {}", report::WINDOW));
    for fam in [
        uapi::MEMLAB_FAMILY_KMEM_CACHE,
        uapi::MEMLAB_FAMILY_KMALLOC,
        uapi::MEMLAB_FAMILY_PAGES,
        uapi::MEMLAB_FAMILY_VMALLOC,
    ] {
        let (r, mi) = report::calls(fam);
        say(format!("  real:   {r}\n  mirror: {mi}"));
        if let Some(u) = report::unequal_work(fam) {
            say(format!(
                "  ≠ not equal work, so its ratios are no result: {u}"
            ));
        }
    }
    let mut sweep = Vec::new();
    let mut vmalloc = Vec::new();
    let mut overhead = None;
    let mut cross = None;
    let mut skipped = Vec::new();
    let mut scaling = Vec::new();
    if !a.no_extras {
        say("\nsize sweep (pairs, ns real/mirror, x with [min-max] across rounds):".into());
        match extra::sweep(&d, &m, (2000 / a.scale).max(64)) {
            Ok(mut v) => {
                for p in v.iter_mut() {
                    p.unequal_pcp = unequal_pcp && p.family == "alloc_pages";
                    say(p.human());
                }
                sweep = v;
            }
            Err(e) => errors.push(format!("sweep: {e}")),
        }
        say("\nvmalloc latency against size (pairs; real __vmalloc/vfree, mirror pages + vm_map_ram/vm_unmap_ram):".into());
        match extra::vmalloc_sweep(&d, &m, a.scale) {
            Ok(v) => {
                v.iter().for_each(|p| say(p.human()));
                vmalloc = v;
            }
            Err(e) => errors.push(format!("vmalloc sweep: {e}")),
        }
        say("\nmemory overhead (slab pages per object from /proc/slabinfo and mirror/slabinfo; waste = slab bytes per object / object size - 1):".into());
        match super::overhead::measure(&d) {
            Ok(o) => {
                o.human().into_iter().for_each(&say);
                overhead = Some(o);
            }
            Err(e) => errors.push(format!("memory overhead: {e}")),
        }
        if online_cpus() >= 2 {
            say(
                "\ncross-CPU free (1000 kmalloc-64 objects allocated on CPU 0; x = mirror / real):"
                    .into(),
            );
            match super::cross::cross_free(&d, &m, (1000 / a.scale).max(64)) {
                Ok(c) => {
                    c.human().into_iter().for_each(&say);
                    cross = Some(c);
                }
                Err(e) => errors.push(format!("cross-CPU free: {e}")),
            }
            say(
                "\n2-CPU scaling (aggregate ops/s, 1 CPU -> 2 CPUs; factor = 2-CPU / 1-CPU; each pass timed as a whole, no clock read per operation):"
                    .into(),
            );
            for s in standard(a.scale)
                .into_iter()
                .filter(|s| s.pattern == uapi::MEMLAB_PATTERN_PAIRS)
            {
                match extra::scaling(&s, &m) {
                    Ok(x) => {
                        say(format!(
                            "  {:<22} real {:.0} -> {:.0} ({:.2}x)  mirror {:.0} -> {:.0} ({:.2}x)  factor mirror/real {}  2-CPU ops/s mirror/real {}{}",
                            x.workload, x.real_ops_per_s[0], x.real_ops_per_s[1], x.real_factor,
                            x.mirror_ops_per_s[0], x.mirror_ops_per_s[1], x.mirror_factor,
                            x.failed.ratio_text(x.factor_ratio),
                            x.failed.ratio_text(x.throughput_ratio_2cpu),
                            x.failed.note(),
                        ));
                        scaling.push(x);
                    }
                    Err(e) => errors.push(format!("scaling {}: {e}", s.name)),
                }
            }
        } else {
            skipped.push(format!(
                "2-CPU scaling and cross-CPU free: {} CPU online (/sys/devices/system/cpu/online; \
                 boot with CPUS=2 or more)",
                online_cpus()
            ));
        }
    }
    say("\nnot measured by this command:".into());
    for n in NOT_MEASURED
        .iter()
        .map(|s| s.to_string())
        .chain(skipped.iter().cloned())
    {
        say(format!("  - {n}"));
    }
    let latency = Latency::of(kernel_name(), &engine, &rows);
    let report = BenchReport {
        kernel: kernel_name(),
        kernel_source: engine.kernel_source.clone(),
        engine: engine.engine.clone(),
        host_cpu: engine.host_cpu.clone(),
        kconfig,
        boot_params,
        clock_khz: khz,
        method: m,
        pinned_cpu,
        window: report::WINDOW,
        mirror_pool: pool,
        real_normal_pcp: real_pcp,
        scale: a.scale,
        workloads: rows,
        sweep,
        vmalloc,
        overhead,
        cross_cpu_free: cross,
        scaling,
        not_measured: NOT_MEASURED
            .iter()
            .map(|s| s.to_string())
            .chain(skipped)
            .collect(),
        errors,
    };
    let body = json_line(&report);
    if a.json {
        out_line(&body);
    }
    let dir = a.out.as_deref();
    if dir.is_some() || a.print_data {
        for (name, text) in [
            ("bench.json", body.as_str()),
            ("latency.json", &json_line(&latency)),
        ] {
            if let Err(e) = emit(dir, name, text) {
                return fail(format!("bench: {e}"));
            }
        }
        if let Some(d) = dir {
            say(format!(
                "wrote {0}/bench.json and {0}/latency.json",
                d.display()
            ));
        }
    }
    for e in &report.errors {
        eprintln!("memlabctl: bench: {e}");
    }
    let clean = report.workloads.iter().all(|r| r.compared.clean())
        && report
            .sweep
            .iter()
            .chain(&report.vmalloc)
            .all(|p| !p.failed.any())
        && report.scaling.iter().all(|x| !x.failed.any())
        && report
            .cross_cpu_free
            .as_ref()
            .is_none_or(|c| !c.failed.any());
    if !report.errors.is_empty() || !clean {
        fail("bench: some workloads failed or allocations failed")
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_zones_parse() {
        let s = "pool: 16384 pages in 20 blocks\nzone     start_pfn end_pfn order\n\
                 per-CPU caches: 0 pages, 0 kmalloc objects\n\
                 zone DMA    managed     1024 free     1000 reserve     32\n\
                 zone Normal managed     7168 free     7100 reserve    224 pcp_batch   1 pcp_high     4\n";
        assert_eq!(
            parse_pool(s),
            vec![
                PoolZone {
                    zone: "DMA".into(),
                    managed_pages: 1024,
                    free_pages: 1000,
                    pcp: None,
                    pcp_count: None,
                    reserve_pages: Some(32),
                },
                PoolZone {
                    zone: "Normal".into(),
                    managed_pages: 7168,
                    free_pages: 7100,
                    pcp: Some(Pcp { batch: 1, high: 4 }),
                    pcp_count: None,
                    reserve_pages: Some(224),
                },
            ]
        );
        let now = parse_pool(
            "zone Normal managed 7168 free 7100 reserve 224 pcp_batch 1 pcp_high 4 pcp_count 12\n",
        );
        assert_eq!(now[0].pcp_count, Some(12));
        assert_eq!(now[0].pcp, Some(Pcp { batch: 1, high: 4 }));
    }

    #[test]
    fn a_malformed_pcp_pair_keeps_the_zone() {
        let z =
            parse_pool("zone Normal managed 7168 free 7100 reserve 224 pcp_batch x pcp_high 4\n");
        assert_eq!(z.len(), 1);
        assert_eq!((z[0].managed_pages, z[0].pcp), (7168, None));
    }

    #[test]
    fn zoneinfo_pagesets_parse() {
        // The shape of 7.2's /proc/zoneinfo, cut down.
        let z = "Node 0, zone    DMA32\n  pages free     750622\n  pagesets\n    cpu: 0\n\
                 \x20             count: 5\n              high:  900\n              batch: 63\n\
                 Node 0, zone   Normal\n  pages free     301263\n        managed  520000\n  pagesets\n\
                 \x20   cpu: 0\n              count:    17\n              high:     1024\n\
                 \x20             batch:    63\n  vm stats threshold: 40\n    cpu: 1\n\
                 \x20             count:    2\n              high:     7\n              batch:    1\n";
        assert_eq!(
            zoneinfo_pcp(z, "Normal"),
            Some(Pcp {
                batch: 63,
                high: 1024
            })
        );
        assert_eq!(
            zoneinfo_pcp(z, "DMA32"),
            Some(Pcp {
                batch: 63,
                high: 900
            })
        );
        assert_eq!(zoneinfo_pcp(z, "Movable"), None);
        assert_eq!(zoneinfo_pcp_count(z, "Normal"), Some(19));
        assert_eq!(zoneinfo_pcp_count(z, "DMA32"), Some(5));
        assert_eq!(zoneinfo_pcp_count(z, "Movable"), None);
        assert_eq!(zoneinfo_pcp_sum(z, "Normal", "high:"), Some(1031));
        let w = "Node 0, zone   Normal\n  pages free     301263\n        boost    10\n        min      1521\n\
                 \x20       low      1645\n        high     1769\n        spanned  524288\n";
        assert_eq!(zoneinfo_high(w, "Normal"), Some(1779));
        assert_eq!(zoneinfo_high(w, "DMA"), None);
    }

    #[test]
    fn objects_are_charged_at_their_class() {
        let s = |family, size, order| Spec {
            name: "x",
            family,
            pattern: 0,
            count: 1,
            size,
            order,
        };
        assert_eq!(object_bytes(&s(uapi::MEMLAB_FAMILY_KMALLOC, 96, 0)), 128);
        assert_eq!(object_bytes(&s(uapi::MEMLAB_FAMILY_PAGES, 0, 3)), 32768);
    }
}
