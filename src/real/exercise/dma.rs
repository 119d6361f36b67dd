// SPDX-License-Identifier: GPL-2.0

//! The DMA exercise: dma_alloc_coherent under each mask, and
//! dma_map_single of a kmalloc buffer.

use super::super::{dma, gfp::GfpFlags, kmalloc::Kmalloc, Real};
use super::{reps_for, Run, MIB};
use crate::platform::phys::Placement;
use crate::real::report::Row;
use crate::request::Gfp;
use crate::uapi;
use kernel::{page::PAGE_SIZE, prelude::*};

pub(super) fn ex_dma(real: &Real, run: &mut Run, reps: u32) -> Result {
    for bits in crate::platform::dma::MASKS {
        let dev = real.dma.by_bits(bits)?;
        let bound = dev.lock_bound()?;
        let sizes: &[usize] = if bits == 24 {
            // ZONE_DMA is 16 MiB, mostly in use: stay small.
            &[PAGE_SIZE, 64 << 10, 256 << 10]
        } else {
            &[PAGE_SIZE, 64 << 10, MIB, 4 * MIB]
        };
        let limit = if bits >= 64 { u64::MAX } else { 1u64 << bits };
        let what = match bits {
            24 => "coherent/24bit",
            32 => "coherent/32bit",
            _ => "coherent/64bit",
        };
        for &size in sizes {
            let row = Row::new(what, "size", size as u64, true);
            let alloc = || dma::coherent(&bound, size, false);
            run.case(row, reps_for(reps, size), alloc, |row, c| {
                let f = dma::facts(c);
                row.place(Placement::of(&f.pages));
                row.note("dma_eq_phys", u64::from(f.dma_addr == f.phys));
                row.note("mask_bits", u64::from(bound.mask_bits()));
                let zone_ok = match bits {
                    24 => f.pages.zone == uapi::MEMLAB_ZONE_DMA,
                    32 => f.pages.zone <= uapi::MEMLAB_ZONE_DMA32,
                    _ => true,
                };
                row.check_zero(f.zeroed)
                    && zone_ok
                    && f.pages.runs == 1
                    && f.dma_addr.saturating_add(size as u64 - 1) < limit
            })?;
        }
        if bits >= 32 {
            // dma_map_single of a kmalloc buffer (a 24-bit mask would bounce
            // through swiotlb, which may not reach below 16 MiB).
            let buf = Kmalloc::new(4096, Gfp::KERNEL.flags())?;
            let what = if bits == 32 {
                "map_single/32bit"
            } else {
                "map_single/64bit"
            };
            let row = Row::new(what, "size", 4096, true);
            run.case(
                row,
                reps,
                || dma::map_single(&bound, &buf),
                |row, m| {
                    row.place(Placement::linear(buf.phys(), buf.size()));
                    let direct = m.addr() == buf.phys();
                    row.note("dma_eq_phys", u64::from(direct));
                    row.note("mask_bits", u64::from(bits));
                    // Without an IOMMU the bus address is the physical one,
                    // unless swiotlb had to bounce a buffer beyond the mask.
                    m.addr().saturating_add(4095) < limit && (bits < 64 || direct)
                },
            )?;
        }
    }
    Ok(())
}
