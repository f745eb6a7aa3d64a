//! The layers every request passes, outermost first: `observe` (a span, the
//! request metrics), `authorize` (the optional bearer token, compared in
//! constant time) and `admit` (503 while stopping or saturated, 504 past the
//! deadline).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::routes::ApiError;
use crate::state::AppState;

/// Paths anyone may call: a load balancer's health check needs no token.
const OPEN_PATHS: [&str; 1] = ["/healthz"];

/// A span per request, and the request's count and latency by endpoint.
pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("request", method = %request.method(), endpoint = %endpoint);
    let _in_flight = state.metrics.enter();
    let response = next.run(request).instrument(span).await;
    state
        .metrics
        .request(&endpoint, response.status().as_u16(), start.elapsed());
    response
}

/// 401 unless the request carries `Authorization: Bearer <token>` when a token is set.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.options.token else {
        return next.run(request).await;
    };
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given, token.expose().as_bytes()) {
        next.run(request).await
    } else {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// 503 while stopping or when every permit is taken; 504 past the deadline.
pub async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if state.is_shutting_down() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Ok(_permit) = Arc::clone(&state.permits).try_acquire_owned() else {
        state.metrics.saturated();
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "saturated: {} requests in flight; retry shortly",
                state.options.concurrency
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    };
    let deadline = state.options.deadline;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.deadline_passed();
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the request ran past its deadline of {} ms",
                    deadline.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// Equality whose time depends only on the lengths, not on where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_by_every_byte() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-token"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
