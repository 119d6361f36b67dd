// SPDX-License-Identifier: GPL-2.0

//! memlab's debugfs files: the real allocators' report (text and JSON,
//! after the exercises ran) and the mirror's files, which must have exactly
//! the layouts of the kernel's own (/proc/buddyinfo, mm/vmstat.c's
//! fragmentation indexes, /proc/slabinfo).

use super::{free_pages_in, mirror_file, read};
use crate::dev::{uapi, DEBUGFS};
use crate::names;
use crate::tap::{check, Outcome, Suite};
use serde_json::Value;

pub fn cases(s: &mut Suite) {
    s.case(
        "debugfs real/report has every family's table and buddyinfo",
        report_text,
    );
    s.case(
        "debugfs real/report.json names every exercise and is balanced",
        report_json,
    );
    s.case(
        "mirror/buddyinfo has /proc/buddyinfo's exact layout",
        || {
            // The checker must accept the kernel's own file, or it proves nothing.
            check_zone_lines(&read("/proc/buddyinfo")?, "/proc/buddyinfo", count_field)?;
            check_zone_lines(&mirror_file("buddyinfo")?, "mirror/buddyinfo", count_field)
        },
    );
    s.case(
        "mirror/extfrag_index and unusable_index have mm/vmstat.c's layouts",
        || {
            check_zone_lines(
                &mirror_file("extfrag_index")?,
                "extfrag_index",
                index_field(true),
            )?;
            check_zone_lines(
                &mirror_file("unusable_index")?,
                "unusable_index",
                index_field(false),
            )
        },
    );
    s.case(
        "mirror/slabinfo has /proc/slabinfo's exact header and line layout",
        slabinfo_layout,
    );
    s.case(
        "mirror pool holds pool_mb (default 16 MiB) of pages across its zones",
        || {
            let want = super::params::params().pool_pages();
            let pool = mirror_file("pool")?;
            let total: u64 = pool
                .lines()
                .filter_map(|l| l.strip_prefix("zone "))
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
                .sum();
            check(total == want, || {
                format!("zones manage {total} pages, want {want}:\n{pool}")
            })?;
            check(free_pages_in(&mirror_file("buddyinfo")?) <= want, || {
                "more free than managed".into()
            })
        },
    );
}

fn report_text() -> Outcome {
    let text = read(&format!("{DEBUGFS}/real/report"))?;
    // UML has no DMA API (the dma exercise answers ENODEV and leaves no
    // table) and zone Normal only.
    let uml = super::kernel::is_uml();
    for &(name, id) in names::EXERCISES {
        if uml && id == uapi::MEMLAB_EX_DMA {
            continue;
        }
        check(
            text.contains(&format!("== {name} (exercise {id}, reps")),
            || format!("no table for {name} in:\n{text}"),
        )?;
    }
    for api in [
        "kmalloc",
        "vmalloc",
        "alloc_pages",
        "kmem_cache+ctor",
        "coherent/32bit",
        "map_single/64bit",
        "GFP_ATOMIC",
        "GFP_DMA32",
    ] {
        if uml && api.contains("bit") {
            continue;
        }
        check(text.contains(api), || {
            format!("report never mentions {api}")
        })?;
    }
    check(
        text.contains("buddyinfo before:")
            && text.contains(if uml {
                "Node 0, zone   Normal"
            } else {
                "Node 0, zone      DMA"
            }),
        || "no buddyinfo snapshot".into(),
    )?;
    check(!text.contains("0xffff") && !text.contains("ffff8"), || {
        "report looks like it contains a kernel address".into()
    })
}

/// The JSON twin: the textual shape as before, and now also a real parse
/// with serde_json and its structure.
fn report_json() -> Outcome {
    let text = read(&format!("{DEBUGFS}/real/report.json"))?;
    let t = text.trim();
    check(t.starts_with("{\"abi\":") && t.ends_with("]}"), || {
        format!("not a JSON object: {t:.200}")
    })?;
    let (mut depth, mut ok) = (0i64, true);
    for c in t.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
        ok &= depth >= 0;
    }
    check(ok && depth == 0, || "unbalanced brackets".into())?;
    let uml = super::kernel::is_uml();
    for &(name, id) in names::EXERCISES {
        if uml && id == uapi::MEMLAB_EX_DMA {
            continue;
        }
        check(t.contains(&format!("{{\"name\":\"{name}\"")), || {
            format!("no {name} report")
        })?;
    }
    let first_zone = if uml { "Normal" } else { "DMA" };
    check(
        t.contains(&format!("\"buddyinfo_before\":{{\"{first_zone}\":[")),
        || "no buddyinfo in JSON".into(),
    )?;
    check(
        t.contains("\"objs_per_slab\":") && t.contains("\"ksize\":"),
        || "family facts missing from JSON".into(),
    )?;
    let v: Value = serde_json::from_str(t).map_err(|e| format!("invalid JSON: {e}"))?;
    check_report_value(&v)
}

/// The structure of `real/report.json` once every exercise has run.
pub fn check_report_value(v: &Value) -> Outcome {
    check(
        v["abi"].as_u64() == Some(u64::from(uapi::MEMLAB_ABI_VERSION)),
        || format!("abi is {}", v["abi"]),
    )?;
    let exercises = v["exercises"].as_array().ok_or("no exercises array")?;
    for &(name, id) in names::EXERCISES {
        if id == uapi::MEMLAB_EX_DMA && super::kernel::is_uml() {
            continue;
        }
        let ex = exercises
            .iter()
            .find(|e| e["name"] == name)
            .ok_or_else(|| format!("no {name} report"))?;
        check(ex["id"].as_u64() == Some(u64::from(id)), || {
            format!("{name}: id {}", ex["id"])
        })?;
        let rows = ex["rows"].as_array().ok_or(format!("{name}: no rows"))?;
        check(
            !rows.is_empty() && ex["cases"].as_u64() == Some(rows.len() as u64),
            || format!("{name}: cases {} for {} rows", ex["cases"], rows.len()),
        )?;
        check(
            ex["passed"]
                .as_u64()
                .is_some_and(|p| p <= rows.len() as u64),
            || format!("{name}: passed {}", ex["passed"]),
        )?;
        // The first zone the kernel has: DMA on x86-64, Normal on UML.
        let zone = if super::kernel::is_uml() {
            "Normal"
        } else {
            "DMA"
        };
        for key in ["buddyinfo_before", "buddyinfo_after"] {
            let counts = ex[key][zone]
                .as_array()
                .ok_or(format!("{name}: no {key}.{zone}"))?;
            check(
                counts.len() == 11 && counts.iter().all(Value::is_u64),
                || format!("{name}: {key}.{zone} is {}", ex[key][zone]),
            )?;
        }
        for r in rows {
            check(
                r["what"].is_string() && r["ok"].is_boolean() && r["pass"].is_boolean(),
                || format!("{name}: bad row {r}"),
            )?;
        }
    }
    let has = |key: &str| {
        exercises
            .iter()
            .filter_map(|e| e["rows"].as_array())
            .flatten()
            .any(|r| r.get(key).is_some())
    };
    check(has("objs_per_slab") && has("ksize"), || {
        "family facts missing from JSON rows".into()
    })
}

fn slabinfo_layout() -> Outcome {
    let real = read("/proc/slabinfo")?;
    let mine = mirror_file("slabinfo")?;
    let head = |s: &str| s.lines().take(2).collect::<Vec<_>>().join("\n");
    check(head(&real) == head(&mine), || {
        format!("headers differ:\n{}\n---\n{}", head(&real), head(&mine))
    })?;
    for (file, text) in [("/proc/slabinfo", &real), ("mirror/slabinfo", &mine)] {
        for line in text.lines().skip(2) {
            let again = slabinfo_line_again(line)
                .ok_or_else(|| format!("{file}: cannot parse {line:?}"))?;
            check(again == line, || {
                format!("{file}: layout differs:\n got  {line:?}\n want {again:?}")
            })?;
        }
    }
    for class in ["kmalloc-8", "kmalloc-96", "kmalloc-192", "kmalloc-8k"] {
        check(
            mine.lines()
                .any(|l| l.split_whitespace().next() == Some(class)),
            || format!("no {class} in mirror/slabinfo"),
        )?;
    }
    Ok(())
}

/// Re-renders a per-zone line ("Node N, zone %8s " then fields) with the
/// kernel's widths; the line must come out byte-identical.
fn check_zone_lines(text: &str, what: &str, field: impl Fn(&str) -> Option<String>) -> Outcome {
    check(!text.is_empty(), || format!("{what} is empty"))?;
    for line in text.lines() {
        let (head, rest) = line
            .split_once(" zone ")
            .ok_or_else(|| format!("{what}: no ' zone ' in {line:?}"))?;
        let node = head
            .strip_prefix("Node ")
            .and_then(|n| n.strip_suffix(','))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("{what}: bad node in {line:?}"))?;
        let mut words = rest.split_whitespace();
        let zone = words
            .next()
            .ok_or_else(|| format!("{what}: no zone in {line:?}"))?;
        let mut again = format!("Node {node}, zone {zone:>8} ");
        let mut n = 0;
        for w in words {
            again += &field(w).ok_or_else(|| format!("{what}: bad field {w:?} in {line:?}"))?;
            n += 1;
        }
        check(n == 11, || {
            format!("{what}: {n} orders, not 11, in {line:?}")
        })?;
        check(again == line, || {
            format!("{what}: layout differs:\n got  {line:?}\n want {again:?}")
        })?;
    }
    Ok(())
}

fn count_field(w: &str) -> Option<String> {
    w.parse::<u64>().ok().map(|v| format!("{v:>6} "))
}

/// mm/vmstat.c prints indexes as "%2d.%03d " (extfrag) or "%d.%03d "
/// (unusable), from `index / 1000` and `index % 1000`: a negative index that
/// is not -1000 comes out as e.g. " 0.-500", and so must ours.
fn index_field(wide: bool) -> impl Fn(&str) -> Option<String> {
    move |w: &str| {
        let (i, f) = w.split_once('.')?;
        let (i, f) = (i.trim().parse::<i32>().ok()?, f.parse::<i32>().ok()?);
        Some(if wide {
            format!("{i:2}.{f:03} ")
        } else {
            format!("{i}.{f:03} ")
        })
    }
}

/// The fields of one slabinfo line, re-rendered as mm/slab_common.c does.
fn slabinfo_line_again(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() != 16 || w[6] != ":" || w[7] != "tunables" || w[11] != ":" || w[12] != "slabdata" {
        return None;
    }
    let n = |i: usize| w[i].parse::<u64>().ok();
    Some(format!(
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        w[0], n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(8)?, n(9)?, n(10)?, n(13)?, n(14)?, n(15)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report.json in the module's format (src/real/report.rs), cut down.
    fn sample() -> String {
        let exercises: Vec<String> = names::EXERCISES
            .iter()
            .map(|(name, id)| {
                format!(
                    "{{\"name\":\"{name}\",\"id\":{id},\"reps\":8,\"cases\":1,\"passed\":1,\
                     \"median_ns\":5,\"p99_ns\":9,\"buddyinfo_before\":{{\"DMA\":[0,0,0,0,0,0,0,0,0,0,1]}},\
                     \"buddyinfo_after\":{{\"DMA\":[0,0,0,0,0,0,0,0,0,0,1]}},\"rows\":[{{\"what\":\"kmalloc\",\
                     \"size\":8,\"ok\":true,\"expect_ok\":true,\"pass\":true,\"zone\":\"Normal\",\"nr_pages\":1,\
                     \"phys_runs\":1,\"align_log2\":3,\"zeroed\":null,\"reps\":8,\"min_ns\":1,\"median_ns\":2,\
                     \"p99_ns\":3,\"ksize\":8,\"objs_per_slab\":4}}]}}"
                )
            })
            .collect();
        format!(
            "{{\"abi\":{},\"exercises\":[{}]}}",
            uapi::MEMLAB_ABI_VERSION,
            exercises.join(",")
        )
    }

    #[test]
    fn report_json_structure() {
        let v: Value = serde_json::from_str(&sample()).unwrap();
        assert_eq!(check_report_value(&v), Ok(()));
        let missing = sample().replace("\"name\":\"gfp\"", "\"name\":\"gfq\"");
        let v: Value = serde_json::from_str(&missing).unwrap();
        assert_eq!(check_report_value(&v), Err("no gfp report".into()));
    }

    #[test]
    fn layouts_round_trip() {
        let b = "Node 0, zone      DMA      0      0      0      0      1      1      1      1      0      0      0 ";
        assert_eq!(check_zone_lines(b, "b", count_field), Ok(()));
        assert!(check_zone_lines(&b.replace("DMA   ", "DMA"), "b", count_field).is_err());
        let u = "Node 0, zone   Normal 0.000 0.000 0.001 0.-500 0.000 0.000 0.000 0.000 0.000 0.000 1.000 ";
        assert_eq!(check_zone_lines(u, "u", index_field(false)), Ok(()));
        let s = "kmalloc-8            512    512      8  512    1 : tunables    0    0    0 : slabdata      1      1      0";
        assert_eq!(slabinfo_line_again(s).as_deref(), Some(s));
    }
}
