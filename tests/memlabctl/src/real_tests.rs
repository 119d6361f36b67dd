// SPDX-License-Identifier: GPL-2.0

//! In-VM tests of the real allocators: every family through the ioctl ABI
//! (ALLOC / INSPECT / FREE) with sane, checked facts; every GFP selector
//! with and without zeroing; every exercise with all its cases passing; and
//! the debugfs report and its JSON twin naming every family afterwards.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Case, Outcome};
use std::fs;

const PAGE: u64 = 4096;

fn open() -> Result<Memlab, String> {
    Memlab::open().map_err(|e| format!("open /dev/memlab: {e}"))
}

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
        info.handle == h && info.family == r.family && info.gfp == r.gfp,
        || format!("INSPECT echoes wrong handle/family/gfp: {info:?}"),
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

fn family_cases(v: &mut Vec<Case>) {
    v.push(Case {
        name: "real kmalloc 100 B: usable 128 (ksize), contiguous",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 100, 0, 0), |i| {
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
        name: "real kmalloc 8 KiB + 1: usable 16 KiB (page allocator)",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 8193, 0, 0), |i| {
                check(i.usable == 16384, || {
                    format!("usable {} != 16384", i.usable)
                })?;
                check(i.align_log2 >= 14, || {
                    "large kmalloc not aligned to its order".into()
                })
            })
        }),
    });
    v.push(Case {
        name: "real kmalloc KMALLOC_MAX_SIZE + 1 fails with ENOMEM",
        run: Box::new(|| {
            let m = open()?;
            let r = req(uapi::MEMLAB_FAMILY_KMALLOC, 0, (4 << 20) + 1, 0, 0);
            match m.alloc(&r) {
                Ok(h) => {
                    let _ = m.free(h);
                    Err("kmalloc(KMALLOC_MAX_SIZE + 1) succeeded".into())
                }
                Err(e) => check(e.raw_os_error() == Some(libc::ENOMEM), || {
                    format!("expected ENOMEM, got {e}")
                }),
            }
        }),
    });
    v.push(Case {
        name: "real pages order 3: 8 pages, one run, PFN aligned to 8",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 3, 0), |i| {
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
        name: "real pages order 10 (MAX_PAGE_ORDER): 1024 pages, one run",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 10, 0), |i| {
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
        name: "real vmalloc 1 MiB: 256 pages, runs counted",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_VMALLOC, 0, 1 << 20, 0, 0), |i| {
                check(i.nr_pages == 256, || {
                    format!("nr_pages {} != 256", i.nr_pages)
                })?;
                check(i.usable == 1 << 20, || {
                    format!("usable {} != 1 MiB", i.usable)
                })?;
                check((1..=256).contains(&i.phys_runs), || {
                    format!("phys_runs {}", i.phys_runs)
                })
            })
        }),
    });
    v.push(Case {
        name: "real vmalloc 1 MiB + ZERO: zeroed",
        run: Box::new(|| {
            let r = req(
                uapi::MEMLAB_FAMILY_VMALLOC,
                uapi::MEMLAB_GFP_ZERO,
                1 << 20,
                0,
                0,
            );
            alloc_inspect_free(r, |i| {
                check(i.zeroed == 1, || "vzalloc memory not zeroed".into())
            })
        }),
    });
    v.push(Case {
        name: "real kmem_cache 100 B align 256: align_log2 >= 8",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 100, 0, 256), |i| {
                check(i.align_log2 >= 8, || {
                    format!("align_log2 {} < 8", i.align_log2)
                })?;
                check(i.usable == 100, || format!("usable {} != 100", i.usable))?;
                check(i.phys_runs == 1, || "object not contiguous".into())
            })
        }),
    });
    v.push(Case {
        name: "real kmem_cache 64 B + ZERO: zeroed",
        run: Box::new(|| {
            let r = req(
                uapi::MEMLAB_FAMILY_KMEM_CACHE,
                uapi::MEMLAB_GFP_ZERO,
                64,
                0,
                0,
            );
            alloc_inspect_free(r, |i| check(i.zeroed == 1, || "object not zeroed".into()))
        }),
    });
    v.push(Case {
        name: "real dma 64 KiB: dma_addr != 0, contiguous, 16 pages",
        run: Box::new(|| {
            alloc_inspect_free(req(uapi::MEMLAB_FAMILY_DMA, 0, 64 << 10, 0, 0), |i| {
                check(i.dma_addr != 0, || "dma_addr is 0".into())?;
                check(i.phys_runs == 1 && i.nr_pages == 16, || {
                    "not 16 contiguous pages".into()
                })
            })
        }),
    });
    v.push(Case {
        name: "real dma 64 KiB GFP_DMA32: below 4 GiB, zone DMA32 or DMA",
        run: Box::new(|| {
            let r = req(
                uapi::MEMLAB_FAMILY_DMA,
                uapi::MEMLAB_GFP_DMA32,
                64 << 10,
                0,
                0,
            );
            alloc_inspect_free(r, |i| {
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
        name: "real dma 16 KiB GFP_DMA: below 16 MiB, zone DMA",
        run: Box::new(|| {
            let r = req(
                uapi::MEMLAB_FAMILY_DMA,
                uapi::MEMLAB_GFP_DMA,
                16 << 10,
                0,
                0,
            );
            alloc_inspect_free(r, |i| {
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
        name: "kmalloc/kmem_cache refuse GFP_DMA32 and GFP_HIGHUSER (EINVAL), real and mirror",
        run: Box::new(|| {
            let m = open()?;
            for family in [uapi::MEMLAB_FAMILY_KMALLOC, uapi::MEMLAB_FAMILY_KMEM_CACHE] {
                for (gfp, backend) in [uapi::MEMLAB_GFP_DMA32, uapi::MEMLAB_GFP_HIGHUSER]
                    .into_iter()
                    .flat_map(|g| {
                        [
                            (g, uapi::MEMLAB_BACKEND_REAL),
                            (g, uapi::MEMLAB_BACKEND_MIRROR),
                        ]
                    })
                {
                    match m.alloc(&uapi::MemlabAlloc {
                        backend,
                        ..req(family, gfp, 64, 0, 0)
                    }) {
                        Ok(h) => {
                            let _ = m.free(h);
                            return Err(format!("family {family} gfp {gfp} accepted"));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                        Err(e) => return Err(format!("family {family} gfp {gfp}: {e}")),
                    }
                }
            }
            Ok(())
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

fn gfp_cases(v: &mut Vec<Case>) {
    v.push(Case {
        name: "real pages: every GFP selector, with and without ZERO, lands in its zone",
        run: Box::new(|| {
            let mut errors = Vec::new();
            for sel in 0..uapi::MEMLAB_NR_GFP {
                for zero in [0, uapi::MEMLAB_GFP_ZERO] {
                    let r = req(uapi::MEMLAB_FAMILY_PAGES, sel | zero, 0, 0, 0);
                    let name = GFP_NAMES[sel as usize];
                    let z = if zero != 0 { "|ZERO" } else { "" };
                    let res = alloc_inspect_free(r, |i| {
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
                        check(i.zone <= uapi::MEMLAB_ZONE_MOVABLE, || {
                            "zone mixed for one page".into()
                        })?;
                        check(i.zeroed == u32::from(zero != 0), || {
                            format!("zeroed {}", i.zeroed)
                        })
                    });
                    if let Err(e) = res {
                        errors.push(format!("{name}{z}: {e}"));
                    }
                }
            }
            check(errors.is_empty(), || errors.join("\n"))
        }),
    });
    v.push(Case {
        name: "real kmalloc: GFP selectors the slab accepts, ZERO verified, GFP_DMA in zone DMA",
        run: Box::new(|| {
            let mut errors = Vec::new();
            for sel in 0..uapi::MEMLAB_NR_GFP {
                if sel == uapi::MEMLAB_GFP_DMA32 || sel == uapi::MEMLAB_GFP_HIGHUSER {
                    continue;
                }
                for zero in [0, uapi::MEMLAB_GFP_ZERO] {
                    let r = req(uapi::MEMLAB_FAMILY_KMALLOC, sel | zero, 200, 0, 0);
                    let res = alloc_inspect_free(r, |i| {
                        check(i.usable == 256, || format!("usable {} != 256", i.usable))?;
                        if sel == uapi::MEMLAB_GFP_DMA {
                            check(i.zone == uapi::MEMLAB_ZONE_DMA, || {
                                format!("zone {} != DMA", i.zone)
                            })?;
                        }
                        check(i.zeroed == u32::from(zero != 0), || {
                            format!("zeroed {}", i.zeroed)
                        })
                    });
                    if let Err(e) = res {
                        errors.push(format!(
                            "{}{}: {e}",
                            GFP_NAMES[sel as usize],
                            if zero != 0 { "|ZERO" } else { "" }
                        ));
                    }
                }
            }
            check(errors.is_empty(), || errors.join("\n"))
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

/// The real-allocator cases, in order: families, GFP, exercises, debugfs.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    family_cases(&mut v);
    gfp_cases(&mut v);
    exercise_cases(&mut v);
    debugfs_cases(&mut v);
    v
}
