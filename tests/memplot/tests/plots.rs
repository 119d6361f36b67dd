//! memplot's drawing code on small synthetic data sets built here (these
//! test the drawing, they are not results), plus one mirror pagemap read
//! from a real VM (tests/data/pagemap-mirror.txt).

use memplot::frag::{FragFile, FRAG_SIZE};
use memplot::latency::{percentile, LatencyFile, LATENCY_SIZE};
use memplot::pagemap::Pagemap;
use memplot::pagemap_plot::{choose_scale, reduce, Class, PAGEMAP_SIZE};
use memplot::run::{run, INPUTS};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("memplot-{name}"));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Runs the memplot binary as `memplot --out OUT INPUT`.
fn memplot_bin(input: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memplot"))
        .arg("--out")
        .arg(out)
        .arg(input)
        .output()
        .unwrap()
}

/// Decodes the whole PNG (not only its header) and returns its size.
fn png_size(path: &Path) -> (u32, u32) {
    let dec = png::Decoder::new(fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

/// The SVG is well-formed XML with an <svg> root of the stated size.
fn check_svg(path: &Path, size: (u32, u32)) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.trim_start().starts_with("<svg"), "{}", path.display());
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some(size.0.to_string().as_str()));
    assert_eq!(root.attribute("height"), Some(size.1.to_string().as_str()));
}

fn write_latency(dir: &Path) {
    // Deterministic spread: i in 0..n mapped onto a rising curve.
    let samples = |base: f64, n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| base * (1.0 + (i as f64 / n as f64).powi(3) * 4.0))
            .collect()
    };
    let mut mirror = samples(15.0, 300);
    mirror.push(0.0); // floor-subtracted samples can be 0 or below
    mirror.push(-1.0);
    let v = json!({
        "kernel": "7.2.13 bench",
        "workloads": [
            {"name": "kmalloc 64 B", "op": "alloc", "pattern": "pairs", "ops_per_sample": 64,
             "real_ns": samples(10.0, 300), "mirror_ns": mirror},
            {"name": "pages order 0..3", "op": "free", "pattern": "random", "ops_per_sample": 8,
             "real_ns": samples(120.0, 50), "mirror_ns": []},
        ]
    });
    fs::write(dir.join("latency.json"), v.to_string()).unwrap();
}

fn write_frag(dir: &Path) {
    let steps: Vec<u64> = (0..=20).map(|i| i * 500).collect();
    let series = |backend: &str, k: f64| {
        json!({
            "backend": backend,
            "step": steps,
            "unusable_3": steps.iter().map(|&s| (s as f64 / 20000.0 * k).min(1.0)).collect::<Vec<_>>(),
            "unusable_9": steps.iter().map(|&s| (0.2 + s as f64 / 12000.0 * k).min(1.0)).collect::<Vec<_>>(),
            "free_blocks": steps.iter().map(|&s| (0..11u64).map(|o| if o > 8 && s > 5000 { 0 } else { s / 50 + o * 3 }).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })
    };
    let v = json!({"zone": "Normal", "steps": 10000, "sample_every": 500,
        "series": [series("real", 1.0), series("mirror", 1.3)]});
    fs::write(dir.join("frag.json"), v.to_string()).unwrap();
}

/// A real-side map: a large Normal zone, mostly free, with kinds the mirror
/// never writes (reserved, nopage, other) and one this tool does not know.
fn write_real_pagemap(dir: &Path) {
    let mut s = String::from("# memlab real/pagemap 1\n# zone start_pfn pages kind [detail]\n");
    s += "DMA 0x1 4095 reserved\n";
    let mut pfn = 0x100000u64;
    for i in 0..600u64 {
        let (n, kind) = match i % 6 {
            0 => (512, "free order=9"),
            1 => (3, "slab"),
            2 => (16, "pages"),
            3 => (1, "other"),
            4 => (64, "nopage"),
            _ => (8, "vmalloc-guard"),
        };
        s += &format!("Normal {pfn:#x} {n} {kind}\n");
        pfn += n;
    }
    fs::write(dir.join("pagemap-real.txt"), s).unwrap();
}

fn write_all(dir: &Path) {
    write_latency(dir);
    write_frag(dir);
    write_real_pagemap(dir);
    fs::copy(data("pagemap-mirror.txt"), dir.join("pagemap-mirror.txt")).unwrap();
}

#[test]
fn every_output_is_a_valid_png_and_svg_of_the_stated_size() {
    let input = scratch("all-in");
    let out = scratch("all-out");
    write_all(&input);
    let o = run(&input, &out);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.missing.is_empty());
    assert!(o.ok());
    let expect = [
        ("pagemap", PAGEMAP_SIZE),
        ("frag", FRAG_SIZE),
        ("latency-kmalloc-64-b-alloc", LATENCY_SIZE),
        ("latency-pages-order-0-3-free", LATENCY_SIZE),
    ];
    assert_eq!(o.written.len(), 2 * expect.len(), "{:?}", o.written);
    for (stem, size) in expect {
        let png = out.join(format!("{stem}.png"));
        assert_eq!(png_size(&png), size, "{stem}.png");
        check_svg(&out.join(format!("{stem}.svg")), size);
    }
}

#[test]
fn the_binary_draws_what_exists_and_names_what_is_missing() {
    let input = scratch("bin-in");
    let out = scratch("bin-out");
    fs::copy(data("pagemap-mirror.txt"), input.join("pagemap-mirror.txt")).unwrap();
    let r = memplot_bin(&input, &out);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    for name in ["latency.json", "frag.json", "pagemap-real.txt"] {
        assert!(stderr.contains(name), "{name} not named in: {stderr}");
    }
    assert!(!stderr.contains("pagemap-mirror.txt"), "{stderr}");
    assert_eq!(png_size(&out.join("pagemap.png")), PAGEMAP_SIZE);
    assert!(!out.join("frag.png").exists());
}

#[test]
fn no_input_at_all_fails() {
    let input = scratch("none-in");
    let out = scratch("none-out");
    let o = run(&input, &out);
    assert_eq!(o.missing.len(), INPUTS.len());
    assert!(o.written.is_empty());
    assert!(!o.ok());
    let r = memplot_bin(&input, &out);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("none of"));
}

#[test]
fn a_malformed_input_fails_naming_file_and_line_but_the_rest_is_drawn() {
    let input = scratch("bad-in");
    let out = scratch("bad-out");
    write_frag(&input);
    fs::write(
        input.join("latency.json"),
        "{\"kernel\": \"k\",\n \"workloads\": [\n {\"name\": \"x\", \"real_ns\": [1.0, \"two\"], \"mirror_ns\": []}]}",
    )
    .unwrap();
    fs::write(
        input.join("pagemap-mirror.txt"),
        "# memlab mirror/pagemap 1\nNormal 0x100 8 free order=3\nNormal 0x108 many pages\n",
    )
    .unwrap();
    let o = run(&input, &out);
    assert!(!o.ok());
    assert_eq!(o.errors.len(), 2, "{:?}", o.errors);
    let latency = input.join("latency.json").display().to_string();
    let pagemap = input.join("pagemap-mirror.txt").display().to_string();
    assert!(
        o.errors[0].starts_with(&format!("{latency}:3:")),
        "{}",
        o.errors[0]
    );
    assert!(
        o.errors[1].starts_with(&format!("{pagemap}:3:")),
        "{}",
        o.errors[1]
    );
    assert!(o.errors[1].contains("`many`"), "{}", o.errors[1]);
    // frag.json was fine: drawn all the same.
    assert_eq!(png_size(&out.join("frag.png")), FRAG_SIZE);
    let r = memplot_bin(&input, &out);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains(&format!("{pagemap}:3:")));
}

#[test]
fn pagemap_parse_errors_carry_line_numbers() {
    let cases = [
        ("Normal 0x100 8\n", 1, "missing kind"),
        ("# c\n\nNormal 100 8 free\n", 3, "0x-prefixed hex"),
        ("Normal 0xzz 8 free\n", 1, "0x-prefixed hex"),
        ("Normal 0x100 0 free\n", 1, "above zero"),
        ("Normal 0x100 -1 free\n", 1, "above zero"),
        ("Normal 0xffffffffffffffff 2 free\n", 1, "overflows"),
        (
            "Normal 0x100 8 free order=3\nDMA 0x0 4 pages\nNormal 0x104 4 pages\n",
            3,
            "overlaps",
        ),
    ];
    let dir = scratch("empty-map");
    let empty = dir.join("pagemap-real.txt");
    fs::write(&empty, "# memlab real/pagemap 1\n\n").unwrap();
    let e = Pagemap::load(&empty).unwrap_err();
    assert_eq!((e.line, e.msg.contains("no records")), (None, true), "{e}");
    for (text, line, what) in cases {
        let (l, msg) = Pagemap::parse(text).unwrap_err();
        assert_eq!(l, line, "{text:?}: {msg}");
        assert!(msg.contains(what), "{text:?}: {msg}");
    }
}

#[test]
fn unknown_kinds_parse_and_draw_grey() {
    let m = Pagemap::parse("Normal 0x0 4 vmalloc-guard x=1\nNormal 0x4 4 free order=2\n").unwrap();
    assert_eq!(m.runs[0].kind, "vmalloc-guard");
    assert_eq!(m.runs[0].detail, "x=1");
    assert_eq!(Class::of("vmalloc-guard", None), Class::Unknown);
    assert_eq!(Class::of("dma-kmalloc-large", Some(3)), Class::KmallocLarge);
    assert_eq!(Class::of("free", Some(14)), Class::Free(10));
    assert_eq!(Class::of("free", None), Class::FreeAny);
    let s = reduce(&m, "Normal", "real", 1);
    assert_eq!(s.pixels[..4], [Class::Unknown; 4]);
    assert_eq!(s.pixels[4..], [Class::Free(2); 4]);
}

#[test]
fn pagemap_summary_adds_pages_per_kind_per_zone() {
    let text = "# memlab mirror/pagemap 1\n\
        DMA 0x100 256 free order=8\n\
        Normal 0x1000 512 free order=9\n\
        Normal 0x1200 8 slab kmalloc-64 order=0\n\
        Normal 0x1208 8 free order=3\n\
        Normal 0x1210 4 free order=2\n\
        Normal 0x1214 4 pages order=2\n\
        Normal 0x1400 16 slab kmalloc-4k order=3\n\
        Normal 0x1410 1 pcp\n";
    let s = Pagemap::parse(text).unwrap().summary();
    assert_eq!(s.len(), 2);
    let dma = &s["DMA"];
    assert_eq!(
        (dma.pages, dma.kind("free"), dma.free_blocks(8)),
        (256, 256, 1)
    );
    let n = &s["Normal"];
    assert_eq!(n.pages, 512 + 8 + 8 + 4 + 4 + 16 + 1);
    assert_eq!(n.kind("free"), 524);
    assert_eq!(n.kind("slab"), 24);
    assert_eq!(n.kind("pages"), 4);
    assert_eq!(n.kind("pcp"), 1);
    assert_eq!(n.kind("reserved"), 0);
    assert_eq!(
        (n.free_blocks(9), n.free_blocks(3), n.free_blocks(2)),
        (1, 1, 1)
    );
    assert_eq!((n.first_pfn, n.end_pfn), (0x1000, 0x1411));
}

#[test]
fn the_real_vm_fixture_covers_the_16_mib_pool() {
    let m = Pagemap::load(&data("pagemap-mirror.txt")).unwrap();
    let s = m.summary();
    let total: u64 = s.values().map(|z| z.pages).sum();
    assert_eq!(total, 4096, "pool_mb=16 is 4096 pages");
    assert_eq!(m.zones(), ["DMA", "DMA32", "Normal"]);
    for z in s.values() {
        let free_by_order: u64 = z.free_pages_by_order.values().sum();
        assert_eq!(free_by_order, z.kind("free"));
    }
}

#[test]
fn a_pixel_shows_the_kind_of_most_of_its_pages() {
    // 4 pages per pixel: [free free free slab] [slab slab hole hole] [pages x4]
    let m = Pagemap::parse(
        "Normal 0x0 3 free order=0\nNormal 0x3 3 slab\nNormal 0x8 4 pages order=2\n",
    )
    .unwrap();
    let s = reduce(&m, "Normal", "mirror", 4);
    assert_eq!(s.pixels, [Class::Free(0), Class::Slab, Class::Pages]);
    assert_eq!((s.pages, s.free), (10, 3));
    let s1 = reduce(&m, "Normal", "mirror", 1);
    assert_eq!(s1.pixels[6], Class::Hole);
    assert_eq!(s1.pixels.len(), 12);
}

#[test]
fn real_and_mirror_share_one_scale_that_fits() {
    // Mirror alone (16 MiB): a page per pixel.
    assert_eq!(choose_scale(&[256, 2048, 1792]).0, 1);
    // With a 4 GiB real zone beside it: more pages per pixel, one P for all.
    let (p, row_h) = choose_scale(&[1 << 20, 256, 2048, 1792]);
    assert!(p > 1 && p.is_power_of_two(), "{p}");
    assert!(row_h >= 1);
    let rows = |span: u64| span.div_ceil(p).div_ceil(1024);
    let used = (rows(1 << 20) + rows(256) + rows(2048) + rows(1792)) as i32 * row_h;
    assert!(used + 4 * 34 <= 1110 - 96, "{used} px of rows do not fit");
    // The figure uses that scale for every strip.
    let dir = scratch("scale");
    write_real_pagemap(&dir);
    let real = Pagemap::load(&dir.join("pagemap-real.txt")).unwrap();
    let mirror = Pagemap::load(&data("pagemap-mirror.txt")).unwrap();
    let fig = memplot::pagemap_plot::PagemapFigure::new(Some(&real), Some(&mirror));
    let sides: Vec<_> = fig
        .strips
        .iter()
        .map(|s| (s.side, s.zone.as_str()))
        .collect();
    assert_eq!(
        sides,
        [
            ("real", "DMA"),
            ("mirror", "DMA"),
            ("mirror", "DMA32"),
            ("real", "Normal"),
            ("mirror", "Normal"),
        ]
    );
    for s in &fig.strips {
        let span = s.end_pfn - s.start_pfn;
        assert_eq!(s.pixels.len() as u64, span.div_ceil(fig.pages_per_px));
    }
    assert_eq!(fig.unknown_kinds, ["vmalloc-guard"]);
}

#[test]
fn latency_percentiles_and_file_names() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 0.5), Some(50.0));
    assert_eq!(percentile(&v, 0.99), Some(99.0));
    assert_eq!(percentile(&v[..1], 0.99), Some(1.0));
    assert_eq!(percentile(&[], 0.5), None);
    let dir = scratch("latency");
    write_latency(&dir);
    let f = LatencyFile::load(&dir.join("latency.json")).unwrap();
    let slugs: Vec<_> = f.workloads.iter().map(|w| w.slug()).collect();
    assert_eq!(slugs, ["kmalloc-64-b-alloc", "pages-order-0-3-free"]);
    fs::write(dir.join("empty.json"), r#"{"workloads": []}"#).unwrap();
    let e = LatencyFile::load(&dir.join("empty.json")).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn frag_series_must_agree_in_length_and_range() {
    let dir = scratch("frag");
    write_frag(&dir);
    let text = fs::read_to_string(dir.join("frag.json")).unwrap();
    let good: FragFile = serde_json::from_str(&text).unwrap();
    assert_eq!(good.check(), Ok(()));
    let mut short = good.clone();
    short.series[1].unusable_9.pop();
    let e = short.check().unwrap_err();
    assert!(
        e.contains("series[1] (mirror): unusable_9 has 20 values, step has 21"),
        "{e}"
    );
    let mut wild = good.clone();
    wild.series[0].unusable_3[2] = 1.5;
    assert!(wild.check().unwrap_err().contains("outside 0..1"));
    fs::write(
        dir.join("bad.json"),
        "{\"zone\": \"Normal\",\n\"series\": 3}",
    )
    .unwrap();
    let e = FragFile::load(&dir.join("bad.json")).unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn frag_arena_is_the_free_memory_of_the_first_sample() {
    let s = memplot::frag::FragSeries {
        backend: "real".into(),
        step: vec![0, 200],
        unusable_3: vec![0.0, 0.0],
        unusable_9: vec![0.0, 0.0],
        // 256 order-0 pages and two order-10 blocks: 1 MiB + 8 MiB.
        free_blocks: vec![vec![256, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], vec![0; 11]],
    };
    assert_eq!(s.arena_mib(), 9.0);
    let empty = memplot::frag::FragSeries {
        free_blocks: vec![],
        ..s
    };
    assert_eq!(empty.arena_mib(), 0.0);
}

/// A `memlabctl diverge --out` file: `n` samples a side, the real side
/// without sheaves (the kernel keeps them private).
fn diverge_json(n: u64, orders: usize) -> serde_json::Value {
    let side = |name: &str, k: u64, sheaves: bool| {
        let samples: Vec<_> = (0..n)
            .map(|i| {
                json!({"step": i * 1000, "free_blocks": (0..orders as u64).map(|o| (20 - o) * k + i).collect::<Vec<_>>(),
                       "pcp_pages": 100 + i * k, "partial": i * k, "free_objects": 3 * i * k,
                       "sheaf_fill": sheaves.then_some(40 + i), "barn_full": sheaves.then_some(2),
                       "barn_empty": sheaves.then_some(2)})
            })
            .collect();
        json!({"side": name, "samples": samples})
    };
    json!({"engine": "uml", "kernel": "7.2.13", "zone": "Normal", "sample_every": 1000,
           "stream": {"name": "fragment", "source": "synthetic", "steps": n * 1000},
           "sides": [side("real", 2, false), side("mirror", 3, true)]})
}

#[test]
fn every_divergence_report_gets_its_figure_and_a_bad_one_is_named() {
    use memplot::diverge::{DivergeFile, DIVERGE_SIZE};
    let input = scratch("diverge-in");
    let out = scratch("diverge-out");
    for name in ["fragment", "trace"] {
        let path = input.join(format!("diverge-{name}.json"));
        fs::write(&path, diverge_json(12, 11).to_string()).unwrap();
    }
    // Not a report's name: ignored, not drawn.
    fs::write(input.join("diverge.json"), "{}").unwrap();
    let o = run(&input, &out);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.ok(), "diverge reports alone are something to draw");
    for stem in ["diverge-fragment", "diverge-trace"] {
        assert_eq!(png_size(&out.join(format!("{stem}.png"))), DIVERGE_SIZE);
        check_svg(&out.join(format!("{stem}.svg")), DIVERGE_SIZE);
    }
    assert_eq!(o.written.len(), 4);
    // Ten orders where eleven are due: the file is named, the rest drawn.
    fs::write(
        input.join("diverge-bad.json"),
        diverge_json(3, 10).to_string(),
    )
    .unwrap();
    let o = run(&input, &out);
    assert!(!o.ok());
    assert!(
        o.errors
            .iter()
            .any(|e| e.contains("diverge-bad.json") && e.contains("expected 11")),
        "{:?}",
        o.errors
    );
    assert_eq!(o.written.len(), 4);
    assert_eq!(
        DivergeFile::stem(Path::new("out/diverge-x.json")).as_deref(),
        Some("diverge-x")
    );
    assert_eq!(DivergeFile::stem(Path::new("diverge-.json")), None);
}
