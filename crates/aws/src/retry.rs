//! Backoff for the retries the SDK does not do itself: unprocessed batch items, failed
//! PutEvents entries and conflicting transactions come back in successful responses.

use ewf_domain::StoreError;
use ewf_domain::ports::Random;
use ewf_domain::system::SeededRandom;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub(crate) const DEFAULT: Backoff = Backoff {
        attempts: 5,
        base: Duration::from_millis(50),
        cap: Duration::from_secs(2),
    };

    /// Sleeps before retry number `retry` (1 for the first): exponential with jitter,
    /// so that writers that collided do not collide again in step.
    pub(crate) async fn wait(&self, retry: u32) {
        let ceiling = self.base.saturating_mul(1 << retry.min(16)).min(self.cap);
        let jitter = 0.5 + SeededRandom::new(None).unit() / 2.0;
        tokio::time::sleep(ceiling.mul_f64(jitter)).await;
    }
}

impl Backoff {
    /// Sends the work in `pending`, then again whatever `send` hands back as not done,
    /// until nothing is left or the attempts run out. Returns what is left.
    pub(crate) async fn drain<T, F, Fut>(
        &self,
        mut pending: Vec<T>,
        mut send: F,
    ) -> Result<Vec<T>, StoreError>
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<T>, StoreError>>,
    {
        for attempt in 0..self.attempts {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                self.wait(attempt).await;
            }
            pending = send(pending).await?;
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
    };

    #[tokio::test]
    async fn drain_resends_only_what_is_left_and_stops_when_done() {
        let mut sent = Vec::new();
        let left = QUICK
            .drain(vec![1, 2, 3], |batch| {
                sent.push(batch.clone());
                // The first send leaves the odd numbers, the second leaves nothing.
                let left = if sent.len() == 1 {
                    batch.into_iter().filter(|n| n % 2 == 1).collect()
                } else {
                    Vec::new()
                };
                async move { Ok(left) }
            })
            .await
            .unwrap();
        assert!(left.is_empty());
        assert_eq!(sent, [vec![1, 2, 3], vec![1, 3]]);
    }

    #[tokio::test]
    async fn drain_gives_up_after_its_attempts_and_returns_the_rest() {
        let mut sends = 0;
        let left = QUICK
            .drain(vec!["stuck"], |batch| {
                sends += 1;
                async move { Ok(batch) }
            })
            .await
            .unwrap();
        assert_eq!((sends, left), (3, vec!["stuck"]));
    }
}
