//! HTTP tests of every endpoint and error path, against a real server on a
//! real socket with a fresh SQLite database per test.

mod analytics;
mod auth;
mod boards;
#[path = "../common/mod.rs"]
mod common;
mod economy;
mod erasure;
mod errors;
mod events;
mod export;
mod fuzz;
mod helpers;
mod limits;
mod metrics;
mod operations;
mod rules;
mod simulate;
mod streaks;
mod tenants;
mod ui;
mod users;
mod webhooks;
