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

    /// `MEMLAB_IOC_ALLOC`: returns the new handle.
    pub fn alloc(&self, req: &uapi::MemlabAlloc) -> io::Result<u32> {
        let mut r = *req;
        self.ioctl_raw(uapi::MEMLAB_IOC_ALLOC, &mut r as *mut _ as usize)?;
        Ok(r.handle)
    }

    /// `MEMLAB_IOC_FREE`.
    pub fn free(&self, handle: u32) -> io::Result<()> {
        self.ioctl_raw(uapi::MEMLAB_IOC_FREE, &handle as *const _ as usize)?;
        Ok(())
    }

    /// `MEMLAB_IOC_INSPECT`.
    pub fn inspect(&self, handle: u32) -> io::Result<uapi::MemlabBlockInfo> {
        let mut info = uapi::MemlabBlockInfo {
            handle,
            ..Default::default()
        };
        self.ioctl_raw(uapi::MEMLAB_IOC_INSPECT, &mut info as *mut _ as usize)?;
        Ok(info)
    }

    /// `MEMLAB_IOC_EXERCISE`.
    pub fn exercise(&self, id: u32, reps: u32) -> io::Result<uapi::MemlabExercise> {
        let mut ex = uapi::MemlabExercise {
            id,
            reps,
            ..Default::default()
        };
        self.ioctl_raw(uapi::MEMLAB_IOC_EXERCISE, &mut ex as *mut _ as usize)?;
        Ok(ex)
    }

    /// `MEMLAB_IOC_WORKLOAD`.
    pub fn workload(&self, w: &uapi::MemlabWorkload) -> io::Result<uapi::MemlabWorkload> {
        let mut w = *w;
        self.ioctl_raw(uapi::MEMLAB_IOC_WORKLOAD, &mut w as *mut _ as usize)?;
        Ok(w)
    }

    /// `MEMLAB_IOC_VERSION`.
    pub fn version(&self) -> io::Result<uapi::MemlabVersion> {
        let mut v = uapi::MemlabVersion::default();
        self.ioctl_raw(uapi::MEMLAB_IOC_VERSION, &mut v as *mut _ as usize)?;
        Ok(v)
    }
}
