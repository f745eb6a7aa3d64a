//! Teachers, the key pool and resumable distillation against one loopback
//! fixture server speaking both the Gemini and the OpenAI API, with
//! recorded-style answers and virtual time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use toolforge_core::ToolSpec;
use toolforge_llm::{ClientPool, Gemini, ManualClock, OpenAi, PoolSettings, Slot};
use toolforge_tools::fixture::{FixtureServer, Reply, SeenRequest};
use toolforge_tools::{builtin_tools, ToolsConfig};
use toolforge_trainer::distill::{
    distill, distilled_to_candidates, read_distilled, DistillStop, QueryItem,
};
use toolforge_trainer::teacher::{LlmTeacher, QueryRequest, Teacher, TeacherError};

const GEMINI_FUNCTION_CALLS: &str = r#"{
  "candidates": [{
    "content": {
      "parts": [
        {"functionCall": {"name": "weather", "args": {"location": "Tokyo"}},
         "thoughtSignature": "CiQBVKhc7hZQq2d0yS7x0Jm0dGVzdA=="},
        {"functionCall": {"name": "unit_converter",
                          "args": {"value": 25, "from_unit": "°c", "to_unit": "fahrenheit"}}}
      ],
      "role": "model"
    },
    "finishReason": "STOP",
    "index": 0
  }],
  "usageMetadata": {"promptTokenCount": 1187, "candidatesTokenCount": 52, "totalTokenCount": 1301,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1187}],
                    "thoughtsTokenCount": 62},
  "modelVersion": "gemini-2.5-flash",
  "responseId": "Xk5taOG9Kc2Jz7IP2ZqTqQk"
}"#;

const GEMINI_TEXT: &str = r#"{
  "candidates": [{
    "content": {"parts": [{"text": "Hi there! I'm doing well, thanks for asking. How can I help you today?"}],
                "role": "model"},
    "finishReason": "STOP",
    "index": 0
  }],
  "usageMetadata": {"promptTokenCount": 1180, "candidatesTokenCount": 17, "totalTokenCount": 1230,
                    "thoughtsTokenCount": 33},
  "modelVersion": "gemini-2.5-flash",
  "responseId": "Yk5taNWxBPmPz7IPv4ug0Qg"
}"#;

const GEMINI_QUERIES: &str = r#"{
  "candidates": [{
    "content": {"parts": [{"text": "```json\n[\n  \"uh whats the weather gonna be like in lisbon tomorrow\",\n  \"is it raining in um denver right now\",\n  \"weather for nairobi this weekend\"\n]\n```"}],
                "role": "model"},
    "finishReason": "STOP",
    "index": 0
  }],
  "modelVersion": "gemini-2.5-flash",
  "responseId": "Zk5taKqYJdKDz7IPs6DQgQk"
}"#;

const GEMINI_429: &str = r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}]
  }
}"#;

const OPENAI_TOOL_CALLS: &str = r#"{
  "id": "chatcmpl-BxT3kqzJ5m1nVY0Jq9v7rQ2wXhPLs",
  "object": "chat.completion",
  "created": 1753290000,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [{
    "index": 0,
    "message": {
      "role": "assistant",
      "content": null,
      "tool_calls": [
        {"id": "call_Q1w2E3r4T5y6U7i8O9p0", "type": "function",
         "function": {"name": "weather", "arguments": "{\"location\":\"Tokyo\"}"}},
        {"id": "call_A1s2D3f4G5h6J7k8L9z0", "type": "function",
         "function": {"name": "unit_converter",
                      "arguments": "{\"value\":25,\"from_unit\":\"°c\",\"to_unit\":\"fahrenheit\"}"}}
      ],
      "refusal": null,
      "annotations": []
    },
    "logprobs": null,
    "finish_reason": "tool_calls"
  }],
  "usage": {"prompt_tokens": 912, "completion_tokens": 58, "total_tokens": 970},
  "service_tier": "default",
  "system_fingerprint": "fp_34a54ae93c"
}"#;

const OPENAI_CONTENT: &str = r#"{
  "id": "chatcmpl-BxT3mVb8nQ0aZ2rT6yU1iO9pL4kJh",
  "object": "chat.completion",
  "created": 1753290003,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant",
                "content": "Sure! Here's a haiku about autumn:\n\nCrimson leaves drifting\nWhispers of the cooling wind\nEarth prepares to rest",
                "refusal": null, "annotations": []},
    "logprobs": null,
    "finish_reason": "stop"
  }],
  "usage": {"prompt_tokens": 905, "completion_tokens": 27, "total_tokens": 932},
  "service_tier": "default",
  "system_fingerprint": "fp_34a54ae93c"
}"#;

const OPENAI_BAD_ARGUMENTS: &str = r#"{
  "id": "chatcmpl-BxT3oPq7wE2rT5yU8iO1pA4sD6fGh",
  "object": "chat.completion",
  "created": 1753290007,
  "model": "llama-3.1-8b-instruct",
  "choices": [{
    "index": 0,
    "message": {
      "role": "assistant",
      "content": null,
      "tool_calls": [
        {"id": "call_0", "type": "function",
         "function": {"name": "calculator", "arguments": "{\"expression\": \"15% of 2850\""}}
      ]
    },
    "finish_reason": "tool_calls"
  }],
  "usage": {"prompt_tokens": 640, "completion_tokens": 19, "total_tokens": 659}
}"#;

const OPENAI_429: &str = r#"{
  "error": {
    "message": "Rate limit reached for gpt-4o-mini in organization org-xyz on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
    "type": "requests",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#;

const OPENAI_QUERIES: &str = r#"{
  "id": "chatcmpl-BxT3qLm9nB8vC7xZ6aS5dF4gH3jKl",
  "object": "chat.completion",
  "created": 1753290011,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant",
                "content": "[\"hey how are you doing today\", \"tell me a joke about cats\"]"},
    "finish_reason": "stop"
  }]
}"#;

/// The one fixture server: Gemini and OpenAI routes with their scripted replies.
async fn both_apis(gemini: Vec<Reply>, openai: Vec<Reply>) -> FixtureServer {
    FixtureServer::start(vec![
        ("POST /v1beta/models/", gemini),
        ("POST /chat/completions", openai),
    ])
    .await
}

fn ok(body: &str) -> Reply {
    Reply::json(200, body)
}

fn tools() -> Vec<ToolSpec> {
    builtin_tools(&ToolsConfig::default())
        .iter()
        .map(|t| t.spec())
        .collect()
}

fn settings() -> PoolSettings {
    PoolSettings {
        min_gap: Duration::ZERO,
        backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(60),
        max_attempts: 4,
        budget: None,
        timeout: Duration::from_secs(5),
    }
}

fn pool(
    server: &FixtureServer,
    service: &str,
    keys: usize,
    settings: PoolSettings,
) -> (Arc<ClientPool>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let model = if service == "gemini" {
        "gemini-2.5-flash"
    } else {
        "gpt-4o-mini"
    };
    let slots = (0..keys)
        .map(|i| Slot::new(format!("k{i}"), model))
        .collect();
    let pool = ClientPool::new(service, server.url(), slots, settings, clock.clone()).unwrap();
    (Arc::new(pool), clock)
}

fn gemini(server: &FixtureServer, keys: usize, s: PoolSettings) -> (LlmTeacher, Arc<ManualClock>) {
    let (pool, clock) = pool(server, "gemini", keys, s);
    (LlmTeacher::new(Arc::new(Gemini::new(pool))), clock)
}

fn openai(server: &FixtureServer, keys: usize, s: PoolSettings) -> (LlmTeacher, Arc<ManualClock>) {
    let (pool, clock) = pool(server, "openai", keys, s);
    (LlmTeacher::new(Arc::new(OpenAi::new(pool))), clock)
}

/// The key a request was sent with: Gemini's `?key=` or OpenAI's bearer token.
fn key_of(request: &SeenRequest) -> String {
    if let Some(auth) = request.headers.get("authorization") {
        return auth.trim_start_matches("Bearer ").to_string();
    }
    request
        .target
        .split_once("key=")
        .map(|(_, key)| key.to_string())
        .unwrap_or_default()
}

fn body_of(request: &SeenRequest) -> Value {
    serde_json::from_str(&request.body).unwrap()
}

/// The user's text in a request of either API.
fn query_of(request: &SeenRequest) -> String {
    let body = body_of(request);
    let text = if request.target.starts_with("/chat/completions") {
        body["messages"].as_array().unwrap().last().unwrap()["content"].clone()
    } else {
        body["contents"][0]["parts"][0]["text"].clone()
    };
    text.as_str().unwrap().to_string()
}

fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == key || contains_key(v, key)),
        Value::Array(items) => items.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}

#[tokio::test]
async fn gemini_function_calls_become_ordered_calls() {
    let server = both_apis(vec![ok(GEMINI_FUNCTION_CALLS)], vec![]).await;
    let (teacher, _clock) = gemini(&server, 1, settings());
    let tools = tools();
    let answer = teacher
        .label("weather in Tokyo and 25°C in Fahrenheit", &tools)
        .await
        .unwrap();
    assert_eq!(
        answer.calls,
        vec![
            json!({"tool": "weather", "arguments": {"location": "Tokyo"}}),
            json!({"tool": "unit_converter",
                   "arguments": {"value": 25, "from_unit": "°c", "to_unit": "fahrenheit"}}),
        ]
    );
    assert!(answer.raw.contains("functionCall"));
    assert_eq!(teacher.name(), "gemini:gemini-2.5-flash");

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].target,
        "/v1beta/models/gemini-2.5-flash:generateContent?key=k0"
    );
    let body = body_of(&seen[0]);
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "weather in Tokyo and 25°C in Fahrenheit"}]}])
    );
    assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    let declarations = body["tools"][0]["functionDeclarations"].as_array().unwrap();
    let names: Vec<&str> = declarations
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, expected);
    let weather = declarations
        .iter()
        .find(|d| d["name"] == "weather")
        .unwrap();
    assert_eq!(
        weather["parameters"]["properties"]["date"]["nullable"],
        true
    );
    assert!(!contains_key(&body["tools"], "additionalProperties"));
    assert!(!contains_key(&body["tools"], "$schema"));
    let instructions = body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(instructions.contains("Call no function for chit-chat"));
    assert!(instructions.contains("unit_converter"));
}

#[tokio::test]
async fn gemini_text_answer_means_no_tool() {
    let server = both_apis(vec![ok(GEMINI_TEXT)], vec![]).await;
    let (teacher, _clock) = gemini(&server, 1, settings());
    let answer = teacher.label("hey how are you", &tools()).await.unwrap();
    assert!(answer.calls.is_empty());
    assert!(answer.raw.contains("How can I help you today?"));
}

#[tokio::test]
async fn gemini_malformed_function_call_is_kept_not_dropped() {
    let body = r#"{"candidates": [{"content": {}, "finishReason": "MALFORMED_FUNCTION_CALL",
        "finishMessage": "Malformed function call: print(default_api.weather(location=Tokyo))",
        "index": 0}], "modelVersion": "gemini-2.5-flash"}"#;
    let server = both_apis(vec![ok(body)], vec![]).await;
    let (teacher, _clock) = gemini(&server, 1, settings());
    let answer = teacher.label("weather tokyo", &tools()).await.unwrap();
    assert_eq!(answer.calls.len(), 1);
    assert!(answer.calls[0]
        .as_str()
        .unwrap()
        .starts_with("Malformed function call"));
    assert!(answer.raw.contains("MALFORMED_FUNCTION_CALL"));
}

#[tokio::test]
async fn openai_tool_calls_become_ordered_calls() {
    let server = both_apis(vec![], vec![ok(OPENAI_TOOL_CALLS)]).await;
    let (teacher, _clock) = openai(&server, 1, settings());
    let tools = tools();
    let answer = teacher
        .label("weather in Tokyo and 25°C in Fahrenheit", &tools)
        .await
        .unwrap();
    assert_eq!(
        answer.calls,
        vec![
            json!({"tool": "weather", "arguments": {"location": "Tokyo"}}),
            json!({"tool": "unit_converter",
                   "arguments": {"value": 25, "from_unit": "°c", "to_unit": "fahrenheit"}}),
        ]
    );
    assert_eq!(teacher.name(), "openai:gpt-4o-mini");
    let seen = server.requests();
    assert_eq!(seen[0].target, "/chat/completions");
    assert_eq!(seen[0].headers["authorization"], "Bearer k0");
    let body = body_of(&seen[0]);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "weather in Tokyo and 25°C in Fahrenheit"})
    );
    let sent: Vec<Value> = tools.iter().map(ToolSpec::to_openai).collect();
    assert_eq!(body["tools"], Value::Array(sent));
}

#[tokio::test]
async fn openai_content_answer_means_no_tool() {
    let server = both_apis(vec![], vec![ok(OPENAI_CONTENT)]).await;
    let (teacher, _clock) = openai(&server, 1, settings());
    let answer = teacher
        .label("write a haiku about autumn", &tools())
        .await
        .unwrap();
    assert!(answer.calls.is_empty());
    assert!(answer.raw.contains("Crimson leaves"));
}

#[tokio::test]
async fn openai_invalid_json_arguments_stay_a_string() {
    let server = both_apis(vec![], vec![ok(OPENAI_BAD_ARGUMENTS)]).await;
    let (teacher, _clock) = openai(&server, 1, settings());
    let answer = teacher.label("whats 15% of 2850", &tools()).await.unwrap();
    assert_eq!(
        answer.calls,
        vec![json!({"tool": "calculator", "arguments": "{\"expression\": \"15% of 2850\""})]
    );
}

#[tokio::test]
async fn both_teachers_generate_queries() {
    let server = both_apis(vec![ok(GEMINI_QUERIES)], vec![ok(OPENAI_QUERIES)]).await;
    let tools = tools();
    let (gemini, _c1) = gemini(&server, 1, settings());
    let request = QueryRequest {
        tool: Some("weather".into()),
        category: "single".into(),
        style: "spoken".into(),
        count: 3,
        examples: Vec::new(),
    };
    let queries = gemini.generate_queries(&request, &tools).await.unwrap();
    assert_eq!(queries.len(), 3);
    assert_eq!(queries[1], "is it raining in um denver right now");
    let (openai, _c2) = openai(&server, 1, settings());
    let chit_chat = QueryRequest {
        tool: None,
        category: "no_tool".into(),
        style: "casual".into(),
        count: 1,
        examples: Vec::new(),
    };
    let queries = openai.generate_queries(&chit_chat, &tools).await.unwrap();
    assert_eq!(queries, vec!["hey how are you doing today"]);

    let seen = server.requests();
    let gemini_body = body_of(&seen[0]);
    assert!(gemini_body.get("tools").is_none());
    let prompt = query_of(&seen[0]);
    assert!(
        prompt.contains("exactly one tool: `weather`") && prompt.contains("transcribed speech")
    );
    assert!(query_of(&seen[1]).contains("needs none of the tools"));
    let unknown = QueryRequest {
        tool: Some("teleport".into()),
        ..request
    };
    assert!(matches!(
        gemini.generate_queries(&unknown, &tools).await,
        Err(TeacherError::InvalidRequest(_))
    ));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn pool_rotates_keys_and_waits_out_the_min_gap() {
    let server = both_apis(vec![ok(GEMINI_TEXT)], vec![]).await;
    let s = PoolSettings {
        min_gap: Duration::from_secs(4),
        ..settings()
    };
    let (pool, clock) = pool(&server, "gemini", 3, s);
    let teacher = LlmTeacher::new(Arc::new(Gemini::new(pool.clone())));
    let tools = tools();
    let mut elapsed = Vec::new();
    for i in 0..5 {
        teacher.label(&format!("hello {i}"), &tools).await.unwrap();
        elapsed.push(clock.elapsed().as_secs());
    }
    let keys: Vec<String> = server.requests().iter().map(key_of).collect();
    assert_eq!(keys, vec!["k0", "k1", "k2", "k0", "k1"]);
    assert_eq!(elapsed, vec![0, 0, 0, 4, 4]);
    assert_eq!(pool.requests_sent(), 5);
}

#[tokio::test]
async fn rate_limited_key_backs_off_and_the_request_moves_to_another_key() {
    let server = both_apis(
        vec![Reply::json(429, GEMINI_429), ok(GEMINI_FUNCTION_CALLS)],
        vec![],
    )
    .await;
    let (teacher, clock) = gemini(&server, 2, settings());
    let tools = tools();
    let answer = teacher.label("weather in Tokyo", &tools).await.unwrap();
    assert_eq!(answer.calls[0]["tool"], "weather");
    // Slot 0 is backing off (2 s), so slot 1 serves the next query too, at once.
    teacher.label("weather in Oslo", &tools).await.unwrap();
    let keys: Vec<String> = server.requests().iter().map(key_of).collect();
    assert_eq!(keys, vec!["k0", "k1", "k1"]);
    assert_eq!(clock.elapsed(), Duration::ZERO);
    // Once its backoff is over, slot 0 has rested longest and goes next.
    clock.advance(Duration::from_secs(2));
    teacher.label("weather in Rome", &tools).await.unwrap();
    assert_eq!(key_of(&server.requests()[3]), "k0");
}

#[tokio::test]
async fn retry_after_is_honoured_per_slot() {
    let server = both_apis(
        vec![],
        vec![
            Reply::json(429, OPENAI_429).with_header("retry-after", "20"),
            ok(OPENAI_CONTENT),
        ],
    )
    .await;
    let (teacher, clock) = openai(&server, 1, settings());
    let answer = teacher.label("write a haiku", &tools()).await.unwrap();
    assert!(answer.calls.is_empty());
    assert_eq!(clock.elapsed(), Duration::from_secs(20));
    let keys: Vec<String> = server.requests().iter().map(key_of).collect();
    assert_eq!(keys, vec!["k0", "k0"]);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_bounded_attempts() {
    let server = both_apis(vec![Reply::json(503, r#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#)], vec![]).await;
    let (teacher, clock) = gemini(&server, 2, settings());
    let err = teacher
        .label("weather in Tokyo", &tools())
        .await
        .unwrap_err();
    match &err {
        TeacherError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 4);
            assert_eq!(last.status(), Some(503));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(!err.is_fatal());
    let keys: Vec<String> = server.requests().iter().map(key_of).collect();
    assert_eq!(keys, vec!["k0", "k1", "k0", "k1"]);
    // Both keys failed at once; the third attempt waited out slot 0's 2 s backoff,
    // the fourth found slot 1's over too.
    assert_eq!(clock.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn rejected_keys_are_disabled_and_never_leak() {
    let server = both_apis(
        vec![
            Reply::json(400, r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}"#),
            ok(GEMINI_TEXT),
        ],
        vec![Reply::json(401, r#"{"error": {"message": "Incorrect API key provided: k0.", "type": "invalid_request_error", "code": "invalid_api_key"}}"#)],
    )
    .await;
    let (teacher, _clock) = gemini(&server, 2, settings());
    teacher.label("hi", &tools()).await.unwrap();
    teacher.label("hi again", &tools()).await.unwrap();
    let keys: Vec<String> = server.requests().iter().map(key_of).collect();
    assert_eq!(keys, vec!["k0", "k1", "k1"]);

    let (teacher, _clock) = openai(&server, 1, settings());
    let err = teacher.label("hi", &tools()).await.unwrap_err();
    assert!(matches!(err, TeacherError::NoUsableSlot), "{err:?}");
    assert!(err.is_fatal());

    // A connection failure quotes the URL, which carries Gemini's key.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let clock = Arc::new(ManualClock::new());
    let slots = vec![Slot::new("SeCrEt-KeY-123", "gemini-2.5-flash")];
    let pool = ClientPool::new("gemini", &url, slots, settings(), clock).unwrap();
    let err = LlmTeacher::new(Arc::new(Gemini::new(Arc::new(pool))))
        .label("hi", &tools())
        .await
        .unwrap_err();
    assert!(matches!(err, TeacherError::Unavailable { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("SeCrEt-KeY-123"));
}

#[tokio::test]
async fn budget_caps_total_requests_including_retries() {
    let server = both_apis(vec![Reply::json(429, GEMINI_429), ok(GEMINI_TEXT)], vec![]).await;
    let s = PoolSettings {
        budget: Some(3),
        ..settings()
    };
    let (teacher, _clock) = gemini(&server, 2, s);
    let tools = tools();
    teacher.label("one", &tools).await.unwrap();
    teacher.label("two", &tools).await.unwrap();
    let err = teacher.label("three", &tools).await.unwrap_err();
    assert!(
        matches!(err, TeacherError::BudgetExhausted { budget: 3 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("budget of 3 requests"));
    assert_eq!(server.requests().len(), 3);
}

fn items(n: usize) -> Vec<QueryItem> {
    (1..=n)
        .map(|i| QueryItem {
            id: format!("q{i}"),
            query: format!("what is the weather in city number {i}"),
            meta: json!({"category": "single", "style": "casual"}),
        })
        .collect()
}

#[tokio::test]
async fn interrupted_distillation_resumes_without_repeating_work() {
    let server = both_apis(vec![ok(GEMINI_FUNCTION_CALLS)], vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("distilled.jsonl");
    let queries = items(5);
    let done_line = |i: usize| {
        json!({"id": format!("q{i}"), "query": queries[i - 1].query, "teacher": "gemini:gemini-2.5-flash",
               "raw": "{}", "calls": [{"tool": "weather", "arguments": {"location": "Earlier"}}],
               "meta": {}})
        .to_string()
    };
    // Two finished lines, then the crash cut the third one short.
    std::fs::write(
        &out,
        format!(
            "{}\n{}\n{{\"id\": \"q3\", \"query\": \"what is the wea",
            done_line(1),
            done_line(2)
        ),
    )
    .unwrap();

    let (teacher, _clock) = gemini(&server, 2, settings());
    let stats = distill(&teacher, &queries, &tools(), &out, false)
        .await
        .unwrap();
    assert_eq!(stats.total, 5);
    assert_eq!(stats.skipped, 2);
    assert_eq!(stats.answered, 3);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.dropped_lines, 1);
    assert_eq!(stats.stopped, None);

    let asked: Vec<String> = server.requests().iter().map(query_of).collect();
    assert_eq!(asked.len(), 3);
    assert!(!asked.contains(&queries[0].query) && !asked.contains(&queries[1].query));

    let (lines, dropped) = read_distilled(&out).unwrap();
    assert_eq!(dropped, 0);
    let ids: Vec<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, vec!["q1", "q2", "q3", "q4", "q5"]);
    assert_eq!(lines[0].calls[0]["arguments"]["location"], "Earlier");
    assert_eq!(lines[2].teacher, "gemini:gemini-2.5-flash");
    assert_eq!(lines[2].calls.len(), 2);
    assert_eq!(lines[2].meta["category"], "single");
    assert!(lines[2].raw.contains("functionCall"));

    // A second rerun has nothing left to do.
    let stats = distill(&teacher, &queries, &tools(), &out, false)
        .await
        .unwrap();
    assert_eq!((stats.skipped, stats.answered), (5, 0));
    assert_eq!(server.requests().len(), 3);

    let candidates = distilled_to_candidates(&lines);
    assert_eq!(candidates.len(), 5);
    assert_eq!(candidates[3].source, "teacher:gemini:gemini-2.5-flash");
    assert_eq!(candidates[3].meta["id"], "q4");
    assert_eq!(candidates[3].raw_calls, lines[3].calls);
}

#[tokio::test]
async fn spent_budget_stops_distillation_cleanly_and_a_rerun_finishes() {
    let server = both_apis(vec![], vec![ok(OPENAI_TOOL_CALLS)]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested").join("distilled.jsonl");
    let queries = items(4);
    let s = PoolSettings {
        budget: Some(2),
        ..settings()
    };
    let (teacher, _clock) = openai(&server, 1, s.clone());
    let stats = distill(&teacher, &queries, &tools(), &out, true)
        .await
        .unwrap();
    assert_eq!(stats.answered, 2);
    assert_eq!(stats.stopped, Some(DistillStop::BudgetExhausted));
    assert_eq!(read_distilled(&out).unwrap().0.len(), 2);

    let (fresh, _clock) = openai(&server, 1, s);
    let stats = distill(&fresh, &queries, &tools(), &out, false)
        .await
        .unwrap();
    assert_eq!((stats.skipped, stats.answered, stats.stopped), (2, 2, None));
    let ids: Vec<String> = read_distilled(&out)
        .unwrap()
        .0
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec!["q1", "q2", "q3", "q4"]);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_failed_query_is_counted_and_the_run_goes_on() {
    let server = both_apis(
        vec![
            ok(GEMINI_TEXT),
            Reply::json(400, r#"{"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}}"#),
            ok(GEMINI_TEXT),
        ],
        vec![],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("distilled.jsonl");
    let queries = items(3);
    let (teacher, _clock) = gemini(&server, 1, settings());
    let stats = distill(&teacher, &queries, &tools(), &out, false)
        .await
        .unwrap();
    assert_eq!((stats.answered, stats.errors), (2, 1));
    assert_eq!(stats.failures[0].id, "q2");
    assert!(stats.failures[0].error.contains("400"));
    let ids: Vec<String> = read_distilled(&out)
        .unwrap()
        .0
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec!["q1", "q3"]);
    // The rerun retries only the failed query.
    let stats = distill(&teacher, &queries, &tools(), &out, false)
        .await
        .unwrap();
    assert_eq!((stats.skipped, stats.answered), (2, 1));
    assert_eq!(query_of(&server.requests()[3]), queries[1].query);
}
