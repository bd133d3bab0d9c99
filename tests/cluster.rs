//! Several real `gamify serve` processes on one PostgreSQL database: three
//! nodes driven at once, a node killed with `kill -9` under load, the
//! database itself stopped and started under load, and a node holding the
//! exclusive lease (`GAMIFY_PG_EXCLUSIVE`) beside one that does not.
//!
//! Every test checks the same promise afterwards: each acknowledged event is
//! stored exactly once, no idempotency key produced two events, and every
//! user's balance and every event's points equal a sequential replay of the
//! user's events through the rules.
//!
//! They need PostgreSQL: `GAMIFY_TEST_DATABASE_URL` (default: the local
//! server), each test in a scratch schema; the restart test runs a private
//! server of its own. Without one they skip with a printed reason, unless
//! `GAMIFY_REQUIRE_POSTGRES=1` (as in `.ci/run`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gamify::model::{parse_rfc3339_ms, rfc3339_ms};
use gamify_core::{Category, Points, RuleSet, Value as Amount};
use gamify_store::postgres::scratch::{REQUIRE_VAR, ScratchSchema, test_database};
use gamify_store::scoring::advance;
use serde_json::{Value, json};

mod common;
use common::{json_of, start_gamify};

const DAY: i64 = 86_400_000;

/// A `gamify serve` process, killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `gamify serve --migrate` on a free port with `env`.
fn start_node(env: &[(&str, String)]) -> Node {
    let (child, base, _) = start_gamify(&["serve", "--migrate"], env, "warn,gamify=info");
    Node { child, base }
}

fn pg_env(schema: &ScratchSchema, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url.to_owned()),
        ("GAMIFY_PG_SCHEMA", schema.name().to_owned()),
        ("GAMIFY_PG_POOL_SIZE", "8".to_owned()),
    ]
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One request's body and the key it is sent with.
#[derive(Clone)]
struct Request {
    key: String,
    body: Value,
}

impl Request {
    fn new(key: String, user: &str, category: &str, value: f64, days_ago: i64) -> Request {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        Request {
            key,
            body: json!({"user_id": user, "category": category, "action": "cluster_test",
                         "value": value, "occurred_at": rfc3339_ms(now - days_ago * DAY)}),
        }
    }

    fn user(&self) -> &str {
        self.body["user_id"].as_str().unwrap()
    }
}

/// What a node answered: the event, and whether it was a replay.
enum Sent {
    Acked { id: String, replayed: bool },
    Unavailable,
    Failed,
}

async fn send(client: &reqwest::Client, base: &str, req: &Request) -> Sent {
    let Ok(r) = client
        .post(format!("{base}/api/v2/gamify/event"))
        .header("Idempotency-Key", &req.key)
        .json(&req.body)
        .send()
        .await
    else {
        return Sent::Failed;
    };
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let Ok(body) = r.json::<Value>().await else {
        return Sent::Failed;
    };
    match status {
        200 => Sent::Acked {
            id: body["id"].as_str().unwrap().to_owned(),
            replayed,
        },
        503 => {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            Sent::Unavailable
        }
        other => panic!("unexpected {other}: {body}"),
    }
}

/// Every event of `user`, newest first, following the cursor.
async fn all_events(client: &reqwest::Client, base: &str, user: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut url = format!("{base}/api/v2/gamify/events/{user}?limit=100");
    loop {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let next = r
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = r.json().await.unwrap();
        all.extend(page);
        match next {
            Some(cursor) => {
                url = format!("{base}/api/v2/gamify/events/{user}?limit=100&before={cursor}")
            }
            None => return all,
        }
    }
}

fn milli(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1000.0).round() as i64
}

/// Checks, for every user, that the acknowledged events are stored exactly
/// once and nothing else is, and that a sequential replay of them through
/// the rules gives each event's points and the user's balance.
async fn check_against_replay(base: &str, acked: &HashMap<String, (Request, String)>) {
    let client = client();
    let mut by_user: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (req, id) in acked.values() {
        by_user.entry(req.user()).or_default().insert(id.as_str());
    }
    for (user, ids) in &by_user {
        let mut events = all_events(&client, base, user).await;
        let stored: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        let unique: HashSet<&str> = stored.iter().copied().collect();
        assert_eq!(
            unique.len(),
            stored.len(),
            "{user}: an event is listed twice"
        );
        assert_eq!(
            &unique, ids,
            "{user}: stored events differ from acknowledged ones"
        );

        // Arrival order: lifetime points grow with every event.
        events.sort_by_key(|e| milli(&e["lifetime_points"]));
        let mut state = None;
        for e in &events {
            let (after, scored) = advance(
                state.take(),
                Category::named(e["category"].as_str().unwrap()).unwrap(),
                Amount::from_milli(milli(&e["value"])),
                parse_rfc3339_ms(e["occurred_at"].as_str().unwrap()).unwrap(),
                &RuleSet::default(),
            )
            .unwrap();
            assert_eq!(
                Points::from_milli(milli(&e["points"])),
                scored.points,
                "{user}: points of {}",
                e["id"]
            );
            assert_eq!(
                milli(&e["total_points"]),
                after.state.total.milli(),
                "{user}: balance after {}",
                e["id"]
            );
            state = Some(after);
        }
        let state = state.unwrap().state;
        let balance: Value =
            json_of(client.get(format!("{base}/api/v2/gamify/balance/{user}"))).await;
        assert_eq!(
            milli(&balance["total_points"]),
            state.total.milli(),
            "{user}"
        );
        assert_eq!(
            milli(&balance["lifetime_points"]),
            state.lifetime.milli(),
            "{user}"
        );
        assert_eq!(balance["best_streak"], state.best_streak, "{user}");
        let achievements: Vec<&str> = state.achievements.iter().map(|a| a.as_str()).collect();
        assert_eq!(balance["achievements"], json!(achievements), "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_agree_with_a_sequential_replay() {
    let Some(url) = test_database("three_nodes_on_one_database").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = pg_env(&schema, &url);
    // All three migrate at once: they take turns on the advisory lock.
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let env = env.clone();
            std::thread::spawn(move || start_node(&env))
        })
        .collect();
    let nodes: Vec<Node> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    let acked = Arc::new(Mutex::new(HashMap::<String, (Request, String)>::new()));
    let mut workers = Vec::new();
    for worker in 0..24usize {
        let (bases, acked, client) = (bases.clone(), acked.clone(), client());
        workers.push(tokio::spawn(async move {
            for i in 0..40usize {
                let category =
                    ["finance", "learning", "health", "productivity", "social"][(worker + i) % 5];
                // A quarter of the traffic goes to one user from every node;
                // the rest to 20 users whose ids every node sees.
                let user = if i % 4 == 0 {
                    "hot".to_owned()
                } else {
                    format!("user_{}", (worker * 5 + i) % 20)
                };
                let req = Request::new(
                    format!("k-{worker}-{i}"),
                    &user,
                    category,
                    1.0 + (i % 7) as f64 * 0.25,
                    ((worker + i) % 6) as i64,
                );
                let node = (worker + i) % 3;
                let Sent::Acked { id, replayed } = send(&client, &bases[node], &req).await else {
                    panic!("node {node} refused {}", req.key);
                };
                assert!(!replayed, "{} was new", req.key);
                // Every fifth request is retried on another node, and every
                // seventh on the two others at the same time.
                if i % 5 == 0 {
                    let Sent::Acked {
                        id: again,
                        replayed,
                    } = send(&client, &bases[(node + 1) % 3], &req).await
                    else {
                        panic!("retry of {} refused", req.key);
                    };
                    assert!(
                        replayed && again == id,
                        "retry of {} on another node",
                        req.key
                    );
                }
                if i % 7 == 0 {
                    let (a, b) = tokio::join!(
                        send(&client, &bases[(node + 1) % 3], &req),
                        send(&client, &bases[(node + 2) % 3], &req)
                    );
                    for s in [a, b] {
                        let Sent::Acked {
                            id: again,
                            replayed,
                        } = s
                        else {
                            panic!("concurrent retry of {} refused", req.key);
                        };
                        assert!(replayed && again == id, "concurrent retry of {}", req.key);
                    }
                }
                acked.lock().unwrap().insert(req.key.clone(), (req, id));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert_eq!(acked.len(), 24 * 40);
    check_against_replay(&bases[2], &acked).await;
    drop(nodes);
}

/// Sends `req` to the nodes in turn, starting at `first`, until one
/// acknowledges it or `give_up` is set; a dead or unavailable node is
/// skipped. Returns the event id, or `None` if it gave up.
async fn send_until_acked(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    req: &Request,
    give_up: &AtomicBool,
) -> Option<String> {
    for attempt in 0.. {
        if give_up.load(Ordering::Relaxed) {
            return None;
        }
        match send(client, &bases[(first + attempt) % bases.len()], req).await {
            Sent::Acked { id, .. } => return Some(id),
            Sent::Unavailable | Sent::Failed => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let Some(url) = test_database("a_node_killed_under_load").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = pg_env(&schema, &url);
    let mut nodes: Vec<Node> = (0..3).map(|_| start_node(&env)).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    let acked = Arc::new(Mutex::new(HashMap::<String, (Request, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let never = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..12usize {
        let (bases, acked, count, stop, never, client) = (
            bases.clone(),
            acked.clone(),
            count.clone(),
            stop.clone(),
            never.clone(),
            client(),
        );
        workers.push(tokio::spawn(async move {
            for i in 0usize.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = Request::new(
                    format!("kill-{worker}-{i}"),
                    &format!("user_{}", (worker * 3 + i) % 16),
                    ["finance", "health", "learning"][i % 3],
                    1.5,
                    (i % 3) as i64,
                );
                // Like a client behind a load balancer: a request that fails
                // on one node is retried, with its key, on the next.
                let id = send_until_acked(&client, &bases, worker + i, &req, &never)
                    .await
                    .unwrap();
                acked.lock().unwrap().insert(req.key.clone(), (req, id));
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while count.load(Ordering::Relaxed) < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[0].child.kill().unwrap(); // SIGKILL, with requests in flight
    nodes[0].child.wait().unwrap();
    let at_kill = count.load(Ordering::Relaxed);
    while count.load(Ordering::Relaxed) < at_kill + 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "{} events acknowledged, {at_kill} before the kill",
        acked.len()
    );
    check_against_replay(&bases[1], &acked).await;
}

/// A PostgreSQL server of the test's own, which it may stop and start.
struct PrivateServer {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PrivateServer {
    /// `initdb` and start one as the `postgres` user, or say why not.
    fn start() -> Result<PrivateServer, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .filter_map(|d| d.ok().map(|d| d.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .ok_or("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let data = tempfile::Builder::new()
            .prefix("gamify-pg-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        run(
            "chown",
            &["postgres:postgres", &data.path().display().to_string()],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pgdata = data.path().join("pgdata").display().to_string();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &pgdata,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
        let server = PrivateServer { bin, data, port };
        server.pg_ctl("start")?;
        Ok(server)
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let pgdata = self.data.path().join("pgdata").display().to_string();
        let log = self.data.path().join("log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.path().display()
        );
        let args: Vec<&str> = match action {
            "start" => vec!["start", "-w", "-D", &pgdata, "-l", &log, "-o", &options],
            // Immediate: the server dies without a clean shutdown, as in a crash.
            _ => vec!["stop", "-w", "-D", &pgdata, "-m", "immediate"],
        };
        as_postgres(&self.bin.join("pg_ctl"), &args)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn as_postgres(program: &Path, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["-u", "postgres", "--", program.to_str().unwrap()];
    all.extend_from_slice(args);
    run("runuser", &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarted_under_load_fails_fast_and_recovers_alone() {
    let server = match PrivateServer::start() {
        Ok(s) => s,
        Err(why) if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            panic!("a private PostgreSQL server is required ({REQUIRE_VAR}=1): {why}")
        }
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the_database_restarted_under_load: cannot run a private PostgreSQL server ({why})"
            );
            return;
        }
    };
    // 1 s to get a connection, 2 s per statement: a request may take 3 s.
    let bound = Duration::from_millis(3000 + 1500);
    let node = start_node(&[
        ("DATABASE_URL", server.url()),
        ("GAMIFY_PG_POOL_SIZE", "8".to_owned()),
        ("GAMIFY_PG_CONNECT_TIMEOUT_MS", "1000".to_owned()),
        ("GAMIFY_PG_STATEMENT_TIMEOUT_MS", "2000".to_owned()),
    ]);
    let base = node.base.clone();

    let acked = Arc::new(Mutex::new(HashMap::<String, (Request, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8usize {
        let (base, acked, count, unavailable, slowest, stop, client) = (
            base.clone(),
            acked.clone(),
            count.clone(),
            unavailable.clone(),
            slowest.clone(),
            stop.clone(),
            client(),
        );
        workers.push(tokio::spawn(async move {
            for i in 0usize.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = Request::new(
                    format!("restart-{worker}-{i}"),
                    &format!("user_{}", (worker + i) % 10),
                    "learning",
                    2.0,
                    0,
                );
                // Retry with the same key until acknowledged: the outcome of
                // a request that failed is unknown until then.
                loop {
                    let started = Instant::now();
                    let sent = send(&client, &base, &req).await;
                    let took = started.elapsed();
                    match sent {
                        Sent::Acked { id, .. } => {
                            acked.lock().unwrap().insert(req.key.clone(), (req, id));
                            count.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Sent::Unavailable => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                            {
                                let mut s = slowest.lock().unwrap();
                                *s = (*s).max(took);
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Sent::Failed => panic!("the node itself failed"),
                    }
                }
            }
        }));
    }
    let client = client();
    let ready = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    while count.load(Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.pg_ctl("stop").unwrap();
    let at_stop = count.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    assert_eq!(
        ready(client.clone(), base.clone()).await,
        503,
        "/readyz while down"
    );
    assert!(
        started.elapsed() < bound,
        "/readyz took {:?}",
        started.elapsed()
    );
    assert!(
        count.load(Ordering::Relaxed) <= at_stop + 8 * 2,
        "nothing is acknowledged while the database is down"
    );
    assert!(
        unavailable.load(Ordering::Relaxed) > 0,
        "requests were refused"
    );

    server.pg_ctl("start").unwrap();
    let back = Instant::now();
    while ready(client.clone(), base.clone()).await != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "the node did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at_recovery = count.load(Ordering::Relaxed);
    while count.load(Ordering::Relaxed) < at_recovery + 300 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "no progress after recovery"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let slowest = *slowest.lock().unwrap();
    eprintln!(
        "{} acknowledged ({at_stop} before the stop); {} answers 503, the slowest in {slowest:?}; recovered in {:?}",
        count.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed),
        back.elapsed()
    );
    assert!(slowest < bound, "a 503 took {slowest:?}");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    check_against_replay(&base, &acked).await;
    drop(node);
}

/// The balance's total points, as the node at `base` answers it.
async fn total_points(client: &reqwest::Client, base: &str, user: &str) -> f64 {
    let body = json_of(client.get(format!("{base}/api/v2/gamify/balance/{user}"))).await;
    body["total_points"].as_f64().unwrap()
}

#[tokio::test]
async fn an_exclusive_node_keeps_other_nodes_writes_out_until_it_stops() {
    let Some(url) = test_database("an_exclusive_node_keeps_others_out").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let mut env = pg_env(&schema, &url);
    env.push(("GAMIFY_PG_EXCLUSIVE", "true".to_owned()));
    let mut exclusive = start_node(&env);
    env.pop();
    let other = start_node(&env);
    let client = client();

    // The exclusive node answers balances from memory, kept in step with
    // its own writes (1.0 finance: 2 points an event).
    for n in 1..=2 {
        let req = Request::new(format!("ex-{n}"), "ada", "finance", 1.0, 0);
        assert!(matches!(
            send(&client, &exclusive.base, &req).await,
            Sent::Acked { .. }
        ));
        assert_eq!(
            total_points(&client, &exclusive.base, "ada").await,
            2.0 * n as f64
        );
        assert_eq!(
            total_points(&client, &exclusive.base, "ada").await,
            2.0 * n as f64
        );
    }

    // The other node reads, but its writes are refused with why.
    assert_eq!(total_points(&client, &other.base, "ada").await, 4.0);
    let refused = client
        .post(format!("{}/api/v2/gamify/event", other.base))
        .json(&Request::new("other-1".into(), "ada", "finance", 1.0, 0).body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds this database exclusively"),
        "{body}"
    );

    // A graceful stop releases the lease: the other node writes at once,
    // well before the lease (5 s) would have run out.
    let pid = exclusive.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    exclusive.child.wait().unwrap();
    let stopped = Instant::now();
    let req = Request::new("other-2".into(), "ada", "finance", 1.0, 0);
    loop {
        match send(&client, &other.base, &req).await {
            Sent::Acked { .. } => break,
            _ if stopped.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => panic!("the other node still cannot write 10 s after the exclusive node stopped"),
        }
    }
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "writes waited {:?}: the lease was not released",
        stopped.elapsed()
    );
    assert_eq!(total_points(&client, &other.base, "ada").await, 6.0);
}
