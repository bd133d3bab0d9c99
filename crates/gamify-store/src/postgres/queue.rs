//! What the writer and the reader tasks share: taking the next batch off a
//! queue, keeping a connection between batches, and answering a whole batch
//! with one error.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use super::{MAX_BATCH, classify};
use crate::StoreError;

/// A request waiting in a queue.
pub trait Pending {
    /// After this its caller has given up.
    fn deadline(&self) -> Instant;
    /// Whether its caller has stopped waiting (timed out or went away).
    fn abandoned(&self) -> bool;
    /// Answers it with an error.
    fn fail(self, error: StoreError);
}

/// Waits for the next batch: every request waiting, up to [`MAX_BATCH`].
/// Requests whose caller has given up are dropped, those past their deadline
/// answered with 503. `None` once the queue has closed.
pub async fn next_batch<T: Pending>(queue: &Mutex<mpsc::Receiver<T>>) -> Option<Vec<T>> {
    loop {
        let mut taken = Vec::new();
        if queue.lock().await.recv_many(&mut taken, MAX_BATCH).await == 0 {
            return None;
        }
        let now = Instant::now();
        let mut batch = Vec::with_capacity(taken.len());
        for request in taken {
            if request.abandoned() {
                continue;
            }
            if request.deadline() <= now {
                request.fail(StoreError::Unavailable(
                    "the database did not answer in time",
                ));
            } else {
                batch.push(request);
            }
        }
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

/// The connection kept from the last batch, or a new one from the pool. If
/// none can be had, every request of `batch` is answered with why, and the
/// result is `None`.
pub async fn connection<T: Pending>(
    held: &mut Option<PoolConnection<Postgres>>,
    pool: &PgPool,
    batch: &mut Vec<T>,
) -> Option<PoolConnection<Postgres>> {
    if let Some(conn) = held.take() {
        return Some(conn);
    }
    match pool.acquire().await {
        Ok(conn) => Some(conn),
        Err(e) => {
            fail_all(batch.drain(..), &classify(e));
            None
        }
    }
}

/// Answers every request with (a copy of) `error`.
pub fn fail_all<T: Pending>(requests: impl IntoIterator<Item = T>, error: &StoreError) {
    for request in requests {
        request.fail(copy(error));
    }
}

/// A copy of an error, for each request of a batch that fails as a whole.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(why) => StoreError::Unavailable(why),
        other => StoreError::Backend(other.to_string().into()),
    }
}
