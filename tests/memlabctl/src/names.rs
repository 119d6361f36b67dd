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

/// Parses `GFP_KERNEL`, `kernel`, `GFP_DMA32+zero`, ... into a gfp field.
pub fn parse_gfp(s: &str) -> Option<u32> {
    let (base, zero) = match s.strip_suffix("+zero").or_else(|| s.strip_suffix("+ZERO")) {
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
        }
        assert_eq!(parse_gfp("dma32"), Some(uapi::MEMLAB_GFP_DMA32));
        assert_eq!(parse_gfp("GFP_BOGUS"), None);
    }

    #[test]
    fn tables_cover_the_abi() {
        assert_eq!(FAMILIES.len() as u32, uapi::MEMLAB_NR_FAMILIES);
        assert_eq!(GFPS.len() as u32, uapi::MEMLAB_NR_GFP);
        assert_eq!(EXERCISES.len() as u32, uapi::MEMLAB_NR_EXERCISES);
    }
}
