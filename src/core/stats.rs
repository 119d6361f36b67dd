// SPDX-License-Identifier: GPL-2.0

//! The one percentile rule of every figure memlab reports: the exercise
//! report, the workloads and the in-kernel replay, and memlabctl's own
//! figures from raw samples.
//!
//! The value at fraction `num / den` of a sorted vector is the one at index
//! `floor(len * num / den)`, clamped to the last: the median of an even
//! count is the upper middle value, and the p99 of 100 samples is the
//! largest. It is the rule the workloads and memlabctl's benchmark have
//! always used (their raw samples are re-read on the host by it); the
//! exercise report used nearest rank until it was made to agree.

/// The value at fraction `num / den` (at most 1) of sorted `v`; 0 if `v`
/// is empty.
pub fn percentile(v: &[u64], num: usize, den: usize) -> u64 {
    let last = v.len().saturating_sub(1);
    (v.len().saturating_mul(num))
        .checked_div(den)
        .and_then(|i| v.get(i.min(last)))
        .copied()
        .unwrap_or(0)
}

/// The median and the 99th percentile of sorted `v`.
pub fn median_p99(v: &[u64]) -> (u64, u64) {
    (percentile(v, 1, 2), percentile(v, 99, 100))
}
