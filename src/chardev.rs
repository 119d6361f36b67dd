// SPDX-License-Identifier: GPL-2.0

//! `/dev/memlab`: the misc device user space drives memlab through.
//!
//! Only callers with CAP_SYS_ADMIN may open it (EPERM otherwise): it lets a
//! caller pin kernel memory and run allocator exercises. devtmpfs creates the
//! node with mode 0600. Every ioctl argument is treated as hostile.

use crate::uapi;
use kernel::{
    bindings,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

// SAFETY: `MemlabVersion` is `#[repr(C)]` with four `u32` fields and no
// padding (size asserted in uapi.rs), so every byte is initialised.
unsafe impl AsBytes for uapi::MemlabVersion {}

/// Whether the current task has CAP_SYS_ADMIN in the initial user namespace.
fn current_is_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials; any
    // capability number below CAP_LAST_CAP is valid.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// The registered misc device; deregistered when dropped.
#[pin_data]
pub(crate) struct Registration {
    #[pin]
    misc: MiscDeviceRegistration<MemlabFile>,
}

impl Registration {
    /// Registers `/dev/memlab`.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"memlab" }),
        })
    }
}

/// State of one open file of `/dev/memlab`.
#[pin_data]
pub(crate) struct MemlabFile {}

#[vtable]
impl MiscDevice for MemlabFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        if !current_is_admin() {
            return Err(EPERM);
        }
        KBox::try_pin_init(try_pin_init!(MemlabFile {}), GFP_KERNEL)
    }

    fn ioctl(_me: Pin<&MemlabFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
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
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
