// SPDX-License-Identifier: GPL-2.0

//! include/uapi/memlab.h must say exactly what src/uapi.rs says: compile a C
//! program against the header and compare every number and struct size.
//! One table names each item once: the C probe and the Rust value come
//! from the same row.

#[path = "../../../src/uapi.rs"]
#[allow(dead_code)]
mod uapi;

use std::process::Command;

/// A constant: its C name and the Rust value.
macro_rules! c {
    ($name:ident) => {
        (stringify!($name).to_string(), uapi::$name as u64)
    };
}

/// A field's offset: `offsetof(struct NAME, FIELD)` and Rust's.
macro_rules! off {
    ($c:literal, $t:ident, $f:ident) => {
        (
            format!("offsetof(struct {}, {})", $c, stringify!($f)),
            std::mem::offset_of!(uapi::$t, $f) as u64,
        )
    };
}

/// A struct's size: `sizeof(struct NAME)` and Rust's.
fn size<T>(c: &str) -> (String, u64) {
    (format!("sizeof(struct {c})"), size_of::<T>() as u64)
}

/// Every item the header must agree on, C expression and Rust value.
fn table() -> Vec<(String, u64)> {
    vec![
        c!(MEMLAB_ABI_VERSION),
        c!(MEMLAB_IOC_VERSION),
        c!(MEMLAB_IOC_ALLOC),
        c!(MEMLAB_IOC_FREE),
        c!(MEMLAB_IOC_INSPECT),
        c!(MEMLAB_IOC_EXERCISE),
        size::<uapi::MemlabVersion>("memlab_version"),
        size::<uapi::MemlabAlloc>("memlab_alloc"),
        size::<uapi::MemlabBlockInfo>("memlab_block_info"),
        size::<uapi::MemlabExercise>("memlab_exercise"),
        off!("memlab_alloc", MemlabAlloc, backend),
        off!("memlab_block_info", MemlabBlockInfo, zeroed),
        c!(MEMLAB_GFP_ZERO),
        c!(MEMLAB_GFP_DMA32),
        c!(MEMLAB_FAMILY_DMA),
        c!(MEMLAB_EX_GFP),
        c!(MEMLAB_BACKEND_MIRROR),
        c!(MEMLAB_ZONE_MIXED),
        c!(MEMLAB_IOC_WORKLOAD),
        size::<uapi::MemlabWorkload>("memlab_workload"),
        off!("memlab_workload", MemlabWorkload, samples_ptr),
        off!("memlab_workload", MemlabWorkload, ops),
        off!("memlab_workload", MemlabWorkload, zone_allocs),
        off!("memlab_workload", MemlabWorkload, page_meta_bytes),
        c!(MEMLAB_PATTERN_RANDOM),
        c!(MEMLAB_WORKLOAD_MAX_K),
        c!(MEMLAB_KCONFIG_O2),
        c!(MEMLAB_KCONFIG_KMEMLEAK),
        c!(MEMLAB_WORKLOAD_KEEP),
        c!(MEMLAB_WORKLOAD_FREE_KEPT),
        off!("memlab_alloc", MemlabAlloc, cache_flags),
        off!("memlab_alloc", MemlabAlloc, reserved),
        c!(MEMLAB_CACHE_DMA),
        c!(MEMLAB_CACHE_HWCACHE_ALIGN),
        c!(MEMLAB_CACHE_FLAGS),
        c!(MEMLAB_IOC_REPLAY),
        size::<uapi::MemlabReplay>("memlab_replay"),
        size::<uapi::MemlabReplayStep>("memlab_replay_step"),
        size::<uapi::MemlabFragSample>("memlab_frag_sample"),
        off!("memlab_replay", MemlabReplay, charged),
        off!("memlab_replay", MemlabReplay, unusable_9),
        off!("memlab_replay_step", MemlabReplayStep, arg),
        c!(MEMLAB_IOC_SESSION),
        c!(MEMLAB_SESSION_OPEN),
        c!(MEMLAB_SESSION_RUN),
        c!(MEMLAB_SESSION_CLOSE),
        c!(MEMLAB_SESSION_MAX),
        size::<uapi::MemlabSession>("memlab_session"),
        off!("memlab_session", MemlabSession, max_bytes),
        off!("memlab_session", MemlabSession, charged),
        off!("memlab_session", MemlabSession, nr_caches),
        off!("memlab_frag_sample", MemlabFragSample, free_blocks),
        c!(MEMLAB_REPLAY_FREE),
        c!(MEMLAB_REPLAY_MAX_STEPS),
        c!(MEMLAB_REPLAY_MAX_IDS),
        c!(MEMLAB_REPLAY_MAX_CACHES),
        c!(MEMLAB_NR_ORDERS),
        c!(MEMLAB_UNUSABLE_SCALE),
    ]
}

#[test]
fn c_header_matches_rust_abi() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dir = std::env::temp_dir().join(format!("memlab-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    let table = table();
    let probes: String = table
        .iter()
        .map(|(c, _)| format!("    P({c});\n"))
        .collect();
    std::fs::write(
        &src,
        format!(
            r#"
#include <stdio.h>
#include <stddef.h>
#include "uapi/memlab.h"
#define P(x) printf(#x " %llu\n", (unsigned long long)(x))
int main(void) {{
{probes}    return 0;
}}
"#
        ),
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-Wall", "-Werror", "-I", &format!("{root}/include"), "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("a C compiler (cc)");
    assert!(st.success(), "{cc} failed on include/uapi/memlab.h");
    let out = Command::new(&exe).output().unwrap();
    let got = String::from_utf8(out.stdout).unwrap();
    let want: String = table.iter().map(|(n, v)| format!("{n} {v}\n")).collect();
    assert_eq!(got, want);
    assert_eq!(table.len(), 58, "every item the probe checked before");
    let _ = std::fs::remove_dir_all(&dir);
}
