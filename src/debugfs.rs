// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/memlab/`: the read-only views of memlab's state.
//!
//! Files are removed when their `File` handle drops, the directory when the
//! last handle to it goes: both happen in the module's drop.

use crate::uapi;
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
};

/// The debugfs tree; every file disappears when this is dropped.
#[pin_data]
pub(crate) struct Tree {
    #[pin]
    _version: File<()>,
    _root: Dir,
}

impl Tree {
    /// Creates `/sys/kernel/debug/memlab/` and its files.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        let root = Dir::new(c"memlab");
        try_pin_init!(Self {
            _version <- root.read_callback_file(c"version", (), &|(): &(), f| {
                writeln!(f, "memlab ABI {}", uapi::MEMLAB_ABI_VERSION)
            }),
            _root: root,
        }? Error)
    }
}
