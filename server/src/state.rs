//! What the handlers share: the agent being served (swapped whole on reload, so
//! a request in flight finishes on the agent it started with), the run log
//! writer, the limits, the metrics and the ids of recent runs for feedback.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Semaphore;
use toolforge_agent::{Agent, BuildError, LogWriter, RunSink};

use crate::metrics::{LogCounts, Metrics};
use crate::ServeOptions;

/// Builds a fresh agent writing its runs to the given sink; called at start and
/// on every reload (which re-reads the configuration's model, rules and plugins).
pub type AgentFactory =
    Arc<dyn Fn(Option<Arc<dyn RunSink>>) -> Result<Agent, BuildError> + Send + Sync>;

/// Run ids remembered for feedback without reading the log back.
const RECENT_RUNS: usize = 100_000;

/// The agent being served and the version of its router model.
pub struct Served {
    /// The agent.
    pub agent: Agent,
    /// Its router's model version (`"none"` when the router has no model).
    pub version: String,
}

/// Shared by every handler.
pub struct AppState {
    served: RwLock<Arc<Served>>,
    factory: AgentFactory,
    /// The run log, when logging is on.
    pub log: Option<Arc<LogWriter>>,
    /// Limits and auth.
    pub options: ServeOptions,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Permits for requests in flight.
    pub permits: Arc<Semaphore>,
    shutting_down: AtomicBool,
    reload: tokio::sync::Mutex<()>,
    recent: Mutex<RecentRuns>,
}

impl AppState {
    /// Builds the first agent; fails as the factory does.
    pub async fn new(
        factory: AgentFactory,
        log: Option<Arc<LogWriter>>,
        options: ServeOptions,
    ) -> Result<Self, BuildError> {
        let served = load(&factory, &log).await?;
        Ok(Self {
            served: RwLock::new(Arc::new(served)),
            factory,
            log,
            permits: Arc::new(Semaphore::new(options.concurrency)),
            options,
            metrics: Arc::new(Metrics::default()),
            shutting_down: AtomicBool::new(false),
            reload: tokio::sync::Mutex::new(()),
            recent: Mutex::new(RecentRuns::default()),
        })
    }

    /// The agent to serve this request with; it stays alive for the request
    /// even if a reload swaps in another.
    pub fn served(&self) -> Arc<Served> {
        match self.served.read() {
            Ok(served) => Arc::clone(&served),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Builds a new agent from the configuration, warms its router, and swaps it
    /// in; returns (previous version, new version). On failure the old agent
    /// keeps serving. Reloads run one at a time.
    pub async fn reload(&self) -> Result<(String, String), BuildError> {
        let _one_at_a_time = self.reload.lock().await;
        let fresh = Arc::new(load(&self.factory, &self.log).await?);
        let version = fresh.version.clone();
        let previous = {
            let mut served = match self.served.write() {
                Ok(served) => served,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *served, fresh)
        };
        self.metrics.reloaded();
        tracing::info!(previous = %previous.version, current = %version, "model reloaded");
        Ok((previous.version.clone(), version))
    }

    /// From now on, new requests are refused with 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether the service is stopping.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Remembers a run id served by this process, for feedback.
    pub fn remember_run(&self, run_id: &str) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.insert(run_id);
        }
    }

    /// Whether this process served the run recently.
    pub fn served_recently(&self, run_id: &str) -> bool {
        self.recent
            .lock()
            .map(|recent| recent.ids.contains(run_id))
            .unwrap_or(false)
    }

    /// The log writer's counters, for metrics.
    pub fn log_counts(&self) -> Option<LogCounts> {
        self.log.as_ref().map(|log| LogCounts {
            written: log.lines_written(),
            failed: log.lines_failed(),
            rotations: log.rotations(),
        })
    }
}

/// Builds an agent and routes one query through it, so its model is loaded
/// before it serves (no slow first request, and a reload reports the version).
async fn load(factory: &AgentFactory, log: &Option<Arc<LogWriter>>) -> Result<Served, BuildError> {
    let sink = log.clone().map(|log| log as Arc<dyn RunSink>);
    let factory = Arc::clone(factory);
    let agent = tokio::task::spawn_blocking(move || factory(sink))
        .await
        .map_err(|e| BuildError::Panicked(e.to_string()))??;
    let context = agent.registry().context();
    let _ = agent.router().route("hello", &context).await;
    let version = agent
        .router()
        .model_version()
        .unwrap_or_else(|| "none".to_string());
    Ok(Served { agent, version })
}

/// The last [`RECENT_RUNS`] run ids.
#[derive(Default)]
struct RecentRuns {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentRuns {
    fn insert(&mut self, run_id: &str) {
        if self.ids.insert(run_id.to_string()) {
            self.order.push_back(run_id.to_string());
            if self.order.len() > RECENT_RUNS {
                if let Some(oldest) = self.order.pop_front() {
                    self.ids.remove(&oldest);
                }
            }
        }
    }
}
