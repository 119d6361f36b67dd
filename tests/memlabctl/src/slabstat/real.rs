// SPDX-License-Identifier: GPL-2.0

//! The kernel's caches from `/sys/kernel/slab`, read as tools/mm/slabinfo
//! reads them: each directory is a cache, each symlink an alias of one. A
//! mergeable cache's directory is named `:<flags>-<size>` and its name is
//! a symlink to it; such a cache shows under that name when it is its only
//! alias, under the `:` name when several caches were merged into it
//! (`rename_slabs()`).

use super::{CacheStat, Side, SlubStats};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

/// Where SLUB puts its caches.
pub const SYSFS_SLAB: &str = "/sys/kernel/slab";

/// The leading number of a sysfs value: `546`, `1 N0=1` (NUMA) and
/// `12 C0=5 C1=7` (SLUB_STATS) all give their first field.
pub fn leading_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// One cache from its attributes, `get(attr)` giving a file's text (`None`
/// if absent). Errors name the missing attribute.
pub fn from_attrs(
    name: &str,
    get: &dyn Fn(&str) -> Option<String>,
    page_size: u64,
) -> Result<CacheStat, String> {
    let num = |attr: &str| get(attr).as_deref().and_then(leading_number);
    let need = |attr: &str| {
        num(attr).ok_or_else(|| match attr {
            "objects" | "slabs" | "total_objects" => {
                format!("{name}: no {attr} (the kernel needs CONFIG_SLUB_DEBUG)")
            }
            _ => format!("{name}: no number in {attr}"),
        })
    };
    let counts = super::counts(&need)?;
    let mut s = CacheStat::new(Side::Real, name, &counts, page_size);
    // Before 6.18 no cache had sheaves and the attribute did not exist.
    s.sheaf_capacity = num("sheaf_capacity");
    s.slub_stats = SlubStats::from_attrs(num);
    s.flags = flags(&|a| num(a).unwrap_or(0) != 0);
    Ok(s)
}

/// slabinfo's flag letters, in its order.
fn flags(set: &dyn Fn(&str) -> bool) -> String {
    [
        ("aliases", '*'),
        ("cache_dma", 'd'),
        ("hwcache_align", 'A'),
        ("poison", 'P'),
        ("reclaim_account", 'a'),
        ("red_zone", 'Z'),
        ("sanity_checks", 'F'),
        ("store_user", 'U'),
        ("trace", 'T'),
    ]
    .iter()
    .filter(|(a, _)| set(a))
    .map(|&(_, c)| c)
    .collect()
}

/// The cache at `dir` (a cache directory, or a symlink to one).
pub fn read_dir(dir: &Path, name: &str, page_size: u64) -> Result<CacheStat, String> {
    let get = |attr: &str| fs::read_to_string(dir.join(attr)).ok();
    if !dir.is_dir() {
        return Err(format!("{}: no such cache", dir.display()));
    }
    from_attrs(name, &get, page_size)
}

/// The cache `name` (a cache's name or any alias) under `root`.
pub fn read_cache(root: &Path, name: &str) -> Result<CacheStat, String> {
    read_dir(&root.join(name), name, super::page_size())
}

/// Every cache under `root` (`/sys/kernel/slab`), with its aliases, in
/// directory order (the caller sorts).
pub fn read_all(root: &Path) -> Result<Vec<CacheStat>, String> {
    read_all_with(root, super::page_size())
}

/// [`read_all`] with a given page size (the host tests read captures).
pub fn read_all_with(root: &Path, page_size: u64) -> Result<Vec<CacheStat>, String> {
    let err = |e: io::Error| format!("{}: {e}", root.display());
    let mut dirs: Vec<String> = Vec::new();
    let mut links: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in fs::read_dir(root).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(err)?;
        if kind.is_symlink() {
            // The target's last component names the cache directory.
            let target = fs::read_link(entry.path()).map_err(err)?;
            if let Some(t) = target.file_name() {
                let t = t.to_string_lossy().into_owned();
                links.entry(t).or_default().push(name);
            }
        } else if kind.is_dir() {
            dirs.push(name);
        }
    }
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let mut aliases = links.remove(&dir).unwrap_or_default();
        aliases.sort();
        let shown = match (dir.starts_with(':'), aliases.as_slice()) {
            (true, [only]) => only.clone(),
            _ => dir.clone(),
        };
        // A cache destroyed between the listing and the read is skipped.
        let mut s = match read_dir(&root.join(&dir), &shown, page_size) {
            Ok(s) => s,
            Err(_) if !root.join(&dir).exists() => continue,
            Err(e) => return Err(e),
        };
        aliases.push(dir);
        aliases.retain(|a| *a != shown);
        aliases.sort();
        s.aliases = aliases;
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `/sys/kernel/slab` captured on the UML test kernel (Debian 7.2.13):
    /// `ls -l` of the directory, then `cache/attr:value` lines.
    pub const CAPTURE: &str = include_str!("../testdata/sys-kernel-slab-uml.txt");

    /// Rebuilds the capture as a directory tree under a fresh temporary
    /// directory: cache directories with their files, aliases as symlinks.
    pub fn tree(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("memlab-slab-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        for line in CAPTURE.lines() {
            if let Some((link, target)) = line.split_once(" -> ") {
                std::os::unix::fs::symlink(target, root.join(link)).unwrap();
            } else if let Some(dir) = line.strip_suffix('/') {
                fs::create_dir_all(root.join(dir)).unwrap();
            } else if let Some(slash) = line.find('/') {
                // `:0000064/order:0`: the value follows the first ':' after
                // the slash (cache directories may start with ':').
                let Some(colon) = line[slash..].find(':') else {
                    continue;
                };
                let (path, value) = (&line[..slash + colon], &line[slash + colon + 1..]);
                let path = root.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, format!("{value}\n")).unwrap();
            }
        }
        root
    }

    #[test]
    fn leading_numbers() {
        assert_eq!(leading_number("546\n"), Some(546));
        assert_eq!(leading_number("1 N0=1\n"), Some(1));
        assert_eq!(leading_number("12 C0=5 C1=7\n"), Some(12));
        assert_eq!(leading_number("0(0)\n"), None);
        assert_eq!(leading_number(""), None);
    }

    #[test]
    fn reads_a_captured_tree() {
        let root = tree("all");
        let all = read_all_with(&root, 4096).unwrap();
        let by = |n: &str| {
            all.iter()
                .find(|s| s.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        // :0000064 has three aliases: it keeps its own name.
        let c64 = by(":0000064");
        assert_eq!(c64.aliases, ["anon_vma_chain", "fs_cache", "kmalloc-64"]);
        assert!(c64.answers_to("kmalloc-64"));
        assert_eq!(
            (c64.object_size, c64.slab_size, c64.objs_per_slab, c64.order),
            (64, 64, 64, 0)
        );
        assert_eq!((c64.objects, c64.total_objects, c64.slabs), (546, 576, 9));
        assert_eq!(
            (c64.partial, c64.objects_partial, c64.free_partial),
            (1, 34, 30)
        );
        assert_eq!(c64.sheaf_capacity, Some(60));
        assert_eq!(c64.min_partial, 5);
        assert_eq!(
            (c64.sheaf_fill, c64.barn_full, c64.barn_empty),
            (None, None, None)
        );
        assert_eq!(c64.slub_stats, None, "this kernel has no SLUB_STATS");
        assert_eq!(c64.flags, "*");
        // :0008192's only alias names it.
        let c8k = by("kmalloc-8k");
        assert_eq!(
            (c8k.order, c8k.objs_per_slab, c8k.slab_bytes),
            (3, 4, 32768)
        );
        assert_eq!(c8k.sheaf_capacity, Some(4));
        // dentry and kmalloc-rcl-192 merged: reclaimable, with aliases.
        let d = by(":a-0000192");
        assert_eq!(d.flags, "*a");
        assert_eq!(d.aliases, ["dentry", "kmalloc-rcl-192"]);
        assert_eq!(c8k.aliases, [":0008192"]);
        assert_eq!((d.objects, d.total_objects, d.slabs), (1500, 1575, 72));
        // An unmergeable cache is a directory of its own name.
        assert!(by("anon_vma").aliases.is_empty());
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn one_cache_by_alias_and_errors() {
        let root = tree("one");
        let s = read_dir(&root.join("kmalloc-64"), "kmalloc-64", 4096).unwrap();
        assert_eq!(s.objects, 546);
        assert!(read_cache(&root, "no-such-cache").is_err());
        // A kernel without SLUB_DEBUG has no `objects`: the error says so.
        fs::remove_file(root.join(":0008192/objects")).unwrap();
        let e = read_dir(&root.join("kmalloc-8k"), "kmalloc-8k", 4096).unwrap_err();
        assert!(e.contains("CONFIG_SLUB_DEBUG"), "{e}");
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn slub_stats_are_read_where_present() {
        let get = |a: &str| match a {
            "sheaf_refill" => Some("12 C0=5 C1=7\n".to_string()),
            "barn_put" => Some("3 C1=3\n".to_string()),
            _ => CAPTURE
                .lines()
                .find_map(|l| l.strip_prefix(&format!(":0000064/{a}:")).map(String::from)),
        };
        let s = from_attrs("kmalloc-64", &get, 4096).unwrap();
        let st = s.slub_stats.unwrap();
        assert_eq!((st.sheaf_refill, st.barn_put, st.barn_get), (12, 3, 0));
    }
}
