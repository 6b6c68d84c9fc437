//! Token-bucket rate limits per agent × capability.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use airlock_config::Rate;

use crate::Clock;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Duration,
}

/// Token buckets: each holds up to `count` tokens and refills at `count / per`;
/// a request takes one. So `60/min` allows a burst of 60, then one per second.
#[derive(Debug)]
pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    /// An empty limiter on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter {
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` × `capability`, or says how long until one is free.
    pub fn try_acquire(&self, key: &str, capability: &str, rate: Rate) -> Result<(), Duration> {
        let now = self.clock.now();
        let capacity = f64::from(rate.count);
        let per_token = rate.per.as_secs_f64() / capacity;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets
            .entry((key.to_string(), capability.to_string()))
            .or_insert(Bucket {
                tokens: capacity,
                last: now,
            });
        let elapsed = now.saturating_sub(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed / per_token).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * per_token))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    /// A `3/min` limiter on a manual clock, with the whole burst of agent `a`
    /// on capability `c` just taken.
    fn burst_taken() -> (Arc<ManualClock>, RateLimiter, Rate) {
        let clock = ManualClock::new();
        let rl = RateLimiter::new(clock.clone());
        let rate = airlock_config::parse_rate("3/min").unwrap();
        for _ in 0..3 {
            rl.try_acquire("a", "c", rate).unwrap();
        }
        (clock, rl, rate)
    }

    #[test]
    fn burst_then_steady_refill() {
        let (clock, rl, rate) = burst_taken();
        let wait = rl.try_acquire("a", "c", rate).unwrap_err();
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::from_secs(19),
            "{wait:?}"
        );
        // Other agents and capabilities have their own buckets.
        rl.try_acquire("b", "c", rate).unwrap();
        rl.try_acquire("a", "d", rate).unwrap();
        clock.advance(Duration::from_secs(20));
        rl.try_acquire("a", "c", rate).unwrap();
        assert!(rl.try_acquire("a", "c", rate).is_err());
        // Refill never exceeds the burst size.
        clock.advance(Duration::from_secs(3600));
        for _ in 0..3 {
            rl.try_acquire("a", "c", rate).unwrap();
        }
        assert!(rl.try_acquire("a", "c", rate).is_err());
    }

    /// The wait a refused caller is told is until its next token: with half a token
    /// refilled, half the refill period.
    #[test]
    fn the_rate_limiters_wait_is_until_the_next_token() {
        let (clock, rl, rate) = burst_taken();
        clock.advance(Duration::from_secs(10));
        let wait = rl.try_acquire("a", "c", rate).unwrap_err();
        assert!(
            wait > Duration::from_millis(9_990) && wait < Duration::from_millis(10_010),
            "{wait:?}"
        );
        // After the wait, exactly one token.
        clock.advance(wait);
        rl.try_acquire("a", "c", rate).unwrap();
        assert!(rl.try_acquire("a", "c", rate).is_err());
    }
}
