// SPDX-License-Identifier: GPL-2.0

//! One fuzzing process: several fds to `/dev/memlab`, several threads
//! sharing them, each thread drawing operations at random.

use crate::kernel::Kernel;
use crate::rng::Rng;
use crate::stats::{Kind, Stats, EXPECTED};
use crate::sys::{self, bytes_of, Arena, PAGE};
use crate::uapi::*;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};

/// Most handles a slot remembers as live; past half of it frees win.
const LIVE_MAX: usize = 64;
/// Least time between two real exercises in the whole run, ms.
const EXERCISE_GAP_MS: u64 = 15_000;
/// The module's per-file handle limit (chardev.rs MAX_HANDLES).
const MAX_HANDLES: u32 = 1024;

/// One open `/dev/memlab` shared by the process's threads. Ioctls run under
/// the read lock (concurrently); closing and reopening takes the write
/// lock, so no thread ever uses a closed or recycled fd number.
struct Slot {
    lock: RwLock<()>,
    /// The fd; atomic so a forked child can read it without the lock.
    fd: AtomicI32,
    live: Mutex<Vec<u32>>,
    /// Handles freed (or lost to a close) lately: stale numbers to reuse.
    freed: Mutex<Vec<u32>>,
}

/// Offsets of the request templates in the arena's read-only page.
const RO_VERSION: usize = 0x000;
const RO_ALLOC: [usize; 3] = [0x040, 0x080, 0x0c0];
const RO_FREE: usize = 0x100;
const RO_INSPECT: usize = 0x140;
const RO_EXERCISE: usize = 0x1c0;
const RO_WORKLOAD: usize = 0x200;
/// A valid ALLOC whose first 16 bytes end the read-only page and whose
/// rest (all zero) begins the read-write page.
const STRADDLE_ALLOC: usize = PAGE - 16;

/// Writes the templates: requests the kernel accepts, so that only the
/// reply's copy to the read-only page fails.
fn fill_templates(ro: &mut [u8], rw: &mut [u8]) {
    let mut put = |off: usize, b: &[u8]| ro[off..off + b.len()].copy_from_slice(b);
    put(RO_VERSION, bytes_of(&MemlabVersion::default()));
    let allocs = [
        MemlabAlloc {
            family: MEMLAB_FAMILY_KMALLOC,
            size: 64,
            ..Default::default()
        },
        MemlabAlloc {
            family: MEMLAB_FAMILY_PAGES,
            backend: MEMLAB_BACKEND_MIRROR,
            ..Default::default()
        },
        MemlabAlloc {
            family: MEMLAB_FAMILY_VMALLOC,
            gfp: MEMLAB_GFP_ZERO,
            size: 3 * 4096,
            ..Default::default()
        },
    ];
    for (off, a) in RO_ALLOC.iter().zip(&allocs) {
        put(*off, bytes_of(a));
    }
    put(RO_FREE, &1u32.to_ne_bytes());
    put(
        RO_INSPECT,
        bytes_of(&MemlabBlockInfo {
            handle: 1,
            ..Default::default()
        }),
    );
    put(
        RO_EXERCISE,
        bytes_of(&MemlabExercise {
            id: MEMLAB_NR_EXERCISES + 3,
            reps: 1,
            ..Default::default()
        }),
    );
    put(
        RO_WORKLOAD,
        bytes_of(&MemlabWorkload {
            backend: MEMLAB_BACKEND_MIRROR,
            family: MEMLAB_FAMILY_KMALLOC,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: 4,
            size: 64,
            ops_per_sample: 1,
            ..Default::default()
        }),
    );
    let a = MemlabAlloc {
        family: MEMLAB_FAMILY_KMALLOC,
        size: 128,
        ..Default::default()
    };
    let b = bytes_of(&a);
    put(STRADDLE_ALLOC, &b[..16]);
    rw[..b.len() - 16].copy_from_slice(&b[16..]);
}

pub struct Proc {
    slots: Vec<Slot>,
    arena: Arena,
    stats: &'static Stats,
    /// The zones each backend has.
    kernel: Kernel,
    /// One real exercise at a time per process, and one per
    /// EXERCISE_GAP_MS in the whole run (`Stats::next_exercise_ms`): they
    /// are slow under KASAN (seconds of CPU) and serialise in the module.
    exercising: AtomicBool,
    /// Stop after this many iterations per thread (0: until told to stop).
    budget: u64,
    /// Commands sent on this process's files (each one an ioctl at least).
    sent: AtomicU64,
}

/// The six commands with their argument sizes, and the kind they count as.
const CMDS: [(u32, usize, Kind); 6] = [
    (
        MEMLAB_IOC_VERSION,
        size_of::<MemlabVersion>(),
        Kind::Version,
    ),
    (MEMLAB_IOC_ALLOC, size_of::<MemlabAlloc>(), Kind::Alloc),
    (MEMLAB_IOC_FREE, 4, Kind::Free),
    (
        MEMLAB_IOC_INSPECT,
        size_of::<MemlabBlockInfo>(),
        Kind::Inspect,
    ),
    (
        MEMLAB_IOC_EXERCISE,
        size_of::<MemlabExercise>(),
        Kind::Exercise,
    ),
    (
        MEMLAB_IOC_WORKLOAD,
        size_of::<MemlabWorkload>(),
        Kind::Workload,
    ),
];

/// A valid ALLOC request, or one with a few fields made garbage.
fn gen_alloc(r: &mut Rng) -> MemlabAlloc {
    // kmem_cache makes and destroys a cache per handle (an RCU barrier
    // each): tens of ms under KASAN and TCG, so rare.
    let family = r.weighted(&[40, 12, 30, 3, 15]) as u32;
    let mut gfp = r.gfp_valid();
    let slab = family == MEMLAB_FAMILY_KMALLOC || family == MEMLAB_FAMILY_KMEM_CACHE;
    if slab && matches!(gfp & 0xff, MEMLAB_GFP_DMA32 | MEMLAB_GFP_HIGHUSER) && r.chance(9, 10) {
        gfp &= !0xff;
    }
    let mut a = MemlabAlloc {
        family,
        gfp,
        backend: r.backend().min(1),
        ..Default::default()
    };
    match family {
        MEMLAB_FAMILY_PAGES => a.order = r.order().min(10),
        MEMLAB_FAMILY_KMEM_CACHE => {
            a.size = r.size().clamp(1, 4 << 20);
            a.align = if r.chance(1, 2) {
                0
            } else {
                1 << r.range(0, 12)
            };
            // MEMLAB_CACHE_DMA and/or _HWCACHE_ALIGN, or none.
            a.cache_flags = r.below(4) as u32;
        }
        _ => a.size = r.size().max(1),
    }
    if r.chance(35, 100) {
        for _ in 0..r.range(1, 3) {
            match r.below(9) {
                0 => a.family = r.family(),
                1 => a.gfp = r.gfp(),
                2 => a.size = r.size(),
                3 => a.order = r.order(),
                4 => a.align = r.align(),
                5 => a.backend = r.backend(),
                6 => a.cache_flags = r.pick_or(&[1, 2, 3, 4, u32::MAX], |r| r.u32()),
                7 => a.reserved = r.pick_or(&[1, u32::MAX], |r| r.u32()),
                _ => a.handle = r.pick_or(&[1, 7, MAX_HANDLES, u32::MAX], |r| r.u32()),
            }
        }
    }
    a
}

/// A valid, small WORKLOAD, or one with a few fields made garbage; and
/// whether it is the valid one (nothing made garbage).
fn gen_workload(r: &mut Rng) -> (MemlabWorkload, bool) {
    let family = [
        MEMLAB_FAMILY_KMALLOC,
        MEMLAB_FAMILY_PAGES,
        MEMLAB_FAMILY_KMEM_CACHE,
    ][r.weighted(&[45, 45, 10])];
    let mut w = MemlabWorkload {
        backend: r.backend().min(1),
        family,
        pattern: r.below(u64::from(MEMLAB_NR_PATTERNS)) as u32,
        count: r.range(1, 16) as u32,
        seed: r.u32(),
        ops_per_sample: r.range(1, 4) as u32,
        ..Default::default()
    };
    if family == MEMLAB_FAMILY_PAGES {
        w.order = r.range(0, 3) as u32;
    } else {
        w.size = r.range(8, 4096);
    }
    let garbage = r.chance(30, 100);
    if garbage {
        for _ in 0..r.range(1, 2) {
            match r.below(9) {
                0 => w.backend = r.backend(),
                1 => w.family = r.family(),
                2 => w.pattern = r.pick_or(&[3, 4, u32::MAX], |r| r.u32()),
                3 => w.count = r.pick(&[0, MEMLAB_WORKLOAD_MAX_COUNT + 1, u32::MAX]),
                4 => w.size = r.pick_or(&[0, 1, 7, (4 << 20) + 1, u64::MAX], |r| r.size()),
                5 => w.order = r.order(),
                6 => w.ops = r.next() | 1,
                7 => w.ops_per_sample = r.pick(&[0, MEMLAB_WORKLOAD_MAX_K + 1, u32::MAX]),
                _ => w.samples_ptr = r.next() | 1,
            }
        }
    }
    (w, !garbage)
}

/// Largest order, size and kmem_cache alignment the module takes
/// (MAX_PAGE_ORDER, KMALLOC_MAX_SIZE, KMEM_CACHE_MAX_ALIGN).
const MAX_ORDER: u32 = 10;
const MAX_SIZE: u64 = 4 << 20;

/// Whether `a` breaks a rule of the request decoder (src/request/mod.rs),
/// which runs before any allocator: the answer must then be EINVAL,
/// whatever else the request holds. (An invalid GFP is EINVAL too, but not
/// needed here: these rules alone decide.)
fn alloc_malformed(a: &MemlabAlloc) -> bool {
    if a.handle != 0 || a.reserved != 0 || a.backend > MEMLAB_BACKEND_MIRROR {
        return true;
    }
    match a.family {
        MEMLAB_FAMILY_PAGES => a.order > MAX_ORDER || a.align != 0 || a.cache_flags != 0,
        MEMLAB_FAMILY_KMEM_CACHE => {
            a.size == 0
                || a.size > MAX_SIZE
                || a.order != 0
                || (a.align != 0 && (!a.align.is_power_of_two() || u64::from(a.align) > MAX_SIZE))
                || a.cache_flags & !MEMLAB_CACHE_FLAGS != 0
        }
        MEMLAB_FAMILY_KMALLOC | MEMLAB_FAMILY_VMALLOC | MEMLAB_FAMILY_DMA => {
            a.size == 0 || a.order != 0 || a.align != 0 || a.cache_flags != 0
        }
        _ => true,
    }
}

/// Whether `a` is well formed for a family whose backends refuse nothing
/// with EINVAL under GFP_KERNEL (kmem_cache is left out: the mirror refuses
/// some geometries with EINVAL): EINVAL for it is then a finding.
fn alloc_plainly_valid(a: &MemlabAlloc) -> bool {
    !alloc_malformed(a)
        && a.gfp == MEMLAB_GFP_KERNEL
        && matches!(
            a.family,
            MEMLAB_FAMILY_KMALLOC | MEMLAB_FAMILY_PAGES | MEMLAB_FAMILY_VMALLOC | MEMLAB_FAMILY_DMA
        )
}

/// Whether `w` breaks a rule that the WORKLOAD ioctl checks before any
/// that gives E2BIG (src/chardev.rs, src/workload/limits.rs): outputs not
/// zero, backend, pattern, count, order, K, warm-up, flags, a sample
/// pointer without room. The answer must then be EINVAL.
fn workload_malformed(w: &MemlabWorkload) -> bool {
    // FREE_KEPT takes another path (never generated here): not judged.
    if w.flags & MEMLAB_WORKLOAD_FREE_KEPT != 0 {
        return false;
    }
    let outputs = MemlabWorkload {
        backend: 0,
        family: 0,
        pattern: 0,
        count: 0,
        size: 0,
        order: 0,
        seed: 0,
        ops_per_sample: 0,
        warmup: 0,
        samples_ptr: 0,
        samples_cap: 0,
        flags: 0,
        ..*w
    };
    outputs != MemlabWorkload::default()
        || w.backend > MEMLAB_BACKEND_MIRROR
        || w.pattern >= MEMLAB_NR_PATTERNS
        || w.count == 0
        || w.count > MEMLAB_WORKLOAD_MAX_COUNT
        || w.order > MAX_ORDER
        || w.ops_per_sample == 0
        || w.ops_per_sample > MEMLAB_WORKLOAD_MAX_K
        || w.warmup > w.count
        || !matches!(
            w.flags,
            0 | MEMLAB_WORKLOAD_KEEP | MEMLAB_WORKLOAD_THROUGHPUT
        )
        || (w.samples_cap == 0 && w.samples_ptr != 0)
}

/// The shape of a REPLAY call: its steps and what [`Proc::op_replay`]
/// expects of it.
struct ReplayCase {
    steps: Vec<MemlabReplayStep>,
    /// Allocation steps in `steps`.
    allocs: u64,
    /// Nothing in the steps or the header was made garbage.
    valid: bool,
}

/// A short valid replay (ids 0..16, kmalloc, pages of order 0..3 and now
/// and then kmem_cache objects), or one with one step made garbage.
fn gen_replay_steps(r: &mut Rng) -> ReplayCase {
    let n = r.range(1, 48) as usize;
    // kmem_cache steps in one replay of ten: each size is a cache made and
    // destroyed (an RCU barrier, tens of ms under KASAN).
    let caches = if r.chance(1, 10) { 10 } else { 0 };
    let mut steps = Vec::with_capacity(n);
    let mut live: Vec<u32> = Vec::new();
    let mut allocs = 0;
    for _ in 0..n {
        let free_one = !live.is_empty() && (live.len() >= 16 || r.chance(2, 5));
        if free_one {
            let i = r.below(live.len() as u64) as usize;
            steps.push(MemlabReplayStep {
                op: MEMLAB_REPLAY_FREE,
                id: live.swap_remove(i),
                ..Default::default()
            });
            continue;
        }
        let id = (0..16u32).find(|i| !live.contains(i)).unwrap_or(0);
        let family = [
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_FAMILY_PAGES,
            MEMLAB_FAMILY_KMEM_CACHE,
        ][r.weighted(&[60, 40, caches])];
        let arg = if family == MEMLAB_FAMILY_PAGES {
            r.range(0, 3)
        } else {
            r.range(1, 8192)
        };
        let gfp = r.pick(&[
            MEMLAB_GFP_KERNEL,
            MEMLAB_GFP_KERNEL,
            MEMLAB_GFP_ATOMIC,
            MEMLAB_GFP_NOWAIT,
            MEMLAB_GFP_NOFS,
        ]);
        steps.push(MemlabReplayStep {
            op: MEMLAB_REPLAY_ALLOC,
            family,
            gfp,
            id,
            arg,
        });
        live.push(id);
        allocs += 1;
    }
    let mut valid = true;
    if r.chance(30, 100) {
        valid = false;
        let i = r.below(steps.len() as u64) as usize;
        let s = &mut steps[i];
        match r.below(7) {
            0 => s.op = r.pick_or(&[2, 3, u32::MAX], |r| r.u32() | 2),
            1 => s.family = r.pick(&[MEMLAB_FAMILY_VMALLOC, MEMLAB_FAMILY_DMA, 5, u32::MAX]),
            2 => {
                s.gfp = r.pick_or(&[MEMLAB_NR_GFP, MEMLAB_GFP_ZERO, 0xff, u32::MAX], |r| {
                    r.u32() | 0x200
                })
            }
            3 => s.id = r.pick_or(&[MEMLAB_REPLAY_MAX_IDS, u32::MAX], |r| r.u32() | 1 << 16),
            4 => s.arg = r.pick(&[0, 11, 64, (4 << 20) + 1, 1 << 40, u64::MAX]),
            // A free of an id nothing holds.
            5 => {
                *s = MemlabReplayStep {
                    op: MEMLAB_REPLAY_FREE,
                    id: 16 + r.below(16) as u32,
                    ..Default::default()
                }
            }
            // A second alloc of a live id (step 0 is always an alloc).
            _ => {
                let first = steps[0];
                steps.insert(1, first);
            }
        }
    }
    ReplayCase {
        steps,
        allocs,
        valid,
    }
}

impl Proc {
    pub fn new(stats: &'static Stats, kernel: Kernel, nfds: usize, budget: u64) -> Proc {
        let slots = (0..nfds)
            .map(|_| {
                let fd = match sys::open_dev() {
                    Ok(fd) => fd,
                    Err(e) => {
                        eprintln!("fuzz: open /dev/memlab: {}", sys::errno_name(e));
                        std::process::exit(3);
                    }
                };
                Slot {
                    lock: RwLock::new(()),
                    fd: AtomicI32::new(fd),
                    live: Mutex::new(Vec::new()),
                    freed: Mutex::new(Vec::new()),
                }
            })
            .collect();
        Proc {
            slots,
            arena: Arena::new(fill_templates),
            stats,
            kernel,
            exercising: AtomicBool::new(false),
            budget,
            sent: AtomicU64::new(0),
        }
    }

    /// A handle to name: mostly one this slot holds, else a stale, foreign,
    /// boundary or random one. `take` removes a live one from the list.
    fn handle(&self, r: &mut Rng, slot: &Slot, take: bool) -> u32 {
        match r.weighted(&[70, 10, 8, 6, 6]) {
            0 => {
                let mut live = slot.live.lock().unwrap();
                if !live.is_empty() {
                    let i = r.below(live.len() as u64) as usize;
                    return if take { live.swap_remove(i) } else { live[i] };
                }
                r.range(1, 64) as u32
            }
            1 => {
                let freed = slot.freed.lock().unwrap();
                if freed.is_empty() {
                    0
                } else {
                    freed[r.below(freed.len() as u64) as usize]
                }
            }
            2 => {
                let other = &self.slots[r.below(self.slots.len() as u64) as usize];
                let live = other.live.lock().unwrap();
                live.first().copied().unwrap_or(1)
            }
            3 => r.pick(&[0, 1, MAX_HANDLES, MAX_HANDLES + 1, u32::MAX, 1 << 31]),
            _ => r.range(1, u64::from(MAX_HANDLES) + 8) as u32,
        }
    }

    fn forget(&self, slot: &Slot, h: u32) {
        let mut freed = slot.freed.lock().unwrap();
        if freed.len() >= 16 {
            freed.remove(0);
        }
        freed.push(h);
    }

    /// One thread's loop.
    /// Commands this process sent (one ioctl each at least).
    pub fn sent(&self) -> u64 {
        self.sent.load(Relaxed)
    }

    pub fn run_thread(&self, mut r: Rng) {
        let mut n = 0u64;
        while !self.stats.stopped() && (self.budget == 0 || n < self.budget) {
            n += 1;
            let si = r.below(self.slots.len() as u64) as usize;
            let slot = &self.slots[si];
            match r.weighted(&[220, 200, 150, 50, 20, 15, 100, 120, 3, 1, 1, 8, 8]) {
                8 => {
                    self.reopen(slot);
                    continue;
                }
                9 => {
                    self.fork_child(&mut r);
                    continue;
                }
                10 if r.chance(1, 5) => {
                    self.burst(&mut r);
                    continue;
                }
                op => {
                    let _g = slot.lock.read().unwrap();
                    let fd = slot.fd.load(Relaxed);
                    self.sent.fetch_add(1, Relaxed);
                    match op {
                        0 => self.op_alloc(&mut r, slot, fd),
                        1 => self.op_free(&mut r, slot, fd),
                        2 => self.op_inspect(&mut r, slot, fd),
                        3 => self.op_version(fd),
                        4 => self.op_exercise(&mut r, fd),
                        5 => self.op_workload(&mut r, fd),
                        6 => self.op_badcmd(&mut r, fd),
                        11 => self.op_replay(&mut r, fd),
                        12 => self.op_session(&mut r, fd),
                        _ => self.op_badptr(&mut r, fd),
                    }
                }
            }
        }
    }

    fn op_alloc(&self, r: &mut Rng, slot: &Slot, fd: i32) {
        // Free first if this slot holds many: keeps the pinned memory and
        // the live lists bounded, and the frees frequent.
        if slot.live.lock().unwrap().len() > LIVE_MAX / 2 && r.chance(1, 2) {
            return self.op_free(r, slot, fd);
        }
        let mut a = gen_alloc(r);
        let (sent, malformed, plainly_valid) = (a, alloc_malformed(&a), alloc_plainly_valid(&a));
        let arg = &mut a as *mut _ as usize;
        let t = 1 + (a.family as usize).min(5);
        let e = self
            .stats
            .timed(t, || sys::ioctl(fd, MEMLAB_IOC_ALLOC, arg));
        self.stats.judge(Kind::Alloc, MEMLAB_IOC_ALLOC, arg, e);
        // `a` is the request as sent until the ioctl writes the handle back.
        if malformed && e != libc::EINVAL {
            self.stats.unexpected(format_args!(
                "malformed ALLOC {sent:?} answered {}, want EINVAL",
                sys::errno_name(e)
            ));
        }
        if plainly_valid && e == libc::EINVAL {
            self.stats
                .unexpected(format_args!("valid ALLOC {sent:?} refused with EINVAL"));
        }
        if e == 0 {
            if a.handle == 0 || a.handle > MAX_HANDLES {
                self.stats
                    .unexpected(format_args!("ALLOC {a:?} returned handle {}", a.handle));
            } else {
                let mut live = slot.live.lock().unwrap();
                if live.len() < LIVE_MAX {
                    live.push(a.handle);
                }
            }
        }
    }

    fn op_free(&self, r: &mut Rng, slot: &Slot, fd: i32) {
        let h = self.handle(r, slot, true);
        let arg = &h as *const u32 as usize;
        let e = self.stats.timed(7, || sys::ioctl(fd, MEMLAB_IOC_FREE, arg));
        self.stats.judge(Kind::Free, MEMLAB_IOC_FREE, arg, e);
        if e == 0 {
            self.forget(slot, h);
        }
    }

    fn op_inspect(&self, r: &mut Rng, slot: &Slot, fd: i32) {
        let h = self.handle(r, slot, false);
        let mut q = MemlabBlockInfo {
            handle: h,
            ..Default::default()
        };
        if r.chance(1, 8) {
            // The other fields are outputs: garbage in them must not matter.
            q.size = r.next();
            q.family = r.u32();
            q.first_pfn = r.next();
        }
        let arg = &mut q as *mut _ as usize;
        let e = self
            .stats
            .timed(8, || sys::ioctl(fd, MEMLAB_IOC_INSPECT, arg));
        self.stats.judge(Kind::Inspect, MEMLAB_IOC_INSPECT, arg, e);
        let sane = q.handle == h
            && q.family < MEMLAB_NR_FAMILIES
            && q.nr_pages >= 1
            && q.phys_runs >= 1
            && q.phys_runs <= q.nr_pages
            && q.usable >= q.size;
        if e == 0 && !sane {
            self.stats
                .unexpected(format_args!("INSPECT of handle {h} replied {q:?}"));
        }
    }

    fn op_version(&self, fd: i32) {
        let mut v = MemlabVersion {
            abi_version: 0xdead,
            ..Default::default()
        };
        let arg = &mut v as *mut _ as usize;
        let e = self
            .stats
            .timed(0, || sys::ioctl(fd, MEMLAB_IOC_VERSION, arg));
        self.stats.judge(Kind::Version, MEMLAB_IOC_VERSION, arg, e);
        let want = MemlabVersion {
            abi_version: MEMLAB_ABI_VERSION,
            struct_size: 16,
            max_page_order: 10,
            page_size: 4096,
        };
        if e != 0 || v != want {
            self.stats
                .unexpected(format_args!("VERSION: {} {v:?}", sys::errno_name(e)));
        }
    }

    fn op_exercise(&self, r: &mut Rng, fd: i32) {
        let mut q = MemlabExercise::default();
        // A real exercise is slow (hundreds of ms to seconds under KASAN):
        // one per process at a time, at most one per EXERCISE_GAP_MS, and
        // 1..=4 reps.
        let now = sys::monotonic_ms();
        let next = self.stats.next_exercise_ms.load(Relaxed);
        let mut real = false;
        if now >= next
            && self
                .exercising
                .compare_exchange(false, true, Relaxed, Relaxed)
                .is_ok()
        {
            real = (self.stats.next_exercise_ms)
                .compare_exchange(next, now + EXERCISE_GAP_MS, Relaxed, Relaxed)
                .is_ok();
            if !real {
                self.exercising.store(false, Relaxed);
            }
        }
        if real {
            // vmalloc's exercise is the slowest: a quarter as likely.
            q.id = if r.chance(1, 4) {
                MEMLAB_EX_VMALLOC
            } else {
                r.pick(&[
                    MEMLAB_EX_KMALLOC,
                    MEMLAB_EX_PAGES,
                    MEMLAB_EX_KMEM_CACHE,
                    MEMLAB_EX_DMA,
                    MEMLAB_EX_GFP,
                ])
            };
            q.reps = r.range(1, 4) as u32;
            if r.chance(1, 4) {
                q.passed = r.u32();
                q.p99_ns = r.next();
            }
        } else {
            match r.below(3) {
                0 => {
                    q.id = r.pick_or(&[MEMLAB_NR_EXERCISES, 7, 255, u32::MAX], |r| r.u32() | 8);
                    q.reps = r.range(0, 4) as u32;
                }
                1 => {
                    q.id = r.below(u64::from(MEMLAB_NR_EXERCISES)) as u32;
                    q.reps = r.pick_or(&[1001, 4096, u32::MAX], |r| r.u32() | 1024);
                }
                _ => {
                    q.id = r.u32() | 16;
                    q.reps = r.u32() | 2048;
                }
            }
        }
        let arg = &mut q as *mut _ as usize;
        let t = if real { 9 } else { 10 };
        let e = self
            .stats
            .timed(t, || sys::ioctl(fd, MEMLAB_IOC_EXERCISE, arg));
        self.stats
            .judge(Kind::Exercise, MEMLAB_IOC_EXERCISE, arg, e);
        if real {
            self.exercising.store(false, Relaxed);
            self.stats.exercises.fetch_add(1, Relaxed);
            if e == 0 && (q.cases == 0 || q.passed > q.cases) {
                self.stats
                    .unexpected(format_args!("EXERCISE replied {q:?}"));
            }
        } else if e != libc::EINVAL {
            self.stats.unexpected(format_args!(
                "invalid EXERCISE {q:?}: {}",
                sys::errno_name(e)
            ));
        }
    }

    fn op_workload(&self, r: &mut Rng, fd: i32) {
        let (mut w, valid) = gen_workload(r);
        let (sent, malformed) = (w, workload_malformed(&w));
        let arg = &mut w as *mut _ as usize;
        let e = self
            .stats
            .timed(11, || sys::ioctl(fd, MEMLAB_IOC_WORKLOAD, arg));
        self.stats
            .judge(Kind::Workload, MEMLAB_IOC_WORKLOAD, arg, e);
        if malformed && e != libc::EINVAL {
            self.stats.unexpected(format_args!(
                "malformed WORKLOAD {sent:?} answered {}, want EINVAL",
                sys::errno_name(e)
            ));
        }
        if valid && e == libc::EINVAL {
            self.stats
                .unexpected(format_args!("valid WORKLOAD {sent:?} refused with EINVAL"));
        }
    }

    /// REPLAY of a short step array, valid or not, with its header and
    /// buffers valid or not. Whatever happens, everything it allocated is
    /// freed when it returns (end_checks reads `pinned`); a valid one must
    /// replay every step, unless the pin caps or the allocator refuse it.
    /// One valid but for a zone its backend lacks (DMA and DMA32 on User-Mode
    /// Linux) must be refused: EINVAL, or a charge that answers first.
    fn op_replay(&self, r: &mut Rng, fd: i32) {
        let case = gen_replay_steps(r);
        let mut q = MemlabReplay {
            steps: case.steps.as_ptr() as u64,
            steps_len: (case.steps.len() * size_of::<MemlabReplayStep>()) as u64,
            backend: r.backend().min(1),
            zone: r.pick(&[
                MEMLAB_ZONE_NORMAL,
                MEMLAB_ZONE_NORMAL,
                MEMLAB_ZONE_DMA32,
                MEMLAB_ZONE_DMA,
            ]),
            ..Default::default()
        };
        let mut samples = Vec::<MemlabFragSample>::new();
        if r.chance(1, 2) {
            q.sample_every = r.range(1, 8) as u32;
            samples.resize(
                case.steps.len() / q.sample_every as usize + 1,
                Default::default(),
            );
            q.samples = samples.as_mut_ptr() as u64;
            q.samples_len = (samples.len() * size_of::<MemlabFragSample>()) as u64;
        }
        let mut valid = case.valid;
        // Unreadable steps: EFAULT, unless a check or a charge answers
        // first (below).
        let mut must_fault = false;
        if r.chance(25, 100) {
            valid = false;
            let ar = &self.arena;
            match r.below(10) {
                0 => q.backend = r.pick(&[2, u32::MAX]),
                1 => q.zone = r.pick(&[MEMLAB_ZONE_MOVABLE, MEMLAB_ZONE_MIXED, 7, u32::MAX]),
                2 => q.steps_len = r.pick(&[0, q.steps_len - 1, q.steps_len + 1]),
                3 => q.steps_len = u64::from(MEMLAB_REPLAY_MAX_STEPS + 1) * 24,
                4 => q.steps_len = u64::MAX - 7,
                5 => q.samples_len = q.samples_len.saturating_sub(1).max(1),
                6 => {
                    q.sample_every = if q.sample_every == 0 {
                        0
                    } else {
                        r.pick(&[0, u32::MAX])
                    }
                }
                7 => q.allocs = r.next() | 1,
                8 => {
                    q.steps = r.pick(&[0, ar.hole as u64, 0xffff_8880_0000_0000, u64::MAX - 7]);
                    must_fault = true;
                }
                _ => {
                    if q.samples != 0 {
                        // The read-only page: the copy-out of the samples fails.
                        q.samples = ar.ro as u64;
                        q.samples_len = q.samples_len.min(PAGE as u64);
                    }
                }
            }
        }
        let arg = &mut q as *mut _ as usize;
        let e = self
            .stats
            .timed(14, || sys::ioctl(fd, MEMLAB_IOC_REPLAY, arg));
        self.stats.judge(Kind::Replay, MEMLAB_IOC_REPLAY, arg, e);
        let n = case.steps.len() as u64;
        // The run's tables are charged and made before the steps are
        // copied in: the pin caps (E2BIG) or the allocator (ENOMEM) may
        // answer first.
        let charged = [libc::E2BIG, libc::ENOMEM];
        if valid && !self.kernel.has_zone(q.backend, q.zone) {
            if e != libc::EINVAL && !charged.contains(&e) {
                self.stats.unexpected(format_args!(
                    "REPLAY of zone {} on backend {}, which lacks it: {}, want EINVAL",
                    q.zone,
                    q.backend,
                    sys::errno_name(e)
                ));
            }
            return;
        }
        if must_fault && e != libc::EFAULT && e != libc::EINVAL && !charged.contains(&e) {
            self.stats.unexpected(format_args!(
                "REPLAY with unreadable steps {:#x}: {}",
                q.steps,
                sys::errno_name(e)
            ));
        }
        // E2BIG: the run's charge did not fit under the pin caps, which
        // this fd's other threads and the other files share; ENOMEM: the
        // allocator failed.
        if valid && e != 0 && !charged.contains(&e) {
            self.stats.unexpected(format_args!(
                "valid REPLAY of {n} steps on backend {}: {}",
                q.backend,
                sys::errno_name(e)
            ));
        }
        if valid && e == 0 && (q.steps_done != n || q.allocs + q.failed != case.allocs) {
            self.stats.unexpected(format_args!(
                "valid REPLAY of {n} steps ({} allocs): steps_done {}, allocs {} + failed {}",
                case.allocs, q.steps_done, q.allocs, q.failed
            ));
        }
    }

    /// A replay session: OPEN (now and then garbage: a bad op, backend or
    /// id table, a zero or huge bound, outputs set), a RUN or two of a
    /// short replay (now and then of another session, or a bad buffer), and
    /// CLOSE, or the session left open for the file's close to free. A
    /// valid RUN of an open session fails only for the caps (E2BIG) or the
    /// allocator (ENOMEM).
    fn op_session(&self, r: &mut Rng, fd: i32) {
        let call = |q: &mut MemlabSession| {
            let arg = q as *mut _ as usize;
            let e = self
                .stats
                .timed(15, || sys::ioctl(fd, MEMLAB_IOC_SESSION, arg));
            self.stats.judge(Kind::Session, MEMLAB_IOC_SESSION, arg, e);
            e
        };
        let mut open = MemlabSession {
            op: MEMLAB_SESSION_OPEN,
            backend: r.backend().min(1),
            ids: MEMLAB_REPLAY_MAX_IDS,
            max_bytes: 1 << 20,
            ..Default::default()
        };
        let valid_open = !r.chance(1, 4);
        if !valid_open {
            match r.below(6) {
                0 => open.op = r.pick(&[3, u32::MAX]),
                1 => open.backend = r.pick(&[2, u32::MAX]),
                2 => open.ids = r.pick(&[0, MEMLAB_REPLAY_MAX_IDS + 1, u32::MAX]),
                3 => open.max_bytes = r.pick(&[0, u64::MAX]),
                4 => open.live = r.next() | 1,
                _ => open.session = r.u32() | 1,
            }
        }
        let e = call(&mut open);
        if valid_open && ![0, libc::E2BIG, libc::ENOMEM].contains(&e) {
            self.stats.unexpected(format_args!(
                "valid SESSION OPEN on backend {}: {}",
                open.backend,
                sys::errno_name(e)
            ));
        }
        let mine = (e == 0).then_some(open.session);
        for _ in 0..r.range(1, 2) {
            let case = gen_replay_steps(r);
            let mut q = MemlabSession {
                op: MEMLAB_SESSION_RUN,
                session: mine.unwrap_or_else(|| r.u32()),
                steps: case.steps.as_ptr() as u64,
                steps_len: (case.steps.len() * size_of::<MemlabReplayStep>()) as u64,
                ..Default::default()
            };
            let mut valid = case.valid && mine.is_some();
            if r.chance(1, 5) {
                valid = false;
                match r.below(4) {
                    0 => q.session = q.session.wrapping_add(1),
                    1 => q.steps_len = r.pick(&[0, q.steps_len - 1, u64::MAX - 7]),
                    2 => q.steps = r.pick(&[0, self.arena.hole as u64, u64::MAX - 7]),
                    _ => q.allocs = r.next() | 1,
                }
            }
            let e = call(&mut q);
            // A valid chunk may still reuse an id an earlier chunk of this
            // session left live (EINVAL): gen_replay_steps knows only its
            // own chunk.
            if valid && ![0, libc::E2BIG, libc::ENOMEM, libc::EINVAL].contains(&e) {
                self.stats.unexpected(format_args!(
                    "valid SESSION RUN of {} steps: {}",
                    case.steps.len(),
                    sys::errno_name(e)
                ));
            }
        }
        if let Some(n) = mine.filter(|_| !r.chance(1, 4)) {
            let mut q = MemlabSession {
                op: MEMLAB_SESSION_CLOSE,
                session: n,
                ..Default::default()
            };
            // Another thread of this file may have closed it: EINVAL then.
            let e = call(&mut q);
            if ![0, libc::EINVAL].contains(&e) {
                self.stats
                    .unexpected(format_args!("SESSION CLOSE of {n}: {}", sys::errno_name(e)));
            }
        }
    }

    /// An unknown command number, or a known one with a wrong size or
    /// direction: ENOTTY, always.
    fn op_badcmd(&self, r: &mut Rng, fd: i32) {
        // REPLAY and SESSION are driven by their own ops alone (their
        // buffers are their own).
        let valid: Vec<u32> = CMDS
            .iter()
            .map(|c| c.0)
            .chain([MEMLAB_IOC_REPLAY, MEMLAB_IOC_SESSION])
            .collect();
        let cmd = loop {
            let c = match r.below(4) {
                // memlab's type byte, an unused number.
                0 => {
                    (r.u32() & 0xc000_0000)
                        | (r.below(1 << 14) as u32) << 16
                        | 0xb7 << 8
                        | r.range(8, 255) as u32
                }
                // A known command with its size off by a little or a lot.
                1 => {
                    let (c, size, _) = r.pick(&CMDS);
                    let size = match r.below(4) {
                        0 => size - 1,
                        1 => size + 1,
                        2 => 0,
                        _ => r.below(1 << 14) as usize,
                    };
                    (c & !(0x3fff << 16)) | (size as u32) << 16
                }
                // A known command with another direction.
                2 => {
                    let (c, _, _) = r.pick(&CMDS);
                    (c & 0x3fff_ffff) | (r.below(4) as u32) << 30
                }
                // Any number at all, but not the type bytes the VFS itself
                // answers (FIOCLEX 'T', FIFREEZE 'X', FS_IOC_* 'f', FICLONE
                // 0x94, FIGETBSZ 0, fs 0x15).
                _ => r.u32(),
            };
            let ty = (c >> 8) & 0xff;
            if !valid.contains(&c) && ![0x00, 0x15, 0x54, 0x58, 0x66, 0x94].contains(&ty) {
                break c;
            }
        };
        let mut buf = [0u64; 32];
        let arg = match r.below(3) {
            0 => buf.as_mut_ptr() as usize,
            1 => 0,
            _ => r.next() as usize,
        };
        let e = self.stats.timed(12, || sys::ioctl(fd, cmd, arg));
        self.stats.judge(Kind::BadCmd, cmd, arg, e);
        if e != libc::ENOTTY {
            self.stats
                .unexpected(format_args!("unknown cmd {cmd:#x}: {}", sys::errno_name(e)));
        }
    }

    /// A known command with a pointer the kernel must not trust.
    fn op_badptr(&self, r: &mut Rng, fd: i32) {
        let (cmd, size, kind) = r.pick(&CMDS);
        let ar = &self.arena;
        let mut weights = [10, 8, 10, 8, 12, 20, 20, 8, 4];
        if kind == Kind::Exercise {
            // What precedes the read-write page could read as a valid
            // exercise with default reps: slow. Every other choice here
            // reads an invalid one or nothing.
            weights[7] = 0;
        }
        // `strict`: nothing of the struct is readable, so EFAULT it must be.
        let (arg, strict) = match r.weighted(&weights) {
            0 => (0, true),
            1 => (r.pick(&[1, 8, 0xfff, 0x1000, 0x10000 - size]), true),
            2 => (
                r.pick(&[
                    0xffff_8880_0000_0000,
                    0xffff_ffff_8100_0000,
                    0xffff_ffff_ffff_f000,
                    usize::MAX - 3,
                ]),
                true,
            ),
            3 => (
                r.pick(&[
                    0x0000_8000_0000_0000,
                    0x8000_0000_0000_0000,
                    0x0000_7fff_ffff_f000 - 2,
                ]),
                true,
            ),
            4 => (ar.hole + r.below((PAGE - size) as u64) as usize, true),
            // Straddling the end of the read-write page into the hole: the
            // part that is mapped holds a valid request prefix.
            5 => {
                let k = r.range(1, size as u64) as usize;
                let at = ar.hole - k;
                self.write_valid(r, kind, at, k);
                (at, k < size)
            }
            // A template in the read-only page.
            6 => {
                let off = match kind {
                    Kind::Version => RO_VERSION,
                    Kind::Alloc => r.pick(&RO_ALLOC),
                    Kind::Free => RO_FREE,
                    Kind::Inspect => RO_INSPECT,
                    Kind::Exercise => RO_EXERCISE,
                    _ => RO_WORKLOAD,
                };
                (ar.ro + off, false)
            }
            // Straddling read-only into read-write.
            7 => {
                let k = if kind == Kind::Alloc {
                    16
                } else {
                    r.range(1, size as u64 - 1) as usize
                };
                (ar.rw - k, false)
            }
            // Misaligned, in the read-write page: must work as if aligned.
            _ => {
                let at = ar.rw + 64 + r.range(1, 7) as usize;
                self.write_valid(r, kind, at, size);
                (at, false)
            }
        };
        let e = self.stats.timed(13, || sys::ioctl(fd, cmd, arg));
        self.stats.judge(Kind::BadPtr, cmd, arg, e);
        if strict && e != libc::EFAULT {
            self.stats.unexpected(format_args!(
                "{kind:?} with unreadable arg {arg:#x}: {}",
                sys::errno_name(e)
            ));
        }
        // A read-only reply buffer: VERSION only writes, so EFAULT it is.
        if !strict && kind == Kind::Version && arg < ar.rw && e != libc::EFAULT {
            self.stats.unexpected(format_args!(
                "VERSION into read-only {arg:#x}: {}",
                sys::errno_name(e)
            ));
        }
        if strict || kind != Kind::Alloc || e != 0 {
            return;
        }
        // An ALLOC that worked (misaligned, or ending right at the hole):
        // its handle is live; free it.
        // SAFETY: the arena's read-write page, written by the kernel.
        let h = unsafe { std::ptr::read_unaligned((arg + 24) as *const u32) };
        let e = sys::ioctl(fd, MEMLAB_IOC_FREE, &h as *const u32 as usize);
        self.stats.judge(Kind::Free, MEMLAB_IOC_FREE, 0, e);
    }

    /// Writes the first `len` bytes of a valid request for `kind` at `at`
    /// in the read-write page.
    fn write_valid(&self, r: &mut Rng, kind: Kind, at: usize, len: usize) {
        let mut buf = [0u8; 256];
        let b: &[u8] = match kind {
            Kind::Alloc => {
                let a = MemlabAlloc {
                    family: MEMLAB_FAMILY_KMALLOC,
                    size: r.range(1, 256),
                    backend: r.below(2) as u32,
                    ..Default::default()
                };
                let n = size_of::<MemlabAlloc>();
                buf[..n].copy_from_slice(bytes_of(&a));
                &buf[..n]
            }
            Kind::Free | Kind::Inspect => {
                buf[..4].copy_from_slice(&(r.range(1, 8) as u32).to_ne_bytes());
                &buf[..80]
            }
            Kind::Workload => {
                let w = MemlabWorkload {
                    backend: MEMLAB_BACKEND_MIRROR,
                    family: MEMLAB_FAMILY_KMALLOC,
                    count: 2,
                    size: 32,
                    ops_per_sample: 1,
                    ..Default::default()
                };
                let n = size_of::<MemlabWorkload>();
                buf[..n].copy_from_slice(bytes_of(&w));
                &buf[..n]
            }
            // VERSION only writes; EXERCISE: an invalid id, cheap.
            _ => {
                buf[..4].copy_from_slice(&(MEMLAB_NR_EXERCISES + 1).to_ne_bytes());
                &buf[..32]
            }
        };
        self.arena.write(at, &b[..len.min(b.len())]);
    }

    /// Closes a slot's fd with whatever it still holds, and opens another.
    fn reopen(&self, slot: &Slot) {
        let _g = slot.lock.write().unwrap();
        sys::close(slot.fd.load(Relaxed));
        let held: Vec<u32> = std::mem::take(&mut *slot.live.lock().unwrap());
        for h in held {
            self.forget(slot, h);
        }
        match sys::open_dev() {
            Ok(fd) => slot.fd.store(fd, Relaxed),
            Err(e) => {
                eprintln!("fuzz: reopen /dev/memlab: {}", sys::errno_name(e));
                std::process::exit(3);
            }
        }
        self.stats.reopens.fetch_add(1, Relaxed);
    }

    /// Fills a fresh fd to the handle limit: exactly MAX_HANDLES small
    /// allocations succeed, the next is E2BIG; then closes it full.
    fn burst(&self, r: &mut Rng) {
        let Ok(fd) = sys::open_dev() else { return };
        let backend = r.below(2) as u32;
        let mut ok = 0;
        let mut last = 0;
        for _ in 0..MAX_HANDLES + 2 {
            let mut a = MemlabAlloc {
                family: MEMLAB_FAMILY_KMALLOC,
                size: 8,
                backend,
                ..Default::default()
            };
            last = sys::ioctl(fd, MEMLAB_IOC_ALLOC, &mut a as *mut _ as usize);
            self.stats.judge(Kind::Alloc, MEMLAB_IOC_ALLOC, 0, last);
            if last == 0 {
                ok += 1;
            } else if last != libc::E2BIG {
                break;
            }
        }
        // ENOMEM (the mirror's pool or memory taken by others) leaves it open.
        if last != libc::ENOMEM && (ok != MAX_HANDLES || last != libc::E2BIG) {
            self.stats.unexpected(format_args!(
                "burst on backend {backend}: {ok} handles, then {}",
                sys::errno_name(last)
            ));
        }
        if r.chance(1, 2) {
            // Free a few in the middle first: holes in the table get reused.
            for h in (1..=MAX_HANDLES).step_by(97) {
                let e = sys::ioctl(fd, MEMLAB_IOC_FREE, &h as *const u32 as usize);
                self.stats.judge(Kind::Free, MEMLAB_IOC_FREE, 0, e);
            }
        }
        sys::close(fd);
        self.stats.bursts.fetch_add(1, Relaxed);
    }

    /// Forks a child that shares this process's open files: it allocates on
    /// them and on an fd of its own, then exits without freeing or closing.
    /// Only async-signal-safe work in the child (raw syscalls, atomics).
    fn fork_child(&self, r: &mut Rng) {
        // Every slot's read lock across the fork: no fd is being closed and
        // reopened meanwhile, so the child inherits them all open.
        let guards: Vec<_> = self.slots.iter().map(|s| s.lock.read().unwrap()).collect();
        let fds: Vec<i32> = self.slots.iter().map(|s| s.fd.load(Relaxed)).collect();
        let mut cr = Rng::derive(r.next(), 7);
        // SAFETY: the child only makes raw system calls and atomic updates
        // of the shared counters, then _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: a valid NUL-terminated path.
            let own = unsafe { libc::open(sys::DEV.as_ptr(), libc::O_RDWR) };
            for i in 0..16 {
                let fd = if i % 2 == 0 && own >= 0 {
                    own
                } else {
                    fds[cr.below(fds.len() as u64) as usize]
                };
                let mut a = MemlabAlloc {
                    family: cr.pick(&[MEMLAB_FAMILY_KMALLOC, MEMLAB_FAMILY_PAGES]),
                    backend: cr.below(2) as u32,
                    ..Default::default()
                };
                if a.family == MEMLAB_FAMILY_KMALLOC {
                    a.size = cr.range(1, 8192);
                }
                let e = sys::ioctl(fd, MEMLAB_IOC_ALLOC, &mut a as *mut _ as usize);
                self.stats.record(Kind::Alloc, e);
                if !EXPECTED.contains(&e) {
                    self.stats.unexpected.fetch_add(1, Relaxed);
                }
            }
            // SAFETY: ends the child without running any destructor.
            unsafe { libc::_exit(0) };
        }
        drop(guards);
        if pid > 0 {
            let mut st = 0;
            // SAFETY: waits for the child just forked.
            if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
                self.stats.unexpected(format_args!(
                    "forked child {pid} lost: waitpid: {}",
                    std::io::Error::last_os_error()
                ));
            } else if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
                self.stats
                    .unexpected(format_args!("forked child ended with status {st:#x}"));
            }
            self.stats.forks.fetch_add(1, Relaxed);
        }
    }

    /// The end of the process: frees some handles, closes every fd with
    /// what it still holds.
    pub fn finish(self, r: &mut Rng) {
        for slot in &self.slots {
            let fd = slot.fd.load(Relaxed);
            let live = std::mem::take(&mut *slot.live.lock().unwrap());
            if r.chance(1, 2) {
                for h in live {
                    let e = sys::ioctl(fd, MEMLAB_IOC_FREE, &h as *const u32 as usize);
                    self.stats.judge(Kind::Free, MEMLAB_IOC_FREE, 0, e);
                }
            }
            sys::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_allocs_are_the_decoders_einval_rules() {
        let ok = MemlabAlloc {
            family: MEMLAB_FAMILY_KMALLOC,
            size: 64,
            ..Default::default()
        };
        assert!(!alloc_malformed(&ok) && alloc_plainly_valid(&ok));
        for bad in [
            MemlabAlloc { reserved: 1, ..ok },
            MemlabAlloc { handle: 7, ..ok },
            MemlabAlloc { backend: 2, ..ok },
            MemlabAlloc {
                family: MEMLAB_NR_FAMILIES,
                ..ok
            },
            MemlabAlloc { size: 0, ..ok },
            MemlabAlloc { order: 1, ..ok },
            MemlabAlloc { align: 8, ..ok },
            MemlabAlloc {
                cache_flags: 1,
                ..ok
            },
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                order: 11,
                ..ok
            },
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMEM_CACHE,
                align: 48,
                ..ok
            },
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMEM_CACHE,
                cache_flags: 4,
                ..ok
            },
        ] {
            assert!(alloc_malformed(&bad), "{bad:?}");
            assert!(!alloc_plainly_valid(&bad), "{bad:?}");
        }
        // Well formed, but a GFP other than GFP_KERNEL, or a kmem_cache:
        // not judged as plainly valid.
        let pages = MemlabAlloc {
            family: MEMLAB_FAMILY_PAGES,
            size: 0,
            order: 10,
            ..ok
        };
        assert!(!alloc_malformed(&pages) && alloc_plainly_valid(&pages));
        let cache = MemlabAlloc {
            family: MEMLAB_FAMILY_KMEM_CACHE,
            align: 4096,
            cache_flags: MEMLAB_CACHE_FLAGS,
            ..ok
        };
        assert!(!alloc_malformed(&cache) && !alloc_plainly_valid(&cache));
        assert!(!alloc_plainly_valid(&MemlabAlloc {
            gfp: MEMLAB_GFP_ATOMIC,
            ..ok
        }));
    }

    #[test]
    fn malformed_workloads_are_the_early_einval_rules() {
        let ok = MemlabWorkload {
            family: MEMLAB_FAMILY_KMALLOC,
            count: 16,
            size: 64,
            ops_per_sample: 1,
            ..Default::default()
        };
        assert!(!workload_malformed(&ok));
        for bad in [
            MemlabWorkload { ops: 1, ..ok },
            MemlabWorkload { backend: 2, ..ok },
            MemlabWorkload {
                pattern: MEMLAB_NR_PATTERNS,
                ..ok
            },
            MemlabWorkload { count: 0, ..ok },
            MemlabWorkload {
                count: MEMLAB_WORKLOAD_MAX_COUNT + 1,
                ..ok
            },
            MemlabWorkload { order: 11, ..ok },
            MemlabWorkload {
                ops_per_sample: 0,
                ..ok
            },
            MemlabWorkload { warmup: 17, ..ok },
            MemlabWorkload { flags: 8, ..ok },
            MemlabWorkload {
                samples_ptr: 0x1000,
                ..ok
            },
        ] {
            assert!(workload_malformed(&bad), "{bad:?}");
        }
        // Too big is E2BIG, not EINVAL: not judged here.
        assert!(!workload_malformed(&MemlabWorkload {
            size: (4 << 20) + 1,
            ..ok
        }));
    }

    #[test]
    fn generated_valid_workloads_are_well_formed() {
        let mut r = Rng::derive(1, 2);
        for _ in 0..1000 {
            let (w, valid) = gen_workload(&mut r);
            if valid {
                assert!(!workload_malformed(&w), "{w:?}");
            }
        }
    }
}
