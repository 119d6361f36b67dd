// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/memlab/`: the read-only views of memlab's state.
//!
//! - `version`: `memlab ABI <n>`;
//! - `pinned`: the caps and what all open files and running exercises hold
//!   now, `name value` (bytes);
//! - `real/report`: the last run of each real-allocator exercise, one table
//!   per family with buddyinfo before and after;
//! - `real/report.json`: the same as one JSON object;
//! - `mirror/buddyinfo`, `mirror/slabinfo`: the mirror's free lists and
//!   caches in the exact layouts of /proc/buddyinfo and /proc/slabinfo;
//! - `mirror/slabstat`: the same caches with their /sys/kernel/slab
//!   attributes and sheaf state, one line each under a header naming the
//!   columns (`src/core/render.rs`);
//! - `mirror/extfrag_index`, `mirror/unusable_index`: mm/vmstat.c's
//!   fragmentation indexes of the mirror's zones;
//! - `mirror/pool`: the pool's blocks, their zones and PFN ranges;
//! - `mirror/pagemap`: what every pool page is (free and of which order,
//!   per-CPU, page allocation, slab of which cache, kmalloc large), as runs;
//! - `mirror/check`: "ok" if the mirror's invariant checkers pass (it
//!   drains the per-CPU caches first);
//! - `mirror/counters`: per-CPU cache and reclaim events, `name value`.
//!
//! The files are made through `platform::debugfs`, whose `file_operations`
//! pin the module while a file is open; they disappear when the tree is
//! dropped, first thing at unload.

use crate::budget::Budget;
use crate::platform::debugfs::Tree;
use crate::{mirror::Mirror, real::Real, uapi};
use core::fmt;
use kernel::{prelude::*, sync::Arc};

type Render<T> = fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result;

/// Creates the tree and its files.
pub(crate) fn create(
    real: Arc<Real>,
    mirror: Arc<Mirror>,
    budget: Arc<Budget>,
    max_pinned: usize,
    module: &'static ThisModule,
) -> Result<Pin<KBox<Tree>>> {
    let mut t = KBox::pin_init(Tree::new(c"memlab", module), GFP_KERNEL)?;
    let root = t.root();
    let real_dir = t.dir(root, c"real")?;
    let mirror_dir = t.dir(root, c"mirror")?;
    t.as_mut().file(root, c"version", (), |(), f| {
        writeln!(f, "memlab ABI {}", uapi::MEMLAB_ABI_VERSION)
    })?;
    t.as_mut()
        .file(root, c"pinned", (budget, max_pinned), |(b, per_file), f| {
            writeln!(f, "max_pinned_bytes {per_file}")?;
            writeln!(f, "max_pinned_total_bytes {}", b.limit())?;
            writeln!(f, "pinned_total_bytes {}", b.used())
        })?;
    let reports: [(&CStr, Render<Arc<Real>>); 2] = [
        (c"report", |r, f| r.write_report(f)),
        (c"report.json", |r, f| r.write_report_json(f)),
    ];
    for (name, render) in reports {
        t.as_mut().file(real_dir, name, real.clone(), render)?;
    }
    let views: [(&CStr, Render<Arc<Mirror>>); 9] = [
        (c"buddyinfo", |m, f| m.buddyinfo(f)),
        (c"slabinfo", |m, f| m.slabinfo(f)),
        (c"slabstat", |m, f| m.slabstat(f)),
        (c"extfrag_index", |m, f| m.extfrag_index(f)),
        (c"unusable_index", |m, f| m.unusable_index(f)),
        (c"counters", |m, f| m.counters(f)),
        (c"check", |m, f| m.check(f)),
        (c"pool", |m, f| m.pool_report(f)),
        (c"pagemap", |m, f| m.pagemap(f)),
    ];
    for (name, render) in views {
        t.as_mut().file(mirror_dir, name, mirror.clone(), render)?;
    }
    Ok(t)
}
