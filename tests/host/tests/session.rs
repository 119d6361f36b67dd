// SPDX-License-Identifier: GPL-2.0

//! Replay sessions' validation (src/request/session.rs), on the host: the
//! header of each op with its errno, a chunk checked against the ids live
//! from earlier chunks, the session's byte bound, and the caches a chunk
//! needs, with their names.

use memlab_core::request::replay::{charge_of, MAX_CACHES};
use memlab_core::request::session::{
    plan_chunk, SessionAlloc, SessionCache, SessionCaches, SessionRequest, MAX_SESSION_CACHES,
};
use memlab_core::request::{BackendId, Family, Refusal, RequestError};
use memlab_core::sizeclass::SizeClass;
use memlab_core::uapi::{self, MemlabReplayStep, MemlabSession};

mod steps;

use steps::{alloc, free};

fn open(ids: u32, max_bytes: u64) -> MemlabSession {
    MemlabSession {
        op: uapi::MEMLAB_SESSION_OPEN,
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ids,
        max_bytes,
        ..Default::default()
    }
}

fn errno(q: MemlabSession) -> RequestError {
    SessionRequest::try_from(&q).unwrap_err().error()
}

#[test]
fn headers_decode() {
    assert_eq!(
        SessionRequest::try_from(&open(100, 4096)),
        Ok(SessionRequest::Open {
            backend: BackendId::Mirror,
            ids: 100,
            max_bytes: 4096
        })
    );
    let run = MemlabSession {
        op: uapi::MEMLAB_SESSION_RUN,
        session: 7,
        steps: 0x1000,
        steps_len: 48,
        ..Default::default()
    };
    let req = SessionRequest::try_from(&run).unwrap();
    assert_eq!(
        req,
        SessionRequest::Run {
            session: 7,
            steps_ptr: 0x1000,
            steps: 2
        }
    );
    assert_eq!(req.steps_bytes(), 48);
    let close = MemlabSession {
        op: uapi::MEMLAB_SESSION_CLOSE,
        session: 7,
        ..Default::default()
    };
    assert_eq!(
        SessionRequest::try_from(&close),
        Ok(SessionRequest::Close { session: 7 })
    );
}

#[test]
fn bad_headers_are_refused_with_their_errno() {
    use RequestError::{Invalid, TooBig};
    let run = |steps_len| MemlabSession {
        op: uapi::MEMLAB_SESSION_RUN,
        session: 1,
        steps: 0x1000,
        steps_len,
        ..Default::default()
    };
    let cases = [
        (
            MemlabSession {
                op: 3,
                ..open(1, 1)
            },
            Invalid,
        ),
        (
            MemlabSession {
                backend: 2,
                ..open(1, 1)
            },
            Invalid,
        ),
        (open(0, 1), Invalid),
        (open(uapi::MEMLAB_REPLAY_MAX_IDS + 1, 1), Invalid),
        (open(1, 0), Invalid),
        // A field OPEN does not take, an output set.
        (
            MemlabSession {
                session: 1,
                ..open(1, 1)
            },
            Invalid,
        ),
        (
            MemlabSession {
                steps_len: 24,
                ..open(1, 1)
            },
            Invalid,
        ),
        (
            MemlabSession {
                live: 1,
                ..open(1, 1)
            },
            Invalid,
        ),
        (
            MemlabSession {
                reserved: 1,
                ..open(1, 1)
            },
            Invalid,
        ),
        (run(0), Invalid),
        (run(25), Invalid),
        (MemlabSession { ids: 4, ..run(24) }, Invalid),
        (
            MemlabSession {
                backend: 1,
                ..run(24)
            },
            Invalid,
        ),
        (
            run(24 * (u64::from(uapi::MEMLAB_REPLAY_MAX_STEPS) + 1)),
            TooBig,
        ),
        (
            MemlabSession {
                op: uapi::MEMLAB_SESSION_CLOSE,
                steps: 8,
                ..Default::default()
            },
            Invalid,
        ),
    ];
    for (q, want) in cases {
        assert_eq!(errno(q), want, "{q:?}");
    }
    assert!(open(uapi::MEMLAB_REPLAY_MAX_IDS, u64::MAX)
        .max_bytes
        .eq(&u64::MAX));
    assert!(SessionRequest::try_from(&open(uapi::MEMLAB_REPLAY_MAX_IDS, u64::MAX)).is_ok());
}

#[test]
fn allocations_go_to_the_sessions_own_caches() {
    let kmalloc = |size| SessionAlloc::of(Family::Kmalloc { size });
    let class = |size| SessionCache::Kmalloc(SizeClass::for_size(size).unwrap());
    assert_eq!(kmalloc(100), Some(SessionAlloc::Object(class(128))));
    assert_eq!(kmalloc(8192), Some(SessionAlloc::Object(class(8192))));
    // Above the largest class, kmalloc takes a page block, as kmalloc_large.
    assert_eq!(kmalloc(8193), Some(SessionAlloc::Pages(2)));
    assert_eq!(kmalloc(65536), Some(SessionAlloc::Pages(4)));
    assert_eq!(
        SessionAlloc::of(Family::Pages { order: 9 }),
        Some(SessionAlloc::Pages(9))
    );
    let sized = SessionAlloc::of(Family::KmemCache {
        size: 24,
        align: 0,
        flags: Default::default(),
    });
    assert_eq!(sized, Some(SessionAlloc::Object(SessionCache::Sized(24))));
    assert_eq!(SessionAlloc::of(Family::Vmalloc { size: 1 }), None);
    assert_eq!(class(96).align(), 32);
    assert_eq!(class(1024).align(), 1024);
    assert_eq!(SessionCache::Sized(24).align(), 0);
    assert_eq!(class(1000).object_size(), 1024);
}

#[test]
fn cache_names_are_unique_per_session_and_fit() {
    assert_eq!(
        SessionCache::Kmalloc(SizeClass::for_size(1000).unwrap())
            .name(3)
            .to_string(),
        "memlab_s3_kmalloc-1k"
    );
    assert_eq!(
        SessionCache::Sized(24).name(12).to_string(),
        "memlab_s12_cache-24"
    );
    // The longest name of all fits the mirror's 32-byte names.
    let longest = SessionCache::Sized(uapi::MEMLAB_REPLAY_MAX_IDS as usize * 64)
        .name(u32::MAX)
        .to_string();
    assert!(longest.len() <= 32, "{longest}");
    assert_ne!(
        SessionCache::Sized(24).name(1).to_string(),
        SessionCache::Sized(24).name(11).to_string()
    );
}

#[test]
fn chunks_carry_ids_over_and_respect_the_bound() {
    let page = charge_of(Family::Pages { order: 0 });
    let mut live = vec![0u64; 8];
    let none = SessionCaches::default();
    let first = [
        alloc(uapi::MEMLAB_FAMILY_PAGES, 0, 0),
        alloc(uapi::MEMLAB_FAMILY_KMALLOC, 1, 100),
        alloc(uapi::MEMLAB_FAMILY_KMEM_CACHE, 2, 24),
        alloc(uapi::MEMLAB_FAMILY_KMALLOC, 3, 128),
    ];
    let p = plan_chunk(&first, &mut live, 0, 1 << 20, &none).unwrap();
    let held = page + 128 + 32 + 128;
    assert_eq!(p.replay.peak_bytes, held);
    assert_eq!(live.iter().sum::<u64>(), held);
    let class = SessionCache::Kmalloc(SizeClass::for_size(128).unwrap());
    assert_eq!(
        p.caches.as_slice(),
        [class, SessionCache::Sized(24)],
        "one cache per kmalloc class and per kmem_cache size, in order of first use"
    );
    // The second chunk frees what the first left live, and reuses an id.
    let second = [
        free(0),
        free(1),
        alloc(uapi::MEMLAB_FAMILY_PAGES, 1, 1),
        free(3),
    ];
    let q = plan_chunk(&second, &mut live, held, 1 << 20, &p.caches).unwrap();
    // The peak: ids 2 and 3 from before, with the new order-1 block.
    assert_eq!(q.replay.peak_bytes, 32 + 128 + 2 * page);
    assert_eq!(q.caches, p.caches, "no new cache");
    assert_eq!(live.iter().sum::<u64>(), 2 * page + 32);
    // Pairing across chunks: id 0 is free now, id 2 is live.
    let mut copy = live.clone();
    assert_eq!(
        plan_chunk(&[free(0)], &mut copy, 0, 1 << 20, &q.caches),
        Err(Refusal::IdNotLive(0))
    );
    let mut copy = live.clone();
    assert_eq!(
        plan_chunk(
            &[alloc(uapi::MEMLAB_FAMILY_PAGES, 2, 0)],
            &mut copy,
            0,
            1 << 20,
            &q.caches
        ),
        Err(Refusal::IdLive(2))
    );
    // An id past the session's table, and one past the ABI's.
    let mut copy = live.clone();
    let r = plan_chunk(
        &[alloc(uapi::MEMLAB_FAMILY_PAGES, 8, 0)],
        &mut copy,
        0,
        1 << 20,
        &q.caches,
    );
    assert_eq!(r, Err(Refusal::SessionId { id: 8, ids: 8 }));
    assert_eq!(r.unwrap_err().error(), RequestError::Invalid);
    let mut copy = live.clone();
    let far = alloc(uapi::MEMLAB_FAMILY_PAGES, uapi::MEMLAB_REPLAY_MAX_IDS, 0);
    assert_eq!(
        plan_chunk(&[far], &mut copy, 0, 1 << 20, &q.caches),
        Err(Refusal::StepId(uapi::MEMLAB_REPLAY_MAX_IDS))
    );
    // The bound counts what is live from before.
    let start = 2 * page + 32;
    let mut copy = live.clone();
    let big = [alloc(uapi::MEMLAB_FAMILY_PAGES, 4, 2)];
    let r = plan_chunk(&big, &mut copy, start, start + 4 * page - 1, &q.caches);
    assert_eq!(
        r,
        Err(Refusal::SessionPeak {
            peak: start + 4 * page,
            max: start + 4 * page - 1
        })
    );
    assert_eq!(r.unwrap_err().error(), RequestError::TooBig);
    let mut copy = live.clone();
    assert!(plan_chunk(&big, &mut copy, start, start + 4 * page, &q.caches).is_ok());
}

#[test]
fn a_session_makes_at_most_its_caches() {
    assert_eq!(
        MAX_SESSION_CACHES,
        memlab_core::sizeclass::NR_KMALLOC_CLASSES + MAX_CACHES
    );
    let n = MAX_SESSION_CACHES + 1;
    let mut steps: Vec<MemlabReplayStep> = (0..n as u32)
        .map(|i| alloc(uapi::MEMLAB_FAMILY_KMEM_CACHE, i, 8 + u64::from(i)))
        .collect();
    let mut live = vec![0u64; n];
    let r = plan_chunk(&steps, &mut live, 0, u64::MAX, &SessionCaches::default());
    assert_eq!(r, Err(Refusal::Caches));
    // Within the bound, spread over two chunks.
    steps.pop();
    let (a, b) = steps.split_at(30);
    let mut live = vec![0u64; n];
    let p = plan_chunk(a, &mut live, 0, u64::MAX, &SessionCaches::default()).unwrap();
    let start = live.iter().sum();
    let q = plan_chunk(b, &mut live, start, u64::MAX, &p.caches).unwrap();
    assert_eq!(q.caches.as_slice().len(), MAX_SESSION_CACHES);
    assert_eq!(q.caches.index_of(SessionCache::Sized(8)), Some(0));
}

#[test]
fn refusals_say_what_to_change() {
    let text = |r: Refusal| r.to_string();
    assert_eq!(
        text(Refusal::SessionId { id: 9, ids: 8 }),
        "id 9 is not below the session's 8 ids"
    );
    assert_eq!(
        text(Refusal::SessionPeak {
            peak: 3 << 20,
            max: 2 << 20
        }),
        "the steps would hold 3 MiB live, past the session's max_bytes 2 MiB"
    );
    assert_eq!(text(Refusal::NoSession(4)), "this file has no session 4");
    assert!(text(Refusal::SessionOp(9)).contains("OPEN (0), RUN (1) or CLOSE (2)"));
    assert_eq!(Refusal::Sessions.error(), RequestError::TooBig);
    assert_eq!(Refusal::NoSession(1).error(), RequestError::Invalid);
}
