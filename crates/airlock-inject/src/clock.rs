//! Wall-clock time, injectable for tests.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where injectors read the time: SigV4 dates, OAuth 1.0a timestamps, JWT `iat`/`exp`
/// and token expiry. Tests pass a fixed or manual clock.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Seconds since the Unix epoch (0 for a clock set before 1970).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that says what it is told: for tests (token expiry, fixed signing dates).
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock stopped at `unix_seconds` after the epoch.
    pub fn at_unix(unix_seconds: u64) -> Self {
        ManualClock {
            now: std::sync::Mutex::new(UNIX_EPOCH + Duration::from_secs(unix_seconds)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
