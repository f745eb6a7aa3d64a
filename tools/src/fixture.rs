//! A tiny loopback HTTP/1.1 server for tests: it answers scripted responses in a
//! real API's format and records the requests it saw. Only binds 127.0.0.1.
//! Compiled for this crate's tests and behind the `test-util` feature, never into
//! the library users embed.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use toolforge_tools::fixture::{FixtureServer, Reply};
//! let server = FixtureServer::start(vec![
//!     ("GET /hello", vec![Reply::status(429, ""), Reply::json(200, r#"{"ok":true}"#)]),
//! ]).await;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! # });
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// `content-type` header value.
    pub content_type: String,
    /// Extra headers (e.g. `retry-after`).
    pub headers: Vec<(String, String)>,
    /// Wait before answering (to provoke client timeouts).
    pub delay: Duration,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_string(),
            content_type: "application/json".into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// A plain-text reply (an error page).
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            content_type: "text/plain".into(),
            ..Self::json(status, body)
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// HTTP method.
    pub method: String,
    /// Path with query string.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// Request body.
    pub body: String,
}

type Routes = Arc<Mutex<Vec<(String, String, Vec<Reply>)>>>;

/// The running server; it stops when dropped.
pub struct FixtureServer {
    url: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FixtureServer {
    /// Routes are `("METHOD /path", replies)`; a request matches the first route whose
    /// method equals and whose path is a prefix of the request path. Replies are
    /// served in order, the last one repeating. Unmatched requests get 404.
    pub async fn start(routes: Vec<(&str, Vec<Reply>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let routes: Routes = Arc::new(Mutex::new(
            routes
                .into_iter()
                .map(|(key, replies)| {
                    let (method, path) = key.split_once(' ').unwrap_or(("GET", key));
                    (method.to_string(), path.to_string(), replies)
                })
                .collect(),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_in_task = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let seen = seen_in_task.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, routes, seen).await;
                });
            }
        });
        Self { url, seen, task }
    }

    /// Base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    routes: Routes,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let path = target.split('?').next().unwrap_or("").to_string();
        let reply = {
            let mut routes = routes.lock().expect("routes lock");
            routes
                .iter_mut()
                .find(|(m, p, _)| *m == method && path.starts_with(p.as_str()))
                .map(|(_, _, replies)| {
                    if replies.len() > 1 {
                        replies.remove(0)
                    } else {
                        replies
                            .first()
                            .cloned()
                            .unwrap_or_else(|| Reply::status(500, "no reply scripted"))
                    }
                })
                .unwrap_or_else(|| Reply::status(404, "not found"))
        };
        if let Ok(mut seen) = seen.lock() {
            seen.push(SeenRequest {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        tokio::time::sleep(reply.delay).await;
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            reply.status,
            reply.content_type,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        write.write_all(head.as_bytes()).await?;
        write.write_all(reply.body.as_bytes()).await?;
        write.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EndpointConfig;
    use crate::http::{HttpEndpoint, HttpError};

    fn endpoint(url: &str) -> HttpEndpoint {
        let config = EndpointConfig {
            base_url: Some(url.to_string()),
            backoff_ms: Some(1),
            timeout_ms: Some(2_000),
            retries: Some(2),
            ..EndpointConfig::default()
        };
        HttpEndpoint::new("fixture", &config, "http://unused")
    }

    #[tokio::test]
    async fn retries_429_then_succeeds() {
        let server = FixtureServer::start(vec![(
            "GET /x",
            vec![
                Reply::status(429, "slow down").with_header("retry-after", "0"),
                Reply::status(503, "busy"),
                Reply::json(200, r#"{"ok": 1}"#),
            ],
        )])
        .await;
        let value = endpoint(server.url())
            .get_json("/x", &[("q", "a b".into())], &[])
            .await
            .unwrap();
        assert_eq!(value["ok"], 1);
        let seen = server.requests();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].target, "/x?q=a+b");
    }

    #[tokio::test]
    async fn gives_up_after_bounded_retries_and_reports_status() {
        let server = FixtureServer::start(vec![("GET /x", vec![Reply::status(500, "boom")])]).await;
        let err = endpoint(server.url())
            .get_json("/x", &[], &[])
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_malformed_bodies_are_reported() {
        let server = FixtureServer::start(vec![
            ("GET /missing", vec![Reply::status(404, "nope")]),
            ("GET /bad", vec![Reply::json(200, "{not json")]),
        ])
        .await;
        let ep = endpoint(server.url());
        assert_eq!(
            ep.get_json("/missing", &[], &[])
                .await
                .unwrap_err()
                .status(),
            Some(404)
        );
        assert!(matches!(
            ep.get_json("/bad", &[], &[]).await.unwrap_err(),
            HttpError::Malformed { .. }
        ));
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn unreachable_host_is_a_network_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = endpoint(&url).get_json("/", &[], &[]).await.unwrap_err();
        assert!(matches!(err, HttpError::Network { .. }), "{err:?}");
    }
}
