// SPDX-License-Identifier: GPL-2.0

//! CPU-local data without atomics, as SLUB's `local_trylock` gives its
//! sheaves: the fast path disables preemption, reads its CPU number, and
//! marks its CPU's slot busy with a plain store. No lock instruction, no
//! division.
//!
//! A slot is reached in these ways, never two at once:
//! - [`PerCpu::local`], by a task on the slot's own CPU with preemption off
//!   (so no other task runs there until it is done);
//! - [`PerCpu::on`] (and [`PerCpu::each`]), which runs a function on the owning CPU in an IPI
//!   (`smp_call_function_single`), where it can only interrupt a `local`
//!   section: it then sees the busy mark, gives up, and is sent again. CPUs
//!   that are offline (held so by `cpus_read_lock`) run no task, and their
//!   slot is visited directly;
//! - [`PerCpu::get_mut`], with `&mut self`: nothing else can be running.
//!
//! None of the mirror is called from interrupt context, so `local` needs no
//! interrupt masking. How preemption is held off and the CPU number read
//! differs by architecture ([`super::arch::NoPreempt`]).

use super::arch::{CpusReadLock, NoPreempt};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{compiler_fence, AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use kernel::{bindings, cpu::nr_cpu_ids, prelude::*};

/// One CPU's slot, on its own cache lines.
#[repr(C, align(64))]
struct Slot<T> {
    /// Set while a `local` section on the owning CPU uses `data`. Only that
    /// CPU writes it and only that CPU's IPIs read it, so relaxed accesses
    /// (plain `mov`s on x86) with compiler fences suffice: an interrupt sees
    /// its own CPU's stores in program order, and the fences keep the
    /// compiler from moving `data`'s accesses across the mark or dropping
    /// the mark as a dead store.
    busy: AtomicBool,
    data: UnsafeCell<T>,
}

/// A `T` per possible CPU.
pub(crate) struct PerCpu<T> {
    slots: KVec<Slot<T>>,
}

// SAFETY: a slot's data is only reached as the module docs say: on its own
// CPU, one user at a time, or through `&mut self`.
unsafe impl<T: Send> Send for PerCpu<T> {}
// SAFETY: as above; `&PerCpu` gives out `&mut T` only to one user at a time.
unsafe impl<T: Send> Sync for PerCpu<T> {}

impl<T> PerCpu<T> {
    /// A slot for each possible CPU, each from `init`.
    pub(crate) fn new(mut init: impl FnMut() -> Result<T>) -> Result<Self> {
        let n = nr_cpu_ids().max(1) as usize;
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            let slot = Slot {
                busy: AtomicBool::new(false),
                data: UnsafeCell::new(init()?),
            };
            slots.push(slot, GFP_KERNEL)?;
        }
        Ok(PerCpu { slots })
    }

    /// Runs `f` on this CPU's `T` with preemption off; `None` (and `f` not
    /// run) if the slot is already in use by an outer section on this CPU.
    /// `f` must not sleep.
    #[inline(always)]
    pub(crate) fn local<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let np = NoPreempt::new();
        let slot = self.slots.get(np.cpu())?;
        if slot.busy.load(Relaxed) {
            return None;
        }
        slot.busy.store(true, Relaxed);
        compiler_fence(SeqCst);
        // SAFETY: the slot is this CPU's and now marked busy (the fence puts
        // the mark before any access below): no task can run here before
        // `np` drops, and an IPI here sees the mark and keeps off, so this
        // is the only reference.
        let r = f(unsafe { &mut *slot.data.get() });
        compiler_fence(SeqCst);
        slot.busy.store(false, Relaxed);
        drop(np);
        Some(r)
    }

    /// Slots: one per possible CPU.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Runs `f` on CPU `cpu`'s `T`, on that CPU, in an IPI: `f` runs with
    /// interrupts off and must not sleep or take locks. Sleeps (takes
    /// `cpus_read_lock`); never call it from a `local` section.
    pub(crate) fn on(&self, cpu: usize, f: &mut dyn FnMut(&mut T)) {
        let (Some(slot), Ok(id)) = (self.slots.get(cpu), i32::try_from(cpu)) else {
            return;
        };
        let _hotplug = CpusReadLock::new();
        let mut visit = Visit {
            slot,
            f,
            done: false,
        };
        let arg = core::ptr::from_mut(&mut visit).cast::<c_void>();
        loop {
            // SAFETY: `visit_on_cpu::<T>` matches `arg`, which lives across
            // the call (`wait` returns after it ran).
            let r = unsafe {
                bindings::smp_call_function_single(
                    id,
                    Some(visit_on_cpu::<T>),
                    arg,
                    super::compat::SMP_CALL_WAIT,
                )
            };
            if r != 0 {
                // Offline, and kept so by `_hotplug`: no task runs on that
                // CPU, so nothing else reaches its slot.
                // SAFETY: as just said, this is the only reference.
                (visit.f)(unsafe { &mut *slot.data.get() });
                return;
            }
            if visit.done {
                return;
            }
            // The IPI landed inside a `local` section, which ends as soon
            // as the IPI returns: ask again.
            core::hint::spin_loop();
        }
    }

    /// Every CPU's `T`: `&mut self` proves no section is running.
    pub(crate) fn get_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().map(|s| s.data.get_mut())
    }

    /// [`PerCpu::on`] each CPU in turn.
    pub(crate) fn each(&self, f: &mut dyn FnMut(&mut T)) {
        for cpu in 0..self.slots.len() {
            self.on(cpu, f);
        }
    }
}

/// What [`PerCpu::each`] hands to its IPI.
struct Visit<'a, T> {
    slot: &'a Slot<T>,
    f: &'a mut dyn FnMut(&mut T),
    done: bool,
}

/// The IPI of [`PerCpu::each`], on the slot's own CPU.
///
/// # Safety
///
/// `arg` is a `*mut Visit<'_, T>` valid for the call, for the slot of the
/// CPU this runs on.
unsafe extern "C" fn visit_on_cpu<T>(arg: *mut c_void) {
    // SAFETY: requirement of this function.
    let v = unsafe { &mut *arg.cast::<Visit<'_, T>>() };
    // This runs on the slot's CPU with interrupts off: the only other user
    // is a `local` section this IPI interrupted, whose mark this reads.
    if v.slot.busy.load(Relaxed) {
        return;
    }
    compiler_fence(SeqCst);
    // SAFETY: not busy, so no `local` section is running here, and none can
    // start before this returns.
    (v.f)(unsafe { &mut *v.slot.data.get() });
    v.done = true;
}
