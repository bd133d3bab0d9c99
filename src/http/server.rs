//! The HTTP/1.1 server loop under [`super::serve`] (and the benchmark's
//! bare endpoint, so that both run on the same loop): accepts connections,
//! serves each with hyper, closes a connection whose request head does not
//! arrive in time, and on shutdown stops accepting and finishes the
//! requests in flight.
//!
//! `axum::serve` does all of this but the timeout: it sets no timer, so
//! hyper's header timeout never fires and a client that sends half a
//! request head keeps its connection (and a file descriptor) forever.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

/// Serves `app` (a router, or the tenants' dispatch) on `listener` until
/// `shutdown` completes; then stops accepting, lets each connection finish
/// the request it is in (idle ones close at once) and returns when all
/// have closed. `app` must always be ready (axum's routers are): requests
/// are handed to clones of it without asking.
pub async fn serve_app<S>(
    listener: TcpListener,
    app: S,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    // Told to close (the value is never read).
    let (stop, stopping) = watch::channel(());
    // Every connection holds a receiver; `closed()` waits for the last.
    let (open, connections) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON answers should not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            app.clone().call(request.map(Body::new))
        });
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let mut stopping = stopping.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                // A connection's errors (a client gone, a head too slow or
                // unreadable) end it; hyper has answered what it could.
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            drop(held);
        });
    }
    drop(listener);
    let _ = stop.send(());
    drop(connections);
    open.closed().await;
    Ok(())
}

/// After a failed accept: a connection reset before it was taken is
/// nothing; anything else (out of file descriptors, say) is logged, and
/// the loop pauses so as not to spin on it.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %error, "cannot accept a connection; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
