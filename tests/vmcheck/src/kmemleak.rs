// SPDX-License-Identifier: GPL-2.0

//! kmemleak's report (`/sys/kernel/debug/kmemleak`), read so that a leak
//! is blamed on memlab only if its object was allocated once memlab was
//! being loaded. Each entry of the report names the jiffies of its
//! object's allocation; the VM's init notes the jiffies just before insmod
//! (from `/sys/kernel/debug/sched/debug`) in [`LOADED_AT`]. A leak from the
//! kernel's own boot is thereby set aside by when it was allocated, where
//! clearing the report before insmod took two full scans (kmemleak reports
//! an object only when two scans agree), about 25 s under TCG.

/// Where the VM's init writes the jiffies it read just before insmod.
pub const LOADED_AT: &str = "/etc/memlab/insmod-jiffies";

/// One entry of the report: an unreferenced object.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The entry's lines, its first (`unreferenced object ...`) included.
    pub text: &'a str,
    /// When the object was allocated (`jiffies N` on its second line).
    pub jiffies: Option<u64>,
}

/// The report's entries, in its order.
pub fn entries(report: &str) -> Vec<Entry<'_>> {
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in report.split_inclusive('\n') {
        if line.starts_with("unreferenced object") {
            starts.push(at);
        }
        at += line.len();
    }
    starts.push(report.len());
    starts
        .windows(2)
        .map(|w| {
            let text = &report[w[0]..w[1]];
            let jiffies = text
                .lines()
                .nth(1)
                .and_then(|l| l.rsplit_once("jiffies "))
                .and_then(|(_, j)| j.trim().parse().ok());
            Entry { text, jiffies }
        })
        .collect()
}

/// The entries that count against memlab: those allocated at or after
/// `loaded_at` (all of them without it, and any whose jiffies do not
/// parse); and how many older ones were set aside.
pub fn since(report: &str, loaded_at: Option<u64>) -> (Vec<Entry<'_>>, usize) {
    let all = entries(report);
    let total = all.len();
    let counted: Vec<Entry<'_>> = all
        .into_iter()
        .filter(|e| match (loaded_at, e.jiffies) {
            (Some(t), Some(j)) => j >= t,
            _ => true,
        })
        .collect();
    let older = total - counted.len();
    (counted, older)
}

/// The jiffies in `/sys/kernel/debug/sched/debug`'s header, or in
/// [`LOADED_AT`] (a bare number).
pub fn parse_jiffies(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(j) = t.parse() {
        return Some(j);
    }
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        (name.trim() == "jiffies").then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
unreferenced object 0xffff888003a1c000 (size 64):
  comm \"swapper/0\", pid 1, jiffies 4294892340
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 0):
    kmemleak_alloc+0x4a/0x80
    __kmalloc_cache_noprof+0x2a3/0x4c0
unreferenced object (percpu) 0xffff888005000000 (size 8):
  comm \"insmod\", pid 97, jiffies 4294900000
  backtrace (crc 0):
    rust_memlab_init+0x10/0x20 [rust_memlab]
unreferenced object 0xffff888006000000 (size 128):
  comm \"memlabctl\", pid 120, jiffies oops
  backtrace (crc 1):
";

    #[test]
    fn entries_split_with_their_jiffies() {
        let e = entries(REPORT);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].jiffies, Some(4294892340));
        assert!(e[0]
            .text
            .starts_with("unreferenced object 0xffff888003a1c000"));
        assert!(e[0].text.ends_with("__kmalloc_cache_noprof+0x2a3/0x4c0\n"));
        assert_eq!(e[1].jiffies, Some(4294900000));
        assert!(e[1].text.contains("[rust_memlab]"));
        assert_eq!(e[2].jiffies, None);
        assert!(entries("").is_empty());
        assert!(entries("\n").is_empty());
    }

    #[test]
    fn older_entries_are_set_aside_and_counted() {
        let (counted, older) = since(REPORT, Some(4294900000));
        assert_eq!(older, 1);
        // The one allocated at the load, and the one whose time is unknown.
        assert_eq!(counted.len(), 2);
        assert!(counted[0].text.contains("insmod"));
        let (counted, older) = since(REPORT, None);
        assert_eq!((counted.len(), older), (3, 0));
        let (counted, older) = since(REPORT, Some(u64::MAX));
        assert_eq!((counted.len(), older), (1, 2));
        assert_eq!(since("", Some(1)).0.len(), 0);
    }

    #[test]
    fn jiffies_from_sched_debug_or_a_number() {
        let sched = "Sched Debug Version: v0.11, 7.2.13 #1\n\
                     ktime                                   : 36512.123456\n\
                     jiffies                                 : 4294901234\n";
        assert_eq!(parse_jiffies(sched), Some(4294901234));
        assert_eq!(parse_jiffies("4294901234\n"), Some(4294901234));
        assert_eq!(parse_jiffies("jiffies: x\n"), None);
        assert_eq!(parse_jiffies(""), None);
    }
}
