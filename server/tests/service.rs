//! The service on loopback: every endpoint, auth, limits, 503 under saturation,
//! 504 past the deadline, a graceful stop with requests in flight, a faulty
//! upstream through the fixture server, and model reloads under load, each with
//! the run log holding one line per request served.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use toolforge_agent::runtime::build_agent_with_sink;
use toolforge_agent::{Agent, AgentConfig, LogWriter, Redactor, Rotation, ToolRegistry};
use toolforge_core::{
    ApiKey, DynTool, RouteContext, RouteDecision, RouteError, Router, ToolCall, ToolError, ToolSpec,
};
use toolforge_server::{AgentFactory, ServeOptions, Server};

/// A tool that sleeps for `ms` milliseconds, then answers.
struct Sleep;

#[async_trait]
impl DynTool for Sleep {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sleep".into(),
            description: "Sleeps for a while.".into(),
            parameters: json!({"type": "object", "properties": {"ms": {"type": "integer"}}}),
        }
    }
    async fn call_json(&self, arguments: Value) -> Result<Value, ToolError> {
        let ms = arguments["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({"summary": format!("Slept {ms} ms.")}))
    }
}

/// Routes "sleep N" to the sleep tool, anything else to no tool; its model
/// version is the generation it was built in.
struct SleepRouter {
    version: String,
}

#[async_trait]
impl Router for SleepRouter {
    fn name(&self) -> &str {
        "sleepy"
    }
    async fn route(
        &self,
        query: &str,
        _: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        let calls = match query
            .strip_prefix("sleep ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(ms) => vec![ToolCall::new("sleep", json!({"ms": ms}))],
            None => Vec::new(),
        };
        Ok(Some(RouteDecision {
            calls,
            router: "sleepy".into(),
            confidence: Some(1.0),
            unsupported: false,
        }))
    }
    fn model_version(&self) -> Option<String> {
        Some(self.version.clone())
    }
}

/// Agents with the sleep tool; each build is a new model generation (`gen-0`, `gen-1`, ...).
fn sleepy_factory() -> AgentFactory {
    let generation = Arc::new(AtomicUsize::new(0));
    Arc::new(move |sink| {
        let mut registry = ToolRegistry::new();
        registry.register(Arc::new(Sleep))?;
        let version = format!("gen-{}", generation.fetch_add(1, Ordering::SeqCst));
        let mut builder = Agent::builder(registry, Arc::new(SleepRouter { version }));
        if let Some(sink) = sink {
            builder = builder.log_sink(sink);
        }
        Ok(builder.build())
    })
}

/// Agents as `toolforge serve` builds them, from `config`, with `router`.
fn runtime_factory(config: AgentConfig, router: &'static str) -> AgentFactory {
    Arc::new(move |sink| build_agent_with_sink(&config, router, sink))
}

struct Running {
    server: Server,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(factory: AgentFactory, options: ServeOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let writer =
        Arc::new(LogWriter::start(&log, Redactor::default(), Rotation::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(listener, options, factory, Some(writer))
        .await
        .unwrap();
    let url = format!("http://{}", server.addr());
    Running {
        server,
        url,
        log,
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = client().post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str) -> (u16, String) {
    let response = client().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_in_the_contract_shapes() {
    let running = start(
        runtime_factory(AgentConfig::default(), "regex"),
        ServeOptions::default(),
    )
    .await;
    let url = &running.url;

    let (status, health) = get(&format!("{url}/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&health).unwrap()["status"],
        "ok"
    );

    let (status, tools) = get(&format!("{url}/v1/tools")).await;
    assert_eq!(status, 200);
    let tools: Value = serde_json::from_str(&tools).unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"calculator") && names.contains(&"autonomous_task"),
        "{names:?}"
    );
    assert!(tools["tools"][0]["parameters"].is_object());

    let (status, decision) =
        post(&format!("{url}/v1/route"), json!({"query": "what is 12*7"})).await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["calls"][0]["tool"], "calculator");
    assert_eq!(decision["router"], "regex");
    assert!(decision["latency_us"].is_u64() && decision["run_id"].is_string());

    let (status, batch) = post(
        &format!("{url}/v1/route"),
        json!({"queries": ["weather in Oslo", 7, "", {"query": "define serendipity"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let decisions = batch["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 4);
    assert_eq!(decisions[0]["calls"][0]["tool"], "weather");
    assert!(decisions[1]["error"].is_string() && decisions[2]["error"].is_string());
    assert_eq!(decisions[3]["calls"][0]["tool"], "dictionary");

    let (status, run) = post(
        &format!("{url}/v1/ask"),
        json!({"query": "what's 15% of 2850"}),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["calls"][0]["output"]["value"], 427.5);
    assert!(run["answer"].as_str().unwrap().contains("427.5"));
    let run_id = run["run_id"].as_str().unwrap().to_string();

    let (status, recorded) = post(
        &format!("{url}/v1/feedback"),
        json!({"run_id": run_id, "ok": true}),
    )
    .await;
    assert_eq!(
        (status, &recorded["recorded"]),
        (200, &json!(true)),
        "{recorded}"
    );
    let correct = json!({"run_id": decision["run_id"], "correct": {"calls": [{"tool": "calculator", "arguments": {"expression": "12*7"}}]}});
    assert_eq!(post(&format!("{url}/v1/feedback"), correct).await.0, 200);
    let (status, error) = post(
        &format!("{url}/v1/feedback"),
        json!({"run_id": "no-such-run", "ok": true}),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    let bad_tool =
        json!({"run_id": run_id, "correct": {"calls": [{"tool": "teleport", "arguments": {}}]}});
    let (status, error) = post(&format!("{url}/v1/feedback"), bad_tool).await;
    assert_eq!(status, 400);
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("unknown tool `teleport`"));

    let (status, metrics) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    for needle in [
        "toolforge_requests_total{endpoint=\"/v1/route\",status=\"200\"} 2",
        "toolforge_request_duration_seconds_count{endpoint=\"/v1/ask\"} 1",
        "toolforge_router_stage_duration_seconds_count{stage=\"regex\"}",
        "toolforge_tool_duration_seconds_count{tool=\"calculator\"} 1",
        "toolforge_unsupported_requests_total",
        "toolforge_fallbacks_total",
        "toolforge_tool_errors_total",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }

    let (status, openapi) = get(&format!("{url}/openapi.json")).await;
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    for path in [
        "/v1/route",
        "/v1/ask",
        "/v1/feedback",
        "/v1/tools",
        "/healthz",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path}");
    }
    let (status, missing) = get(&format!("{url}/v2/nothing")).await;
    assert_eq!(status, 404);
    assert!(missing.contains("\"error\""));

    running.server.stopper().stop();
    let report = running.server.wait().await.unwrap();
    let lines = log_lines(&running.log);
    // Runs: one route, two routed batch items, one ask; then two feedback lines.
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(report.log_lines, 6);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["feedback_for"].is_string())
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_everything_but_health() {
    let options = ServeOptions {
        token: Some(ApiKey::new("s3cret-token")),
        ..ServeOptions::default()
    };
    let running = start(sleepy_factory(), options).await;
    let url = &running.url;
    let route = format!("{url}/v1/route");
    let body = json!({"query": "hello"});
    let none = client().post(&route).json(&body).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = client()
        .post(&route)
        .bearer_auth("s3cret-tokeN")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let error: Value = wrong.json().await.unwrap();
    assert!(error["error"].is_string());
    let right = client()
        .post(&route)
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert_eq!(get(&format!("{url}/metrics")).await.0, 401);
    assert_eq!(get(&format!("{url}/healthz")).await.0, 200);
    running.server.stopper().stop();
    running.server.wait().await.unwrap();
    assert_eq!(log_lines(&running.log).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_batches_and_queries_beyond_the_limits_are_refused() {
    let options = ServeOptions {
        max_body_bytes: 4096,
        max_batch: 3,
        ..ServeOptions::default()
    };
    let running = start(sleepy_factory(), options).await;
    let route = format!("{}/v1/route", running.url);
    let (status, error) = post(&route, json!({"query": "x".repeat(5000)})).await;
    assert_eq!(status, 413, "{error}");
    assert!(error["error"].is_string());
    let (status, error) = post(&route, json!({"queries": ["a", "b", "c", "d"]})).await;
    assert_eq!(status, 413);
    assert!(error["error"].as_str().unwrap().contains("limit is 3"));
    let (status, _) = post(&route, json!({"query": "   "})).await;
    assert_eq!(status, 400);
    let (status, error) = post(&route, json!({"text": "hello"})).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("query"));
    let raw = client()
        .post(&route)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let big_query = ServeOptions::default();
    let roomy = start(sleepy_factory(), big_query).await;
    let (status, error) = post(
        &format!("{}/v1/ask", roomy.url),
        json!({"query": "y".repeat(10_001)}),
    )
    .await;
    assert_eq!(status, 413, "{error}");
    for running in [running, roomy] {
        running.server.stopper().stop();
        running.server.wait().await.unwrap();
        assert_eq!(log_lines(&running.log).len(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_answers_503_and_a_late_request_504() {
    let options = ServeOptions {
        concurrency: 1,
        deadline: Duration::from_millis(400),
        ..ServeOptions::default()
    };
    let running = start(sleepy_factory(), options).await;
    let ask = format!("{}/v1/ask", running.url);
    let busy = {
        let ask = ask.clone();
        tokio::spawn(async move { post(&ask, json!({"query": "sleep 300"})).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, error) = post(&ask, json!({"query": "hello"})).await;
    assert_eq!(status, 503, "{error}");
    assert!(error["error"].as_str().unwrap().contains("saturated"));
    assert_eq!(busy.await.unwrap().0, 200);
    let (status, error) = post(&ask, json!({"query": "sleep 2000"})).await;
    assert_eq!(status, 504, "{error}");
    assert!(error["error"].as_str().unwrap().contains("deadline"));
    let (_, metrics) = get(&format!("{}/metrics", running.url)).await;
    assert!(metrics.contains("toolforge_saturated_total 1"), "{metrics}");
    assert!(
        metrics.contains("toolforge_deadline_exceeded_total 1"),
        "{metrics}"
    );
    running.server.stopper().stop();
    running.server.wait().await.unwrap();
    // Served: the first ask only (the refused and the cut requests were not served).
    assert_eq!(log_lines(&running.log).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_finishes_requests_in_flight_and_flushes_the_log() {
    let running = start(sleepy_factory(), ServeOptions::default()).await;
    let ask = format!("{}/v1/ask", running.url);
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let ask = ask.clone();
            tokio::spawn(async move { post(&ask, json!({"query": "sleep 500"})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    running.server.stopper().stop();
    let refused = client()
        .post(&ask)
        .json(&json!({"query": "hello"}))
        .send()
        .await;
    if let Ok(response) = refused {
        assert_eq!(response.status().as_u16(), 503);
    }
    for request in in_flight {
        let (status, run) = request.await.unwrap();
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["calls"][0]["tool"], "sleep");
    }
    let report = running.server.wait().await.unwrap();
    assert_eq!(report.log_lines, 4);
    assert_eq!(log_lines(&running.log).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_upstream_costs_its_call_not_the_request() {
    use toolforge_tools::fixture::{FixtureServer, Reply};
    let upstream = FixtureServer::start(vec![(
        "GET /search",
        vec![
            Reply::status(500, "upstream exploded"),
            Reply::json(200, "{not json"),
        ],
    )])
    .await;
    let mut config = AgentConfig::default();
    config.tools.web_search.base_url = Some(upstream.url().to_string());
    config.tools.web_search.retries = Some(0);
    let running = start(runtime_factory(config, "regex"), ServeOptions::default()).await;
    let ask = format!("{}/v1/ask", running.url);
    for expected in ["500", "malformed"] {
        let (status, run) = post(
            &ask,
            json!({"query": "search the web for rust release notes"}),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        let call = &run["calls"][0];
        assert_eq!(call["tool"], "web_search");
        assert!(call["error"].as_str().unwrap().contains(expected), "{run}");
        assert!(!run["answer"].as_str().unwrap().is_empty());
    }
    let (_, metrics) = get(&format!("{}/metrics", running.url)).await;
    assert!(
        metrics.contains("toolforge_tool_errors_total{tool=\"web_search\"} 2"),
        "{metrics}"
    );
    running.server.stopper().stop();
    running.server.wait().await.unwrap();
    assert_eq!(log_lines(&running.log).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_swap_the_model_without_failing_a_request() {
    let running = start(sleepy_factory(), ServeOptions::default()).await;
    let route = format!("{}/v1/route", running.url);
    let load: Vec<_> = (0..8)
        .map(|_| {
            let route = route.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..40 {
                    statuses.push(post(&route, json!({"query": "hello"})).await.0);
                }
                statuses
            })
        })
        .collect();
    let reload = format!("{}/v1/admin/reload", running.url);
    let mut versions = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (status, swapped) = post(&reload, json!({})).await;
        assert_eq!(status, 200, "{swapped}");
        versions.push(swapped["model_version"].as_str().unwrap().to_string());
    }
    assert_eq!(versions, ["gen-1", "gen-2", "gen-3"]);
    for statuses in load {
        assert!(statuses.await.unwrap().iter().all(|s| *s == 200));
    }
    let (_, health) = get(&format!("{}/healthz", running.url)).await;
    assert!(health.contains("gen-3"));
    running.server.stopper().stop();
    running.server.wait().await.unwrap();
    let lines = log_lines(&running.log);
    assert_eq!(lines.len(), 320);
    let mut seen: Vec<&str> = lines
        .iter()
        .map(|l| l["router_model_version"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(
        seen.len() >= 2,
        "runs were served by one model only: {seen:?}"
    );
}
