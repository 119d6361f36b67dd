// SPDX-License-Identifier: GPL-2.0

//! The benchmark's arithmetic, kept apart so the host tests can check it:
//! raw samples to ns per operation, percentiles, and the spread of a ratio
//! across rounds.

use serde::Serialize;

/// Raw samples (clock ticks of K operations) to ns per operation, the
/// floor (ticks of K empty windows) subtracted. A sample below the floor
/// counts as 0 ns; the second value says how many were.
pub fn per_op_ns(raw: &[u64], floor_ticks: u64, khz: u64, k: u32) -> (Vec<f64>, usize) {
    let scale = 1e6 / khz.max(1) as f64 / f64::from(k.max(1));
    let clamped = raw.iter().filter(|&&t| t < floor_ticks).count();
    let ns = raw
        .iter()
        .map(|&t| t.saturating_sub(floor_ticks) as f64 * scale)
        .collect();
    (ns, clamped)
}

/// The value at fraction `p` (0..=1) of `v`, sorted here: index
/// `floor(len * p)`, clamped (the kernel's rule); NaN if `v` is empty.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() as f64 * p) as usize).min(s.len().saturating_sub(1));
    s.get(i).copied().unwrap_or(f64::NAN)
}

/// How a figure varied across rounds: its median and extremes, and the
/// quartiles.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
    pub rounds: usize,
}

impl Spread {
    /// The spread of `v` (one value a round); `None` if no round gave a
    /// finite value.
    pub fn of(v: &[f64]) -> Option<Self> {
        let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        Some(Spread {
            median: percentile(&v, 0.5),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            q1: percentile(&v, 0.25),
            q3: percentile(&v, 0.75),
            rounds: v.len(),
        })
    }

    /// `0.93x [0.88-1.02]`: median ratio and its range across rounds.
    pub fn ratio_text(s: Option<Self>) -> String {
        s.map_or_else(
            || "-".into(),
            |s| format!("{:.2}x [{:.2}-{:.2}]", s.median, s.min, s.max),
        )
    }
}

/// Allocations that failed in the runs behind a ratio, per side. A side
/// that fails fast would look faster, so a ratio over runs with any failure
/// is withheld (`None`), and the text says why.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub real: u64,
    pub mirror: u64,
}

impl Failed {
    /// Counts `n` failures on the side of `backend`.
    pub fn add(&mut self, backend: u32, n: u64) {
        if backend == crate::dev::uapi::MEMLAB_BACKEND_REAL {
            self.real += n;
        } else {
            self.mirror += n;
        }
    }

    /// Whether any allocation failed.
    pub fn any(&self) -> bool {
        self.real + self.mirror > 0
    }

    /// `s`, or `None` if any allocation failed: the ratio is withheld.
    pub fn gate(&self, s: Option<Spread>) -> Option<Spread> {
        s.filter(|_| !self.any())
    }

    /// [`Spread::ratio_text`], or `no ratio: failed` when allocations failed.
    pub fn ratio_text(&self, s: Option<Spread>) -> String {
        if self.any() {
            "no ratio: failed".into()
        } else {
            Spread::ratio_text(s)
        }
    }

    /// `  (failed allocations: real 3, mirror 0; no ratio)`, or nothing.
    pub fn note(&self) -> String {
        if self.any() {
            format!(
                "  (failed allocations: real {}, mirror {}; no ratio)",
                self.real, self.mirror
            )
        } else {
            String::new()
        }
    }
}

/// `m / r`, NaN unless both are finite and `r > 0`.
pub fn ratio(m: f64, r: f64) -> f64 {
    if r > 0.0 && m.is_finite() && r.is_finite() {
        m / r
    } else {
        f64::NAN
    }
}

/// The index of the round whose value is the median one (the
/// representative round whose raw samples are kept).
pub fn median_index(v: &[f64]) -> usize {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    idx.get(v.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_subtracted_and_scaled() {
        // 2 GHz clock: 2 ticks a ns; K = 4; floor 40 ticks.
        let (ns, clamped) = per_op_ns(&[40, 120, 30, 840], 40, 2_000_000, 4);
        assert_eq!(ns, vec![0.0, 10.0, 0.0, 100.0]);
        assert_eq!(clamped, 1);
        // A ns clock (khz = 10^6), K = 1.
        assert_eq!(per_op_ns(&[7], 2, 1_000_000, 1).0, vec![5.0]);
    }

    #[test]
    fn percentiles_follow_the_kernel_index_rule() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 100.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn ratio_spread_across_rounds() {
        let s = Spread::of(&[0.9, 1.1, 0.8, f64::NAN, 1.0, 1.2]).unwrap();
        assert_eq!(s.rounds, 5);
        assert_eq!((s.min, s.median, s.max), (0.8, 1.0, 1.2));
        assert_eq!((s.q1, s.q3), (0.9, 1.1));
        assert_eq!(Spread::ratio_text(Some(s)), "1.00x [0.80-1.20]");
        assert_eq!(Spread::of(&[f64::NAN]), None);
        assert_eq!(Spread::ratio_text(None), "-");
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(median_index(&[5.0, 1.0, 3.0]), 2);
    }

    #[test]
    fn a_ratio_over_failed_runs_is_withheld() {
        let s = Spread::of(&[1.0, 2.0]);
        let mut f = Failed::default();
        assert_eq!(f.gate(s), s);
        assert_eq!(f.ratio_text(s), "2.00x [1.00-2.00]");
        assert_eq!(f.note(), "");
        f.add(crate::dev::uapi::MEMLAB_BACKEND_MIRROR, 2);
        assert_eq!(f, Failed { real: 0, mirror: 2 });
        assert_eq!(f.gate(s), None);
        assert_eq!(f.ratio_text(s), "no ratio: failed");
        assert_eq!(
            f.note(),
            "  (failed allocations: real 0, mirror 2; no ratio)"
        );
    }
}
