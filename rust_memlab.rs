// SPDX-License-Identifier: GPL-2.0

//! memlab: see, measure and re-implement how the kernel allocates memory.
//!
//! The module root owns everything: the misc device `/dev/memlab` (root-only,
//! ioctl ABI in `src/uapi.rs`) and the debugfs tree
//! `/sys/kernel/debug/memlab/`. Dropping the module drops them in field
//! order (debugfs first, then the device), and with them the last
//! references to the backends, so nothing outlives `rmmod`.
//!
//! # Layout
//!
//! ```text
//! chardev, debugfs, workload,     the user-facing side
//!   replay
//!   -> backend, request           one request type, one seam
//!     -> real/, mirror/           the two backends
//!       -> platform/              phys facts, clock, DMA devices, vmap
//! core (src/core): buddy, slab, sizeclass, render - no `kernel::`
//! ```
//!
//! # Locks, in the order they nest
//!
//! 1. `MemlabFile::kept` (mutex, per open file): the objects a WORKLOAD
//!    KEEP left; held across a KEEP run, which takes `handles` (to charge
//!    the file) and everything below under it. FREE_KEPT takes it only to
//!    take the objects out, and frees them after dropping it.
//!    `MemlabFile::sessions` (mutex, per open file, never with `kept`):
//!    the replay sessions; held across a SESSION op, which takes `handles`
//!    to charge the file, and everything below under it.
//! 2. `MemlabFile::handles` (mutex, per open file): held across an ALLOC's
//!    allocation and the copy of its handle to user space, and while a
//!    charge is taken or given back; everything below may be taken under
//!    it. A FREE takes the allocation out under it and frees it after
//!    dropping it, as does a refused ALLOC.
//! 3. `Real::run` (mutex): one exercise at a time; `Real::reports` (mutex)
//!    nests inside it, only to swap in or render a report.
//!    `real::kmem_cache::MERGEABLE` (mutex, module-wide): held only across
//!    the creation or destruction of a mergeable real cache; nothing of
//!    memlab's is taken under it, only the kernel's own slab locks.
//! 4. A DMA device's lock (`device->mutex`, through `BoundGuard`): held
//!    while a coherent buffer or a streaming mapping is made; the mirror
//!    takes its page block before it, never under it.
//! 5. `Real::atomic` (spinlock): the atomic-GFP allocations of the real
//!    backend run under it, to prove they do not sleep.
//! 6. `Mirror::named` (mutex: the replay sessions' caches, listed in the
//!    mirror's debugfs views; a view reads each cache's sheaves, barn and
//!    slabs under it). Then a mirror drain: `Mirror::drain_spare` (mutex), then
//!    `cpus_read_lock`, then an IPI to each CPU in turn
//!    (`smp_call_function_single`, waiting). Taken by reclaim, `mirror/check`,
//!    the debugfs files that sum CPUs, and unload; never under 7-9.
//! 7. A CPU's cache in the mirror (or in a mirror kmem_cache): no lock, but
//!    preemption off and the CPU's busy mark set (`local_trylock`-like,
//!    `src/platform/percpu.rs`); an IPI that finds it busy is resent.
//! 8. A kmalloc size class's or a kmem_cache's barn (spinlock), then a
//!    kmem_cache's slab cache (spinlock).
//! 9. `Mirror::state` (spinlock: the zones and the kmalloc caches).
//!
//! Nothing sleeps under 5, 7, 8 or 9. debugfs reads take 3 (`reports`),
//! 6 or 9.

use kernel::{prelude::*, sync::Arc};

// The mirror core: plain `core` Rust under src/core/ (no `kernel::` there),
// the same files tests/host compiles (as it does `request`), declared at the
// top level so that `crate::buddy::...` paths are the same in both crates.
// `pub` so the parts the module does not call yet are not dead code.
#[path = "src/core/buddy/mod.rs"]
pub mod buddy;
#[path = "src/core/pcp.rs"]
pub mod pcp;
#[path = "src/core/render.rs"]
pub mod render;
#[path = "src/core/sizeclass.rs"]
pub mod sizeclass;
#[path = "src/core/slab/mod.rs"]
pub mod slab;
#[path = "src/core/stats.rs"]
pub mod stats;

#[path = "src/backend.rs"]
mod backend;
#[path = "src/budget.rs"]
mod budget;
#[path = "src/chardev.rs"]
mod chardev;
#[path = "src/debugfs.rs"]
mod debugfs;
#[path = "src/mirror/mod.rs"]
mod mirror;
#[path = "src/platform/mod.rs"]
mod platform;
#[path = "src/real/mod.rs"]
mod real;
#[path = "src/replay.rs"]
mod replay;
#[path = "src/request/mod.rs"]
pub mod request;
#[path = "src/session.rs"]
mod session;
#[path = "src/uapi.rs"]
pub mod uapi;
#[path = "src/workload.rs"]
mod workload;

module! {
    type: Memlab,
    name: "rust_memlab",
    authors: ["memlab developers"],
    description: "memlab: exercise, mirror and report the kernel's memory allocators",
    license: "GPL",
    params: {
        max_pinned_mb: u32 {
            default: 64,
            description: "Most memory (MiB) one open /dev/memlab may keep allocated (1..=65536)",
        },
        max_pinned_total_mb: u32 {
            default: 256,
            description: "Most memory (MiB) all open /dev/memlab files and running exercises together may keep allocated (1..=65536)",
        },
        pool_mb: u32 {
            default: 16,
            description: "Pages (MiB) the mirror allocators take from the kernel at load (1..=2048)",
        },
        inject_warn: u32 {
            default: 0,
            description: "Test hook: 1 = WARN once at load, to prove the test rig catches it",
        },
    },
}

#[pin_data(PinnedDrop)]
struct Memlab {
    _debugfs: Pin<KBox<platform::debugfs::Tree>>,
    #[pin]
    _chardev: chardev::Registration,
}

/// Most `pool_mb` accepts: the mirror's pool is taken at load.
const POOL_MB_MAX: u32 = 2048;
/// Most `max_pinned_mb` and `max_pinned_total_mb` accept (64 GiB).
const PINNED_MB_MAX: u32 = 65536;

/// The module parameters, checked and converted.
struct Params {
    /// `max_pinned_mb` in bytes.
    max_pinned: usize,
    /// `max_pinned_total_mb` in bytes.
    max_total: usize,
    /// `pool_mb` in pages.
    pool_pages: u64,
}

/// A parameter in MiB: `value` if it is in `1..=max`, else EINVAL, with a
/// message naming the parameter and its bounds.
fn param_mb(name: &str, value: u32, max: u32) -> Result<u32> {
    if value == 0 || value > max {
        pr_err!("{} must be 1..={}, not {}\n", name, max, value);
        return Err(EINVAL);
    }
    Ok(value)
}

/// Every parameter, checked before anything is set up: one out of bounds
/// fails the insmod with EINVAL, and every one out of bounds is named.
fn params() -> Result<Params> {
    let max_pinned = param_mb(
        "max_pinned_mb",
        platform::compat::param_u32(&module_parameters::max_pinned_mb),
        PINNED_MB_MAX,
    );
    let max_total = param_mb(
        "max_pinned_total_mb",
        platform::compat::param_u32(&module_parameters::max_pinned_total_mb),
        PINNED_MB_MAX,
    );
    let pool = param_mb(
        "pool_mb",
        platform::compat::param_u32(&module_parameters::pool_mb),
        POOL_MB_MAX,
    );
    let (max_pinned, max_total, pool) = (max_pinned?, max_total?, pool?);
    Ok(Params {
        max_pinned: (max_pinned as usize) << 20,
        max_total: (max_total as usize) << 20,
        pool_pages: u64::from(pool) << (20 - kernel::page::PAGE_SHIFT),
    })
}

impl kernel::InPlaceModule for Memlab {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        if platform::compat::param_u32(&module_parameters::inject_warn) != 0 {
            // Deliberate: the test rig must turn a guest WARNING into a failed run.
            kernel::warn_on!(true);
        }
        pin_init::pin_init_scope(move || {
            let Params {
                max_pinned,
                max_total,
                pool_pages,
            } = params()?;
            pr_info!(
                "loaded (ABI {}, max_pinned_mb={}, max_pinned_total_mb={})\n",
                uapi::MEMLAB_ABI_VERSION,
                platform::compat::param_u32(&module_parameters::max_pinned_mb),
                platform::compat::param_u32(&module_parameters::max_pinned_total_mb)
            );
            platform::phys::check_nodes()?;
            // UML calibrates its TSC here (the clock of every timed window).
            platform::arch::init()?;
            // SAFETY: once, here, before any cache exists.
            unsafe { real::kmem_cache::init() };
            let dma = Arc::pin_init(platform::dma::DmaDevices::new(module), GFP_KERNEL)?;
            let real = Arc::pin_init(real::Real::new(dma.clone()), GFP_KERNEL)?;
            let mirror = mirror::Mirror::new(pool_pages, dma)?;
            let budget = budget::Budget::new(max_total)?;
            let tree = debugfs::create(
                real.clone(),
                mirror.clone(),
                budget.clone(),
                max_pinned,
                module,
            )?;
            Ok(try_pin_init!(Self {
                _debugfs: tree,
                _chardev <- chardev::Registration::new(real, mirror, max_pinned, budget, module),
            }? Error))
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Memlab {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}
