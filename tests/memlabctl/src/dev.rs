// SPDX-License-Identifier: GPL-2.0

//! A thin, typed wrapper over the `/dev/memlab` ioctls.

pub use memlab_core::uapi;

/// Why the DMA family answers ENODEV on some kernels.
pub const NO_DMA: &str = "no DMA on this kernel (ENODEV: User-Mode Linux selects NO_DMA, so \
memlab registers no DMA device)";

/// Whether `e` is the DMA family's answer on a kernel without a DMA API
/// ([`NO_DMA`]): a skip to report, not a failure.
pub fn is_no_dma(family: u32, e: &std::io::Error) -> bool {
    family == uapi::MEMLAB_FAMILY_DMA && e.raw_os_error() == Some(libc::ENODEV)
}

/// Whether this kernel is User-Mode Linux (`/proc/exitcode` is its own file).
pub fn is_uml() -> bool {
    std::path::Path::new("/proc/exitcode").exists()
}

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

    /// `MEMLAB_IOC_REPLAY` of `steps` on `backend`, describing `zone`;
    /// with `sample_every` > 0 also returns the fragmentation samples.
    pub fn replay(
        &self,
        steps: &[uapi::MemlabReplayStep],
        backend: u32,
        sample_every: u32,
        zone: u32,
    ) -> io::Result<(uapi::MemlabReplay, Vec<uapi::MemlabFragSample>)> {
        let room = steps
            .len()
            .checked_div(sample_every as usize)
            .map_or(0, |k| k + 1);
        let mut samples = vec![uapi::MemlabFragSample::default(); room];
        let mut q = uapi::MemlabReplay {
            steps: steps.as_ptr() as u64,
            steps_len: std::mem::size_of_val(steps) as u64,
            samples: if room == 0 {
                0
            } else {
                samples.as_mut_ptr() as u64
            },
            samples_len: std::mem::size_of_val(samples.as_slice()) as u64,
            backend,
            sample_every,
            zone,
            ..Default::default()
        };
        self.replay_raw(&mut q)?;
        samples.truncate(q.nr_samples as usize);
        Ok((q, samples))
    }

    /// `MEMLAB_IOC_REPLAY` with `q` as given (the tests build bad ones).
    pub fn replay_raw(&self, q: &mut uapi::MemlabReplay) -> io::Result<()> {
        self.ioctl_raw(uapi::MEMLAB_IOC_REPLAY, q as *mut _ as usize)?;
        Ok(())
    }

    /// `MEMLAB_IOC_SESSION` with `q` as given (the tests build bad ones);
    /// the reply is written into `q`.
    pub fn session_raw(&self, q: &mut uapi::MemlabSession) -> io::Result<()> {
        self.ioctl_raw(uapi::MEMLAB_IOC_SESSION, q as *mut _ as usize)?;
        Ok(())
    }

    /// Opens a replay session on `backend` with `ids` id slots and at most
    /// `max_bytes` live; the reply names it (`session`).
    pub fn session_open(
        &self,
        backend: u32,
        ids: u32,
        max_bytes: u64,
    ) -> io::Result<uapi::MemlabSession> {
        let mut q = uapi::MemlabSession {
            op: uapi::MEMLAB_SESSION_OPEN,
            backend,
            ids,
            max_bytes,
            ..Default::default()
        };
        self.session_raw(&mut q)?;
        Ok(q)
    }

    /// Runs `steps` in session `session`; the reply has its counts so far.
    pub fn session_run(
        &self,
        session: u32,
        steps: &[uapi::MemlabReplayStep],
    ) -> io::Result<uapi::MemlabSession> {
        let mut q = uapi::MemlabSession {
            op: uapi::MEMLAB_SESSION_RUN,
            session,
            steps: steps.as_ptr() as u64,
            steps_len: std::mem::size_of_val(steps) as u64,
            ..Default::default()
        };
        self.session_raw(&mut q)?;
        Ok(q)
    }

    /// Closes session `session`, freeing all it holds; the reply has its
    /// final counts.
    pub fn session_close(&self, session: u32) -> io::Result<uapi::MemlabSession> {
        let mut q = uapi::MemlabSession {
            op: uapi::MEMLAB_SESSION_CLOSE,
            session,
            ..Default::default()
        };
        self.session_raw(&mut q)?;
        Ok(q)
    }

    /// `MEMLAB_IOC_VERSION`.
    pub fn version(&self) -> io::Result<uapi::MemlabVersion> {
        let mut v = uapi::MemlabVersion::default();
        self.ioctl_raw(uapi::MEMLAB_IOC_VERSION, &mut v as *mut _ as usize)?;
        Ok(v)
    }
}
