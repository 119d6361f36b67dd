// SPDX-License-Identifier: GPL-2.0

//! In-VM tests of the allocators through the ioctl ABI: every family
//! (ALLOC / INSPECT / FREE) with sane, checked facts, on both backends (the
//! real allocators and the mirror, which serves every family); every GFP
//! selector with and without zeroing, on both backends; the mirror's own
//! limits for vmalloc and DMA; and, real only, every exercise with all its
//! cases passing and the debugfs report and its JSON twin naming every
//! family afterwards.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Case, Outcome};
use std::fs;

const PAGE: u64 = 4096;

fn open() -> Result<Memlab, String> {
    Memlab::open().map_err(|e| format!("open /dev/memlab: {e}"))
}

/// The backends, named as in case titles.
const BACKENDS: [(u32, &str); 2] = [
    (uapi::MEMLAB_BACKEND_REAL, "real"),
    (uapi::MEMLAB_BACKEND_MIRROR, "mirror"),
];

fn req(family: u32, gfp: u32, size: u64, order: u32, align: u32) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc {
        family,
        gfp,
        size,
        order,
        align,
        handle: 0,
        backend: uapi::MEMLAB_BACKEND_REAL,
    }
}

/// `r` on `backend`.
fn on(backend: u32, r: uapi::MemlabAlloc) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc { backend, ..r }
}

/// A case title with the backend in front: "mirror kmalloc 100 B: ...".
fn title(backend: &str, what: &str) -> &'static str {
    Box::leak(format!("{backend} {what}").into_boxed_str())
}

/// Expects `r` to fail with `errno`, freeing it if it did not.
fn expect_refused(m: &Memlab, r: &uapi::MemlabAlloc, errno: i32, name: &str) -> Outcome {
    match m.alloc(r) {
        Ok(h) => {
            let _ = m.free(h);
            Err(format!("{r:?} succeeded, want {name}"))
        }
        Err(e) => check(e.raw_os_error() == Some(errno), || {
            format!("{r:?}: expected {name}, got {e}")
        }),
    }
}

/// Allocates `r`, inspects it, frees it, checks the handle is gone, and
/// hands the info to `verify`.
fn alloc_inspect_free(
    r: uapi::MemlabAlloc,
    verify: impl FnOnce(&uapi::MemlabBlockInfo) -> Outcome,
) -> Outcome {
    let m = open()?;
    let h = m.alloc(&r).map_err(|e| format!("ALLOC {r:?}: {e}"))?;
    let info = m.inspect(h).map_err(|e| format!("INSPECT {h}: {e}"));
    let freed = m.free(h).map_err(|e| format!("FREE {h}: {e}"));
    let info = info?;
    freed?;
    check(m.inspect(h).is_err(), || {
        format!("handle {h} still inspectable after FREE")
    })?;
    check(
        info.handle == h && info.family == r.family && info.gfp == r.gfp && info.size == r.size,
        || format!("INSPECT echoes wrong handle/family/gfp/size: {info:?}"),
    )?;
    check(
        info.nr_pages >= 1 && info.phys_runs >= 1 && info.phys_runs <= info.nr_pages,
        || format!("nonsense pages/runs: {info:?}"),
    )?;
    check(
        info.zone <= uapi::MEMLAB_ZONE_MOVABLE || info.zone == uapi::MEMLAB_ZONE_MIXED,
        || format!("bad zone: {info:?}"),
    )?;
    check(info.usable >= info.size, || {
        format!("usable < size: {info:?}")
    })?;
    check(info.first_pfn != 0, || format!("first_pfn 0: {info:?}"))?;
    check(
        info.align_log2 >= 12
            || info.family == uapi::MEMLAB_FAMILY_KMALLOC
            || info.family == uapi::MEMLAB_FAMILY_KMEM_CACHE,
        || format!("page-backed block not page aligned: {info:?}"),
    )?;
    verify(&info).map_err(|e| format!("{e}\n{info:?}"))
}

fn family_cases(v: &mut Vec<Case>, (b, bn): (u32, &'static str)) {
    v.push(Case {
        name: title(bn, "kmalloc 100 B: usable 128 (ksize), contiguous"),
        run: Box::new(move || {
            alloc_inspect_free(on(b, req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 100, 0, 0)), |i| {
                check(i.usable == 128, || format!("usable {} != 128", i.usable))?;
                check(i.phys_runs == 1, || "kmalloc memory not contiguous".into())?;
                check(i.align_log2 >= 3, || {
                    "kmalloc object not 8-byte aligned".into()
                })?;
                check(i.dma_addr == 0 && i.zeroed == 0, || {
                    "dma_addr/zeroed set".into()
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "kmalloc 8 KiB + 1: usable 16 KiB (page allocator)"),
        run: Box::new(move || {
            alloc_inspect_free(
                on(b, req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 8193, 0, 0)),
                |i| {
                    check(i.usable == 16384, || {
                        format!("usable {} != 16384", i.usable)
                    })?;
                    check(i.align_log2 >= 14, || {
                        "large kmalloc not aligned to its order".into()
                    })
                },
            )
        }),
    });
    v.push(Case {
        name: title(bn, "kmalloc KMALLOC_MAX_SIZE + 1 fails with ENOMEM"),
        run: Box::new(move || {
            let m = open()?;
            let r = on(b, req(uapi::MEMLAB_FAMILY_KMALLOC, 0, (4 << 20) + 1, 0, 0));
            expect_refused(&m, &r, libc::ENOMEM, "ENOMEM")
        }),
    });
    v.push(Case {
        name: title(bn, "pages order 3: 8 pages, one run, PFN aligned to 8"),
        run: Box::new(move || {
            alloc_inspect_free(on(b, req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 3, 0)), |i| {
                check(i.nr_pages == 8, || format!("nr_pages {} != 8", i.nr_pages))?;
                check(i.phys_runs == 1, || "order-3 block not contiguous".into())?;
                check(i.first_pfn % 8 == 0, || {
                    format!("pfn {:#x} not aligned to 8", i.first_pfn)
                })?;
                check(i.align_log2 >= 15, || {
                    format!("align_log2 {} < 15", i.align_log2)
                })?;
                check(i.usable == 8 * PAGE, || {
                    format!("usable {} != 32768", i.usable)
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "pages order 10 (MAX_PAGE_ORDER): 1024 pages, one run"),
        run: Box::new(move || {
            alloc_inspect_free(on(b, req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 10, 0)), |i| {
                check(i.nr_pages == 1024 && i.phys_runs == 1, || {
                    "not 1024 contiguous pages".into()
                })?;
                check(i.first_pfn % 1024 == 0, || {
                    "order-10 block misaligned".into()
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "vmalloc 1 MiB: 256 pages, runs counted"),
        run: Box::new(move || {
            let r = on(b, req(uapi::MEMLAB_FAMILY_VMALLOC, 0, 1 << 20, 0, 0));
            alloc_inspect_free(r, |i| {
                check(i.nr_pages == 256, || {
                    format!("nr_pages {} != 256", i.nr_pages)
                })?;
                check(i.usable == 1 << 20, || {
                    format!("usable {} != 1 MiB", i.usable)
                })?;
                check((1..=256).contains(&i.phys_runs), || {
                    format!("phys_runs {}", i.phys_runs)
                })?;
                check(i.dma_addr == 0 && i.zeroed == 0, || {
                    "dma_addr/zeroed set".into()
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "vmalloc 1 MiB + ZERO: zeroed"),
        run: Box::new(move || {
            let r = req(
                uapi::MEMLAB_FAMILY_VMALLOC,
                uapi::MEMLAB_GFP_ZERO,
                1 << 20,
                0,
                0,
            );
            alloc_inspect_free(on(b, r), |i| {
                check(i.zeroed == 1, || "vzalloc memory not zeroed".into())
            })
        }),
    });
    v.push(Case {
        name: title(bn, "vmalloc 10 pages + 1 B: 11 whole pages"),
        run: Box::new(move || {
            let r = on(b, req(uapi::MEMLAB_FAMILY_VMALLOC, 0, 10 * PAGE + 1, 0, 0));
            alloc_inspect_free(r, |i| {
                check(i.nr_pages == 11 && i.usable == 11 * PAGE, || {
                    format!("nr_pages {} usable {}", i.nr_pages, i.usable)
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "kmem_cache 100 B align 256: align_log2 >= 8"),
        run: Box::new(move || {
            let r = on(b, req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 100, 0, 256));
            alloc_inspect_free(r, |i| {
                check(i.align_log2 >= 8, || {
                    format!("align_log2 {} < 8", i.align_log2)
                })?;
                check(i.usable == 100, || format!("usable {} != 100", i.usable))?;
                check(i.phys_runs == 1, || "object not contiguous".into())
            })
        }),
    });
    v.push(Case {
        name: title(bn, "kmem_cache 64 B + ZERO: zeroed"),
        run: Box::new(move || {
            let r = req(
                uapi::MEMLAB_FAMILY_KMEM_CACHE,
                uapi::MEMLAB_GFP_ZERO,
                64,
                0,
                0,
            );
            alloc_inspect_free(on(b, r), |i| {
                check(i.zeroed == 1, || "object not zeroed".into())
            })
        }),
    });
    v.push(Case {
        name: title(bn, "dma 64 KiB: dma_addr != 0, contiguous, 16 pages"),
        run: Box::new(move || {
            alloc_inspect_free(
                on(b, req(uapi::MEMLAB_FAMILY_DMA, 0, 64 << 10, 0, 0)),
                |i| {
                    check(i.dma_addr != 0, || "dma_addr is 0".into())?;
                    check(i.phys_runs == 1 && i.nr_pages == 16, || {
                        "not 16 contiguous pages".into()
                    })?;
                    check(i.usable == 64 << 10, || {
                        format!("usable {} != 64 KiB", i.usable)
                    })
                },
            )
        }),
    });
    v.push(Case {
        name: title(bn, "dma 64 KiB GFP_DMA32: below 4 GiB, zone DMA32 or DMA"),
        run: Box::new(move || {
            let r = req(
                uapi::MEMLAB_FAMILY_DMA,
                uapi::MEMLAB_GFP_DMA32,
                64 << 10,
                0,
                0,
            );
            alloc_inspect_free(on(b, r), |i| {
                check(
                    i.dma_addr != 0 && i.dma_addr + (64 << 10) <= 1 << 32,
                    || format!("dma_addr {:#x} not below 4 GiB", i.dma_addr),
                )?;
                check(i.zone <= uapi::MEMLAB_ZONE_DMA32, || {
                    format!("zone {}", i.zone)
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "dma 16 KiB GFP_DMA: below 16 MiB, zone DMA"),
        run: Box::new(move || {
            let r = req(
                uapi::MEMLAB_FAMILY_DMA,
                uapi::MEMLAB_GFP_DMA,
                16 << 10,
                0,
                0,
            );
            alloc_inspect_free(on(b, r), |i| {
                check(
                    i.dma_addr != 0 && i.dma_addr + (16 << 10) <= 1 << 24,
                    || format!("dma_addr {:#x} not below 16 MiB", i.dma_addr),
                )?;
                check(i.zone == uapi::MEMLAB_ZONE_DMA, || {
                    format!("zone {}", i.zone)
                })
            })
        }),
    });
    v.push(Case {
        name: title(bn, "dma 12 KiB: the block is whole pages, page aligned"),
        run: Box::new(move || {
            alloc_inspect_free(
                on(b, req(uapi::MEMLAB_FAMILY_DMA, 0, 12 << 10, 0, 0)),
                |i| {
                    // Real: dma_alloc_coherent's 3 pages; mirror: an order-2 block.
                    let want = if b == uapi::MEMLAB_BACKEND_MIRROR {
                        4
                    } else {
                        3
                    };
                    check(i.nr_pages == want && i.usable == want * PAGE, || {
                        format!(
                            "nr_pages {} usable {}, want {want} pages",
                            i.nr_pages, i.usable
                        )
                    })?;
                    check(i.phys_runs == 1 && i.dma_addr != 0, || {
                        "not one mapped run".into()
                    })
                },
            )
        }),
    });
}

/// Slab refusals and the mirror's own vmalloc and DMA limits.
fn limit_cases(v: &mut Vec<Case>) {
    v.push(Case {
        name: "kmalloc/kmem_cache refuse GFP_DMA32 and GFP_HIGHUSER (EINVAL), real and mirror",
        run: Box::new(|| {
            let m = open()?;
            for family in [uapi::MEMLAB_FAMILY_KMALLOC, uapi::MEMLAB_FAMILY_KMEM_CACHE] {
                for gfp in [uapi::MEMLAB_GFP_DMA32, uapi::MEMLAB_GFP_HIGHUSER] {
                    for (b, _) in BACKENDS {
                        let r = on(b, req(family, gfp, 64, 0, 0));
                        expect_refused(&m, &r, libc::EINVAL, "EINVAL")?;
                    }
                }
            }
            Ok(())
        }),
    });
    v.push(Case {
        name: "mirror vmalloc refuses GFP_ATOMIC and GFP_NOWAIT (vm_map_ram may sleep) with EINVAL",
        run: Box::new(|| {
            let m = open()?;
            for gfp in [uapi::MEMLAB_GFP_ATOMIC, uapi::MEMLAB_GFP_NOWAIT] {
                for zero in [0, uapi::MEMLAB_GFP_ZERO] {
                    let r = on(
                        uapi::MEMLAB_BACKEND_MIRROR,
                        req(uapi::MEMLAB_FAMILY_VMALLOC, gfp | zero, PAGE, 0, 0),
                    );
                    expect_refused(&m, &r, libc::EINVAL, "EINVAL")?;
                }
            }
            Ok(())
        }),
    });
    v.push(Case {
        name: "mirror vmalloc of more than its pool (32 MiB > pool_mb 16) fails with ENOMEM",
        run: Box::new(|| {
            let m = open()?;
            let r = on(
                uapi::MEMLAB_BACKEND_MIRROR,
                req(uapi::MEMLAB_FAMILY_VMALLOC, 0, 32 << 20, 0, 0),
            );
            expect_refused(&m, &r, libc::ENOMEM, "ENOMEM")
        }),
    });
    v.push(Case {
        name: "mirror dma above MAX_PAGE_ORDER (4 MiB + 1) fails with ENOMEM",
        run: Box::new(|| {
            let m = open()?;
            let r = on(
                uapi::MEMLAB_BACKEND_MIRROR,
                req(uapi::MEMLAB_FAMILY_DMA, 0, (4 << 20) + 1, 0, 0),
            );
            expect_refused(&m, &r, libc::ENOMEM, "ENOMEM")
        }),
    });
    v.push(Case {
        name: "dma handles of both backends survive a forced unbind of their device; ENODEV until rebound",
        run: Box::new(dma_unbind),
    });
    v.push(Case {
        name: "mirror vmalloc and dma: many live at once, all freed, mirror/check ok",
        run: Box::new(|| {
            let m = open()?;
            let mut handles = Vec::new();
            for k in 0..16u64 {
                let gfp = [0, uapi::MEMLAB_GFP_DMA32, uapi::MEMLAB_GFP_DMA][k as usize % 3];
                for r in [
                    req(uapi::MEMLAB_FAMILY_VMALLOC, gfp, (k + 1) * 3 * PAGE, 0, 0),
                    req(uapi::MEMLAB_FAMILY_DMA, gfp, (k % 4 + 1) * PAGE, 0, 0),
                ] {
                    let r = on(uapi::MEMLAB_BACKEND_MIRROR, r);
                    handles.push(m.alloc(&r).map_err(|e| format!("ALLOC {r:?}: {e}"))?);
                }
            }
            // Half freed explicitly, the rest by closing the file.
            for h in handles.iter().step_by(2) {
                m.free(*h).map_err(|e| format!("FREE {h}: {e}"))?;
            }
            drop(m);
            let path = format!("{DEBUGFS}/mirror/check");
            let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            check(text == "ok\n", || format!("mirror/check: {text}"))
        }),
    });
}

const GFP_NAMES: [&str; 9] = [
    "GFP_KERNEL",
    "GFP_ATOMIC",
    "GFP_NOWAIT",
    "GFP_NOIO",
    "GFP_NOFS",
    "GFP_USER",
    "GFP_HIGHUSER",
    "GFP_DMA",
    "GFP_DMA32",
];

/// Zone checks every selector shares: GFP_DMA in ZONE_DMA, GFP_DMA32 at
/// most ZONE_DMA32, and one zone (not mixed) for pages a selector confines.
fn check_zone(sel: u32, i: &uapi::MemlabBlockInfo) -> Outcome {
    if sel == uapi::MEMLAB_GFP_DMA {
        check(i.zone == uapi::MEMLAB_ZONE_DMA, || {
            format!("zone {} != DMA", i.zone)
        })?;
    }
    if sel == uapi::MEMLAB_GFP_DMA32 {
        check(i.zone <= uapi::MEMLAB_ZONE_DMA32, || {
            format!("zone {} above DMA32", i.zone)
        })?;
    }
    Ok(())
}

/// Runs `one(sel, zero)` for every selector with and without ZERO and
/// gathers the failures.
fn every_gfp(mut one: impl FnMut(u32, u32) -> Outcome) -> Outcome {
    let mut errors = Vec::new();
    for sel in 0..uapi::MEMLAB_NR_GFP {
        for zero in [0, uapi::MEMLAB_GFP_ZERO] {
            if let Err(e) = one(sel, zero) {
                let z = if zero != 0 { "|ZERO" } else { "" };
                errors.push(format!("{}{z}: {e}", GFP_NAMES[sel as usize]));
            }
        }
    }
    check(errors.is_empty(), || errors.join("\n"))
}

fn gfp_cases(v: &mut Vec<Case>, (b, bn): (u32, &'static str)) {
    v.push(Case {
        name: title(
            bn,
            "pages: every GFP selector, with and without ZERO, lands in its zone",
        ),
        run: Box::new(move || {
            every_gfp(|sel, zero| {
                let r = on(b, req(uapi::MEMLAB_FAMILY_PAGES, sel | zero, 0, 0, 0));
                alloc_inspect_free(r, |i| {
                    check_zone(sel, i)?;
                    check(i.zone <= uapi::MEMLAB_ZONE_MOVABLE, || {
                        "zone mixed for one page".into()
                    })?;
                    check(i.zeroed == u32::from(zero != 0), || {
                        format!("zeroed {}", i.zeroed)
                    })
                })
            })
        }),
    });
    v.push(Case {
        name: title(
            bn,
            "kmalloc: GFP selectors the slab accepts, ZERO verified, GFP_DMA in zone DMA",
        ),
        run: Box::new(move || {
            every_gfp(|sel, zero| {
                if sel == uapi::MEMLAB_GFP_DMA32 || sel == uapi::MEMLAB_GFP_HIGHUSER {
                    return Ok(());
                }
                let r = on(b, req(uapi::MEMLAB_FAMILY_KMALLOC, sel | zero, 200, 0, 0));
                alloc_inspect_free(r, |i| {
                    check(i.usable == 256, || format!("usable {} != 256", i.usable))?;
                    check_zone(sel, i)?;
                    check(i.zeroed == u32::from(zero != 0), || {
                        format!("zeroed {}", i.zeroed)
                    })
                })
            })
        }),
    });
    v.push(Case {
        name: title(
            bn,
            "vmalloc: every GFP selector (mirror: EINVAL for ATOMIC/NOWAIT), ZERO verified, zones honoured",
        ),
        run: Box::new(move || {
            every_gfp(|sel, zero| {
                let r = on(b, req(uapi::MEMLAB_FAMILY_VMALLOC, sel | zero, 5 * PAGE, 0, 0));
                if b == uapi::MEMLAB_BACKEND_MIRROR
                    && (sel == uapi::MEMLAB_GFP_ATOMIC || sel == uapi::MEMLAB_GFP_NOWAIT)
                {
                    return expect_refused(&open()?, &r, libc::EINVAL, "EINVAL");
                }
                alloc_inspect_free(r, |i| {
                    check(i.nr_pages == 5 && i.usable == 5 * PAGE, || {
                        format!("nr_pages {} usable {}", i.nr_pages, i.usable)
                    })?;
                    check_zone(sel, i)?;
                    check(i.zeroed == u32::from(zero != 0), || {
                        format!("zeroed {}", i.zeroed)
                    })
                })
            })
        }),
    });
    v.push(Case {
        name: title(
            bn,
            "dma: every GFP selector picks its device's mask and zone, ZERO verified",
        ),
        run: Box::new(move || {
            every_gfp(|sel, zero| {
                let size = 8 * PAGE;
                let r = on(b, req(uapi::MEMLAB_FAMILY_DMA, sel | zero, size, 0, 0));
                alloc_inspect_free(r, |i| {
                    let limit = match sel {
                        uapi::MEMLAB_GFP_DMA => 1u64 << 24,
                        uapi::MEMLAB_GFP_DMA32 => 1 << 32,
                        _ => u64::MAX,
                    };
                    check(i.dma_addr != 0 && i.dma_addr <= limit - size, || {
                        format!("dma_addr {:#x} not below {limit:#x}", i.dma_addr)
                    })?;
                    check(i.phys_runs == 1 && i.nr_pages == 8, || {
                        "not 8 contiguous pages".into()
                    })?;
                    check_zone(sel, i)?;
                    check(i.zeroed == u32::from(zero != 0), || {
                        format!("zeroed {}", i.zeroed)
                    })
                })
            })
        }),
    });
}

const EXERCISES: [(u32, &str); 6] = [
    (uapi::MEMLAB_EX_KMALLOC, "kmalloc"),
    (uapi::MEMLAB_EX_VMALLOC, "vmalloc"),
    (uapi::MEMLAB_EX_PAGES, "pages"),
    (uapi::MEMLAB_EX_KMEM_CACHE, "kmem_cache"),
    (uapi::MEMLAB_EX_DMA, "dma"),
    (uapi::MEMLAB_EX_GFP, "gfp"),
];

fn report_section(name: &str) -> String {
    let text = fs::read_to_string(format!("{DEBUGFS}/real/report")).unwrap_or_default();
    let head = format!("== {name} (");
    let mut out = String::new();
    let mut on = false;
    for line in text.lines() {
        if line.starts_with("== ") {
            on = line.starts_with(&head);
        }
        if on && (line.starts_with("==") || line.starts_with("what") || line.contains(" no ")) {
            out += line;
            out.push('\n');
        }
    }
    out
}

fn exercise_cases(v: &mut Vec<Case>) {
    for (id, name) in EXERCISES {
        let title: &'static str =
            Box::leak(format!("real exercise {name}: every case passes").into_boxed_str());
        v.push(Case {
            name: title,
            run: Box::new(move || {
                let m = open()?;
                let reps = if id == uapi::MEMLAB_EX_VMALLOC { 4 } else { 8 };
                let ex = m
                    .exercise(id, reps)
                    .map_err(|e| format!("EXERCISE {name}: {e}"))?;
                check(ex.id == id && ex.cases > 0, || format!("bad reply {ex:?}"))?;
                check(ex.median_ns <= ex.p99_ns, || {
                    format!("latencies out of order: {ex:?}")
                })?;
                check(ex.passed == ex.cases, || {
                    format!(
                        "{}/{} passed {ex:?}\n{}",
                        ex.passed,
                        ex.cases,
                        report_section(name)
                    )
                })
            }),
        });
    }
    v.push(Case {
        name: "real EXERCISE with reps 0 uses the default and succeeds",
        run: Box::new(|| {
            let m = open()?;
            let ex = m
                .exercise(uapi::MEMLAB_EX_PAGES, 0)
                .map_err(|e| e.to_string())?;
            check(ex.reps == 32 && ex.passed == ex.cases, || format!("{ex:?}"))
        }),
    });
}

fn debugfs_cases(v: &mut Vec<Case>) {
    v.push(Case {
        name: "debugfs real/report has every family's table and buddyinfo",
        run: Box::new(|| {
            let path = format!("{DEBUGFS}/real/report");
            let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            for (id, name) in EXERCISES {
                check(
                    text.contains(&format!("== {name} (exercise {id}, reps")),
                    || format!("no table for {name} in:\n{text}"),
                )?;
            }
            for api in [
                "kmalloc",
                "vmalloc",
                "alloc_pages",
                "kmem_cache+ctor",
                "coherent/32bit",
                "map_single/64bit",
                "GFP_ATOMIC",
                "GFP_DMA32",
            ] {
                check(text.contains(api), || {
                    format!("report never mentions {api}")
                })?;
            }
            check(
                text.contains("buddyinfo before:") && text.contains("Node 0, zone      DMA"),
                || "no buddyinfo snapshot".into(),
            )?;
            check(!text.contains("0xffff") && !text.contains("ffff8"), || {
                "report looks like it contains a kernel address".into()
            })
        }),
    });
    v.push(Case {
        name: "debugfs real/report.json names every exercise and is balanced",
        run: Box::new(|| {
            let path = format!("{DEBUGFS}/real/report.json");
            let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            let t = text.trim();
            check(t.starts_with("{\"abi\":") && t.ends_with("]}"), || {
                format!("not a JSON object: {t:.200}")
            })?;
            let (mut depth, mut ok) = (0i64, true);
            for c in t.chars() {
                match c {
                    '{' | '[' => depth += 1,
                    '}' | ']' => depth -= 1,
                    _ => {}
                }
                ok &= depth >= 0;
            }
            check(ok && depth == 0, || "unbalanced brackets".into())?;
            for (_, name) in EXERCISES {
                check(t.contains(&format!("{{\"name\":\"{name}\"")), || {
                    format!("no {name} report")
                })?;
            }
            check(t.contains("\"buddyinfo_before\":{\"DMA\":["), || {
                "no buddyinfo in JSON".into()
            })?;
            check(
                t.contains("\"objs_per_slab\":") && t.contains("\"ksize\":"),
                || "family facts missing from JSON".into(),
            )
        }),
    });
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
    let m = open()?;
    let mut held = Vec::new();
    for (b, bn) in BACKENDS {
        let r = on(b, req(uapi::MEMLAB_FAMILY_DMA, 0, 32 << 10, 0, 0));
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
        let r = on(b, req(uapi::MEMLAB_FAMILY_DMA, 0, PAGE, 0, 0));
        expect_refused(&m, &r, libc::ENODEV, "ENODEV").map_err(|e| format!("{bn}: {e}"))?;
    }
    // One handle freed while unbound, the other by closing the file.
    m.free(held[0].0)
        .map_err(|e| format!("FREE after unbind: {e}"))?;
    drop(m);
    fs::write(format!("{DMA_DRIVER}/bind"), DMA_DEV64)
        .map_err(|e| format!("bind {DMA_DEV64}: {e}"))?;
    for (b, bn) in BACKENDS {
        alloc_inspect_free(on(b, req(uapi::MEMLAB_FAMILY_DMA, 0, PAGE, 0, 0)), |i| {
            check(i.dma_addr != 0, || "dma_addr is 0".into())
        })
        .map_err(|e| format!("{bn} after rebind: {e}"))?;
    }
    Ok(())
}

/// The cases, in order: families and GFP selectors on each backend, the
/// limits, then (real only) the exercises and the debugfs report.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for backend in BACKENDS {
        family_cases(&mut v, backend);
    }
    for backend in BACKENDS {
        gfp_cases(&mut v, backend);
    }
    limit_cases(&mut v);
    exercise_cases(&mut v);
    debugfs_cases(&mut v);
    v
}
