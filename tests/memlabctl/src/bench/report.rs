// SPDX-License-Identifier: GPL-2.0

//! What `memlabctl bench` reports: the table, `bench.json` (everything)
//! and `latency.json` (the raw per-operation samples of one round per
//! workload, in the format the host's plot tool reads).

use super::abba::Compared;
use super::stats::Spread;
use crate::dev::uapi;
use serde::Serialize;

/// What lies inside every timing window, on both backends.
pub const WINDOW: &str = "each operation is timed alone: lfence;rdtsc, the allocator call \
(argument set-up and its Result), lfence;rdtsc. Outside the window: the step sequence \
(pre-generated, so no RNG), storing the object in its slot, the zone count, the sample \
bookkeeping. A sample sums K windows of one kind (alloc or free). The floor is the same \
loop on an allocator whose calls are empty (two clock reads per window), subtracted per \
sample. Each run: migration disabled, floor, untimed warm-up, timed pass.";

/// The calls timed for `family` on each backend, and how their frees
/// differ.
pub fn calls(family: u32) -> (&'static str, &'static str) {
    match family {
        uapi::MEMLAB_FAMILY_KMALLOC => (
            "__kmalloc_noprof(size, GFP_KERNEL|__GFP_NOWARN) / kfree(ptr): unsized free, \
             SLUB finds the cache from the object's page",
            "Mirror::kmalloc(size, GFP_KERNEL) / Mirror::kfree(ptr, size, GFP_KERNEL): \
             sized free, the caller passes the size (the mirror does not look it up)",
        ),
        uapi::MEMLAB_FAMILY_KMEM_CACHE => (
            "kmem_cache_alloc_noprof(cache, GFP_KERNEL|__GFP_NOWARN) / kmem_cache_free(cache, \
             ptr) on raw pointers, a SLAB_NO_MERGE cache created for the run (not merged into \
             kmalloc-64)",
            "KmemCache::alloc(gfp) / KmemCache::free(ptr) (src/mirror/kmem_cache.rs) on a \
             cache created for the run: the CPU's main and spare sheaves under a per-CPU \
             trylock, then the cache's barn, then a bulk refill from its slabs, as SLUB's \
             sheaves; unsized free on both sides",
        ),
        uapi::MEMLAB_FAMILY_VMALLOC => (
            "__vmalloc(size, GFP_KERNEL|__GFP_NOWARN) (vrealloc_node_align) / vfree(addr)",
            "MirrorVmalloc::new: order-0 pages one by one from Mirror::alloc_pages, then \
             vm_map_ram / vm_unmap_ram and the pages back",
        ),
        _ => (
            "alloc_pages(GFP_KERNEL|__GFP_NOWARN, order) / __free_pages(page, order)",
            "Mirror::alloc_pages(order, GFP_KERNEL) / Mirror::free_pages(head, order)",
        ),
    }
}

/// Where the two sides of a family's rows do not do equal work inside the
/// window, what differs: their ratios are marked, not results. `None` for
/// families whose windows hold the same steps (kmem_cache: both take an
/// object from the CPU's sheaf, a barn or a slab refill, and give it back
/// unsized).
pub fn unequal_work(family: u32) -> Option<&'static str> {
    match family {
        uapi::MEMLAB_FAMILY_PAGES => Some(
            "real alloc_pages also checks the zone watermark (zone_watermark_fast), prepares \
             the page (prep_new_page: refcount, flags, post_alloc_hook) and counts PGALLOC, and \
             __free_pages drops the refcount atomically and checks the page's flags \
             (free_pages_prepare); the mirror pops and pushes its per-CPU list, with no \
             per-page state",
        ),
        uapi::MEMLAB_FAMILY_VMALLOC => Some(
            "real __vmalloc finds a free virtual range (the vmap_area tree), allocates the \
             pages in bulk, maps them and sets up a vm_struct; the mirror takes pages one by \
             one and maps them with vm_map_ram, from a per-CPU vmap block",
        ),
        uapi::MEMLAB_FAMILY_KMALLOC => Some(
            "real kfree is unsized (SLUB finds the cache from the object's slab); the mirror's \
             kfree is told the size by the caller",
        ),
        _ => None,
    }
}

/// `MEMLAB_KCONFIG_*` bits by name, in report order.
pub const KCONFIG: [(&str, u32); 14] = [
    ("MEMCG", uapi::MEMLAB_KCONFIG_MEMCG),
    ("KFENCE", uapi::MEMLAB_KCONFIG_KFENCE),
    (
        "INIT_ON_ALLOC_DEFAULT_ON",
        uapi::MEMLAB_KCONFIG_INIT_ON_ALLOC,
    ),
    ("INIT_ON_FREE_DEFAULT_ON", uapi::MEMLAB_KCONFIG_INIT_ON_FREE),
    (
        "SLAB_FREELIST_HARDENED",
        uapi::MEMLAB_KCONFIG_FREELIST_HARDENED,
    ),
    ("SLAB_FREELIST_RANDOM", uapi::MEMLAB_KCONFIG_FREELIST_RANDOM),
    ("JUMP_LABEL", uapi::MEMLAB_KCONFIG_JUMP_LABEL),
    ("CC_OPTIMIZE_FOR_PERFORMANCE (-O2)", uapi::MEMLAB_KCONFIG_O2),
    ("KASAN", uapi::MEMLAB_KCONFIG_KASAN),
    ("PROVE_LOCKING", uapi::MEMLAB_KCONFIG_LOCKDEP),
    ("SLUB_DEBUG_ON", uapi::MEMLAB_KCONFIG_SLUB_DEBUG_ON),
    ("RANDOM_KMALLOC_CACHES", uapi::MEMLAB_KCONFIG_RANDOM_KMALLOC),
    ("PREEMPT", uapi::MEMLAB_KCONFIG_PREEMPT),
    ("DEBUG_KMEMLEAK", uapi::MEMLAB_KCONFIG_KMEMLEAK),
];

/// The kernel's build options that bear on allocator speed, on and off.
#[derive(Serialize, Debug, PartialEq)]
pub struct Kconfig {
    pub on: Vec<&'static str>,
    pub off: Vec<&'static str>,
}

impl Kconfig {
    pub fn of(bits: u32) -> Self {
        let (on, off) = KCONFIG
            .iter()
            .partition::<Vec<_>, _>(|(_, b)| bits & b != 0);
        Kconfig {
            on: on.iter().map(|(n, _)| *n).collect(),
            off: off.iter().map(|(n, _)| *n).collect(),
        }
    }
}

/// One row of the main table.
#[derive(Serialize, Debug)]
pub struct Row {
    pub workload: &'static str,
    pub pattern: &'static str,
    pub count: u32,
    pub size: u64,
    pub order: u32,
    pub real_calls: &'static str,
    pub mirror_calls: &'static str,
    /// What the two windows do differently ([`unequal_work`]); the row's
    /// ratios compare unequal work when it is set.
    pub unequal_work: Option<&'static str>,
    /// The two sides' per-CPU page lists have different batches (a page
    /// row, with the mirror's zone Normal too small for the real batch):
    /// the ratios are not like for like, and the table says so.
    pub unequal_pcp: bool,
    #[serde(flatten)]
    pub compared: Compared,
}

fn ns(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "-".into()
    }
}

/// Zone shares of timed allocations, e.g. `Normal 100%` or `Normal 85%
/// DMA32 15%`.
pub fn zone_text(z: &[u64; 4]) -> String {
    let total: u64 = z.iter().sum();
    if total == 0 {
        return "-".into();
    }
    ["DMA", "DMA32", "Normal", "other"]
        .iter()
        .zip(z)
        .filter(|(_, &n)| n > 0)
        .map(|(name, &n)| format!("{name} {}%", n * 100 / total))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table's header lines.
pub fn header() -> String {
    format!(
        "{:<24} {:<6} {:>15} {:>20} {:>15} {:>20} {:>12} {:>12}  {}",
        "workload",
        "patt.",
        "alloc ns r/m",
        "alloc x [min-max]",
        "free ns r/m",
        "free x [min-max]",
        "p99 alloc x",
        "p99 free x",
        "mirror zone"
    )
}

impl Row {
    /// One line of the table: medians over rounds, ratios with their
    /// spread across rounds.
    pub fn human(&self) -> String {
        let c = &self.compared;
        let r = |f: fn(&super::abba::Round) -> f64| c.median_of(f);
        let zones = c.rounds.iter().fold([0u64; 4], |mut acc, r| {
            for (a, b) in acc.iter_mut().zip(r.mirror.zone_allocs) {
                *a += b;
            }
            acc
        });
        let p99 = |s: Option<Spread>| {
            if c.failed.any() {
                "failed".into()
            } else {
                s.map_or("-".into(), |s| format!("{:.2}x", s.median))
            }
        };
        format!(
            "{:<24} {:<6} {:>15} {:>20} {:>15} {:>20} {:>12} {:>12}  {}{}",
            format!(
                "{}{}",
                self.workload,
                if self.unequal_work.is_some() {
                    " ≠"
                } else {
                    ""
                }
            ),
            self.pattern,
            format!(
                "{}/{}",
                ns(r(|x| x.real.alloc_median_ns)),
                ns(r(|x| x.mirror.alloc_median_ns))
            ),
            c.failed.ratio_text(c.ratios.alloc_median),
            format!(
                "{}/{}",
                ns(r(|x| x.real.free_median_ns)),
                ns(r(|x| x.mirror.free_median_ns))
            ),
            c.failed.ratio_text(c.ratios.free_median),
            p99(c.ratios.alloc_p99),
            p99(c.ratios.free_p99),
            zone_text(&zones),
            c.failed.note()
        ) + if self.unequal_pcp {
            "  (per-CPU page list batches differ: not like for like)"
        } else {
            ""
        }
    }
}

/// One series of `latency.json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct LatencySeries {
    pub name: String,
    pub op: &'static str,
    pub pattern: &'static str,
    pub ops_per_sample: u32,
    pub real_ns: Vec<f64>,
    pub mirror_ns: Vec<f64>,
}

/// `latency.json`: the raw per-operation samples (floor subtracted,
/// divided by K) of each workload's representative round.
#[derive(Serialize, Debug, PartialEq)]
pub struct Latency {
    pub kernel: String,
    /// What ran the guest (`tcg`, `kvm`, `uml`) and on which host CPU.
    pub engine: String,
    pub host_cpu: String,
    pub workloads: Vec<LatencySeries>,
}

impl Latency {
    pub fn of(kernel: String, engine: &crate::engine::Engine, rows: &[Row]) -> Self {
        let mut workloads = Vec::new();
        for row in rows {
            let Some(round) = row.compared.representative() else {
                continue;
            };
            for (op, real, mirror) in [
                ("alloc", &round.real.alloc_ns, &round.mirror.alloc_ns),
                ("free", &round.real.free_ns, &round.mirror.free_ns),
            ] {
                workloads.push(LatencySeries {
                    // memplot names its files by name and op: the
                    // pattern keeps pairs and batch apart.
                    name: format!("{} {}", row.workload, row.pattern),
                    op,
                    pattern: row.pattern,
                    ops_per_sample: row.compared.ops_per_sample,
                    real_ns: real.clone(),
                    mirror_ns: mirror.clone(),
                });
            }
        }
        Latency {
            kernel,
            engine: engine.engine.clone(),
            host_cpu: engine.host_cpu.clone(),
            workloads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::abba::{Compared, Ratios, Round, SideRound};
    use super::super::stats::{Failed, Spread};
    use super::*;

    fn side(alloc: Vec<f64>, free: Vec<f64>) -> SideRound {
        SideRound {
            alloc_median_ns: alloc[0],
            free_median_ns: free[0],
            zone_allocs: [0, 1, 3, 0],
            alloc_ns: alloc,
            free_ns: free,
            ..Default::default()
        }
    }

    fn row() -> Row {
        let spread = Spread::of(&[0.5, 1.0]);
        Row {
            workload: "kmalloc 64 B",
            pattern: "pairs",
            count: 100,
            size: 64,
            order: 0,
            real_calls: "r",
            unequal_work: None,
            mirror_calls: "m",
            unequal_pcp: false,
            compared: Compared {
                rounds: vec![Round {
                    real: side(vec![2.0, 3.0], vec![4.0]),
                    mirror: side(vec![1.0, 1.5], vec![2.0]),
                }],
                failed: Failed::default(),
                ratios: Ratios {
                    alloc_median: spread,
                    free_median: spread,
                    alloc_p99: None,
                    free_p99: spread,
                },
                representative_round: 0,
                ops_per_sample: 32,
                warmup: 25,
                peak_live: 1,
                kconfig: uapi::MEMLAB_KCONFIG_O2,
                clock_khz: 2_000_000,
            },
        }
    }

    #[test]
    fn latency_json_follows_the_contract() {
        let engine = crate::engine::Engine::parse("engine=uml\nhost_cpu=AMD EPYC\n");
        let l = Latency::of("7.2.13 bench".into(), &engine, &[row()]);
        let v: serde_json::Value = serde_json::from_str(&crate::cli::json_line(&l)).unwrap();
        assert_eq!(v["kernel"], "7.2.13 bench");
        assert_eq!(v["engine"], "uml");
        assert_eq!(v["host_cpu"], "AMD EPYC");
        let w = v["workloads"].as_array().unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(
            w[0],
            serde_json::json!({"name": "kmalloc 64 B pairs", "op": "alloc", "pattern": "pairs",
                "ops_per_sample": 32, "real_ns": [2.0, 3.0], "mirror_ns": [1.0, 1.5]})
        );
        assert_eq!(w[1]["op"], "free");
        assert_eq!(w[1]["real_ns"], serde_json::json!([4.0]));
    }

    #[test]
    fn bench_row_json_and_text() {
        let r = row();
        let v: serde_json::Value = serde_json::from_str(&crate::cli::json_line(&r)).unwrap();
        // Compared is flattened into the row; raw samples stay out of it.
        assert_eq!(v["workload"], "kmalloc 64 B");
        assert_eq!(v["ratios"]["alloc_median"]["median"], 1.0);
        assert_eq!(v["ratios"]["alloc_median"]["min"], 0.5);
        assert!(v["ratios"]["alloc_p99"].is_null());
        assert_eq!(
            v["rounds"][0]["real"]["zone_allocs"],
            serde_json::json!([0, 1, 3, 0])
        );
        assert!(v["rounds"][0]["real"].get("alloc_ns").is_none());
        let line = r.human();
        assert!(line.contains("2.0/1.0"), "{line}");
        assert!(line.contains("1.00x [0.50-1.00]"), "{line}");
        assert!(line.ends_with("DMA32 25% Normal 75%"), "{line}");
        assert_eq!(v["failed"], serde_json::json!({"real": 0, "mirror": 0}));
        assert_eq!(v["unequal_pcp"], false);
    }

    #[test]
    fn a_row_with_failures_says_so_and_shows_no_ratio() {
        let mut r = row();
        // What compare() does when a run failed: the ratios are withheld.
        r.compared.failed.add(uapi::MEMLAB_BACKEND_REAL, 3);
        r.compared.ratios = Ratios {
            alloc_median: None,
            free_median: None,
            alloc_p99: None,
            free_p99: None,
        };
        r.unequal_pcp = true;
        let v: serde_json::Value = serde_json::from_str(&crate::cli::json_line(&r)).unwrap();
        assert_eq!(v["failed"], serde_json::json!({"real": 3, "mirror": 0}));
        assert!(v["ratios"]["alloc_median"].is_null());
        let line = r.human();
        assert!(!line.contains("x ["), "{line}");
        assert!(line.contains("no ratio: failed"), "{line}");
        assert!(
            line.contains("(failed allocations: real 3, mirror 0; no ratio)"),
            "{line}"
        );
        assert!(line.ends_with("(per-CPU page list batches differ: not like for like)"));
    }

    #[test]
    fn kconfig_and_zones() {
        let k = Kconfig::of(uapi::MEMLAB_KCONFIG_O2 | uapi::MEMLAB_KCONFIG_JUMP_LABEL);
        assert_eq!(k.on, ["JUMP_LABEL", "CC_OPTIMIZE_FOR_PERFORMANCE (-O2)"]);
        assert_eq!(k.off.len(), KCONFIG.len() - 2);
        assert_eq!(zone_text(&[0, 0, 0, 0]), "-");
        assert_eq!(zone_text(&[0, 15, 85, 0]), "DMA32 15% Normal 85%");
    }
}
