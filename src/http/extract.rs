//! Extractors whose failures speak the API's error shape (axum's own answer
//! in plain text) and name the offending field, and JSON answers.

use axum::body::{Body, Bytes};
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::engine::Engine;

/// A JSON body: a request's, or an answer's.
pub struct ApiJson<T>(pub T);

/// Room an answer starts with: an event's is about 600 bytes. (axum's `Json`
/// starts at 128 and grows a `BytesMut` through `io::Write`; writing into a
/// `Vec` this size took 3.5% off an HTTP worker's instructions per event.)
const ANSWER_CAPACITY: usize = 1024;

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(ANSWER_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => json_response(StatusCode::OK, body),
            // Only a map with keys that are not strings fails, and no answer
            // has one; the error shape is kept even so.
            Err(e) => {
                tracing::error!(error = %e, "an answer could not be written as JSON");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":{"code":"internal","message":"internal error","details":[]}}"#,
                )
            }
        }
    }
}

/// An answer of JSON already written, with its content type.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    (status, json, body.into()).into_response()
}

/// A router's state that knows the largest body a request may have, and
/// how long it may take to arrive.
pub trait BodyLimit {
    /// The largest request body, in bytes.
    fn max_body_bytes(&self) -> usize;
    /// How long the body may take to arrive once the head has (the header
    /// timeout's length again: a body that trickles in holds a connection
    /// as a stalled head would).
    fn body_timeout(&self) -> std::time::Duration;
}

impl BodyLimit for Engine {
    fn max_body_bytes(&self) -> usize {
        self.limits().max_body_bytes
    }

    fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.limits().header_timeout_ms)
    }
}

impl<S: BodyLimit + Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let ApiBody(bytes) = ApiBody::from_request(req, state).await?;
        // Every route's body is an object (`["u1", "finance", …]` is not).
        if !crate::model::starts_as_object(&bytes) {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    Ok(_) => ApiError::invalid("body", "the body must be a JSON object"),
                    Err(e) => ApiError::MalformedJson(format!("the body is not valid JSON: {e}")),
                },
            );
        }
        // Tracking the path costs an allocation per field, so it is done
        // only to explain a body that failed (parsing is deterministic: the
        // second attempt fails the same way).
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(value));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // A data error can come before a syntax error further on
            // (`{} trailing`); only a well-formed body is a 422. In a
            // well-formed body a "syntax" error is a value this parser
            // cannot hold (a number out of range: `1e400`), so it too
            // names its field.
            let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
            match inner.classify() {
                serde_json::error::Category::Data | serde_json::error::Category::Syntax
                    if well_formed =>
                {
                    let message = plain_type_names(inner.to_string());
                    // The answer's message puts the field first when the
                    // parser's own words do not name it (`error::shown`).
                    ApiError::invalid(field_of(&path, &message, "body"), message)
                }
                _ => ApiError::MalformedJson(format!("the body is not valid JSON: {inner}")),
            }
        })?;
        // Trailing bytes after the value are malformed JSON too.
        de.end()
            .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
        Ok(ApiJson(value))
    }
}

/// A request's body as it came (a rules file's TOML), read within the
/// body limit: over it, a 413 in the API's error shape (axum's own answer
/// is plain text).
pub struct ApiBody(pub Bytes);

impl<S: BodyLimit + Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A compressed body would otherwise be read as its compressed bytes
        // and refused as malformed, which would send its sender looking in
        // the wrong place.
        if req
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be sent uncompressed: no Content-Encoding is supported",
            ));
        }
        // The timer is armed only if the body is not all there at once
        // (a small JSON body usually is).
        let timeout = state.body_timeout();
        tokio::time::timeout(timeout, Bytes::from_request(req, state))
            .await
            .map_err(|_| ApiError::BodyTimeout(timeout))?
            .map(ApiBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(state.max_body_bytes())
                } else {
                    ApiError::MalformedJson("the body could not be read".into())
                }
            })
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        if escapes_control(query)
            && let Some((key, _)) = form_urlencoded::parse(query.as_bytes())
                .find(|(_, value)| value.chars().any(char::is_control))
        {
            return Err(control_characters(&key));
        }
        // As for a body: the path is tracked only to explain a failure.
        if let Ok(value) = serde_urlencoded::from_str(query) {
            return Ok(ApiQuery(value));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = plain_number_error(e.into_inner().to_string());
                let field = field_of(&path, &message, "query");
                ApiError::invalid(field.clone(), format!("{field} (query string): {message}"))
            })
    }
}

/// serde's messages name Rust's types ("expected f64", "expected u32");
/// a client is told what JSON would do instead.
fn plain_type_names(message: String) -> String {
    const TYPES: [(&str, &str); 6] = [
        ("expected f64", "expected a number"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "expected u64",
            "expected a whole number from 0 to 18446744073709551615",
        ),
        (
            "expected i64",
            "expected a whole number from -9223372036854775808 to 9223372036854775807",
        ),
    ];
    for (rust, plain) in TYPES {
        // Whole words only: "expected u32" but not "expected u320".
        if let Some(at) = message.find(rust) {
            let after = &message[at + rust.len()..];
            if !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                return format!("{}{plain}{after}", &message[..at]);
            }
        }
    }
    message
}

/// The standard library's words for a number it could not read, which
/// say nothing to a client ("invalid digit found in string"), in plain
/// terms; any other message as it is.
fn plain_number_error(message: String) -> String {
    let plain = match message.as_str() {
        "invalid digit found in string" => "expected a whole number, such as 10",
        "cannot parse integer from empty string" => "expected a whole number, got nothing",
        "number too large to fit in target type" => {
            "expected a whole number, and this one is too large"
        }
        "number too small to fit in target type" => {
            "expected a whole number, and this one is too small"
        }
        _ => return message,
    };
    plain.to_owned()
}

/// A path parameter. axum's `Path` answers a parameter it cannot read (one
/// that is not UTF-8 once percent-decoded: `/balance/%FF`) in plain text;
/// this answers in the API's error shape, naming the parameter.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if escapes_control(parts.uri.path()) {
            let raw = RawPathParams::from_request_parts(parts, state).await;
            let key = raw.as_ref().ok().and_then(|raw| {
                raw.iter()
                    .find(|(_, value)| value.chars().any(char::is_control))
                    .map(|(key, _)| key.to_owned())
            });
            if let Some(key) = key {
                return Err(control_characters(&key));
            }
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let (field, message) = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => (
                        key.as_str(),
                        format!("{key} is not UTF-8 once percent-decoded"),
                    ),
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => {
                        (key.as_str(), format!("{key}: {}", e.body_text()))
                    }
                    _ => ("path", format!("path: {}", e.body_text())),
                };
                Err(ApiError::invalid(field, message))
            }
            // Only a route without the parameters its handler reads (a
            // programming error, which the route tests would show).
            Err(other) => Err(ApiError::invalid("path", other.body_text())),
        }
    }
}

/// Whether a raw path or query string holds a percent-escaped control
/// character (`%00`–`%1F`, `%7F`): the only way one can reach a parameter,
/// since the request line itself cannot carry one. A cheap scan, so that
/// the common request pays nothing more.
fn escapes_control(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && ((matches!(w[1], b'0' | b'1') && w[2].is_ascii_hexdigit())
                || (w[1] == b'7' && matches!(w[2], b'f' | b'F')))
    })
}

/// A parameter with a control character in it: no id, cursor or name has
/// one (and PostgreSQL cannot even compare text holding a NUL).
fn control_characters(key: &str) -> ApiError {
    ApiError::invalid(key, format!("{key} must not contain control characters"))
}

/// The field an error concerns: the path serde was at, or, for a missing
/// or repeated field (reported at the parent), the name inside the message;
/// `whole` (`body`, `query`) when it concerns no one field.
fn field_of(path: &str, message: &str, whole: &str) -> String {
    let named = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (named, path) {
        (Some(name), ".") => name.to_owned(),
        (Some(name), _) => format!("{path}.{name}"),
        (None, ".") => whole.to_owned(),
        (None, _) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_json_terms_as_whole_words_only() {
        let plain = |m: &str| plain_type_names(m.to_owned());
        assert_eq!(
            plain("invalid type: boolean `true`, expected f64 at line 1 column 62"),
            "invalid type: boolean `true`, expected a number at line 1 column 62"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(plain("expected u320"), "expected u320");
        assert_eq!(plain("expected a string"), "expected a string");
    }
}
