// SPDX-License-Identifier: GPL-2.0

//! The mirror's caches from debugfs `mirror/slabstat`: a header line
//! naming the columns (`# name object_size ...`, the kernel module's
//! `render::SLABSTAT_COLUMNS`), then one line per cache. Columns are found
//! by name, so a column added later does not break an older reader.

use super::{CacheStat, Side};
use crate::dev::DEBUGFS;
use memlab_core::render::SLABSTAT_COLUMNS;

/// Path of the file.
pub fn path() -> String {
    format!("{DEBUGFS}/mirror/slabstat")
}

/// Reads and parses the file.
pub fn read() -> Result<Vec<CacheStat>, String> {
    let p = path();
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
    parse(&text, super::page_size()).map_err(|e| format!("{p}: {e}"))
}

/// The caches in `text`, slabs of `page_size << order` bytes.
pub fn parse(text: &str, page_size: u64) -> Result<Vec<CacheStat>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .ok_or("no '# name ...' header line")?
        .split_whitespace()
        .collect();
    if let Some(missing) = SLABSTAT_COLUMNS.iter().find(|c| !header.contains(c)) {
        return Err(format!("no column {missing}"));
    }
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap_or(0);
    lines
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            if cells.len() != header.len() {
                return Err(format!(
                    "line {}: {} fields, header has {}",
                    i + 2,
                    cells.len(),
                    header.len()
                ));
            }
            let num = |c: &str| -> Result<u64, String> {
                cells[col(c)]
                    .parse()
                    .map_err(|_| format!("line {}: {c} {:?} is not a number", i + 2, cells[col(c)]))
            };
            let counts = super::counts(&num)?;
            let name = cells[col("name")];
            let mut s = CacheStat::new(Side::Mirror, name, &counts, page_size);
            s.sheaf_capacity = Some(num("sheaf_capacity")?);
            s.sheaf_fill = Some(num("sheaf_fill")?);
            s.barn_full = Some(num("barn_full")?);
            s.barn_empty = Some(num("barn_empty")?);
            if name.starts_with("dma-") {
                s.flags = "d".into();
            }
            Ok(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mirror/slabstat` captured on the UML test kernel (Debian 7.2.13)
    /// after 100 mirror kmalloc-64 objects were allocated and freed.
    const CAPTURE: &str = include_str!("../testdata/mirror-slabstat-uml.txt");

    #[test]
    fn parses_the_capture() {
        let all = parse(CAPTURE, 4096).unwrap();
        assert_eq!(all.len(), 26, "13 kmalloc and 13 dma-kmalloc caches");
        let c = all.iter().find(|s| s.name == "kmalloc-64").unwrap();
        assert_eq!(c.side, Side::Mirror);
        assert_eq!((c.object_size, c.objs_per_slab, c.order), (64, 64, 0));
        assert_eq!(c.sheaf_capacity, Some(60));
        assert!(
            c.sheaf_fill.unwrap() > 0,
            "the freed objects sit on sheaves"
        );
        assert_eq!(c.barn_full.unwrap() + c.barn_empty.unwrap(), 4);
        assert!(c.objects >= c.sheaf_fill.unwrap());
        assert_eq!(c.free_partial, c.total_objects - c.objects);
        let d = all.iter().find(|s| s.name == "dma-kmalloc-64").unwrap();
        assert_eq!((d.sheaf_capacity, d.flags.as_str()), (Some(0), "d"));
    }

    /// `mirror/slabinfo`, captured in the same run just before the 100
    /// objects: the same caches in the same order, with the same geometry.
    #[test]
    fn capture_agrees_with_mirror_slabinfo() {
        let rows =
            crate::slabstat::proc::parse(include_str!("../testdata/mirror-slabinfo-uml.txt"))
                .unwrap();
        let all = parse(CAPTURE, 4096).unwrap();
        assert_eq!(rows.len(), all.len());
        for (r, s) in rows.iter().zip(&all) {
            let want = crate::slabstat::proc::ProcRow::of(s);
            assert_eq!(
                (&r.name, r.objsize, r.objperslab, r.pagesperslab),
                (&want.name, want.objsize, want.objperslab, want.pagesperslab)
            );
        }
    }

    #[test]
    fn finds_columns_by_name() {
        let mut cols: Vec<&str> = SLABSTAT_COLUMNS.to_vec();
        cols.reverse();
        cols.push("future_column");
        let values: Vec<String> = cols
            .iter()
            .map(|c| match *c {
                "name" => "kmalloc-8".to_string(),
                "order" => "0".to_string(),
                "slabs" => "3".to_string(),
                other => other.len().to_string(),
            })
            .collect();
        let text = format!("# {}\n{}\n", cols.join(" "), values.join(" "));
        let s = &parse(&text, 4096).unwrap()[0];
        assert_eq!((s.name.as_str(), s.slabs), ("kmalloc-8", 3));
        assert_eq!(s.object_size, "object_size".len() as u64);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse("", 4096).is_err());
        assert!(parse("kmalloc-8 1 2 3\n", 4096).is_err());
        let header = format!("# {}\n", SLABSTAT_COLUMNS.join(" "));
        assert!(parse(&header, 4096).unwrap().is_empty());
        let short = format!("{header}kmalloc-8 8 8\n");
        assert!(parse(&short, 4096).unwrap_err().contains("fields"));
        let word = format!("{header}kmalloc-8{}\n", " x".repeat(14));
        assert!(parse(&word, 4096).unwrap_err().contains("not a number"));
        let no_col = "# name object_size\nkmalloc-8 8\n";
        assert!(parse(no_col, 4096).unwrap_err().contains("no column"));
    }
}
