// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: random operation sequences (alloc/free, double/foreign/wild
//! frees, shrink) over the buddy, slab caches and kmalloc, checked against
//! the reference model of `tests/host/harness.rs` after every step. The same
//! decoder runs over a fixed corpus in `cargo test` (tests/fuzz_corpus.rs).
//!
//! Run: `cd tests/host/fuzz && cargo fuzz run ops` (nightly, or stable with
//! `RUSTC_BOOTSTRAP=1`).

#![no_main]

#[path = "../../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run_bytes(data);
});
