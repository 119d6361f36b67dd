// SPDX-License-Identifier: GPL-2.0

//! How far apart two series of one metric are: [`gap`], and the metrics a
//! divergence report compares ([`metrics`]), each with the mechanism that
//! explains a large gap ([`mechanism`]).
//!
//! The score of a metric is the mean distance between the sides over the
//! samples, as a share of the metric's peak on either side:
//!
//! ```text
//! peak  = max over samples of max(|real_i|, |mirror_i|)
//! score = mean over samples of |mirror_i - real_i| / peak      (0..1)
//! ```
//!
//! 0 means the two sides agree at every sample; 0.2 means they are, on
//! average, a fifth of the metric's largest value apart. Dividing by the
//! peak rather than by each sample's value keeps a metric near zero (2
//! partial slabs against 1) from reading as a 50% gap. A metric that is a
//! part of a whole is divided by the whole's peak instead (the pages free
//! at one order by the zone's free pages, one cache's by the session's
//! caches summed), an index by its full scale ([`Scale`]). The largest gap
//! along the way is reported with its step and the same share; a gap is
//! *large* when that share reaches [`LARGE`], and `since` is then the first
//! sample from which it stays there with one sign.
//!
//! A metric may have a value that is a state, not a figure
//! ([`Metric::state`]): mm/vmstat.c's extfrag index is -1 when a block of
//! the order is free (the request would succeed; the index only describes
//! requests that fail). A sample where either side reads it is not scored
//! ([`scored`]), and the report counts those samples apart.

use super::sample::{Sample, NR_ORDERS};
use crate::slabstat::CacheStat;
use serde::Serialize;

/// A gap of at least this share of the metric's peak is large: the report
/// explains it.
pub const LARGE: f64 = 0.2;

/// How two series of one metric differ.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Gap {
    /// The largest `mirror - real` in absolute value, signed.
    pub max_gap: f64,
    /// The step of the sample where it was.
    pub max_gap_step: u64,
    /// |max_gap| as a share of the peak, 0..1.
    pub max_gap_share: f64,
    /// The mean |mirror - real| as a share of the peak, 0..1.
    pub score: f64,
    /// If the gap is large: the first step from which it stays large with
    /// one sign to the end.
    pub since_step: Option<u64>,
}

impl Gap {
    /// Whether the largest gap is at least [`LARGE`] of the peak.
    pub fn is_large(&self) -> bool {
        self.max_gap_share >= LARGE
    }
}

/// The values both sides have, with their steps.
fn points(steps: &[u64], real: &[Option<f64>], mirror: &[Option<f64>]) -> Vec<(u64, f64, f64)> {
    steps
        .iter()
        .zip(real.iter().zip(mirror))
        .filter_map(|(&s, (r, m))| Some((s, (*r)?, (*m)?)))
        .collect()
}

/// The largest magnitude either side reaches where both have a value.
pub fn peak(steps: &[u64], real: &[Option<f64>], mirror: &[Option<f64>]) -> f64 {
    points(steps, real, mirror)
        .iter()
        .map(|&(_, r, m)| r.abs().max(m.abs()))
        .fold(0.0, f64::max)
}

/// The gap between `real` and `mirror`, sampled at `steps`, as shares of
/// their own [`peak`]; samples where either side has no value are left
/// out. `None` if no sample has both.
#[cfg(test)]
pub fn gap(steps: &[u64], real: &[Option<f64>], mirror: &[Option<f64>]) -> Option<Gap> {
    gap_over(steps, real, mirror, peak(steps, real, mirror))
}

/// [`gap`] as shares of `peak`: a metric that is a part of another (the
/// pages of one order of the free pages, a cache of all the session's
/// caches) is measured against the whole's peak, an index against its
/// full scale.
pub fn gap_over(
    steps: &[u64],
    real: &[Option<f64>],
    mirror: &[Option<f64>],
    peak: f64,
) -> Option<Gap> {
    let pts = points(steps, real, mirror);
    let &(first, _, _) = pts.first()?;
    let share = |d: f64| if peak > 0.0 { d.abs() / peak } else { 0.0 };
    let (mut max_gap, mut max_gap_step) = (0.0f64, first);
    for &(s, r, m) in &pts {
        if (m - r).abs() > max_gap.abs() {
            (max_gap, max_gap_step) = (m - r, s);
        }
    }
    let score = pts.iter().map(|&(_, r, m)| share(m - r)).sum::<f64>() / pts.len() as f64;
    // Walk back from the end while the gap stays large with one sign.
    let mut since_step = None;
    let sign = pts.last().map(|&(_, r, m)| (m - r).signum());
    for &(s, r, m) in pts.iter().rev() {
        if share(m - r) < LARGE || Some((m - r).signum()) != sign {
            break;
        }
        since_step = Some(s);
    }
    Some(Gap {
        max_gap,
        max_gap_step,
        max_gap_share: share(max_gap),
        score,
        since_step,
    })
}

/// What a metric measures, for its mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Slab memory and the free objects in it: slabs, partial slabs, free
    /// objects, total objects, loss, slab bytes.
    SlabMemory,
    /// Objects allocated as the slabs see them (sheaved ones included).
    SlabObjects,
    /// Objects on the CPUs' sheaves, sheaves in the barn.
    Sheaves,
    /// Pages on the CPUs' page lists.
    PcpPages,
    /// Free blocks of orders 0-3, the ones the page lists hold.
    LowOrderBlocks,
    /// Free blocks of order 4 and up, the indexes.
    Fragmentation,
    /// Free pages of the zone.
    FreePages,
    /// Allocations that failed.
    Failures,
}

/// How a metric is read from a sample (`None`: the side lacks it).
pub type Reader = Box<dyn Fn(&Sample) -> Option<f64>>;

/// What a metric's gaps are shares of.
#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    /// Its own peak.
    Peak,
    /// The peak of the metric of this name: the whole it is a part of.
    Of(&'static str),
    /// A fixed full scale (an index's 1).
    Full(f64),
}

/// One metric: its name, unit, kind, scale and how to read it from a
/// sample.
pub struct Metric {
    pub name: String,
    pub unit: &'static str,
    pub kind: Kind,
    pub scale: Scale,
    /// A value that says a state rather than measures: never scored.
    pub state: Option<State>,
    pub get: Reader,
}

/// A metric's value that is a state, and the words the report gives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    pub value: f64,
    pub label: &'static str,
}

/// mm/vmstat.c's `__fragmentation_index` when a block of the order is free
/// (-1000 thousandths): the request would succeed, so the index, which
/// tells lack of memory (0) from fragmentation (1) in a failing request,
/// does not apply.
pub const EXTFRAG_BLOCK_FREE: State = State {
    value: -1.0,
    label: "block free",
};

/// The series as scored: every sample where either side reads `state` left
/// out of both (`None`), and how many samples each side (real, mirror) read
/// it at.
pub fn scored(
    real: &[Option<f64>],
    mirror: &[Option<f64>],
    state: f64,
) -> (Vec<Option<f64>>, Vec<Option<f64>>, [u64; 2]) {
    let mut at = [0u64; 2];
    let (mut r, mut m) = (Vec::new(), Vec::new());
    for (a, b) in real.iter().zip(mirror) {
        let (sa, sb) = (*a == Some(state), *b == Some(state));
        at[0] += u64::from(sa);
        at[1] += u64::from(sb);
        let keep = !sa && !sb;
        r.push(a.filter(|_| keep));
        m.push(b.filter(|_| keep));
    }
    (r, m, at)
}

fn metric(
    name: impl Into<String>,
    unit: &'static str,
    kind: Kind,
    get: impl Fn(&Sample) -> Option<f64> + 'static,
) -> Metric {
    Metric {
        name: name.into(),
        unit,
        kind,
        scale: Scale::Peak,
        state: None,
        get: Box::new(get),
    }
}

impl Metric {
    fn over(self, scale: Scale) -> Self {
        Metric { scale, ..self }
    }
    fn with_state(self, state: State) -> Self {
        Metric {
            state: Some(state),
            ..self
        }
    }
}

/// A cache field, summed over `caches`; `None` if any cache lacks it.
fn sum(caches: &[&CacheStat], f: fn(&CacheStat) -> Option<u64>) -> Option<f64> {
    caches
        .iter()
        .map(|c| f(c))
        .sum::<Option<u64>>()
        .map(|v| v as f64)
}

/// The per-cache fields compared, with their units and kinds.
type CacheField = (
    &'static str,
    &'static str,
    Kind,
    fn(&CacheStat) -> Option<u64>,
);

const CACHE_FIELDS: [CacheField; 9] = [
    ("objects", "objects", Kind::SlabObjects, |c| Some(c.objects)),
    ("slabs", "slabs", Kind::SlabMemory, |c| Some(c.slabs)),
    ("partial", "slabs", Kind::SlabMemory, |c| Some(c.partial)),
    ("free_objects", "objects", Kind::SlabMemory, |c| {
        Some(c.free_partial)
    }),
    ("loss", "bytes", Kind::SlabMemory, |c| Some(c.loss)),
    ("slab_bytes", "bytes", Kind::SlabMemory, |c| {
        Some(c.slab_bytes)
    }),
    ("sheaf_fill", "objects", Kind::Sheaves, |c| c.sheaf_fill),
    ("barn_full", "sheaves", Kind::Sheaves, |c| c.barn_full),
    ("barn_empty", "sheaves", Kind::Sheaves, |c| c.barn_empty),
];

/// Every metric the report compares: zone Normal's, the session's caches
/// summed (`slab.*`), then each cache's (`<cache>.*`, `caches` in order).
pub fn metrics(caches: &[String]) -> Vec<Metric> {
    use Kind::*;
    let mut v = vec![
        metric("zone.free_pages", "pages", FreePages, |s| {
            Some(s.free_pages() as f64)
        }),
        metric("zone.pcp_pages", "pages", PcpPages, |s| {
            s.pcp_pages.map(|p| p as f64)
        }),
    ];
    // The pages free in blocks of each order, a part of the free pages.
    for o in 0..NR_ORDERS {
        let kind = if o < 4 { LowOrderBlocks } else { Fragmentation };
        let m = metric(format!("zone.free_pages.o{o}"), "pages", kind, move |s| {
            Some((s.free_blocks[o] << o) as f64)
        });
        v.push(m.over(Scale::Of("zone.free_pages")));
    }
    for order in [3, 9] {
        let m = metric(
            format!("zone.unusable_{order}"),
            "index",
            Fragmentation,
            move |s| Some(s.unusable(order)),
        );
        v.push(m.over(Scale::Full(1.0)));
        // 0 to 1 where the request would fail; -1 (a block of the order is
        // free) is a state, not scored.
        let m = metric(
            format!("zone.extfrag_{order}"),
            "index",
            Fragmentation,
            move |s| Some(s.extfrag(order)),
        );
        v.push(m.over(Scale::Full(1.0)).with_state(EXTFRAG_BLOCK_FREE));
    }
    v.push(metric("stream.failed", "allocations", Failures, |s| {
        Some(s.failed as f64)
    }));
    for (field, unit, kind, f) in CACHE_FIELDS {
        v.push(metric(format!("slab.{field}"), unit, kind, move |s| {
            // No cache yet: no objects, but nothing to say of sheaves.
            if s.caches.is_empty() && kind == Sheaves {
                return None;
            }
            sum(&s.caches.iter().collect::<Vec<_>>(), f)
        }));
    }
    for name in caches {
        for (i, (field, unit, kind, f)) in CACHE_FIELDS.into_iter().enumerate() {
            let n = name.clone();
            let whole = Scale::Of(SLAB_TOTALS[i]);
            v.push(
                metric(format!("{name}.{field}"), unit, kind, move |s| {
                    // A cache not made yet holds nothing.
                    match s.caches.iter().find(|c| c.name == n) {
                        Some(c) => f(c).map(|x| x as f64),
                        None => f(&CacheStat::new(
                            crate::slabstat::Side::Mirror,
                            &n,
                            &Default::default(),
                            4096,
                        ))
                        .map(|_| 0.0),
                    }
                })
                .over(whole),
            );
        }
    }
    v
}

/// The names of the `slab.*` sums, in [`CACHE_FIELDS`] order: a cache's
/// metric is a part of its sum.
const SLAB_TOTALS: [&str; 9] = [
    "slab.objects",
    "slab.slabs",
    "slab.partial",
    "slab.free_objects",
    "slab.loss",
    "slab.slab_bytes",
    "slab.sheaf_fill",
    "slab.barn_full",
    "slab.barn_empty",
];

/// The mechanism behind a large gap of a metric of `kind` where the
/// mirror is above the real side (`mirror_higher`) or below it.
pub fn mechanism(kind: Kind, mirror_higher: bool) -> &'static str {
    use Kind::*;
    match (kind, mirror_higher) {
        (SlabMemory, true) => {
            "the mirror's slabs hold more free room: it keeps SLUB's list order and empty-slab \
             rule, so the room comes from what reaches the slabs: objects its sheaves and barns \
             flush back sooner, or allocations that failed on the real side"
        }
        (SlabMemory, false) => {
            "SLUB's slabs hold more free room: its barn takes more sheaves (it allocates empty \
             ones, the mirror owns 10), so more freed objects wait there and more slabs are made"
        }
        (SlabObjects, _) => {
            "objects parked on sheaves and in barns count as allocated, and SLUB's barn takes \
             empty sheaves from the allocator while the mirror's owns 10; or allocations failed \
             on one side"
        }
        (Sheaves, _) => "sheaf and barn occupancy (the kernel keeps its own private: no real series)",
        (PcpPages, _) => {
            "per-CPU page lists: the kernel tunes pcp->high at run time (between high_min and \
             high_max, up while a CPU frees a lot, decaying after), the mirror's high is fixed; \
             and SLUB takes its slab pages through the lists, the mirror straight from the buddy"
        }
        (LowOrderBlocks, _) => {
            "blocks parked on the per-CPU page lists are not on the free lists (see \
             zone.pcp_pages), and slab pages pass through the lists on the real side only"
        }
        (Fragmentation, _) => {
            "the real zone's per-CPU lists hold pages its buddy cannot merge (see \
             zone.pcp_pages), the kernel groups pageblocks by migrate type and steals whole ones \
             on fallback (the mirror's buddy has none), and the real zone serves the rest of the \
             kernel too"
        }
        (FreePages, _) => {
            "the real zone serves the rest of the kernel too (memlabctl, sysfs reads, page tables), \
             and the two sides hold different per-CPU and slab memory"
        }
        (Failures, _) => {
            "the real zone keeps its watermarks (min, boosted after fallbacks) and its per-CPU \
             lists out of the stream's reach, so its high orders run out first (__GFP_NORETRY, \
             no compaction in these kernels); the mirror keeps a 1/32 reserve for GFP_ATOMIC only"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn identical_series_score_zero() {
        let g = gap(&[0, 1, 2], &some(&[1.0, 5.0, 3.0]), &some(&[1.0, 5.0, 3.0])).unwrap();
        assert_eq!(g.score, 0.0);
        assert_eq!(g.max_gap, 0.0);
        assert_eq!(g.max_gap_step, 0);
        assert!(!g.is_large());
        assert_eq!(g.since_step, None);
    }

    #[test]
    fn the_score_is_the_mean_gap_over_the_peak() {
        // Peak 10 (the mirror at step 200); gaps 0, 2, 5, 4: mean 2.75.
        let steps = [0, 100, 200, 300];
        let g = gap(
            &steps,
            &some(&[0.0, 4.0, 5.0, 4.0]),
            &some(&[0.0, 6.0, 10.0, 8.0]),
        )
        .unwrap();
        assert_eq!(g.score, 2.75 / 10.0);
        assert_eq!((g.max_gap, g.max_gap_step), (5.0, 200));
        assert_eq!(g.max_gap_share, 0.5);
        assert!(g.is_large());
        // Gaps 0.2, 0.5, 0.4 of the peak from step 100 on, all positive.
        assert_eq!(g.since_step, Some(100));
    }

    #[test]
    fn since_needs_the_gap_to_stay_large_with_one_sign() {
        let steps = [0, 1, 2, 3, 4];
        let real = some(&[10.0, 10.0, 10.0, 10.0, 10.0]);
        // Below at 1, above at 2, small at 3 would break it; from 3 on it holds.
        let mirror = some(&[10.0, 5.0, 15.0, 6.0, 7.0]);
        let g = gap(&steps, &real, &mirror).unwrap();
        assert_eq!(g.since_step, Some(3));
        assert_eq!((g.max_gap, g.max_gap_step), (-5.0, 1));
        // Ends small: no `since`, though the largest gap is large.
        let g = gap(&steps, &real, &some(&[10.0, 5.0, 5.0, 5.0, 9.0])).unwrap();
        assert!(g.is_large());
        assert_eq!(g.since_step, None);
    }

    #[test]
    fn a_side_without_values_has_no_gap_and_zero_is_no_division() {
        let none = vec![None, None];
        assert_eq!(gap(&[0, 1], &none, &some(&[1.0, 2.0])), None);
        let g = gap(&[0, 1], &some(&[0.0, 0.0]), &some(&[0.0, 0.0])).unwrap();
        assert_eq!((g.score, g.max_gap_share), (0.0, 0.0));
        // Samples missing on one side are left out, the rest compared.
        let g = gap(
            &[0, 1, 2],
            &[Some(1.0), None, Some(2.0)],
            &some(&[1.0, 9.0, 2.0]),
        )
        .unwrap();
        assert_eq!(g.score, 0.0);
        // Negative values (an extfrag index of -1) count by magnitude.
        let g = gap(&[0], &some(&[-1.0]), &some(&[0.5])).unwrap();
        assert_eq!((g.max_gap, g.max_gap_share, g.score), (1.5, 1.5, 1.5));
    }

    #[test]
    fn extfrag_block_free_is_a_state_not_a_gap() {
        // Real ran out of order-9 blocks at the second sample (0.994), the
        // mirror two samples later: two samples with -1 on one side only.
        let steps = [0, 1, 2, 3];
        let real = some(&[-1.0, 0.994, 0.994, 0.996]);
        let mirror = some(&[-1.0, -1.0, -1.0, 0.990]);
        let (r, m, at) = scored(&real, &mirror, EXTFRAG_BLOCK_FREE.value);
        assert_eq!(at, [1, 3]);
        assert_eq!(r, [None, None, None, Some(0.996)]);
        assert_eq!(m, [None, None, None, Some(0.990)]);
        let g = gap_over(&steps, &r, &m, 1.0).unwrap();
        assert_eq!(g.max_gap_step, 3);
        assert!(g.max_gap_share < 0.01 && !g.is_large(), "{g:?}");
        // Unmasked, the same series read as a 100% gap of the old range 2.
        let raw = gap_over(&steps, &real, &mirror, 2.0).unwrap();
        assert!(raw.is_large() && raw.max_gap_share > 0.99, "{raw:?}");
        // Nothing left to score: no gap at all.
        let (r, m, at) = scored(&some(&[-1.0]), &some(&[0.5]), -1.0);
        assert_eq!((gap(&[0], &r, &m), at), (None, [1, 0]));
        let all = metrics(&[]);
        let e = all.iter().find(|m| m.name == "zone.extfrag_9").unwrap();
        assert_eq!(
            (e.scale.clone(), e.state),
            (Scale::Full(1.0), Some(EXTFRAG_BLOCK_FREE))
        );
        let u = all.iter().find(|m| m.name == "zone.unusable_9").unwrap();
        assert_eq!(u.state, None);
    }

    #[test]
    fn a_part_is_measured_against_its_whole() {
        // Two order-0 pages of a zone whose free pages peak at 4000: a
        // gap of 2 is 0.05% of it, not the 100% of its own peak.
        let steps = [0, 1];
        let (r, m) = (some(&[0.0, 2.0]), some(&[0.0, 0.0]));
        assert_eq!(gap(&steps, &r, &m).unwrap().max_gap_share, 1.0);
        let g = gap_over(&steps, &r, &m, 4000.0).unwrap();
        assert_eq!((g.max_gap_share, g.score), (0.0005, 0.00025));
        assert!(!g.is_large());
        assert_eq!(peak(&steps, &r, &some(&[3.0, -5.0])), 5.0);
        let names = metrics(&["cache-64".into()]);
        let part = names.iter().find(|m| m.name == "cache-64.partial").unwrap();
        assert_eq!(part.scale, Scale::Of("slab.partial"));
        let o3 = names
            .iter()
            .find(|m| m.name == "zone.free_pages.o3")
            .unwrap();
        assert_eq!(o3.scale, Scale::Of("zone.free_pages"));
        let u9 = names.iter().find(|m| m.name == "zone.unusable_9").unwrap();
        assert_eq!(u9.scale, Scale::Full(1.0));
        // Every whole a part names is a metric itself.
        for m in &names {
            if let Scale::Of(whole) = m.scale {
                assert!(names.iter().any(|w| w.name == whole), "{whole}");
            }
        }
    }

    #[test]
    fn every_kind_names_a_mechanism() {
        use Kind::*;
        for k in [
            SlabMemory,
            SlabObjects,
            Sheaves,
            PcpPages,
            LowOrderBlocks,
            Fragmentation,
            FreePages,
            Failures,
        ] {
            assert!(!mechanism(k, true).is_empty() && !mechanism(k, false).is_empty());
        }
        let names: Vec<String> = metrics(&["kmalloc-64".into()])
            .into_iter()
            .map(|m| m.name)
            .collect();
        for want in [
            "zone.free_pages",
            "zone.free_pages.o9",
            "zone.unusable_9",
            "slab.partial",
            "kmalloc-64.free_objects",
            "kmalloc-64.barn_full",
        ] {
            assert!(names.iter().any(|n| n == want), "{want}");
        }
    }
}
