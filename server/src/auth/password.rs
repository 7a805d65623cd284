//! Password hashing with a bounded cost: Argon2id, at most N computations at once, each in a
//! memory area of its own that is allocated once and reused.
//!
//! Argon2 is memory-hard on purpose: every verification fills 19 MiB. Left unbounded, a flood of
//! failed sign-ins runs one verification per request on the blocking pool and the process grows
//! by 19 MiB per request in flight — and glibc keeps what it grew. So sign-in verifies through a
//! [`Hasher`]: a semaphore of N permits, each permit owning one reused memory area. The server's
//! hashing memory is thus at most N × 19 MiB, whatever arrives; a request that cannot get a
//! permit within [`Hasher::wait`] is refused at once ([`Busy`]), before any work is done. When
//! the last verification in flight ends, the areas are freed and handed back to the system: an
//! idle server holds none of it.
//! Sign-in counts the attempt against its throttle *before* asking for a permit (see `signin`).

use std::{sync::Mutex, time::Duration};

use argon2::{
    password_hash::{Output, PasswordHash, PasswordHasher, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use tokio::sync::Semaphore;

use crate::fhir::error::FhirError;

/// Argon2id memory cost per hash, in KiB (OWASP: 19 MiB, 2 passes, 1 lane).
pub const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;

/// The verifications that may run at once by default: 4 × 19 MiB = 76 MiB of hashing memory,
/// and on a machine of 2 to 4 cores more would only queue for the CPU.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How long a sign-in waits for a free permit before it is answered 503.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// No permit came free in time: the hasher is at capacity and nothing was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for FhirError {
    fn from(_: Busy) -> Self {
        FhirError::Unavailable {
            message: "too many sign-ins at once; try again in a moment".into(),
            retry_after_secs: 1,
        }
    }
}

/// Hashes a password with our parameters and a fresh salt, off the async threads. For seeding
/// accounts only: it allocates its own memory and is not bounded by a [`Hasher`], so it must
/// never run on behalf of an unauthenticated request.
pub async fn hash_password(password: String) -> Result<String, FhirError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2(params())
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| FhirError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| FhirError::Internal(format!("hashing task failed: {e}")))?
}

/// A valid Argon2id hash (of a random string, with our parameters) to verify against when the
/// username is unknown, so that an unknown account costs exactly what a known one does.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Jm0cA8q3cJ8hEPnWBhpmnB3Z1Pb3Wd5q3d0CKkM5QkI"
}

fn params() -> Params {
    Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default()
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verifies passwords, at most `concurrency` at once, each in reused memory.
pub struct Hasher {
    permits: Semaphore,
    concurrency: usize,
    /// One memory area per permit; a verification takes one out and puts it back. Areas start
    /// empty and grow to the block count of the hashes they verify, once.
    memory: Mutex<Vec<Vec<Block>>>,
    wait: Duration,
}

impl Hasher {
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Semaphore::new(concurrency),
            concurrency,
            memory: Mutex::new((0..concurrency).map(|_| Vec::new()).collect()),
            wait,
        }
    }

    /// How long a verification waits for a permit before it gives up with [`Busy`].
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Whether `password` matches the PHC string `hash`; [`Busy`] when no permit came free in
    /// time. A hash that does not parse matches nothing.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        let permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        // Holding a permit guarantees an area is free: there are as many areas as permits.
        let mut memory = self.take_memory();
        let (matched, memory) = tokio::task::spawn_blocking(move || {
            let matched = verify_in(&password, &hash, &mut memory);
            (matched, memory)
        })
        .await
        .unwrap_or_else(|_| (false, Vec::new()));
        self.put_memory(memory);
        drop(permit);
        if self.permits.available_permits() == self.concurrency {
            self.release_memory();
        }
        Ok(matched)
    }

    /// Frees the areas no verification holds, and hands the pages back.
    fn release_memory(&self) {
        if let Ok(mut areas) = self.memory.lock() {
            areas.iter_mut().for_each(|area| *area = Vec::new());
        }
        crate::memory::release_freed_memory();
    }

    fn take_memory(&self) -> Vec<Block> {
        self.memory
            .lock()
            .map(|mut areas| areas.pop().unwrap_or_default())
            .unwrap_or_default()
    }

    fn put_memory(&self, memory: Vec<Block>) {
        if let Ok(mut areas) = self.memory.lock() {
            areas.push(memory);
        }
    }
}

/// Recomputes `hash` for `password` in `memory` (grown if too small) and compares in constant
/// time.
fn verify_in(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params);
    if hasher
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_err()
    {
        return false;
    }
    Output::new(&computed).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the hasher's memory areas hold now.
    fn held(hasher: &Hasher) -> usize {
        let areas = hasher.memory.lock().unwrap();
        areas.iter().map(|area| area.capacity()).sum::<usize>() * std::mem::size_of::<Block>()
    }

    #[tokio::test]
    async fn verifies_our_hashes() {
        let hash = hash_password("right".into()).await.unwrap();
        let hasher = Hasher::new(1, DEFAULT_WAIT);
        assert_eq!(hasher.verify("right".into(), hash.clone()).await, Ok(true));
        assert_eq!(hasher.verify("wrong".into(), hash).await, Ok(false));
        assert_eq!(
            hasher.verify("x".into(), dummy_hash().into()).await,
            Ok(false)
        );
        assert_eq!(hasher.verify("x".into(), "garbage".into()).await, Ok(false));
    }

    #[tokio::test]
    async fn areas_are_reused_while_busy_and_freed_once_idle() {
        let hash = hash_password("right".into()).await.unwrap();
        let hasher = Hasher::new(2, DEFAULT_WAIT);
        // While another verification holds a permit, an area is put back grown, for the next.
        let busy = hasher.permits.acquire().await.unwrap();
        assert_eq!(hasher.verify("right".into(), hash.clone()).await, Ok(true));
        let one_area = params().block_count() * std::mem::size_of::<Block>();
        assert_eq!(held(&hasher), one_area);
        drop(busy);
        // The last verification in flight frees every area.
        assert_eq!(hasher.verify("wrong".into(), hash).await, Ok(false));
        assert_eq!(held(&hasher), 0);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(dummy_hash()).unwrap();
        assert_eq!(
            Params::try_from(&parsed).unwrap().block_count(),
            params().block_count()
        );
        assert_eq!(Params::try_from(&parsed).unwrap().t_cost(), PASSES);
    }

    #[tokio::test]
    async fn a_waiter_without_a_permit_is_refused_after_the_wait() {
        let hasher = Hasher::new(1, Duration::from_millis(50));
        let _held = hasher.permits.acquire().await.unwrap();
        assert_eq!(
            hasher.verify("x".into(), dummy_hash().into()).await,
            Err(Busy)
        );
    }
}
