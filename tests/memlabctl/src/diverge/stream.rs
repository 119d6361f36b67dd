// SPDX-License-Identifier: GPL-2.0

//! Seeded synthetic operation streams for `memlabctl diverge`, sized to
//! the arena they run in (the free memory of zone Normal at the start):
//!
//! - `fragment`: drives the arena to [`FRAGMENT`]'s fill of live memory
//!   (90% of the pages a GFP_KERNEL stream may take on the smaller side),
//!   then swings it between 75% and 90% in waves, with churn all along. A third of it is long-lived ("unmovable":
//!   objects of four kmem_caches and order-0/1 pages, each living a quarter
//!   of the stream or more, allocated all along among the rest so that
//!   they land in the holes the others leave, scattered); the rest is
//!   short-lived page blocks of orders 0-3 (now and then 4-6), kmalloc
//!   objects of 16 B..8 KiB and objects of the same four caches, freed at
//!   random once the live set is at its target. Slabs of several caches
//!   end up interleaved with page blocks, which is what pins the higher
//!   orders.
//! - `mixed`: the same kinds of objects, nothing long-lived, at half the
//!   arena: a working set with churn, for the slab and per-CPU behaviour
//!   rather than fragmentation.
//!
//! Sizes are counted as the replay counts them
//! (`memlab_core::request::replay::charge_of`): a page block, or the
//! object size rounded up to a power of two.

use crate::dev::uapi;
use crate::frag::Rng;
use crate::replay::Step;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A stream's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    /// Live bytes at the peak, as a share of the arena.
    pub fill: f64,
    /// Share of the peak held by objects that are never freed.
    pub long_share: f64,
    /// Share of the steps spent ramping up to the peak.
    pub ramp: f64,
    /// After the ramp the target swings down by this share of the peak
    /// and back, ten times over the stream: waves of frees, then of
    /// allocations, alternately small ones (which fill the holes of the
    /// last wave) and large ones (which cannot, and split large blocks).
    pub swing: f64,
}

/// The high-occupancy stream (issue 21's item 4).
pub const FRAGMENT: Mix = Mix {
    fill: 0.9,
    long_share: 0.5,
    ramp: 0.4,
    swing: 0.15,
};

/// A working set with churn at half the arena, nothing long-lived.
pub const MIXED: Mix = Mix {
    fill: 0.5,
    long_share: 0.0,
    ramp: 0.25,
    swing: 0.0,
};

/// The object sizes of the stream's own kmem_caches (a dentry-, an
/// inode-, a buffer-head- and a 1000-byte object, say).
pub const CACHE_SIZES: [u64; 4] = [64, 192, 512, 1000];

/// Most objects live at once: well below the replay's id table.
const MAX_LIVE: usize = 60_000;

/// An allocation: family and argument (bytes, or the order for pages).
type Alloc = (u32, u64);

/// Bytes an allocation holds in the replay's measure.
pub fn charge(family: u32, arg: u64) -> u64 {
    if family == uapi::MEMLAB_FAMILY_PAGES {
        4096 << arg
    } else {
        arg.max(8).next_power_of_two()
    }
}

/// A long-lived object: two in three a cache object, else an order-0 or
/// order-1 page block.
fn long_lived(rng: &mut Rng) -> Alloc {
    if rng.below(3) < 2 {
        let size = CACHE_SIZES[rng.below(4) as usize];
        (uapi::MEMLAB_FAMILY_KMEM_CACHE, size)
    } else {
        (uapi::MEMLAB_FAMILY_PAGES, u64::from(rng.below(4) / 3))
    }
}

/// What the short-lived allocations of a stretch of the stream are.
#[derive(Clone, Copy, PartialEq)]
enum Sizes {
    /// Orders 0-3 and slab objects (the ramp).
    Mixed,
    /// Orders 0-1 and slab objects: they fill the holes of the last wave.
    Small,
    /// Orders 4-8: too large for the holes small frees leave, they split
    /// large blocks, which the small long-lived objects then share.
    Large,
}

/// A short-lived object: half page blocks (of the stretch's orders), a
/// quarter kmalloc (16 B..8 KiB, log-uniform), a quarter cache objects;
/// in a `Large` stretch, page blocks only.
fn short_lived(rng: &mut Rng, sizes: Sizes) -> Alloc {
    let pages = |order: u32| (uapi::MEMLAB_FAMILY_PAGES, u64::from(order));
    match (sizes, rng.below(4)) {
        (Sizes::Large, _) => pages(4 + rng.below(5)),
        (Sizes::Small, 0 | 1) => pages(rng.below(2)),
        (_, 0 | 1) => pages(match rng.below(100) {
            0..=39 => 0,
            40..=64 => 1,
            65..=84 => 2,
            _ => 3,
        }),
        (_, 2) => {
            let base = 16u64 << rng.below(9);
            let size = base + u64::from(rng.below(base as u32));
            (uapi::MEMLAB_FAMILY_KMALLOC, size.min(8192))
        }
        _ => (
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
            CACHE_SIZES[rng.below(4) as usize],
        ),
    }
}

/// The live set while generating.
struct Live {
    /// Short-lived ids with their charge (freed at random).
    short: Vec<(u64, u64)>,
    /// Long-lived ones by the step they go: (step, id, charge).
    long: BinaryHeap<Reverse<(u32, u64, u64)>>,
    bytes: u64,
    long_bytes: u64,
}

impl Live {
    fn count(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

/// `steps` steps (fewer if the live set is full with nothing to free) of
/// `mix` in an arena of `arena_bytes`, seeded by `seed`. Long-lived
/// objects are allocated all along, whenever they hold less than their
/// share of the target, each with a lifetime of a quarter of the stream to
/// its whole length: those allocated late land in the holes short-lived
/// ones left, and pin them. Objects live at the end stay live (the session
/// frees them when it closes).
pub fn generate(steps: u32, seed: u32, arena_bytes: u64, mix: Mix) -> Vec<Step> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(steps as usize);
    let mut live = Live {
        short: Vec::new(),
        long: BinaryHeap::new(),
        bytes: 0,
        long_bytes: 0,
    };
    let peak = mix.fill * arena_bytes as f64;
    let ramp_steps = (f64::from(steps) * mix.ramp).max(1.0);
    let mut next = 0u64;
    let period = (f64::from(steps) / 10.0).max(1.0);
    for i in 0..steps {
        let up = f64::from(i) / ramp_steps;
        // A triangle wave 0..1..0 each period after the ramp; waves
        // alternate small and large allocations.
        let (wave, sizes) = if up < 1.0 {
            (0.0, Sizes::Mixed)
        } else {
            let t = (f64::from(i) - ramp_steps) / period;
            let x = t.fract();
            let sizes = if (t as u64).is_multiple_of(2) {
                Sizes::Small
            } else {
                Sizes::Large
            };
            (1.0 - (2.0 * x - 1.0).abs(), sizes)
        };
        let target = peak * up.min(1.0) * (1.0 - mix.swing * wave);
        if let Some(&Reverse((due, id, bytes))) = live.long.peek() {
            if due <= i {
                live.long.pop();
                live.bytes -= bytes;
                live.long_bytes -= bytes;
                out.push(Step::Free { id });
                continue;
            }
        }
        let full = live.bytes as f64 >= target || live.count() >= MAX_LIVE;
        // Above the target, or one step in eight anyway (churn), a random
        // short-lived object goes.
        if !live.short.is_empty() && (full || rng.below(8) == 0) {
            let k = rng.below(live.short.len() as u32) as usize;
            let (id, bytes) = live.short.swap_remove(k);
            live.bytes -= bytes;
            out.push(Step::Free { id });
            continue;
        }
        if full {
            // Nothing short-lived to free: the long-lived fill the target.
            continue;
        }
        let long = (live.long_bytes as f64) < mix.long_share * target && rng.chance(0.5);
        let (family, arg) = if long {
            long_lived(&mut rng)
        } else {
            short_lived(&mut rng, sizes)
        };
        let bytes = charge(family, arg);
        out.push(Step::Alloc {
            id: next,
            family,
            arg,
            gfp: uapi::MEMLAB_GFP_KERNEL,
        });
        live.bytes += bytes;
        if long {
            let life = steps / 4 + rng.below(steps - steps / 4 + 1);
            live.long
                .push(Reverse((i.saturating_add(life), next, bytes)));
            live.long_bytes += bytes;
        } else {
            live.short.push((next, bytes));
        }
        next += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::encode;
    use memlab_core::request::replay::{ids_needed, plan};

    const ARENA: u64 = 112 << 20;

    /// Live bytes after each step, in the replay's measure.
    fn live_curve(steps: &[Step]) -> Vec<u64> {
        let mut held = std::collections::HashMap::new();
        let mut cur = 0u64;
        steps
            .iter()
            .map(|s| {
                match *s {
                    Step::Alloc {
                        id, family, arg, ..
                    } => {
                        held.insert(id, charge(family, arg));
                        cur += charge(family, arg);
                    }
                    Step::Free { id } => cur -= held.remove(&id).unwrap(),
                }
                cur
            })
            .collect()
    }

    #[test]
    fn fragment_reaches_its_fill_and_holds_it() {
        let s = generate(150_000, 7, ARENA, FRAGMENT);
        assert_eq!(s, generate(150_000, 7, ARENA, FRAGMENT), "seeded");
        assert_ne!(s, generate(150_000, 8, ARENA, FRAGMENT));
        let curve = live_curve(&s);
        let peak = *curve.iter().max().unwrap() as f64 / ARENA as f64;
        assert!((0.89..0.91).contains(&peak), "peak {peak}");
        // After the ramp the live set swings down by 15% of the peak or
        // more (one large block freed at the bottom of a wave) and back.
        let after = &curve[curve.len() / 2..];
        let low = *after.iter().min().unwrap() as f64 / ARENA as f64;
        assert!((0.6..0.78).contains(&low), "low {low}");
        // The kernel's own checker agrees, and finds the same peak.
        let (bin, _) = encode(&s).unwrap();
        let mut live = vec![0u64; ids_needed(&bin)];
        let p = plan(&bin, &mut live).unwrap();
        assert_eq!(p.peak_bytes, *curve.iter().max().unwrap());
        assert!(ids_needed(&bin) < MAX_LIVE + 1);
        assert_eq!(p.nr_caches, CACHE_SIZES.len());
    }

    #[test]
    fn fragment_keeps_a_third_long_lived_and_mixes_families() {
        let s = generate(60_000, 7, ARENA, FRAGMENT);
        let freed: std::collections::HashSet<u64> = s
            .iter()
            .filter_map(|x| match x {
                Step::Free { id } => Some(*id),
                _ => None,
            })
            .collect();
        let (mut long, mut all) = (0u64, 0u64);
        let mut families = std::collections::HashSet::new();
        for x in &s {
            if let Step::Alloc {
                id, family, arg, ..
            } = *x
            {
                families.insert(family);
                if !freed.contains(&id) {
                    long += charge(family, arg);
                }
                all += 1;
            }
        }
        assert_eq!(families.len(), 3);
        let share = long as f64 / (FRAGMENT.fill * ARENA as f64);
        // Never-freed objects: the long-lived third and the short-lived
        // ones still live at the end.
        assert!(share > 0.3, "share {share}");
        assert!(all > 20_000);
    }

    #[test]
    fn mixed_stays_at_half_with_nothing_long_lived() {
        let s = generate(20_000, 3, ARENA, MIXED);
        let curve = live_curve(&s);
        let peak = *curve.iter().max().unwrap() as f64 / ARENA as f64;
        assert!((0.45..0.55).contains(&peak), "peak {peak}");
        let frees = s.iter().filter(|x| matches!(x, Step::Free { .. })).count();
        assert!(frees > 5_000);
    }
}
