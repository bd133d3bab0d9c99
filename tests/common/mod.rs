//! What the process tests (crash.rs, cluster.rs, backup.rs, …) share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Starts the `gamify` binary with `args` on a free port, with `env` set and
/// no `DATABASE_URL` or `GAMIFY_CONFIG` inherited, logging JSON at `log`.
/// Waits for its "listening" line; returns the child, its base URL and the
/// log lines before that one. Its output keeps being drained afterwards, so
/// it never blocks on a full pipe.
#[allow(dead_code)]
pub fn start_gamify(
    args: &[&str],
    env: &[(&str, String)],
    log: &str,
) -> (Child, String, Vec<Value>) {
    let (child, base, before, _) = start_gamify_logged(args, env, log);
    (child, base, before)
}

/// [`start_gamify`], also keeping every JSON log line after "listening".
#[allow(dead_code)]
pub fn start_gamify_logged(
    args: &[&str],
    env: &[(&str, String)],
    log: &str,
) -> (Child, String, Vec<Value>, Arc<Mutex<Vec<Value>>>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gamify"));
    command.args(args);
    start_until_listening(command, env, log)
}

/// [`start_gamify`] with a soft limit of `open_files` open files, as from a
/// shell whose `ulimit -Sn` is that low.
#[allow(dead_code)]
pub fn start_gamify_with_open_files(
    args: &[&str],
    env: &[(&str, String)],
    log: &str,
    open_files: u64,
) -> (Child, String, Vec<Value>) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -Sn {open_files} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_gamify"))
        .args(args);
    let (child, base, before, _) = start_until_listening(command, env, log);
    (child, base, before)
}

/// Starts `command` (the binary, or a shell that runs it) as
/// [`start_gamify_logged`] describes.
fn start_until_listening(
    mut command: Command,
    env: &[(&str, String)],
    log: &str,
) -> (Child, String, Vec<Value>, Arc<Mutex<Vec<Value>>>) {
    command
        .env_remove("DATABASE_URL")
        .env_remove("GAMIFY_CONFIG")
        .env_remove("GAMIFY_API_KEY")
        .env_remove("GAMIFY_ADMIN_TOKEN")
        .env_remove("GAMIFY_TENANT")
        .env_remove("REDIS_URL")
        .env_remove("GAMIFY_NATS_URL")
        .env("GAMIFY_ADDR", "127.0.0.1:0")
        .env("GAMIFY_LOG_FORMAT", "json")
        .env("GAMIFY_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the gamify binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut before = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("gamify exited before listening")
            .unwrap();
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["message"] == "listening" {
            break entry["addr"].as_str().unwrap().to_owned();
        }
        before.push(entry);
    };
    let after: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = after.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                keep.lock().unwrap().push(entry);
            }
        }
    });
    (child, format!("http://{addr}"), before, after)
}

/// Runs `gamify ARGS` to completion with `env` set (and no `DATABASE_URL`,
/// `GAMIFY_CONFIG` or `GAMIFY_PG_SCHEMA` inherited), logging warnings only.
/// Returns whether it succeeded, and its stdout and stderr together.
#[allow(dead_code)]
pub fn run_gamify(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let (ok, stdout, stderr) =
        run_gamify_apart(args, &[&[("GAMIFY_LOG", "warn".into())], env].concat());
    (ok, stdout + &stderr)
}

/// As [`run_gamify`], at the log level `env` sets (info by default), with
/// stdout and stderr apart.
#[allow(dead_code)]
pub fn run_gamify_apart(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gamify"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("GAMIFY_CONFIG")
        .env_remove("GAMIFY_API_KEY")
        .env_remove("GAMIFY_ADMIN_TOKEN")
        .env_remove("GAMIFY_TENANT")
        .env_remove("GAMIFY_PG_SCHEMA")
        .env_remove("GAMIFY_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("the gamify binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GETs `url` and reads its JSON body.
#[allow(dead_code)]
pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    json_of(client.get(url)).await
}

/// Sends `request` and reads its JSON body.
#[allow(dead_code)]
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// A client that sends `key` as its bearer token on every request and
/// gives up on a request after `timeout`.
#[allow(dead_code)]
pub fn keyed_client(key: &str, timeout: std::time::Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// The settings of a `gamify serve` node on the scratch schema `schema` of
/// the PostgreSQL at `url`, with `key` as its API key and a small pool
/// (tests start several nodes on one database).
#[allow(dead_code)]
pub fn postgres_node_env(
    url: &str,
    schema: &gamify_store::postgres::scratch::ScratchSchema,
    key: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url.to_owned()),
        ("GAMIFY_PG_SCHEMA", schema.name().to_owned()),
        ("GAMIFY_PG_POOL_SIZE", "4".to_owned()),
        ("GAMIFY_API_KEY", key.to_owned()),
    ]
}
