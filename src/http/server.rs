//! The HTTP/1.1 server loop under [`super::serve`] (and the benchmark's
//! bare endpoint, so that both run on the same loop): accepts connections,
//! serves each with hyper, answers 408 to a request head that does not
//! arrive in time and closes a connection left idle as long, and on
//! shutdown stops accepting and finishes the requests in flight.
//!
//! `axum::serve` does all of this but the timeout: it sets no timer, so
//! hyper's header timeout never fires and a client that sends half a
//! request head keeps its connection (and a file descriptor) forever.
//!
//! A request head hyper cannot read (not HTTP, a bad `Content-Length`, a
//! target over 64 KiB, too many headers) never reaches the router: hyper
//! answers it itself (400, 414 or 431) with an empty body.
//! [`Explained`] gives those answers the API's error body on their way out.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

use crate::model::{ErrorBody, ErrorResponse, FieldError};

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
    S: Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
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
        // Boxed so that the connection can be polled without its shutdown
        // and its socket taken back afterwards (`poll_without_shutdown`
        // wants futures that are `Unpin`): one allocation a request.
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            Box::pin(app.clone().call(request.map(Body::new)))
        });
        let mut connection = builder.serve_connection(TokioIo::new(Explained::new(tcp)), service);
        let mut stopping = stopping.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            let ended = tokio::select! {
                ended = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => ended,
                _ = stopping.changed() => {
                    Pin::new(&mut connection).graceful_shutdown();
                    std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)).await
                }
            };
            let parts = connection.into_parts();
            let mut io = parts.io.into_inner();
            match ended {
                // Done: close as hyper would have.
                Ok(()) => {
                    let _ = io.shutdown().await;
                }
                // Part of a request head came (hyper still holds it, unread)
                // and the rest did not in time: hyper closes without a word;
                // the client is told why. A connection that sat idle is
                // closed silently: a client may be sending a request on it
                // at that moment and would take a 408 for its answer.
                Err(e) if e.is_timeout() && !parts.read_buf.is_empty() => {
                    let answer = head_timeout_answer(header_timeout);
                    let told = async {
                        io.write_all(&answer).await?;
                        io.shutdown().await
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), told).await;
                }
                // Other errors (a client gone, a head unreadable, which
                // hyper has answered) end it.
                Err(_) => {}
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

/// A connection whose automatic answers from hyper get a body.
///
/// hyper writes such an answer as one head alone, `HTTP/1.1 400 Bad
/// Request\r\nconnection: close\r\ncontent-length: 0\r\n…\r\n\r\n`,
/// and closes the connection after it. A write that is exactly such a head
/// (a status of 400, 414 or 431, `content-length: 0`, no `content-type`:
/// every answer of the router has one and a body) is sent instead as
/// [`explained`] makes it; everything else passes through untouched.
struct Explained<T> {
    io: T,
    /// The answer being sent in place of hyper's, and how much of it is
    /// written.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<T> Explained<T> {
    fn new(io: T) -> Explained<T> {
        Explained {
            io,
            replacing: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Explained<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Explained<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match explained(buf) {
                Some(answer) => {
                    // At debug, as every answered request is: garbage sent
                    // fast must not flood the log.
                    tracing::debug!(
                        status = String::from_utf8_lossy(&buf[9..12]).as_ref(),
                        "refused a request head that could not be read"
                    );
                    this.replacing = Some((answer, 0));
                }
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
            }
        }
        // hyper offers the same bytes again until they are taken, so they
        // are taken only once the whole replacement is written.
        if let Some((answer, written)) = &mut this.replacing {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut this.io).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        this.replacing = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        match first {
            // Writing the first slice alone is a partial write hyper
            // continues from.
            Some(first) if self.replacing.is_some() || automatic(first).is_some() => {
                self.poll_write(cx, first)
            }
            _ => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What one of hyper's automatic answers refuses: the error's code, field
/// and message.
type Refused = (&'static str, &'static str, &'static str);

/// If `head` is one of hyper's automatic answers, what it refuses and where
/// its `content-length: 0` starts; otherwise `None`. Cheap for any other
/// write: most fail on the status.
fn automatic(head: &[u8]) -> Option<(Refused, usize)> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let refused = match status {
        b"400" => (
            "malformed_request",
            "request",
            "the request could not be read as HTTP/1.1: its request line or a header is \
             malformed (a Content-Length that is not a number, control characters in a \
             header's value)",
        ),
        b"414" => (
            "uri_too_long",
            "path",
            "the request's path and query string must be under 64 KiB together",
        ),
        b"431" => (
            "headers_too_large",
            "headers",
            "the request's headers must be at most 100, in under 400 KiB together",
        ),
        _ => return None,
    };
    const TYPED: &[u8] = b"\r\ncontent-type:";
    if !head.ends_with(b"\r\n\r\n") || head.windows(TYPED.len()).any(|w| w == TYPED) {
        return None;
    }
    let at = head.windows(EMPTY.len()).position(|w| w == EMPTY)?;
    Some((refused, at))
}

/// The header line hyper's automatic answers carry, with the line break
/// before it.
const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// If `head` is one of hyper's automatic answers, the same answer with the
/// API's error body (docs/API.md, "Errors"); otherwise `None`.
fn explained(head: &[u8]) -> Option<Vec<u8>> {
    let ((code, field, message), at) = automatic(head)?;
    let body = error_body(code, field, message)?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(&head[..at]);
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    answer.extend_from_slice(body.len().to_string().as_bytes());
    answer.extend_from_slice(&head[at + EMPTY.len() - 2..]);
    answer.extend_from_slice(&body);
    Some(answer)
}

/// The API's error body (docs/API.md, "Errors") for one field, as the
/// answers this loop writes itself carry it.
fn error_body(code: &str, field: &str, message: &str) -> Option<Vec<u8>> {
    serde_json::to_vec(&ErrorResponse {
        error: ErrorBody {
            code: code.into(),
            message: message.into(),
            details: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        },
    })
    .ok()
}

/// The 408 for a request head that did not arrive in full within
/// `timeout`, in the API's error shape; the connection closes after it.
fn head_timeout_answer(timeout: Duration) -> Vec<u8> {
    let message = format!(
        "the request's line and headers did not arrive within {} ms \
         (limits.header_timeout_ms); the connection is closed",
        timeout.as_millis()
    );
    let body = error_body("request_timeout", "request", &message).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

#[cfg(test)]
mod tests {
    use super::explained;

    const HYPERS: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 18:02:49 GMT\r\n\r\n";

    #[test]
    fn hypers_empty_answer_gets_the_error_body_and_keeps_its_headers() {
        let answer = String::from_utf8(explained(HYPERS).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Sun, 06 Dec 2026"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("content-length: 0"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "headers_too_large");
        assert_eq!(body["error"]["details"][0]["field"], "headers");
    }

    #[test]
    fn answers_with_a_body_or_other_statuses_pass_untouched() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(
            explained(ours).is_none(),
            "the router's answers carry a type"
        );
        let with_body = [HYPERS, b"{}"].concat();
        assert!(explained(&with_body).is_none(), "not a head alone");
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(explained(ok).is_none());
        let partial = &HYPERS[..HYPERS.len() - 3];
        assert!(explained(partial).is_none(), "not the whole head");
        assert!(explained(b"{\"x\":1}").is_none());
    }
}
