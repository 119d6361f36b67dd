// SPDX-License-Identifier: GPL-2.0

//! `vmcheck [--no-tap] LOG`: prints one line per check and a closing
//! `vm: N passed, N failed, N skipped`; exits 1 on any failure.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tap = !args.iter().any(|a| a == "--no-tap");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: vmcheck [--no-tap] CONSOLE_LOG");
        return ExitCode::from(2);
    };
    let log = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).replace('\r', ""),
        Err(e) => {
            eprintln!("vmcheck: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let checks = vmcheck::judge(&log, tap);
    let failed = checks.iter().filter(|c| c.failure.is_some()).count();
    let skipped = checks.iter().filter(|c| c.skipped).count();
    for c in &checks {
        match &c.failure {
            None if c.skipped => println!("SKIP {}", c.name),
            None => println!("PASS {}", c.name),
            Some(why) => {
                println!("FAIL {}", c.name);
                for l in why.lines() {
                    println!("     | {l}");
                }
            }
        }
    }
    println!(
        "vm: {} passed, {} failed, {} skipped",
        checks.len() - failed - skipped,
        failed,
        skipped
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
