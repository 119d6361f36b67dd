// SPDX-License-Identifier: GPL-2.0

//! `/dev/memlab`: the misc device user space drives memlab through.
//!
//! Only callers with CAP_SYS_ADMIN may open it (EPERM otherwise): it lets a
//! caller pin kernel memory and run allocator exercises. devtmpfs creates the
//! node with mode 0600. Every ioctl argument is hostile until validated:
//!
//! - unknown command: ENOTTY; bad pointer: EFAULT;
//! - a malformed ALLOC (every rule is in [`AllocRequest::try_from`]: unknown
//!   family, backend or GFP selector, zero size, order above
//!   MAX_PAGE_ORDER, a bad alignment, a slab family with GFP_DMA32 or
//!   GFP_HIGHUSER), an unknown exercise or handle: EINVAL;
//! - a malformed WORKLOAD or REPLAY header: every rule is in
//!   [`WorkloadRequest::try_from`] and `request::replay::ReplayRequest`, the
//!   steps of a replay in `request::replay::plan` (EINVAL, E2BIG);
//! - a request that would take the file past `max_pinned_mb`, all files
//!   together past `max_pinned_total_mb` (`crate::budget`), or the file past
//!   [`MAX_HANDLES`] live handles: E2BIG;
//! - the allocator itself failing: ENOMEM.
//!
//! Allocations belong to the open file: closing it frees them all.

use crate::backend::{Allocation, Backend};
use crate::budget::{Budget, Charge};
use crate::mirror::Mirror;
use crate::platform::miscdev::MiscRegistration;
use crate::real::Real;
use crate::request::{
    check_pin_cap, AllocRequest, BackendId, Mode, Refusal, RequestError, WorkloadRequest,
};
use crate::session::{Caps, Sessions};
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
    misc: MiscRegistration<MemlabFile>,
    real: Arc<Real>,
    mirror: Arc<Mirror>,
    max_pinned: usize,
    budget: Arc<Budget>,
}

impl Registration {
    /// Registers `/dev/memlab`; each open file may pin `max_pinned` bytes.
    pub(crate) fn new(
        real: Arc<Real>,
        mirror: Arc<Mirror>,
        max_pinned: usize,
        budget: Arc<Budget>,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            misc <- MiscRegistration::register(MiscDeviceOptions { name: c"memlab" }, module),
            real,
            mirror,
            max_pinned,
            budget,
        })
    }

    fn from_misc(misc: &MiscDeviceRegistration<MemlabFile>) -> &Registration {
        // SAFETY: `/dev/memlab` is only registered through a
        // `MiscRegistration<MemlabFile>`, and `misc` is what open is handed.
        let reg: *const MiscRegistration<MemlabFile> = unsafe { MiscRegistration::from_open(misc) };
        // SAFETY: by the type invariant that registration is the `misc`
        // field of a live `Registration`, which outlives every open file
        // (each holds a module reference).
        unsafe { &*kernel::container_of!(reg, Registration, misc) }
    }
}

/// The live allocations of one open file.
struct Handles {
    /// Slot `i` holds handle `i + 1`: the allocation and its charge on
    /// the module-wide budget (given back when the slot is emptied).
    slots: KVec<Option<(Allocation, Charge)>>,
    live: usize,
    pinned: usize,
}

/// Bytes a run holds against its file's cap and the budget; given back
/// when dropped.
struct Reserved<'a> {
    file: &'a MemlabFile,
    bytes: usize,
    _charge: Charge,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.file.handles.lock().pinned -= self.bytes;
    }
}

/// State of one open file of `/dev/memlab`.
#[pin_data]
pub(crate) struct MemlabFile {
    real: Arc<Real>,
    mirror: Arc<Mirror>,
    max_pinned: usize,
    budget: Arc<Budget>,
    #[pin]
    handles: Mutex<Handles>,
    /// Objects a WORKLOAD KEEP run left for a FREE_KEPT run (cross-CPU
    /// free). Taken before `handles`, never under it.
    #[pin]
    kept: Mutex<Option<crate::workload::Kept>>,
    /// Replay sessions (`crate::session`). Taken before `handles`, never
    /// under it, and never together with `kept`.
    #[pin]
    sessions: Mutex<Sessions>,
}

impl Caps for MemlabFile {
    fn take(&self, bytes: usize) -> Result<Charge> {
        self.charge_pinned(bytes)
    }

    fn give(&self, bytes: usize) {
        self.handles.lock().pinned -= bytes;
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        match e {
            RequestError::Invalid => EINVAL,
            RequestError::TooBig => E2BIG,
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        r.error().into()
    }
}

impl MemlabFile {
    /// The backend `id` names.
    fn backend(&self, id: BackendId) -> &dyn Backend {
        match id {
            BackendId::Real => &*self.real,
            BackendId::Mirror => &self.mirror,
        }
    }

    /// ALLOC: allocates what `req` names and files it under a new handle,
    /// which `reply` writes back to user space. The file's lock is held
    /// until the reply is written, so if writing fails, the allocation just
    /// made is the one taken back out: no other thread can have freed its
    /// handle and reused the number in between.
    fn alloc(&self, req: &uapi::MemlabAlloc, reply: impl FnOnce(u32) -> Result) -> Result {
        let r = AllocRequest::try_from(req)?;
        let mut h = self.handles.lock();
        check_pin_cap(r.bytes() as u64, h.pinned as u64, self.max_pinned as u64)?;
        if h.live >= MAX_HANDLES {
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
        let handle = u32::try_from(slot + 1).map_err(|_| EINVAL)?;
        let a = self.backend(r.backend).alloc(&r)?;
        // The check above used the requested size; what is held can be more
        // (ksize, whole pages, a power-of-two block). Charge what is held,
        // and refuse it if that is past the cap, freeing it outside the lock.
        let pinned = a.pinned_bytes();
        let charge = match self.budget.charge(pinned) {
            Ok(c) if pinned <= self.max_pinned.saturating_sub(h.pinned) => c,
            _ => {
                drop(h);
                drop(a);
                return Err(E2BIG);
            }
        };
        if let Err(e) = reply(handle) {
            // The caller cannot learn the handle: do not keep it pinned.
            drop(h);
            drop(a);
            return Err(e);
        }
        h.pinned += pinned;
        h.live += 1;
        h.slots[slot] = Some((a, charge));
        Ok(())
    }

    /// Charges `need` bytes to this file and to the module-wide budget;
    /// the caller takes them off `pinned` again when done (see [`Reserved`]
    /// for a run that does so on drop). E2BIG past either.
    fn charge_pinned(&self, need: usize) -> Result<Charge> {
        let mut h = self.handles.lock();
        check_pin_cap(need as u64, h.pinned as u64, self.max_pinned as u64)?;
        let c = self.budget.charge(need)?;
        h.pinned += need;
        Ok(c)
    }

    /// WORKLOAD with KEEP: times the allocations of `req` and keeps the
    /// objects, charged what `req` holds, for FREE_KEPT; the figures go to
    /// `q`. EBUSY if some are kept already.
    fn keep(&self, req: &WorkloadRequest, q: &mut uapi::MemlabWorkload) -> Result {
        let mut kept = self.kept.lock();
        if kept.is_some() {
            return Err(EBUSY);
        }
        let need = req.bytes;
        let charge = self.charge_pinned(need)?;
        match crate::workload::keep_workload(&self.mirror, req, q) {
            Ok(objs) => {
                *kept = Some(crate::workload::Kept::new(objs, req, need, charge));
                Ok(())
            }
            Err(e) => {
                drop(charge);
                self.handles.lock().pinned -= need;
                Err(e)
            }
        }
    }

    /// WORKLOAD with FREE_KEPT: frees the kept objects, timed, on this
    /// CPU; the figures go to `q`. EINVAL if none are kept or `req` does
    /// not name them.
    fn free_kept(&self, req: &WorkloadRequest, q: &mut uapi::MemlabWorkload) -> Result {
        let mut kept = {
            let mut k = self.kept.lock();
            match k.as_ref() {
                Some(x) if x.matches(req) => k.take(),
                _ => None,
            }
        }
        .ok_or(EINVAL)?;
        let r = kept.free(req, q);
        self.handles.lock().pinned -= kept.bytes;
        drop(kept);
        r
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
            let a = h.slots[i].take();
            if let Some((a, _)) = &a {
                h.pinned -= a.pinned_bytes();
                h.live -= 1;
            }
            a
        };
        Ok(())
    }

    /// Reserves `bytes` against this file's cap and the module-wide budget
    /// for a run (a workload, a replay) that frees all it holds before it
    /// returns, so handles allocated meanwhile on this file still see the
    /// cap. E2BIG past either.
    fn reserve(&self, bytes: usize) -> Result<Reserved<'_>> {
        let charge = self.charge_pinned(bytes)?;
        Ok(Reserved {
            file: self,
            bytes,
            _charge: charge,
        })
    }

    fn inspect(&self, handle: u32) -> Result<uapi::MemlabBlockInfo> {
        let h = self.handles.lock();
        let i = Self::slot_of(&h, handle)?;
        let (a, _) = h.slots[i].as_ref().ok_or(EINVAL)?;
        Ok(a.facts().info(handle))
    }
}

/// The commands, one method each; `user` is the ioctl's argument.
impl MemlabFile {
    /// VERSION: the ABI version and the sizes user space must agree on.
    fn version_cmd(&self, user: UserPtr) -> Result {
        let reply = uapi::MemlabVersion {
            abi_version: uapi::MEMLAB_ABI_VERSION,
            struct_size: core::mem::size_of::<uapi::MemlabVersion>() as u32,
            max_page_order: bindings::MAX_PAGE_ORDER,
            page_size: kernel::page::PAGE_SIZE as u32,
        };
        UserSlice::new(user, core::mem::size_of::<uapi::MemlabVersion>())
            .writer()
            .write(&reply)
    }

    /// ALLOC: see [`MemlabFile::alloc`].
    fn alloc_cmd(&self, user: UserPtr) -> Result {
        let (mut r, mut w) =
            UserSlice::new(user, core::mem::size_of::<uapi::MemlabAlloc>()).reader_writer();
        let req: uapi::MemlabAlloc = r.read()?;
        self.alloc(&req, |handle| w.write(&uapi::MemlabAlloc { handle, ..req }))
    }

    /// FREE: frees the handle user space names.
    fn free_cmd(&self, user: UserPtr) -> Result {
        let handle: u32 = UserSlice::new(user, 4).reader().read()?;
        self.free(handle)
    }

    /// INSPECT: the facts of the handle user space names.
    fn inspect_cmd(&self, user: UserPtr) -> Result {
        let size = core::mem::size_of::<uapi::MemlabBlockInfo>();
        let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
        let q: uapi::MemlabBlockInfo = r.read()?;
        w.write(&self.inspect(q.handle)?)
    }

    /// EXERCISE: one exercise of the real allocators, `reps` times.
    fn exercise_cmd(&self, user: UserPtr) -> Result {
        let size = core::mem::size_of::<uapi::MemlabExercise>();
        let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
        let q: uapi::MemlabExercise = r.read()?;
        if q.id >= uapi::MEMLAB_NR_EXERCISES || q.reps > 1000 {
            return Err(EINVAL);
        }
        // An exercise frees what it allocates before it returns, but holds
        // up to `EXERCISE_PEAK` meanwhile: charge that to the module-wide
        // budget for the run (not to this file, which keeps nothing).
        let _charge = self.budget.charge(crate::real::EXERCISE_PEAK)?;
        w.write(&self.real.exercise(q.id, q.reps)?)
    }

    /// WORKLOAD: a timed or THROUGHPUT run, a KEEP or a FREE_KEPT, as the
    /// [`WorkloadRequest`] decoded from user space says.
    fn workload_cmd(&self, user: UserPtr) -> Result {
        let size = core::mem::size_of::<uapi::MemlabWorkload>();
        let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
        let mut q: uapi::MemlabWorkload = r.read()?;
        let req = WorkloadRequest::try_from(&q)?;
        match req.mode {
            Mode::FreeKept => self.free_kept(&req, &mut q)?,
            Mode::Keep => self.keep(&req, &mut q)?,
            Mode::Timed | Mode::Throughput => {
                // Reserve what the workload may hold for the whole run, so
                // handles allocated meanwhile on this file still see the cap.
                let _reserved = self.reserve(req.bytes)?;
                crate::workload::run_workload(&self.mirror, &req, &mut q)?;
            }
        }
        w.write(&q)
    }

    /// SESSION: see `crate::session`.
    fn session_cmd(&self, user: UserPtr) -> Result {
        let size = core::mem::size_of::<uapi::MemlabSession>();
        let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
        let mut q: uapi::MemlabSession = r.read()?;
        self.sessions.lock().cmd(&self.mirror, &mut q, self)?;
        w.write(&q)
    }

    /// REPLAY: see `crate::replay`.
    fn replay_cmd(&self, user: UserPtr) -> Result {
        let size = core::mem::size_of::<uapi::MemlabReplay>();
        let (mut r, mut w) = UserSlice::new(user, size).reader_writer();
        let mut q: uapi::MemlabReplay = r.read()?;
        crate::replay::replay(&self.mirror, &mut q, |bytes| self.reserve(bytes))?;
        w.write(&q)
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
                budget: reg.budget.clone(),
                handles <- new_mutex!(Handles { slots: KVec::new(), live: 0, pinned: 0 }),
                kept <- new_mutex!(None),
                sessions <- new_mutex!(Sessions::default()),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&MemlabFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            uapi::MEMLAB_IOC_VERSION => me.version_cmd(user)?,
            uapi::MEMLAB_IOC_ALLOC => me.alloc_cmd(user)?,
            uapi::MEMLAB_IOC_FREE => me.free_cmd(user)?,
            uapi::MEMLAB_IOC_INSPECT => me.inspect_cmd(user)?,
            uapi::MEMLAB_IOC_EXERCISE => me.exercise_cmd(user)?,
            uapi::MEMLAB_IOC_WORKLOAD => me.workload_cmd(user)?,
            uapi::MEMLAB_IOC_REPLAY => me.replay_cmd(user)?,
            uapi::MEMLAB_IOC_SESSION => me.session_cmd(user)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}
