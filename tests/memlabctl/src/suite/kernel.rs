// SPDX-License-Identifier: GPL-2.0

//! What the running kernel has, where kernels differ in ways the cases
//! must follow: its zones (`/proc/zoneinfo` lists every configured zone,
//! populated or not) and whether it has a DMA API at all. On User-Mode
//! Linux there is neither ZONE_DMA nor ZONE_DMA32 (the kernel's `gfp_zone`
//! sends GFP_DMA and GFP_DMA32 to ZONE_NORMAL), and no DMA API (NO_DMA:
//! memlab registers no DMA device, and the DMA family answers ENODEV).
//! Only there are DMA cases skipped; on x86-64 a missing DMA device fails
//! them.
//!
//! Also the page allocator's and kmalloc's limits, which kernels set at
//! build time: MAX_PAGE_ORDER (10 in Debian's 7.2 on x86-64, but a config
//! option on some architectures), read from `/proc/buddyinfo`, and
//! KMALLOC_MAX_SIZE, SLUB's `PAGE_SIZE << MAX_PAGE_ORDER`
//! (`KMALLOC_SHIFT_MAX` in include/linux/slab.h).

use crate::dev::uapi::{MEMLAB_GFP_DMA, MEMLAB_GFP_DMA32, MEMLAB_ZONE_DMA, MEMLAB_ZONE_DMA32};
use crate::tap::SKIP;
use std::sync::OnceLock;

struct Facts {
    zone_dma: bool,
    zone_dma32: bool,
    uml: bool,
}

fn facts() -> &'static Facts {
    static FACTS: OnceLock<Facts> = OnceLock::new();
    FACTS.get_or_init(|| {
        let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").unwrap_or_default();
        let has = |zone: &str| {
            zoneinfo
                .lines()
                .any(|l| l.starts_with("Node ") && l.split_whitespace().nth(3) == Some(zone))
        };
        Facts {
            zone_dma: has("DMA"),
            zone_dma32: has("DMA32"),
            uml: crate::dev::is_uml(),
        }
    })
}

/// Whether this kernel is User-Mode Linux.
pub fn is_uml() -> bool {
    facts().uml
}

/// The highest `MEMLAB_ZONE_*` a GFP selector may land in on this kernel
/// (its `gfp_zone`); `None` for no limit below ZONE_NORMAL.
pub fn zone_limit(sel: u32) -> Option<u32> {
    let f = facts();
    match sel {
        MEMLAB_GFP_DMA if f.zone_dma => Some(MEMLAB_ZONE_DMA),
        MEMLAB_GFP_DMA32 if f.zone_dma32 => Some(MEMLAB_ZONE_DMA32),
        _ => None,
    }
}

/// Whether the zone `name` (`DMA`, `DMA32`, ...) exists on this kernel.
pub fn has_zone(name: &str) -> bool {
    match name {
        "DMA" => facts().zone_dma,
        "DMA32" => facts().zone_dma32,
        _ => true,
    }
}

/// A skip when this kernel has no DMA API (User-Mode Linux), else `Ok`.
pub fn need_dma() -> Result<(), String> {
    if is_uml() {
        Err(format!(
            "{SKIP}no DMA API on this kernel (User-Mode Linux selects NO_DMA)"
        ))
    } else {
        Ok(())
    }
}

/// A skip when this kernel lacks zone `name`, else `Ok`.
pub fn need_zone(name: &str) -> Result<(), String> {
    if has_zone(name) {
        Ok(())
    } else {
        Err(format!("{SKIP}no zone {name} on this kernel"))
    }
}

/// The kernel log, through syslog(2) (SYSLOG_ACTION_READ_ALL).
pub fn log() -> Result<String, String> {
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as i32) };
    if n < 0 {
        return Err(format!("klogctl: {}", std::io::Error::last_os_error()));
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The running kernel's MAX_PAGE_ORDER, from the kernel itself rather than
/// a release's value: /proc/buddyinfo has one count per order,
/// `NR_PAGE_ORDERS` (MAX_PAGE_ORDER + 1) after `Node N, zone NAME`.
pub fn max_page_order() -> Result<u32, String> {
    let text = super::read("/proc/buddyinfo")?;
    orders_in(&text)
        .and_then(|n| n.checked_sub(1))
        .ok_or_else(|| format!("/proc/buddyinfo has no per-order counts: {text:?}"))
}

/// The per-order counts on the first line of a /proc/buddyinfo text.
fn orders_in(buddyinfo: &str) -> Option<u32> {
    let n = buddyinfo.lines().next()?.split_whitespace().count();
    u32::try_from(n.checked_sub(4)?).ok().filter(|&n| n > 0)
}

/// The running kernel's KMALLOC_MAX_SIZE: SLUB's largest kmalloc,
/// `PAGE_SIZE << MAX_PAGE_ORDER`; one byte more is ENOMEM on both backends.
pub fn kmalloc_max_size() -> Result<u64, String> {
    Ok(super::PAGE << max_page_order()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn orders_are_the_counts_after_the_zone_name() {
        let x86 = "Node 0, zone      DMA      1      1      1      1      1      1      1      1      0      0      1 \n\
                   Node 0, zone   Normal      4      0      2      1      0      0      0      0      1      1    200 \n";
        assert_eq!(super::orders_in(x86), Some(11));
        let thirteen = "Node 0, zone   Normal 1 2 3 4 5 6 7 8 9 10 11 12 13\n";
        assert_eq!(super::orders_in(thirteen), Some(13));
        assert_eq!(super::orders_in("Node 0, zone   Normal\n"), None);
        assert_eq!(super::orders_in(""), None);
    }
}
