//! `toolforge data ...` and `toolforge feedback`: the trainer's data pipeline on the
//! command line. Offline generation, teacher distillation, logs to data, filtering,
//! splits with a manifest, statistics and exports, all driven by the same tool specs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;
use toolforge_core::{jsonl, Feedback, ToolCall, ToolExample, ToolSpec};
use toolforge_trainer::distill::{self, QueryItem};
use toolforge_trainer::export::{self, ExportFormat};
use toolforge_trainer::filter::{self, Candidate, FilterConfig};
use toolforge_trainer::generate::{ClassMix, ExampleGenerator, Generator};
use toolforge_trainer::logs::{self, LogsPolicy};
use toolforge_trainer::split::{self, Provenance, SplitConfig, SplitRatios};
use toolforge_trainer::teacher::{LlmTeacher, TeacherConfig};
use toolforge_trainer::{read_examples, Example};

use toolforge_agent::runtime::{build_registry, build_router, route_context};
use toolforge_agent::AgentConfig;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate labeled examples with the built-in offline teacher (no keys needed).
    Generate(GenerateArgs),
    /// Build the shipped dataset in one step: generate, filter (with leakage
    /// against evaluation sets), split, write the manifest and print the stats.
    Build(BuildArgs),
    /// Ask an LLM teacher for diverse user queries, by the class mix and across styles
    /// (casual, terse, spoken, misspelled, lowercase, long); the output feeds `distill`.
    Queries(QueriesArgs),
    /// Label queries with an LLM teacher; resumable (a rerun continues where it stopped).
    Distill(DistillArgs),
    /// Turn the agent's run logs into examples (feedback, teacher relabels, agreement).
    FromLogs(FromLogsArgs),
    /// Filter candidates (dataset or distilled lines): invalid JSON, hallucinated tools,
    /// schema failures, empty/long queries, duplicates, near-duplicates, leakage.
    Filter(FilterArgs),
    /// Split a dataset into train/validation/test, stratified by tool set, with a manifest.
    Split(SplitArgs),
    /// Print the distribution table (tool, count, %) of a dataset file or split directory.
    Stats(StatsArgs),
    /// Render a dataset in a fine-tuning format: openai, trl, sharegpt or qwen.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of examples.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Class weights, e.g. `web_search=24,no_tool=10,multi=8` (others keep their defaults).
    #[arg(long, conflicts_with = "tool")]
    pub mix: Option<String>,
    /// Only requests for this registered tool: built-in, in-process or plugin.
    /// Varied from the tool's example requests (and --examples); a built-in
    /// without examples uses the generator's templates.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// Example requests for --tool: JSON Lines of {"query", "arguments"}.
    #[arg(long, value_name = "FILE", requires = "tool")]
    pub examples: Option<PathBuf>,
    /// Output JSONL (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Output directory (train/validation/test JSONL, manifest, stats, filter report).
    #[arg(long, default_value = "data")]
    pub out: PathBuf,
    /// Examples generated before filtering.
    #[arg(long, default_value_t = 12_000)]
    pub count: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long)]
    pub mix: Option<String>,
    /// Evaluation sets whose queries must not leak into training.
    #[arg(long = "eval", value_name = "FILE")]
    pub eval_sets: Vec<PathBuf>,
    /// Extra dataset files merged in before filtering (distilled data, logs).
    #[arg(long = "extra", value_name = "FILE")]
    pub extra: Vec<PathBuf>,
    /// Extra dataset files (hand-written examples) merged in before filtering
    /// that go to the training and validation splits only, never to test. A
    /// directory stands for its `*.jsonl` files, in name order.
    #[arg(long = "extra-train", value_name = "FILE|DIR")]
    pub extra_train: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueriesArgs {
    /// Total queries wanted.
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    #[arg(long)]
    pub mix: Option<String>,
    /// Queries per teacher request.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Output JSONL of {"id", "query", "meta"} lines.
    #[arg(long)]
    pub out: PathBuf,
    /// Teacher configuration TOML; default: the config's `[teacher]`.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DistillArgs {
    /// Queries: JSONL lines {"id", "query", "meta"?} or plain text lines.
    #[arg(long)]
    pub queries: PathBuf,
    /// Output JSONL, appended to as answers arrive.
    #[arg(long)]
    pub out: PathBuf,
    /// Teacher configuration TOML (the `[teacher]` table's content), or `local` for the
    /// generative router on this machine (no API key); default: the config's `[teacher]`.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FromLogsArgs {
    /// Run log (JSONL).
    #[arg(long)]
    pub logs: PathBuf,
    /// Output dataset JSONL.
    #[arg(long)]
    pub out: PathBuf,
    /// Relabel runs without feedback with this teacher (TOML); relabels are cached beside the output.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Skip the agreement policy (only feedback and relabels).
    #[arg(long)]
    pub no_agreement: bool,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Input files: dataset lines or distilled lines.
    #[arg(long = "input", required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    /// Evaluation sets whose queries must not leak into the output.
    #[arg(long = "eval", value_name = "FILE")]
    pub eval_sets: Vec<PathBuf>,
    /// Write the filter report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long, default_value_t = 512)]
    pub max_query_chars: usize,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    #[arg(long)]
    pub input: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// train,validation,test
    #[arg(long, default_value = "0.8,0.1,0.1")]
    pub ratios: String,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A dataset JSONL file or a split directory.
    pub data: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Dataset JSONL.
    #[arg(long)]
    pub data: PathBuf,
    /// openai, trl, sharegpt or qwen.
    #[arg(long)]
    pub format: ExportFormat,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// The run's id (shown after `ask` and in the run log).
    pub run_id: String,
    /// The decision was right.
    #[arg(long, conflicts_with = "correct")]
    pub ok: bool,
    /// The right decision: `{"calls": [{"tool": ..., "arguments": {...}}]}` (or just the calls array).
    #[arg(long, value_name = "JSON")]
    pub correct: Option<String>,
    /// Run log (default: the configured log path).
    #[arg(long)]
    pub log: Option<PathBuf>,
}

/// Refuses an output file that is one of the command's inputs: creating it
/// would truncate the input (a run log, say) before it is read.
fn ensure_not_an_input<'a>(
    out: &Path,
    inputs: impl IntoIterator<Item = &'a PathBuf>,
) -> anyhow::Result<()> {
    let same = |input: &Path| match (out.canonicalize(), input.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => out == input,
    };
    if let Some(input) = inputs.into_iter().find(|input| same(input)) {
        bail!(
            "--out {} is also an input ({}): writing it would destroy the input; choose another file",
            out.display(),
            input.display()
        );
    }
    Ok(())
}

fn tool_specs(config: &AgentConfig) -> anyhow::Result<Vec<ToolSpec>> {
    let router = build_router("regex", config)?;
    Ok(route_context(config, router)?.tools)
}

/// `data generate --tool NAME`: varied from the tool's examples (its own and
/// `--examples`), else from the generator's templates when it has them.
fn generate_for_tool(
    config: &AgentConfig,
    name: &str,
    args: &GenerateArgs,
) -> anyhow::Result<Vec<Example>> {
    let registry = build_registry(config, build_router("regex", config)?)?;
    let tool = registry
        .get(name)
        .with_context(|| format!("no registered tool `{name}` (see `toolforge tools`)"))?;
    let mut examples = tool.examples();
    if let Some(path) = &args.examples {
        examples.extend(read_tool_examples(path)?);
    }
    if examples.is_empty() && ClassMix::default().weight(name) > 0.0 {
        let mut mix = ClassMix::none();
        mix.set(name, 1.0)?;
        return Ok(Generator::new(args.seed, mix).generate(args.count));
    }
    let mut generator = ExampleGenerator::new(tool.spec(), &examples, args.seed)?;
    let generated = generator.generate(args.count);
    if generated.len() < args.count {
        eprintln!(
            "note: {} distinct requests from {} examples (asked for {}); more examples give more variety",
            generated.len(),
            examples.len(),
            args.count
        );
    }
    Ok(generated)
}

/// Example requests: JSON Lines of `{"query", "arguments"}`.
fn read_tool_examples(path: &Path) -> anyhow::Result<Vec<ToolExample>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut examples = Vec::new();
    for line in jsonl::lines(BufReader::new(file)) {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let at = format!("{}:{}", path.display(), line.number);
        let text = line.text.map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        let example: ToolExample = serde_json::from_str(&text)
            .with_context(|| format!("{at}: expected {{\"query\", \"arguments\"}}"))?;
        examples.push(example);
    }
    Ok(examples)
}

fn parse_mix(text: Option<&str>) -> anyhow::Result<ClassMix> {
    Ok(match text {
        Some(text) => ClassMix::parse(text).context("invalid --mix")?,
        None => ClassMix::default(),
    })
}

fn write_examples(path: Option<&Path>, examples: &[Example]) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match path {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            Box::new(BufWriter::new(
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            ))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    for example in examples {
        serde_json::to_writer(&mut out, example)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads dataset lines or distilled lines as filter candidates; bad lines are counted.
fn read_candidates(path: &Path) -> anyhow::Result<(Vec<Candidate>, usize)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut candidates = Vec::new();
    let mut unreadable = 0;
    for line in jsonl::lines(BufReader::new(file)) {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let Ok(value) = line
            .text
            .map_err(|_| ())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|_| ()))
        else {
            unreadable += 1;
            continue;
        };
        if value.get("raw").is_some() && value.get("teacher").is_some() {
            match serde_json::from_value::<distill::DistilledLine>(value) {
                Ok(distilled) => candidates.extend(distill::distilled_to_candidates(&[distilled])),
                Err(_) => unreadable += 1,
            }
            continue;
        }
        let query = value.get("query").and_then(Value::as_str);
        let calls = value.get("calls").and_then(Value::as_array);
        match (query, calls) {
            (Some(query), Some(calls)) => candidates.push(Candidate {
                query: query.to_string(),
                raw_calls: calls.clone(),
                unsupported: value.get("unsupported").and_then(Value::as_bool) == Some(true),
                source: value
                    .get("source")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                meta: value.get("meta").cloned().unwrap_or(Value::Null),
            }),
            _ => unreadable += 1,
        }
    }
    Ok((candidates, unreadable))
}

/// `paths` with each directory replaced by its `*.jsonl` files in name order.
fn jsonl_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

fn read_eval_sets(paths: &[PathBuf]) -> anyhow::Result<Vec<Example>> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(read_examples(path)?);
    }
    Ok(all)
}

fn read_queries(path: &Path) -> anyhow::Result<Vec<QueryItem>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut items = Vec::new();
    for line in jsonl::lines(BufReader::new(file)) {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let index = line.number - 1;
        let text = line
            .text
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), line.number))?;
        let trimmed = text.trim();
        let item = if trimmed.starts_with('{') {
            let value: Value = serde_json::from_str(trimmed)
                .with_context(|| format!("{}:{}: invalid JSON", path.display(), index + 1))?;
            let query = value["query"]
                .as_str()
                .with_context(|| format!("{}:{}: missing `query`", path.display(), index + 1))?;
            QueryItem {
                id: match &value["id"] {
                    Value::String(s) => s.clone(),
                    Value::Null => (index + 1).to_string(),
                    other => other.to_string(),
                },
                query: query.to_string(),
                meta: value.get("meta").cloned().unwrap_or(Value::Null),
            }
        } else {
            QueryItem {
                id: (index + 1).to_string(),
                query: trimmed.to_string(),
                meta: Value::Null,
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// The teacher: `local` (the `generative` router, no API key), a teacher TOML
/// file, or the config's `[teacher]` table.
fn load_teacher(
    config: &AgentConfig,
    path: Option<&Path>,
) -> anyhow::Result<Arc<dyn toolforge_trainer::teacher::Teacher>> {
    if path.is_some_and(|p| p == Path::new("local")) {
        let router = build_router("generative", config)?;
        return Ok(Arc::new(toolforge_trainer::teacher::RouterTeacher::new(
            router,
        )));
    }
    let teacher_config: TeacherConfig = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("invalid teacher config {}", path.display()))?
        }
        None => config
            .teacher
            .clone()
            .context("no teacher configured: pass --teacher FILE or add a [teacher] table")?
            .try_into()
            .context("invalid [teacher] table")?,
    };
    Ok(Arc::new(LlmTeacher::from_config(&teacher_config)?))
}

fn show_progress() -> bool {
    std::io::stderr().is_terminal()
}

/// Runs a `data` subcommand.
pub async fn run(config: &AgentConfig, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Generate(args) => {
            let examples = match &args.tool {
                Some(tool) => generate_for_tool(config, tool, &args)?,
                None => {
                    Generator::new(args.seed, parse_mix(args.mix.as_deref())?).generate(args.count)
                }
            };
            write_examples(args.out.as_deref(), &examples)?;
            if let Some(out) = &args.out {
                eprintln!("wrote {} examples to {}", examples.len(), out.display());
            }
        }
        DataCommand::Build(args) => build(config, args)?,
        DataCommand::Queries(args) => teacher_queries(config, args).await?,
        DataCommand::Distill(args) => {
            let tools = tool_specs(config)?;
            let teacher = load_teacher(config, args.teacher.as_deref())?;
            let queries = read_queries(&args.queries)?;
            let stats = distill::distill(
                teacher.as_ref(),
                &queries,
                &tools,
                &args.out,
                show_progress(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&stats)?);
        }
        DataCommand::FromLogs(args) => {
            ensure_not_an_input(&args.out, [&args.logs])?;
            from_logs(config, args).await?
        }
        DataCommand::Filter(args) => {
            ensure_not_an_input(&args.out, args.inputs.iter().chain(&args.eval_sets))?;
            let tools = tool_specs(config)?;
            let mut candidates = Vec::new();
            let mut unreadable = 0;
            for input in &args.inputs {
                let (more, bad) = read_candidates(input)?;
                candidates.extend(more);
                unreadable += bad;
            }
            let filter_config = FilterConfig {
                max_query_chars: args.max_query_chars,
                ..FilterConfig::default()
            }
            .with_eval_examples(&read_eval_sets(&args.eval_sets)?);
            let (examples, report) = filter::filter(candidates, &tools, &filter_config);
            write_examples(Some(&args.out), &examples)?;
            if unreadable > 0 {
                println!("unreadable lines skipped: {unreadable}");
            }
            println!("{report}");
            if let Some(path) = &args.report {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        DataCommand::Split(args) => {
            let ratios: Vec<f64> = args
                .ratios
                .split(',')
                .map(|r| r.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .context("--ratios: expected three numbers like 0.8,0.1,0.1")?;
            let [train, validation, test] = ratios[..] else {
                bail!("--ratios: expected three numbers like 0.8,0.1,0.1");
            };
            let examples = read_examples(&args.input)?;
            let splits = split::split(
                examples,
                &SplitConfig {
                    seed: args.seed,
                    ratios: SplitRatios::new(train, validation, test)?,
                },
            );
            let command: Vec<String> = std::env::args().collect();
            let manifest = split::write_splits(
                &args.out,
                &splits,
                &Provenance::new(command, &tool_specs(config)?),
            )?;
            println!("{}", split::stats(&splits));
            println!("manifest hash: {}", manifest.sha256);
        }
        DataCommand::Stats(args) => {
            if args.data.is_dir() {
                let parts: Vec<(String, Vec<Example>)> = split::SPLIT_NAMES
                    .iter()
                    .map(|name| Ok((name.to_string(), split::read_split(&args.data, name)?)))
                    .collect::<anyhow::Result<_>>()?;
                let columns: Vec<(&str, &[Example])> = parts
                    .iter()
                    .map(|(n, e)| (n.as_str(), e.as_slice()))
                    .collect();
                println!("{}", split::distribution(&columns));
            } else {
                let examples = read_examples(&args.data)?;
                println!("{}", split::distribution(&[("all", &examples)]));
            }
        }
        DataCommand::Export(args) => {
            ensure_not_an_input(&args.out, [&args.data])?;
            let examples = read_examples(&args.data)?;
            let file = File::create(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            let written = export::export(
                &examples,
                &tool_specs(config)?,
                args.format,
                BufWriter::new(file),
            )?;
            eprintln!(
                "wrote {written} {} lines to {}",
                args.format,
                args.out.display()
            );
        }
    }
    Ok(())
}

/// Styles asked of LLM teachers in turn, for diversity by design.
const QUERY_STYLES: [&str; 6] = [
    "casual",
    "terse",
    "spoken",
    "misspelled",
    "lowercase",
    "long",
];

async fn teacher_queries(config: &AgentConfig, args: QueriesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let context = route_context(config, build_router("regex", config)?)?;
    let tools = context.tools.clone();
    let teacher = load_teacher(config, args.teacher.as_deref())?;
    let mix = parse_mix(args.mix.as_deref())?;
    let mut out = BufWriter::new(
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?,
    );
    let mut seen = std::collections::HashSet::new();
    let mut written = 0usize;
    let mut failures = 0usize;
    let mut style_turn = 0usize;
    for (class, quota) in mix.quotas(args.count) {
        let (tool, category) = match class {
            "no_tool" => (None, "no_tool"),
            "unsupported" => (None, "unsupported"),
            "multi" => (None, "multi"),
            tool => (Some(tool.to_string()), "single"),
        };
        let mut got = 0usize;
        let mut attempts = 0usize;
        while got < quota && attempts < quota.div_ceil(args.batch) * 2 + 1 {
            attempts += 1;
            let style = QUERY_STYLES[style_turn % QUERY_STYLES.len()];
            style_turn += 1;
            let request = toolforge_trainer::teacher::QueryRequest {
                tool: tool.clone(),
                category: category.to_string(),
                style: style.to_string(),
                count: args.batch.min(quota - got),
                examples: tool
                    .as_deref()
                    .map(|name| {
                        context
                            .examples_of(name)
                            .iter()
                            .map(|e| e.query.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            match teacher.generate_queries(&request, &tools).await {
                Ok(queries) => {
                    for query in queries {
                        if got >= quota || !seen.insert(filter::normalize_query(&query)) {
                            continue;
                        }
                        got += 1;
                        written += 1;
                        let line = serde_json::json!({
                            "id": format!("{class}-{written}"),
                            "query": query,
                            "meta": {"category": category, "class": class, "style": style},
                        });
                        serde_json::to_writer(&mut out, &line)?;
                        out.write_all(b"\n")?;
                    }
                    out.flush()?;
                }
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, class, "query generation failed");
                }
            }
        }
    }
    println!(
        "wrote {written} queries to {} ({failures} failed requests)",
        args.out.display()
    );
    Ok(())
}

fn build(config: &AgentConfig, args: BuildArgs) -> anyhow::Result<()> {
    let tools = tool_specs(config)?;
    let mut generator = Generator::new(args.seed, parse_mix(args.mix.as_deref())?);
    let mut candidates: Vec<Candidate> = generator
        .generate(args.count)
        .into_iter()
        .map(Candidate::from)
        .collect();
    for extra in &args.extra {
        candidates.extend(read_candidates(extra)?.0);
    }
    // Train-only examples are known by query, source and meta together: a
    // generated example whose query a hand-written one repeats (the filter keeps
    // the generated one) stays in the pool the test split is drawn from, so adding
    // hand-written files never reshuffles the test split.
    let origin = |query: &str, source: &str, meta: &Value| {
        (query.to_string(), source.to_string(), meta.to_string())
    };
    let mut train_only: HashSet<(String, String, String)> = HashSet::new();
    for extra in &jsonl_files(&args.extra_train)? {
        let more = read_candidates(extra)?.0;
        train_only.extend(more.iter().map(|c| origin(&c.query, &c.source, &c.meta)));
        candidates.extend(more);
    }
    let filter_config =
        FilterConfig::default().with_eval_examples(&read_eval_sets(&args.eval_sets)?);
    let (examples, report) = filter::filter(candidates, &tools, &filter_config);
    println!("{report}");
    let splits = split::split_train_only(
        examples,
        |e| train_only.contains(&origin(&e.query, &e.source, &e.meta)),
        &SplitConfig::default(),
    );
    let command: Vec<String> = std::env::args().collect();
    let manifest = split::write_splits(&args.out, &splits, &Provenance::new(command, &tools))?;
    let stats = split::stats(&splits);
    std::fs::write(args.out.join("stats.md"), stats.to_string())?;
    std::fs::write(
        args.out.join("filter_report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{stats}");
    println!(
        "wrote {} examples to {} (manifest hash {})",
        splits.total(),
        args.out.display(),
        manifest.sha256
    );
    Ok(())
}

async fn from_logs(config: &AgentConfig, args: FromLogsArgs) -> anyhow::Result<()> {
    let tools = tool_specs(config)?;
    let mut relabels: HashMap<String, Vec<ToolCall>> = HashMap::new();
    if let Some(teacher_path) = &args.teacher {
        let teacher = load_teacher(config, Some(teacher_path))?;
        let queries: Vec<QueryItem> = logs::queries_to_relabel(&args.logs)?
            .into_iter()
            .map(|query| QueryItem {
                id: query.clone(),
                query,
                meta: Value::Null,
            })
            .collect();
        let cache = args.out.with_extension("relabels.jsonl");
        distill::distill(teacher.as_ref(), &queries, &tools, &cache, show_progress()).await?;
        let (lines, _) = distill::read_distilled(&cache)?;
        let candidates = distill::distilled_to_candidates(&lines);
        let relaxed = FilterConfig {
            near_duplicate_threshold: None,
            ..FilterConfig::default()
        };
        let (valid, _) = filter::filter(candidates, &tools, &relaxed);
        relabels.extend(valid.into_iter().map(|e| (e.query, e.calls)));
    }
    let policy = LogsPolicy {
        relabel: args.teacher.is_some(),
        agreement: !args.no_agreement,
        ..LogsPolicy::default()
    };
    let (examples, report) = logs::examples_from_logs(&args.logs, &relabels, &policy)?;
    write_examples(Some(&args.out), &examples)?;
    println!("{report}");
    Ok(())
}

/// Runs `toolforge feedback`.
pub fn feedback(config: &AgentConfig, args: FeedbackArgs) -> anyhow::Result<()> {
    let feedback = match (&args.correct, args.ok) {
        (Some(json), _) => {
            let value: Value = serde_json::from_str(json).context("--correct: invalid JSON")?;
            let registry = build_registry(config, build_router("regex", config)?)?;
            toolforge_agent::feedback::correction(&value, &registry).context("--correct")?
        }
        (None, true) => Feedback::Ok,
        (None, false) => bail!("say --ok or --correct '<decision json>'"),
    };
    let log = args.log.unwrap_or_else(|| config.log.path.clone());
    logs::append_feedback(&log, &args.run_id, feedback)?;
    println!(
        "feedback recorded for run {} in {}",
        args.run_id,
        log.display()
    );
    Ok(())
}
