// SPDX-License-Identifier: GPL-2.0

//! kmemleak's report (`/sys/kernel/debug/kmemleak`), read so that a leak
//! is blamed on memlab only if its object was allocated once memlab was
//! being loaded. Each entry of the report names the jiffies of its
//! object's allocation; the VM's init notes the jiffies just before insmod
//! (from `/sys/kernel/debug/sched/debug`) in [`LOADED_AT`]. A leak from the
//! kernel's own boot is thereby set aside by when it was allocated, where
//! clearing the report before insmod took two full scans (kmemleak reports
//! an object only when two scans agree), about 25 s under TCG.

/// kmemleak's debugfs file: `scan` written to it, the report read from it.
pub const FILE: &str = "/sys/kernel/debug/kmemleak";

/// Where the VM's init writes the jiffies it read just before insmod.
pub const LOADED_AT: &str = "/etc/memlab/insmod-jiffies";

/// A kmemleak check's outcome: the text of the entries that count (empty
/// when none does), and a line saying what was set aside.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub leaks: String,
    pub aside: String,
}

/// `report` judged against the load time `loaded_at` (see [`since`]).
pub fn judge(report: &str, loaded_at: Option<u64>) -> Verdict {
    let (counted, older) = since(report, loaded_at);
    let aside = match loaded_at {
        Some(t) => {
            format!("{older} older reports set aside (allocated before jiffies {t}, memlab's load)")
        }
        None => format!("no load time in {LOADED_AT}: every report counts"),
    };
    Verdict {
        leaks: counted.iter().map(|e| e.text).collect(),
        aside,
    }
}

/// In the VM, once memlab is unloaded: waits out the 5 s kmemleak gives a
/// new object, scans twice (it reports an object only when two scans
/// agree), and judges the report against the load time the init script
/// noted. Err: [`FILE`] could not be written or read.
pub fn scan_and_judge() -> Result<Verdict, String> {
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        std::fs::write(FILE, "scan").map_err(|e| format!("kmemleak scan: {e}"))?;
    }
    let report = std::fs::read_to_string(FILE).map_err(|e| format!("{FILE}: {e}"))?;
    let loaded_at = std::fs::read_to_string(LOADED_AT)
        .ok()
        .and_then(|t| parse_jiffies(&t));
    Ok(judge(&report, loaded_at))
}

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
    fn verdicts_carry_the_counted_text_and_what_was_set_aside() {
        let v = judge(REPORT, Some(4294900000));
        assert!(v.leaks.starts_with("unreferenced object (percpu)"));
        assert!(v.leaks.contains("jiffies oops"));
        assert!(!v.leaks.contains("swapper/0"));
        assert!(
            v.aside.starts_with("1 older reports set aside"),
            "{}",
            v.aside
        );
        let v = judge("", None);
        assert!(v.leaks.is_empty());
        assert!(v.aside.contains("every report counts"));
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
