// SPDX-License-Identifier: GPL-2.0

//! SLUB's sheaves (mm/slub.c, 7.2): per CPU and cache, a main and a spare
//! array of free objects ([`Sheaves`]), swapped in O(1) when the main one
//! runs empty or full, and behind them a per-cache [`Barn`] of full and
//! empty sheaves under its own spinlock. Only when the barn cannot help does
//! a CPU go to the slabs, a whole sheaf at a time (refill or flush, under
//! `Mirror::state`).
//!
//! A refill or a flush moves the whole sheaf in one bulk call on the slab
//! cache ([`fill_bulk`], [`drain_bulk`]: `kmem_cache_alloc_bulk` and
//! `kmem_cache_free_bulk`), O(1) per object: objects come from one slab
//! until it is full, and freed ones find their slab without a page lookup
//! while consecutive ones share it.
//!
//! The barn starts with [`BARN_SHEAVES`] empty sheaves and only ever trades
//! one sheaf for another, so it never holds more than that, and its vectors
//! never grow (no allocation under the lock or with preemption off). That
//! is SLUB's `MAX_FULL_SHEAVES` (10): a barn may fill with as many full
//! sheaves as SLUB's, which takes its empty ones from the allocator instead
//! (up to `MAX_EMPTY_SHEAVES`, 10) where this one owns them from the start.

use crate::slab::BulkFreeError;
use core::ptr::NonNull;
use kernel::{new_spinlock, prelude::*, sync::SpinLock};

/// Sheaves a barn owns: SLUB's `MAX_FULL_SHEAVES` (ours trade 1:1, so as
/// many full sheaves fit as in SLUB's barn).
pub(crate) const BARN_SHEAVES: usize = 10;

/// Free objects, LIFO; its capacity never changes after it is made.
pub(crate) type Sheaf = KVec<NonNull<u8>>;

fn new_sheaf(cap: usize) -> Result<Sheaf> {
    Ok(KVec::with_capacity(cap, GFP_KERNEL)?)
}

/// Fills `sheaf` up to `cap` objects (never past its capacity) with one
/// `alloc_bulk` call, which puts up to `out.len()` objects in `out` and says
/// how many ([`crate::slab::SlabCache::alloc_bulk`]). The objects land in
/// the sheaf's own spare room: no copy, no per-object push (each branch
/// ends a translated block under TCG, and a refill moves up to 60 objects).
///
/// # Safety
///
/// `alloc_bulk` must write a non-null pointer into each of the first `n`
/// places of `out` before it returns `n` (as the slab's `alloc_bulk`
/// does): those places become objects of the sheaf unchecked.
pub(crate) unsafe fn fill_bulk(
    sheaf: &mut Sheaf,
    cap: usize,
    mut alloc_bulk: impl FnMut(&mut [*mut u8]) -> usize,
) {
    let room = cap.min(sheaf.capacity()).saturating_sub(sheaf.len());
    let spare = sheaf.spare_capacity_mut();
    let room = room.min(spare.len());
    if room == 0 {
        return;
    }
    let at = spare.as_mut_ptr().cast::<*mut u8>();
    // SAFETY: `at..at + room` is the sheaf's spare capacity, owned and not
    // aliased while `sheaf` is borrowed mutably. `MaybeUninit<NonNull<u8>>`
    // has the layout of `*mut u8` (both are `repr(transparent)` over a
    // pointer), so null pointers written there are initialized values of
    // the slice's type before a reference to it is made.
    let out = unsafe {
        core::ptr::write_bytes(at, 0, room);
        core::slice::from_raw_parts_mut(at, room)
    };
    let got = alloc_bulk(out).min(room);
    // SAFETY: `got` is within the spare capacity, and `alloc_bulk` wrote a
    // non-null pointer into each of the first `got` places (the caller's
    // contract): they are initialized `NonNull<u8>`s.
    unsafe { sheaf.inc_len(got) };
}

/// Empties `sheaf` with one `free_bulk` call
/// ([`crate::slab::SlabCache::free_bulk`]) on the sheaf's own objects,
/// which frees what it can and reports the rest; returns how many objects
/// were refused (they stay allocated in their slab, as a refused `kfree`
/// leaves them).
pub(crate) fn drain_bulk(
    sheaf: &mut Sheaf,
    mut free_bulk: impl FnMut(&[*mut u8]) -> core::result::Result<(), BulkFreeError>,
) -> u64 {
    let objs: &[NonNull<u8>] = sheaf;
    // SAFETY: `NonNull<u8>` is `repr(transparent)` over `*const u8`, which
    // has the layout of `*mut u8`; the slice is read only, while `sheaf` is
    // borrowed.
    let objs = unsafe { core::slice::from_raw_parts(objs.as_ptr().cast::<*mut u8>(), objs.len()) };
    let refused = match free_bulk(objs) {
        Ok(()) => 0,
        Err(e) => e.failed as u64,
    };
    sheaf.clear();
    refused
}

/// What a slow path did, for the counters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slow {
    /// Traded a sheaf with the barn.
    Barn,
    /// Went to the slabs (a refill or a flush).
    Slabs,
}

/// One CPU's sheaves of one cache.
pub(crate) struct Sheaves {
    main: Sheaf,
    spare: Sheaf,
    cap: usize,
}

impl Sheaves {
    /// No sheaves yet (capacity 0); see [`Sheaves::reserve`].
    pub(crate) const EMPTY: Self = Sheaves {
        main: KVec::new(),
        spare: KVec::new(),
        cap: 0,
    };

    /// Two empty sheaves of `cap` objects.
    pub(crate) fn new(cap: usize) -> Result<Self> {
        let mut s = Self::EMPTY;
        s.reserve(cap)?;
        Ok(s)
    }

    /// Makes both (empty) sheaves hold `cap` objects.
    pub(crate) fn reserve(&mut self, cap: usize) -> Result {
        self.main.reserve(cap, GFP_KERNEL)?;
        self.spare.reserve(cap, GFP_KERNEL)?;
        self.cap = cap;
        Ok(())
    }

    /// An object from the main sheaf, or from the spare one swapped in.
    #[inline(always)]
    pub(crate) fn alloc(&mut self) -> Option<NonNull<u8>> {
        if let Some(p) = self.main.pop() {
            return Some(p);
        }
        if self.spare.is_empty() {
            return None;
        }
        core::mem::swap(&mut self.main, &mut self.spare);
        self.main.pop()
    }

    /// Puts `p` on the main sheaf, swapping in an empty spare if the main
    /// one is full; gives `p` back if both are full.
    #[inline(always)]
    pub(crate) fn free(&mut self, p: NonNull<u8>) -> core::result::Result<(), NonNull<u8>> {
        if self.main.len() >= self.cap {
            if !self.spare.is_empty() {
                return Err(p);
            }
            core::mem::swap(&mut self.main, &mut self.spare);
        }
        self.main.push_within_capacity(p).map_err(|e| e.0)
    }

    /// Slow alloc, both sheaves empty: a full sheaf from the barn, else
    /// `fill` puts up to the capacity in the main sheaf from the slabs.
    #[cold]
    #[inline(never)]
    pub(crate) fn refill(
        &mut self,
        barn: &SpinLock<Barn>,
        fill: impl FnOnce(&mut Sheaf, usize),
    ) -> (Option<NonNull<u8>>, Slow) {
        if barn.lock().trade(&mut self.main, true) {
            return (self.main.pop(), Slow::Barn);
        }
        fill(&mut self.main, self.cap);
        (self.main.pop(), Slow::Slabs)
    }

    /// Slow free, both sheaves full: the main one goes to the barn for an
    /// empty one, else `flush` gives all its objects back to the slabs.
    /// Then `p` goes on it.
    #[cold]
    #[inline(never)]
    pub(crate) fn make_room(
        &mut self,
        barn: &SpinLock<Barn>,
        p: NonNull<u8>,
        flush: impl FnOnce(&mut Sheaf),
    ) -> (core::result::Result<(), NonNull<u8>>, Slow) {
        let how = if barn.lock().trade(&mut self.main, false) {
            Slow::Barn
        } else {
            flush(&mut self.main);
            Slow::Slabs
        };
        (self.main.push_within_capacity(p).map_err(|e| e.0), how)
    }

    /// Both sheaves, to be emptied by the caller.
    pub(crate) fn both(&mut self) -> [&mut Sheaf; 2] {
        [&mut self.main, &mut self.spare]
    }

    /// Objects held.
    pub(crate) fn len(&self) -> usize {
        self.main.len() + self.spare.len()
    }
}

// SAFETY: the addresses name mirror memory these sheaves own while they are
// on them; any CPU may hand them out or give them back.
unsafe impl Send for Sheaves {}

/// A cache's full and empty sheaves, shared by its CPUs (`struct node_barn`).
pub(crate) struct Barn {
    full: KVec<Sheaf>,
    empty: KVec<Sheaf>,
}

// SAFETY: as for `Sheaves`.
unsafe impl Send for Barn {}

impl Barn {
    /// A barn owning [`BARN_SHEAVES`] empty sheaves of `cap` objects.
    pub(crate) fn new(cap: usize) -> Result<Pin<KBox<SpinLock<Barn>>>> {
        let mut barn = Barn {
            full: KVec::with_capacity(BARN_SHEAVES, GFP_KERNEL)?,
            empty: KVec::with_capacity(BARN_SHEAVES, GFP_KERNEL)?,
        };
        for _ in 0..BARN_SHEAVES {
            barn.empty.push(new_sheaf(cap)?, GFP_KERNEL)?;
        }
        KBox::pin_init(new_spinlock!(barn, "memlab_mirror_barn"), GFP_KERNEL)
    }

    /// Swaps `sheaf` (empty if `want_full`, else full) for one of the other
    /// kind; false, and `sheaf` untouched, if there is none.
    fn trade(&mut self, sheaf: &mut Sheaf, want_full: bool) -> bool {
        let (take, give) = if want_full {
            (&mut self.full, &mut self.empty)
        } else {
            (&mut self.empty, &mut self.full)
        };
        let Some(mut other) = take.pop() else {
            return false;
        };
        core::mem::swap(sheaf, &mut other);
        // Room is certain (the barn owns BARN_SHEAVES in all); should it
        // ever lack, undo the swap rather than drop a sheaf.
        if let Err(e) = give.push_within_capacity(other) {
            let taken = core::mem::replace(sheaf, e.0);
            // Room: `taken` just came out of `take`.
            let _ = take.push_within_capacity(taken);
            return false;
        }
        true
    }

    /// Empties every full sheaf of `barn` with `flush`, which runs without
    /// the barn's lock (it takes the slab's).
    pub(crate) fn flush_all(barn: &SpinLock<Barn>, mut flush: impl FnMut(&mut Sheaf)) {
        loop {
            // The guard is dropped at the end of this statement.
            let full = barn.lock().full.pop();
            let Some(mut sheaf) = full else { return };
            flush(&mut sheaf);
            // Room is certain (it left as a full one); else it is freed.
            let _ = barn.lock().empty.push_within_capacity(sheaf);
        }
    }

    /// Full and empty sheaves held (`nr_full`, `nr_empty`).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.full.len(), self.empty.len())
    }

    /// Objects in full sheaves.
    pub(crate) fn held(&self) -> usize {
        self.full.iter().map(|s| s.len()).sum()
    }
}
