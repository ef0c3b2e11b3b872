//! A limit on how many requests are profiled: concurrency and rate.
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
//!
//! A profiled request writes two lines per span, so 100 profiled requests a
//! second with 20 spans each is 4000 lines a second: far more than a human
//! investigation needs and well within what the writer handles.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
}

impl Default for ProfileLimit {
    fn default() -> Self {
        ProfileLimit {
            max_concurrent: Some(64),
            rate: Some(Rate::new(100.0, 100)),
        }
    }
}

impl ProfileLimit {
    /// No limit at all (for tests and trusted networks only).
    #[must_use]
    pub const fn unlimited() -> Self {
        ProfileLimit {
            max_concurrent: None,
            rate: None,
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

    /// A limiter with this configuration and full buckets.
    #[must_use]
    pub fn build(self) -> ProfileLimiter {
        let bucket = self.rate.map(|rate| {
            Mutex::new(Bucket {
                tokens: f64::from(rate.burst),
                last: Instant::now(),
            })
        });
        ProfileLimiter {
            inner: Arc::new(Inner {
                limit: self,
                in_flight: AtomicUsize::new(0),
                bucket,
            }),
        }
    }
}

/// Hands out [`ProfilePermit`]s within a [`ProfileLimit`]. Cloning it shares
/// the same counts.
#[derive(Clone)]
pub struct ProfileLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limit: ProfileLimit,
    in_flight: AtomicUsize,
    bucket: Option<Mutex<Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl fmt::Debug for ProfileLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileLimiter")
            .field("limit", &self.inner.limit)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl ProfileLimiter {
    /// A permit to profile one request, or `None` if that would exceed the
    /// limit. The permit counts against the concurrency limit until dropped.
    #[must_use]
    pub fn try_acquire(&self) -> Option<ProfilePermit> {
        let inner = &self.inner;
        // Concurrency first: a request refused here does not spend a token.
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
        let permit = ProfilePermit {
            inner: Arc::clone(inner),
        };
        if let (Some(rate), Some(bucket)) = (inner.limit.rate, &inner.bucket) {
            if !take_token(rate, bucket) {
                // Dropping the permit gives the concurrency slot back.
                return None;
            }
        }
        Some(permit)
    }

    /// Profiled requests holding a permit now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// The configuration.
    #[must_use]
    pub fn limit(&self) -> ProfileLimit {
        self.inner.limit
    }
}

fn take_token(rate: Rate, bucket: &Mutex<Bucket>) -> bool {
    if !(rate.per_second.is_finite() && rate.per_second > 0.0) || rate.burst == 0 {
        return false;
    }
    // A poisoned lock only means another thread panicked between two float
    // updates; the bucket is still usable.
    let mut bucket = bucket
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
    bucket.last = now;
    bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// The right to profile one request; gives its concurrency slot back when
/// dropped.
pub struct ProfilePermit {
    inner: Arc<Inner>,
}

impl fmt::Debug for ProfilePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProfilePermit")
    }
}

impl Drop for ProfilePermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_are_documented_values() {
        let limit = ProfileLimit::default();
        assert_eq!(limit.max_concurrent(), Some(64));
        assert_eq!(limit.rate(), Some(Rate::new(100.0, 100)));
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
