// SPDX-License-Identifier: GPL-2.0

//! Sorting through the kernel's `lib/sort.c`.
//!
//! `core`'s `sort_unstable` ends in `panic_on_ord_violation`, a no-return
//! function objtool does not know, so any module that uses it gets "falls
//! through to next function" warnings on kernels built with objtool (the
//! bench kernel's JUMP_LABEL). The kernel's heapsort needs no such path and
//! no allocation.

use core::{cmp::Ordering, ffi::c_void};
use kernel::ffi;

// `linux/sort.h` is not among the headers the `kernel` crate's bindings are
// generated from; both are EXPORT_SYMBOL in lib/sort.c.
unsafe extern "C" {
    fn sort(
        base: *mut c_void,
        num: usize,
        size: usize,
        cmp: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> ffi::c_int>,
        swap: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, ffi::c_int)>,
    );
    fn sort_nonatomic(
        base: *mut c_void,
        num: usize,
        size: usize,
        cmp: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> ffi::c_int>,
        swap: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, ffi::c_int)>,
    );
}

/// `T::cmp` for `lib/sort.c`.
///
/// # Safety
///
/// `a` and `b` point to live, aligned `T`s of the slice being sorted.
unsafe extern "C" fn cmp<T: Ord>(a: *const c_void, b: *const c_void) -> ffi::c_int {
    // SAFETY: both point into the slice `sort_*` was given (requirement).
    let (a, b) = unsafe { (&*a.cast::<T>(), &*b.cast::<T>()) };
    match a.cmp(b) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

/// The signature `sort` and `sort_nonatomic` share.
type SortFn = unsafe extern "C" fn(
    *mut c_void,
    usize,
    usize,
    Option<unsafe extern "C" fn(*const c_void, *const c_void) -> ffi::c_int>,
    Option<unsafe extern "C" fn(*mut c_void, *mut c_void, ffi::c_int)>,
);

/// Sorts `v` with `lib/sort.c`'s `sort_fn`.
///
/// # Safety
///
/// `sort_fn` is `sort` or `sort_nonatomic`, and the caller's context is one
/// it may run in (`sort_nonatomic` may sleep).
unsafe fn sort_with<T: Ord>(v: &mut [T], sort_fn: SortFn) {
    // SAFETY: `v` is a live, exclusively borrowed slice of `v.len()`
    // elements of `size_of::<T>()` bytes; `cmp::<T>` compares two of them.
    // The default swap moves bytes, which is a valid move of any Rust value,
    // and nothing is dropped or duplicated. The context is the caller's.
    unsafe {
        sort_fn(
            v.as_mut_ptr().cast(),
            v.len(),
            core::mem::size_of::<T>(),
            Some(cmp::<T>),
            None,
        )
    };
}

/// Sorts `v` in place without sleeping: fine in atomic context.
pub(crate) fn sort_atomic<T: Ord>(v: &mut [T]) {
    // SAFETY: `sort` never sleeps.
    unsafe { sort_with(v, sort) };
}

/// Sorts `v` in place, rescheduling in between for large slices: process
/// context only.
pub(crate) fn sort_sleepable<T: Ord>(v: &mut [T]) {
    // SAFETY: the callers of this function run in process context, where
    // `sort_nonatomic` may sleep.
    unsafe { sort_with(v, sort_nonatomic) };
}
