// SPDX-License-Identifier: GPL-2.0

//! A misc device whose `file_operations` name this module as owner.
//!
//! `kernel::miscdevice` (7.2) builds its `file_operations` without `.owner`
//! (Rust-for-Linux issue #1182), so VFS takes no module reference when the
//! device is opened: `rmmod` succeeds while a file is open, and the later
//! `close` calls into unloaded code. Every C driver sets `.owner =
//! THIS_MODULE`. [`MiscRegistration`] registers the very same device, with
//! the in-tree trampolines for `open`, `ioctl` and `release`, but with a
//! copy of their `file_operations` that carries the owner: `misc_open` then
//! pins the module (`fops_get`) for as long as the file is open, and
//! `rmmod` fails with EBUSY until the last close.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    types::Opaque,
};

/// A registered misc device with an owned copy of its `file_operations`;
/// deregistered on drop.
///
/// # Invariants
///
/// - `misc` is registered with `misc_register`, with `fops` pointing to
///   `self.fops`, until `Drop` deregisters it, once.
/// - `fops` is the in-tree vtable of `T` with `owner` set to this module,
///   so every open file holds a module reference: this value (dropped at
///   module exit) outlives every open file, and so does `fops`.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<T> {
    #[pin]
    fops: Opaque<bindings::file_operations>,
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: `misc_deregister` may be called from any thread; the
// registration is not otherwise touched after init.
unsafe impl<T> Send for MiscRegistration<T> {}
// SAFETY: `&MiscRegistration` only hands out a shared view of the device.
unsafe impl<T> Sync for MiscRegistration<T> {}

impl<T: MiscDevice> MiscRegistration<T> {
    /// Registers the device named in `opts`, owned by `module`.
    pub(crate) fn register(
        opts: MiscDeviceOptions,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            fops <- Opaque::ffi_init(move |slot: *mut bindings::file_operations| {
                let raw = opts.into_raw::<T>();
                // SAFETY: `raw.fops` is the in-tree `&'static` vtable of `T`;
                // `slot` is valid for a write of a `file_operations`.
                unsafe {
                    slot.write(*raw.fops);
                    (*slot).owner = module.as_ptr();
                }
            }),
            misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw = opts.into_raw::<T>();
                // SAFETY: `this` is the value being initialised; `fops` was
                // initialised above and is pinned with it.
                raw.fops = unsafe { Opaque::cast_into(&raw const (*this.as_ptr()).fops) };
                // SAFETY: `slot` is valid for a write and pinned; it is
                // deregistered in `drop` before its memory goes.
                unsafe { slot.write(raw) };
                // SAFETY: `slot` holds a fully set up `miscdevice`.
                // INVARIANT: registered with our `fops` on success.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
            _t: PhantomData,
        })
    }

    /// The `MiscRegistration` behind the registration `MiscDevice::open`
    /// is handed (`misc_open` passes the registered `miscdevice`).
    ///
    /// # Safety
    ///
    /// `misc` was handed to `T::open` for a device registered through a
    /// `MiscRegistration<T>` (not `MiscDeviceRegistration::register`).
    pub(crate) unsafe fn from_open(misc: &MiscDeviceRegistration<T>) -> &Self {
        // `MiscDeviceRegistration<T>` is `repr(transparent)` over the
        // `Opaque<miscdevice>` that `misc_open` found: our `misc` field.
        let ptr = core::ptr::from_ref(misc).cast::<Opaque<bindings::miscdevice>>();
        // SAFETY: by the requirement `ptr` is the `misc` field of a live
        // `MiscRegistration<T>`, which outlives the open file (invariant).
        unsafe { &*kernel::container_of!(ptr, Self, misc) }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered (type invariant), deregistered only here.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}
