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
pub const MEMLAB_ABI_VERSION: u32 = 1;

/// The ioctl "type" byte of every memlab command.
pub const MEMLAB_IOC_MAGIC: u32 = 0xB7;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
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
