//! Gamify: a habit-economy engine. Services tell it what their users did;
//! it answers with points weighted by category, daily streaks with bonuses,
//! levels, achievements and leaderboards.
//!
//! Use it as a server (the `gamify` binary) or embed it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gamify::{Engine, EventRequest, Rules, Storage};
//!
//! let engine = Engine::open(&Storage::Sqlite("data/gamify.db".into()), Rules::default()).await?;
//! let (event, _replayed) = engine
//!     .record_event(EventRequest::new("user_123", "finance", "paid_invoice", 2.0), None)
//!     .await?;
//! assert_eq!(event.points, 4.0);
//! # Ok(()) }
//! ```
//!
//! Map of the crate:
//! - [`engine`]: [`Engine`], what embedders and the HTTP layer call.
//! - [`model`]: the JSON requests and responses (the `gamify-api` crate's,
//!   re-exported), and rendering records into them.
//! - [`analytics`]: the admin dashboard's numbers, and their JSON.
//! - [`boards`]: leaderboards: which board a request names, and their JSON.
//! - [`wallet`]: the points economy at the engine's edge: spending,
//!   rewards, redemptions, the ledger, and their JSON.
//! - [`http`]: routes, extractors, the error shape, the OpenAPI document.
//! - [`erasure`]: erasing a person, and its JSON.
//! - [`export`]: all the data out, as NDJSON and as the brief's two files.
//! - [`import`]: an export back in, proven equal to the file.
//! - [`verify`]: every invariant checked (`gamify verify`).
//! - [`bus`]: events from NATS JetStream, as an alternative to HTTP.
//! - [`webhooks`]: webhook subscriptions, their JSON, and the worker that
//!   sends the outbox signed, with retries.
//! - [`metrics`]: counters for `GET /metrics` (Prometheus).
//! - [`config`]: defaults, file and environment.
//! - [`clock`]: where "now" comes from (a manual clock for tests).
//! - `src/main.rs`: the `gamify` command.
//!
//! The rules themselves live in the `gamify-core` crate and storage in
//! `gamify-store`.

pub mod analytics;
pub mod auth;
pub mod boards;
pub mod bus;
pub mod clock;
pub mod config;
pub mod engine;
pub mod erasure;
pub mod export;
pub mod http;
pub mod import;
pub mod metrics;
pub mod model;
pub mod rules;
pub mod tenants;
pub mod verify;
pub mod wallet;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, EngineError, Storage};
pub use gamify_core::Rules;
pub use model::EventRequest;
