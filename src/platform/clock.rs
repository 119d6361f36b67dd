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

/// A raw clock for tight loops: read it with [`RawClock::now`] around the
/// call to time, keep the raw differences, and convert them with
/// [`RawClock::ns`] after the loop, so the timed window holds one
/// `rdtsc` and no division. Both use the TSC frequency read once at
/// [`RawClock::new`] (`ktime_get` nanoseconds if it is not calibrated).
#[derive(Clone, Copy)]
pub(crate) struct RawClock {
    khz: u64,
}

impl RawClock {
    /// The clock, with the TSC frequency as it is now.
    pub(crate) fn new() -> Self {
        RawClock { khz: tsc_khz() }
    }

    /// A raw reading: TSC cycles, or nanoseconds without a calibrated TSC.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if self.khz != 0 {
            // SAFETY: `rdtsc` only reads the time stamp counter; every x86-64
            // CPU has one.
            unsafe { core::arch::x86_64::_rdtsc() }
        } else {
            // SAFETY: `ktime_get` may be called from any context once
            // timekeeping is up.
            unsafe { bindings::ktime_get() as u64 }
        }
    }

    /// A difference of two raw readings in nanoseconds.
    pub(crate) fn ns(self, raw: u64) -> u64 {
        match self.khz {
            0 => raw,
            khz => (raw / khz) * 1_000_000 + (raw % khz) * 1_000_000 / khz,
        }
    }
}
