// SPDX-License-Identifier: GPL-2.0

//! The clock every latency figure in memlab is taken with, on both backends.

use core::num::NonZeroU64;
use kernel::bindings;

/// The TSC frequency in kHz, 0 if it is not known (where it comes from
/// differs by architecture: [`super::arch`]).
pub(crate) use super::arch::tsc_khz;

/// The time stamp counter, ordered after every earlier instruction (as the
/// kernel's `rdtsc_ordered`). The same instruction on x86-64 and on UML,
/// where the kernel runs natively on the host CPU.
#[inline(always)]
pub(crate) fn rdtsc_ordered() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `lfence` waits for earlier instructions, `rdtsc` reads the
    // time stamp counter into edx:eax; neither touches memory or the stack.
    // Not `nomem`: the compiler must not move memory accesses of a timed
    // call across the read.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi,
            options(nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Runs `f` and returns what it returned and how long it took in ns, with
/// nothing but the call between the two ordered clock reads (the
/// conversion comes after the second): the one-shot twin of the timed
/// loops' [`RawClock`], for INSPECT's latency and the exercises.
#[inline(always)]
pub(crate) fn time<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let clock = RawClock::new();
    let t0 = clock.now();
    let r = f();
    let dt = clock.now().saturating_sub(t0);
    (r, clock.ns(dt))
}

/// Ticks per millisecond of `ktime_get` nanoseconds.
const NS_PER_MS: NonZeroU64 = match NonZeroU64::new(1_000_000) {
    Some(v) => v,
    None => panic!("10^6 is not zero"),
};

/// The raw clock of every timed loop (workloads, replay): read it with
/// [`RawClock::now`] around the call to time, keep the raw differences, and
/// convert them after the loop ([`RawClock::ns`], [`RawClock::ps`]), so
/// the timed window holds one ordered `rdtsc` and no division. Ticks are
/// TSC cycles at the frequency read once at [`RawClock::new`], or
/// `ktime_get` nanoseconds if the TSC is not calibrated.
#[derive(Clone, Copy)]
pub(crate) struct RawClock {
    tsc: bool,
    /// Ticks per millisecond: the TSC's kHz, or 10^6.
    khz: NonZeroU64,
}

impl RawClock {
    /// The clock, with the TSC frequency as it is now.
    pub(crate) fn new() -> Self {
        match NonZeroU64::new(tsc_khz()) {
            Some(khz) => RawClock { tsc: true, khz },
            None => RawClock {
                tsc: false,
                khz: NS_PER_MS,
            },
        }
    }

    /// The current tick, ordered after every earlier instruction (as the
    /// kernel's `rdtsc_ordered`).
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        if self.tsc {
            rdtsc_ordered()
        } else {
            // SAFETY: `ktime_get` may be called from any context once
            // timekeeping is up.
            unsafe { bindings::ktime_get() as u64 }
        }
    }

    /// Ticks per millisecond (the TSC's kHz; 10^6 for nanoseconds).
    pub(crate) fn khz(&self) -> u64 {
        self.khz.get()
    }

    /// A difference of two raw readings in nanoseconds.
    /// Saturates (a wrapped difference must not panic with overflow
    /// checks on, whatever the TSC's frequency).
    pub(crate) fn ns(&self, raw: u64) -> u64 {
        // raw * 10^6 / khz without a 128-bit division; the second term is
        // below 10^6 * khz, which fits.
        (raw / self.khz)
            .saturating_mul(1_000_000)
            .saturating_add((raw % self.khz) * 1_000_000 / self.khz)
    }

    /// `ticks` per operation of a `k`-operation sample, in picoseconds
    /// (saturating past about 6 s a sample; 0 for `k` 0).
    pub(crate) fn ps(&self, ticks: u64, k: u32) -> u64 {
        // checked_div: no division-by-zero panic path (objtool rejects it).
        ticks
            .saturating_mul(1_000_000_000)
            .checked_div(self.khz.get().saturating_mul(u64::from(k)))
            .unwrap_or(0)
    }
}

/// Migration disabled while it lives: every window of a timed run reads
/// one CPU's TSC (a difference across CPUs could be negative), and the
/// per-CPU caches the run warms are the ones it times. Sleeping
/// (GFP_KERNEL reclaim) and preemption stay allowed.
pub(crate) struct NoMigrate(());

impl NoMigrate {
    pub(crate) fn new() -> Self {
        // SAFETY: may be called from any task context; undone in `Drop`.
        unsafe { bindings::migrate_disable() };
        NoMigrate(())
    }
}

impl Drop for NoMigrate {
    fn drop(&mut self) {
        // SAFETY: pairs with the `migrate_disable` of `new`, same task.
        unsafe { bindings::migrate_enable() };
    }
}
