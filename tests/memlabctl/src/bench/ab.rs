// SPDX-License-Identifier: GPL-2.0

//! `memlabctl ab`: two kernels compared, on the host, from the `bench.json`
//! of boots made in ABBA order (A, B, B, A, ...: scripts/bench.sh with
//! KSRC_B or KVER_B). Each boot ran the standard workloads on its kernel's
//! real allocators and on the mirror; a row's figure in a boot is the
//! median over its rounds of that side's median ns per operation. Boots
//! are paired as they ran (1st with 2nd, 3rd with 4th), so drift over the
//! session falls on both kernels alike; each pair gives one B/A ratio, and
//! a row shows the median ratio with its range across pairs. The mirror's
//! code is the same on both kernels, so its B/A is the control: a change in
//! the kernel's allocator moves the real column alone.

use super::stats::{percentile, ratio, Spread};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The parts of a `bench.json` the comparison reads.
#[derive(Deserialize, Debug)]
struct BenchFile {
    kernel: String,
    #[serde(default)]
    kernel_source: String,
    engine: String,
    workloads: Vec<RowFile>,
}

#[derive(Deserialize, Debug)]
struct RowFile {
    workload: String,
    pattern: String,
    rounds: Vec<RoundFile>,
    failed: FailedFile,
}

#[derive(Deserialize, Debug)]
struct FailedFile {
    real: u64,
    mirror: u64,
}

#[derive(Deserialize, Debug)]
struct RoundFile {
    real: SideFile,
    mirror: SideFile,
}

/// serde_json writes a NaN as `null`.
#[derive(Deserialize, Debug)]
struct SideFile {
    alloc_median_ns: Option<f64>,
    free_median_ns: Option<f64>,
}

/// One boot: its kernel (`A` or `B`) and what it measured.
struct Boot {
    label: char,
    file: BenchFile,
}

/// A kernel as the report names it.
#[derive(Serialize, Debug, PartialEq)]
pub struct KernelName {
    pub kernel: String,
    pub kernel_source: String,
    pub engine: String,
    pub boots: usize,
}

/// One workload's B/A ratios, each with its spread across boot pairs, and
/// each kernel's median ns (median over its boots).
#[derive(Serialize, Debug)]
pub struct AbRow {
    pub workload: String,
    pub pattern: String,
    /// ns per operation: [A, B] for real alloc, real free, mirror alloc,
    /// mirror free.
    pub ns: [[f64; 2]; 4],
    pub real_alloc: Option<Spread>,
    pub real_free: Option<Spread>,
    pub mirror_alloc: Option<Spread>,
    pub mirror_free: Option<Spread>,
    /// Allocations that failed in any boot (a ratio is then withheld).
    pub failed: u64,
}

/// `ab.json`.
#[derive(Serialize, Debug)]
pub struct AbReport {
    pub a: KernelName,
    pub b: KernelName,
    /// The boots in the order they ran, `A` or `B` each.
    pub order: String,
    pub pairs: usize,
    pub rows: Vec<AbRow>,
}

/// One figure of a round: a side's median ns for one op.
type Figure = fn(&RoundFile) -> Option<f64>;

/// The four figures of a row: real alloc, real free, mirror alloc, mirror
/// free.
const FIGURES: [Figure; 4] = [
    |r| r.real.alloc_median_ns,
    |r| r.real.free_median_ns,
    |r| r.mirror.alloc_median_ns,
    |r| r.mirror.free_median_ns,
];

/// A boot's figure `f` for the row named `(workload, pattern)`: the median
/// over its rounds; NaN when the boot lacks the row.
fn boot_figure(b: &Boot, key: (&str, &str), f: Figure) -> f64 {
    let Some(row) = b
        .file
        .workloads
        .iter()
        .find(|r| (r.workload.as_str(), r.pattern.as_str()) == key)
    else {
        return f64::NAN;
    };
    let v: Vec<f64> = row.rounds.iter().filter_map(f).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        percentile(&v, 0.5)
    }
}

/// Compares `boots` (in the order they ran; paired 1st-2nd, 3rd-4th, ...).
fn compare(boots: &[Boot]) -> Result<AbReport, String> {
    if boots.len() < 2 || !boots.len().is_multiple_of(2) {
        return Err(format!(
            "{} boots: an A/B needs pairs (A B B A ...)",
            boots.len()
        ));
    }
    let pairs: Vec<(&Boot, &Boot)> = boots
        .chunks(2)
        .map(|p| match (p[0].label, p[1].label) {
            ('A', 'B') => Ok((&p[0], &p[1])),
            ('B', 'A') => Ok((&p[1], &p[0])),
            (x, y) => Err(format!(
                "boots {x} and {y} run together: each pair needs one A and one B"
            )),
        })
        .collect::<Result<_, _>>()?;
    let name = |label: char| {
        let of: Vec<&Boot> = boots.iter().filter(|b| b.label == label).collect();
        KernelName {
            kernel: of[0].file.kernel.clone(),
            kernel_source: of[0].file.kernel_source.clone(),
            engine: of[0].file.engine.clone(),
            boots: of.len(),
        }
    };
    let (a, b) = (name('A'), name('B'));
    if a.engine != b.engine {
        return Err(format!(
            "kernel A ran on {}, B on {}: an A/B needs one engine",
            a.engine, b.engine
        ));
    }
    let rows = boots[0]
        .file
        .workloads
        .iter()
        .map(|r| row(&pairs, boots, (&r.workload, &r.pattern)))
        .collect();
    Ok(AbReport {
        a,
        b,
        order: boots.iter().map(|b| b.label).collect(),
        pairs: pairs.len(),
        rows,
    })
}

fn row(pairs: &[(&Boot, &Boot)], boots: &[Boot], key: (&str, &str)) -> AbRow {
    let failed = boots
        .iter()
        .flat_map(|b| b.file.workloads.iter())
        .filter(|r| (r.workload.as_str(), r.pattern.as_str()) == key)
        .map(|r| r.failed.real + r.failed.mirror)
        .sum();
    let spread = |f: Figure| {
        let v: Vec<f64> = pairs
            .iter()
            .map(|(a, b)| ratio(boot_figure(b, key, f), boot_figure(a, key, f)))
            .collect();
        if failed > 0 {
            None
        } else {
            Spread::of(&v)
        }
    };
    let ns = |label: char, f: Figure| {
        let v: Vec<f64> = boots
            .iter()
            .filter(|b| b.label == label)
            .map(|b| boot_figure(b, key, f))
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            percentile(&v, 0.5)
        }
    };
    AbRow {
        workload: key.0.into(),
        pattern: key.1.into(),
        ns: FIGURES.map(|f| [ns('A', f), ns('B', f)]),
        real_alloc: spread(FIGURES[0]),
        real_free: spread(FIGURES[1]),
        mirror_alloc: spread(FIGURES[2]),
        mirror_free: spread(FIGURES[3]),
        failed,
    }
}

fn ns(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "-".into()
    }
}

impl AbReport {
    /// The table: one line per workload, B/A with its spread across pairs.
    pub fn human(&self) -> String {
        let mut out = format!(
            "memlab A/B: the same workloads on two kernels' real allocators and on the mirror in \
             each, {} boots in the order {} (pairs as they ran: {})\n",
            self.order.len(),
            self.order,
            self.pairs
        );
        for (l, k) in [("A", &self.a), ("B", &self.b)] {
            out += &format!(
                "  {l}: kernel {} ({}), engine {}, {} boots\n",
                k.kernel, k.kernel_source, k.engine, k.boots
            );
        }
        out += "(ns per operation A/B: median over a kernel's boots of each boot's median over \
                its rounds; x = B / A, < 1 means B is faster: median over boot pairs [min-max]; \
                the mirror's code is the same on both kernels: its column is the control)\n";
        out += &format!(
            "{:<24} {:<6} {:>15} {:>20} {:>15} {:>20} {:>20} {:>20}\n",
            "workload",
            "patt.",
            "real alloc A/B",
            "real alloc x",
            "real free A/B",
            "real free x",
            "mirror alloc x",
            "mirror free x"
        );
        for r in &self.rows {
            let x = |s: Option<Spread>| {
                if r.failed > 0 {
                    "no ratio: failed".into()
                } else {
                    Spread::ratio_text(s)
                }
            };
            out += &format!(
                "{:<24} {:<6} {:>15} {:>20} {:>15} {:>20} {:>20} {:>20}\n",
                r.workload,
                r.pattern,
                format!("{}/{}", ns(r.ns[0][0]), ns(r.ns[0][1])),
                x(r.real_alloc),
                format!("{}/{}", ns(r.ns[1][0]), ns(r.ns[1][1])),
                x(r.real_free),
                x(r.mirror_alloc),
                x(r.mirror_free),
            );
        }
        out
    }
}

/// Reads `LABEL:DIR` (LABEL `A` or `B`, DIR holding a boot's bench.json).
fn read_boot(arg: &str) -> Result<Boot, String> {
    let (label, dir) = match arg.split_once(':') {
        Some(("A", d)) => ('A', d),
        Some(("B", d)) => ('B', d),
        _ => return Err(format!("{arg}: want A:DIR or B:DIR")),
    };
    let path = Path::new(dir).join("bench.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Boot { label, file })
}

/// `memlabctl ab [--json FILE] A:DIR B:DIR B:DIR A:DIR ...`
pub fn ab(boots: &[String], json: Option<&PathBuf>) -> std::process::ExitCode {
    let run = || -> Result<(), String> {
        let boots = boots
            .iter()
            .map(|b| read_boot(b))
            .collect::<Result<Vec<_>, _>>()?;
        let report = compare(&boots)?;
        print!("{}", report.human());
        if let Some(path) = json {
            let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memlabctl ab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(label: char, kernel: &str, real_alloc: f64, mirror_alloc: f64) -> Boot {
        let text = format!(
            r#"{{"kernel": "{kernel} uml", "kernel_source": "src {kernel}", "engine": "uml",
                "workloads": [{{"workload": "kmalloc 64 B", "pattern": "batch",
                "failed": {{"real": 0, "mirror": 0}},
                "rounds": [
                  {{"real": {{"alloc_median_ns": {real_alloc}, "free_median_ns": 10.0}},
                    "mirror": {{"alloc_median_ns": {mirror_alloc}, "free_median_ns": null}}}},
                  {{"real": {{"alloc_median_ns": {real_alloc}, "free_median_ns": 12.0}},
                    "mirror": {{"alloc_median_ns": {mirror_alloc}, "free_median_ns": null}}}}
                ]}}]}}"#
        );
        Boot {
            label,
            file: serde_json::from_str(&text).unwrap(),
        }
    }

    #[test]
    fn pairs_boots_as_they_ran_and_takes_b_over_a() {
        let boots = [
            boot('A', "7.2.13", 10.0, 20.0),
            boot('B', "7.2.13+", 15.0, 20.0),
            boot('B', "7.2.13+", 24.0, 22.0),
            boot('A', "7.2.13", 12.0, 20.0),
        ];
        let r = compare(&boots).unwrap();
        assert_eq!(r.order, "ABBA");
        assert_eq!(r.pairs, 2);
        assert_eq!(r.a.kernel_source, "src 7.2.13");
        assert_eq!(r.b.boots, 2);
        let row = &r.rows[0];
        // Pairs: 15/10 = 1.5 and 24/12 = 2.0.
        let s = row.real_alloc.unwrap();
        assert_eq!((s.min, s.max, s.rounds), (1.5, 2.0, 2));
        assert_eq!(row.mirror_alloc.unwrap().max, 1.1);
        assert_eq!(row.real_free.unwrap().median, 1.0);
        // A side with no figure has no ratio.
        assert!(row.mirror_free.is_none());
        // percentile() takes the upper middle of an even count.
        assert_eq!(row.ns[0], [12.0, 24.0]);
        let table = r.human();
        assert!(table.contains("2.00x [1.50-2.00]"), "{table}");
        assert!(table.contains("A: kernel 7.2.13 uml (src 7.2.13), engine uml, 2 boots"));
    }

    #[test]
    fn refuses_what_is_not_an_ab() {
        let a = || boot('A', "x", 1.0, 1.0);
        assert!(compare(&[a(), a()])
            .unwrap_err()
            .contains("one A and one B"));
        assert!(compare(&[a()]).unwrap_err().contains("pairs"));
        let mut b = boot('B', "y", 1.0, 1.0);
        b.file.engine = "tcg".into();
        assert!(compare(&[a(), b]).unwrap_err().contains("one engine"));
        assert!(read_boot("C:/nowhere").is_err());
    }
}
