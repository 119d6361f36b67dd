// SPDX-License-Identifier: GPL-2.0

//! In-VM tests of the mirror allocators running in the module: their
//! debugfs files have exactly the kernel's layouts, their pool is what the
//! module parameter asked for, and allocations through the ioctl ABI behave
//! like the real allocators' (zones, sizes, alignment, zeroing, watermarks).

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Case, Outcome};
use std::fs;

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn mirror_file(name: &str) -> Result<String, String> {
    read(&format!("{DEBUGFS}/mirror/{name}"))
}

/// Re-renders a per-zone line ("Node N, zone %8s " then fields) with the
/// kernel's widths; the line must come out byte-identical.
fn check_zone_lines(text: &str, what: &str, field: impl Fn(&str) -> Option<String>) -> Outcome {
    check(!text.is_empty(), || format!("{what} is empty"))?;
    for line in text.lines() {
        let (head, rest) = line
            .split_once(" zone ")
            .ok_or_else(|| format!("{what}: no ' zone ' in {line:?}"))?;
        let node = head
            .strip_prefix("Node ")
            .and_then(|n| n.strip_suffix(','))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("{what}: bad node in {line:?}"))?;
        let mut words = rest.split_whitespace();
        let zone = words
            .next()
            .ok_or_else(|| format!("{what}: no zone in {line:?}"))?;
        let mut again = format!("Node {node}, zone {zone:>8} ");
        let mut n = 0;
        for w in words {
            again += &field(w).ok_or_else(|| format!("{what}: bad field {w:?} in {line:?}"))?;
            n += 1;
        }
        check(n == 11, || {
            format!("{what}: {n} orders, not 11, in {line:?}")
        })?;
        check(again == line, || {
            format!("{what}: layout differs:\n got  {line:?}\n want {again:?}")
        })?;
    }
    Ok(())
}

fn count_field(w: &str) -> Option<String> {
    w.parse::<u64>().ok().map(|v| format!("{v:>6} "))
}

/// mm/vmstat.c prints indexes as "%2d.%03d " (extfrag) or "%d.%03d "
/// (unusable), from `index / 1000` and `index % 1000`: a negative index that
/// is not -1000 comes out as e.g. " 0.-500", and so must ours.
fn index_field(wide: bool) -> impl Fn(&str) -> Option<String> {
    move |w: &str| {
        let (i, f) = w.split_once('.')?;
        let (i, f) = (i.trim().parse::<i32>().ok()?, f.parse::<i32>().ok()?);
        Some(if wide {
            format!("{i:2}.{f:03} ")
        } else {
            format!("{i}.{f:03} ")
        })
    }
}

/// The fields of one slabinfo line, re-rendered as mm/slab_common.c does.
fn slabinfo_line_again(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() != 16 || w[6] != ":" || w[7] != "tunables" || w[11] != ":" || w[12] != "slabdata" {
        return None;
    }
    let n = |i: usize| w[i].parse::<u64>().ok();
    Some(format!(
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        w[0], n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(8)?, n(9)?, n(10)?, n(13)?, n(14)?, n(15)?
    ))
}

fn free_pages_in(buddyinfo: &str) -> u64 {
    buddyinfo
        .lines()
        .flat_map(|l| {
            l.split(" zone ")
                .nth(1)
                .map(|r| r.split_whitespace().skip(1).collect::<Vec<_>>())
        })
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(o, c)| c.parse::<u64>().unwrap_or(0) << o)
                .sum::<u64>()
        })
        .sum()
}

fn mirror_req(family: u32) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc {
        family,
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ..Default::default()
    }
}

fn alloc_inspect(d: &Memlab, req: &uapi::MemlabAlloc) -> Result<uapi::MemlabBlockInfo, String> {
    d.alloc(req)
        .and_then(|h| d.inspect(h))
        .map_err(|e| format!("{req:?}: {e}"))
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    macro_rules! case {
        ($name:expr, $body:expr) => {
            v.push(Case {
                name: $name,
                run: Box::new($body),
            })
        };
    }
    case!(
        "mirror/buddyinfo has /proc/buddyinfo's exact layout",
        || {
            // The checker must accept the kernel's own file, or it proves nothing.
            check_zone_lines(&read("/proc/buddyinfo")?, "/proc/buddyinfo", count_field)?;
            check_zone_lines(&mirror_file("buddyinfo")?, "mirror/buddyinfo", count_field)
        }
    );
    case!(
        "mirror/extfrag_index and unusable_index have mm/vmstat.c's layouts",
        || {
            check_zone_lines(
                &mirror_file("extfrag_index")?,
                "extfrag_index",
                index_field(true),
            )?;
            check_zone_lines(
                &mirror_file("unusable_index")?,
                "unusable_index",
                index_field(false),
            )
        }
    );
    case!(
        "mirror/slabinfo has /proc/slabinfo's exact header and line layout",
        || {
            let real = read("/proc/slabinfo")?;
            let mine = mirror_file("slabinfo")?;
            let head = |s: &str| s.lines().take(2).collect::<Vec<_>>().join("\n");
            check(head(&real) == head(&mine), || {
                format!("headers differ:\n{}\n---\n{}", head(&real), head(&mine))
            })?;
            for (file, text) in [("/proc/slabinfo", &real), ("mirror/slabinfo", &mine)] {
                for line in text.lines().skip(2) {
                    let again = slabinfo_line_again(line)
                        .ok_or_else(|| format!("{file}: cannot parse {line:?}"))?;
                    check(again == line, || {
                        format!("{file}: layout differs:\n got  {line:?}\n want {again:?}")
                    })?;
                }
            }
            for class in ["kmalloc-8", "kmalloc-96", "kmalloc-192", "kmalloc-8k"] {
                check(
                    mine.lines()
                        .any(|l| l.split_whitespace().next() == Some(class)),
                    || format!("no {class} in mirror/slabinfo"),
                )?;
            }
            Ok(())
        }
    );
    case!(
        "mirror pool holds pool_mb (16 MiB) of pages across its zones",
        || {
            let pool = mirror_file("pool")?;
            let total: u64 = pool
                .lines()
                .filter_map(|l| l.strip_prefix("zone "))
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
                .sum();
            check(total == 4096, || {
                format!("zones manage {total} pages, want 4096:\n{pool}")
            })?;
            check(free_pages_in(&mirror_file("buddyinfo")?) <= 4096, || {
                "more free than managed".into()
            })
        }
    );
    case!(
        "mirror pages: order 3 is 8 aligned pages and shows in mirror/buddyinfo",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let before = free_pages_in(&mirror_file("buddyinfo")?);
            let i = alloc_inspect(
                &d,
                &uapi::MemlabAlloc {
                    order: 3,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                },
            )?;
            check(
                i.nr_pages == 8 && i.first_pfn % 8 == 0 && i.phys_runs == 1 && i.usable == 8 << 12,
                || format!("{i:?}"),
            )?;
            let during = free_pages_in(&mirror_file("buddyinfo")?);
            check(before - during == 8, || {
                format!("free pages {before} -> {during}, want -8")
            })?;
            d.free(i.handle).map_err(|e| e.to_string())?;
            let after = free_pages_in(&mirror_file("buddyinfo")?);
            check(after == before, || {
                format!("free pages {before} -> {after} after FREE")
            })
        }
    );
    case!(
        "mirror kmalloc: ksize is the size class; above KMALLOC_MAX_SIZE is ENOMEM",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            for (size, class) in [
                (1u64, 8u64),
                (100, 128),
                (150, 192),
                (4097, 8192),
                (8193, 12288),
            ] {
                let i = alloc_inspect(
                    &d,
                    &uapi::MemlabAlloc {
                        size,
                        ..mirror_req(uapi::MEMLAB_FAMILY_KMALLOC)
                    },
                )?;
                // Above 8 KiB kmalloc takes whole pages: 8193 B is an order-2 block.
                let want = if size > 8192 { 16384 } else { class };
                check(i.usable == want, || {
                    format!("kmalloc({size}): usable {} want {want}", i.usable)
                })?;
            }
            let big = uapi::MemlabAlloc {
                size: (4 << 20) + 1,
                ..mirror_req(uapi::MEMLAB_FAMILY_KMALLOC)
            };
            match d.alloc(&big) {
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => Ok(()),
                other => Err(format!("kmalloc(4 MiB + 1): {other:?}, want ENOMEM")),
            }
        }
    );
    case!("mirror kmem_cache honours a 256-byte alignment", || {
        let d = Memlab::open().map_err(|e| e.to_string())?;
        let req = uapi::MemlabAlloc {
            size: 100,
            align: 256,
            ..mirror_req(uapi::MEMLAB_FAMILY_KMEM_CACHE)
        };
        for _ in 0..4 {
            let i = alloc_inspect(&d, &req)?;
            check(i.align_log2 >= 8, || {
                format!("object at 2^{} alignment", i.align_log2)
            })?;
        }
        Ok(())
    });
    case!(
        "mirror GFP: DMA from ZONE_DMA, DMA32 below 4 GiB, __GFP_ZERO zeroes",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let page = |gfp| uapi::MemlabAlloc {
                gfp,
                ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
            };
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_DMA))?;
            check(i.zone == uapi::MEMLAB_ZONE_DMA, || {
                format!("GFP_DMA zone {}", i.zone)
            })?;
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_DMA32))?;
            check(
                i.zone <= uapi::MEMLAB_ZONE_DMA32 && i.first_pfn < 1 << 20,
                || format!("GFP_DMA32: {i:?}"),
            )?;
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_KERNEL | uapi::MEMLAB_GFP_ZERO))?;
            check(i.zeroed == 1, || format!("GFP_KERNEL|__GFP_ZERO: {i:?}"))
        }
    );
    case!(
        "mirror watermark: GFP_NOWAIT stops at the reserve, GFP_ATOMIC dips into it",
        || {
            let count_until_enomem = |d: &Memlab, gfp| -> Result<u32, String> {
                let req = uapi::MemlabAlloc {
                    gfp,
                    order: 4,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                };
                for n in 0..1024 {
                    match d.alloc(&req) {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => return Ok(n),
                        Err(e) => return Err(format!("after {n}: {e}")),
                    }
                }
                Err("no ENOMEM after 1024 order-4 blocks".into())
            };
            let n1 = {
                let d = Memlab::open().map_err(|e| e.to_string())?;
                let n = count_until_enomem(&d, uapi::MEMLAB_GFP_NOWAIT)?;
                let atomic = uapi::MemlabAlloc {
                    gfp: uapi::MEMLAB_GFP_ATOMIC,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                };
                d.alloc(&atomic)
                    .map_err(|e| format!("GFP_ATOMIC below the watermark: {e}"))?;
                n
            };
            // Closing the file gave everything back: the same count again.
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let n2 = count_until_enomem(&d, uapi::MEMLAB_GFP_NOWAIT)?;
            check(n1 > 100 && n1 == n2, || {
                format!("order-4 blocks before ENOMEM: {n1} then {n2}")
            })
        }
    );
    v
}
