//! memplot: draws memlab's bench data as PNG and SVG (see the README,
//! "Pictures").

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draw memlab's bench data (latency.json, frag.json, pagemap-real.txt,
/// pagemap-mirror.txt, diverge-*.json) as PNG and SVG
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Directory the images are written to
    #[arg(long, value_name = "DIR", default_value = "out")]
    out: PathBuf,
    /// Directory holding the data files (`make bench` writes out/bench)
    input_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.input_dir.is_dir() {
        eprintln!("memplot: {}: not a directory", args.input_dir.display());
        return ExitCode::FAILURE;
    }
    // Every figure has text: no font, no figure (one message, not one per file).
    if let Err(e) = memplot::font::init() {
        eprintln!("memplot: {e}");
        return ExitCode::FAILURE;
    }
    let o = memplot::run::run(&args.input_dir, &args.out);
    for m in &o.missing {
        eprintln!("memplot: {} is missing: its figure is skipped", m.display());
    }
    for e in &o.errors {
        eprintln!("memplot: {e}");
    }
    for w in &o.written {
        println!("{}", w.display());
    }
    if o.missing.len() == memplot::run::INPUTS.len() && o.written.is_empty() {
        eprintln!(
            "memplot: none of {} exists in {}",
            memplot::run::INPUTS.join(", "),
            args.input_dir.display()
        );
    }
    if o.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
