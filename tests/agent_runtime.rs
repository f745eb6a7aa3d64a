//! Integration tests of the agent runtime: concurrent execution, timeouts, tool
//! errors, and run-log lines round-tripping through `RunRecord`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge::agent::{Agent, Executor, JsonlRunLog, Redactor, ToolRegistry};
use toolforge::core::{
    RouteContext, RouteDecision, RouteError, Router, RunRecord, Tool, ToolCall, ToolError,
};

#[derive(Deserialize, JsonSchema)]
struct SleepArgs {
    /// Milliseconds to sleep.
    ms: u64,
}

/// Sleeps, recording when it started and ended.
struct Sleeper {
    name: &'static str,
    events: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Tool for Sleeper {
    type Args = SleepArgs;
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "Sleeps for a while."
    }
    async fn call(&self, args: SleepArgs) -> Result<Value, ToolError> {
        self.events
            .lock()
            .unwrap()
            .push(format!("start {}", self.name));
        tokio::time::sleep(Duration::from_millis(args.ms)).await;
        self.events
            .lock()
            .unwrap()
            .push(format!("end {}", self.name));
        Ok(json!({ "slept_ms": args.ms, "summary": format!("{} slept {} ms", self.name, args.ms) }))
    }
}

#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

struct Failing;

#[async_trait]
impl Tool for Failing {
    type Args = NoArgs;
    fn name(&self) -> &str {
        "failing"
    }
    fn description(&self) -> &str {
        "Always fails."
    }
    async fn call(&self, _: NoArgs) -> Result<Value, ToolError> {
        Err(ToolError::Failed("the backend said no".into()))
    }
}

/// A router that always answers the same calls.
struct Fixed(Vec<ToolCall>);

#[async_trait]
impl Router for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn route(&self, _: &str, _: &RouteContext) -> Result<Option<RouteDecision>, RouteError> {
        Ok(Some(RouteDecision {
            calls: self.0.clone(),
            router: "fixed".into(),
            confidence: Some(1.0),
            unsupported: false,
        }))
    }
}

fn registry(events: &Arc<Mutex<Vec<String>>>) -> ToolRegistry {
    let mut registry = ToolRegistry::new();
    for name in ["slow_a", "slow_b"] {
        registry
            .register(Arc::new(Sleeper {
                name,
                events: events.clone(),
            }))
            .unwrap();
    }
    registry.register(Arc::new(Failing)).unwrap();
    registry
}

fn call(tool: &str, args: Value) -> ToolCall {
    ToolCall::new(tool, args)
}

#[tokio::test]
async fn executor_runs_independent_calls_concurrently() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let registry = registry(&events);
    let calls = [
        call("slow_a", json!({"ms": 150})),
        call("slow_b", json!({"ms": 150})),
    ];
    let records = Executor::default().execute(&registry, &calls).await;
    assert!(records.iter().all(|r| r.error.is_none()), "{records:?}");
    let events = events.lock().unwrap().clone();
    // Both calls started before either finished: they overlapped.
    let first_end = events.iter().position(|e| e.starts_with("end")).unwrap();
    let starts_before_end = events[..first_end]
        .iter()
        .filter(|e| e.starts_with("start"))
        .count();
    assert_eq!(starts_before_end, 2, "events: {events:?}");
    // Results keep the decision's order.
    assert_eq!(records[0].tool, "slow_a");
    assert_eq!(records[1].tool, "slow_b");
}

#[tokio::test]
async fn a_slow_tool_times_out_without_failing_the_run() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(
        registry(&events),
        Arc::new(Fixed(vec![
            call("slow_a", json!({"ms": 5_000})),
            call("slow_b", json!({"ms": 1})),
        ])),
    )
    .executor(
        Executor::new(Duration::from_secs(10)).with_timeout("slow_a", Duration::from_millis(50)),
    )
    .build();
    let run = agent.ask("sleep please").await.unwrap();
    assert_eq!(run.calls[0].error.as_deref(), Some("timed out after 50 ms"));
    assert!(run.calls[1].output.is_some());
    assert!(
        run.answer.contains("slow_a failed: timed out"),
        "{}",
        run.answer
    );
}

#[tokio::test]
async fn tool_errors_unknown_tools_and_bad_arguments_become_error_entries() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(
        registry(&events),
        Arc::new(Fixed(vec![
            call("failing", json!({})),
            call("no_such_tool", json!({})),
            call("slow_a", json!({"ms": "soon"})),
        ])),
    )
    .build();
    let run = agent.ask("do things").await.unwrap();
    assert_eq!(run.calls[0].error.as_deref(), Some("the backend said no"));
    assert_eq!(
        run.calls[1].error.as_deref(),
        Some("unknown tool `no_such_tool`")
    );
    assert!(run.calls[2]
        .error
        .as_deref()
        .unwrap()
        .starts_with("invalid arguments: ms"));
    assert!(run.calls.iter().all(|c| c.output.is_none()));
}

/// A router that says no tool can serve any request.
struct Unsupported;

#[async_trait]
impl Router for Unsupported {
    fn name(&self) -> &str {
        "unsupported"
    }
    async fn route(&self, _: &str, _: &RouteContext) -> Result<Option<RouteDecision>, RouteError> {
        Ok(Some(RouteDecision::unsupported("unsupported", Some(0.9))))
    }
}

#[tokio::test]
async fn an_unsupported_request_is_answered_with_what_the_agent_can_do() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(registry(&events), Arc::new(Unsupported)).build();
    let run = agent.ask("set an alarm for 7").await.unwrap();
    assert!(run.decision.unsupported && run.calls.is_empty());
    assert!(
        run.answer.starts_with("Sorry, I can't do that"),
        "{}",
        run.answer
    );
    for tool in ["slow_a", "slow_b", "failing"] {
        assert!(run.answer.contains(tool), "{}", run.answer);
    }
    assert!(!run.answer.contains("No tool was needed"));
    let ask = serde_json::to_value(toolforge::agent::AskOutput::from(&run)).unwrap();
    assert_eq!(ask["unsupported"], true);
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn empty_and_oversized_queries_are_refused_clearly() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(registry(&events), Arc::new(Fixed(vec![]))).build();
    assert_eq!(
        agent.ask("   ").await.unwrap_err().to_string(),
        "the query is empty"
    );
    assert!(agent
        .ask(&"x".repeat(20_000))
        .await
        .unwrap_err()
        .to_string()
        .contains("too long"));
}

#[tokio::test]
async fn run_log_lines_round_trip_through_run_record_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs").join("runs.jsonl");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink =
        Arc::new(JsonlRunLog::open(&path, Redactor::new(["hunter2-secret".to_string()])).unwrap());
    let agent = Agent::builder(
        registry(&events),
        Arc::new(Fixed(vec![call("slow_b", json!({"ms": 1}))])),
    )
    .log_sink(sink)
    .build();
    let first = agent.ask("first run").await.unwrap();
    let second = agent.ask("my key is hunter2-secret").await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let logged: RunRecord = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(logged, first);
    assert_eq!(logged.stages.len(), 1);
    assert_eq!(logged.calls[0].tool, "slow_b");
    assert!(!text.contains("hunter2-secret"));
    let redacted: RunRecord = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(redacted.query, "my key is [REDACTED]");
    assert_eq!(redacted.run_id, second.run_id);
}

#[tokio::test]
async fn llm_responder_answers_from_an_openai_compatible_endpoint_and_falls_back_offline() {
    use toolforge::agent::llm::LlmConfig;
    use toolforge::agent::LlmResponder;
    use toolforge::tools::fixture::{FixtureServer, Reply};
    use toolforge::tools::EndpointConfig;

    let server = FixtureServer::start(vec![(
        "POST /chat/completions",
        vec![
            Reply::json(200, r#"{"choices": [{"message": {"role": "assistant", "content": "Hello! I'm doing well."}}]}"#),
            Reply::status(500, "down"),
        ],
    )])
    .await;
    std::env::set_var("TOOLFORGE_TEST_LLM_KEY", "sk-llm-abcdef");
    let model = LlmConfig {
        model: Some("tiny-chat".into()),
        endpoint: EndpointConfig {
            base_url: Some(server.url().to_string()),
            api_key_env: Some("TOOLFORGE_TEST_LLM_KEY".into()),
            retries: Some(0),
            ..EndpointConfig::default()
        },
        ..LlmConfig::default()
    }
    .chat_model()
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(registry(&events), Arc::new(Fixed(vec![])))
        .responder(Arc::new(LlmResponder::new(model)))
        .build();
    let direct = agent.ask("hi, how are you?").await.unwrap();
    assert_eq!(direct.answer, "Hello! I'm doing well.");
    let seen = server.requests();
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-llm-abcdef");
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["model"], "tiny-chat");
    assert_eq!(body["messages"][1]["content"], "hi, how are you?");
    // The endpoint fails: the agent still answers, offline.
    let fallback = agent.ask("hi again").await.unwrap();
    assert!(
        fallback.answer.contains("No tool was needed"),
        "{}",
        fallback.answer
    );
}

/// A responder that never answers.
struct Silent;

#[async_trait]
impl toolforge::agent::Responder for Silent {
    async fn respond(
        &self,
        _query: &str,
        _decision: &toolforge::core::RouteDecision,
        _calls: &[toolforge::core::CallRecord],
    ) -> Result<String, toolforge::agent::ResponderError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_answer_step_that_never_ends_is_cut_at_its_budget_and_answered_offline() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder(registry(&events), Arc::new(Fixed(vec![])))
        .responder(Arc::new(Silent))
        .answer_budget(Duration::from_millis(50))
        .build();
    let record = tokio::time::timeout(Duration::from_secs(30), agent.ask("hello there"))
        .await
        .expect("the answer step has a deadline")
        .unwrap();
    assert!(
        record.answer.contains("No tool was needed"),
        "{}",
        record.answer
    );
}
