// SPDX-License-Identifier: GPL-2.0

//! include/uapi/memlab.h must say exactly what src/uapi.rs says: compile a C
//! program against the header and compare every number and struct size.

#[path = "../../../src/uapi.rs"]
#[allow(dead_code)]
mod uapi;

use std::process::Command;

#[test]
fn c_header_matches_rust_abi() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dir = std::env::temp_dir().join(format!("memlab-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include <stddef.h>
#include "uapi/memlab.h"
#define P(x) printf(#x " %llu\n", (unsigned long long)(x))
int main(void) {
    P(MEMLAB_ABI_VERSION); P(MEMLAB_IOC_VERSION); P(MEMLAB_IOC_ALLOC);
    P(MEMLAB_IOC_FREE); P(MEMLAB_IOC_INSPECT); P(MEMLAB_IOC_EXERCISE);
    P(sizeof(struct memlab_version)); P(sizeof(struct memlab_alloc));
    P(sizeof(struct memlab_block_info)); P(sizeof(struct memlab_exercise));
    P(offsetof(struct memlab_alloc, backend)); P(offsetof(struct memlab_block_info, zeroed));
    P(MEMLAB_GFP_ZERO); P(MEMLAB_GFP_DMA32); P(MEMLAB_FAMILY_DMA); P(MEMLAB_EX_GFP);
    P(MEMLAB_BACKEND_MIRROR); P(MEMLAB_ZONE_MIXED);
    P(MEMLAB_IOC_WORKLOAD); P(sizeof(struct memlab_workload));
    P(offsetof(struct memlab_workload, samples_ptr)); P(offsetof(struct memlab_workload, ops));
    P(offsetof(struct memlab_workload, zone_allocs)); P(offsetof(struct memlab_workload, page_meta_bytes));
    P(MEMLAB_PATTERN_RANDOM); P(MEMLAB_WORKLOAD_MAX_K); P(MEMLAB_KCONFIG_O2); P(MEMLAB_KCONFIG_KMEMLEAK);
    P(MEMLAB_WORKLOAD_KEEP); P(MEMLAB_WORKLOAD_FREE_KEPT);
    P(offsetof(struct memlab_alloc, cache_flags)); P(offsetof(struct memlab_alloc, reserved));
    P(MEMLAB_CACHE_DMA); P(MEMLAB_CACHE_HWCACHE_ALIGN); P(MEMLAB_CACHE_FLAGS);
    P(MEMLAB_IOC_REPLAY); P(sizeof(struct memlab_replay)); P(sizeof(struct memlab_replay_step));
    P(sizeof(struct memlab_frag_sample)); P(offsetof(struct memlab_replay, charged));
    P(offsetof(struct memlab_replay, unusable_9)); P(offsetof(struct memlab_replay_step, arg));
    P(offsetof(struct memlab_frag_sample, free_blocks)); P(MEMLAB_REPLAY_FREE);
    P(MEMLAB_REPLAY_MAX_STEPS); P(MEMLAB_REPLAY_MAX_IDS); P(MEMLAB_REPLAY_MAX_CACHES);
    P(MEMLAB_NR_ORDERS); P(MEMLAB_UNUSABLE_SCALE);
    return 0;
}
"#,
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
    let want = [
        ("MEMLAB_ABI_VERSION", uapi::MEMLAB_ABI_VERSION as u64),
        ("MEMLAB_IOC_VERSION", uapi::MEMLAB_IOC_VERSION as u64),
        ("MEMLAB_IOC_ALLOC", uapi::MEMLAB_IOC_ALLOC as u64),
        ("MEMLAB_IOC_FREE", uapi::MEMLAB_IOC_FREE as u64),
        ("MEMLAB_IOC_INSPECT", uapi::MEMLAB_IOC_INSPECT as u64),
        ("MEMLAB_IOC_EXERCISE", uapi::MEMLAB_IOC_EXERCISE as u64),
        (
            "sizeof(struct memlab_version)",
            size_of::<uapi::MemlabVersion>() as u64,
        ),
        (
            "sizeof(struct memlab_alloc)",
            size_of::<uapi::MemlabAlloc>() as u64,
        ),
        (
            "sizeof(struct memlab_block_info)",
            size_of::<uapi::MemlabBlockInfo>() as u64,
        ),
        (
            "sizeof(struct memlab_exercise)",
            size_of::<uapi::MemlabExercise>() as u64,
        ),
        (
            "offsetof(struct memlab_alloc, backend)",
            std::mem::offset_of!(uapi::MemlabAlloc, backend) as u64,
        ),
        (
            "offsetof(struct memlab_block_info, zeroed)",
            std::mem::offset_of!(uapi::MemlabBlockInfo, zeroed) as u64,
        ),
        ("MEMLAB_GFP_ZERO", uapi::MEMLAB_GFP_ZERO as u64),
        ("MEMLAB_GFP_DMA32", uapi::MEMLAB_GFP_DMA32 as u64),
        ("MEMLAB_FAMILY_DMA", uapi::MEMLAB_FAMILY_DMA as u64),
        ("MEMLAB_EX_GFP", uapi::MEMLAB_EX_GFP as u64),
        ("MEMLAB_BACKEND_MIRROR", uapi::MEMLAB_BACKEND_MIRROR as u64),
        ("MEMLAB_ZONE_MIXED", uapi::MEMLAB_ZONE_MIXED as u64),
        ("MEMLAB_IOC_WORKLOAD", uapi::MEMLAB_IOC_WORKLOAD as u64),
        (
            "sizeof(struct memlab_workload)",
            size_of::<uapi::MemlabWorkload>() as u64,
        ),
        (
            "offsetof(struct memlab_workload, samples_ptr)",
            std::mem::offset_of!(uapi::MemlabWorkload, samples_ptr) as u64,
        ),
        (
            "offsetof(struct memlab_workload, ops)",
            std::mem::offset_of!(uapi::MemlabWorkload, ops) as u64,
        ),
        (
            "offsetof(struct memlab_workload, zone_allocs)",
            std::mem::offset_of!(uapi::MemlabWorkload, zone_allocs) as u64,
        ),
        (
            "offsetof(struct memlab_workload, page_meta_bytes)",
            std::mem::offset_of!(uapi::MemlabWorkload, page_meta_bytes) as u64,
        ),
        ("MEMLAB_PATTERN_RANDOM", uapi::MEMLAB_PATTERN_RANDOM as u64),
        ("MEMLAB_WORKLOAD_MAX_K", uapi::MEMLAB_WORKLOAD_MAX_K as u64),
        ("MEMLAB_KCONFIG_O2", uapi::MEMLAB_KCONFIG_O2 as u64),
        (
            "MEMLAB_KCONFIG_KMEMLEAK",
            uapi::MEMLAB_KCONFIG_KMEMLEAK as u64,
        ),
        ("MEMLAB_WORKLOAD_KEEP", uapi::MEMLAB_WORKLOAD_KEEP as u64),
        (
            "MEMLAB_WORKLOAD_FREE_KEPT",
            uapi::MEMLAB_WORKLOAD_FREE_KEPT as u64,
        ),
        (
            "offsetof(struct memlab_alloc, cache_flags)",
            std::mem::offset_of!(uapi::MemlabAlloc, cache_flags) as u64,
        ),
        (
            "offsetof(struct memlab_alloc, reserved)",
            std::mem::offset_of!(uapi::MemlabAlloc, reserved) as u64,
        ),
        ("MEMLAB_CACHE_DMA", uapi::MEMLAB_CACHE_DMA as u64),
        (
            "MEMLAB_CACHE_HWCACHE_ALIGN",
            uapi::MEMLAB_CACHE_HWCACHE_ALIGN as u64,
        ),
        ("MEMLAB_CACHE_FLAGS", uapi::MEMLAB_CACHE_FLAGS as u64),
        ("MEMLAB_IOC_REPLAY", uapi::MEMLAB_IOC_REPLAY as u64),
        (
            "sizeof(struct memlab_replay)",
            size_of::<uapi::MemlabReplay>() as u64,
        ),
        (
            "sizeof(struct memlab_replay_step)",
            size_of::<uapi::MemlabReplayStep>() as u64,
        ),
        (
            "sizeof(struct memlab_frag_sample)",
            size_of::<uapi::MemlabFragSample>() as u64,
        ),
        (
            "offsetof(struct memlab_replay, charged)",
            std::mem::offset_of!(uapi::MemlabReplay, charged) as u64,
        ),
        (
            "offsetof(struct memlab_replay, unusable_9)",
            std::mem::offset_of!(uapi::MemlabReplay, unusable_9) as u64,
        ),
        (
            "offsetof(struct memlab_replay_step, arg)",
            std::mem::offset_of!(uapi::MemlabReplayStep, arg) as u64,
        ),
        (
            "offsetof(struct memlab_frag_sample, free_blocks)",
            std::mem::offset_of!(uapi::MemlabFragSample, free_blocks) as u64,
        ),
        ("MEMLAB_REPLAY_FREE", uapi::MEMLAB_REPLAY_FREE as u64),
        (
            "MEMLAB_REPLAY_MAX_STEPS",
            uapi::MEMLAB_REPLAY_MAX_STEPS as u64,
        ),
        ("MEMLAB_REPLAY_MAX_IDS", uapi::MEMLAB_REPLAY_MAX_IDS as u64),
        (
            "MEMLAB_REPLAY_MAX_CACHES",
            uapi::MEMLAB_REPLAY_MAX_CACHES as u64,
        ),
        ("MEMLAB_NR_ORDERS", uapi::MEMLAB_NR_ORDERS as u64),
        ("MEMLAB_UNUSABLE_SCALE", uapi::MEMLAB_UNUSABLE_SCALE as u64),
    ]
    .iter()
    .map(|(n, v)| format!("{n} {v}\n"))
    .collect::<String>();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}
