//! `toolforge serve`: the agent as an HTTP service (`toolforge-server`), with
//! the run log written by one writer, SIGTERM / Ctrl-C for a graceful stop and
//! SIGHUP for a model reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use toolforge_agent::runtime::build_agent_with_sink;
use toolforge_agent::{AgentConfig, LogWriter, Redactor, Rotation};
use toolforge_core::ApiKey;
use toolforge_server::{AgentFactory, ServeOptions, Server};

use super::RouterArg;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; anything else should have a token).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub router: RouterArg,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Most queries in one /v1/route batch (413 beyond).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub max_batch: usize,
    /// Deadline of one request in milliseconds (504 beyond).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub deadline_ms: u64,
    /// Requests served at once; more are answered 503 at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
    /// Environment variable holding the bearer token; when it is set and not
    /// empty, every endpoint but /healthz needs `Authorization: Bearer <token>`.
    #[arg(long, default_value = "TOOLFORGE_API_TOKEN", value_name = "VAR")]
    pub token_env: String,
    /// Run log size, in MiB, at which it rotates (runs.jsonl -> runs.jsonl.1 ...).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub log_max_mib: u64,
    /// Rotated run log files kept.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub log_keep: usize,
}

pub async fn run_serve(config: &AgentConfig, args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.max_batch > 0, "--max-batch must be at least 1");
    anyhow::ensure!(args.deadline_ms > 0, "--deadline-ms must be at least 1");
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.is_empty())
        .map(ApiKey::new);
    if token.is_none() && !args.bind.ip().is_loopback() {
        tracing::warn!(bind = %args.bind, "serving beyond loopback without a token: anyone who can reach it can use it");
        eprintln!(
            "warning: serving on {} without a token (set {})",
            args.bind, args.token_env
        );
    }
    let mut secrets = config.secrets();
    secrets.extend(token.as_ref().map(|t| t.expose().to_string()));
    let log = if config.log.enabled {
        let rotation = Rotation {
            max_bytes: args.log_max_mib.max(1) * 1024 * 1024,
            keep: args.log_keep,
        };
        Some(Arc::new(LogWriter::start(
            &config.log.path,
            Redactor::new(secrets),
            rotation,
        )?))
    } else {
        None
    };
    let log_path: Option<PathBuf> = log.as_ref().map(|l| l.path().to_path_buf());
    let router = args.router.or_configured(config);
    let factory_config = config.clone();
    let factory: AgentFactory =
        Arc::new(move |sink| build_agent_with_sink(&factory_config, &router, sink));
    let options = ServeOptions {
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        deadline: Duration::from_millis(args.deadline_ms),
        concurrency: args.concurrency,
        token,
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let server = Server::start(listener, options, factory, log).await?;
    eprintln!(
        "toolforge serving on http://{} (model {}, run log {})",
        server.addr(),
        server.state().served().version,
        log_path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "off".into())
    );
    watch_signals(&server)?;
    let report = server.wait().await?;
    eprintln!(
        "toolforge stopped: {} run log lines written, {} failed",
        report.log_lines, report.log_failures
    );
    Ok(if report.log_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// SIGTERM and Ctrl-C stop the service gracefully; SIGHUP reloads the model.
fn watch_signals(server: &Server) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let stopper = server.stopper();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("toolforge: stopping (finishing requests in flight)");
        stopper.stop();
    });
    let state = Arc::clone(server.state());
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match state.reload().await {
                Ok((previous, current)) => {
                    eprintln!("toolforge: reloaded on SIGHUP ({previous} -> {current})")
                }
                Err(error) => {
                    eprintln!("toolforge: reload failed, the old model still serves: {error}")
                }
            }
        }
    });
    Ok(())
}
