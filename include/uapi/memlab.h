/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The /dev/memlab ioctl ABI for C programs. The Rust definitions in
 * src/uapi.rs are the source of truth; this header mirrors them.
 */
#ifndef _UAPI_MEMLAB_H
#define _UAPI_MEMLAB_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MEMLAB_ABI_VERSION 4
#define MEMLAB_IOC_MAGIC 0xB7

struct memlab_version {
	__u32 abi_version;	/* MEMLAB_ABI_VERSION of the running module */
	__u32 struct_size;	/* sizeof(struct memlab_version) in the module */
	__u32 max_page_order;	/* the kernel's MAX_PAGE_ORDER */
	__u32 page_size;	/* PAGE_SIZE in bytes */
};

#define MEMLAB_IOC_VERSION _IOR(MEMLAB_IOC_MAGIC, 0x00, struct memlab_version)

/* Allocator families (struct memlab_alloc.family). */
#define MEMLAB_FAMILY_KMALLOC		0	/* size bytes */
#define MEMLAB_FAMILY_VMALLOC		1	/* size bytes */
#define MEMLAB_FAMILY_PAGES		2	/* 1 << order pages */
#define MEMLAB_FAMILY_KMEM_CACHE	3	/* one object of size bytes, align */
#define MEMLAB_FAMILY_DMA		4	/* dma_alloc_coherent, size bytes */

/* GFP selectors (low byte of gfp), plus the __GFP_ZERO modifier bit. */
#define MEMLAB_GFP_KERNEL	0
#define MEMLAB_GFP_ATOMIC	1
#define MEMLAB_GFP_NOWAIT	2
#define MEMLAB_GFP_NOIO		3
#define MEMLAB_GFP_NOFS		4
#define MEMLAB_GFP_USER		5
#define MEMLAB_GFP_HIGHUSER	6
#define MEMLAB_GFP_DMA		7
#define MEMLAB_GFP_DMA32	8
#define MEMLAB_GFP_ZERO		(1 << 8)

/* Backends (struct memlab_alloc.backend). */
#define MEMLAB_BACKEND_REAL	0	/* the kernel's allocators */
#define MEMLAB_BACKEND_MIRROR	1	/* memlab's own, on its pool */

/*
 * kmem_cache creation flags (struct memlab_alloc.cache_flags). As in SLUB,
 * a cache's objects take their zone from the cache (SLAB_CACHE_DMA), never
 * from the gfp of one allocation.
 */
#define MEMLAB_CACHE_DMA		(1 << 0)	/* SLAB_CACHE_DMA */
#define MEMLAB_CACHE_HWCACHE_ALIGN	(1 << 1)	/* SLAB_HWCACHE_ALIGN */
#define MEMLAB_CACHE_FLAGS	(MEMLAB_CACHE_DMA | MEMLAB_CACHE_HWCACHE_ALIGN)

/* Zones (struct memlab_block_info.zone). */
#define MEMLAB_ZONE_DMA		0
#define MEMLAB_ZONE_DMA32	1
#define MEMLAB_ZONE_NORMAL	2
#define MEMLAB_ZONE_MOVABLE	3
#define MEMLAB_ZONE_MIXED	0xfe

struct memlab_alloc {
	__u32 family;	/* in: MEMLAB_FAMILY_* */
	__u32 gfp;	/* in: MEMLAB_GFP_* [| MEMLAB_GFP_ZERO] */
	__u64 size;	/* in: bytes (all but pages) */
	__u32 order;	/* in: page order (pages only) */
	__u32 align;	/* in: power of two or 0 (kmem_cache only) */
	__u32 handle;	/* out: handle on this open file, >= 1 */
	__u32 backend;	/* in: MEMLAB_BACKEND_* */
	__u32 cache_flags;	/* in: MEMLAB_CACHE_* (kmem_cache only, else 0) */
	__u32 reserved;	/* in: 0 */
};

struct memlab_block_info {
	__u32 handle;	/* in: the handle */
	__u32 family;
	__u32 gfp;
	__u32 zone;	/* MEMLAB_ZONE_* */
	__u64 size;	/* bytes requested */
	__u64 usable;	/* ksize, or whole pages */
	__u64 first_pfn;
	__u64 nr_pages;
	__u64 phys_runs;	/* physically contiguous runs (1 = contiguous) */
	__u64 dma_addr;	/* bus address (DMA), else 0 */
	__u64 alloc_ns;	/* latency of the allocation call */
	__u32 align_log2;	/* of the physical address */
	__u32 zeroed;	/* 1 if checked zero (MEMLAB_GFP_ZERO) */
};

/* Exercises (struct memlab_exercise.id). */
#define MEMLAB_EX_KMALLOC	0
#define MEMLAB_EX_VMALLOC	1
#define MEMLAB_EX_PAGES		2
#define MEMLAB_EX_KMEM_CACHE	3
#define MEMLAB_EX_DMA		4
#define MEMLAB_EX_GFP		5

struct memlab_exercise {
	__u32 id;	/* in: MEMLAB_EX_* */
	__u32 reps;	/* in: repetitions per case, 0 = default, <= 1000 */
	__u32 cases;	/* out */
	__u32 passed;	/* out: cases that behaved as expected */
	__u64 median_ns;	/* out */
	__u64 p99_ns;	/* out */
};

/* Workload patterns (struct memlab_workload.pattern). */
#define MEMLAB_PATTERN_PAIRS	0	/* alloc then free, count times */
#define MEMLAB_PATTERN_BATCH	1	/* count allocs, then count frees */
#define MEMLAB_PATTERN_RANDOM	2	/* seeded mix over count/2 live objects */
#define MEMLAB_WORKLOAD_MAX_COUNT 100000
#define MEMLAB_WORKLOAD_MAX_K	256

/* struct memlab_workload.flags: cross-CPU free in two calls; throughput. */
#define MEMLAB_WORKLOAD_KEEP		(1 << 0)	/* BATCH allocs, kept */
#define MEMLAB_WORKLOAD_FREE_KEPT	(1 << 1)	/* free them, timed */
#define MEMLAB_WORKLOAD_THROUGHPUT	(1 << 2)	/* one window, no samples */

/* struct memlab_workload.kconfig: what the running kernel was built with. */
#define MEMLAB_KCONFIG_MEMCG		(1 << 0)
#define MEMLAB_KCONFIG_KFENCE		(1 << 1)
#define MEMLAB_KCONFIG_INIT_ON_ALLOC	(1 << 2)
#define MEMLAB_KCONFIG_INIT_ON_FREE	(1 << 3)
#define MEMLAB_KCONFIG_FREELIST_HARDENED (1 << 4)
#define MEMLAB_KCONFIG_FREELIST_RANDOM	(1 << 5)
#define MEMLAB_KCONFIG_JUMP_LABEL	(1 << 6)
#define MEMLAB_KCONFIG_O2		(1 << 7)
#define MEMLAB_KCONFIG_KASAN		(1 << 8)
#define MEMLAB_KCONFIG_LOCKDEP		(1 << 9)
#define MEMLAB_KCONFIG_SLUB_DEBUG_ON	(1 << 10)
#define MEMLAB_KCONFIG_RANDOM_KMALLOC	(1 << 11)
#define MEMLAB_KCONFIG_PREEMPT		(1 << 12)
#define MEMLAB_KCONFIG_KMEMLEAK		(1 << 13)

/*
 * Each operation is timed alone (lfence; rdtsc around the call); a sample
 * sums ops_per_sample windows of one kind. Raw samples (ticks, floor not
 * subtracted): alloc samples, then free samples, at samples_ptr.
 */
struct memlab_workload {
	__u32 backend;	/* in: MEMLAB_BACKEND_* */
	__u32 family;	/* in: KMALLOC, PAGES, KMEM_CACHE or VMALLOC */
	__u32 pattern;	/* in: MEMLAB_PATTERN_* */
	__u32 count;	/* in: steps, 1..MEMLAB_WORKLOAD_MAX_COUNT */
	__u64 size;	/* in: object size (max for RANDOM kmalloc) */
	__u32 order;	/* in: page order (max for RANDOM), pages only */
	__u32 seed;	/* in: RANDOM's seed */
	__u32 ops_per_sample;	/* in: K, 1..MEMLAB_WORKLOAD_MAX_K */
	__u32 warmup;	/* in: untimed steps first, 0..count */
	__u64 samples_ptr;	/* in: __u64[samples_cap] or 0 */
	__u32 samples_cap;	/* in: 0, or >= 2 * ceil(count / K) */
	__u32 flags;	/* in: 0 or MEMLAB_WORKLOAD_KEEP / _FREE_KEPT / _THROUGHPUT */
	__u64 ops;	/* out: operations timed */
	__u64 failed;	/* out: allocations that failed */
	__u32 alloc_samples;	/* out */
	__u32 free_samples;	/* out */
	__u64 clock_khz;	/* out: ticks per millisecond */
	__u64 floor_ticks;	/* out: median empty sample */
	__u64 elapsed_ticks;	/* out: the timed pass, first to last read */
	__u64 alloc_median_ps;	/* out: per operation, floor subtracted */
	__u64 alloc_p99_ps;	/* out */
	__u64 free_median_ps;	/* out */
	__u64 free_p99_ps;	/* out */
	__u32 zone_allocs[4];	/* out: DMA, DMA32, Normal, other */
	__u32 peak_live;	/* out: most objects live at once */
	__u32 cpu;	/* out: the CPU it ran on */
	__u32 kconfig;	/* out: MEMLAB_KCONFIG_* */
	__u32 page_meta_bytes;	/* out: page metadata per page */
};

/*
 * In-kernel replay (MEMLAB_IOC_REPLAY): a user array of steps, validated
 * whole before anything is allocated, replayed on one backend with only
 * the allocator calls timed; everything it allocated is freed on return.
 */
#define MEMLAB_REPLAY_ALLOC	0
#define MEMLAB_REPLAY_FREE	1
#define MEMLAB_REPLAY_MAX_STEPS	(1 << 20)	/* E2BIG above */
#define MEMLAB_REPLAY_MAX_IDS	(1 << 16)	/* ids 0..MAX_IDS-1 */
#define MEMLAB_REPLAY_MAX_CACHES 64	/* distinct kmem_cache sizes */
#define MEMLAB_NR_ORDERS	11
#define MEMLAB_UNUSABLE_SCALE	1000000	/* unusable index: parts per million */

struct memlab_replay_step {
	__u32 op;	/* MEMLAB_REPLAY_ALLOC or _FREE */
	__u32 family;	/* alloc: KMALLOC, PAGES or KMEM_CACHE; free: 0 */
	__u32 gfp;	/* alloc: MEMLAB_GFP_* selector; free: 0 */
	__u32 id;	/* 0..MEMLAB_REPLAY_MAX_IDS-1 */
	__u64 arg;	/* alloc: bytes, or the order (pages); free: 0 */
};

struct memlab_frag_sample {
	__u64 step;		/* steps done when taken */
	__u32 unusable_3;	/* unusable index, order 3, ppm */
	__u32 unusable_9;	/* unusable index, order 9, ppm */
	__u64 free_blocks[MEMLAB_NR_ORDERS];	/* the zone's buddyinfo line */
	__u32 probe_failed;	/* MEMLAB_PROBE_*: probes that failed */
	__u32 reserved;		/* 0 */
};

/* struct memlab_frag_sample.probe_failed: one GFP_NOWAIT block of the
 * order from the sampled zone, freed at once, could not be had. */
#define MEMLAB_PROBE_ORDER3	(1 << 0)
#define MEMLAB_PROBE_ORDER9	(1 << 1)

struct memlab_replay {
	__u64 steps;		/* in: user address of the steps */
	__u64 steps_len;	/* in: bytes, a non-zero multiple of the step */
	__u64 samples;		/* in: user address of the samples, or 0 */
	__u64 samples_len;	/* in: bytes, room for steps/sample_every + 1 */
	__u32 backend;		/* in: MEMLAB_BACKEND_* */
	__u32 sample_every;	/* in: steps between samples, 0 = none */
	__u32 zone;		/* in: MEMLAB_ZONE_* described */
	__u32 nr_samples;	/* out */
	__u64 steps_done;	/* out */
	__u64 allocs;		/* out: allocations that succeeded */
	__u64 frees;		/* out */
	__u64 failed;		/* out: allocations that failed */
	__u64 alloc_median_ns;	/* out */
	__u64 alloc_p99_ns;	/* out */
	__u64 free_median_ns;	/* out */
	__u64 free_p99_ns;	/* out */
	__u32 unusable_3;	/* out: after the last step, ppm */
	__u32 unusable_9;	/* out: after the last step, ppm */
	__u64 live_bytes;	/* out: requested bytes of live slab objects */
	__u64 ksize_waste;	/* out: sum of ksize - requested over them */
	__u64 slab_bytes;	/* out: mirror only, bytes in its slabs */
	__u64 charged;		/* out: bytes charged to the pin caps */
};

#define MEMLAB_IOC_ALLOC _IOWR(MEMLAB_IOC_MAGIC, 0x01, struct memlab_alloc)
#define MEMLAB_IOC_FREE _IOW(MEMLAB_IOC_MAGIC, 0x02, __u32)
#define MEMLAB_IOC_INSPECT _IOWR(MEMLAB_IOC_MAGIC, 0x03, struct memlab_block_info)
#define MEMLAB_IOC_EXERCISE _IOWR(MEMLAB_IOC_MAGIC, 0x04, struct memlab_exercise)
#define MEMLAB_IOC_WORKLOAD _IOWR(MEMLAB_IOC_MAGIC, 0x05, struct memlab_workload)
#define MEMLAB_IOC_REPLAY _IOWR(MEMLAB_IOC_MAGIC, 0x06, struct memlab_replay)

/*
 * A replay session (ABI 4): a replay kept open across ioctls, its objects
 * live between chunks, so that user space can read the allocators' own
 * counters between them. Steps are struct memlab_replay_step with REPLAY's
 * rules; ids carry over from chunk to chunk. Slab objects go to caches of
 * the session's own, memlab_s<session>_kmalloc-<class> and
 * memlab_s<session>_cache-<size>, on both backends. Nothing is timed.
 */
#define MEMLAB_SESSION_OPEN	0	/* in: backend, ids, max_bytes */
#define MEMLAB_SESSION_RUN	1	/* in: session, steps, steps_len */
#define MEMLAB_SESSION_CLOSE	2	/* in: session */
#define MEMLAB_SESSION_MAX	4	/* sessions per open file */

struct memlab_session {
	__u32 op;		/* in: MEMLAB_SESSION_* */
	__u32 backend;		/* in (OPEN): MEMLAB_BACKEND_* */
	__u32 session;		/* out (OPEN), in (RUN, CLOSE) */
	__u32 ids;		/* in (OPEN): id table slots, 1..MAX_IDS */
	__u64 max_bytes;	/* in (OPEN): most bytes live at once */
	__u64 steps;		/* in (RUN): user address of the steps */
	__u64 steps_len;	/* in (RUN): bytes, a non-zero multiple of 24 */
	__u64 steps_done;	/* out: steps run so far */
	__u64 allocs;		/* out: allocations that succeeded so far */
	__u64 frees;		/* out */
	__u64 failed;		/* out: allocations that failed so far */
	__u64 live;		/* out: objects live now */
	__u64 live_bytes;	/* out: bytes live now (max_bytes' measure) */
	__u64 charged;		/* out: bytes charged to the pin caps now */
	__u32 nr_caches;	/* out: caches made */
	__u32 reserved;		/* 0 */
};

#define MEMLAB_IOC_SESSION _IOWR(MEMLAB_IOC_MAGIC, 0x07, struct memlab_session)

#endif /* _UAPI_MEMLAB_H */
