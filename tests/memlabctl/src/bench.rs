// SPDX-License-Identifier: GPL-2.0

//! `memlabctl bench`: the same work on the real
//! allocators and on memlab's mirror, in one VM run, compared as ratios.
//! The benchmark itself is in `bench/`: `abba` (rounds and raw samples),
//! `stats`, `report` (table and JSON), `extra` (sweep and scaling), `run`;
//! `ab` compares two kernels from the bench.json of several boots.

mod ab;
pub use ab::ab;
mod abba;
mod cross;
pub use abba::run_sampled;
pub use extra::{allowed_cpus, cpulist_count, online_cpus, pin_to, SavedAffinity};
mod extra;
mod overhead;
pub use overhead::line_geometry;
mod report;
mod run;
mod stats;

use crate::dev::{uapi, Memlab};
pub use run::{bench, parse_pool, zoneinfo_high, zoneinfo_pcp_count, zoneinfo_pcp_sum};
// The trace format lives with the replay; its old home still names it.
pub use crate::replay::{parse_trace, replay_on, Step};

/// One row of the standard workload table.
pub struct Spec {
    pub name: &'static str,
    pub family: u32,
    pub pattern: u32,
    pub count: u32,
    pub size: u64,
    pub order: u32,
}

/// The standard workloads: `make bench` runs each on both backends. Sized
/// for a 64 MiB pool (`pool_mb=64`, 7168 Normal pages): no live set is
/// above a quarter of the mirror's Normal zone (BATCH of 1024 pages;
/// RANDOM's peak live set is reported).
pub fn standard(scale: u32) -> Vec<Spec> {
    use uapi::*;
    let n = |c: u32| (c / scale).max(10);
    let spec = |name, family, pattern, count, size, order| Spec {
        name,
        family,
        pattern,
        count: n(count),
        size,
        order,
    };
    vec![
        spec(
            "kmem_cache_alloc 64 B",
            MEMLAB_FAMILY_KMEM_CACHE,
            MEMLAB_PATTERN_PAIRS,
            20000,
            64,
            0,
        ),
        spec(
            "kmem_cache_alloc 64 B",
            MEMLAB_FAMILY_KMEM_CACHE,
            MEMLAB_PATTERN_BATCH,
            10000,
            64,
            0,
        ),
        spec(
            "kmalloc 64 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_PAIRS,
            20000,
            64,
            0,
        ),
        spec(
            "kmalloc 64 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_BATCH,
            10000,
            64,
            0,
        ),
        spec(
            "kmalloc 8..4096 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_RANDOM,
            20000,
            4096,
            0,
        ),
        spec(
            "alloc_pages order 0",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_PAIRS,
            20000,
            0,
            0,
        ),
        spec(
            "alloc_pages order 0",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_BATCH,
            1024,
            0,
            0,
        ),
        spec(
            "alloc_pages order 0..3",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_RANDOM,
            4000,
            0,
            3,
        ),
    ]
}

pub fn pattern_name(p: u32) -> &'static str {
    match p {
        uapi::MEMLAB_PATTERN_PAIRS => "pairs",
        uapi::MEMLAB_PATTERN_BATCH => "batch",
        _ => "random",
    }
}

/// Runs `spec` on `backend` once, K = 1, no samples fetched.
pub fn run_spec(d: &Memlab, s: &Spec, backend: u32) -> std::io::Result<uapi::MemlabWorkload> {
    d.workload(&request(s, backend))
}

/// The WORKLOAD request [`run_spec`] sends: one operation a sample.
pub fn request(s: &Spec, backend: u32) -> uapi::MemlabWorkload {
    let m = abba::Method {
        ops_per_sample: 1,
        rounds: 1,
        warmup_div: 4,
    };
    abba::request(s, backend, &m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_workloads_scale_down() {
        assert!(standard(1000).iter().all(|s| s.count >= 10));
        assert_eq!(standard(1)[0].count, 20000);
    }
}
