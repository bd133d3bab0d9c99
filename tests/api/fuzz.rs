//! Requests made from the OpenAPI document with odd values swapped in: a
//! path parameter that is an emoji or 5,000 characters, a number that is
//! `1e308` where a string belongs, a field removed or added, a TOML rules
//! file that is not one. Whatever comes in, no answer is a 5xx, every
//! refusal has the error shape, and afterwards the stored data passes
//! `verify`. The same seed makes the same requests on every run and
//! backend; `GAMIFY_FUZZ_SEED` and `GAMIFY_FUZZ_REQUESTS` (default 600) try
//! others.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::helpers::spawn_app;

/// xorshift64*: small, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that have found bugs elsewhere, and ids that exist here.
fn odd_strings() -> Vec<String> {
    let mut strings: Vec<String> = [
        "",
        " ",
        "ä",
        "💥",
        "\u{0}",
        "\u{7f}",
        "x\ny",
        "../../etc/passwd",
        "%00",
        "%2F",
        "null",
        "-1",
        "1e309",
        "0",
        "u1",
        "u2",
        "finance",
        "learning",
        "red_0199",
        "evt_0",
        "dlv_",
        "key_0",
        "whk_0",
        "all_time",
        "week",
        "day",
        "month",
        "2026-W49",
        "2026-12-06",
        "2026-12",
        "pending",
        "coffee",
        "NaN",
        "true",
        "{}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    strings.push("a".repeat(300));
    strings.push("x".repeat(5000));
    strings
}

const ODD_NUMBERS: &[f64] = &[
    0.0,
    -1.0,
    1.0,
    0.0001,
    0.0005,
    1e308,
    -1e308,
    9.3e18,
    1.9e19,
    -9.3e18,
    1.5,
    99_999_999_999.0,
    5e-324,
    1_000_000.0,
    3.0,
];

/// A value of any type, mostly odd.
fn odd(rng: &mut Rng, strings: &[String]) -> Value {
    match rng.below(10) {
        0..=2 => json!(rng.pick(strings)),
        3..=5 => json!(rng.pick(ODD_NUMBERS)),
        6 => Value::Null,
        7 => json!([rng.pick(strings)]),
        8 => json!({"a": rng.pick(ODD_NUMBERS)}),
        _ => json!(rng.chance(50)),
    }
}

/// The schema `$ref` points to, or `schema` itself.
fn resolve<'a>(spec: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        schema = &spec["components"]["schemas"][name];
    }
    schema
}

/// A value the schema allows, mostly (its examples, made-up strings).
fn valid(spec: &Value, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    let schema = resolve(spec, schema);
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(choices) = schema[key].as_array().filter(|c| !c.is_empty()) {
            return valid(spec, rng.pick(choices), rng, depth + 1);
        }
    }
    if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
        return rng.pick(values).clone();
    }
    if !schema["example"].is_null() && rng.chance(50) {
        return schema["example"].clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => {
            let real: Vec<&Value> = kinds.iter().filter(|k| *k != "null").collect();
            if real.is_empty() || rng.chance(10) {
                return Value::Null;
            }
            rng.pick(&real).as_str().unwrap_or_default().to_owned()
        }
        kind => kind.as_str().unwrap_or_default().to_owned(),
    };
    match kind.as_str() {
        "object" | "" if schema["properties"].is_object() && depth < 6 => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if required.contains(&name.as_str()) || rng.chance(50) {
                    out.insert(name.clone(), valid(spec, property, rng, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" if depth < 6 => (0..rng.below(4))
            .map(|_| valid(spec, &schema["items"], rng, depth + 1))
            .collect(),
        "string" => json!(*rng.pick(&["u1", "u2", "finance", "hello", "coffee", "x"])),
        "integer" => json!(rng.below(100)),
        "number" => json!(*rng.pick(&[1.0, 2.5, 10.0])),
        "boolean" => json!(rng.chance(50)),
        _ => json!({}),
    }
}

/// `value` with one thing changed: a field dropped, replaced or added, an
/// item replaced, or the whole of it.
fn mutate(value: Value, rng: &mut Rng, strings: &[String]) -> Value {
    match value {
        Value::Object(mut fields) if !fields.is_empty() && rng.chance(80) => {
            let keys: Vec<String> = fields.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(10) {
                0 | 1 => {
                    fields.remove(&key);
                }
                2..=5 => {
                    fields.insert(key, odd(rng, strings));
                }
                _ => {
                    let inner = fields.remove(&key).unwrap_or_default();
                    fields.insert(key, mutate(inner, rng, strings));
                }
            }
            if rng.chance(10) {
                fields.insert(rng.pick(strings).clone(), odd(rng, strings));
            }
            Value::Object(fields)
        }
        Value::Array(mut items) if !items.is_empty() && rng.chance(70) => {
            let at = rng.below(items.len());
            let inner = std::mem::take(&mut items[at]);
            items[at] = mutate(inner, rng, strings);
            Value::Array(items)
        }
        _ => odd(rng, strings),
    }
}

/// Percent-encodes everything but unreserved characters.
fn encoded(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const RULES_FILES: &[&str] = &[
    "",
    "[weights]\nfinance = 2.0\n",
    "[weights]\nfinance = -1\n",
    "x = ",
    "[weights]\nfinance = 1e400\n",
    "[[achievements]]\nid = \"a\"\n",
];

#[tokio::test]
async fn odd_requests_on_every_route_are_refused_cleanly_and_change_nothing_wrongly() {
    let seed = std::env::var("GAMIFY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15_u64);
    let requests: usize = std::env::var("GAMIFY_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    println!("fuzzing with GAMIFY_FUZZ_SEED={seed} GAMIFY_FUZZ_REQUESTS={requests}");
    let app = spawn_app().await;
    let spec: Value = serde_json::from_str(&gamify::http::openapi::spec_json()).unwrap();
    let strings = odd_strings();
    let mut rng = Rng(seed.max(1));
    let mut operations = Vec::new();
    for (path, methods) in spec["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            // Each tenant is a database of its own: tests/api/tenants.rs
            // makes them; here they would only make the run slow.
            if path.ends_with("/admin/tenants") && method == "post" {
                continue;
            }
            operations.push((method.to_uppercase(), path.clone(), operation));
        }
    }
    // A reward and some points, so that some redemptions and spends succeed.
    app.record("u1", "finance", 50.0).await;
    let reward = json!({"id": "coffee", "name": "Coffee", "cost": 1.0});
    app.admin(Method::POST, "/api/v2/gamify/admin/rewards", Some(reward))
        .await;
    let (mut succeeded, mut refused) = (0, 0);
    for _ in 0..requests {
        let (method, template, operation) = rng.pick(&operations);
        let mut path = template.clone();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let value = if rng.chance(70) {
                valid(&spec, &parameter["schema"], &mut rng, 0)
            } else {
                odd(&mut rng, &strings)
            };
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match parameter["in"].as_str() {
                Some("path") => path = path.replace(&format!("{{{name}}}"), &encoded(&text)),
                Some("query") if rng.chance(60) => {
                    query.push(format!("{}={}", encoded(name), encoded(&text)));
                }
                Some("header")
                    if name != "Gamify-Tenant"
                        && rng.chance(40)
                        && text.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
                {
                    headers.push((name.to_owned(), text));
                }
                _ => {}
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = app.client.request(method.clone(), app.url(&path));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let content = &operation["requestBody"]["content"];
        let mut sent = String::new();
        if let Some(json_body) = content.get("application/json") {
            let mut body = valid(&spec, &json_body["schema"], &mut rng, 0);
            for _ in 0..rng.below(4) {
                body = mutate(body, &mut rng, &strings);
            }
            sent = body.to_string();
            request = request
                .header("content-type", "application/json")
                .body(sent.clone());
        } else if content.get("application/toml").is_some() {
            sent = (*rng.pick(RULES_FILES)).to_owned();
            request = request
                .header("content-type", "application/toml")
                .body(sent.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let what = format!("{method} {path} {sent:.300} -> {status} {text:.300}");
        assert!(!status.is_server_error(), "{what}");
        if status.is_success() {
            succeeded += 1;
        } else {
            refused += 1;
            let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}"));
            assert!(error["error"]["code"].is_string(), "{what}");
            assert!(error["error"]["message"].is_string(), "{what}");
        }
    }
    println!("{succeeded} succeeded, {refused} refused");
    // Not a run of refusals only: the odd values reach the rules too.
    assert!(succeeded * 10 >= requests, "{succeeded} of {requests}");
    assert!(refused * 10 >= requests, "{refused} of {requests}");
    let findings = app.admin_json("/api/v2/gamify/admin/verify").await;
    assert_eq!(findings, json!([]), "the stored data is consistent");
}
