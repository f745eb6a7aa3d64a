//! The endpoints of contract 1.1: JSON in and out, `{"error": "<reason>"}` with
//! 400 (bad input), 401 (auth), 404 (unknown run or path), 413 (too large),
//! 503 (saturated or stopping) and 504 (deadline passed).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use toolforge_agent::{AgentError, AskOutput};
use toolforge_core::{log_has_run, Feedback, FeedbackRecord, RunRecord};

use crate::state::AppState;

/// An error answer: a status and `{"error": reason}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
}

impl ApiError {
    /// An error with this status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.reason }))).into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(error: AgentError) -> Self {
        let status = match error {
            AgentError::EmptyQuery => StatusCode::BAD_REQUEST,
            AgentError::QueryTooLong(_) => StatusCode::PAYLOAD_TOO_LARGE,
        };
        Self::new(status, error.to_string())
    }
}

type Answer = Result<Response, ApiError>;

/// The body as a JSON object, or a 400/413 saying why not.
fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let body =
        body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// `object[field]` as a string, or a 400 naming the field.
fn string_field<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ApiError::bad_request(format!("`{field}` must be a string"))),
        None => Err(ApiError::bad_request(format!("missing field `{field}`"))),
    }
}

/// The decision of a routed run, as `route` prints it, plus `latency_us` and `run_id`.
fn decision_json(record: &RunRecord) -> Value {
    let mut value = serde_json::to_value(&record.decision).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.insert("latency_us".into(), json!(record.total_us));
        object.insert("run_id".into(), json!(record.run_id));
    }
    value
}

/// Waits until the run log holds every line queued so far (this request's
/// too): a request is answered only once its run is in the file.
async fn logged(state: &AppState) {
    if let Some(log) = &state.log {
        log.flushed().await;
    }
}

/// `POST /v1/route`: `{"query"}` -> a decision; `{"queries": [...]}` -> `{"decisions": [...]}`.
pub async fn route(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let object = json_object(body)?;
    let served = state.served();
    if let Some(queries) = object.get("queries") {
        let Value::Array(queries) = queries else {
            return Err(ApiError::bad_request("`queries` must be an array"));
        };
        if queries.len() > state.options.max_batch {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{} queries in one batch; the limit is {}",
                    queries.len(),
                    state.options.max_batch
                ),
            ));
        }
        let mut decisions = Vec::with_capacity(queries.len());
        for item in queries {
            let query = match item {
                Value::String(text) => Some(text.as_str()),
                Value::Object(object) => object.get("query").and_then(Value::as_str),
                _ => None,
            };
            let decided = match query {
                None => {
                    json!({"error": "each item must be a query string or {\"query\": \"...\"}"})
                }
                Some(query) => match served.agent.route(query).await {
                    Ok(record) => {
                        state.metrics.run(&record);
                        state.remember_run(&record.run_id);
                        decision_json(&record)
                    }
                    Err(error) => json!({"error": error.to_string()}),
                },
            };
            decisions.push(decided);
        }
        logged(&state).await;
        return Ok(Json(json!({ "decisions": decisions })).into_response());
    }
    let query = string_field(&object, "query")?;
    let record = served.agent.route(query).await?;
    state.metrics.run(&record);
    state.remember_run(&record.run_id);
    logged(&state).await;
    Ok(Json(decision_json(&record)).into_response())
}

/// `POST /v1/ask`: `{"query"}` -> the `ask --json` object plus `run_id`.
pub async fn ask(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let object = json_object(body)?;
    let query = string_field(&object, "query")?;
    let served = state.served();
    let record = served.agent.ask(query).await?;
    state.metrics.run(&record);
    state.remember_run(&record.run_id);
    let mut value = serde_json::to_value(AskOutput::from(&record)).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.insert("run_id".into(), json!(record.run_id));
    }
    logged(&state).await;
    Ok(Json(value).into_response())
}

/// `POST /v1/feedback`: `{"run_id", "ok": true}` or `{"run_id", "correct": {"calls": [...]}}`.
pub async fn feedback(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let object = json_object(body)?;
    let run_id = string_field(&object, "run_id")?.to_string();
    let served = state.served();
    let verdict = match (object.get("correct"), object.get("ok")) {
        (Some(correct), _) => {
            toolforge_agent::feedback::correction(correct, served.agent.registry())
                .map_err(|e| ApiError::bad_request(format!("`correct`: {e}")))?
        }
        (None, Some(Value::Bool(true))) => Feedback::Ok,
        _ => {
            return Err(ApiError::bad_request(
                "give \"ok\": true or \"correct\": {\"calls\": [...]}",
            ))
        }
    };
    let Some(log) = state.log.clone() else {
        return Err(ApiError::bad_request(
            "the run log is off, so feedback cannot be recorded",
        ));
    };
    if !state.served_recently(&run_id) {
        let path = log.path().to_path_buf();
        let id = run_id.clone();
        let known = tokio::task::spawn_blocking(move || {
            toolforge_core::jsonl::with_rotated(&path)
                .iter()
                .rev()
                .any(|file| {
                    std::fs::File::open(file)
                        .map(std::io::BufReader::new)
                        .and_then(|reader| log_has_run(reader, &id))
                        .unwrap_or(false)
                })
        })
        .await
        .unwrap_or(false);
        if !known {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no run `{run_id}` in the run log"),
            ));
        }
    }
    log.append(&FeedbackRecord::now(&run_id, verdict))
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    logged(&state).await;
    Ok(Json(json!({ "recorded": true, "run_id": run_id })).into_response())
}

/// `GET /v1/tools`: the registered tools with their JSON schemas.
pub async fn tools(State(state): State<Arc<AppState>>) -> Response {
    let specs = state.served().agent.registry().specs();
    Json(json!({ "tools": specs })).into_response()
}

/// `GET /healthz`: 200 with the model version when ready, 503 when stopping.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let version = state.served().version.clone();
    if state.is_shutting_down() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    Json(json!({ "status": "ok", "model_version": version })).into_response()
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .metrics
        .render(&state.served().version, state.log_counts());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

/// `POST /v1/admin/reload`: a new agent from the configuration, swapped in.
pub async fn reload(State(state): State<Arc<AppState>>) -> Answer {
    let (previous, current) = state.reload().await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, the old model still serves: {e}"),
        )
    })?;
    Ok(
        Json(json!({ "reloaded": true, "previous": previous, "model_version": current }))
            .into_response(),
    )
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint (see /openapi.json)",
    )
}
