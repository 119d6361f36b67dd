// SPDX-License-Identifier: GPL-2.0

//! `memlabctl slabinfo`: tools/mm/slabinfo's cache table (7.2,
//! `slabcache()`) for the kernel's caches and the mirror's in one table,
//! with the per-CPU slab column that 7.0 removed (`Slabs/Part/Cpu`, now
//! always `/0`) given as `Slabs/Part` and the sheaf state after it:
//! `Cap` (objects per sheaf), `Fill` (objects on the CPUs' sheaves), `Barn`
//! (full/empty sheaves). The kernel keeps fill and barn private: `-` there.
//! `-T` prints slabinfo's totals report per side, `--json` the caches (or
//! the totals) as JSON.

use crate::cli::{fail, json_line};
use crate::slabstat::{self, CacheStat, Side};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::process::ExitCode;

/// Columns of the table, for `--help`.
pub const AFTER_HELP: &str = "\
Columns: Objects allocated (sheaved ones included), Objsize (bytes asked for), Space (slab memory; \
Loss with -L), Slabs/Part (slabs/partial slabs), O/S objects per slab, O order, %Fr partial slabs, \
%Ef object bytes per slab byte, Cap objects per sheaf, Fill objects on the CPUs' sheaves, \
Barn full/empty sheaves, Flg slabinfo's flags. '-': the kernel keeps it private.";

#[derive(Args, Debug, PartialEq)]
pub struct SlabinfoArgs {
    /// Only caches whose name or an alias matches REGEX (case-insensitive,
    /// as slabinfo's slab-regexp)
    #[arg(value_name = "REGEX")]
    pub pattern: Option<String>,
    /// Whose caches: the kernel's (/sys/kernel/slab), the mirror's
    /// (debugfs mirror/slabstat) or both
    #[arg(long, value_enum, default_value_t = SideArg::Both)]
    pub side: SideArg,
    /// Show the totals report (slabinfo -T), per side
    #[arg(short = 'T', long)]
    pub totals: bool,
    /// Include caches without slabs (slabinfo -z)
    #[arg(short = 'z', long)]
    pub zero: bool,
    /// Sort by slab memory, largest first (slabinfo -S)
    #[arg(short = 'S', long, conflicts_with_all = ["loss", "partial"])]
    pub size: bool,
    /// Sort by loss and show Loss instead of Space (slabinfo -L)
    #[arg(short = 'L', long, conflicts_with = "partial")]
    pub loss: bool,
    /// Sort by partial slabs, most first (slabinfo -P)
    #[arg(short = 'P', long)]
    pub partial: bool,
    /// Sizes in bytes, not K/M/G (slabinfo -B)
    #[arg(short = 'B', long)]
    pub bytes: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    /// the kernel's SLUB caches
    Real,
    /// memlab's mirror caches
    Mirror,
    /// both, in one table
    Both,
}

/// `memlabctl slabinfo`.
pub fn slabinfo(a: &SlabinfoArgs) -> ExitCode {
    let filter = match a.pattern.as_deref().map(pattern).transpose() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let sides = (a.side != SideArg::Mirror, a.side != SideArg::Real);
    let mut caches = match slabstat::read_sides(sides.0, sides.1) {
        Ok(c) => c,
        // Without memlab the kernel's caches are still worth a table, when
        // the mirror was not asked for by name.
        Err(e) if a.side == SideArg::Both => match slabstat::read_sides(true, false) {
            Ok(c) => {
                eprintln!("memlabctl: {e}; the kernel's caches only");
                c
            }
            Err(e) => return fail(e),
        },
        Err(e) => return fail(e),
    };
    if let Some(re) = &filter {
        caches.retain(|c| re.is_match(&c.name) || c.aliases.iter().any(|n| re.is_match(n)));
    }
    if a.totals {
        let t: Vec<Totals> = [Side::Real, Side::Mirror]
            .into_iter()
            .filter(|&s| caches.iter().any(|c| c.side == s))
            .map(|s| Totals::of(s, caches.iter().filter(|c| c.side == s)))
            .collect();
        if a.json {
            println!("{}", json_line(&t));
        } else {
            t.iter().for_each(|t| print!("{}", t.report(a.bytes)));
        }
        return ExitCode::SUCCESS;
    }
    if !a.zero {
        caches.retain(|c| c.slabs != 0);
    }
    sort(&mut caches, a);
    if a.json {
        println!("{}", json_line(&caches));
    } else if !caches.is_empty() {
        println!("{}", header(a.loss));
        for c in &caches {
            println!("{}", row(c, a.loss, a.bytes));
        }
    }
    ExitCode::SUCCESS
}

/// slabinfo's pattern: a regex matched anywhere, ignoring case.
fn pattern(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .map_err(|e| format!("slabinfo: bad pattern {p:?}: {e}"))
}

/// slabinfo's order: by name ignoring case, or largest first by the chosen
/// key; the real cache before the mirror's of the same name.
fn sort(caches: &mut [CacheStat], a: &SlabinfoArgs) {
    let key = |c: &CacheStat| -> u64 {
        if a.size {
            c.slab_bytes
        } else if a.loss {
            c.loss
        } else if a.partial {
            c.partial
        } else {
            0
        }
    };
    caches.sort_by(|x, y| {
        key(y)
            .cmp(&key(x))
            .then_with(|| x.name.to_lowercase().cmp(&y.name.to_lowercase()))
            .then(x.side.cmp(&y.side))
    });
}

/// `store_size()` of slabinfo.c: above 1000 in K, M or G with one decimal,
/// truncated; plain with `bytes`.
pub fn store_size(value: u64, bytes: bool) -> String {
    let (divisor, trailer) = match value {
        _ if bytes => (1, ""),
        1_000_000_001.. => (100_000_000, "G"),
        1_000_001.. => (100_000, "M"),
        1001.. => (100, "K"),
        _ => (1, ""),
    };
    let mut s = (value / divisor).to_string();
    if divisor != 1 {
        // The quotient has at least two digits: one goes after the point.
        s.insert(s.len() - 1, '.');
    }
    s + trailer
}

/// The header of [`row`]: slabinfo's, with the sheaf columns in place of
/// the per-CPU slab count.
pub fn header(loss: bool) -> String {
    format!(
        "{:<21} {:<6} {:>8} {:>7} {:>15} {:>14} {:>4} {:>1} {:>3} {:>3} {:>4} {:>5} {:>7} Flg",
        "Name",
        "Side",
        "Objects",
        "Objsize",
        if loss { "Loss" } else { "Space" },
        "Slabs/Part",
        "O/S",
        "O",
        "%Fr",
        "%Ef",
        "Cap",
        "Fill",
        "Barn"
    )
}

/// One cache's line, as slabinfo's `slabcache()` prints it.
pub fn row(c: &CacheStat, loss: bool, bytes: bool) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let barn = match (c.barn_full, c.barn_empty) {
        (Some(f), Some(e)) => format!("{f}/{e}"),
        _ => "-".into(),
    };
    format!(
        "{:<21} {:<6} {:>8} {:>7} {:>15} {:>14} {:>4} {:>1} {:>3} {:>3} {:>4} {:>5} {:>7} {}",
        c.name,
        c.side.name(),
        c.objects,
        c.object_size,
        store_size(if loss { c.loss } else { c.slab_bytes }, bytes),
        format!("{}/{}", c.slabs, c.partial),
        c.objs_per_slab,
        c.order,
        c.partial_pct(),
        c.efficiency_pct(),
        opt(c.sheaf_capacity),
        opt(c.sheaf_fill),
        barn,
        c.flags
    )
    .trim_end()
    .to_string()
}

/// Smallest, largest and sum of one quantity over the active caches.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub min: u64,
    pub max: u64,
    pub total: u64,
}

impl Span {
    fn add(&mut self, v: u64, first: bool) {
        self.min = if first { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.total = self.total.saturating_add(v);
    }
}

/// slabinfo's `totals()` for one side, over the caches with slabs and
/// objects ("active"), plus the sheaves.
#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub side: Option<Side>,
    /// Caches read, and those with objects.
    pub caches: u64,
    pub active: u64,
    /// Names that are aliases (symlinks), and the merged caches they lead to.
    pub aliases: u64,
    pub alias_targets: u64,
    pub objects: Span,
    pub slabs: Span,
    pub partial: Span,
    /// Partial slabs per slab, percent, per cache.
    pub partial_pct: Span,
    /// Allocated objects on partial slabs (`objects_partial`).
    pub partial_objs: Span,
    pub partial_objs_pct: Span,
    /// Slab bytes, bytes of allocated objects, and the rest.
    pub memory: Span,
    pub used: Span,
    pub loss: Span,
    pub object_size: Span,
    pub slab_size: Span,
    /// `slab_size - object_size` per object.
    pub object_loss: Span,
    /// Sum of `objects * slab_size` and of `objects * object_loss`.
    pub object_slot_bytes: u64,
    pub object_loss_bytes: u64,
    /// Objects on all CPUs' sheaves, full and empty sheaves in barns
    /// (`None` where the side keeps them private).
    pub sheaf_fill: Option<u64>,
    pub barn_full: Option<u64>,
    pub barn_empty: Option<u64>,
}

impl Totals {
    pub fn of<'a>(side: Side, caches: impl Iterator<Item = &'a CacheStat>) -> Totals {
        let mut t = Totals {
            side: Some(side),
            ..Totals::default()
        };
        let sum = |acc: &mut Option<u64>, v: Option<u64>, first: bool| {
            *acc = match (first, *acc, v) {
                (true, _, v) => v,
                (false, Some(a), Some(v)) => Some(a + v),
                _ => None,
            };
        };
        for c in caches {
            t.caches += 1;
            // A merged cache is a `:<id>` directory; its other names are
            // symlinks (slabinfo's aliases).
            let names = || std::iter::once(&c.name).chain(&c.aliases);
            if names().any(|n| n.starts_with(':')) {
                t.alias_targets += 1;
                t.aliases += names().filter(|n| !n.starts_with(':')).count() as u64;
            }
            let first = t.caches == 1;
            sum(&mut t.sheaf_fill, c.sheaf_fill, first);
            sum(&mut t.barn_full, c.barn_full, first);
            sum(&mut t.barn_empty, c.barn_empty, first);
            if c.slabs == 0 || c.objects == 0 {
                continue;
            }
            t.add_active(c);
        }
        t
    }

    fn add_active(&mut self, c: &CacheStat) {
        let first = self.active == 0;
        self.active += 1;
        let used = c.objects.saturating_mul(c.object_size);
        let objloss = c.slab_size.saturating_sub(c.object_size);
        self.objects.add(c.objects, first);
        self.slabs.add(c.slabs, first);
        self.partial.add(c.partial, first);
        self.partial_pct
            .add((c.partial * 100 / c.slabs).min(100), first);
        self.partial_objs.add(c.objects_partial, first);
        self.partial_objs_pct
            .add((c.objects_partial * 100 / c.objects).min(100), first);
        self.memory.add(c.slab_bytes, first);
        self.used.add(used, first);
        self.loss.add(c.slab_bytes.saturating_sub(used), first);
        self.object_size.add(c.object_size, first);
        self.slab_size.add(c.slab_size, first);
        self.object_loss.add(objloss, first);
        self.object_slot_bytes += c.objects.saturating_mul(c.slab_size);
        self.object_loss_bytes += c.objects.saturating_mul(objloss);
    }

    /// The report as slabinfo -T prints it, with a sheaves line.
    pub fn report(&self, bytes: bool) -> String {
        let side = self.side.map_or("", Side::name);
        if self.objects.total == 0 {
            return format!("{side}: No objects\n");
        }
        let sz = |v: u64| store_size(v, bytes);
        let n = self.active.max(1);
        let objs = self.objects.total;
        let mut o = String::new();
        let title = format!("Slabcache Totals ({side})");
        o += &format!("{title}\n{}\n", "-".repeat(title.len()));
        o += &format!(
            "Slabcaches : {:>15}   Aliases  : {:>11}->{:<3}  Active:    {:>3}\n",
            self.caches, self.aliases, self.alias_targets, self.active
        );
        o += &format!(
            "Memory used: {:>15}   # Loss   : {:>15}   MRatio:{:>6}%\n",
            sz(self.memory.total),
            sz(self.loss.total),
            sz((self.loss.total * 100)
                .checked_div(self.used.total)
                .unwrap_or(0))
        );
        o += &format!(
            "# Objects  : {:>15}   # PartObj: {:>15}   ORatio:{:>6}%\n",
            sz(objs),
            sz(self.partial_objs.total),
            sz(self.partial_objs.total * 100 / objs)
        );
        let opt = |v: Option<u64>| v.map_or("-".into(), sz);
        o += &format!(
            "# Sheaved  : {:>15}   Barn full: {:>15}   Empty:{:>8}\n",
            opt(self.sheaf_fill),
            opt(self.barn_full),
            opt(self.barn_empty)
        );
        o += "\nPer Cache         Average              Min              Max            Total\n";
        o += &"-".repeat(76);
        o += "\n";
        // slabinfo.c's two line shapes: counts, and percentages.
        let line = |name: &str, avg: u64, s: &Span, total: u64| {
            let [a, b, c, d] = [avg, s.min, s.max, total].map(sz);
            format!("{name:<10}{a:>15}  {b:>15}  {c:>15}  {d:>15}\n")
        };
        let pct = |name: &str, avg: u64, s: &Span, total: u64| {
            let [a, b, c, d] = [avg, s.min, s.max, total].map(sz);
            format!("{name:<9}{a:>15}% {b:>15}% {c:>15}% {d:>15}%\n")
        };
        let t = self;
        o += &line("#Objects", objs / n, &t.objects, objs);
        o += &line("#Slabs", t.slabs.total / n, &t.slabs, t.slabs.total);
        o += &line(
            "#PartSlab",
            t.partial.total / n,
            &t.partial,
            t.partial.total,
        );
        let ppart_total = t.partial.total * 100 / t.slabs.total.max(1);
        o += &pct(
            "%PartSlab",
            t.partial_pct.total / n,
            &t.partial_pct,
            ppart_total,
        );
        let partobj = t.partial_objs.total;
        o += &line("PartObjs", partobj / n, &t.partial_objs, partobj);
        let ppo = &t.partial_objs_pct;
        o += &pct("% PartObj", ppo.total / n, ppo, partobj * 100 / objs);
        o += &line("Memory", t.memory.total / n, &t.memory, t.memory.total);
        o += &line("Used", t.used.total / n, &t.used, t.used.total);
        o += &line("Loss", t.loss.total / n, &t.loss, t.loss.total);
        o += "\nPer Object        Average              Min              Max\n";
        o += &"-".repeat(59);
        o += "\n";
        let obj = |name: &str, avg: u64, s: &Span| {
            let [a, b, c] = [avg, s.min, s.max].map(sz);
            format!("{name:<10}{a:>15}  {b:>15}  {c:>15}\n")
        };
        o += &obj("Memory", t.object_slot_bytes / objs, &t.slab_size);
        o += &obj("User", t.used.total / objs, &t.object_size);
        o += &obj("Loss", t.object_loss_bytes / objs, &t.object_loss);
        o += "\n";
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slabstat::{real, SlabStat};

    #[test]
    fn store_size_is_slabinfos() {
        // slabinfo.c: value / divisor, then a point before the last digit.
        assert_eq!(store_size(0, false), "0");
        assert_eq!(store_size(1000, false), "1000");
        assert_eq!(store_size(1001, false), "1.0K");
        assert_eq!(store_size(36864, false), "36.8K");
        assert_eq!(store_size(2_359_296, false), "2.3M");
        assert_eq!(store_size(5_000_000_000, false), "5.0G");
        assert_eq!(store_size(36864, true), "36864");
    }

    fn stat(side: Side, name: &str, objects: u64, slabs: u64, partial: u64) -> CacheStat {
        let c = SlabStat {
            object_size: 64,
            slab_size: 64,
            objs_per_slab: 64,
            order: 0,
            objects,
            total_objects: slabs * 64,
            slabs,
            partial,
            objects_partial: 10,
            min_partial: 5,
        };
        CacheStat::new(side, name, &c, 4096)
    }

    #[test]
    fn a_row_lines_up_with_the_header() {
        let mut m = stat(Side::Mirror, "kmalloc-64", 546, 9, 1);
        (m.sheaf_capacity, m.sheaf_fill) = (Some(60), Some(120));
        (m.barn_full, m.barn_empty) = (Some(0), Some(4));
        let h = header(false);
        for r in [
            row(&m, false, false),
            row(&stat(Side::Real, "x", 1, 1, 0), false, false),
        ] {
            assert_eq!(
                h.split_whitespace().count(),
                r.split_whitespace().count() + 1,
                "{r}"
            );
            for col in [
                "Objects",
                "Objsize",
                "Space",
                "Slabs/Part",
                "%Ef",
                "Cap",
                "Fill",
                "Barn",
            ] {
                let end = h.find(col).unwrap() + col.len();
                assert_ne!(&r[end - 1..end], " ", "{col}: {r}");
            }
        }
        let r = row(&m, false, false);
        assert!(
            r.starts_with(
                "kmalloc-64            mirror      546      64           36.8K            9/1"
            ),
            "{r}"
        );
        assert!(r.ends_with("  94   60   120     0/4"), "{r:?}");
        assert!(row(&stat(Side::Real, "x", 1, 1, 0), false, false).ends_with("   -       -"));
    }

    #[test]
    fn sorted_as_slabinfo_sorts() {
        let mut v = vec![
            stat(Side::Mirror, "b", 1, 1, 0),
            stat(Side::Real, "B", 1, 5, 3),
            stat(Side::Real, "a", 1, 2, 1),
        ];
        let args = |size, partial| SlabinfoArgs {
            pattern: None,
            side: SideArg::Both,
            totals: false,
            zero: false,
            size,
            loss: false,
            partial,
            bytes: false,
            json: false,
        };
        sort(&mut v, &args(false, false));
        let names: Vec<_> = v.iter().map(|c| (c.name.as_str(), c.side)).collect();
        assert_eq!(
            names,
            [("a", Side::Real), ("B", Side::Real), ("b", Side::Mirror)]
        );
        sort(&mut v, &args(true, false));
        assert_eq!(v[0].name, "B");
        sort(&mut v, &args(false, true));
        assert_eq!((v[0].partial, v[1].partial), (3, 1));
    }

    #[test]
    fn pattern_is_case_insensitive() {
        let re = pattern("^KMALLOC-6").unwrap();
        assert!(re.is_match("kmalloc-64") && !re.is_match("dma-kmalloc-64"));
        assert!(pattern("(").is_err());
    }

    #[test]
    fn totals_of_the_captured_kernel() {
        let root = real::tests::tree("totals");
        let caches = real::read_all_with(&root, 4096).unwrap();
        let t = Totals::of(Side::Real, caches.iter());
        assert_eq!(t.caches as usize, caches.len());
        let active: Vec<_> = caches
            .iter()
            .filter(|c| c.slabs > 0 && c.objects > 0)
            .collect();
        assert_eq!(t.active as usize, active.len());
        assert_eq!(
            t.objects.total,
            active.iter().map(|c| c.objects).sum::<u64>()
        );
        assert_eq!(t.memory.total, t.used.total + t.loss.total);
        assert_eq!(t.sheaf_fill, None, "the kernel keeps its sheaves private");
        // kmalloc-64 and kmalloc-8k are aliases of the capture.
        assert!(t.aliases >= 2 && t.alias_targets >= 2, "{t:?}");
        let text = t.report(false);
        assert!(
            text.starts_with("Slabcache Totals (real)\n-----------------------\nSlabcaches : "),
            "{text}"
        );
        for needle in [
            "Memory used:",
            "# Objects  :",
            "#PartSlab",
            "% PartObj",
            "Per Object",
            "# Sheaved  :               -",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let _ = std::fs::remove_dir_all(root);
    }
}
