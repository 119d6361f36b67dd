// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/memlab/`: the read-only views of memlab's state.
//!
//! Files are removed when their `File` handle drops, the directory when the
//! last handle to it goes: both happen in the module's drop.

use crate::{mirror::Mirror, real::Real, uapi};
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    sync::Arc,
};

/// The debugfs tree; every file disappears when this is dropped.
#[pin_data]
pub(crate) struct Tree {
    #[pin]
    _version: File<()>,
    #[pin]
    _report: File<Arc<Real>>,
    #[pin]
    _report_json: File<Arc<Real>>,
    #[pin]
    _buddyinfo: File<Arc<Mirror>>,
    #[pin]
    _slabinfo: File<Arc<Mirror>>,
    #[pin]
    _extfrag: File<Arc<Mirror>>,
    #[pin]
    _unusable: File<Arc<Mirror>>,
    #[pin]
    _pool: File<Arc<Mirror>>,
    #[pin]
    _check: File<Arc<Mirror>>,
    #[pin]
    _counters: File<Arc<Mirror>>,
    _mirror_dir: Dir,
    _real_dir: Dir,
    _root: Dir,
}

impl Tree {
    /// Creates `/sys/kernel/debug/memlab/` and its files:
    ///
    /// - `version`: `memlab ABI <n>`;
    /// - `real/report`: the last run of each real-allocator exercise, one
    ///   table per family with buddyinfo before and after;
    /// - `real/report.json`: the same as one JSON object;
    /// - `mirror/buddyinfo`, `mirror/slabinfo`: the mirror's free lists and
    ///   caches in the exact layouts of /proc/buddyinfo and /proc/slabinfo;
    /// - `mirror/extfrag_index`, `mirror/unusable_index`: mm/vmstat.c's
    ///   fragmentation indexes of the mirror's zones;
    /// - `mirror/pool`: the pool's blocks, their zones and PFN ranges;
    /// - `mirror/check`: "ok" if the mirror's invariant checkers pass (it
    ///   drains the per-CPU caches first);
    /// - `mirror/counters`: per-CPU cache and reclaim events, `name value`.
    pub(crate) fn new(real: Arc<Real>, mirror: Arc<Mirror>) -> impl PinInit<Self, Error> {
        let root = Dir::new(c"memlab");
        let real_dir = root.subdir(c"real");
        let mirror_dir = root.subdir(c"mirror");
        try_pin_init!(Self {
            _version <- root.read_callback_file(c"version", (), &|(): &(), f| {
                writeln!(f, "memlab ABI {}", uapi::MEMLAB_ABI_VERSION)
            }),
            _report <- real_dir.read_callback_file(c"report", real.clone(), &|r: &Arc<Real>, f| {
                r.write_report(f)
            }),
            _report_json <- real_dir.read_callback_file(c"report.json", real, &|r: &Arc<Real>, f| {
                r.write_report_json(f)
            }),
            _buddyinfo <- mirror_dir.read_callback_file(c"buddyinfo", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.buddyinfo(f)
            }),
            _slabinfo <- mirror_dir.read_callback_file(c"slabinfo", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.slabinfo(f)
            }),
            _extfrag <- mirror_dir.read_callback_file(c"extfrag_index", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.extfrag_index(f)
            }),
            _unusable <- mirror_dir.read_callback_file(c"unusable_index", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.unusable_index(f)
            }),
            _counters <- mirror_dir.read_callback_file(c"counters", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.counters(f)
            }),
            _check <- mirror_dir.read_callback_file(c"check", mirror.clone(), &|m: &Arc<Mirror>, f| {
                m.check(f)
            }),
            _pool <- mirror_dir.read_callback_file(c"pool", mirror, &|m: &Arc<Mirror>, f| m.pool_report(f)),
            _mirror_dir: mirror_dir,
            _real_dir: real_dir,
            _root: root,
        }? Error)
    }
}
