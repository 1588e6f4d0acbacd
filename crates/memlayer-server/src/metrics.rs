//! Prometheus metrics in the text exposition format, kept in-process: request counts and
//! latency histograms per route, method and status class.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, String), Histogram>>,
    store: Mutex<BTreeMap<(&'static str, &'static str, &'static str), Histogram>>,
    /// Requests by the name of the key (or static token) that authenticated them.
    keys: Mutex<BTreeMap<String, u64>>,
    /// Requests refused for a missing, unknown, revoked or expired credential.
    refused: Mutex<u64>,
}

/// A Prometheus label value with its backslashes, quotes and new lines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Histogram {
    fn add(&mut self, secs: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.total += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.total);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.total);
    }
}

impl Metrics {
    /// Records one store operation.
    pub fn observe_store(&self, backend: &'static str, op: &'static str, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        if let Ok(mut map) = self.store.lock() {
            map.entry((backend, op, outcome))
                .or_default()
                .add(took.as_secs_f64());
        }
    }

    /// Records one request. Methods outside the standard set count as `other`, so a client
    /// inventing methods cannot grow the series without bound (routes are templates already).
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        let class = format!("{}xx", status / 100);
        let secs = took.as_secs_f64();
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        if let Ok(mut map) = self.requests.lock() {
            map.entry((route.to_owned(), method.to_owned(), class))
                .or_default()
                .add(secs);
        }
    }

    /// Records a request a key authenticated, by the key's name (never its secret).
    pub fn observe_key(&self, name: &str) {
        if let Ok(mut map) = self.keys.lock() {
            *map.entry(name.to_owned()).or_default() += 1;
        }
    }

    /// Records a request refused for its credential.
    pub fn observe_refused(&self) {
        if let Ok(mut n) = self.refused.lock() {
            *n += 1;
        }
    }

    /// The exposition text, with `extra` lines (gauges computed at scrape time) appended.
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        let map = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP memlayer_http_requests_total HTTP requests by route, method and status class."
        );
        let _ = writeln!(out, "# TYPE memlayer_http_requests_total counter");
        for ((route, method, class), h) in &map {
            let _ = writeln!(
                out,
                "memlayer_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{class}\"}} {}",
                h.total
            );
        }
        let _ = writeln!(
            out,
            "# HELP memlayer_http_request_duration_seconds HTTP request latency by route and method."
        );
        let _ = writeln!(
            out,
            "# TYPE memlayer_http_request_duration_seconds histogram"
        );
        for ((route, method, class), h) in &map {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{class}\"");
            h.write(&mut out, "memlayer_http_request_duration_seconds", &labels);
        }
        let store = self.store.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP memlayer_store_operation_duration_seconds Store operation latency by backend, operation and outcome."
        );
        let _ = writeln!(
            out,
            "# TYPE memlayer_store_operation_duration_seconds histogram"
        );
        for ((backend, op, outcome), h) in &store {
            let labels = format!("backend=\"{backend}\",op=\"{op}\",outcome=\"{outcome}\"");
            h.write(
                &mut out,
                "memlayer_store_operation_duration_seconds",
                &labels,
            );
        }
        let keys = self.keys.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP memlayer_key_requests_total Requests authenticated, by key name."
        );
        let _ = writeln!(out, "# TYPE memlayer_key_requests_total counter");
        for (name, n) in &keys {
            let _ = writeln!(
                out,
                "memlayer_key_requests_total{{key=\"{}\"}} {n}",
                label(name)
            );
        }
        let refused = self.refused.lock().map(|n| *n).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP memlayer_auth_refused_total Requests refused for a missing, unknown, revoked or expired credential."
        );
        let _ = writeln!(out, "# TYPE memlayer_auth_refused_total counter");
        let _ = writeln!(out, "memlayer_auth_refused_total {refused}");
        out.push_str(extra);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invented methods share one `other` series, so they cannot grow the metrics.
    #[test]
    fn unknown_methods_fold_into_one_series() {
        let m = Metrics::default();
        for method in ["GET", "FOOBAR", "PROPFIND", "X-1", "POST"] {
            m.observe("unmatched", method, 405, Duration::from_millis(1));
        }
        let text = m.render("");
        assert!(
            text.contains("route=\"unmatched\",method=\"other\",status=\"4xx\"} 3"),
            "{text}"
        );
        assert!(
            !text.contains("FOOBAR") && !text.contains("PROPFIND"),
            "{text}"
        );
        assert!(text.contains("method=\"GET\"") && text.contains("method=\"POST\""));
    }
}
