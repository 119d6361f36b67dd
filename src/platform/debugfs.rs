// SPDX-License-Identifier: GPL-2.0

//! Read-only debugfs files whose `file_operations` name this module as
//! owner.
//!
//! `kernel::debugfs` (7.2) builds its `file_operations` without `.owner`, as
//! `kernel::miscdevice` does (see `miscdev.rs`), so an open debugfs file
//! does not pin the module: `rmmod` succeeds while the file is open, and the
//! later `close` reads the freed `file_operations` (an oops under KASAN).
//! [`Tree`] makes the same seq_file-backed files (`single_open`, `seq_read`,
//! `single_release`) with one `file_operations` that carries the owner:
//! debugfs's proxy takes a module reference (`fops_get`) for every open, so
//! `rmmod` fails with EBUSY until the last close.
//!
//! The root directory is removed, recursively, before the views it shows
//! are freed (field order of [`Tree`]); `debugfs_remove` waits for reads in
//! progress, and a file still open afterwards fails its reads without
//! touching the views.

use core::{ffi::c_void, fmt};
use kernel::{bindings, error::from_err_ptr, prelude::*, seq_file::SeqFile, types::Opaque};

/// What one file shows.
pub(crate) trait Show: Send + Sync {
    /// Writes the file's contents.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// A file's contents: `render(&data, f)`.
pub(crate) struct View<T> {
    data: T,
    render: fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
}

impl<T: Send + Sync> Show for View<T> {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.render)(&self.data, f)
    }
}

/// `Display` of a [`Show`], for `seq_printf("%pA")`.
struct Shown<'a>(&'a dyn Show);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(f)
    }
}

/// `open` of every file: a `single_open` seq_file over the file's view.
///
/// # Safety
///
/// `inode` is a debugfs inode created by [`Tree::file`], whose private data
/// is a `*const KBox<dyn Show>` that outlives it; `file` is being opened.
unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: `inode` is valid (requirement).
    let data = unsafe { (*inode).i_private };
    // SAFETY: `show` is called with the seq_file's private data set to
    // `data`, which meets its requirement.
    unsafe { bindings::single_open(file, Some(show), data) }
}

/// Renders the view behind `seq->private` into the seq_file's buffer.
///
/// # Safety
///
/// `seq` is a live seq_file set up by [`open`], whose private data points to
/// a live `KBox<dyn Show>`.
unsafe extern "C" fn show(seq: *mut bindings::seq_file, _: *mut c_void) -> i32 {
    // SAFETY: by the requirement, `private` is a `*const KBox<dyn Show>`
    // whose view lives until `debugfs_remove` has waited for this read.
    let view = unsafe { &*(*seq).private.cast::<KBox<dyn Show>>() };
    // SAFETY: `seq` is live and used by this thread only during the call.
    let seq = unsafe { SeqFile::from_raw(seq) };
    seq.call_printf(format_args!("{}", Shown(&**view)));
    0
}

/// A directory of files in debugfs; removed, with everything below it, on
/// drop.
///
/// # Invariants
///
/// `root` is a debugfs directory created by this value and removed only in
/// `Drop`. Every file below it was created with `fops`, and with private
/// data pointing into `views`, which are freed only after `root` is
/// removed. `fops` names this module as owner, so it outlives every open
/// file.
#[pin_data(PinnedDrop)]
pub(crate) struct Tree {
    root: *mut bindings::dentry,
    views: KVec<KBox<KBox<dyn Show>>>,
    #[pin]
    fops: Opaque<bindings::file_operations>,
}

// SAFETY: debugfs may be driven from any thread; the views are `Send + Sync`.
unsafe impl Send for Tree {}
// SAFETY: `&Tree` hands out nothing.
unsafe impl Sync for Tree {}

/// A directory of a [`Tree`], to create files in.
#[derive(Clone, Copy)]
pub(crate) struct Dir(*mut bindings::dentry);

impl Tree {
    /// Creates `/sys/kernel/debug/<name>/`, owned by `module`.
    ///
    /// The directory is made when the initializer runs, and last, after the
    /// fields that cannot fail: an initializer that is dropped unrun (its
    /// box could not be allocated) or that fails leaves nothing behind.
    pub(crate) fn new(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Tree {
            views: KVec::new(),
            fops <- Opaque::ffi_init(move |slot: *mut bindings::file_operations| {
                // SAFETY: `slot` is valid for a write.
                unsafe {
                    slot.write(bindings::file_operations {
                        owner: module.as_ptr(),
                        open: Some(open),
                        read: Some(bindings::seq_read),
                        llseek: Some(bindings::seq_lseek),
                        release: Some(bindings::single_release),
                        ..pin_init::zeroed()
                    })
                };
            }),
            root: {
                // SAFETY: `name` is a valid C string; a NULL parent is the
                // debugfs root.
                let root = unsafe {
                    bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut())
                };
                from_err_ptr(root)?
            },
        }? Error)
    }

    /// The root directory.
    pub(crate) fn root(&self) -> Dir {
        Dir(self.root)
    }

    /// Creates the directory `name` under `parent`.
    pub(crate) fn dir(&self, parent: Dir, name: &CStr) -> Result<Dir> {
        // SAFETY: `parent` is a live directory of this tree (it is removed
        // only with the tree); `name` is a valid C string.
        let d = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), parent.0) };
        Ok(Dir(from_err_ptr(d)?))
    }

    /// Creates the read-only (0400) file `name` under `parent`, showing
    /// `render(&data, f)` on every read.
    pub(crate) fn file<T: Send + Sync + 'static>(
        self: Pin<&mut Self>,
        parent: Dir,
        name: &CStr,
        data: T,
        render: fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> Result {
        let view: KBox<dyn Show> = KBox::new(View { data, render }, GFP_KERNEL)?;
        let view = KBox::new(view, GFP_KERNEL)?;
        let private = core::ptr::from_ref::<KBox<dyn Show>>(&view)
            .cast_mut()
            .cast();
        // SAFETY: only `views` is touched, never moved out of the pin.
        let this = unsafe { self.get_unchecked_mut() };
        this.views.push(view, GFP_KERNEL)?;
        // SAFETY: `parent` is a live directory of this tree; `private` points
        // to a boxed view kept in `views` until after the tree is removed;
        // `fops` is initialised and outlives every open file (invariant).
        let f = unsafe {
            bindings::debugfs_create_file_full(
                name.as_char_ptr(),
                0o400,
                parent.0,
                private,
                core::ptr::null(),
                this.fops.get(),
            )
        };
        from_err_ptr(f)?;
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Tree {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: created by `new`, removed only here (type invariant); this
        // waits for reads in progress, so the views can go next.
        unsafe { bindings::debugfs_remove(self.root) };
    }
}
