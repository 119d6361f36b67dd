// SPDX-License-Identifier: GPL-2.0

//! The module parameters this run was loaded with, so that the cases that
//! depend on them (the pool's size, the pin caps) hold under `MEMLAB_ARGS`
//! too. The module's parameters are not in sysfs (Rust modules register
//! them with permission 0), so they are read from what the init script
//! passed to insmod, `/etc/memlab/module-args`, over the module's defaults.

/// Where tests/vm/init keeps the insmod parameters of this boot.
const MODULE_ARGS: &str = "/etc/memlab/module-args";

/// The parameters that bound what the suite may allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub pool_mb: u64,
    pub max_pinned_mb: u64,
    pub max_pinned_total_mb: u64,
}

/// The module's defaults (rust_memlab.rs).
pub const DEFAULTS: Params = Params {
    pool_mb: 16,
    max_pinned_mb: 64,
    max_pinned_total_mb: 256,
};

impl Params {
    /// `args` (`pool_mb=64 max_pinned_mb=128 ...`) over the defaults; other
    /// words are left alone (insmod would refuse a bad value first).
    pub fn parse(args: &str) -> Self {
        let mut p = DEFAULTS;
        for (key, value) in args.split_whitespace().filter_map(|w| w.split_once('=')) {
            let Ok(v) = value.parse() else { continue };
            match key {
                "pool_mb" => p.pool_mb = v,
                "max_pinned_mb" => p.max_pinned_mb = v,
                "max_pinned_total_mb" => p.max_pinned_total_mb = v,
                _ => {}
            }
        }
        p
    }

    /// The pool in 4 KiB pages.
    pub fn pool_pages(&self) -> u64 {
        self.pool_mb << 8
    }
}

/// This boot's parameters (the defaults outside the VM).
pub fn params() -> Params {
    Params::parse(&std::fs::read_to_string(MODULE_ARGS).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_args_over_defaults() {
        assert_eq!(Params::parse(""), DEFAULTS);
        assert_eq!(Params::parse("\n"), DEFAULTS);
        let p = Params::parse("pool_mb=64 max_pinned_mb=128 inject_warn=1 max_pinned_total_mb=x\n");
        assert_eq!(
            p,
            Params {
                pool_mb: 64,
                max_pinned_mb: 128,
                max_pinned_total_mb: 256
            }
        );
        assert_eq!(p.pool_pages(), 16384);
    }
}
