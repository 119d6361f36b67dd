// SPDX-License-Identifier: GPL-2.0

//! The mirror's debugfs files, in the kernel's own formats where one exists
//! (`src/core/render.rs` writes them). Each copies what it needs under the
//! shared lock and formats into seq_file's buffer, which does not sleep.

use super::percpu::Counters;
use super::zone::{MirrorState, NR_MIRROR_ZONES};
use super::Mirror;
use crate::buddy::{Buddy, NR_PAGE_ORDERS};
use crate::pcp::sheaf_capacity;
use crate::render::{self, SheafStat};
use crate::request::{Gfp, GfpSel, Zone};
use crate::sizeclass::{SizeClass, NR_KMALLOC_CLASSES};
use core::fmt;

impl Mirror {
    /// Writes `mirror/buddyinfo`: the layout of /proc/buddyinfo.
    pub(crate) fn buddyinfo(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::buddyinfo(w, n, z, c))
    }

    /// Writes `mirror/extfrag_index` (layout of debugfs extfrag/extfrag_index).
    pub(crate) fn extfrag_index(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::extfrag_index(w, n, z, c))
    }

    /// Writes `mirror/unusable_index` (layout of debugfs extfrag/unusable_index).
    pub(crate) fn unusable_index(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::unusable_index(w, n, z, c))
    }

    fn per_zone(
        &self,
        f: &mut fmt::Formatter<'_>,
        line: impl Fn(&mut fmt::Formatter<'_>, i32, &str, &[u64; NR_PAGE_ORDERS]) -> fmt::Result,
    ) -> fmt::Result {
        // Copy under the lock, format outside it.
        let counts = self.state.lock().free_counts();
        for (z, c) in Zone::ALL.iter().zip(counts.iter()) {
            if let Some(c) = c {
                line(f, 0, z.name(), c)?;
            }
        }
        Ok(())
    }

    /// Free blocks per order of the mirror's `zone`, if the pool has one:
    /// its `mirror/buddyinfo` line.
    pub(crate) fn zone_free_counts(&self, zone: Zone) -> Option<[u64; NR_PAGE_ORDERS]> {
        self.state
            .lock()
            .free_counts()
            .get(zone.index())
            .copied()
            .flatten()
    }

    /// Bytes in the slabs of the mirror's kmalloc caches (both sets), as
    /// `mirror/slabinfo` counts them.
    pub(crate) fn kmalloc_slab_bytes(&self) -> u64 {
        let st = self.state.lock();
        Iterator::chain(st.kmalloc.caches().iter(), st.kmalloc_dma.caches())
            .map(|c| {
                let i = c.info();
                i.num_slabs * u64::from(i.pagesperslab) * kernel::page::PAGE_SIZE as u64
            })
            .sum()
    }

    /// Writes `mirror/slabinfo`: "slabinfo - version: 2.1" as /proc/slabinfo:
    /// The kmalloc caches, then the caches of the replay sessions that
    /// live now.
    pub(crate) fn slabinfo(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = self.named.lock();
        {
            let st = self.state.lock();
            render::slabinfo(
                f,
                Iterator::chain(st.kmalloc.caches().iter(), st.kmalloc_dma.caches()),
            )?;
        }
        // Each under its own slab lock (taken before `state`).
        named.iter().try_for_each(|c| c.slabinfo_line(f))
    }

    /// Writes `mirror/slabstat`: the caches of `mirror/slabinfo`, each with
    /// its `/sys/kernel/slab` attributes and its sheaves
    /// ([`render::SLABSTAT_COLUMNS`]). The sheaves are counted on each CPU
    /// (an IPI, which may sleep: before any lock), the barns under their
    /// own locks, the slabs under the shared one: a snapshot per part, as
    /// sysfs gives one per file.
    pub(crate) fn slabstat(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sheaves = [SheafStat::default(); NR_KMALLOC_CLASSES];
        self.cpus.each(&mut |cc| {
            for (s, objs) in sheaves.iter_mut().zip(&cc.stock.objs) {
                s.fill += objs.len() as u64;
            }
        });
        for ((s, barn), class) in sheaves.iter_mut().zip(&self.barns).zip(SizeClass::ALL) {
            let (full, empty) = barn.lock().counts();
            s.capacity = sheaf_capacity(class.size()) as u64;
            (s.barn_full, s.barn_empty) = (full as u64, empty as u64);
        }
        let named = self.named.lock();
        {
            let st = self.state.lock();
            render::slabstat_header(f)?;
            for (c, s) in st.kmalloc.caches().iter().zip(&sheaves) {
                render::slabstat_line(f, c.name(), &c.stat(), s)?;
            }
            // GFP_DMA requests bypass the CPUs' caches: no sheaves.
            for c in st.kmalloc_dma.caches() {
                render::slabstat_line(f, c.name(), &c.stat(), &SheafStat::default())?;
            }
        }
        // The replay sessions' caches, as `slabinfo` lists them.
        named.iter().try_for_each(|c| c.slabstat_line(f))
    }

    /// Writes `mirror/check`: "ok" if every zone's buddy and every kmalloc
    /// cache passes its invariant checker and no free was ever refused, else
    /// what failed.
    pub(crate) fn check(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Per-CPU caches go back first: the checkers then see every page and
        // object in the buddy or the slabs, and so do later reads.
        self.drain_cpus();
        let dma_ok = self.with_src(Gfp::new(GfpSel::Dma, false), |km, src| {
            km.check_invariants(src)
        });
        let rejected = self.state.lock().rejected;
        self.with_src(Gfp::KERNEL, |km, src| {
            let mut bad = false;
            for (z, b) in Zone::ALL.iter().zip(src.zones.iter()) {
                if let Some(Err(e)) = b.as_ref().map(Buddy::check_invariants) {
                    writeln!(f, "zone {}: {e:?}", z.name())?;
                    bad = true;
                }
            }
            if let Err(e) = km.check_invariants(src) {
                writeln!(f, "kmalloc: {e:?}")?;
                bad = true;
            }
            if let Err(e) = dma_ok {
                writeln!(f, "dma-kmalloc: {e:?}")?;
                bad = true;
            }
            if rejected != 0 {
                writeln!(f, "frees refused by the buddy or a slab: {rejected}")?;
                bad = true;
            }
            if !bad {
                writeln!(f, "ok")?;
            }
            Ok(())
        })
    }

    /// Writes `mirror/counters`: one `name value` line per event, summed
    /// over CPUs, like /proc/vmstat.
    pub(crate) fn counters(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sum = Counters::default();
        self.cpus.each(&mut |cc| sum.add(&cc.counters));
        for (name, v) in sum.fields() {
            writeln!(f, "{name} {v}")?;
        }
        let st = self.state.lock();
        let (failed, reclaims) = (st.failed, st.reclaims);
        drop(st);
        writeln!(f, "alloc_failed {failed}")?;
        writeln!(f, "reclaim {reclaims}")
    }

    /// Writes `mirror/pool`: where the pool's frames came from.
    pub(crate) fn pool_report(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pool: {} pages in {} blocks",
            self.pool_pages(),
            self.pool.blocks.len()
        )?;
        writeln!(
            f,
            "{:<8} {:>12} {:>12} {:>6}",
            "zone", "start_pfn", "end_pfn", "order"
        )?;
        for b in self.pool.blocks.iter() {
            writeln!(
                f,
                "{:<8} {:>#12x} {:>#12x} {:>6}",
                Zone::name_of_uapi(b.zone),
                b.pfn,
                b.pfn + b.nr_pages,
                b.nr_pages.trailing_zeros()
            )?;
        }
        let (mut pages, mut objs) = (0, 0);
        self.cpus.each(&mut |cc| {
            let (p, o) = cc.stock.held();
            pages += p;
            objs += o;
        });
        // Each zone's pages on the CPUs' lists (`count` of /proc/zoneinfo's
        // pagesets, summed over CPUs).
        let mut pcp_count = [0u64; NR_MIRROR_ZONES];
        self.cpus.each(&mut |cc| {
            for (n, p) in pcp_count.iter_mut().zip(&cc.stock.pcp) {
                *n += p.count;
            }
        });
        let barns: usize = self.barns.iter().map(|b| b.lock().held()).sum();
        writeln!(
            f,
            "per-CPU caches: {pages} pages, {objs} kmalloc objects (and {barns} in barns)"
        )?;
        let st = self.state.lock();
        let MirrorState { zones, reserve, .. } = &**st;
        let zones = Zone::ALL.iter().zip(zones).zip(reserve).zip(&self.pcp);
        for ((((z, buddy), reserve), pcp), count) in zones.zip(pcp_count) {
            if let Some(b) = buddy {
                // pcp as /proc/zoneinfo's pagesets give it (every CPU alike).
                writeln!(
                    f,
                    "zone {:<6} managed {:>8} free {:>8} reserve {:>6} pcp_batch {:>3} pcp_high {:>5} pcp_count {:>5}",
                    z.name(),
                    b.managed_pages(),
                    b.free_pages(),
                    reserve,
                    pcp.batch,
                    pcp.high,
                    count
                )?;
            }
        }
        Ok(())
    }
}
