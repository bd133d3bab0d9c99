//! What `GET /metrics` tells Prometheus: requests and their latencies by
//! route, events and points by category, achievements unlocked, level-ups,
//! idempotent replays, webhook attempts and the outbox's depth, and the
//! store's own gauges (PostgreSQL's pool, the
//! Redis leaderboards). Counted in memory by this process since it started,
//! as Prometheus expects of counters; nothing here names a user.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use gamify_core::{AchievementId, Category, brief_catalogue};
use gamify_store::{DeliveryStatus, EventRecord, Gauge};

/// Upper bounds (seconds) of the request-latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Requests of one method and status on one route.
#[derive(Default)]
struct Series {
    count: u64,
    sum_micros: u64,
    /// Requests at or under each bound of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
}

/// One route's requests, by method (see [`method_label`]) and status.
type RouteSeries = HashMap<(&'static str, u16), Series>;

/// The process's counters. Cheap to update from any thread.
pub struct Metrics {
    /// Route template → (method, status) → series.
    http: Mutex<HashMap<String, RouteSeries>>,
    /// Per category: events, and their points in thousandths. The brief's
    /// categories are always listed; others from their first event.
    categories: Mutex<BTreeMap<Category, (u64, u64)>>,
    /// Unlocks per achievement, likewise.
    achievements: Mutex<BTreeMap<AchievementId, u64>>,
    level_ups: AtomicU64,
    replays: AtomicU64,
    /// Webhook attempts by the status they left: see [`OUTCOMES`].
    webhook_attempts: [AtomicU64; OUTCOMES.len()],
    /// Pending deliveries at the worker's last look; `u64::MAX`: not yet.
    outbox_pending: AtomicU64,
    /// Finished deliveries deleted from the log.
    deliveries_pruned: AtomicU64,
}

/// The statuses a webhook attempt leaves, and their metric labels.
const OUTCOMES: [(DeliveryStatus, &str); 4] = [
    (DeliveryStatus::Delivered, "delivered"),
    (DeliveryStatus::Pending, "retry"),
    (DeliveryStatus::Failed, "failed"),
    (DeliveryStatus::Cancelled, "cancelled"),
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http: Mutex::default(),
            categories: Mutex::new(Category::BRIEF.iter().map(|c| (*c, (0, 0))).collect()),
            achievements: Mutex::new(brief_catalogue().iter().map(|a| (a.id, 0)).collect()),
            level_ups: AtomicU64::new(0),
            replays: AtomicU64::new(0),
            webhook_attempts: std::array::from_fn(|_| AtomicU64::new(0)),
            outbox_pending: AtomicU64::new(u64::MAX),
            deliveries_pruned: AtomicU64::new(0),
        }
    }
}

/// A method as a label: HTTP's own methods by name, any other as `OTHER`,
/// so that a client inventing methods cannot add series without end.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", |known| known.as_str())
}

impl Metrics {
    /// Counts a request answered: by route template (never the raw path,
    /// which holds user ids), method and status.
    pub fn request(&self, method: &Method, route: &str, status: u16, micros: u64) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let per_route = match http.get_mut(route) {
            Some(r) => r,
            None => http.entry(route.to_owned()).or_default(),
        };
        let series = per_route.entry((method_label(method), status)).or_default();
        series.count += 1;
        series.sum_micros += micros;
        let seconds = micros as f64 / 1e6;
        for (bucket, bound) in series.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Counts a newly recorded event (not a replay): its category, its
    /// points with the bonuses it unlocked, its achievements, a level-up.
    pub fn event(&self, event: &EventRecord, level_up: bool) {
        let bonuses: i64 = event.unlocked.iter().map(|(_, b)| b.milli()).sum();
        let points = (event.points.milli() + bonuses).max(0) as u64;
        {
            let mut categories = self.categories.lock().unwrap_or_else(|e| e.into_inner());
            let (n, milli) = categories.entry(event.category).or_default();
            *n += 1;
            // Rules with large values and weights can earn more in total
            // than a u64 of thousandths holds; the counter then stays at its
            // maximum rather than wrap (or panic in a debug build).
            *milli = milli.saturating_add(points);
        }
        if !event.unlocked.is_empty() {
            let mut achievements = self.achievements.lock().unwrap_or_else(|e| e.into_inner());
            for (achievement, _) in &event.unlocked {
                *achievements.entry(*achievement).or_default() += 1;
            }
        }
        if level_up {
            self.level_ups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request answered with the event its idempotency key
    /// recorded before.
    pub fn replay(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a webhook attempt by the status it left the delivery in.
    pub fn webhook_attempt(&self, status: DeliveryStatus) {
        if let Some(i) = OUTCOMES.iter().position(|(s, _)| *s == status) {
            self.webhook_attempts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts finished deliveries deleted from the log.
    pub fn deliveries_pruned(&self, n: u64) {
        self.deliveries_pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// Notes the outbox's depth, as the delivery worker last read it.
    pub fn outbox_pending(&self, pending: u64) {
        self.outbox_pending.store(pending, Ordering::Relaxed);
    }

    /// Everything in Prometheus's text format (version 0.0.4), with the
    /// store's `gauges` at the end.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out, gauges);
        out
    }

    fn render_into(&self, out: &mut String, gauges: &[Gauge]) -> std::fmt::Result {
        family(
            out,
            "gamify_http_requests_total",
            "Requests answered, by route template, method and status.",
            "counter",
        )?;
        let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes: Vec<_> = http.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        fn sorted(per: &RouteSeries) -> Vec<(&'static str, u16, &Series)> {
            let mut v: Vec<_> = per
                .iter()
                .map(|((m, s), series)| (*m, *s, series))
                .collect();
            v.sort_by_key(|(m, s, _)| (*m, *s));
            v
        }
        for (route, per) in &routes {
            for (method, status, series) in sorted(per) {
                writeln!(
                    out,
                    "gamify_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                    escape(route),
                    series.count
                )?;
            }
        }
        family(
            out,
            "gamify_http_request_duration_seconds",
            "Time to answer a request, by route template, method and status.",
            "histogram",
        )?;
        for (route, per) in &routes {
            for (method, status, series) in sorted(per) {
                let labels = format!(
                    "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                    escape(route)
                );
                for (bound, n) in BUCKETS.iter().zip(series.buckets) {
                    writeln!(
                        out,
                        "gamify_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                    )?;
                }
                writeln!(
                    out,
                    "gamify_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    series.count
                )?;
                writeln!(
                    out,
                    "gamify_http_request_duration_seconds_sum{{{labels}}} {}",
                    series.sum_micros as f64 / 1e6
                )?;
                writeln!(
                    out,
                    "gamify_http_request_duration_seconds_count{{{labels}}} {}",
                    series.count
                )?;
            }
        }
        drop(http);
        family(
            out,
            "gamify_events_total",
            "Events recorded by this process, by category (replays not counted).",
            "counter",
        )?;
        let categories = self
            .categories
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (c, (n, _)) in &categories {
            writeln!(
                out,
                "gamify_events_total{{category=\"{}\"}} {n}",
                c.as_str()
            )?;
        }
        family(
            out,
            "gamify_points_total",
            "Points those events earned, with the achievement bonuses they unlocked, by category.",
            "counter",
        )?;
        for (c, (_, milli)) in &categories {
            writeln!(
                out,
                "gamify_points_total{{category=\"{}\"}} {}",
                c.as_str(),
                *milli as f64 / 1000.0
            )?;
        }
        family(
            out,
            "gamify_achievements_unlocked_total",
            "Achievements unlocked, by achievement.",
            "counter",
        )?;
        let achievements = self
            .achievements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (a, n) in &achievements {
            writeln!(
                out,
                "gamify_achievements_unlocked_total{{achievement=\"{}\"}} {}",
                a.as_str(),
                n
            )?;
        }
        family(
            out,
            "gamify_level_ups_total",
            "Events that took their user to a higher level.",
            "counter",
        )?;
        writeln!(
            out,
            "gamify_level_ups_total {}",
            self.level_ups.load(Ordering::Relaxed)
        )?;
        family(
            out,
            "gamify_event_replays_total",
            "Event requests answered with the event their idempotency key recorded before.",
            "counter",
        )?;
        writeln!(
            out,
            "gamify_event_replays_total {}",
            self.replays.load(Ordering::Relaxed)
        )?;
        family(
            out,
            "gamify_webhook_attempts_total",
            "Webhook delivery attempts by this process, by outcome (delivered, retry: failed and due again, failed: no attempts left, cancelled).",
            "counter",
        )?;
        for ((_, label), n) in OUTCOMES.iter().zip(&self.webhook_attempts) {
            writeln!(
                out,
                "gamify_webhook_attempts_total{{outcome=\"{label}\"}} {}",
                n.load(Ordering::Relaxed)
            )?;
        }
        family(
            out,
            "gamify_webhook_deliveries_pruned_total",
            "Finished webhook deliveries this process deleted from the delivery log (older than keep_days).",
            "counter",
        )?;
        writeln!(
            out,
            "gamify_webhook_deliveries_pruned_total {}",
            self.deliveries_pruned.load(Ordering::Relaxed)
        )?;
        let pending = self.outbox_pending.load(Ordering::Relaxed);
        if pending != u64::MAX {
            family(
                out,
                "gamify_webhook_outbox_pending",
                "Webhook deliveries waiting to be sent (every node's), as this process last read it.",
                "gauge",
            )?;
            writeln!(out, "gamify_webhook_outbox_pending {pending}")?;
        }
        for g in gauges {
            family(out, g.name, g.help, "gauge")?;
            writeln!(out, "{} {}", g.name, g.value)?;
        }
        Ok(())
    }
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, help: &str, kind: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// A label value as Prometheus's text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_in_every_bucket_at_or_above_their_time() {
        let m = Metrics::default();
        m.request(&Method::GET, "/a/{id}", 200, 700);
        m.request(&Method::GET, "/a/{id}", 200, 3_000_000);
        let text = m.render(&[]);
        assert!(text.contains(
            "gamify_http_requests_total{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 2"
        ));
        // 0.7 ms: not in the 0.5 ms bucket, in the 1 ms one; 3 s only in +Inf.
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"0.0005\"} 0"));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"0.001\"} 1"));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"2.5\"} 1"));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"+Inf\"} 2"));
        assert!(text.contains("gamify_http_request_duration_seconds_sum{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 3.0007"));
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }

    #[test]
    fn invented_methods_share_one_label() {
        let m = Metrics::default();
        for name in ["FOO1", "FOO2", "PROPFIND"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            m.request(&method, "/healthz", 405, 10);
        }
        m.request(&Method::PATCH, "/healthz", 405, 10);
        let text = m.render(&[]);
        assert!(text.contains(
            "gamify_http_requests_total{method=\"OTHER\",route=\"/healthz\",status=\"405\"} 3"
        ));
        assert!(text.contains("method=\"PATCH\""));
        assert!(!text.contains("FOO1"));
    }
}
