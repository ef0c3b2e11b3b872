//! A limit on how many requests are profiled: concurrency and rate, in all
//! and for each request and each key.
//!
//! This module owns the abuse protection osprofiler lacks: anyone holding a
//! valid signed token (and a token can be replayed forever) could otherwise
//! make every request profiled and fill the disk. A request whose token
//! verifies is profiled only if it gets a [`ProfilePermit`] from the
//! [`ProfileLimiter`]; otherwise it is served unprofiled and counted. It knows
//! nothing of HTTP, so a queue consumer can use it too.
//!
//! # Defaults
//!
//! | setting | default | setter |
//! |---|---|---|
//! | profiled requests in flight at once | 64 | [`ProfileLimit::with_max_concurrent`] |
//! | sustained rate of new profiled requests | 100 per second | [`ProfileLimit::with_rate`] |
//! | burst above the rate | 100 | [`ProfileLimit::with_rate`] |
//! | one request's share of each (one `base_id`) | a quarter: 16 in flight, 25 per second, burst 25 | [`ProfileLimit::with_request_share`] |
//! | one key's share of each | all of it (off) | [`ProfileLimit::with_key_share`] |
//! | requests and keys remembered for their shares | 1024 each, least recently used forgotten first | [`ProfileLimit::with_max_tracked`] |
//!
//! A profiled request writes two lines per span, so 100 profiled requests a
//! second with 20 spans each is 4000 lines a second: far more than a human
//! investigation needs and well within what the writer handles.
//!
//! # Fairness
//!
//! The global limits alone let one token take everything: a leaked or
//! replayed token is one `base_id` sent again and again, and it would hold
//! every slot and drain the bucket, so that operators could not profile
//! anything while it is replayed. So every `base_id` also has its own share
//! ([`ProfileLimiter::try_acquire_for`]): with the defaults, a replayed
//! token gets at most 16 requests in flight and 25 a second, and the other
//! three quarters stay for other requests. A request refused by its share
//! spends nothing of the global limits.
//!
//! A legitimate request can call one service many times with the same
//! `base_id` (a loop, a fan-out); the share is sized for that: a burst of 25
//! calls, at most 16 of them in flight, then 25 a second. Calls beyond it are served
//! unprofiled and counted like any over-limit request; the caller still has
//! its client point for each. A fleet whose requests call one service more
//! raises the share ([`ProfileLimit::with_request_share`]).
//!
//! Shares are fractions of the global limits, so lowering the global limits
//! lowers them too. A replayer holding several tokens gets a share for each:
//! four tokens replayed at once can take all the default capacity. Against
//! that, rotate the key; a share per key ([`ProfileLimit::with_key_share`])
//! keeps tokens signed with an old, leaked key from starving those signed
//! with the new one while both are accepted.
//!
//! Memory stays bounded: at most [`ProfileLimit::max_tracked`] request ids
//! and as many keys are remembered. A request id that is as good as new
//! (nothing in flight, its bucket full again) is forgotten first, then the
//! least recently used one with nothing in flight; a request id holding a
//! permit is never forgotten. The global counts alone serve
//! [`ProfileLimiter::try_acquire`], and a request without a token never gets
//! here.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::token::{HmacKey, Profile};
use crate::Id;

/// How many requests may be profiled: the configuration of a
/// [`ProfileLimiter`]. See the [module docs](self) for the defaults.
///
/// ```
/// use tracing_osprofiler::limit::ProfileLimit;
///
/// let limiter = ProfileLimit::default()
///     .with_max_concurrent(Some(2))
///     .with_rate(None)
///     .build();
/// let a = limiter.try_acquire().expect("first");
/// let _b = limiter.try_acquire().expect("second");
/// assert!(limiter.try_acquire().is_none(), "a third is over the limit");
/// drop(a);
/// assert!(limiter.try_acquire().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileLimit {
    max_concurrent: Option<usize>,
    rate: Option<Rate>,
    request_share: Option<f64>,
    key_share: Option<f64>,
    max_tracked: usize,
}

/// A token-bucket rate: `per_second` new permits a second on average, up to
/// `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained permits per second.
    pub per_second: f64,
    /// Bucket size: how many permits can be taken at once after a quiet time.
    pub burst: u32,
}

impl Rate {
    /// `per_second` on average with bursts of `burst`.
    #[must_use]
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Rate { per_second, burst }
    }

    /// Whether this rate admits anything at all.
    fn admits(self) -> bool {
        self.per_second.is_finite() && self.per_second > 0.0 && self.burst > 0
    }
}

/// The default share of one request: a quarter of every global limit.
const DEFAULT_REQUEST_SHARE: f64 = 0.25;
/// The default number of request ids (and keys) remembered.
const DEFAULT_MAX_TRACKED: usize = 1024;

impl Default for ProfileLimit {
    fn default() -> Self {
        ProfileLimit {
            max_concurrent: Some(64),
            rate: Some(Rate::new(100.0, 100)),
            request_share: Some(DEFAULT_REQUEST_SHARE),
            key_share: None,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }
}

impl ProfileLimit {
    /// No limit at all, not even shares (for tests and trusted networks
    /// only).
    #[must_use]
    pub const fn unlimited() -> Self {
        ProfileLimit {
            max_concurrent: None,
            rate: None,
            request_share: None,
            key_share: None,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }

    /// At most `max` profiled requests in flight; `None` for no limit
    /// (default: 64).
    #[must_use]
    pub fn with_max_concurrent(mut self, max: Option<usize>) -> Self {
        self.max_concurrent = max;
        self
    }

    /// A token-bucket limit on new profiled requests; `None` for no limit
    /// (default: 100 per second, burst 100). A rate that is not a positive
    /// finite number, or a burst of 0, admits nothing.
    #[must_use]
    pub fn with_rate(mut self, rate: Option<Rate>) -> Self {
        self.rate = rate;
        self
    }

    /// The share of the global limits that one request (one `base_id`) may
    /// hold: `share` × the concurrency limit in flight, `share` × the rate
    /// and burst, each rounded up and at least 1; `None` for no share, so
    /// that one token can take everything (default: 0.25, see
    /// [Fairness](self#fairness)). A share above 1 is 1; one that is not a
    /// positive finite number admits nothing.
    ///
    /// ```
    /// use tracing_osprofiler::limit::{ProfileLimit, Rate};
    /// use tracing_osprofiler::{HmacAlgorithm, Profile, Signer};
    ///
    /// let limiter = ProfileLimit::unlimited()
    ///     .with_rate(Some(Rate::new(100.0, 8)))
    ///     .with_request_share(Some(0.25))
    ///     .build();
    /// let replayed = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
    /// let permits: Vec<_> = (0..10).filter_map(|_| limiter.try_acquire_for(&replayed)).collect();
    /// assert_eq!(permits.len(), 2, "a quarter of the burst of 8");
    /// let other = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
    /// assert!(limiter.try_acquire_for(&other).is_some());
    /// ```
    #[must_use]
    pub fn with_request_share(mut self, share: Option<f64>) -> Self {
        self.request_share = share;
        self
    }

    /// The share of the global limits that the requests signed with one key
    /// may hold together, computed as for
    /// [`with_request_share`](Self::with_request_share); `None` for no
    /// share (default). With two keys accepted during a rotation, a share of
    /// 0.5 keeps a flood signed with the old key from starving requests
    /// signed with the new one; with a single key a share only lowers the
    /// limits.
    #[must_use]
    pub fn with_key_share(mut self, share: Option<f64>) -> Self {
        self.key_share = share;
        self
    }

    /// How many request ids, and how many keys, are remembered for their
    /// shares, at least 1 (default: 1024). About 64 bytes each; when full,
    /// an id as good as new, then the least recently used one without a
    /// permit, is forgotten; if every one holds a permit, a new request is
    /// refused.
    #[must_use]
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max.max(1);
        self
    }

    /// The concurrency limit.
    #[must_use]
    pub const fn max_concurrent(&self) -> Option<usize> {
        self.max_concurrent
    }

    /// The rate limit.
    #[must_use]
    pub const fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// One request's share of the limits.
    #[must_use]
    pub const fn request_share(&self) -> Option<f64> {
        self.request_share
    }

    /// One key's share of the limits.
    #[must_use]
    pub const fn key_share(&self) -> Option<f64> {
        self.key_share
    }

    /// How many request ids and keys are remembered.
    #[must_use]
    pub const fn max_tracked(&self) -> usize {
        self.max_tracked
    }

    /// The limits one holder of `share` may use, or `None` if there is
    /// nothing to share (no share, or no global limit).
    fn share_limit(&self, share: Option<f64>) -> Option<ShareLimit> {
        let share = share?;
        if !(share.is_finite() && share > 0.0) {
            return Some(ShareLimit::NOTHING);
        }
        let share = share.min(1.0);
        // At least 1 of a limit that admits anything, so that a share never
        // turns "few" into "none".
        let scale = |n: f64| (n * share).ceil().max(1.0);
        let limit = ShareLimit {
            max_concurrent: self.max_concurrent.map(|max| {
                if max == 0 {
                    0
                } else {
                    scale(max as f64) as usize
                }
            }),
            rate: self.rate.map(|rate| {
                let burst = if rate.burst == 0 {
                    0
                } else {
                    scale(f64::from(rate.burst)) as u32
                };
                Rate::new(rate.per_second * share, burst)
            }),
        };
        (limit.max_concurrent.is_some() || limit.rate.is_some()).then_some(limit)
    }

    /// A limiter with this configuration and full buckets.
    #[must_use]
    pub fn build(self) -> ProfileLimiter {
        let now = Instant::now();
        ProfileLimiter {
            inner: Arc::new(Inner {
                limit: self,
                request_share: self.share_limit(self.request_share),
                key_share: self.share_limit(self.key_share),
                in_flight: AtomicUsize::new(0),
                state: Mutex::new(State {
                    bucket: self.rate.map(|rate| Bucket::full(Some(rate), now)),
                    requests: Tracker::new(self.max_tracked),
                    keys: Tracker::new(self.max_tracked),
                }),
            }),
        }
    }
}

/// What one request or one key may hold.
#[derive(Debug, Clone, Copy)]
struct ShareLimit {
    max_concurrent: Option<usize>,
    rate: Option<Rate>,
}

impl ShareLimit {
    const NOTHING: ShareLimit = ShareLimit {
        max_concurrent: Some(0),
        rate: None,
    };
}

/// Hands out [`ProfilePermit`]s within a [`ProfileLimit`]. Cloning it shares
/// the same counts.
#[derive(Clone)]
pub struct ProfileLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limit: ProfileLimit,
    request_share: Option<ShareLimit>,
    key_share: Option<ShareLimit>,
    in_flight: AtomicUsize,
    state: Mutex<State>,
}

/// Everything a new permit checks at once: taking tokens only when all
/// checks pass keeps a refused request from spending anybody's token.
struct State {
    bucket: Option<Bucket>,
    requests: Tracker<Id>,
    keys: Tracker<HmacKey>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked between two
        // counter updates; the counts are still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for ProfileLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileLimiter")
            .field("limit", &self.inner.limit)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl ProfileLimiter {
    /// A permit to profile one request, counted against the global limits
    /// only, or `None` if that would exceed them. The permit counts against
    /// the concurrency limit until dropped. For a request with a token,
    /// [`try_acquire_for`](Self::try_acquire_for) is fair.
    #[must_use]
    pub fn try_acquire(&self) -> Option<ProfilePermit> {
        self.acquire(None, None)
    }

    /// A permit to profile the request `profile` describes, within the
    /// global limits and within the shares of its `base_id` and of its key
    /// (see [Fairness](self#fairness)), or `None` if that would exceed any
    /// of them. A refused request spends nothing.
    #[must_use]
    pub fn try_acquire_for(&self, profile: &Profile) -> Option<ProfilePermit> {
        self.acquire(
            Some(profile.trace_info().base_id()),
            Some(profile.signer().key()),
        )
    }

    fn acquire(&self, request: Option<Id>, key: Option<&HmacKey>) -> Option<ProfilePermit> {
        let inner = &self.inner;
        // Concurrency first, without the lock: a request refused here does
        // not spend a token.
        match inner.limit.max_concurrent {
            Some(max) => {
                let mut current = inner.in_flight.load(Ordering::Relaxed);
                loop {
                    if current >= max {
                        return None;
                    }
                    match inner.in_flight.compare_exchange_weak(
                        current,
                        current + 1,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(actual) => current = actual,
                    }
                }
            }
            None => {
                inner.in_flight.fetch_add(1, Ordering::AcqRel);
            }
        }
        // Dropping the permit on a refusal below gives the slot back.
        let mut permit = ProfilePermit {
            inner: Arc::clone(inner),
            request: None,
            key: None,
        };
        let request = request.zip(inner.request_share);
        let key = key.zip(inner.key_share);
        if inner.limit.rate.is_none() && request.is_none() && key.is_none() {
            return Some(permit);
        }
        let mut state = inner.state();
        let now = Instant::now();
        let state = &mut *state;
        if let (Some(rate), Some(bucket)) = (inner.limit.rate, &mut state.bucket) {
            if !bucket.has_token(rate, now) {
                return None;
            }
        }
        if let Some((id, share)) = request {
            if !state.requests.has_room(&id, share, now) {
                return None;
            }
        }
        if let Some((key, share)) = key {
            if !state.keys.has_room(key, share, now) {
                return None;
            }
        }
        if let Some(bucket) = &mut state.bucket {
            bucket.tokens -= 1.0;
        }
        if let Some((id, share)) = request {
            state.requests.take(id, share, now);
            permit.request = Some(id);
        }
        if let Some((key, share)) = key {
            state.keys.take(key.clone(), share, now);
            permit.key = Some(key.clone());
        }
        Some(permit)
    }

    /// Profiled requests holding a permit now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// How many request ids are remembered for their shares now: at most
    /// [`ProfileLimit::max_tracked`].
    #[must_use]
    pub fn tracked_requests(&self) -> usize {
        self.inner.state().requests.slots.len()
    }

    /// The configuration.
    #[must_use]
    pub fn limit(&self) -> ProfileLimit {
        self.inner.limit
    }
}

/// A token bucket's level.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When the level was last brought up to date; also when the holder was
    /// last seen, for forgetting the least recently used.
    last: Instant,
}

impl Bucket {
    fn full(rate: Option<Rate>, now: Instant) -> Self {
        Bucket {
            tokens: rate.map_or(0.0, |rate| f64::from(rate.burst)),
            last: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
    }

    fn has_token(&mut self, rate: Rate, now: Instant) -> bool {
        if !rate.admits() {
            return false;
        }
        self.refill(rate, now);
        self.tokens >= 1.0
    }

    /// Whether the bucket would be full again by `now`.
    fn is_full_at(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate.per_second >= f64::from(rate.burst)
    }
}

/// The in-flight count and bucket of each request id or key, at most
/// `capacity` of them.
struct Tracker<K> {
    slots: HashMap<K, Slot>,
    capacity: usize,
}

struct Slot {
    in_flight: usize,
    bucket: Bucket,
}

impl Slot {
    /// Nothing in flight and a full bucket: forgetting it changes nothing.
    fn is_as_good_as_new(&self, rate: Option<Rate>, now: Instant) -> bool {
        self.in_flight == 0 && rate.is_none_or(|rate| self.bucket.is_full_at(rate, now))
    }
}

impl<K: Eq + Hash + Clone> Tracker<K> {
    fn new(capacity: usize) -> Self {
        Tracker {
            slots: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `key` may take one more within `share` (refilling its bucket;
    /// nothing else changes).
    fn has_room(&mut self, key: &K, share: ShareLimit, now: Instant) -> bool {
        if share.max_concurrent == Some(0) {
            return false;
        }
        match self.slots.get_mut(key) {
            Some(slot) => {
                share.max_concurrent.is_none_or(|max| slot.in_flight < max)
                    && share
                        .rate
                        .is_none_or(|rate| slot.bucket.has_token(rate, now))
            }
            // A new holder starts with nothing in flight and a full bucket,
            // and needs a free place or one that can be freed.
            None => {
                share.rate.is_none_or(Rate::admits)
                    && (self.slots.len() < self.capacity
                        || self.slots.values().any(|slot| slot.in_flight == 0))
            }
        }
    }

    /// Takes one for `key`, after [`has_room`](Self::has_room) said yes.
    fn take(&mut self, key: K, share: ShareLimit, now: Instant) {
        if self.slots.len() >= self.capacity && !self.slots.contains_key(&key) {
            self.forget_one(share.rate, now);
        }
        let slot = self.slots.entry(key).or_insert_with(|| Slot {
            in_flight: 0,
            bucket: Bucket::full(share.rate, now),
        });
        slot.in_flight += 1;
        slot.bucket.last = now;
        if share.rate.is_some() {
            slot.bucket.tokens -= 1.0;
        }
    }

    /// Gives back the rate token [`take`](Self::take) took.
    fn refund(&mut self, key: &K, share: ShareLimit) {
        if let (Some(slot), Some(rate)) = (self.slots.get_mut(key), share.rate) {
            slot.bucket.tokens = (slot.bucket.tokens + 1.0).min(f64::from(rate.burst));
        }
    }

    fn release(&mut self, key: &K) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
    }

    /// Makes room for one more: forgets every holder as good as new, or else
    /// the least recently seen one without a permit.
    fn forget_one(&mut self, rate: Option<Rate>, now: Instant) {
        self.slots
            .retain(|_, slot| !slot.is_as_good_as_new(rate, now));
        if self.slots.len() < self.capacity {
            return;
        }
        let oldest = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.in_flight == 0)
            .min_by_key(|(_, slot)| slot.bucket.last)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.slots.remove(&key);
        }
    }
}

/// The right to profile one request; gives its slots back when dropped.
#[must_use = "the request is profiled only while its permit is held"]
pub struct ProfilePermit {
    inner: Arc<Inner>,
    request: Option<Id>,
    key: Option<HmacKey>,
}

impl fmt::Debug for ProfilePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProfilePermit")
    }
}

impl ProfilePermit {
    /// The request was not profiled after all (its root span was disabled
    /// by a filter): gives back the rate tokens this permit took, as well as
    /// its slots, so that it cost the limit nothing.
    pub fn give_back(self) {
        {
            let inner = &self.inner;
            let mut state = inner.state();
            let state = &mut *state;
            if let (Some(rate), Some(bucket)) = (inner.limit.rate, &mut state.bucket) {
                bucket.tokens = (bucket.tokens + 1.0).min(f64::from(rate.burst));
            }
            if let (Some(id), Some(share)) = (&self.request, inner.request_share) {
                state.requests.refund(id, share);
            }
            if let (Some(key), Some(share)) = (&self.key, inner.key_share) {
                state.keys.refund(key, share);
            }
        }
        // Dropping the permit (the lock released) gives the slots back.
        drop(self);
    }
}

impl Drop for ProfilePermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.request.is_none() && self.key.is_none() {
            return;
        }
        let mut state = self.inner.state();
        if let Some(id) = &self.request {
            state.requests.release(id);
        }
        if let Some(key) = &self.key {
            state.keys.release(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::token::{HmacAlgorithm, Signer};

    /// A rate so slow that no token comes back during a test.
    const NO_REFILL: f64 = 0.000_001;

    fn request(key: &str) -> Profile {
        Profile::new(Signer::new(key, HmacAlgorithm::Sha1))
    }

    #[test]
    fn defaults_are_documented_values() {
        let limit = ProfileLimit::default();
        assert_eq!(limit.max_concurrent(), Some(64));
        assert_eq!(limit.rate(), Some(Rate::new(100.0, 100)));
        assert_eq!(limit.request_share(), Some(0.25));
        assert_eq!(limit.key_share(), None);
        assert_eq!(limit.max_tracked(), 1024);
        let share = limit.share_limit(limit.request_share()).unwrap();
        assert_eq!(share.max_concurrent, Some(16));
        assert_eq!(share.rate, Some(Rate::new(25.0, 25)));
        let unlimited = ProfileLimit::unlimited();
        assert_eq!(
            (unlimited.request_share(), unlimited.key_share()),
            (None, None)
        );
    }

    #[test]
    fn a_permit_given_back_costs_no_token() {
        let limiter = ProfileLimit::default()
            .with_rate(Some(Rate::new(0.001, 1)))
            .with_request_share(Some(1.0))
            .build();
        let profile = request("k");
        for _ in 0..3 {
            let permit = limiter
                .try_acquire_for(&profile)
                .expect("the token is back");
            permit.give_back();
        }
        let _held = limiter.try_acquire_for(&profile).expect("still there");
        assert!(
            limiter.try_acquire_for(&profile).is_none(),
            "now it is spent"
        );
    }

    #[test]
    fn one_request_holds_at_most_its_share_in_flight() {
        let limiter = ProfileLimit::default().build();
        let replayed = request("k");
        let held: Vec<_> = (0..40)
            .filter_map(|_| limiter.try_acquire_for(&replayed))
            .collect();
        assert_eq!(held.len(), 16, "a quarter of 64");
        let other = request("k");
        let others: Vec<_> = (0..16)
            .filter_map(|_| limiter.try_acquire_for(&other))
            .collect();
        assert_eq!(others.len(), 16, "another request has its own share");
        drop(others);
        drop(held);
        assert_eq!(limiter.in_flight(), 0);
        assert!(
            limiter.try_acquire_for(&replayed).is_some(),
            "slots come back"
        );
    }

    #[test]
    fn a_request_refused_by_its_share_spends_no_global_token() {
        let limiter = ProfileLimit::unlimited()
            .with_rate(Some(Rate::new(NO_REFILL, 4)))
            .with_request_share(Some(0.25))
            .build();
        let replayed = request("k");
        let first = limiter.try_acquire_for(&replayed);
        assert!(first.is_some());
        for _ in 0..100 {
            assert!(limiter.try_acquire_for(&replayed).is_none());
        }
        // The 3 global tokens left go to 3 other requests.
        let others: Vec<_> = (0..5)
            .filter_map(|_| limiter.try_acquire_for(&request("k")))
            .collect();
        assert_eq!(others.len(), 3);
    }

    #[test]
    fn one_key_cannot_starve_another_with_a_key_share() {
        let limit = ProfileLimit::unlimited()
            .with_max_concurrent(Some(4))
            .with_key_share(Some(0.5));
        let limiter = limit.build();
        let old: Vec<_> = (0..10)
            .filter_map(|_| limiter.try_acquire_for(&request("old-key")))
            .collect();
        assert_eq!(old.len(), 2, "half of 4 for the old key");
        let new: Vec<_> = (0..10)
            .filter_map(|_| limiter.try_acquire_for(&request("new-key")))
            .collect();
        assert_eq!(new.len(), 2, "the new key still gets its half");

        // Without a key share, the old key takes everything.
        let limiter = limit.with_key_share(None).build();
        let old: Vec<_> = (0..10)
            .filter_map(|_| limiter.try_acquire_for(&request("old-key")))
            .collect();
        assert_eq!(old.len(), 4);
        assert!(limiter.try_acquire_for(&request("new-key")).is_none());
    }

    #[test]
    fn memory_stays_bounded_with_many_request_ids() {
        let limiter = ProfileLimit::unlimited()
            .with_max_concurrent(Some(100_000))
            .with_rate(Some(Rate::new(NO_REFILL, u32::MAX)))
            .with_request_share(Some(0.25))
            .with_max_tracked(64)
            .build();
        for _ in 0..10_000 {
            let permit = limiter.try_acquire_for(&request("k"));
            assert!(permit.is_some());
            assert!(limiter.tracked_requests() <= 64);
        }
        assert_eq!(limiter.tracked_requests(), 64);

        // Ids holding a permit are never forgotten: with all 64 held, a new
        // id is refused until one is released.
        let held: Vec<_> = (0..64)
            .map(|_| limiter.try_acquire_for(&request("k")).expect("room"))
            .collect();
        assert!(limiter.try_acquire_for(&request("k")).is_none());
        drop(held);
        assert!(limiter.try_acquire_for(&request("k")).is_some());
        assert!(limiter.tracked_requests() <= 64);
    }

    #[test]
    fn a_replayed_id_seen_again_and_again_is_not_forgotten() {
        let limiter = ProfileLimit::unlimited()
            .with_rate(Some(Rate::new(NO_REFILL, 100_000)))
            .with_request_share(Some(0.000_001))
            .with_max_tracked(8)
            .build();
        let replayed = request("k");
        assert!(limiter.try_acquire_for(&replayed).is_some());
        for _ in 0..1000 {
            // Other requests come and go, more than can be remembered; the
            // replayed one keeps being seen, so it is never the least
            // recently used, and never gets a fresh share.
            assert!(limiter.try_acquire_for(&replayed).is_none());
            assert!(limiter.try_acquire_for(&request("k")).is_some());
            assert!(limiter.tracked_requests() <= 8);
        }
    }

    #[test]
    fn nonsense_shares_admit_nothing_and_big_ones_are_the_whole() {
        for share in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = ProfileLimit::default()
                .with_request_share(Some(share))
                .build();
            assert!(limiter.try_acquire_for(&request("k")).is_none(), "{share}");
            assert!(limiter.try_acquire().is_some(), "the global limit alone");
        }
        let limiter = ProfileLimit::unlimited()
            .with_max_concurrent(Some(3))
            .with_request_share(Some(7.0))
            .build();
        let replayed = request("k");
        let held: Vec<_> = (0..5)
            .filter_map(|_| limiter.try_acquire_for(&replayed))
            .collect();
        assert_eq!(held.len(), 3);
    }

    #[test]
    fn burst_then_refill() {
        let limiter = ProfileLimit::unlimited()
            .with_rate(Some(Rate::new(20.0, 3)))
            .build();
        let permits: Vec<_> = (0..3).map(|_| limiter.try_acquire()).collect();
        assert!(permits.iter().all(Option::is_some));
        assert!(limiter.try_acquire().is_none());
        // 20 per second: one token every 50 ms.
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.try_acquire().is_some());
    }

    #[test]
    fn refused_by_rate_gives_the_slot_back() {
        let limiter = ProfileLimit::default()
            .with_max_concurrent(Some(1))
            .with_rate(Some(Rate::new(1.0, 1)))
            .build();
        let first = limiter.try_acquire().expect("first");
        drop(first);
        assert!(limiter.try_acquire().is_none(), "bucket empty");
        assert_eq!(limiter.in_flight(), 0);
    }

    #[test]
    fn nonsense_rates_admit_nothing() {
        for rate in [
            Rate::new(f64::NAN, 5),
            Rate::new(-1.0, 5),
            Rate::new(5.0, 0),
        ] {
            let limiter = ProfileLimit::unlimited().with_rate(Some(rate)).build();
            assert!(limiter.try_acquire().is_none(), "{rate:?}");
        }
    }

    #[test]
    fn unlimited_counts_in_flight() {
        let limiter = ProfileLimit::unlimited().build();
        let permits: Vec<_> = (0..1000).filter_map(|_| limiter.try_acquire()).collect();
        assert_eq!(permits.len(), 1000);
        assert_eq!(limiter.in_flight(), 1000);
        drop(permits);
        assert_eq!(limiter.in_flight(), 0);
    }
}
