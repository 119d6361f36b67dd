// SPDX-License-Identifier: GPL-2.0

//! What both backends stand on: the physical facts of memory ([`phys`]:
//! PFNs, zones, alignment, the page allocator's free lists), the latency
//! clock ([`clock`]), CPU-local slots ([`percpu`]), memlab's DMA devices
//! and the one streaming-mapping type ([`dma`]), `vm_map_ram` ([`vmap`]),
//! and the misc device and debugfs files with the module as owner
//! ([`miscdev`], [`debugfs`]), which the in-tree abstractions lack. What
//! differs by architecture (x86-64, UML) is in [`arch`] alone, what differs
//! by kernel release (7.2, 7.3) in [`compat`] alone. Nothing here
//! allocates on a user's behalf; the dependency graph runs one way, from
//! chardev, debugfs and workload through `real` and `mirror` to here.

pub(crate) mod arch;
pub(crate) mod clock;
pub(crate) mod compat;
pub(crate) mod debugfs;
pub(crate) mod dma;
pub(crate) mod miscdev;
pub(crate) mod pages;
pub(crate) mod percpu;
pub(crate) mod phys;
pub(crate) mod sort;
pub(crate) mod vmap;
