// SPDX-License-Identifier: GPL-2.0

//! Every allocator family through ALLOC / INSPECT / FREE, on both backends
//! (the real allocators and the mirror, which serves every family), as
//! tables:
//!
//! - [`FAMILY_ROWS`]: one request per row and what INSPECT must report,
//!   run on each backend;
//! - [`GFP_ROWS`]: one row per family, run for each backend and each GFP
//!   selector, with and without __GFP_ZERO;
//! - the limits: requests each backend must refuse, and DMA handles
//!   surviving a forced unbind of their device.
//!
//! Every successful allocation is also held to [`super::check_block`].

use super::req::{self, gfp, on};
use super::{alloc_inspect_free, expect_refused, open, refusals, Refusal, BACKENDS, PAGE};
use crate::dev::uapi;
use crate::names;
use crate::tap::{check, Outcome, Suite};
use std::fs;
use uapi::*;

pub fn cases(s: &mut Suite) {
    for (b, bn) in BACKENDS {
        s.table(
            FAMILY_ROWS.iter().map(move |row| (b, row)),
            move |(_, row)| format!("{bn} {}", row.what),
            |(b, row)| run_family_row(b, row),
        );
        s.table(
            LIMIT_ROWS.iter().map(move |row| (b, row)),
            move |(_, row)| format!("{bn} {}", row.what),
            |(b, row)| {
                let (req, want) = (row.make)()?;
                run_family_row(
                    b,
                    &FamilyRow {
                        what: row.what,
                        req,
                        want,
                    },
                )
            },
        );
    }
    for (b, bn) in BACKENDS {
        for row in &GFP_ROWS {
            s.table(
                (0..MEMLAB_NR_GFP).map(move |sel| (b, row, sel)),
                move |&(b, row, sel)| {
                    let want = match (row.refused)(b, sel) {
                        Some((errno, why)) => format!("{} ({why})", super::errno_name(errno)),
                        None => row.what.to_string(),
                    };
                    format!(
                        "{bn} {} {}, +/- __GFP_ZERO: {want}",
                        row.family,
                        names::gfp_name(sel),
                    )
                },
                |(b, row, sel)| run_gfp_row(b, row, sel),
            );
        }
    }
    limits(s);
}

/// What INSPECT must report for one request, beyond [`super::check_block`].
/// `[real, mirror]` pairs where the backends differ; 0 or `false` is "not
/// checked".
#[derive(Clone, Copy)]
struct Expect {
    /// Usable bytes.
    usable: [u64; 2],
    /// Pages spanned.
    pages: [u64; 2],
    /// One physically contiguous run.
    contiguous: bool,
    /// The first PFN is a multiple of this.
    pfn_align: u64,
    /// At least this log2 physical alignment.
    min_align_log2: u32,
}

const ANY: Expect = Expect {
    usable: [0; 2],
    pages: [0; 2],
    contiguous: false,
    pfn_align: 0,
    min_align_log2: 0,
};

/// What a family row expects: a block like this, or a refusal.
#[derive(Clone, Copy)]
enum Want {
    Block(Expect),
    Errno(i32),
}

/// One request and what each backend must make of it.
struct FamilyRow {
    what: &'static str,
    req: MemlabAlloc,
    want: Want,
}

const fn block(e: Expect) -> Want {
    Want::Block(e)
}

const fn both(v: u64) -> [u64; 2] {
    [v, v]
}

/// A row at a limit the kernel sets at build time: its request and what it
/// must give are made when it runs, from the running kernel's values.
struct LimitRow {
    what: &'static str,
    make: fn() -> Result<(MemlabAlloc, Want), String>,
}

const LIMIT_ROWS: &[LimitRow] = &[
    LimitRow {
        what: "kmalloc KMALLOC_MAX_SIZE + 1 fails with ENOMEM",
        make: || {
            let max = super::kernel::kmalloc_max_size()?;
            Ok((req::kmalloc(max + 1), Want::Errno(libc::ENOMEM)))
        },
    },
    LimitRow {
        what: "pages of order MAX_PAGE_ORDER: 1 << MAX_PAGE_ORDER pages, one run",
        make: || {
            let order = super::kernel::max_page_order()?;
            let n = 1 << order;
            let want = block(Expect {
                pages: both(n),
                contiguous: true,
                pfn_align: n,
                ..ANY
            });
            Ok((req::pages(order), want))
        },
    },
];

const FAMILY_ROWS: &[FamilyRow] = &[
    FamilyRow {
        what: "kmalloc 100 B: usable 128 (ksize), contiguous",
        req: req::kmalloc(100),
        want: block(Expect {
            usable: both(128),
            contiguous: true,
            min_align_log2: 3,
            ..ANY
        }),
    },
    FamilyRow {
        what: "kmalloc 8 KiB + 1: usable 16 KiB (page allocator)",
        req: req::kmalloc(8193),
        want: block(Expect {
            usable: both(16384),
            min_align_log2: 14,
            ..ANY
        }),
    },
    FamilyRow {
        what: "pages order 3: 8 pages, one run, PFN aligned to 8",
        req: req::pages(3),
        want: block(Expect {
            usable: both(8 * PAGE),
            pages: both(8),
            contiguous: true,
            pfn_align: 8,
            min_align_log2: 15,
        }),
    },
    FamilyRow {
        // Runs are 1..=256: check_block holds them to 1..=pages.
        what: "vmalloc 1 MiB: 256 pages, runs counted",
        req: req::vmalloc(1 << 20),
        want: block(Expect {
            usable: both(1 << 20),
            pages: both(256),
            ..ANY
        }),
    },
    FamilyRow {
        what: "vmalloc 1 MiB + ZERO: zeroed",
        req: gfp(req::vmalloc(1 << 20), MEMLAB_GFP_ZERO),
        want: block(ANY),
    },
    FamilyRow {
        what: "vmalloc 10 pages + 1 B: 11 whole pages",
        req: req::vmalloc(10 * PAGE + 1),
        want: block(Expect {
            usable: both(11 * PAGE),
            pages: both(11),
            ..ANY
        }),
    },
    FamilyRow {
        what: "kmem_cache 100 B align 256: align_log2 >= 8",
        req: req::kmem_cache(100, 256),
        want: block(Expect {
            usable: both(100),
            contiguous: true,
            min_align_log2: 8,
            ..ANY
        }),
    },
    FamilyRow {
        what: "kmem_cache 64 B + ZERO: zeroed",
        req: gfp(req::kmem_cache(64, 0), MEMLAB_GFP_ZERO),
        want: block(ANY),
    },
    FamilyRow {
        what: "dma 64 KiB: dma_addr != 0, contiguous, 16 pages",
        req: req::dma(64 << 10),
        want: block(Expect {
            usable: both(64 << 10),
            pages: both(16),
            contiguous: true,
            ..ANY
        }),
    },
    FamilyRow {
        what: "dma 64 KiB GFP_DMA32: below 4 GiB, zone DMA32 or DMA",
        req: gfp(req::dma(64 << 10), MEMLAB_GFP_DMA32),
        want: block(ANY),
    },
    FamilyRow {
        what: "dma 16 KiB GFP_DMA: below 16 MiB, zone DMA",
        req: gfp(req::dma(16 << 10), MEMLAB_GFP_DMA),
        want: block(ANY),
    },
    FamilyRow {
        // Real: dma_alloc_coherent's 3 pages; mirror: an order-2 block.
        what: "dma 12 KiB: the block is whole pages, page aligned",
        req: req::dma(12 << 10),
        want: block(Expect {
            usable: [3 * PAGE, 4 * PAGE],
            pages: [3, 4],
            contiguous: true,
            ..ANY
        }),
    },
];

/// Checks `i` against `e` for backend index `bi` (0 real, 1 mirror).
fn check_expect(e: &Expect, bi: usize, i: &MemlabBlockInfo) -> Outcome {
    let (usable, pages) = (e.usable[bi], e.pages[bi]);
    check(usable == 0 || i.usable == usable, || {
        format!("usable {} != {usable}", i.usable)
    })?;
    check(pages == 0 || i.nr_pages == pages, || {
        format!("nr_pages {} != {pages}", i.nr_pages)
    })?;
    check(!e.contiguous || i.phys_runs == 1, || {
        format!("{} physical runs, want 1", i.phys_runs)
    })?;
    check(
        e.pfn_align == 0 || i.first_pfn.is_multiple_of(e.pfn_align),
        || format!("pfn {:#x} not aligned to {}", i.first_pfn, e.pfn_align),
    )?;
    check(i.align_log2 >= e.min_align_log2, || {
        format!("align_log2 {} < {}", i.align_log2, e.min_align_log2)
    })
}

fn backend_index(b: u32) -> usize {
    usize::from(b == MEMLAB_BACKEND_MIRROR)
}

fn run_family_row(b: u32, row: &FamilyRow) -> Outcome {
    let r = on(b, row.req);
    match row.want {
        Want::Errno(errno) => expect_refused(&open()?, &r, errno),
        Want::Block(e) => alloc_inspect_free(r, |i| check_expect(&e, backend_index(b), i)),
    }
}

/// One family across the GFP selectors: the request, and what each
/// selector must give on each backend.
struct GfpRow {
    family: &'static str,
    /// What the title promises.
    what: &'static str,
    req: MemlabAlloc,
    /// `Some((errno, why))` if the selector is refused on that backend.
    refused: fn(backend: u32, sel: u32) -> Option<(i32, &'static str)>,
    expect: Expect,
    /// Memory of one zone, never spanning zones.
    one_zone: bool,
}

/// The kernel's GFP_SLAB_BUG_MASK: kmalloc refuses these selectors.
fn slab_refuses(_: u32, sel: u32) -> Option<(i32, &'static str)> {
    matches!(sel, MEMLAB_GFP_DMA32 | MEMLAB_GFP_HIGHUSER)
        .then_some((libc::EINVAL, "GFP_SLAB_BUG_MASK"))
}

/// The mirror's vmalloc maps with `vm_map_ram`, which may sleep.
fn mirror_vmalloc_refuses(b: u32, sel: u32) -> Option<(i32, &'static str)> {
    (b == MEMLAB_BACKEND_MIRROR && matches!(sel, MEMLAB_GFP_ATOMIC | MEMLAB_GFP_NOWAIT))
        .then_some((libc::EINVAL, "vm_map_ram may sleep"))
}

fn never(_: u32, _: u32) -> Option<(i32, &'static str)> {
    None
}

static GFP_ROWS: [GfpRow; 4] = [
    GfpRow {
        family: "pages",
        what: "one page, in the selector's zone",
        req: req::pages(0),
        refused: never,
        expect: ANY,
        one_zone: true,
    },
    GfpRow {
        family: "kmalloc",
        what: "usable 256, in the selector's zone",
        req: req::kmalloc(200),
        refused: slab_refuses,
        expect: Expect {
            usable: both(256),
            ..ANY
        },
        one_zone: false,
    },
    GfpRow {
        family: "vmalloc",
        what: "5 pages, in the selector's zones",
        req: req::vmalloc(5 * PAGE),
        refused: mirror_vmalloc_refuses,
        expect: Expect {
            usable: both(5 * PAGE),
            pages: both(5),
            ..ANY
        },
        one_zone: false,
    },
    GfpRow {
        family: "dma",
        what: "8 contiguous pages below the device's mask, in the selector's zone",
        req: req::dma(8 * PAGE),
        refused: never,
        expect: Expect {
            pages: both(8),
            contiguous: true,
            ..ANY
        },
        one_zone: false,
    },
];

/// A mirror vmalloc of more than the pool: twice `pool_mb` (32 MiB by
/// default), or as much as the per-file cap lets through. ENOMEM, unless
/// the cap is not above the pool, where the cap refuses it first (E2BIG).
fn pool_overflow(p: super::params::Params) -> Refusal {
    let mb = (2 * p.pool_mb).min(p.max_pinned_mb);
    if mb > p.pool_mb {
        Refusal {
            name: format!(
                "mirror vmalloc of more than its pool ({mb} MiB > pool_mb {}) fails with ENOMEM",
                p.pool_mb
            ),
            reqs: vec![on(MEMLAB_BACKEND_MIRROR, req::vmalloc(mb << 20))],
            errno: libc::ENOMEM,
        }
    } else {
        let mb = p.pool_mb + 1;
        Refusal {
            name: format!(
                "mirror vmalloc of more than its pool ({mb} MiB, max_pinned_mb {} not above pool_mb) fails with E2BIG",
                p.max_pinned_mb
            ),
            reqs: vec![on(MEMLAB_BACKEND_MIRROR, req::vmalloc(mb << 20))],
            errno: libc::E2BIG,
        }
    }
}

/// `row` with selector `sel` on backend `b`, with and without __GFP_ZERO;
/// [`super::check_block`] checks the zone, the DMA mask and `zeroed`.
fn run_gfp_row(b: u32, row: &GfpRow, sel: u32) -> Outcome {
    if row.req.family == MEMLAB_FAMILY_DMA {
        super::kernel::need_dma()?;
    }
    for zero in [0, MEMLAB_GFP_ZERO] {
        let r = on(b, gfp(row.req, sel | zero));
        let z = if zero != 0 { "|__GFP_ZERO" } else { "" };
        match (row.refused)(b, sel) {
            Some((errno, _)) => expect_refused(&open()?, &r, errno),
            None => alloc_inspect_free(r, |i| {
                check_expect(&row.expect, backend_index(b), i)?;
                check(!row.one_zone || i.zone <= MEMLAB_ZONE_MOVABLE, || {
                    "zone mixed for one page".into()
                })
            }),
        }
        .map_err(|e| format!("{}{z}: {e}", names::gfp_name(sel)))?;
    }
    Ok(())
}

/// Refusals both backends share, the mirror's own vmalloc and DMA limits,
/// and DMA across an unbind.
fn limits(s: &mut Suite) {
    let slab_refused = [MEMLAB_FAMILY_KMALLOC, MEMLAB_FAMILY_KMEM_CACHE]
        .into_iter()
        .flat_map(|f| [MEMLAB_GFP_DMA32, MEMLAB_GFP_HIGHUSER].map(|g| gfp(req::alloc(f, 64), g)))
        .flat_map(|r| BACKENDS.map(|(b, _)| on(b, r)))
        .collect();
    let mirror = |r| on(MEMLAB_BACKEND_MIRROR, r);
    let vmalloc_nonblocking = [MEMLAB_GFP_ATOMIC, MEMLAB_GFP_NOWAIT]
        .into_iter()
        .flat_map(|g| [g, g | MEMLAB_GFP_ZERO])
        .map(|g| mirror(gfp(req::vmalloc(PAGE), g)))
        .collect();
    refusals(
        s,
        vec![
            Refusal {
                name: "kmalloc/kmem_cache refuse GFP_DMA32 and GFP_HIGHUSER (EINVAL), real and mirror".into(),
                reqs: slab_refused,
                errno: libc::EINVAL,
            },
            Refusal {
                name: "mirror vmalloc refuses GFP_ATOMIC and GFP_NOWAIT (vm_map_ram may sleep) with EINVAL".into(),
                reqs: vmalloc_nonblocking,
                errno: libc::EINVAL,
            },
            pool_overflow(super::params::params()),
        ],
    );
    s.case(
        "mirror dma above MAX_PAGE_ORDER (PAGE_SIZE << MAX_PAGE_ORDER, + 1) fails with ENOMEM",
        move || {
            let max = super::kernel::kmalloc_max_size()?;
            expect_refused(&open()?, &mirror(req::dma(max + 1)), libc::ENOMEM)
        },
    );
    s.case(
        "dma handles of both backends survive a forced unbind of their device; ENODEV until rebound",
        dma_unbind,
    );
    s.case(
        "mirror vmalloc and dma: many live at once, all freed, mirror/check ok",
        || {
            let m = open()?;
            let mut handles = Vec::new();
            // No DMA API on UML: vmalloc alone there.
            let dma = super::kernel::need_dma().is_ok();
            for k in 0..16u64 {
                let g = [0, MEMLAB_GFP_DMA32, MEMLAB_GFP_DMA][k as usize % 3];
                for r in [
                    req::vmalloc((k + 1) * 3 * PAGE),
                    req::dma((k % 4 + 1) * PAGE),
                ] {
                    if r.family == MEMLAB_FAMILY_DMA && !dma {
                        continue;
                    }
                    let r = on(MEMLAB_BACKEND_MIRROR, gfp(r, g));
                    handles.push(m.alloc(&r).map_err(|e| format!("ALLOC {r:?}: {e}"))?);
                }
            }
            // Half freed explicitly, the rest by closing the file.
            for h in handles.iter().step_by(2) {
                m.free(*h).map_err(|e| format!("FREE {h}: {e}"))?;
            }
            drop(m);
            let text = super::mirror_file("check")?;
            check(text == "ok\n", || format!("mirror/check: {text}"))
        },
    );
}

/// The driver's sysfs directory and the device DMA requests without a zone
/// selector use.
const DMA_DRIVER: &str = "/sys/bus/platform/drivers/memlab-dma";
const DMA_DEV64: &str = "memlab-dma.64";

/// Rebinds `memlab-dma.64` when dropped, so a failing unbind test does not
/// take the DMA family away from the tests after it.
struct Rebind;

impl Drop for Rebind {
    fn drop(&mut self) {
        if !std::path::Path::new(&format!("{DMA_DRIVER}/{DMA_DEV64}")).exists() {
            let _ = fs::write(format!("{DMA_DRIVER}/bind"), DMA_DEV64);
        }
    }
}

/// DMA handles of both backends outlive a forced unbind of their device
/// (Devres frees or unmaps them with the binding), stay inspectable and
/// freeable, the family answers ENODEV while unbound, and works again after
/// a rebind.
fn dma_unbind() -> Outcome {
    super::kernel::need_dma()?;
    let m = open()?;
    let mut held = Vec::new();
    for (b, bn) in BACKENDS {
        let r = on(b, req::dma(32 << 10));
        let h = m.alloc(&r).map_err(|e| format!("{bn} ALLOC: {e}"))?;
        held.push((h, bn, m.inspect(h).map_err(|e| e.to_string())?));
    }
    let _rebind = Rebind;
    fs::write(format!("{DMA_DRIVER}/unbind"), DMA_DEV64)
        .map_err(|e| format!("unbind {DMA_DEV64}: {e}"))?;
    for (h, bn, before) in &held {
        let after = m
            .inspect(*h)
            .map_err(|e| format!("{bn} INSPECT after unbind: {e}"))?;
        check(after == *before, || {
            format!("{bn}: INSPECT changed: {before:?} -> {after:?}")
        })?;
    }
    for (b, bn) in BACKENDS {
        let r = on(b, req::dma(PAGE));
        expect_refused(&m, &r, libc::ENODEV).map_err(|e| format!("{bn}: {e}"))?;
    }
    // One handle freed while unbound, the other by closing the file.
    m.free(held[0].0)
        .map_err(|e| format!("FREE after unbind: {e}"))?;
    drop(m);
    fs::write(format!("{DMA_DRIVER}/bind"), DMA_DEV64)
        .map_err(|e| format!("bind {DMA_DEV64}: {e}"))?;
    for (b, bn) in BACKENDS {
        alloc_inspect_free(on(b, req::dma(PAGE)), |i| {
            check(i.dma_addr != 0, || "dma_addr is 0".into())
        })
        .map_err(|e| format!("{bn} after rebind: {e}"))?;
    }
    Ok(())
}
