// SPDX-License-Identifier: GPL-2.0

//! Thin system-call wrappers: raw ioctls that keep their errno, the
//! bad-pointer arena, shared memory across fork, delete_module, the kernel
//! log.

use std::ffi::CStr;

/// Path of memlab's misc device.
pub const DEV: &CStr = c"/dev/memlab";
/// The module's name for delete_module.
pub const MODULE: &CStr = c"rust_memlab";

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Opens `/dev/memlab` read-write: the fd, or the errno.
pub fn open_dev() -> Result<i32, i32> {
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(DEV.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd)
    }
}

pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd`.
    unsafe { libc::close(fd) };
}

/// One ioctl: 0 on success, else the errno. `arg` may be any address: the
/// kernel must answer a bad one with EFAULT, never touch memory it should not.
pub fn ioctl(fd: i32, cmd: u32, arg: usize) -> i32 {
    // SAFETY: the argument is only ever read or written by the kernel,
    // which validates it; the arena's read-only and unmapped pages fault in
    // the kernel's user-copy routines, not in this process.
    let rc = unsafe { libc::ioctl(fd, cmd as _, arg) };
    if rc < 0 {
        errno()
    } else {
        0
    }
}

/// `delete_module(MODULE, O_NONBLOCK)`: 0 or the errno.
pub fn delete_module() -> i32 {
    // SAFETY: a valid NUL-terminated name; flags as rmmod passes them.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, MODULE.as_ptr(), libc::O_NONBLOCK) };
    if rc < 0 {
        errno()
    } else {
        0
    }
}

/// CLOCK_MONOTONIC in ms: one clock for every process of the run.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The kernel log buffer (syslog(SYSLOG_ACTION_READ_ALL)).
pub fn kernel_log() -> Result<String, String> {
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as i32) };
    if n < 0 {
        return Err(format!(
            "reading the kernel log (syslog READ_ALL): {}",
            errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        ));
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// An anonymous `MAP_SHARED` mapping of a zeroed `T`, shared with every
/// child forked afterwards. Never unmapped: it lives as long as the process.
pub fn shared<T>() -> &'static T {
    let len = std::mem::size_of::<T>();
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of the shared counters failed");
    // SAFETY: zeroed memory is a valid `T` for the all-atomic structs this
    // is used with; the mapping is never unmapped.
    unsafe { &*(p as *const T) }
}

pub const PAGE: usize = 4096;

/// Four pages at a fixed, out-of-the-way address, so the hole is never
/// reused by a later mmap of this process (top-down mmap fills gaps near
/// the mmap base first):
///
/// ```text
/// ro:   PROT_READ, prefilled with valid requests (the kernel must EFAULT
///       writing the reply, and must drop what it allocated)
/// rw:   read-write; its first bytes finish a struct that starts in `ro`
/// hole: munmapped
/// tail: read-write, so the hole is a hole between two mappings
/// ```
pub struct Arena {
    pub ro: usize,
    pub rw: usize,
    pub hole: usize,
}

impl Arena {
    /// Maps the arena; `fill(ro_page, rw_page)` writes the templates before
    /// the first page becomes read-only.
    pub fn new(fill: impl FnOnce(&mut [u8], &mut [u8])) -> Arena {
        let len = 4 * PAGE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let hint = 0x2000_0000_0000usize as *mut libc::c_void;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let mut p =
            unsafe { libc::mmap(hint, len, prot, flags | libc::MAP_FIXED_NOREPLACE, -1, 0) };
        if p == libc::MAP_FAILED {
            // SAFETY: a fresh anonymous mapping anywhere.
            p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        }
        assert!(p != libc::MAP_FAILED, "mmap of the arena failed");
        let base = p as usize;
        // SAFETY: both pages are mapped read-write, distinct, and ours.
        let (ro, rw) = unsafe {
            (
                std::slice::from_raw_parts_mut(base as *mut u8, PAGE),
                std::slice::from_raw_parts_mut((base + PAGE) as *mut u8, PAGE),
            )
        };
        fill(ro, rw);
        // SAFETY: page-aligned ranges inside the mapping made above; nothing
        // holds a reference into them afterwards but raw addresses.
        unsafe {
            assert_eq!(libc::mprotect(base as *mut _, PAGE, libc::PROT_READ), 0);
            assert_eq!(libc::munmap((base + 2 * PAGE) as *mut _, PAGE), 0);
        }
        Arena {
            ro: base,
            rw: base + PAGE,
            hole: base + 2 * PAGE,
        }
    }

    /// Copies `bytes` to `addr`, which must lie in the read-write page.
    pub fn write(&self, addr: usize, bytes: &[u8]) {
        assert!(addr >= self.rw && addr + bytes.len() <= self.hole);
        // SAFETY: inside the read-write page (checked); other threads may
        // write the same bytes at once, which only garbles a request.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
    }
}

/// The bytes of a `#[repr(C)]`, padding-free uapi struct.
pub fn bytes_of<T: Copy>(t: &T) -> &[u8] {
    // SAFETY: the uapi structs have no padding (sizes asserted in uapi.rs),
    // so every byte is initialised.
    unsafe { std::slice::from_raw_parts((t as *const T).cast(), std::mem::size_of::<T>()) }
}

/// Errno names for the report.
pub fn errno_name(e: i32) -> String {
    match e {
        0 => "ok".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::E2BIG => "E2BIG".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::ENOTTY => "ENOTTY".into(),
        libc::ENODEV => "ENODEV".into(),
        libc::EBUSY => "EBUSY".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EPERM => "EPERM".into(),
        libc::EBADF => "EBADF".into(),
        libc::EINTR => "EINTR".into(),
        libc::ENOENT => "ENOENT".into(),
        e => format!("errno{e}"),
    }
}
