// SPDX-License-Identifier: GPL-2.0

//! The module-wide pin budget: what all open files of `/dev/memlab`
//! together may keep allocated (`max_pinned_total_mb`), on top of each
//! file's own cap (`max_pinned_mb`). Every handle, every running workload
//! and every running exercise holds a [`Charge`] on it, returned when that
//! allocation or run ends, so the total is exact at any time and
//! `/sys/kernel/debug/memlab/pinned` shows it.

use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    sync::Arc,
};

/// Bytes pinned across the module, against a limit.
pub(crate) struct Budget {
    limit: usize,
    used: Atomic<usize>,
}

impl Budget {
    /// A budget of `limit` bytes, none used.
    pub(crate) fn new(limit: usize) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Budget {
                limit,
                used: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// Takes `bytes` from the budget; E2BIG if that would pass the limit.
    pub(crate) fn charge(self: &Arc<Self>, bytes: usize) -> Result<Charge> {
        let mut cur = self.used.load(Relaxed);
        loop {
            let new = cur
                .checked_add(bytes)
                .filter(|&n| n <= self.limit)
                .ok_or(E2BIG)?;
            match self.used.cmpxchg(cur, new, Relaxed) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
        Ok(Charge {
            budget: self.clone(),
            bytes,
        })
    }

    /// The limit, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Relaxed)
    }
}

/// Bytes taken from a [`Budget`]; given back when dropped.
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Relaxed);
    }
}
