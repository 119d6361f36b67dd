// SPDX-License-Identifier: GPL-2.0

//! The clock every latency figure in memlab is taken with, on both backends.

use kernel::bindings;

/// The TSC frequency in kHz, 0 if the kernel could not calibrate it.
pub(crate) fn tsc_khz() -> u64 {
    // SAFETY: `tsc_khz` is a plain `unsigned int` the kernel may rewrite at
    // any time (the delayed TSC calibration work refines it after boot).
    // Taking its address reads nothing, and a volatile read of an aligned
    // word is what `READ_ONCE` does in C: one untorn load, never cached.
    u64::from(unsafe { core::ptr::read_volatile(&raw const bindings::tsc_khz) })
}

/// Nanoseconds for latency measurements: the TSC scaled by its calibrated
/// frequency when known, since the clocksource may be as coarse as jiffies
/// (QEMU TCG without ACPI has no HPET and no PM timer); `ktime_get`
/// otherwise.
///
/// Not monotonic: the task may migrate to a CPU whose TSC is behind, and
/// `tsc_khz` may be refined between two reads. Take differences with
/// `saturating_sub` (with overflow checks a plain `-` would panic).
pub(crate) fn now_ns() -> u64 {
    if let Some(khz) = core::num::NonZeroU64::new(tsc_khz()) {
        // SAFETY: `rdtsc` only reads the time stamp counter; every x86-64
        // CPU has one.
        let cycles = unsafe { core::arch::x86_64::_rdtsc() };
        // cycles * 10^6 / khz without overflow or a 128-bit division.
        (cycles / khz) * 1_000_000 + (cycles % khz) * 1_000_000 / khz
    } else {
        // SAFETY: `ktime_get` may be called from any context once timekeeping is up.
        unsafe { bindings::ktime_get() as u64 }
    }
}
