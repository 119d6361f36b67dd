// SPDX-License-Identifier: GPL-2.0

//! memlab: see, measure and re-implement how the kernel allocates memory.
//!
//! The module root owns everything: the misc device `/dev/memlab` (root-only,
//! ioctl ABI in `src/uapi.rs`) and the debugfs tree
//! `/sys/kernel/debug/memlab/`. Dropping the module drops them, in reverse
//! field order, so nothing outlives `rmmod`.

use kernel::{prelude::*, sync::Arc};

// The mirror core: plain `core` Rust, the same files tests/host compiles.
// `pub` so the parts the module does not call yet are not dead code.
#[path = "src/buddy.rs"]
pub mod buddy;
#[path = "src/render.rs"]
pub mod render;
#[path = "src/sizeclass.rs"]
pub mod sizeclass;
#[path = "src/slab.rs"]
pub mod slab;

#[path = "src/chardev.rs"]
mod chardev;
#[path = "src/debugfs.rs"]
mod debugfs;
#[path = "src/real/mod.rs"]
mod real;
#[path = "src/uapi.rs"]
pub mod uapi;

module! {
    type: Memlab,
    name: "rust_memlab",
    authors: ["memlab developers"],
    description: "memlab: exercise, mirror and report the kernel's memory allocators",
    license: "GPL",
    params: {
        max_pinned_mb: u32 {
            default: 64,
            description: "Most memory (MiB) one open /dev/memlab may keep allocated",
        },
        inject_warn: u32 {
            default: 0,
            description: "Test hook: 1 = WARN once at load, to prove the test rig catches it",
        },
    },
}

#[pin_data(PinnedDrop)]
struct Memlab {
    #[pin]
    _debugfs: debugfs::Tree,
    #[pin]
    _chardev: chardev::Registration,
}

impl kernel::InPlaceModule for Memlab {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        if *module_parameters::inject_warn.value() != 0 {
            // Deliberate: the test rig must turn a guest WARNING into a failed run.
            kernel::warn_on!(true);
        }
        pr_info!(
            "loaded (ABI {}, max_pinned_mb={})\n",
            uapi::MEMLAB_ABI_VERSION,
            *module_parameters::max_pinned_mb.value()
        );
        let max_pinned = (*module_parameters::max_pinned_mb.value() as usize) << 20;
        try_pin_init!(Self {
            _debugfs <- debugfs::Tree::new(),
            _chardev <- chardev::Registration::new(
                Arc::new(real::Real::new()?, GFP_KERNEL)?,
                max_pinned,
            ),
        }? Error)
    }
}

#[pinned_drop]
impl PinnedDrop for Memlab {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}
