//! Service metrics in the Prometheus text format (version 0.0.4): request
//! counts and latency per endpoint, latency per router stage and per tool, tool
//! errors, fallbacks, unsupported requests, saturation and the run log's writes.
//! Plain atomics and fixed buckets: nothing here allocates on the hot path
//! except the first sight of a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use toolforge_core::{RunRecord, StageOutcome};

/// Upper bounds of the latency buckets, in seconds: 50 µs to 30 s.
const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0, 30.0,
];

/// A latency histogram with [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}",
                sep = if labels.is_empty() { "" } else { "," }
            );
        }
        let count = self.count();
        let sep = if labels.is_empty() { "" } else { "," };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = |labels: &str| {
            if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// A family of values keyed by one label's value, created on first use.
#[derive(Debug)]
struct Family<T> {
    members: RwLock<BTreeMap<String, Arc<T>>>,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Self {
            members: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<T: Default> Family<T> {
    fn get(&self, key: &str) -> Arc<T> {
        if let Some(found) = self.members.read().ok().and_then(|m| m.get(key).cloned()) {
            return found;
        }
        match self.members.write() {
            Ok(mut members) => Arc::clone(members.entry(key.to_string()).or_default()),
            Err(_) => Arc::new(T::default()),
        }
    }

    fn each(&self, mut visit: impl FnMut(&str, &T)) {
        if let Ok(members) = self.members.read() {
            for (key, value) in members.iter() {
                visit(key, value);
            }
        }
    }
}

/// Every metric the service exports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Family<AtomicU64>,
    request_seconds: Family<Histogram>,
    stage_seconds: Family<Histogram>,
    stage_outcomes: Family<AtomicU64>,
    tool_seconds: Family<Histogram>,
    tool_errors: Family<AtomicU64>,
    decisions: Family<AtomicU64>,
    fallbacks: AtomicU64,
    unsupported: AtomicU64,
    saturated: AtomicU64,
    deadline_passed: AtomicU64,
    reloads: AtomicU64,
    in_flight: AtomicU64,
}

/// The run log's counters, read when rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogCounts {
    /// Lines written and flushed.
    pub written: u64,
    /// Lines that could not be written.
    pub failed: u64,
    /// File rotations.
    pub rotations: u64,
}

impl Metrics {
    /// One answered request: its endpoint (the route pattern), status and time.
    pub fn request(&self, endpoint: &str, status: u16, elapsed: Duration) {
        self.requests
            .get(&format!("endpoint=\"{endpoint}\",status=\"{status}\""))
            .fetch_add(1, Ordering::Relaxed);
        self.request_seconds
            .get(&format!("endpoint=\"{endpoint}\""))
            .observe(elapsed);
    }

    /// What a run shows: each stage's latency and outcome, each tool's latency
    /// and error, the deciding router, a fallback (a stage that tried failed,
    /// ran late or fell below its threshold, so a later one decided; a stage
    /// abstaining by design is not one) and an unsupported request.
    pub fn run(&self, record: &RunRecord) {
        let mut fell_back = false;
        for stage in &record.stages {
            let name = escape(&stage.router);
            self.stage_seconds
                .get(&format!("stage=\"{name}\""))
                .observe(Duration::from_micros(stage.latency_us));
            let outcome = match stage.outcome {
                StageOutcome::Decided { .. } => "decided",
                StageOutcome::BelowThreshold { .. } => "below_threshold",
                StageOutcome::Abstained => "abstained",
                StageOutcome::Error { .. } => "error",
                StageOutcome::Timeout { .. } => "timeout",
            };
            self.stage_outcomes
                .get(&format!("stage=\"{name}\",outcome=\"{outcome}\""))
                .fetch_add(1, Ordering::Relaxed);
            fell_back |= matches!(
                stage.outcome,
                StageOutcome::BelowThreshold { .. }
                    | StageOutcome::Error { .. }
                    | StageOutcome::Timeout { .. }
            );
        }
        for call in &record.calls {
            let tool = format!("tool=\"{}\"", escape(&call.tool));
            self.tool_seconds
                .get(&tool)
                .observe(Duration::from_micros(call.duration_us));
            if call.error.is_some() {
                self.tool_errors.get(&tool).fetch_add(1, Ordering::Relaxed);
            }
        }
        self.decisions
            .get(&format!("router=\"{}\"", escape(&record.decision.router)))
            .fetch_add(1, Ordering::Relaxed);
        if fell_back {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        if record.decision.unsupported {
            self.unsupported.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request refused because the service was saturated.
    pub fn saturated(&self) {
        self.saturated.fetch_add(1, Ordering::Relaxed);
    }

    /// A request that ran past its deadline.
    pub fn deadline_passed(&self) {
        self.deadline_passed.fetch_add(1, Ordering::Relaxed);
    }

    /// A model reload.
    pub fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests being served now: call on entry, and drop the guard on exit.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// The Prometheus text exposition.
    pub fn render(&self, model_version: &str, log: Option<LogCounts>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let counter_family =
            |out: &mut String, name: &str, help: &str, family: &Family<AtomicU64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                family.each(|labels, value| {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", value.load(Ordering::Relaxed));
                });
            };
        let histogram_family =
            |out: &mut String, name: &str, help: &str, family: &Family<Histogram>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                family.each(|labels, histogram| histogram.render(out, name, labels));
            };
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter_family(
            &mut out,
            "toolforge_requests_total",
            "HTTP requests answered, by endpoint and status.",
            &self.requests,
        );
        histogram_family(
            &mut out,
            "toolforge_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint.",
            &self.request_seconds,
        );
        histogram_family(
            &mut out,
            "toolforge_router_stage_duration_seconds",
            "Time spent in each router stage.",
            &self.stage_seconds,
        );
        histogram_family(
            &mut out,
            "toolforge_tool_duration_seconds",
            "Time spent in each tool call.",
            &self.tool_seconds,
        );
        counter_family(
            &mut out,
            "toolforge_tool_errors_total",
            "Tool calls that failed, by tool.",
            &self.tool_errors,
        );
        counter_family(
            &mut out,
            "toolforge_decisions_total",
            "Routing decisions, by the stage that made them.",
            &self.decisions,
        );
        counter_family(
            &mut out,
            "toolforge_router_stage_outcomes_total",
            "What each router stage did: decided, below_threshold, abstained, error, timeout.",
            &self.stage_outcomes,
        );
        counter(&mut out, "toolforge_fallbacks_total", "Runs where a stage failed, ran late or fell below its threshold and a later stage decided.", self.fallbacks.load(Ordering::Relaxed));
        counter(
            &mut out,
            "toolforge_unsupported_requests_total",
            "Requests no registered tool can serve.",
            self.unsupported.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "toolforge_saturated_total",
            "Requests refused with 503 because the service was at its concurrency limit.",
            self.saturated.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "toolforge_deadline_exceeded_total",
            "Requests answered 504 because they ran past their deadline.",
            self.deadline_passed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "toolforge_model_reloads_total",
            "Models swapped in without a restart.",
            self.reloads.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP toolforge_in_flight_requests Requests being served now.\n# TYPE toolforge_in_flight_requests gauge\ntoolforge_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP toolforge_model_info The router model being served.\n# TYPE toolforge_model_info gauge\ntoolforge_model_info{{version=\"{}\"}} 1",
            escape(model_version)
        );
        if let Some(log) = log {
            counter(
                &mut out,
                "toolforge_log_lines_written_total",
                "Run log lines written and flushed.",
                log.written,
            );
            counter(
                &mut out,
                "toolforge_log_lines_failed_total",
                "Run log lines that could not be written.",
                log.failed,
            );
            counter(
                &mut out,
                "toolforge_log_rotations_total",
                "Run log file rotations.",
                log.rotations,
            );
        }
        out
    }
}

/// Marks one request in flight until dropped.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A label value with `\`, `"` and newlines escaped.
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
    fn histograms_are_cumulative_and_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request("/v1/route", 200, Duration::from_micros(80));
        metrics.request("/v1/route", 200, Duration::from_millis(3));
        metrics.request("/v1/route", 400, Duration::from_micros(20));
        let text = metrics.render("m-1", None);
        assert!(
            text.contains("toolforge_requests_total{endpoint=\"/v1/route\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "toolforge_request_duration_seconds_bucket{endpoint=\"/v1/route\",le=\"0.0001\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "toolforge_request_duration_seconds_bucket{endpoint=\"/v1/route\",le=\"+Inf\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("toolforge_request_duration_seconds_count{endpoint=\"/v1/route\"} 3"),
            "{text}"
        );
        assert!(text.contains("toolforge_model_info{version=\"m-1\"} 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
