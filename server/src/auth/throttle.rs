//! The sign-in throttle: failed attempts counted per account and per address, so that guessing
//! passwords is slow whoever guesses and however many guesses arrive at once.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Failed-login counters per account and per address, over a sliding window.
///
/// An attempt is counted *before* its password is checked ([`LoginLimiter::reserve`]), as if it
/// had failed, and the count is taken back only once it is known not to be a failure. So
/// concurrent guesses cannot overtake the count: however many arrive at once, no more than the
/// limit are ever checked.
#[derive(Default)]
pub(super) struct LoginLimiter {
    failures: HashMap<String, Vec<Instant>>,
}

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_ACCOUNT: usize = 5;
const MAX_FAILURES_PER_ADDRESS: usize = 20;

/// A sign-in attempt counted against its account and address until it is settled.
pub(super) struct Attempt {
    account: String,
    address: String,
    at: Instant,
}

impl LoginLimiter {
    /// Counts an attempt for `account` from `address`, or answers the seconds to wait when
    /// either is at its limit (then nothing is counted).
    pub(super) fn reserve(&mut self, account: String, address: String) -> Result<Attempt, u64> {
        if let Some(wait) = self
            .blocked(&account, MAX_FAILURES_PER_ACCOUNT)
            .or_else(|| self.blocked(&address, MAX_FAILURES_PER_ADDRESS))
        {
            return Err(wait);
        }
        let at = Instant::now();
        self.record(&account, at);
        self.record(&address, at);
        Ok(Attempt {
            account,
            address,
            at,
        })
    }

    /// The password was right: the account's failures are forgiven, and the attempt does not
    /// count against the address.
    pub(super) fn succeeded(&mut self, attempt: &Attempt) {
        self.failures.remove(&attempt.account);
        self.forget(&attempt.address, attempt.at);
    }

    /// The password was never checked (the hasher was busy, the database failed): the attempt
    /// counts against neither.
    pub(super) fn take_back(&mut self, attempt: &Attempt) {
        self.forget(&attempt.account, attempt.at);
        self.forget(&attempt.address, attempt.at);
    }

    /// Seconds to wait if `key` is at `limit`.
    fn blocked(&mut self, key: &str, limit: usize) -> Option<u64> {
        let failures = self.failures.get_mut(key)?;
        failures.retain(|at| at.elapsed() < LOGIN_WINDOW);
        if failures.len() >= limit {
            let oldest = failures.first()?;
            Some(
                LOGIN_WINDOW
                    .saturating_sub(oldest.elapsed())
                    .as_secs()
                    .max(1),
            )
        } else {
            None
        }
    }

    fn record(&mut self, key: &str, at: Instant) {
        if self.failures.len() > 100_000 {
            self.failures
                .retain(|_, times| times.iter().any(|at| at.elapsed() < LOGIN_WINDOW));
        }
        self.failures.entry(key.to_owned()).or_default().push(at);
    }

    fn forget(&mut self, key: &str, at: Instant) {
        if let Some(times) = self.failures.get_mut(key) {
            if let Some(index) = times.iter().position(|time| *time == at) {
                times.remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_before_they_are_checked_and_settle_after() {
        let mut limiter = LoginLimiter::default();
        let reserve = |limiter: &mut LoginLimiter, address: &str| {
            limiter.reserve("user:a".into(), format!("addr:{address}"))
        };
        // As many attempts in flight as the limit, none settled yet: the next is refused.
        let pending: Vec<Attempt> = (0..MAX_FAILURES_PER_ACCOUNT)
            .map(|i| reserve(&mut limiter, &i.to_string()).unwrap())
            .collect();
        assert!(reserve(&mut limiter, "x").is_err());
        // One never checked is taken back and frees its place; one that succeeds forgives all.
        limiter.take_back(&pending[0]);
        let retried = reserve(&mut limiter, "x").unwrap();
        assert!(reserve(&mut limiter, "y").is_err());
        limiter.succeeded(&retried);
        assert!(reserve(&mut limiter, "y").is_ok());
        assert!(limiter.failures["addr:x"].is_empty());
    }
}
