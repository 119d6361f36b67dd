// SPDX-License-Identifier: GPL-2.0

//! What the running kernel offers where kernels differ, read once before
//! the storm, so that a correct refusal is not counted as unexpected while
//! a wrong answer still is: the zones each backend has. A REPLAY samples
//! one zone, and the module refuses a zone its backend lacks with EINVAL:
//! the real side has the zones `/proc/buddyinfo` lists (populated ones; on
//! User-Mode Linux only Normal), the mirror those its pool has pages in
//! (`mirror/buddyinfo`).

use crate::uapi::{MEMLAB_BACKEND_MIRROR, MEMLAB_BACKEND_REAL, MEMLAB_ZONE_NORMAL};

/// Zone names by `MEMLAB_ZONE_*` (DMA, DMA32, Normal).
const ZONES: [&str; 3] = ["DMA", "DMA32", "Normal"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// `zones[backend][zone]`: whether that backend has that zone.
    zones: [[bool; ZONES.len()]; 2],
}

impl Kernel {
    /// Reads the zones of both backends; memlab must be loaded.
    pub fn read(debugfs: &str) -> Result<Kernel, String> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
        let real = zones_in(&read("/proc/buddyinfo")?);
        let mirror = zones_in(&read(&format!("{debugfs}/mirror/buddyinfo"))?);
        let mut zones = [[false; ZONES.len()]; 2];
        zones[MEMLAB_BACKEND_REAL as usize] = real;
        zones[MEMLAB_BACKEND_MIRROR as usize] = mirror;
        if !real[MEMLAB_ZONE_NORMAL as usize] {
            return Err("/proc/buddyinfo lists no zone Normal".into());
        }
        Ok(Kernel { zones })
    }

    /// Whether `backend` has zone `zone` (`MEMLAB_ZONE_*`); false for any
    /// other number.
    pub fn has_zone(&self, backend: u32, zone: u32) -> bool {
        self.zones
            .get(backend as usize)
            .and_then(|z| z.get(zone as usize))
            .copied()
            .unwrap_or(false)
    }

    /// The zones of `backend`, named, for the log.
    pub fn zone_names(&self, backend: u32) -> Vec<&'static str> {
        ZONES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.has_zone(backend, *i as u32))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// The zones a buddyinfo text (`Node 0, zone   Normal  3 1 ...`) lists.
fn zones_in(buddyinfo: &str) -> [bool; ZONES.len()] {
    let mut out = [false; ZONES.len()];
    for line in buddyinfo.lines() {
        if let Some(name) = line.split_whitespace().nth(3) {
            if let Some(i) = ZONES.iter().position(|z| *z == name) {
                out[i] = true;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::{MEMLAB_ZONE_DMA, MEMLAB_ZONE_DMA32, MEMLAB_ZONE_MOVABLE};

    #[test]
    fn zones_are_the_lines_of_buddyinfo() {
        let x86 = "Node 0, zone      DMA      1      1 \n\
                   Node 0, zone    DMA32      0      2 \n\
                   Node 0, zone   Normal      4      0 \n";
        assert_eq!(zones_in(x86), [true, true, true]);
        let uml = "Node 0, zone   Normal    120     33      9 \n";
        assert_eq!(zones_in(uml), [false, false, true]);
        assert_eq!(zones_in(""), [false, false, false]);
    }

    #[test]
    fn a_backend_has_only_its_zones() {
        let k = Kernel {
            zones: [[false, false, true], [true, false, true]],
        };
        assert!(k.has_zone(MEMLAB_BACKEND_REAL, MEMLAB_ZONE_NORMAL));
        assert!(!k.has_zone(MEMLAB_BACKEND_REAL, MEMLAB_ZONE_DMA));
        assert!(k.has_zone(MEMLAB_BACKEND_MIRROR, MEMLAB_ZONE_DMA));
        assert!(!k.has_zone(MEMLAB_BACKEND_MIRROR, MEMLAB_ZONE_DMA32));
        assert!(!k.has_zone(MEMLAB_BACKEND_MIRROR, MEMLAB_ZONE_MOVABLE));
        assert!(!k.has_zone(2, MEMLAB_ZONE_NORMAL));
        assert_eq!(k.zone_names(MEMLAB_BACKEND_MIRROR), ["DMA", "Normal"]);
    }
}
