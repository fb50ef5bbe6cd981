//! The only place that reads the system time. Every use case reads `now` once per request
//! from a [`Clock`] and passes it down, so tests drive expiry with a [`ManualClock`] instead of
//! sleeping.
use std::sync::atomic::{AtomicI64, Ordering};

/// A point in time, in microseconds since the Unix epoch (the Wazo dialect shows microseconds;
/// the store keeps whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Whole seconds since the epoch, as stored in the database.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1_000_000)))
    }

    /// Seconds since the epoch as a float (wazo-auth's `time.time()`).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// A monotonic stopwatch, for measuring how long something took (metrics); never for a
/// decision about tokens, which reads `Clock`.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[expect(
        clippy::disallowed_methods,
        reason = "a monotonic duration for metrics, not the time of day"
    )]
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one place allowed to read the system time"
    )]
    fn now(&self) -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_micros(micros)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.micros()))
    }

    /// Starts at the current system time, so tokens look realistic.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs.saturating_mul(1_000_000), Ordering::SeqCst);
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        assert_eq!(clock.now().secs(), 1_000);
        clock.advance_secs(86_400);
        assert_eq!(clock.now().secs(), 87_400);
    }

    #[test]
    fn seconds_round_down_even_before_the_epoch() {
        assert_eq!(Timestamp::from_micros(1_999_999).secs(), 1);
        assert_eq!(Timestamp::from_micros(-1).secs(), -1);
    }
}
