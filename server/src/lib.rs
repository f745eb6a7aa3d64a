//! ToolForge as an HTTP service (`toolforge serve`, contract 1.1): `POST
//! /v1/route`, `/v1/ask`, `/v1/feedback`, `/v1/admin/reload`, `GET /v1/tools`,
//! `/healthz`, `/metrics`, `/openapi.json`. Body, batch and query limits, a
//! deadline per request, a concurrency limit answering 503 when saturated,
//! optional bearer-token auth, one run-log writer, a model swap without
//! downtime, and a graceful stop that finishes requests in flight and flushes
//! the log.
//!
//! ```no_run
//! use std::sync::Arc;
//! use toolforge_agent::{runtime, AgentConfig};
//! use toolforge_server::{Server, ServeOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AgentConfig::default();
//! let factory = Arc::new(move |sink| runtime::build_agent_with_sink(&config, "chain", sink));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let server = Server::start(listener, ServeOptions::default(), factory, None).await?;
//! server.stopper().stop(); // from a signal handler, say
//! let report = server.wait().await?;
//! println!("served {} log lines", report.log_lines);
//! # Ok(()) }
//! ```

mod guard;
pub mod metrics;
mod openapi;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use toolforge_agent::{BuildError, LogWriter};
use toolforge_core::ApiKey;

pub use state::{AgentFactory, AppState};

/// Limits and auth of the service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most queries in one `/v1/route` batch (413 beyond).
    pub max_batch: usize,
    /// Time a request may take before it is answered 504.
    pub deadline: Duration,
    /// Requests served at once; more are answered 503.
    pub concurrency: usize,
    /// When set, every endpoint but `/healthz` needs `Authorization: Bearer <token>`.
    pub token: Option<ApiKey>,
}

impl Default for ServeOptions {
    /// 1 MiB bodies, 1,000 queries a batch, a 30 s deadline, 64 requests at once, no auth.
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch: 1_000,
            deadline: Duration::from_secs(30),
            concurrency: 64,
            token: None,
        }
    }
}

/// Why the service could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The agent could not be built from the configuration.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The listener failed.
    #[error("the HTTP listener failed: {0}")]
    Io(#[from] std::io::Error),
    /// The serving task panicked.
    #[error("the service stopped unexpectedly: {0}")]
    Crashed(String),
}

/// What a stopped service did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Run log lines written over the service's life (0 when logging is off).
    pub log_lines: u64,
    /// Run log lines that could not be written.
    pub log_failures: u64,
}

/// Stops a running [`Server`]; cheap to clone into signal handlers.
#[derive(Clone)]
pub struct Stopper {
    stop: watch::Sender<bool>,
    state: Arc<AppState>,
}

impl Stopper {
    /// New requests get 503, requests in flight finish, then the log is flushed.
    pub fn stop(&self) {
        self.state.begin_shutdown();
        let _ = self.stop.send(true);
    }
}

/// A running service.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stopper: Stopper,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Builds the agent (through `factory`, handing it `log` as its run sink)
    /// and serves on `listener` until stopped.
    pub async fn start(
        listener: tokio::net::TcpListener,
        options: ServeOptions,
        factory: AgentFactory,
        log: Option<Arc<LogWriter>>,
    ) -> Result<Self, ServeError> {
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState::new(factory, log, options).await?);
        let app = app(Arc::clone(&state));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!(%addr, version = %state.served().version, "serving");
        Ok(Self {
            addr,
            stopper: Stopper {
                stop,
                state: Arc::clone(&state),
            },
            state,
            task,
        })
    }

    /// The address being served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the service.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// The shared state (metrics, the agent being served, reload).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Waits until the service has stopped and every run log line is written.
    pub async fn wait(self) -> Result<ServeReport, ServeError> {
        let served = self
            .task
            .await
            .map_err(|e| ServeError::Crashed(e.to_string()));
        if let Some(log) = &self.state.log {
            log.close();
        }
        served??;
        let counts = self.state.log_counts().unwrap_or_default();
        Ok(ServeReport {
            log_lines: counts.written,
            log_failures: counts.failed,
        })
    }
}

/// The routes and their layers.
fn app(state: Arc<AppState>) -> Router {
    let limit = state.options.max_body_bytes;
    let guarded = Router::new()
        .route("/v1/route", post(routes::route))
        .route("/v1/ask", post(routes::ask))
        .route("/v1/feedback", post(routes::feedback))
        .route("/v1/tools", get(routes::tools))
        .route("/v1/admin/reload", post(routes::reload))
        .layer(from_fn_with_state(Arc::clone(&state), guard::admit))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .merge(guarded)
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .fallback(routes::not_found)
        .layer(from_fn_with_state(Arc::clone(&state), guard::authorize))
        .layer(from_fn_with_state(Arc::clone(&state), guard::observe))
        .with_state(state)
}
