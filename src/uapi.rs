// SPDX-License-Identifier: GPL-2.0

//! The `/dev/memlab` ioctl ABI, shared word for word by the kernel module and
//! by `memlabctl` (which includes this file with `#[path]`).
//!
//! Plain `core` only: no `kernel::` and no `std` imports, so both sides
//! compile the same definitions. Every struct is `#[repr(C)]` with explicit,
//! padding-free field sizes; `include/uapi/memlab.h` is the C twin.
//!
//! Versioning: [`MEMLAB_ABI_VERSION`] changes whenever a struct or number here
//! changes meaning. User space checks it with [`MEMLAB_IOC_VERSION`] first.

/// ABI version reported by [`MEMLAB_IOC_VERSION`].
pub const MEMLAB_ABI_VERSION: u32 = 4;

/// The ioctl "type" byte of every memlab command.
pub const MEMLAB_IOC_MAGIC: u32 = 0xB7;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// Encodes an ioctl number like the kernel's `_IOC()` (asm-generic layout).
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | (MEMLAB_IOC_MAGIC << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// Reply of [`MEMLAB_IOC_VERSION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabVersion {
    /// [`MEMLAB_ABI_VERSION`] of the running module.
    pub abi_version: u32,
    /// `size_of::<MemlabVersion>()` as the module sees it.
    pub struct_size: u32,
    /// Largest page order the kernel's buddy allocator serves (MAX_PAGE_ORDER).
    pub max_page_order: u32,
    /// Page size in bytes.
    pub page_size: u32,
}

/// `_IOR(0xB7, 0x00, struct memlab_version)`: report the ABI version.
pub const MEMLAB_IOC_VERSION: u32 = ioc(IOC_READ, 0x00, core::mem::size_of::<MemlabVersion>());

const _: () = assert!(core::mem::size_of::<MemlabVersion>() == 16);

/// Allocator family: `kmalloc`/`kfree` (`size` bytes).
pub const MEMLAB_FAMILY_KMALLOC: u32 = 0;
/// Allocator family: `vmalloc`/`vfree` (`size` bytes).
pub const MEMLAB_FAMILY_VMALLOC: u32 = 1;
/// Allocator family: `alloc_pages`/`__free_pages` (`order`).
pub const MEMLAB_FAMILY_PAGES: u32 = 2;
/// Allocator family: one object from a `kmem_cache` of `size` bytes aligned
/// to `align` (the cache is created for the handle and destroyed with it).
pub const MEMLAB_FAMILY_KMEM_CACHE: u32 = 3;
/// Allocator family: `dma_alloc_coherent`/`dma_free_coherent` (`size` bytes)
/// on memlab's own device.
pub const MEMLAB_FAMILY_DMA: u32 = 4;
/// Number of allocator families.
pub const MEMLAB_NR_FAMILIES: u32 = 5;

/// GFP selector: GFP_KERNEL.
pub const MEMLAB_GFP_KERNEL: u32 = 0;
/// GFP selector: GFP_ATOMIC.
pub const MEMLAB_GFP_ATOMIC: u32 = 1;
/// GFP selector: GFP_NOWAIT.
pub const MEMLAB_GFP_NOWAIT: u32 = 2;
/// GFP selector: GFP_NOIO.
pub const MEMLAB_GFP_NOIO: u32 = 3;
/// GFP selector: GFP_NOFS.
pub const MEMLAB_GFP_NOFS: u32 = 4;
/// GFP selector: GFP_USER.
pub const MEMLAB_GFP_USER: u32 = 5;
/// GFP selector: GFP_HIGHUSER.
pub const MEMLAB_GFP_HIGHUSER: u32 = 6;
/// GFP selector: GFP_DMA (GFP_KERNEL | __GFP_DMA).
pub const MEMLAB_GFP_DMA: u32 = 7;
/// GFP selector: GFP_DMA32 (GFP_KERNEL | __GFP_DMA32).
pub const MEMLAB_GFP_DMA32: u32 = 8;
/// Number of GFP selectors; the low byte of a `gfp` field must be below it.
pub const MEMLAB_NR_GFP: u32 = 9;
/// Modifier bit: add __GFP_ZERO (the module verifies the memory is zero).
pub const MEMLAB_GFP_ZERO: u32 = 1 << 8;

/// Backend: the kernel's real allocators.
pub const MEMLAB_BACKEND_REAL: u32 = 0;
/// Backend: memlab's mirror allocators on the module's pool.
pub const MEMLAB_BACKEND_MIRROR: u32 = 1;

/// kmem_cache creation flag: `SLAB_CACHE_DMA`, the cache's slabs come from
/// ZONE_DMA. As in SLUB, the zone of a cache's objects comes from its
/// flags, never from the GFP of one allocation.
pub const MEMLAB_CACHE_DMA: u32 = 1 << 0;
/// kmem_cache creation flag: `SLAB_HWCACHE_ALIGN`, objects aligned to the
/// cache line (halved while an object fits in half of it).
pub const MEMLAB_CACHE_HWCACHE_ALIGN: u32 = 1 << 1;
/// Every kmem_cache creation flag.
pub const MEMLAB_CACHE_FLAGS: u32 = MEMLAB_CACHE_DMA | MEMLAB_CACHE_HWCACHE_ALIGN;

/// Zone value: ZONE_DMA.
pub const MEMLAB_ZONE_DMA: u32 = 0;
/// Zone value: ZONE_DMA32.
pub const MEMLAB_ZONE_DMA32: u32 = 1;
/// Zone value: ZONE_NORMAL.
pub const MEMLAB_ZONE_NORMAL: u32 = 2;
/// Zone value: ZONE_MOVABLE.
pub const MEMLAB_ZONE_MOVABLE: u32 = 3;
/// Zone value: the pages span more than one zone (vmalloc).
pub const MEMLAB_ZONE_MIXED: u32 = 0xfe;

/// Argument of [`MEMLAB_IOC_ALLOC`]: what to allocate; `handle` comes back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabAlloc {
    /// In: `MEMLAB_FAMILY_*`.
    pub family: u32,
    /// In: `MEMLAB_GFP_*`, optionally `| MEMLAB_GFP_ZERO`.
    pub gfp: u32,
    /// In: bytes (all families but pages).
    pub size: u64,
    /// In: page order (pages only; 0..=MAX_PAGE_ORDER).
    pub order: u32,
    /// In: alignment in bytes, a power of two or 0 (kmem_cache only).
    pub align: u32,
    /// Out: the handle naming this allocation on this open file (>= 1).
    pub handle: u32,
    /// In: `MEMLAB_BACKEND_REAL` (the kernel's allocators) or
    /// `MEMLAB_BACKEND_MIRROR` (memlab's own, on its pool).
    pub backend: u32,
    /// In: `MEMLAB_CACHE_*` creation flags (kmem_cache only, else 0).
    pub cache_flags: u32,
    /// In: 0 (room for the ABI to grow).
    pub reserved: u32,
}

const _: () = assert!(core::mem::size_of::<MemlabAlloc>() == 40);

/// Reply of [`MEMLAB_IOC_INSPECT`]: what the kernel really handed out.
/// No kernel virtual address is ever reported.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabBlockInfo {
    /// In: the handle to inspect.
    pub handle: u32,
    /// `MEMLAB_FAMILY_*`.
    pub family: u32,
    /// The `gfp` it was allocated with.
    pub gfp: u32,
    /// `MEMLAB_ZONE_*` of its pages.
    pub zone: u32,
    /// Bytes requested.
    pub size: u64,
    /// Bytes usable (ksize for kmalloc, whole pages otherwise).
    pub usable: u64,
    /// Page frame number of the first page.
    pub first_pfn: u64,
    /// Pages spanned.
    pub nr_pages: u64,
    /// Physically contiguous runs among those pages (1 = contiguous).
    pub phys_runs: u64,
    /// Device (bus) address for DMA handles, else 0.
    pub dma_addr: u64,
    /// Nanoseconds the allocation call took.
    pub alloc_ns: u64,
    /// log2 of the largest power of two dividing the physical address.
    pub align_log2: u32,
    /// 1 if the memory was checked and found zero (with MEMLAB_GFP_ZERO).
    pub zeroed: u32,
}

const _: () = assert!(core::mem::size_of::<MemlabBlockInfo>() == 80);

/// Exercise: kmalloc size sweep, ksize, KMALLOC_MAX_SIZE limit.
pub const MEMLAB_EX_KMALLOC: u32 = 0;
/// Exercise: vmalloc sizes, PFNs, physically discontiguous runs.
pub const MEMLAB_EX_VMALLOC: u32 = 1;
/// Exercise: alloc_pages orders 0..=MAX_PAGE_ORDER and the first failing order.
pub const MEMLAB_EX_PAGES: u32 = 2;
/// Exercise: kmem_cache with constructor and alignment.
pub const MEMLAB_EX_KMEM_CACHE: u32 = 3;
/// Exercise: dma_alloc_coherent and dma_map_single.
pub const MEMLAB_EX_DMA: u32 = 4;
/// Exercise: the GFP flag matrix, atomic ones under a spinlock.
pub const MEMLAB_EX_GFP: u32 = 5;
/// Number of exercises.
pub const MEMLAB_NR_EXERCISES: u32 = 6;

/// Argument of [`MEMLAB_IOC_EXERCISE`]: which exercise; its summary back.
/// The full report goes to debugfs `real/report` (and `real/report.json`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabExercise {
    /// In: `MEMLAB_EX_*`.
    pub id: u32,
    /// In: repetitions per case for latency figures (0 = default, max 1000).
    pub reps: u32,
    /// Out: cases run.
    pub cases: u32,
    /// Out: cases whose outcome matched the expectation.
    pub passed: u32,
    /// Out: median latency over all cases' main operation, ns.
    pub median_ns: u64,
    /// Out: 99th percentile latency, ns.
    pub p99_ns: u64,
}

const _: () = assert!(core::mem::size_of::<MemlabExercise>() == 32);

/// Workload pattern: `count` times alloc then free at once (the same slot
/// reused, LIFO-hot).
pub const MEMLAB_PATTERN_PAIRS: u32 = 0;
/// Workload pattern: `count` allocs, then `count` frees in the same order.
pub const MEMLAB_PATTERN_BATCH: u32 = 1;
/// Workload pattern: `count` seeded random steps over up to `count / 2` live
/// objects, each an alloc (random size up to `size`, or order up to `order`)
/// or a free of a random live one; what is left live is freed untimed.
pub const MEMLAB_PATTERN_RANDOM: u32 = 2;
/// Number of workload patterns.
pub const MEMLAB_NR_PATTERNS: u32 = 3;
/// Most steps one workload may take.
pub const MEMLAB_WORKLOAD_MAX_COUNT: u32 = 100_000;
/// Most operations per latency sample (`ops_per_sample`).
pub const MEMLAB_WORKLOAD_MAX_K: u32 = 256;

/// `flags` bit: cross-CPU free, first half. BATCH on kmalloc or pages
/// only: run and time the allocations, then keep the objects in the open
/// file (one such set per file; EBUSY if it has one), charged to it until
/// freed by [`MEMLAB_WORKLOAD_FREE_KEPT`] or the file is closed.
pub const MEMLAB_WORKLOAD_KEEP: u32 = 1 << 0;
/// `flags` bit: cross-CPU free, second half, alone: free the kept objects,
/// timed, on the caller's CPU. backend, family, pattern, count, size and
/// order must be those of the KEEP run, warmup 0; EINVAL otherwise or if
/// nothing is kept.
pub const MEMLAB_WORKLOAD_FREE_KEPT: u32 = 1 << 1;
/// `flags` bit: throughput, alone, with no samples buffer: the timed pass
/// reads the clock only before its first step and after its last, never
/// around an operation. Out: `ops`, `failed`, `elapsed_ticks`, `clock_khz`
/// (no samples, medians, floor or zone counts). For aggregate ops/s on
/// several CPUs, where two clock reads per operation would be timed too.
pub const MEMLAB_WORKLOAD_THROUGHPUT: u32 = 1 << 2;

/// `kconfig` bit: CONFIG_MEMCG (kmem accounting compiled in).
pub const MEMLAB_KCONFIG_MEMCG: u32 = 1 << 0;
/// `kconfig` bit: CONFIG_KFENCE.
pub const MEMLAB_KCONFIG_KFENCE: u32 = 1 << 1;
/// `kconfig` bit: CONFIG_INIT_ON_ALLOC_DEFAULT_ON.
pub const MEMLAB_KCONFIG_INIT_ON_ALLOC: u32 = 1 << 2;
/// `kconfig` bit: CONFIG_INIT_ON_FREE_DEFAULT_ON.
pub const MEMLAB_KCONFIG_INIT_ON_FREE: u32 = 1 << 3;
/// `kconfig` bit: CONFIG_SLAB_FREELIST_HARDENED.
pub const MEMLAB_KCONFIG_FREELIST_HARDENED: u32 = 1 << 4;
/// `kconfig` bit: CONFIG_SLAB_FREELIST_RANDOM.
pub const MEMLAB_KCONFIG_FREELIST_RANDOM: u32 = 1 << 5;
/// `kconfig` bit: CONFIG_JUMP_LABEL (static keys patched, not loaded).
pub const MEMLAB_KCONFIG_JUMP_LABEL: u32 = 1 << 6;
/// `kconfig` bit: CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE (-O2; else -Os).
pub const MEMLAB_KCONFIG_O2: u32 = 1 << 7;
/// `kconfig` bit: CONFIG_KASAN.
pub const MEMLAB_KCONFIG_KASAN: u32 = 1 << 8;
/// `kconfig` bit: CONFIG_PROVE_LOCKING (lockdep).
pub const MEMLAB_KCONFIG_LOCKDEP: u32 = 1 << 9;
/// `kconfig` bit: CONFIG_SLUB_DEBUG_ON (slab debugging on by default).
pub const MEMLAB_KCONFIG_SLUB_DEBUG_ON: u32 = 1 << 10;
/// `kconfig` bit: CONFIG_RANDOM_KMALLOC_CACHES.
pub const MEMLAB_KCONFIG_RANDOM_KMALLOC: u32 = 1 << 11;
/// `kconfig` bit: CONFIG_PREEMPT (full preemption).
pub const MEMLAB_KCONFIG_PREEMPT: u32 = 1 << 12;
/// `kconfig` bit: CONFIG_DEBUG_KMEMLEAK.
pub const MEMLAB_KCONFIG_KMEMLEAK: u32 = 1 << 13;

/// Argument of [`MEMLAB_IOC_WORKLOAD`]: one workload on one backend, timed
/// in the kernel; the same code runs it on either backend.
///
/// Each operation is timed alone: `lfence; rdtsc`, the allocator call,
/// `lfence; rdtsc` (ktime_get ns when the TSC is not calibrated); the
/// random sequence and the bookkeeping are outside that window. A sample is
/// the sum of `ops_per_sample` (K) such windows of one kind, allocs and
/// frees apart; a trailing partial sample is dropped. The floor is the same
/// loop run on an allocator that does nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabWorkload {
    /// In: `MEMLAB_BACKEND_*`.
    pub backend: u32,
    /// In: `MEMLAB_FAMILY_KMALLOC`, `_PAGES`, `_KMEM_CACHE` or `_VMALLOC`.
    pub family: u32,
    /// In: `MEMLAB_PATTERN_*`.
    pub pattern: u32,
    /// In: steps, 1..=MEMLAB_WORKLOAD_MAX_COUNT.
    pub count: u32,
    /// In: object size (the largest one for RANDOM kmalloc); not for pages.
    pub size: u64,
    /// In: page order (the largest one for RANDOM); pages only.
    pub order: u32,
    /// In: seed of the RANDOM pattern.
    pub seed: u32,
    /// In: operations per sample (K), 1..=MEMLAB_WORKLOAD_MAX_K.
    pub ops_per_sample: u32,
    /// In: steps of the same sequence run untimed first, 0..=count.
    pub warmup: u32,
    /// In: user address of `samples_cap` `__u64`s for the raw samples (alloc
    /// samples first, then free samples, in clock ticks, floor not
    /// subtracted), or 0.
    pub samples_ptr: u64,
    /// In: room at `samples_ptr`, 0 without it; at least
    /// 2 * ceil(count / K) with it.
    pub samples_cap: u32,
    /// In: 0, [`MEMLAB_WORKLOAD_KEEP`], [`MEMLAB_WORKLOAD_FREE_KEPT`] or
    /// [`MEMLAB_WORKLOAD_THROUGHPUT`].
    pub flags: u32,
    /// Out: operations timed (allocs and frees).
    pub ops: u64,
    /// Out: allocations that failed (ENOMEM).
    pub failed: u64,
    /// Out: alloc samples written at `samples_ptr` (or that would be).
    pub alloc_samples: u32,
    /// Out: free samples, after the alloc samples.
    pub free_samples: u32,
    /// Out: clock ticks per millisecond (the TSC's kHz; 1000000 for ns).
    pub clock_khz: u64,
    /// Out: the floor, median ticks of an empty sample (K empty windows).
    pub floor_ticks: u64,
    /// Out: ticks from the first to the last clock read of the timed pass.
    pub elapsed_ticks: u64,
    /// Out: median alloc latency per operation, floor subtracted, ps.
    pub alloc_median_ps: u64,
    /// Out: 99th percentile alloc latency per operation, ps.
    pub alloc_p99_ps: u64,
    /// Out: median free latency per operation, floor subtracted, ps.
    pub free_median_ps: u64,
    /// Out: 99th percentile free latency per operation, ps.
    pub free_p99_ps: u64,
    /// Out: timed allocations by the zone they landed in: DMA, DMA32,
    /// Normal, other.
    pub zone_allocs: [u32; 4],
    /// Out: most objects live at once.
    pub peak_live: u32,
    /// Out: the CPU the run was pinned to (migration disabled).
    pub cpu: u32,
    /// Out: `MEMLAB_KCONFIG_*` bits of the running kernel.
    pub kconfig: u32,
    /// Out: bytes of page metadata the backend keeps per page (the real
    /// `struct page`; the mirror's buddy `PageMeta`).
    pub page_meta_bytes: u32,
}

const _: () = assert!(core::mem::size_of::<MemlabWorkload>() == 168);

/// `_IOWR(0xB7, 0x01, struct memlab_alloc)`: allocate, return a handle.
pub const MEMLAB_IOC_ALLOC: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x01,
    core::mem::size_of::<MemlabAlloc>(),
);
/// `_IOW(0xB7, 0x02, __u32)`: free the handle.
pub const MEMLAB_IOC_FREE: u32 = ioc(IOC_WRITE, 0x02, core::mem::size_of::<u32>());
/// `_IOWR(0xB7, 0x03, struct memlab_block_info)`: describe the handle.
pub const MEMLAB_IOC_INSPECT: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x03,
    core::mem::size_of::<MemlabBlockInfo>(),
);
/// `_IOWR(0xB7, 0x04, struct memlab_exercise)`: run an exercise.
pub const MEMLAB_IOC_EXERCISE: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x04,
    core::mem::size_of::<MemlabExercise>(),
);
/// `_IOWR(0xB7, 0x05, struct memlab_workload)`: run a timed workload.
pub const MEMLAB_IOC_WORKLOAD: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x05,
    core::mem::size_of::<MemlabWorkload>(),
);

/// Replay op: allocate and file under `id`.
pub const MEMLAB_REPLAY_ALLOC: u32 = 0;
/// Replay op: free what `id` holds.
pub const MEMLAB_REPLAY_FREE: u32 = 1;
/// Most steps one replay may take (E2BIG above).
pub const MEMLAB_REPLAY_MAX_STEPS: u32 = 1 << 20;
/// Ids are `0..MEMLAB_REPLAY_MAX_IDS` (EINVAL otherwise): the kernel keeps a
/// table of that many slots at most, sized by the largest id used.
pub const MEMLAB_REPLAY_MAX_IDS: u32 = 1 << 16;
/// Most distinct kmem_cache object sizes in one replay (E2BIG above): one
/// cache is created per size for the run, and charged. A recorded
/// fork+exec touches a few dozen of the kernel's caches.
pub const MEMLAB_REPLAY_MAX_CACHES: u32 = 64;
/// Free-block orders in a fragmentation sample (0..=MAX_PAGE_ORDER).
pub const MEMLAB_NR_ORDERS: usize = 11;
/// Fixed-point scale of the unusable indexes of [`MemlabReplay`] and
/// [`MemlabFragSample`]: parts per million (1_000_000 = all free memory is
/// unusable for the order), mm/vmstat.c's `unusable_free_index()` with
/// 10^6 in place of its 1000.
pub const MEMLAB_UNUSABLE_SCALE: u32 = 1_000_000;

/// One step of a replay, in the user buffer [`MemlabReplay::steps`] points
/// at: the binary twin of a text trace line `a ID FAMILY ARG [gfp=G]` or
/// `f ID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabReplayStep {
    /// `MEMLAB_REPLAY_ALLOC` or `MEMLAB_REPLAY_FREE`.
    pub op: u32,
    /// Alloc: `MEMLAB_FAMILY_KMALLOC`, `_PAGES` or `_KMEM_CACHE` (one cache
    /// per distinct size); free: 0.
    pub family: u32,
    /// Alloc: a `MEMLAB_GFP_*` selector (no modifier bits); free: 0.
    pub gfp: u32,
    /// The object's name, `0..MEMLAB_REPLAY_MAX_IDS`: an alloc needs it
    /// free, a free needs it live.
    pub id: u32,
    /// Alloc: bytes (kmalloc, kmem_cache), or the order (pages); free: 0.
    pub arg: u64,
}

const _: () = assert!(core::mem::size_of::<MemlabReplayStep>() == 24);

/// One fragmentation sample of a replay, taken before the first step and
/// after every `sample_every`-th step, of the zone [`MemlabReplay::zone`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabFragSample {
    /// Steps done when it was taken.
    pub step: u64,
    /// Unusable free index at order 3, in [`MEMLAB_UNUSABLE_SCALE`] units.
    pub unusable_3: u32,
    /// Unusable free index at order 9, same units.
    pub unusable_9: u32,
    /// Free blocks per order 0..=10 (the zone's buddyinfo line).
    pub free_blocks: [u64; MEMLAB_NR_ORDERS],
    /// [`MEMLAB_PROBE_ORDER3`] and [`MEMLAB_PROBE_ORDER9`]: the probes
    /// that failed, taken after the counts.
    pub probe_failed: u32,
    /// Zero.
    pub reserved: u32,
}

const _: () = assert!(core::mem::size_of::<MemlabFragSample>() == 112);

/// [`MemlabFragSample::probe_failed`] bit: an order-3 block of the sampled
/// zone could not be had. A probe allocates one block of its order on the
/// replay's backend with GFP_NOWAIT (no direct reclaim or compaction) and
/// frees it at once; it fails if the allocation fails or the block comes
/// from another zone (a fallback).
pub const MEMLAB_PROBE_ORDER3: u32 = 1 << 0;
/// [`MemlabFragSample::probe_failed`] bit: the same at order 9 (a 2 MiB
/// block, the size of a transparent huge page).
pub const MEMLAB_PROBE_ORDER9: u32 = 1 << 1;

/// Argument of [`MEMLAB_IOC_REPLAY`]: a batch of steps replayed in the
/// kernel on one backend, timing only the allocator calls. Everything it
/// allocated is freed before it returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabReplay {
    /// In: user address of the `struct memlab_replay_step` array.
    pub steps: u64,
    /// In: its length in bytes, a non-zero multiple of the step size.
    pub steps_len: u64,
    /// In: user address of a `struct memlab_frag_sample` array, or 0.
    pub samples: u64,
    /// In: its length in bytes; room for `steps / sample_every + 1` samples.
    pub samples_len: u64,
    /// In: `MEMLAB_BACKEND_*`.
    pub backend: u32,
    /// In: sample every this many steps (0: no samples).
    pub sample_every: u32,
    /// In: `MEMLAB_ZONE_*` the unusable indexes and samples describe.
    pub zone: u32,
    /// Out: samples written.
    pub nr_samples: u32,
    /// Out: steps replayed.
    pub steps_done: u64,
    /// Out: allocations that succeeded.
    pub allocs: u64,
    /// Out: frees (of objects whose allocation succeeded).
    pub frees: u64,
    /// Out: allocations that failed (ENOMEM); a later free of the id is
    /// skipped.
    pub failed: u64,
    /// Out: median latency of an allocation call, ns.
    pub alloc_median_ns: u64,
    /// Out: 99th percentile of the same.
    pub alloc_p99_ns: u64,
    /// Out: median latency of a free call, ns.
    pub free_median_ns: u64,
    /// Out: 99th percentile of the same.
    pub free_p99_ns: u64,
    /// Out: unusable index at order 3 after the last step.
    pub unusable_3: u32,
    /// Out: unusable index at order 9 after the last step.
    pub unusable_9: u32,
    /// Out: after the last step, bytes requested by the live slab objects.
    pub live_bytes: u64,
    /// Out: after the last step, the sum over live slab objects of usable
    /// (ksize) minus requested bytes: internal waste, on both backends.
    pub ksize_waste: u64,
    /// Out, mirror only: bytes in the slabs of the mirror's kmalloc caches
    /// and of the run's kmem_caches after the last step (0 on real: SLUB
    /// keeps its slab counts private). Slab waste = this minus live bytes.
    pub slab_bytes: u64,
    /// Out: the bytes charged against the pin caps for the run.
    pub charged: u64,
}

const _: () = assert!(core::mem::size_of::<MemlabReplay>() == 152);

/// `_IOWR(0xB7, 0x06, struct memlab_replay)`: replay steps in the kernel.
pub const MEMLAB_IOC_REPLAY: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x06,
    core::mem::size_of::<MemlabReplay>(),
);

/// Session op: open a replay session on one backend; `session` comes back.
pub const MEMLAB_SESSION_OPEN: u32 = 0;
/// Session op: run a chunk of steps in a session; its objects stay live.
pub const MEMLAB_SESSION_RUN: u32 = 1;
/// Session op: free everything the session holds, destroy its caches.
pub const MEMLAB_SESSION_CLOSE: u32 = 2;
/// Most sessions one open file holds at once (E2BIG past it).
pub const MEMLAB_SESSION_MAX: u32 = 4;

/// Argument of [`MEMLAB_IOC_SESSION`]: a replay kept open across ioctls, so
/// that user space can read the allocators' own counters (sysfs, /proc,
/// debugfs) between chunks of one operation stream while its objects stay
/// live. Steps are `struct memlab_replay_step`s with REPLAY's rules; ids
/// and their pairing carry over from chunk to chunk. The session's slab
/// objects go to caches of its own, `memlab_s<session>_kmalloc-<class>`
/// (kmalloc; above 8 KiB, pages of `get_order(size)` as kmalloc does) and
/// `memlab_s<session>_cache-<size>` (kmem_cache), made on first use, with
/// the same names on both backends (`SLAB_NO_MERGE` on the real one).
/// Nothing is timed. Closing the file closes its sessions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemlabSession {
    /// In: `MEMLAB_SESSION_OPEN`, `_RUN` or `_CLOSE`.
    pub op: u32,
    /// In (OPEN): `MEMLAB_BACKEND_*`; else 0.
    pub backend: u32,
    /// Out (OPEN), in (RUN, CLOSE): the session's number, unique while the
    /// module is loaded (it names the session's caches).
    pub session: u32,
    /// In (OPEN): slots of the id table, `1..=MEMLAB_REPLAY_MAX_IDS`; the
    /// steps' ids must be below it. Else 0.
    pub ids: u32,
    /// In (OPEN): the most bytes the session's live objects may hold at
    /// once (REPLAY's measure: a page block, or the object size rounded up
    /// to a power of two), charged with the id table from OPEN to CLOSE; a
    /// RUN that would pass it is refused (E2BIG). Else 0.
    pub max_bytes: u64,
    /// In (RUN): user address of the steps; else 0.
    pub steps: u64,
    /// In (RUN): their length in bytes; else 0.
    pub steps_len: u64,
    /// Out: steps run by all RUNs so far.
    pub steps_done: u64,
    /// Out: allocations that succeeded, so far.
    pub allocs: u64,
    /// Out: frees, so far.
    pub frees: u64,
    /// Out: allocations that failed, so far (a later free of the id is
    /// skipped).
    pub failed: u64,
    /// Out: objects live now.
    pub live: u64,
    /// Out: bytes live now, in `max_bytes`' measure.
    pub live_bytes: u64,
    /// Out: bytes charged against the pin caps now (the table, `max_bytes`
    /// and the caches).
    pub charged: u64,
    /// Out: caches the session has made.
    pub nr_caches: u32,
    /// Zero.
    pub reserved: u32,
}

const _: () = assert!(core::mem::size_of::<MemlabSession>() == 104);

/// `_IOWR(0xB7, 0x07, struct memlab_session)`: a replay session.
pub const MEMLAB_IOC_SESSION: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x07,
    core::mem::size_of::<MemlabSession>(),
);
