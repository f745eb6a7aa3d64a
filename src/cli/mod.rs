//! The `toolforge` command line: `route` (batch routing), `ask` (the whole agent)
//! and `tools` (registered tools and their schemas), as fixed by the public contract.

mod data;
mod logging;
mod model;
mod retrain;
mod serve;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use toolforge_agent::batch::route_stream;
use toolforge_agent::runtime::{build_agent, build_router, route_context, router_help};
use toolforge_agent::AskOutput;
use toolforge_agent::{AgentConfig, Redactor};

/// ToolForge: a tool-using agent whose router is learned from its own traffic.
#[derive(Debug, Parser)]
#[command(name = "toolforge", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Configuration: --config FILE, else $TOOLFORGE_CONFIG, else ./toolforge.toml, \
else defaults. Set RUST_LOG=debug (or -v/-vv) for traces on stderr."
)]
pub struct Cli {
    /// TOML configuration file (router chain, model, tools, log, timeouts, LLM).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug; warnings and errors by default).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Route queries in batch: JSON Lines in, one decision per line out.
    ///
    /// Each input line is {"id": <any>, "query": "<text>"} or a bare line of text
    /// (its id is then the 1-based line number). Each output line is the decision
    /// {"id", "query", "calls", "router", "confidence", "latency_us"} (plus
    /// "unsupported": true when no tool can serve the request), or
    /// {"id", "error"} for a bad line; the batch always goes on.
    Route(RouteArgs),
    /// Answer one query with the whole agent: route, run the tools, compose the answer.
    Ask(AskArgs),
    /// List the registered tools with their JSON schemas.
    Tools(ToolsArgs),
    /// Evaluate a router on a labeled JSONL dataset ({"query", "calls": [...]} lines,
    /// or {"query", "accept": [[tool, ...], ...]} where several tool sets are right).
    ///
    /// Prints tool-set and balanced accuracy, accuracy per gold class and source,
    /// macro-F1, per-tool precision/recall, no-tool precision/recall, unsupported
    /// requests flagged, several-call decisions, argument F1, invalid-call rate,
    /// latency and a confusion matrix.
    Eval(EvalArgs),
    /// Build routing data: generate, distill, from-logs, filter, split, stats, export.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Record feedback on a logged run: `--ok`, or `--correct '<decision json>'`.
    Feedback(data::FeedbackArgs),
    /// Train the router model on a split directory (AdamW, early stopping, calibration).
    Train(model::TrainArgs),
    /// Combine compact models trained with different seeds into one ensemble
    /// (mean outputs), calibrated again on the validation split.
    Ensemble(model::EnsembleArgs),
    /// Distil static word vectors from the MiniLM encoder (Model2Vec's recipe) for
    /// `train --static-vectors`.
    StaticVectors(model::StaticVectorsArgs),
    /// Train a grid of models (width x learning rate) and write a results table and chart.
    Ablate(model::AblateArgs),
    /// Retrain from logged traffic (warm start by default, `--full` from scratch);
    /// a paired gate on held-out corrections and the frozen test split decides
    /// promotion (`--dry-run` only reports).
    Retrain(retrain::RetrainArgs),
    /// Restore the model the last promotion replaced.
    Rollback(retrain::RollbackArgs),
    /// Generative model files: `model merge` folds a LoRA adapter into a GGUF.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Serve the agent over HTTP: /v1/route, /v1/ask, /v1/feedback, /v1/tools,
    /// /healthz, /metrics, /openapi.json (SIGTERM stops gracefully, SIGHUP reloads the model).
    Serve(serve::ServeArgs),
}

/// `--router NAME`, with help listing every router the runtime can build.
#[derive(Debug, Args)]
pub struct RouterArg {
    #[arg(long = "router", value_name = "NAME", help = router_arg_help())]
    pub name: Option<String>,
}

impl RouterArg {
    /// The named router, else the configuration's.
    pub fn or_configured(self, config: &AgentConfig) -> String {
        self.name.unwrap_or_else(|| config.router.clone())
    }
}

fn router_arg_help() -> String {
    format!("Router (default: the config's `router`). {}", router_help())
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    #[command(flatten)]
    pub router: RouterArg,
    /// Input JSON Lines file (default: stdin).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question or request.
    pub query: String,
    #[command(flatten)]
    pub router: RouterArg,
    /// Print {"query", "router", "calls", "answer"} as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub router: RouterArg,
    /// Labeled dataset (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the confusion matrix as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Print the tool specs as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Parses the command line, runs it, and maps errors to a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match AgentConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            logging::init(cli.verbose, Redactor::default());
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(cli.verbose, Redactor::new(config.secrets()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli, config));
    // Blocking work still running (a stuck resolver, a slow file) must not keep a
    // finished command alive: give it a moment, then exit without it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command.
pub async fn run(cli: Cli, config: AgentConfig) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Route(args) => route(&config, args).await,
        Command::Ask(args) => ask(&config, args).await,
        Command::Tools(args) => tools(&config, args),
        Command::Eval(args) => eval(&config, args).await,
        Command::Data(command) => data::run(&config, command)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Feedback(args) => data::feedback(&config, args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => model::run_train(&config, args).map(|()| ExitCode::SUCCESS),
        Command::Ensemble(args) => model::run_ensemble(args).map(|()| ExitCode::SUCCESS),
        Command::StaticVectors(args) => model::run_static_vectors(args).map(|()| ExitCode::SUCCESS),
        Command::Ablate(args) => model::run_ablate(&config, args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Retrain(args) => retrain::run_retrain(&config, args)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Rollback(args) => retrain::run_rollback(&config, args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run_serve(&config, args).await,
        Command::Model(command) => model::run_model(command).map(|()| ExitCode::SUCCESS),
    }
}

async fn route(config: &AgentConfig, args: RouteArgs) -> anyhow::Result<ExitCode> {
    let name = args.router.or_configured(config);
    let router = build_router(&name, config)?;
    let context = route_context(config, router.clone())?;
    let mut input: Box<dyn io::BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(io::stdin().lock()),
    };
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let span = tracing::info_span!("route_batch", router = %name);
    let _enter = span.enter();
    let stats = route_stream(router.as_ref(), &context, &mut input, &mut output).await?;
    tracing::info!(
        lines = stats.lines,
        routed = stats.routed,
        errors = stats.errors,
        "batch done"
    );
    Ok(ExitCode::SUCCESS)
}

async fn ask(config: &AgentConfig, args: AskArgs) -> anyhow::Result<ExitCode> {
    let name = args.router.or_configured(config);
    let agent = build_agent(config, &name)?;
    let record = agent.ask(&args.query).await?;
    if args.json {
        println!("{}", serde_json::to_string(&AskOutput::from(&record))?);
    } else {
        println!("{}", record.answer);
        if io::stderr().is_terminal() {
            let tools: Vec<&str> = record.calls.iter().map(|c| c.tool.as_str()).collect();
            eprintln!(
                "[router: {} | tools: {} | run {}]",
                record.decision.router,
                if tools.is_empty() {
                    "none".to_string()
                } else {
                    tools.join(", ")
                },
                record.run_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn eval(config: &AgentConfig, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let name = args.router.or_configured(config);
    let router = build_router(&name, config)?;
    let context = route_context(config, router.clone())?;
    let examples = toolforge_trainer::read_examples(&args.data)?;
    anyhow::ensure!(
        !examples.is_empty(),
        "{} holds no examples",
        args.data.display()
    );
    let predictions = toolforge_trainer::eval::predict(
        router.as_ref(),
        &context,
        &examples,
        io::stderr().is_terminal(),
    )
    .await;
    let report = toolforge_trainer::evaluate(&name, &examples, &predictions, &context.tools);
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = format!("{name} on {}", args.data.display());
        toolforge_trainer::plot::confusion_svg(&report.confusion, &title, path)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tools(config: &AgentConfig, args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let router = build_router("regex", config)?;
    let specs = route_context(config, router)?.tools;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!(specs))?);
    } else {
        for spec in specs {
            let params: Vec<String> = spec.parameters["properties"]
                .as_object()
                .map(|p| {
                    let required = spec.parameters["required"].as_array();
                    p.keys()
                        .map(|k| {
                            let is_required =
                                required.is_some_and(|r| r.iter().any(|v| v == k.as_str()));
                            if is_required {
                                k.clone()
                            } else {
                                format!("{k}?")
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{:<16} ({}) {}",
                spec.name,
                params.join(", "),
                spec.description
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
