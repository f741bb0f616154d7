//! The clock and the randomness of the system, the adapters of [`Clock`] and [`Random`]
//! that every stack uses (tests use their own, in `testing`).

use crate::Timestamp;
use crate::ports::{Clock, Random};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::sync::Mutex;

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// Randomness from a generator: seeded for reproducible runs, or from the OS.
pub struct SeededRandom(Mutex<StdRng>);

impl SeededRandom {
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self(Mutex::new(rng))
    }

    fn with<T>(&self, draw: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        draw(&mut rng)
    }
}

impl Random for SeededRandom {
    fn unit(&self) -> f64 {
        self.with(|rng| rng.random::<f64>())
    }

    fn id_bits(&self) -> u128 {
        self.with(|rng| rng.random::<u128>() >> 48)
    }
}
