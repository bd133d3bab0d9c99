//! What the writer and the reader tasks share: taking the next batch off a
//! queue, keeping a connection between batches, and answering a whole batch
//! with one error.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use super::{MAX_BATCH, classify};
use crate::StoreError;

/// A request waiting in a queue: what is asked, and where the answer goes.
pub struct Request<T, R> {
    /// What is asked.
    pub payload: T,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<R, StoreError>>,
    /// After this the caller has given up: answer without trying.
    pub deadline: Instant,
    /// The span of the request that asked (its log events follow it here).
    pub span: tracing::Span,
}

impl<T, R> Request<T, R> {
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    /// Answers it with an error.
    pub fn fail(self, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Waits for the next batch: every request waiting, up to [`MAX_BATCH`].
/// Requests whose caller has given up are dropped, those past their deadline
/// answered with 503. `None` once the queue has closed.
///
/// Once the first request is in, the task yields once before it closes the
/// batch: tokio runs a yielded task again only after it has polled the
/// sockets and run what became ready, so the HTTP requests that arrived
/// meanwhile join this batch instead of each starting a query or commit of
/// its own. Measured on balance reads (64 connections): 2.7 times fewer
/// queries, 2–3% more reads per second (docs/BENCHMARKS.md, issue #3).
pub async fn next_batch<T, R>(
    queue: &Mutex<mpsc::Receiver<Request<T, R>>>,
) -> Option<Vec<Request<T, R>>> {
    loop {
        let mut taken = Vec::new();
        {
            let mut rx = queue.lock().await;
            if rx.recv_many(&mut taken, MAX_BATCH).await == 0 {
                return None;
            }
            if taken.len() < MAX_BATCH {
                tokio::task::yield_now().await;
                while taken.len() < MAX_BATCH {
                    let Ok(request) = rx.try_recv() else { break };
                    taken.push(request);
                }
            }
        }
        let now = Instant::now();
        let mut batch = Vec::with_capacity(taken.len());
        for request in taken {
            if request.abandoned() {
                continue;
            }
            if request.deadline <= now {
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
pub async fn connection<T, R>(
    held: &mut Option<PoolConnection<Postgres>>,
    pool: &PgPool,
    batch: &mut Vec<Request<T, R>>,
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
pub fn fail_all<T, R>(requests: impl IntoIterator<Item = Request<T, R>>, error: &StoreError) {
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
