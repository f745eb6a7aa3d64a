//! `toolforge train`: trains the router model from a split directory, on the tool
//! specs of the registry, and writes a model directory.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use toolforge_trainer::split;
use toolforge_trainer::train::{self, ensemble, Backbone, TrainConfig, TrainReport};

use toolforge_agent::runtime::{build_router, route_context};
use toolforge_agent::AgentConfig;

/// Backbones `--backbone` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackboneArg {
    /// Small network trained from scratch, tokenizer included (the embedded default).
    Compact,
    /// Pretrained MiniLM encoder (`--encoder DIR`, see `scripts/fetch-minilm.sh`) under trained heads, its top `--tune-layers` layers fine-tuned with them.
    Minilm,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Split directory (train.jsonl, validation.jsonl, manifest.json), as written by `data build`/`data split`.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value = "compact")]
    pub backbone: BackboneArg,
    /// Encoder directory of the `minilm` backbone (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = "models/minilm")]
    pub encoder: PathBuf,
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Width of token vectors.
    #[arg(long)]
    pub dim: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// `minilm`: top encoder layers fine-tuned with the heads (0 = frozen encoder).
    #[arg(long, default_value_t = 2)]
    pub tune_layers: usize,
    /// `minilm`: peak learning rate of the tuned encoder layers (`--lr` is the heads').
    #[arg(long)]
    pub encoder_lr: Option<f64>,
    /// Wall-time budget of the epoch loop in minutes: no epoch starts that would end past it.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Weight of the tool loss on examples that call no tool (default 3; 1 = like any other).
    #[arg(long)]
    pub no_tool_weight: Option<f64>,
    /// `compact`: static word vectors (a directory written by `static-vectors`)
    /// whose words join the vocabulary and whose vectors feed the word embedding.
    #[arg(long, value_name = "DIR")]
    pub static_vectors: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StaticVectorsArgs {
    /// MiniLM encoder directory (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = "models/minilm")]
    pub encoder: PathBuf,
    /// Dimensions kept by PCA.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Output directory (vectors.safetensors, words.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Dataset files (JSONL) whose query words get vectors too, beside the
    /// encoder's whole-word vocabulary (words it splits into pieces, "calories").
    #[arg(long = "words-from", value_name = "FILE")]
    pub words_from: Vec<PathBuf>,
}

/// Runs `toolforge static-vectors`.
pub fn run_static_vectors(args: StaticVectorsArgs) -> anyhow::Result<()> {
    use toolforge_routers::toolforge_model::minilm::Encoder;
    use toolforge_trainer::train::static_vectors;
    let started = std::time::Instant::now();
    let encoder = Encoder::load(&args.encoder)
        .with_context(|| format!("loading the encoder in {}", args.encoder.display()))?;
    let mut words = static_vectors::vocabulary_words(&encoder);
    for path in &args.words_from {
        let examples = toolforge_trainer::read_examples(path)?;
        words.extend(static_vectors::query_words(
            examples.iter().map(|e| e.query.as_str()),
        ));
    }
    words.sort();
    words.dedup();
    let progress = std::io::stderr().is_terminal();
    let vectors = static_vectors::distill(&encoder, &words, args.dim, progress)?;
    vectors.save(&args.out, "sentence-transformers/all-MiniLM-L6-v2")?;
    println!(
        "{} static vectors of {} dimensions written to {} in {:.1} s",
        vectors.words.len(),
        vectors.dim(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl TrainArgs {
    /// The training configuration: defaults overridden by the flags given.
    pub fn config(&self) -> TrainConfig {
        let mut config = TrainConfig {
            backbone: match self.backbone {
                BackboneArg::Compact => Backbone::Compact,
                BackboneArg::Minilm => Backbone::Minilm,
            },
            ..TrainConfig::default()
        };
        if self.backbone == BackboneArg::Minilm {
            config.encoder = Some(self.encoder.clone());
            config.dim = 256;
            config.lr = 1e-3;
            config.dropout = 0.1;
        }
        if let Some(epochs) = self.epochs {
            config.max_epochs = epochs;
        }
        if let Some(dim) = self.dim {
            config.dim = dim;
            config.ff_dim = dim * 2;
        }
        if let Some(layers) = self.layers {
            config.layers = layers;
        }
        if let Some(lr) = self.lr {
            config.lr = lr;
        }
        if let Some(batch_size) = self.batch_size {
            config.batch_size = batch_size;
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        config.tune_layers = self.tune_layers;
        if let Some(lr) = self.encoder_lr {
            config.encoder_lr = lr;
        }
        config.max_train_seconds = self.max_minutes.map(|m| m * 60.0);
        if let Some(weight) = self.no_tool_weight {
            config.no_tool_weight = weight;
        }
        config.static_vectors = self.static_vectors.clone();
        config
    }
}

/// Trains from a split directory with `config`, returning the report.
pub fn train_from_dir(
    agent_config: &AgentConfig,
    data: &std::path::Path,
    mut config: TrainConfig,
    out: &std::path::Path,
) -> anyhow::Result<TrainReport> {
    let tools = route_context(agent_config, build_router("regex", agent_config)?)?.tools;
    let train_set = split::read_split(data, "train")?;
    let validation = split::read_split(data, "validation")?;
    if config.dataset_sha256.is_none() {
        config.dataset_sha256 = split::read_manifest(data).ok().map(|m| m.sha256);
    }
    let progress = std::io::stderr().is_terminal();
    train::train(&train_set, &validation, &tools, &config, out, progress)
        .with_context(|| format!("training into {}", out.display()))
}

/// Runs `toolforge train`.
pub fn run_train(agent_config: &AgentConfig, args: TrainArgs) -> anyhow::Result<()> {
    let report = train_from_dir(agent_config, &args.data, args.config(), &args.out)?;
    println!(
        "trained {} on {} examples in {:.1} s ({:.0} examples/s): best epoch {} of {}",
        report.model_version,
        report.train_examples,
        report.seconds,
        report.examples_per_second,
        report.best_epoch,
        report.epochs.len()
    );
    println!(
        "validation: tool-set accuracy {:.2}%, argument F1 {:.3}; temperature {:.2}; {} parameters, {:.2} MB weights",
        100.0 * report.validation_tool_set_accuracy,
        report.validation_argument_f1,
        report.temperature,
        report.parameters,
        report.weights_bytes as f64 / 1e6
    );
    println!("model written to {}", args.out.display());
    Ok(())
}

#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// Split directory whose `validation.jsonl` calibrates the ensemble (the members' own).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// The member model directories (`toolforge train --seed N` on the same data).
    #[arg(required = true, num_args = 2.., value_name = "MODEL_DIR")]
    pub members: Vec<PathBuf>,
}

/// Runs `toolforge ensemble`.
pub fn run_ensemble(args: EnsembleArgs) -> anyhow::Result<()> {
    let validation = split::read_split(&args.data, "validation")?;
    let report = ensemble::combine(&args.members, &validation, &args.out)
        .with_context(|| format!("combining the ensemble into {}", args.out.display()))?;
    let members: Vec<String> = report
        .member_tool_set_accuracy
        .iter()
        .map(|a| format!("{:.2}%", 100.0 * a))
        .collect();
    println!(
        "combined {} members into {}: validation tool-set accuracy {:.2}% (members {}), argument F1 {:.3}",
        report.members.len(),
        report.model_version,
        100.0 * report.validation_tool_set_accuracy,
        members.join(", "),
        report.validation_argument_f1
    );
    println!(
        "temperature {:.2}, unsupported threshold {:.2}; {:.2} MB weights; model written to {}",
        report.temperature,
        report.unsupported_threshold,
        report.weights_bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}

/// Scores a router on a labeled set.
async fn score(
    router: &dyn toolforge_core::Router,
    context: &toolforge_core::RouteContext,
    examples: &[toolforge_trainer::Example],
    name: &str,
) -> toolforge_trainer::EvalReport {
    let predictions = toolforge_trainer::eval::predict(
        router,
        context,
        examples,
        std::io::stderr().is_terminal(),
    )
    .await;
    toolforge_trainer::evaluate(name, examples, &predictions, &context.tools)
}

#[derive(Debug, Args)]
pub struct AblateArgs {
    /// Split directory to train and test on.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Output directory: one model per run, `results.md`, `results.json`, `ablation.svg`.
    #[arg(long, default_value = "ablation")]
    pub out: PathBuf,
    /// Widths to try.
    #[arg(long, value_delimiter = ',', default_value = "64,96")]
    pub dims: Vec<usize>,
    /// Learning rates to try.
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.002")]
    pub lrs: Vec<f64>,
    /// Extra held-out sets (e.g. hand-written queries) scored for every run.
    #[arg(long = "eval", value_name = "FILE")]
    pub eval_sets: Vec<PathBuf>,
    #[arg(long)]
    pub epochs: Option<usize>,
}

/// One row of the ablation table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AblationRow {
    pub run: String,
    pub backbone: String,
    pub dim: usize,
    pub lr: f64,
    pub parameters: usize,
    pub train_seconds: f64,
    pub test_accuracy: f64,
    pub test_macro_f1: f64,
    pub test_argument_f1: f64,
    pub latency_p50_us: u64,
    /// Tool-set accuracy on each extra evaluation set, in `--eval` order.
    pub held_out_accuracy: Vec<f64>,
}

/// Runs `toolforge ablate`: backbone x width x learning rate, like the write-up's four runs.
pub async fn run_ablate(agent_config: &AgentConfig, args: AblateArgs) -> anyhow::Result<()> {
    let context = route_context(agent_config, build_router("regex", agent_config)?)?;
    let test = split::read_split(&args.data, "test")?;
    let extra: Vec<(PathBuf, Vec<toolforge_trainer::Example>)> = args
        .eval_sets
        .iter()
        .map(|p| Ok((p.clone(), toolforge_trainer::read_examples(p)?)))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)?;
    let mut rows = Vec::new();
    for &dim in &args.dims {
        for &lr in &args.lrs {
            let run = format!("compact-d{dim}-lr{lr}");
            let mut config = TrainConfig {
                dim,
                ff_dim: dim * 2,
                lr,
                ..TrainConfig::default()
            };
            if let Some(epochs) = args.epochs {
                config.max_epochs = epochs;
            }
            eprintln!("ablation run {run}");
            let dir = args.out.join(&run);
            let report = train_from_dir(agent_config, &args.data, config, &dir)?;
            let router = toolforge_routers::ToolForgeRouter::new(&dir);
            let on_test = score(&router, &context, &test, &run).await;
            let mut held_out_accuracy = Vec::new();
            for (_, examples) in &extra {
                held_out_accuracy.push(
                    score(&router, &context, examples, &run)
                        .await
                        .tool_set_accuracy,
                );
            }
            rows.push(AblationRow {
                run,
                backbone: "compact".into(),
                dim,
                lr,
                parameters: report.parameters,
                train_seconds: report.seconds,
                test_accuracy: on_test.tool_set_accuracy,
                test_macro_f1: on_test.macro_f1,
                test_argument_f1: on_test.argument_f1,
                latency_p50_us: on_test.latency_p50_us,
                held_out_accuracy,
            });
        }
    }
    let mut table =
        String::from("| run | params | train s | test acc | macro-F1 | arg F1 | p50 µs |");
    for (path, _) in &extra {
        table.push_str(&format!(
            " {} acc |",
            path.file_stem().unwrap_or_default().to_string_lossy()
        ));
    }
    table.push_str("\n|---|---:|---:|---:|---:|---:|---:|");
    table.push_str(&"---:|".repeat(extra.len()));
    table.push('\n');
    for row in &rows {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.1}% | {:.3} | {:.3} | {} |",
            row.run,
            row.parameters,
            row.train_seconds,
            100.0 * row.test_accuracy,
            row.test_macro_f1,
            row.test_argument_f1,
            row.latency_p50_us
        ));
        for accuracy in &row.held_out_accuracy {
            table.push_str(&format!(" {:.1}% |", 100.0 * accuracy));
        }
        table.push('\n');
    }
    std::fs::write(args.out.join("results.md"), &table)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    let bars: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.run.clone(), r.test_accuracy))
        .collect();
    toolforge_trainer::plot::bars_svg(
        "Ablation: test tool-set accuracy",
        "accuracy",
        &bars,
        &args.out.join("ablation.svg"),
    )?;
    println!("{table}");
    Ok(())
}

/// `toolforge model ...`: operations on generative model files.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Merge a PEFT LoRA adapter into a GGUF model: each targeted projection
    /// becomes W + s*B@A, written as a new GGUF for `--router generative`.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The base model (GGUF, Llama family or Qwen2).
    #[arg(long, value_name = "FILE")]
    pub base: PathBuf,
    /// The adapter folder (adapter_config.json, adapter_model.safetensors).
    #[arg(long, value_name = "DIR")]
    pub adapter: PathBuf,
    /// The merged model to write (GGUF).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Block format of the merged projections (default q8_0 where rows allow, else f32).
    #[arg(long, value_enum)]
    pub quant: Option<Quant>,
}

/// Formats a merged projection may be stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Quant {
    /// 8-bit blocks (nearly lossless, SIMD-fast in candle).
    #[value(name = "q8_0")]
    Q8_0,
    /// 4-bit blocks.
    #[value(name = "q4_0")]
    Q4_0,
    /// Half precision.
    F16,
    /// Full precision.
    F32,
}

pub fn run_model(command: ModelCommand) -> anyhow::Result<()> {
    use candle_core::quantized::GgmlDType;
    let ModelCommand::Merge(args) = command;
    anyhow::ensure!(
        args.out != args.base,
        "--out is the base model; write the merge to another file"
    );
    let adapter = toolforge_model::lora::LoraAdapter::read(&args.adapter)?;
    let quant = args.quant.map(|q| match q {
        Quant::Q8_0 => GgmlDType::Q8_0,
        Quant::Q4_0 => GgmlDType::Q4_0,
        Quant::F16 => GgmlDType::F16,
        Quant::F32 => GgmlDType::F32,
    });
    let report = adapter.merge_gguf(&args.base, &args.out, quant)?;
    println!(
        "merged {} projections ({} tensors) into {}",
        report.merged,
        report.tensors,
        args.out.display()
    );
    Ok(())
}
