// SPDX-License-Identifier: GPL-2.0

//! Memory overhead: bytes each kmalloc object really costs on both sides
//! (its slab's pages over the objects it holds, from `/proc/slabinfo` and
//! the mirror's `mirror/slabinfo`, which share the format), and the page
//! metadata each backend keeps per page (from the WORKLOAD ioctl).

use crate::dev::{uapi, Memlab, DEBUGFS};
use serde::Serialize;
use std::fs;

/// A cache's slab geometry, from a slabinfo 2.1 line.
#[derive(Serialize, Debug, PartialEq, Clone, Copy)]
pub struct Geometry {
    pub objsize: u64,
    pub objperslab: u64,
    pub pagesperslab: u64,
}

impl Geometry {
    /// Bytes of slab memory per object: the slab's pages over its objects.
    pub fn bytes_per_object(&self) -> f64 {
        (self.pagesperslab * 4096) as f64 / self.objperslab.max(1) as f64
    }
}

/// The name and geometry of one slabinfo 2.1 line (`name active_objs
/// num_objs objsize objperslab pagesperslab ...`); the in-VM geometry
/// cases read `/proc/slabinfo` with it too.
pub fn line_geometry(line: &str) -> Result<(&str, Geometry), String> {
    let mut w = line.split_whitespace();
    let name = w.next().ok_or("empty slabinfo line")?;
    let f: Vec<u64> = w
        .skip(2)
        .take(3)
        .map(|v| v.parse().map_err(|e| format!("{name}: {v}: {e}")))
        .collect::<Result<_, _>>()?;
    match f[..] {
        [objsize, objperslab, pagesperslab] => Ok((
            name,
            Geometry {
                objsize,
                objperslab,
                pagesperslab,
            },
        )),
        _ => Err(format!("short line: {line}")),
    }
}

/// `kmalloc-N` caches of a slabinfo file, by name.
pub fn parse_slabinfo(s: &str) -> Vec<(String, Geometry)> {
    s.lines()
        .filter(|l| l.starts_with("kmalloc-"))
        .filter_map(|l| line_geometry(l).ok())
        .map(|(name, g)| (name.to_string(), g))
        .collect()
}

/// One kmalloc class on both sides.
#[derive(Serialize, Debug, PartialEq)]
pub struct ClassOverhead {
    pub cache: String,
    pub real: Geometry,
    pub mirror: Geometry,
    /// Slab bytes per object over the object size, minus 1 (0 = no waste).
    pub real_waste: f64,
    pub mirror_waste: f64,
    /// mirror / real bytes per object.
    pub ratio: f64,
}

/// `memlabctl bench`'s memory overhead section.
#[derive(Serialize, Debug, PartialEq)]
pub struct Overhead {
    pub classes: Vec<ClassOverhead>,
    /// Page metadata bytes per page: real `struct page`, mirror `PageMeta`.
    pub real_page_meta_bytes: u32,
    pub mirror_page_meta_bytes: u32,
}

/// Both slabinfo texts joined class by class (the mirror's names, the
/// real line of the same name).
pub fn classes(real: &str, mirror: &str) -> Vec<ClassOverhead> {
    let real = parse_slabinfo(real);
    parse_slabinfo(mirror)
        .into_iter()
        .filter_map(|(cache, m)| {
            let r = real.iter().find(|(n, _)| *n == cache)?.1;
            let waste = |g: &Geometry| g.bytes_per_object() / g.objsize.max(1) as f64 - 1.0;
            Some(ClassOverhead {
                real_waste: waste(&r),
                mirror_waste: waste(&m),
                ratio: m.bytes_per_object() / r.bytes_per_object(),
                cache,
                real: r,
                mirror: m,
            })
        })
        .collect()
}

/// Measures the overhead on the running kernel.
pub fn measure(d: &Memlab) -> std::io::Result<Overhead> {
    let real = fs::read_to_string("/proc/slabinfo")?;
    let mirror = fs::read_to_string(format!("{DEBUGFS}/mirror/slabinfo"))?;
    let meta = |backend| {
        d.workload(&uapi::MemlabWorkload {
            backend,
            family: uapi::MEMLAB_FAMILY_KMALLOC,
            count: 1,
            size: 64,
            ops_per_sample: 1,
            ..Default::default()
        })
        .map(|w| w.page_meta_bytes)
    };
    Ok(Overhead {
        classes: classes(&real, &mirror),
        real_page_meta_bytes: meta(uapi::MEMLAB_BACKEND_REAL)?,
        mirror_page_meta_bytes: meta(uapi::MEMLAB_BACKEND_MIRROR)?,
    })
}

impl Overhead {
    /// The section's lines.
    pub fn human(&self) -> Vec<String> {
        let mut out = vec![format!(
            "  page metadata per 4 KiB page: real struct page {} B, mirror PageMeta {} B",
            self.real_page_meta_bytes, self.mirror_page_meta_bytes
        )];
        out.push(format!(
            "  {:<14} {:>18} {:>18} {:>11} {:>11} {:>8}",
            "cache",
            "real obj/slab pg",
            "mirror obj/slab pg",
            "real waste",
            "mirr waste",
            "bytes x"
        ));
        for c in &self.classes {
            out.push(format!(
                "  {:<14} {:>13}/{:<4} {:>13}/{:<4} {:>10.1}% {:>10.1}% {:>7.3}x",
                c.cache,
                c.real.objperslab,
                c.real.pagesperslab,
                c.mirror.objperslab,
                c.mirror.pagesperslab,
                c.real_waste * 100.0,
                c.mirror_waste * 100.0,
                c.ratio
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_geometries_join_by_name() {
        let real = "slabinfo - version: 2.1\n# name ...\n\
                    kmalloc-8k 16 16 8192 4 8 : tunables 0 0 0 : slabdata 4 4 0\n\
                    kmalloc-64 512 512 64 64 1 : tunables 0 0 0 : slabdata 8 8 0\n\
                    dentry 1 1 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n";
        let mirror = "slabinfo - version: 2.1\n# name ...\n\
                      kmalloc-64 0 0 64 63 1 : tunables 0 0 0 : slabdata 0 0 0\n\
                      kmalloc-8k 0 0 8192 3 8 : tunables 0 0 0 : slabdata 0 0 0\n\
                      kmalloc-96 0 0 96 42 1 : tunables 0 0 0 : slabdata 0 0 0\n";
        let c = classes(real, mirror);
        assert_eq!(c.len(), 2, "kmalloc-96 has no real twin here");
        assert_eq!(c[0].cache, "kmalloc-64");
        assert_eq!(c[0].real_waste, 0.0);
        assert!((c[0].ratio - 64.0 / 63.0).abs() < 1e-9);
        assert_eq!(c[1].real.objperslab, 4);
        assert!((c[1].mirror_waste - (32768.0 / 3.0 / 8192.0 - 1.0)).abs() < 1e-9);
        assert!(parse_slabinfo(real)
            .iter()
            .all(|(n, _)| n.starts_with("kmalloc-")));
    }
}
