//! `toolforge train`: trains the router model from a split directory, on the tool
//! specs of the registry, and writes a model directory.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use toolforge_trainer::split;
use toolforge_trainer::train::{self, Backbone, TrainConfig, TrainReport};

use crate::config::AgentConfig;
use crate::runtime::{build_router, route_context};

/// Backbones `--backbone` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackboneArg {
    /// Small network trained from scratch, tokenizer included (the embedded default).
    Compact,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Split directory (train.jsonl, validation.jsonl, manifest.json), as written by `data build`/`data split`.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value = "compact")]
    pub backbone: BackboneArg,
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
}

impl TrainArgs {
    /// The training configuration: defaults overridden by the flags given.
    pub fn config(&self) -> TrainConfig {
        let mut config = TrainConfig {
            backbone: match self.backbone {
                BackboneArg::Compact => Backbone::Compact,
            },
            ..TrainConfig::default()
        };
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
