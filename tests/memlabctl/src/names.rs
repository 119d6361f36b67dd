// SPDX-License-Identifier: GPL-2.0

//! Names of families, GFP selectors, zones and exercises, for the command
//! line and for output.

use crate::dev::uapi;

/// (name, MEMLAB_FAMILY_*).
pub const FAMILIES: &[(&str, u32)] = &[
    ("kmalloc", uapi::MEMLAB_FAMILY_KMALLOC),
    ("vmalloc", uapi::MEMLAB_FAMILY_VMALLOC),
    ("pages", uapi::MEMLAB_FAMILY_PAGES),
    ("kmem_cache", uapi::MEMLAB_FAMILY_KMEM_CACHE),
    ("dma", uapi::MEMLAB_FAMILY_DMA),
];

/// (name, MEMLAB_GFP_*).
pub const GFPS: &[(&str, u32)] = &[
    ("GFP_KERNEL", uapi::MEMLAB_GFP_KERNEL),
    ("GFP_ATOMIC", uapi::MEMLAB_GFP_ATOMIC),
    ("GFP_NOWAIT", uapi::MEMLAB_GFP_NOWAIT),
    ("GFP_NOIO", uapi::MEMLAB_GFP_NOIO),
    ("GFP_NOFS", uapi::MEMLAB_GFP_NOFS),
    ("GFP_USER", uapi::MEMLAB_GFP_USER),
    ("GFP_HIGHUSER", uapi::MEMLAB_GFP_HIGHUSER),
    ("GFP_DMA", uapi::MEMLAB_GFP_DMA),
    ("GFP_DMA32", uapi::MEMLAB_GFP_DMA32),
];

/// (name, MEMLAB_EX_*).
pub const EXERCISES: &[(&str, u32)] = &[
    ("kmalloc", uapi::MEMLAB_EX_KMALLOC),
    ("vmalloc", uapi::MEMLAB_EX_VMALLOC),
    ("pages", uapi::MEMLAB_EX_PAGES),
    ("kmem_cache", uapi::MEMLAB_EX_KMEM_CACHE),
    ("dma", uapi::MEMLAB_EX_DMA),
    ("gfp", uapi::MEMLAB_EX_GFP),
];

/// Looks `name` up in `table`, case-insensitively.
pub fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

/// The name of `value` in `table`, or "?".
pub fn name_of(table: &[(&'static str, u32)], value: u32) -> &'static str {
    table
        .iter()
        .find(|&&(_, v)| v == value)
        .map_or("?", |&(n, _)| n)
}

/// Parses `GFP_KERNEL`, `kernel`, `GFP_DMA32+zero`, ... into a gfp field;
/// [`gfp_name`]'s `GFP_X|__GFP_ZERO` too.
pub fn parse_gfp(s: &str) -> Option<u32> {
    let zero = s
        .strip_suffix("+zero")
        .or_else(|| s.strip_suffix("+ZERO"))
        .or_else(|| s.strip_suffix("|__GFP_ZERO"));
    let (base, zero) = match zero {
        Some(b) => (b, uapi::MEMLAB_GFP_ZERO),
        None => (s, 0),
    };
    let full = if base.to_ascii_uppercase().starts_with("GFP_") {
        base.to_string()
    } else {
        format!("GFP_{base}")
    };
    lookup(GFPS, &full).map(|g| g | zero)
}

/// Prints a gfp field as `GFP_X` or `GFP_X|__GFP_ZERO`.
pub fn gfp_name(gfp: u32) -> String {
    let base = name_of(GFPS, gfp & 0xff);
    if gfp & uapi::MEMLAB_GFP_ZERO != 0 {
        format!("{base}|__GFP_ZERO")
    } else {
        base.to_string()
    }
}

/// Zone name as /proc/buddyinfo spells it.
pub fn zone_name(zone: u32) -> &'static str {
    match zone {
        uapi::MEMLAB_ZONE_DMA => "DMA",
        uapi::MEMLAB_ZONE_DMA32 => "DMA32",
        uapi::MEMLAB_ZONE_NORMAL => "Normal",
        uapi::MEMLAB_ZONE_MOVABLE => "Movable",
        uapi::MEMLAB_ZONE_MIXED => "mixed",
        _ => "?",
    }
}

/// The kernel function behind `family` on `backend`: what a reader greps
/// the kernel (or memlab's mirror) for. The mirror's functions carry the
/// kernel's names (src/mirror/); its vmalloc maps mirror pages with
/// `vm_map_ram` and its DMA maps a mirror block with `dma_map_page`.
pub fn family_api(family: u32, backend: u32) -> &'static str {
    let mirror = backend == uapi::MEMLAB_BACKEND_MIRROR;
    match family {
        uapi::MEMLAB_FAMILY_KMALLOC => "kmalloc",
        uapi::MEMLAB_FAMILY_VMALLOC if mirror => "vm_map_ram",
        uapi::MEMLAB_FAMILY_VMALLOC => "__vmalloc",
        uapi::MEMLAB_FAMILY_PAGES => "alloc_pages",
        uapi::MEMLAB_FAMILY_KMEM_CACHE => "kmem_cache_alloc",
        uapi::MEMLAB_FAMILY_DMA if mirror => "dma_map_page",
        uapi::MEMLAB_FAMILY_DMA => "dma_alloc_coherent",
        _ => "?",
    }
}

/// memlab's DMA device for a GFP selector: its mask has that many bits.
pub fn dma_device(gfp: u32) -> &'static str {
    match gfp & 0xff {
        uapi::MEMLAB_GFP_DMA => "memlab-dma.24",
        uapi::MEMLAB_GFP_DMA32 => "memlab-dma.32",
        _ => "memlab-dma.64",
    }
}

/// One line on what an ALLOC of `family` with `gfp` calls on `backend`.
pub fn family_call(family: u32, backend: u32, gfp: u32) -> String {
    let g = gfp_name(gfp);
    let mirror = backend == uapi::MEMLAB_BACKEND_MIRROR;
    match family {
        uapi::MEMLAB_FAMILY_KMALLOC if mirror => format!(
            "mirror kmalloc(size, {g}): memlab's slab, size classes kmalloc-8..kmalloc-8k \
             (dma-kmalloc-* for GFP_DMA), whole mirror pages above 8 KiB"
        ),
        uapi::MEMLAB_FAMILY_KMALLOC => format!("kmalloc(size, {g}) / kfree; usable is ksize()"),
        uapi::MEMLAB_FAMILY_VMALLOC if mirror => format!(
            "mirror vmalloc: order-0 alloc_pages({g}) from the mirror's buddy, mapped with vm_map_ram"
        ),
        uapi::MEMLAB_FAMILY_VMALLOC => format!("__vmalloc(size, {g}) / vfree"),
        uapi::MEMLAB_FAMILY_PAGES if mirror => format!(
            "mirror alloc_pages({g}, order): memlab's buddy on the mirror's pool \
             (order 0 through its per-CPU lists)"
        ),
        uapi::MEMLAB_FAMILY_PAGES => format!("alloc_pages({g}, order) / __free_pages"),
        uapi::MEMLAB_FAMILY_KMEM_CACHE if mirror => format!(
            "mirror kmem_cache_alloc(cache, {g}): memlab's slab cache of the object size, on mirror pages"
        ),
        uapi::MEMLAB_FAMILY_KMEM_CACHE => format!(
            "kmem_cache_create(size, align) + kmem_cache_alloc(cache, {g}); destroyed with the handle"
        ),
        uapi::MEMLAB_FAMILY_DMA if mirror => format!(
            "mirror dma: alloc_pages({g}) from the mirror's buddy, dma_map_page for {}",
            dma_device(gfp)
        ),
        uapi::MEMLAB_FAMILY_DMA => format!(
            "dma_alloc_coherent({}, size, {g}) / dma_free_coherent",
            dma_device(gfp)
        ),
        _ => "?".into(),
    }
}

/// The kernel functions an exercise calls, by `MEMLAB_EX_*`.
pub fn exercise_api(id: u32) -> &'static str {
    match id {
        uapi::MEMLAB_EX_KMALLOC => "kmalloc, ksize",
        uapi::MEMLAB_EX_VMALLOC => "vmalloc, vzalloc, vmalloc_to_pfn",
        uapi::MEMLAB_EX_PAGES => "alloc_pages, __get_free_pages",
        uapi::MEMLAB_EX_KMEM_CACHE => "kmem_cache_create, kmem_cache_alloc",
        uapi::MEMLAB_EX_DMA => "dma_alloc_coherent, dma_map_single",
        uapi::MEMLAB_EX_GFP => "alloc_pages, kmalloc under each GFP_*",
        _ => "?",
    }
}

/// The kernel call behind a `what` of the module's exercise report
/// (src/real/exercise.rs), given its argument's name; `None` if unknown.
pub fn report_api(what: &str, arg_name: &str) -> Option<String> {
    if let Some(bits) = what
        .strip_prefix("coherent/")
        .and_then(|b| b.strip_suffix("bit"))
    {
        return Some(format!(
            "dma_alloc_coherent on memlab-dma.{bits} ({bits}-bit DMA mask)"
        ));
    }
    if let Some(bits) = what
        .strip_prefix("map_single/")
        .and_then(|b| b.strip_suffix("bit"))
    {
        return Some(format!(
            "dma_map_single of a kmalloc buffer for memlab-dma.{bits}"
        ));
    }
    if what.starts_with("GFP_") {
        return match arg_name {
            "pages_order" => Some(format!("alloc_pages({what}, order)")),
            "kmalloc_size" => Some(format!("kmalloc(size, {what})")),
            _ => None,
        };
    }
    Some(
        match what {
            "kmalloc" => "kmalloc",
            "vmalloc" => "vmalloc",
            "vzalloc" => "vzalloc",
            "alloc_pages" => "alloc_pages",
            "__get_free_pages" => "__get_free_pages",
            "alloc_pages+zero" => "alloc_pages(GFP_KERNEL | __GFP_ZERO, order)",
            "kmem_cache+ctor" => "kmem_cache_create with a constructor, then kmem_cache_alloc",
            "kmem_cache+zero" => "kmem_cache_alloc(cache, GFP_KERNEL | __GFP_ZERO)",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfp_names_round_trip() {
        for &(name, v) in GFPS {
            assert_eq!(parse_gfp(name), Some(v));
            assert_eq!(
                parse_gfp(&format!("{name}+zero")),
                Some(v | uapi::MEMLAB_GFP_ZERO)
            );
            assert_eq!(gfp_name(v), name);
            let z = v | uapi::MEMLAB_GFP_ZERO;
            assert_eq!(parse_gfp(&gfp_name(z)), Some(z));
        }
        assert_eq!(parse_gfp("dma32"), Some(uapi::MEMLAB_GFP_DMA32));
        assert_eq!(parse_gfp("GFP_BOGUS"), None);
    }

    #[test]
    fn tables_cover_the_abi() {
        assert_eq!(FAMILIES.len() as u32, uapi::MEMLAB_NR_FAMILIES);
        assert_eq!(GFPS.len() as u32, uapi::MEMLAB_NR_GFP);
        assert_eq!(EXERCISES.len() as u32, uapi::MEMLAB_NR_EXERCISES);
        for &(_, f) in FAMILIES {
            for b in [uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR] {
                assert_ne!(family_api(f, b), "?");
                assert!(family_call(f, b, uapi::MEMLAB_GFP_DMA32).contains("GFP_DMA32"));
            }
        }
        for &(_, e) in EXERCISES {
            assert_ne!(exercise_api(e), "?");
        }
    }

    #[test]
    fn kernel_names() {
        assert_eq!(
            family_api(uapi::MEMLAB_FAMILY_DMA, uapi::MEMLAB_BACKEND_REAL),
            "dma_alloc_coherent"
        );
        assert!(family_call(
            uapi::MEMLAB_FAMILY_DMA,
            uapi::MEMLAB_BACKEND_REAL,
            uapi::MEMLAB_GFP_DMA32
        )
        .starts_with("dma_alloc_coherent(memlab-dma.32, size, GFP_DMA32)"));
        assert_eq!(
            report_api("coherent/32bit", "size").as_deref(),
            Some("dma_alloc_coherent on memlab-dma.32 (32-bit DMA mask)")
        );
        assert_eq!(
            report_api("GFP_NOIO", "pages_order").as_deref(),
            Some("alloc_pages(GFP_NOIO, order)")
        );
        assert_eq!(report_api("bogus", "size"), None);
    }
}
