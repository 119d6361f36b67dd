// SPDX-License-Identifier: GPL-2.0

//! `/proc/slabinfo` version 2.1 (and the mirror's `mirror/slabinfo`, which
//! has its layout): `cache_show()` in mm/slab_common.c.

use super::CacheStat;

/// One line of /proc/slabinfo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcRow {
    pub name: String,
    pub active_objs: u64,
    pub num_objs: u64,
    /// `s->size`: the object slot, sysfs `slab_size`.
    pub objsize: u64,
    pub objperslab: u64,
    pub pagesperslab: u64,
    pub active_slabs: u64,
    pub num_slabs: u64,
}

/// The rows of a /proc/slabinfo text.
pub fn parse(text: &str) -> Result<Vec<ProcRow>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("slabinfo - version: 2.1") => {}
        other => return Err(format!("not slabinfo 2.1: first line {other:?}")),
    }
    lines
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(parse_line)
        .collect()
}

/// `name active num objsize perslab pages : tunables l b s : slabdata a n s`.
fn parse_line(line: &str) -> Result<ProcRow, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let bad = || format!("bad slabinfo line: {line:?}");
    if f.len() != 16 || f[6] != ":" || f[7] != "tunables" || f[11] != ":" || f[12] != "slabdata" {
        return Err(bad());
    }
    let n = |i: usize| f[i].parse::<u64>().map_err(|_| bad());
    Ok(ProcRow {
        name: f[0].to_string(),
        active_objs: n(1)?,
        num_objs: n(2)?,
        objsize: n(3)?,
        objperslab: n(4)?,
        pagesperslab: n(5)?,
        active_slabs: n(13)?,
        num_slabs: n(14)?,
    })
}

impl ProcRow {
    /// What /proc/slabinfo would print for `s`: SLUB's `get_slabinfo()`
    /// gives `objects`, `total_objects`, `slab_size`, `objs_per_slab`,
    /// `1 << order` and the slab count twice.
    pub fn of(s: &CacheStat) -> ProcRow {
        ProcRow {
            name: s.name.clone(),
            active_objs: s.objects,
            num_objs: s.total_objects,
            objsize: s.slab_size,
            objperslab: s.objs_per_slab,
            pagesperslab: 1u64.checked_shl(s.order).unwrap_or(0),
            active_slabs: s.slabs,
            num_slabs: s.slabs,
        }
    }

    /// The fields where `self` and `other` differ, `name (self vs other)`.
    pub fn diff(&self, other: &ProcRow) -> Vec<String> {
        let fields = [
            ("active_objs", self.active_objs, other.active_objs),
            ("num_objs", self.num_objs, other.num_objs),
            ("objsize", self.objsize, other.objsize),
            ("objperslab", self.objperslab, other.objperslab),
            ("pagesperslab", self.pagesperslab, other.pagesperslab),
            ("num_slabs", self.num_slabs, other.num_slabs),
        ];
        fields
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(n, a, b)| format!("{n} {a} vs {b}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slabstat::{real, Side};

    const PROC: &str = include_str!("../testdata/proc-slabinfo-uml.txt");

    #[test]
    fn parses_proc_slabinfo() {
        let rows = parse(PROC).unwrap();
        assert!(rows.len() > 30, "{}", rows.len());
        let r = rows.iter().find(|r| r.name == "kmalloc-8k").unwrap();
        assert_eq!((r.objsize, r.objperslab, r.pagesperslab), (8192, 4, 8));
        assert!(parse("slabinfo - version: 2.0\n").is_err());
        let cut = "slabinfo - version: 2.1\nkmalloc-8 1 2 8 512 1 : tunables 0 0 0\n";
        assert!(parse(cut).is_err());
    }

    /// The capture's sysfs and /proc/slabinfo were read one after the
    /// other: every cache's geometry agrees, and so do the counts of caches
    /// nothing allocated from in between.
    #[test]
    fn sysfs_capture_agrees_with_proc() {
        let root = real::tests::tree("proc");
        let caches = real::read_all_with(&root, 4096).unwrap();
        let rows = parse(PROC).unwrap();
        let mut same = 0;
        for r in &rows {
            let s = caches
                .iter()
                .find(|s| s.answers_to(&r.name))
                .unwrap_or_else(|| panic!("{} not in sysfs", r.name));
            assert_eq!(s.side, Side::Real);
            let d = ProcRow::of(s).diff(r);
            assert!(
                d.iter().all(|f| f.starts_with("active_objs")
                    || f.starts_with("num_objs")
                    || f.starts_with("num_slabs")),
                "{}: {d:?}",
                r.name
            );
            same += usize::from(d.is_empty());
        }
        assert!(same * 2 > rows.len(), "{same} of {} rows agree", rows.len());
        let _ = std::fs::remove_dir_all(root);
    }
}
