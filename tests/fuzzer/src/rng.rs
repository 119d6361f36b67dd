// SPDX-License-Identifier: GPL-2.0

//! A small seeded PRNG (splitmix64) and the biased value generators the
//! fuzzer draws from: sizes weighted toward boundaries, orders, GFP values.

use crate::uapi;

/// splitmix64: one `u64` of state, good enough for fuzzing, reproducible.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// An independent stream for worker `i` of a run seeded with `seed`.
    pub fn derive(seed: u64, i: u64) -> Self {
        let mut r = Rng(seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f));
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// One of `items`, or (as likely as each of them) what `other` makes.
    pub fn pick_or<T: Copy>(&mut self, items: &[T], other: impl FnOnce(&mut Self) -> T) -> T {
        match self.below(items.len() as u64 + 1) as usize {
            i if i < items.len() => items[i],
            _ => other(self),
        }
    }

    /// Index into `weights`, chosen with probability proportional to each.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }

    /// `2^k - 1`, `2^k` or `2^k + 1` for `k` in `lo..=hi`.
    fn pow2ish(&mut self, lo: u64, hi: u64) -> u64 {
        let p = 1u64 << self.range(lo, hi);
        match self.below(3) {
            0 => p - 1,
            1 => p,
            _ => p + 1,
        }
    }

    /// A byte size, weighted toward small sizes and boundaries: 0, 1, powers
    /// of two +-1, KMALLOC_MAX_SIZE (4 MiB) +-1, past the pin cap, huge.
    /// Sizes of megabytes are rare: under KASAN and TCG they cost.
    pub fn size(&mut self) -> u64 {
        const KMALLOC_MAX: u64 = 4 << 20;
        match self.weighted(&[600, 150, 200, 30, 8, 3, 1, 40, 25]) {
            0 => self.range(1, 512),
            1 => self.range(1, 16384),
            2 => self.pow2ish(0, 14),
            3 => self.pow2ish(15, 20),
            4 => KMALLOC_MAX - 1 + self.below(3),
            5 => self.pow2ish(21, 25),
            6 => self.pow2ish(26, 27),
            7 => self.pick(&[0, 0, 1, 8, 96, 192, 4095, 4096, 4097, 8192, 8193]),
            _ => self.pick_or(
                &[
                    (64 << 20) + 1,
                    1 << 30,
                    u32::MAX as u64,
                    1 << 32,
                    (1 << 32) + 1,
                    1 << 63,
                    u64::MAX,
                    u64::MAX - 4095,
                ],
                |r| r.next(),
            ),
        }
    }

    /// A page order: 0..=12 (MAX_PAGE_ORDER is 10) mostly small, or garbage.
    pub fn order(&mut self) -> u32 {
        match self.weighted(&[85, 10, 3, 2]) {
            0 => self.range(0, 3) as u32,
            1 => self.range(4, 9) as u32,
            2 => self.pick(&[10, 11, 12]),
            _ => self.pick_or(&[13, 31, 32, 64, u32::MAX], |r| r.u32()),
        }
    }

    /// A valid GFP selector, with the zero bit or without.
    pub fn gfp_valid(&mut self) -> u32 {
        let sel = self.below(u64::from(uapi::MEMLAB_NR_GFP)) as u32;
        if self.chance(1, 4) {
            sel | uapi::MEMLAB_GFP_ZERO
        } else {
            sel
        }
    }

    /// A GFP value: mostly valid, else a bad selector or stray bits.
    pub fn gfp(&mut self) -> u32 {
        match self.weighted(&[85, 5, 5, 5]) {
            0 => self.gfp_valid(),
            1 => self.range(u64::from(uapi::MEMLAB_NR_GFP), 255) as u32,
            2 => self.gfp_valid() | 1 << self.range(9, 31),
            _ => self.u32(),
        }
    }

    /// An alignment: 0, a power of two, a non-power of two, or garbage.
    pub fn align(&mut self) -> u32 {
        match self.weighted(&[50, 35, 8, 7]) {
            0 => 0,
            1 => 1 << self.range(0, 12),
            2 => 1 << self.range(13, 31),
            _ => self.pick_or(&[3, 24, 100, 4097, u32::MAX], |r| r.u32()),
        }
    }

    /// A backend: real or mirror, sometimes garbage.
    pub fn backend(&mut self) -> u32 {
        match self.weighted(&[48, 48, 4]) {
            0 => uapi::MEMLAB_BACKEND_REAL,
            1 => uapi::MEMLAB_BACKEND_MIRROR,
            _ => self.pick_or(&[2, 3, 0xff, u32::MAX], |r| r.u32()),
        }
    }

    /// A family: one of the five, sometimes garbage.
    pub fn family(&mut self) -> u32 {
        if self.chance(96, 100) {
            self.below(u64::from(uapi::MEMLAB_NR_FAMILIES)) as u32
        } else {
            self.pick_or(&[5, 6, 0x100, u32::MAX], |r| r.u32())
        }
    }
}
