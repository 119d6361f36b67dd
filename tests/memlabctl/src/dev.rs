// SPDX-License-Identifier: GPL-2.0

//! A thin, typed wrapper over the `/dev/memlab` ioctls.

#[path = "../../../src/uapi.rs"]
#[allow(dead_code)]
pub mod uapi;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// Path of memlab's misc device.
pub const DEV_PATH: &str = "/dev/memlab";
/// Path of memlab's debugfs directory.
pub const DEBUGFS: &str = "/sys/kernel/debug/memlab";

/// An open `/dev/memlab`.
pub struct Memlab {
    file: File,
}

impl Memlab {
    /// Opens the device read-write. The error keeps its raw errno, which
    /// the tests compare.
    pub fn open() -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(DEV_PATH)?;
        Ok(Memlab { file })
    }

    /// Issues `cmd` with `arg` as the raw ioctl argument.
    pub fn ioctl_raw(&self, cmd: u32, arg: usize) -> io::Result<i32> {
        // SAFETY: the kernel validates `arg` for `cmd`; a bad pointer yields
        // EFAULT, not memory corruption in this process.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    /// `MEMLAB_IOC_VERSION`.
    pub fn version(&self) -> io::Result<uapi::MemlabVersion> {
        let mut v = uapi::MemlabVersion::default();
        self.ioctl_raw(uapi::MEMLAB_IOC_VERSION, &mut v as *mut _ as usize)?;
        Ok(v)
    }
}
