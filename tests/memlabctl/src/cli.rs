// SPDX-License-Identifier: GPL-2.0

//! The `version`, `alloc`, `exercise` and `report` commands: tables for
//! people, JSON (serde) with `--json`.

use crate::args::{AllocArgs, ExerciseArgs};
use crate::dev::{uapi, Memlab, DEBUGFS, DEV_PATH};
use crate::explain;
use crate::names;
use serde::Serialize;
use serde_json::Value;
use std::fs;
use std::process::ExitCode;

pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("memlabctl: {msg}");
    ExitCode::FAILURE
}

/// `v` as one line of JSON.
pub fn json_line(v: &impl Serialize) -> String {
    // Only plain structs, strings and numbers go through here: nothing that
    // can fail to serialize (no maps with non-string keys).
    serde_json::to_string(v).expect("plain data serializes")
}

pub fn open() -> Result<Memlab, ExitCode> {
    Memlab::open().map_err(|e| fail(format!("{DEV_PATH}: {e}")))
}

/// `memlabctl version [--json]`.
#[derive(Serialize, Debug, PartialEq)]
pub struct VersionRow {
    pub abi_version: u32,
    pub struct_size: u32,
    pub page_size: u32,
    pub max_page_order: u32,
}

pub fn version(json: bool) -> ExitCode {
    let v = match open().map(|d| d.version()) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return fail(format!("VERSION: {e}")),
        Err(code) => return code,
    };
    let row = VersionRow {
        abi_version: v.abi_version,
        struct_size: v.struct_size,
        page_size: v.page_size,
        max_page_order: v.max_page_order,
    };
    if json {
        println!("{}", json_line(&row));
    } else {
        println!(
            "memlab ABI {} (struct {} B, page {} B, MAX_PAGE_ORDER {})",
            row.abi_version, row.struct_size, row.page_size, row.max_page_order
        );
    }
    ExitCode::SUCCESS
}

/// One block, as INSPECT described it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct BlockRow {
    pub handle: u32,
    /// `real` or `mirror`.
    pub backend: &'static str,
    pub family: &'static str,
    /// The kernel function that allocated it (on the mirror: the mirror's
    /// function of that name, or what maps its pages).
    pub call: &'static str,
    pub gfp: String,
    pub size: u64,
    pub usable: u64,
    pub zone: &'static str,
    pub first_pfn: u64,
    pub nr_pages: u64,
    pub phys_runs: u64,
    pub dma_addr: u64,
    pub align_log2: u32,
    pub zeroed: bool,
    pub alloc_ns: u64,
}

/// Header of [`BlockRow::human`], from the same column widths.
pub fn block_header() -> String {
    format!(
        "{:>6} {:<18} {:<10} {:<22} {:>8} {:>10}  {:<6} {:>10} {:>6} {:>5}  {:<5}  {:<6} {:>10}  {}",
        "handle",
        "call",
        "family",
        "gfp",
        "size",
        "usable",
        "zone",
        "first_pfn",
        "pages",
        "runs",
        "align",
        "zeroed",
        "alloc_ns",
        "dma_addr"
    )
}

fn backend_name(backend: u32) -> &'static str {
    if backend == uapi::MEMLAB_BACKEND_MIRROR {
        "mirror"
    } else {
        "real"
    }
}

impl BlockRow {
    pub fn new(i: &uapi::MemlabBlockInfo, backend: u32) -> Self {
        BlockRow {
            handle: i.handle,
            backend: backend_name(backend),
            family: names::name_of(names::FAMILIES, i.family),
            call: names::family_api(i.family, backend),
            gfp: names::gfp_name(i.gfp),
            size: i.size,
            usable: i.usable,
            zone: names::zone_name(i.zone),
            first_pfn: i.first_pfn,
            nr_pages: i.nr_pages,
            phys_runs: i.phys_runs,
            dma_addr: i.dma_addr,
            align_log2: i.align_log2,
            zeroed: i.zeroed != 0,
            alloc_ns: i.alloc_ns,
        }
    }

    /// The row under [`block_header`].
    pub fn human(&self) -> String {
        format!(
            "{:>6} {:<18} {:<10} {:<22} {:>8} {:>10}  {:<6} {:>10} {:>6} {:>5}  2^{:<3}  {:<6} {:>10}  {}",
            self.handle,
            self.call,
            self.family,
            self.gfp,
            self.size,
            self.usable,
            self.zone,
            format!("{:#x}", self.first_pfn),
            self.nr_pages,
            self.phys_runs,
            self.align_log2,
            if self.zeroed { "yes" } else { "-" },
            self.alloc_ns,
            if self.family == "dma" {
                format!("{:#x}", self.dma_addr)
            } else {
                "-".into()
            }
        )
    }
}

/// `memlabctl alloc`: allocates, prints what the kernel handed out, frees
/// everything on exit (handles belong to the open file).
pub fn alloc(a: &AllocArgs) -> ExitCode {
    let req = a.request();
    let dev = match open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut rows: Vec<BlockRow> = Vec::new();
    for _ in 0..a.count {
        let h = match dev.alloc(&req) {
            Ok(h) => h,
            // One line naming the rule or the cap, before any table.
            Err(e) if crate::dev::is_no_dma(req.family, &e) => {
                return fail(format!("alloc: {}", crate::dev::NO_DMA));
            }
            Err(e) => {
                let held = rows.iter().map(|r| r.usable).sum();
                let caps = explain::Pinned::read();
                let why = explain::alloc_refusal(&req, held, rows.len(), caps.as_ref());
                return fail(format!("alloc: {}", explain::explained(&e, why)));
            }
        };
        match dev.inspect(h) {
            Ok(info) => {
                let row = BlockRow::new(&info, req.backend);
                if !a.json {
                    if rows.is_empty() {
                        println!("{}", names::family_call(req.family, req.backend, req.gfp));
                        println!("{}", block_header());
                    }
                    println!("{}", row.human());
                }
                rows.push(row);
            }
            Err(e) => {
                return fail(format!(
                    "alloc: {} on {}: {e}",
                    names::family_api(req.family, req.backend),
                    backend_name(req.backend)
                ))
            }
        }
    }
    if a.json {
        println!("{}", json_line(&rows));
    }
    ExitCode::SUCCESS
}

/// One exercise's summary.
#[derive(Serialize, Debug, PartialEq)]
pub struct ExerciseRow {
    pub exercise: &'static str,
    /// The kernel functions it calls.
    pub calls: &'static str,
    pub cases: u32,
    pub passed: u32,
    pub median_ns: u64,
    pub p99_ns: u64,
}

/// `memlabctl exercise NAME... [--reps N] [--json]`.
pub fn exercise(a: &ExerciseArgs) -> ExitCode {
    run_exercises(&a.exercises(), a.reps, a.json)
}

/// Runs `which` with `reps` and prints their summaries.
pub fn run_exercises(which: &[(&'static str, u32)], reps: u32, json: bool) -> ExitCode {
    let dev = match open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut rows = Vec::new();
    if !json {
        println!("exercise     cases  passed   median_ns      p99_ns  kernel calls");
    }
    for &(name, id) in which {
        let s = match dev.exercise(id, reps) {
            Ok(s) => s,
            // A kernel without the DMA API (User-Mode Linux selects
            // NO_DMA) has no DMA device: a skip with its reason, not a
            // failure.
            Err(e)
                if id == uapi::MEMLAB_EX_DMA
                    && crate::dev::is_no_dma(uapi::MEMLAB_FAMILY_DMA, &e) =>
            {
                if !json {
                    println!("{name:<12} skipped: {}", crate::dev::NO_DMA);
                }
                continue;
            }
            Err(e) => return fail(format!("exercise {name}: {e}")),
        };
        let row = ExerciseRow {
            exercise: name,
            calls: names::exercise_api(id),
            cases: s.cases,
            passed: s.passed,
            median_ns: s.median_ns,
            p99_ns: s.p99_ns,
        };
        if !json {
            println!(
                "{name:<12} {:>5}  {:>6} {:>11} {:>11}  {}",
                row.cases, row.passed, row.median_ns, row.p99_ns, row.calls
            );
        }
        rows.push(row);
    }
    if json {
        println!("{}", json_line(&rows));
    } else {
        println!("(full report: {DEBUGFS}/real/report)");
    }
    if rows.iter().all(|r| r.passed == r.cases) {
        ExitCode::SUCCESS
    } else {
        fail("some cases did not behave as expected; see the report")
    }
}

/// The `what` values of the module's text report that are not kernel
/// function names themselves, each with the call behind it, in order of
/// first appearance.
pub fn report_legend(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("what ") {
            in_table = true;
            continue;
        }
        if line.trim().is_empty() || line.starts_with("==") {
            in_table = false;
            continue;
        }
        if !in_table {
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(what), Some(arg)) = (w.next(), w.next()) else {
            continue;
        };
        let arg_name = arg.split('=').next().unwrap_or("");
        // The GFP rows share one entry per argument: GFP_* stands for the
        // selector in the 'what' column.
        let what = if what.starts_with("GFP_") {
            "GFP_*"
        } else {
            what
        };
        if let Some(api) = names::report_api(what, arg_name) {
            let key = format!("{what} ({arg_name})");
            if api != what && !out.iter().any(|(k, _)| *k == key) {
                out.push((key, api));
            }
        }
    }
    out
}

/// Prints the legend of [`report_legend`].
pub fn print_legend(text: &str) {
    let legend = report_legend(text);
    if legend.is_empty() {
        return;
    }
    println!("kernel calls behind the 'what' column:");
    for (what, api) in legend {
        println!("  {what:<30} {api}");
    }
}

/// `real/report.json` re-emitted through serde_json: rejected if it is not
/// JSON, and every row whose `what` names a kernel call gets a `call`.
pub fn report_json(text: &str) -> Result<String, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let exercises = v
        .get_mut("exercises")
        .and_then(Value::as_array_mut)
        .ok_or("no \"exercises\" array")?;
    for row in exercises
        .iter_mut()
        .filter_map(|e| e.get_mut("rows").and_then(Value::as_array_mut))
        .flatten()
    {
        let Some(obj) = row.as_object_mut() else {
            continue;
        };
        let what = obj.get("what").and_then(Value::as_str).unwrap_or("");
        let arg_name = ["pages_order", "kmalloc_size"]
            .into_iter()
            .find(|k| obj.contains_key(*k))
            .unwrap_or("");
        if let Some(api) = names::report_api(what, arg_name) {
            obj.insert("call".into(), Value::String(api));
        }
    }
    Ok(json_line(&v))
}

/// `memlabctl report [--json]`: the last run of each exercise, from debugfs.
pub fn report(json: bool) -> ExitCode {
    let file = if json { "report.json" } else { "report" };
    let path = format!("{DEBUGFS}/real/{file}");
    let text = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => return fail(format!("{path}: {e}")),
    };
    if json {
        match report_json(&text) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(format!("{path}: {e}")),
        }
    } else {
        print!("{text}");
        print_legend(&text);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> uapi::MemlabBlockInfo {
        uapi::MemlabBlockInfo {
            handle: 3,
            family: uapi::MEMLAB_FAMILY_DMA,
            gfp: uapi::MEMLAB_GFP_DMA32 | uapi::MEMLAB_GFP_ZERO,
            zone: uapi::MEMLAB_ZONE_DMA32,
            size: 65536,
            usable: 65536,
            first_pfn: 0x4840,
            nr_pages: 16,
            phys_runs: 1,
            dma_addr: 0x484_0000,
            alloc_ns: 1234,
            align_log2: 18,
            zeroed: 1,
        }
    }

    #[test]
    fn block_json_shape() {
        let rows = vec![BlockRow::new(&info(), uapi::MEMLAB_BACKEND_REAL)];
        let line = json_line(&rows);
        assert!(line.starts_with("[{\"handle\":3,\"backend\":\"real\",\"family\":\"dma\","));
        let v: Value = serde_json::from_str(&line).unwrap();
        let row = &v.as_array().unwrap()[0];
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = [
            "handle",
            "backend",
            "family",
            "call",
            "gfp",
            "size",
            "usable",
            "zone",
            "first_pfn",
            "nr_pages",
            "phys_runs",
            "dma_addr",
            "align_log2",
            "zeroed",
            "alloc_ns",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(row["handle"], 3);
        assert_eq!(row["backend"], "real");
        assert_eq!(row["family"], "dma");
        assert_eq!(row["call"], "dma_alloc_coherent");
        assert_eq!(row["gfp"], "GFP_DMA32|__GFP_ZERO");
        assert_eq!(row["zone"], "DMA32");
        assert_eq!(row["first_pfn"], 0x4840);
        assert_eq!(row["dma_addr"], 0x484_0000u64);
        assert_eq!(row["zeroed"], true);
        let mirror = BlockRow::new(&info(), uapi::MEMLAB_BACKEND_MIRROR);
        assert_eq!((mirror.backend, mirror.call), ("mirror", "dma_map_page"));
    }

    #[test]
    fn block_table_row_lines_up() {
        let row = BlockRow::new(&info(), uapi::MEMLAB_BACKEND_REAL).human();
        let header = block_header();
        let head: Vec<&str> = header.split_whitespace().collect();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(head.len(), cells.len(), "{row}");
        assert_eq!(cells[1], "dma_alloc_coherent");
        // Each right-aligned numeric column ends where its header ends.
        for col in ["size", "usable", "first_pfn", "pages", "alloc_ns"] {
            let end = header.find(col).unwrap() + col.len();
            assert_ne!(&row[end - 1..end], " ", "{col}: {row}");
            assert_eq!(&row[end..=end], " ", "{col}: {row}");
        }
    }

    #[test]
    fn exercise_and_version_json_shape() {
        let v: Value = serde_json::from_str(&json_line(&vec![ExerciseRow {
            exercise: "dma",
            calls: names::exercise_api(uapi::MEMLAB_EX_DMA),
            cases: 13,
            passed: 13,
            median_ns: 5,
            p99_ns: 7,
        }]))
        .unwrap();
        assert_eq!(v[0]["exercise"], "dma");
        assert_eq!(v[0]["calls"], "dma_alloc_coherent, dma_map_single");
        assert_eq!(v[0]["cases"], 13);
        let v: Value = serde_json::from_str(&json_line(&VersionRow {
            abi_version: 1,
            struct_size: 16,
            page_size: 4096,
            max_page_order: 10,
        }))
        .unwrap();
        assert_eq!(v["abi_version"], 1);
        assert_eq!(v["max_page_order"], 10);
    }

    #[test]
    fn report_json_is_validated_and_annotated() {
        let text = r#"{"abi":1,"exercises":[{"name":"dma","rows":[
            {"what":"coherent/32bit","size":4096,"ok":true},
            {"what":"mystery","size":1}]},
            {"name":"gfp","rows":[{"what":"GFP_NOIO","pages_order":0}]}]}"#;
        let out: Value = serde_json::from_str(&report_json(text).unwrap()).unwrap();
        let rows = &out["exercises"][0]["rows"];
        assert_eq!(
            rows[0]["call"],
            "dma_alloc_coherent on memlab-dma.32 (32-bit DMA mask)"
        );
        assert_eq!(rows[0]["size"], 4096);
        assert!(rows[1].get("call").is_none());
        assert_eq!(
            out["exercises"][1]["rows"][0]["call"],
            "alloc_pages(GFP_NOIO, order)"
        );
        assert!(report_json("{\"abi\":1,\"exercises\":[").is_err());
        assert!(report_json("{\"abi\":1}").is_err());
    }

    #[test]
    fn legend_names_the_calls() {
        let text = "== dma (exercise 4, reps 8): 2/2 cases passed, median 1 ns, p99 2 ns ==\n\
                    buddyinfo before:\n  Node 0, zone      DMA 1 2 3\n\
                    what                            arg   ok\n\
                    coherent/24bit           size=4096  yes\n\
                    coherent/24bit           size=8192  yes\n\
                    kmalloc                    size=64  yes\n\
                    GFP_ATOMIC           kmalloc_size=256  yes\n\
                    GFP_NOIO             kmalloc_size=256  yes\n\n";
        assert_eq!(
            report_legend(text),
            [
                (
                    "coherent/24bit (size)".to_string(),
                    "dma_alloc_coherent on memlab-dma.24 (24-bit DMA mask)".to_string()
                ),
                (
                    "GFP_* (kmalloc_size)".to_string(),
                    "kmalloc(size, GFP_*)".to_string()
                ),
            ]
        );
    }
}
