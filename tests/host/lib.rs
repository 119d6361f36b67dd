// SPDX-License-Identifier: GPL-2.0

//! Host build of memlab's core allocators.
//!
//! The modules below are the very files the kernel module compiles
//! (`src/core/` at the top of the repository), declared at the crate root
//! under the same names so that `crate::buddy::...` paths resolve in both
//! crates. The lints mirror the kernel's rustc flags so that the host build
//! catches what would warn in the module.

#![cfg_attr(not(test), no_std)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn, non_ascii_idents)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment,
    clippy::unnecessary_safety_doc,
    clippy::missing_safety_doc,
    clippy::ptr_as_ptr,
    clippy::ptr_cast_constness,
    clippy::as_ptr_cast_mut,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ref_as_ptr,
    clippy::borrow_as_ptr,
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::dbg_macro,
    clippy::ignored_unit_patterns,
    clippy::mut_mut,
    clippy::needless_bitwise_bool,
    rustdoc::missing_crate_level_docs,
    rustdoc::unescaped_backticks
)]

#[path = "../../src/core/buddy/mod.rs"]
pub mod buddy;
#[path = "../../src/core/pcp.rs"]
pub mod pcp;
#[path = "../../src/core/render.rs"]
pub mod render;
#[path = "../../src/request/mod.rs"]
pub mod request;
#[path = "../../src/core/sizeclass.rs"]
pub mod sizeclass;
#[path = "../../src/core/slab/mod.rs"]
pub mod slab;
#[path = "../../src/core/stats.rs"]
pub mod stats;
#[path = "../../src/uapi.rs"]
pub mod uapi;
