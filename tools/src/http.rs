//! The HTTP client shared by network tools: a base URL, an optional key, a
//! per-request timeout, and bounded retries with exponential backoff on 429, 5xx
//! and connection failures (honouring `Retry-After` up to a cap). Bodies are read
//! up to a limit, never whole, and the key never appears in an error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use toolforge_core::{ApiKey, ToolError};

use crate::config::EndpointConfig;

/// Largest success body read from a service; a longer one is refused as it
/// arrives, never buffered whole.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Of an error response only the start is read: it is quoted, truncated, in the error.
const ERROR_BODY_BYTES: usize = 4 * 1024;

/// What replaces a key in error messages.
const SCRUBBED: &str = "***";

/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why an HTTP exchange failed, after retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// The service answered with a non-success status.
    #[error("{service} answered HTTP {status}: {body}")]
    Status {
        /// Name of the service, for messages.
        service: String,
        /// The HTTP status code.
        status: u16,
        /// The response body, truncated to about 300 bytes.
        body: String,
    },
    /// The request could not be sent or its response not read.
    #[error("{service} is unreachable: {message}")]
    Network {
        /// Name of the service, for messages.
        service: String,
        /// The client's error, as text.
        message: String,
    },
    /// The service did not answer within the endpoint's timeout.
    #[error("{service} did not answer within {ms} ms")]
    Timeout {
        /// Name of the service, for messages.
        service: String,
        /// The timeout, in milliseconds.
        ms: u64,
    },
    /// A response body longer than [`MAX_BODY_BYTES`].
    #[error("{service} sent a response larger than {limit} bytes")]
    TooLarge {
        /// Name of the service, for messages.
        service: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A success response whose body is not valid JSON.
    #[error("{service} sent a malformed response: {message}")]
    Malformed {
        /// Name of the service, for messages.
        service: String,
        /// The JSON parse error, as text.
        message: String,
    },
}

impl HttpError {
    /// The error with `secret` (plain and percent-encoded) removed from its text:
    /// an upstream may echo a key in its error body, and a connection error quotes
    /// the request URL, which may carry the key as a query parameter. Secrets
    /// shorter than 4 characters are left alone (they would scrub ordinary text).
    pub fn without_secret(self, secret: &str) -> Self {
        if secret.len() < 4 {
            return self;
        }
        let encoded = percent_encode(secret);
        let scrub = |text: String| text.replace(secret, SCRUBBED).replace(&encoded, SCRUBBED);
        match self {
            HttpError::Status {
                service,
                status,
                body,
            } => HttpError::Status {
                service,
                status,
                body: scrub(body),
            },
            HttpError::Network { service, message } => HttpError::Network {
                service,
                message: scrub(message),
            },
            HttpError::Malformed { service, message } => HttpError::Malformed {
                service,
                message: scrub(message),
            },
            other @ (HttpError::Timeout { .. } | HttpError::TooLarge { .. }) => other,
        }
    }

    /// The HTTP status code, for [`HttpError::Status`] only.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A failed single attempt of [`HttpEndpoint::post_json_once`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFailure {
    /// What went wrong.
    pub error: HttpError,
    /// The delay the server asked for in `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// Whether trying again may help (429, 5xx, connection failures).
    pub retryable: bool,
}

impl AttemptFailure {
    fn new(error: HttpError, retry_after: Option<Duration>, retryable: bool) -> Self {
        Self {
            error,
            retry_after,
            retryable,
        }
    }
}

impl From<HttpError> for ToolError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Timeout { ms, .. } => ToolError::Timeout(ms),
            HttpError::Malformed { .. } | HttpError::TooLarge { .. } => {
                ToolError::Failed(e.to_string())
            }
            _ => ToolError::Network(e.to_string()),
        }
    }
}

/// A configured endpoint of one service.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    service: String,
    client: reqwest::Client,
    base_url: String,
    api_key: Option<ApiKey>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl HttpEndpoint {
    /// `service` names the API in errors; `default_base` is its public URL.
    pub fn new(service: &str, config: &EndpointConfig, default_base: &str) -> Self {
        let timeout = config.timeout();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("toolforge/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let base_url = config
            .base_url
            .clone()
            .unwrap_or_else(|| default_base.to_string())
            .trim_end_matches('/')
            .to_string();
        Self {
            service: service.to_string(),
            client,
            base_url,
            api_key: config.resolve_key(),
            timeout,
            retries: config.retries(),
            backoff: config.backoff(),
        }
    }

    /// Name of the service, as used in errors.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The resolved API key, if one is configured.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(ApiKey::expose)
    }

    /// The key, or a clear `NotConfigured` error naming the service.
    pub fn require_key(&self) -> Result<&str, ToolError> {
        self.api_key().ok_or_else(|| {
            ToolError::NotConfigured(format!(
                "{} needs an API key (set api_key_env in the tool's config)",
                self.service
            ))
        })
    }

    /// GET `base_url + path` with query parameters and headers; parses JSON.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
    ) -> Result<Value, HttpError> {
        self.send(Method::GET, path, query, headers, None).await
    }

    /// POST a JSON body to `base_url + path`; parses JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, String)],
    ) -> Result<Value, HttpError> {
        self.send(Method::POST, path, &[], headers, Some(body))
            .await
    }

    /// One POST attempt with query parameters and no retries, for callers that run
    /// their own retry policy (e.g. rotating API keys): a failure carries the
    /// server's `Retry-After` delay, which [`HttpError`] cannot.
    pub async fn post_json_once(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
        headers: &[(&str, String)],
    ) -> Result<Value, AttemptFailure> {
        let url = format!("{}{}", self.base_url, path);
        self.attempt(&Method::POST, &url, query, headers, Some(body), 0)
            .await
            .map_err(|failure| AttemptFailure {
                error: self.scrubbed(failure.error),
                ..failure
            })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, HttpError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0;
        loop {
            let failure = match self
                .attempt(&method, &url, query, headers, body, attempt)
                .await
            {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if !failure.retryable || attempt >= self.retries {
                return Err(self.scrubbed(failure.error));
            }
            let retry_in = failure
                .retry_after
                .unwrap_or_else(|| self.backoff * 2u32.pow(attempt));
            attempt += 1;
            tracing::debug!(service = %self.service, attempt, ?retry_in, "retrying");
            tokio::time::sleep(retry_in.min(MAX_RETRY_AFTER)).await;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Option<&Value>,
        attempt: u32,
    ) -> Result<Value, AttemptFailure> {
        let mut request = self.client.request(method.clone(), url).query(query);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let span = tracing::debug_span!("http", service = %self.service, attempt);
        let _guard = span.enter();
        let outcome = request.send().await;
        drop(_guard);
        let response = match outcome {
            Ok(response) => response,
            Err(e) => return Err(AttemptFailure::new(self.network(e), None, true)),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        if status.is_success() {
            let body = match self.read_body(response, MAX_BODY_BYTES).await {
                Ok(Body::Whole(body)) => body,
                Ok(Body::Cut(_)) => {
                    let error = HttpError::TooLarge {
                        service: self.service.clone(),
                        limit: MAX_BODY_BYTES,
                    };
                    return Err(AttemptFailure::new(error, None, false));
                }
                Err(e) => return Err(AttemptFailure::new(self.network(e), None, false)),
            };
            return serde_json::from_slice(&body).map_err(|e| {
                let error = HttpError::Malformed {
                    service: self.service.clone(),
                    message: e.to_string(),
                };
                AttemptFailure::new(error, None, false)
            });
        }
        let body = match self.read_body(response, ERROR_BODY_BYTES).await {
            Ok(Body::Whole(body) | Body::Cut(body)) => body,
            Err(_) => Vec::new(),
        };
        let error = HttpError::Status {
            service: self.service.clone(),
            status: status.as_u16(),
            body: truncate(&String::from_utf8_lossy(&body), 300),
        };
        Err(AttemptFailure::new(error, retry_after, retryable(status)))
    }

    /// Reads at most `limit` bytes of the body, chunk by chunk: a declared or
    /// actual length beyond it stops the read ([`Body::Cut`]).
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Body, reqwest::Error> {
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Ok(Body::Cut(Vec::new()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                body.extend_from_slice(&chunk[..limit - body.len()]);
                return Ok(Body::Cut(body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Body::Whole(body))
    }

    /// `error` without this endpoint's key.
    fn scrubbed(&self, error: HttpError) -> HttpError {
        match self.api_key() {
            Some(key) => error.without_secret(key),
            None => error,
        }
    }

    fn network(&self, e: reqwest::Error) -> HttpError {
        if e.is_timeout() {
            HttpError::Timeout {
                service: self.service.clone(),
                ms: self.timeout.as_millis() as u64,
            }
        } else {
            HttpError::Network {
                service: self.service.clone(),
                message: e.to_string(),
            }
        }
    }
}

/// A body read up to a limit: all of it, or the part before the limit.
enum Body {
    Whole(Vec<u8>),
    Cut(Vec<u8>),
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
