// SPDX-License-Identifier: GPL-2.0

//! Runs the fuzz target's decoder and checks (`harness::run_bytes`, the same
//! code as `fuzz/fuzz_targets/ops.rs`) over a fixed set of pseudo-random byte
//! strings, so the fuzz path is exercised by `cargo test` without cargo-fuzz.

#[path = "../harness.rs"]
mod harness;

/// xorshift64*: deterministic inputs, no dependency.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn fixed_random_inputs() {
    for seed in 0..400u64 {
        let len = (seed as usize * 37) % 1200;
        harness::run_bytes(&bytes(seed, len));
    }
}

#[test]
fn degenerate_inputs() {
    harness::run_bytes(&[]);
    harness::run_bytes(&[3]);
    harness::run_bytes(&[0xff; 1000]);
    harness::run_bytes(&[0; 1000]);
    // Allocate pages of every order until OOM, then free everything.
    let mut v = vec![1u8];
    for i in 0..200u8 {
        v.extend_from_slice(&[0, i % 11, 0, 0]);
    }
    harness::run_bytes(&v);
}
