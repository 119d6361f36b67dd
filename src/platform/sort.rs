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

/// Sorts `v` in place without sleeping: fine in atomic context.
pub(crate) fn sort_atomic<T: Ord>(v: &mut [T]) {
    // SAFETY: `v` is a live, exclusively borrowed slice of `v.len()`
    // elements of `size_of::<T>()` bytes; `cmp::<T>` compares two of them.
    // The default swap moves bytes, which is a valid move of any Rust value,
    // and nothing is dropped or duplicated.
    unsafe {
        sort(
            v.as_mut_ptr().cast(),
            v.len(),
            core::mem::size_of::<T>(),
            Some(cmp::<T>),
            None,
        )
    };
}

/// Sorts `v` in place, rescheduling in between for large slices: process
/// context only.
pub(crate) fn sort_sleepable<T: Ord>(v: &mut [T]) {
    // SAFETY: as in `sort_atomic`; the caller may sleep.
    unsafe {
        sort_nonatomic(
            v.as_mut_ptr().cast(),
            v.len(),
            core::mem::size_of::<T>(),
            Some(cmp::<T>),
            None,
        )
    };
}
