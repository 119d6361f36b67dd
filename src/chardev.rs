// SPDX-License-Identifier: GPL-2.0

//! `/dev/memlab`: the misc device user space drives memlab through.
//!
//! Only callers with CAP_SYS_ADMIN may open it (EPERM otherwise): it lets a
//! caller pin kernel memory and run allocator exercises. devtmpfs creates the
//! node with mode 0600. Every ioctl argument is hostile until validated:
//!
//! - unknown command: ENOTTY; bad pointer: EFAULT;
//! - unknown family, backend, GFP selector or exercise, zero
//!   size, order above MAX_PAGE_ORDER, alignment not a power of two, a slab
//!   family with GFP_DMA32 or GFP_HIGHUSER, unknown handle: EINVAL;
//! - a request that would take the file past `max_pinned_mb`, or past
//!   [`MAX_HANDLES`] live handles: E2BIG;
//! - the allocator itself failing: ENOMEM.
//!
//! Allocations belong to the open file: closing it frees them all.

use crate::mirror::{Mirror, MirrorBlock};
use crate::real::{Real, RealBlock};
use crate::uapi;
use kernel::{
    bindings,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// Most live handles one open file may hold.
pub(crate) const MAX_HANDLES: usize = 1024;

// SAFETY: `#[repr(C)]` structs of `u32`/`u64` fields without padding (sizes
// asserted in uapi.rs): every byte is initialised and any bit pattern valid.
unsafe impl AsBytes for uapi::MemlabVersion {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::MemlabAlloc {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::MemlabAlloc {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::MemlabBlockInfo {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::MemlabBlockInfo {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::MemlabExercise {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::MemlabExercise {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::MemlabWorkload {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::MemlabWorkload {}

/// Whether the current task has CAP_SYS_ADMIN in the initial user namespace.
fn current_is_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials, and
    // CAP_SYS_ADMIN is a valid capability number.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// The registered misc device and what its files share; deregistered when
/// dropped.
///
/// # Invariants
///
/// `misc` is only ever registered as a field of a `Registration`, which is
/// what lets [`MemlabFile::open`] reach `real` from the registration.
#[pin_data]
pub(crate) struct Registration {
    #[pin]
    misc: MiscDeviceRegistration<MemlabFile>,
    real: Arc<Real>,
    mirror: Arc<Mirror>,
    max_pinned: usize,
}

impl Registration {
    /// Registers `/dev/memlab`; each open file may pin `max_pinned` bytes.
    pub(crate) fn new(
        real: Arc<Real>,
        mirror: Arc<Mirror>,
        max_pinned: usize,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"memlab" }),
            real,
            mirror,
            max_pinned,
        })
    }

    fn from_misc(misc: &MiscDeviceRegistration<MemlabFile>) -> &Registration {
        let ptr: *const MiscDeviceRegistration<MemlabFile> = misc;
        // SAFETY: by the type invariant `misc` is the `misc` field of a live
        // `Registration`, which outlives every call into the file operations.
        unsafe { &*kernel::container_of!(ptr, Registration, misc) }
    }
}

/// A live allocation from either backend; dropping it frees it.
enum Block {
    Real(RealBlock),
    Mirror(MirrorBlock),
}

impl Block {
    fn info(&self) -> uapi::MemlabBlockInfo {
        match self {
            Block::Real(b) => b.info(),
            Block::Mirror(b) => b.info(),
        }
    }

    fn pinned_bytes(&self) -> usize {
        match self {
            Block::Real(b) => b.pinned_bytes(),
            Block::Mirror(b) => b.pinned_bytes(),
        }
    }
}

/// The live allocations of one open file.
struct Handles {
    /// Slot `i` holds handle `i + 1`.
    slots: KVec<Option<Block>>,
    live: usize,
    pinned: usize,
}

/// State of one open file of `/dev/memlab`.
#[pin_data]
pub(crate) struct MemlabFile {
    real: Arc<Real>,
    mirror: Arc<Mirror>,
    max_pinned: usize,
    #[pin]
    handles: Mutex<Handles>,
}

/// Bytes a request will pin, for the cap check before allocating.
fn request_bytes(req: &uapi::MemlabAlloc) -> Result<usize> {
    let bytes = if req.family == uapi::MEMLAB_FAMILY_PAGES {
        if req.order > bindings::MAX_PAGE_ORDER {
            return Err(EINVAL);
        }
        kernel::page::PAGE_SIZE << req.order
    } else {
        if req.size == 0 {
            return Err(EINVAL);
        }
        usize::try_from(req.size).map_err(|_| E2BIG)?
    };
    Ok(bytes)
}

/// Checks everything about `req` that does not depend on the allocator.
fn validate(req: &uapi::MemlabAlloc) -> Result {
    if req.family >= uapi::MEMLAB_NR_FAMILIES
        || req.backend > uapi::MEMLAB_BACKEND_MIRROR
        || req.handle != 0
    {
        return Err(EINVAL);
    }
    if req.gfp & !(0xff | uapi::MEMLAB_GFP_ZERO) != 0 || req.gfp & 0xff >= uapi::MEMLAB_NR_GFP {
        return Err(EINVAL);
    }
    if req.align != 0
        && (!req.align.is_power_of_two() || req.family != uapi::MEMLAB_FAMILY_KMEM_CACHE)
    {
        return Err(EINVAL);
    }
    if req.family != uapi::MEMLAB_FAMILY_PAGES && req.order != 0 {
        return Err(EINVAL);
    }
    // The kernel's GFP_SLAB_BUG_MASK: slab allocations with __GFP_DMA32 or
    // __GFP_HIGHMEM are bugs it warns about; refuse them on both backends.
    if matches!(
        req.family,
        uapi::MEMLAB_FAMILY_KMALLOC | uapi::MEMLAB_FAMILY_KMEM_CACHE
    ) && matches!(
        req.gfp & 0xff,
        uapi::MEMLAB_GFP_DMA32 | uapi::MEMLAB_GFP_HIGHUSER
    ) {
        return Err(EINVAL);
    }
    Ok(())
}

impl MemlabFile {
    fn alloc(&self, req: &mut uapi::MemlabAlloc) -> Result {
        validate(req)?;
        let bytes = request_bytes(req)?;
        let mut h = self.handles.lock();
        if bytes > self.max_pinned.saturating_sub(h.pinned) || h.live >= MAX_HANDLES {
            return Err(E2BIG);
        }
        // A free slot, or room for one more, before allocating: nothing to
        // undo if the table cannot grow.
        let slot = match h.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                h.slots.push(None, GFP_KERNEL)?;
                h.slots.len() - 1
            }
        };
        let block = if req.backend == uapi::MEMLAB_BACKEND_MIRROR {
            Block::Mirror(self.mirror.alloc(req, &self.real)?)
        } else {
            Block::Real(self.real.alloc(req)?)
        };
        // The check above used the requested size; what is held can be more
        // (ksize, whole pages, a power-of-two block). Charge what is held,
        // and refuse it if that is past the cap, freeing it outside the lock.
        if block.pinned_bytes() > self.max_pinned.saturating_sub(h.pinned) {
            drop(h);
            drop(block);
            return Err(E2BIG);
        }
        h.pinned += block.pinned_bytes();
        h.live += 1;
        h.slots[slot] = Some(block);
        req.handle = u32::try_from(slot + 1).map_err(|_| EINVAL)?;
        Ok(())
    }

    fn slot_of(h: &Handles, handle: u32) -> Result<usize> {
        let i = (handle as usize).checked_sub(1).ok_or(EINVAL)?;
        match h.slots.get(i) {
            Some(Some(_)) => Ok(i),
            _ => Err(EINVAL),
        }
    }

    fn free(&self, handle: u32) -> Result {
        // The block is freed when `_block` goes out of scope, after the
        // guard: outside the lock, since nothing else needs it there.
        let _block = {
            let mut h = self.handles.lock();
            let i = Self::slot_of(&h, handle)?;
            let block = h.slots[i].take();
            if let Some(b) = &block {
                h.pinned -= b.pinned_bytes();
                h.live -= 1;
            }
            block
        };
        Ok(())
    }

    fn inspect(&self, handle: u32) -> Result<uapi::MemlabBlockInfo> {
        let h = self.handles.lock();
        let i = Self::slot_of(&h, handle)?;
        let mut info = h.slots[i].as_ref().map(Block::info).ok_or(EINVAL)?;
        info.handle = handle;
        Ok(info)
    }
}

#[vtable]
impl MiscDevice for MemlabFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        if !current_is_admin() {
            return Err(EPERM);
        }
        let reg = Registration::from_misc(misc);
        KBox::try_pin_init(
            try_pin_init!(MemlabFile {
                real: reg.real.clone(),
                mirror: reg.mirror.clone(),
                max_pinned: reg.max_pinned,
                handles <- new_mutex!(Handles { slots: KVec::new(), live: 0, pinned: 0 }),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&MemlabFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            uapi::MEMLAB_IOC_VERSION => {
                let reply = uapi::MemlabVersion {
                    abi_version: uapi::MEMLAB_ABI_VERSION,
                    struct_size: core::mem::size_of::<uapi::MemlabVersion>() as u32,
                    max_page_order: bindings::MAX_PAGE_ORDER,
                    page_size: kernel::page::PAGE_SIZE as u32,
                };
                UserSlice::new(user, core::mem::size_of::<uapi::MemlabVersion>())
                    .writer()
                    .write(&reply)?;
            }
            uapi::MEMLAB_IOC_ALLOC => {
                let (mut r, mut w) =
                    UserSlice::new(user, core::mem::size_of::<uapi::MemlabAlloc>()).reader_writer();
                let mut req: uapi::MemlabAlloc = r.read()?;
                me.alloc(&mut req)?;
                if let Err(e) = w.write(&req) {
                    // The caller cannot learn the handle: do not leave it pinned.
                    let _ = me.free(req.handle);
                    return Err(e);
                }
            }
            uapi::MEMLAB_IOC_FREE => {
                let handle: u32 = UserSlice::new(user, 4).reader().read()?;
                me.free(handle)?;
            }
            uapi::MEMLAB_IOC_INSPECT => {
                let size = core::mem::size_of::<uapi::MemlabBlockInfo>();
                let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
                let q: uapi::MemlabBlockInfo = r.read()?;
                w.write(&me.inspect(q.handle)?)?;
            }
            uapi::MEMLAB_IOC_EXERCISE => {
                let size = core::mem::size_of::<uapi::MemlabExercise>();
                let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
                let q: uapi::MemlabExercise = r.read()?;
                if q.id >= uapi::MEMLAB_NR_EXERCISES || q.reps > 1000 {
                    return Err(EINVAL);
                }
                w.write(&me.real.exercise(q.id, q.reps)?)?;
            }
            uapi::MEMLAB_IOC_WORKLOAD => {
                let size = core::mem::size_of::<uapi::MemlabWorkload>();
                let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
                let mut q: uapi::MemlabWorkload = r.read()?;
                // Outputs must come in zeroed: they are not inputs.
                if q.ops != 0 || q.failed != 0 || q.median_ns != 0 || q.p99_ns != 0 {
                    return Err(EINVAL);
                }
                // Reserve what the workload may hold for the whole run, so
                // handles allocated meanwhile on this file still see the cap.
                let need = crate::workload::charge(&q)?;
                {
                    let mut h = me.handles.lock();
                    if need > me.max_pinned.saturating_sub(h.pinned) {
                        return Err(E2BIG);
                    }
                    h.pinned += need;
                }
                let r = crate::workload::run_workload(&me.mirror, &mut q);
                me.handles.lock().pinned -= need;
                r?;
                w.write(&q)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}
