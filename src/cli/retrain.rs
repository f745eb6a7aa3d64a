//! `toolforge retrain` and `toolforge rollback`: the router learns from logged,
//! corrected traffic. By default a warm start (the current compact model, its
//! heads grown for newly registered tools, trained on the logged examples next
//! to a replayed sample of its old data: seconds, not minutes); `--full` trains
//! from scratch. A share of the logged examples is held out, and the promotion
//! gate compares candidate and current model on them and on the frozen test
//! split (and any `--guard` set), paired per example. Promotion keeps the
//! replaced model for `rollback`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use toolforge_core::{RouteContext, Router};
use toolforge_routers::ToolForgeRouter;
use toolforge_trainer::eval::{predict, tool_set_right};
use toolforge_trainer::filter::{self, FilterConfig};
use toolforge_trainer::gate::{self, GatePolicy, PairedScore, Verdict};
use toolforge_trainer::generate::ExampleGenerator;
use toolforge_trainer::logs::{self, LogsPolicy};
use toolforge_trainer::retrain::{hold_out, warm_training_set, WarmPlan};
use toolforge_trainer::split;
use toolforge_trainer::train::{self, ensemble, TrainConfig, WarmStart};
use toolforge_trainer::{evaluate, read_examples, Example};

use toolforge_agent::runtime::{build_router, route_context};
use toolforge_agent::AgentConfig;

use super::model::train_from_dir;

#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// Run log (JSONL) to learn from: runs confirmed with `feedback --ok` or
    /// corrected with `feedback --correct`.
    #[arg(long)]
    pub logs: PathBuf,
    /// Current split directory; its test split stays frozen.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Current model directory (default: the config's [model] dir, else the embedded model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where a promoted model goes (default: the current model directory, else
    /// `models/retrained`); the model it replaces moves to `<out>.previous`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Most epochs (default: 6 for a warm start, 30 in full).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train from scratch on the whole training split plus the logs, instead of
    /// continuing from the current model.
    #[arg(long)]
    pub full: bool,
    /// Show the gate's report without promoting.
    #[arg(long)]
    pub dry_run: bool,
    /// Share of the logged examples held out for the gate (by a hash of the query).
    #[arg(long, default_value_t = 0.3)]
    pub holdout: f64,
    /// Warm start: old training examples replayed against forgetting.
    #[arg(long, default_value_t = 3000)]
    pub replay: usize,
    /// Warm start: requests generated per newly registered tool from its example
    /// requests (`data generate --tool`), trained on beside the logged ones.
    #[arg(long, default_value_t = 200)]
    pub generate: usize,
    /// Warm start: peak learning rate (5e-4: with 100 corrected runs of two new
    /// tools, 1e-3 lost 1.0 point on the dev set beyond noise, 5e-4 0.5 within it).
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// Another held-out set (JSONL, `calls` or `accept`) the candidate must not
    /// regress on beyond noise; repeatable.
    #[arg(long = "guard", value_name = "FILE")]
    pub guards: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Model directory to roll back (default: the config's [model] dir).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// Where the replaced model of `dir` is kept.
fn previous_dir(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".previous");
    PathBuf::from(name)
}

/// Runs `toolforge retrain`; true when the candidate was promoted.
pub async fn run_retrain(agent_config: &AgentConfig, args: RetrainArgs) -> anyhow::Result<bool> {
    if !(0.0..0.9).contains(&args.holdout) {
        bail!("--holdout must be in [0, 0.9), got {}", args.holdout);
    }
    let started = Instant::now();
    let context = route_context(agent_config, build_router("regex", agent_config)?)?;
    let tools = context.tools.clone();
    let (from_logs, logs_report) =
        logs::examples_from_logs(&args.logs, &Default::default(), &LogsPolicy::default())?;
    println!("{logs_report}");
    let test = split::read_split(&args.data, "test")?;
    let old_train = split::read_split(&args.data, "train")?;
    let validation = split::read_split(&args.data, "validation")?;
    let guards = args
        .guards
        .iter()
        .map(|path| {
            read_examples(path)
                .with_context(|| format!("reading guard set {}", path.display()))
                .map(|examples| (path.display().to_string(), examples))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut frozen: Vec<Example> = test.iter().chain(validation.iter()).cloned().collect();
    frozen.extend(guards.iter().flat_map(|(_, set)| set.iter().cloned()));
    let (from_logs, filter_report) = filter::filter_examples(
        from_logs,
        &tools,
        &FilterConfig::default().with_eval_examples(&frozen),
    );
    println!("{filter_report}");
    let (learn, held_out) = hold_out(from_logs, args.holdout);
    println!(
        "{} logged examples to learn from, {} held out for the gate",
        learn.len(),
        held_out.len()
    );

    let current_dir = args
        .model
        .clone()
        .or_else(|| agent_config.model.dir.clone());
    let current = match &current_dir {
        Some(dir) => ToolForgeRouter::new(dir),
        None => ToolForgeRouter::embedded(),
    };
    let out = args
        .out
        .clone()
        .or_else(|| current_dir.clone())
        .unwrap_or_else(|| PathBuf::from("models/retrained"));
    let mut candidate_name = out.as_os_str().to_owned();
    candidate_name.push(".candidate");
    let candidate_dir = PathBuf::from(candidate_name);
    let model_dir = candidate_dir.join("model");
    let progress = std::io::stderr().is_terminal();

    let train_started = Instant::now();
    if args.full {
        let mut train_set = old_train;
        train_set.extend(learn.iter().cloned());
        let (train_set, _) = filter::filter_examples(
            train_set,
            &tools,
            &FilterConfig::default().with_eval_examples(&frozen),
        );
        let work_data = candidate_dir.join("data");
        let splits = split::Splits {
            train: train_set,
            validation,
            test: test.clone(),
            seed: split::SplitConfig::default().seed,
            ratios: split::SplitConfig::default().ratios,
        };
        let command: Vec<String> = std::env::args().collect();
        split::write_splits(
            &work_data,
            &splits,
            &split::Provenance::new(command, &tools),
        )?;
        let mut config = TrainConfig::default();
        if let Some(epochs) = args.epochs {
            config.max_epochs = epochs;
        }
        train_from_dir(agent_config, &work_data, config, &model_dir)?;
    } else {
        let model = current
            .model()
            .map_err(|e| anyhow::anyhow!("cannot load the current model for a warm start: {e}"))?;
        // An ensemble is continued member by member, then combined again.
        let bases = WarmStart::members(&model)?;
        let base = bases
            .first()
            .ok_or_else(|| anyhow::anyhow!("the current model has no members"))?;
        let new_tools = base.new_tools(&tools);
        if !new_tools.is_empty() {
            println!("new tools the head grows for: {}", new_tools.join(", "));
        }
        let plan = WarmPlan {
            replay: args.replay,
            ..WarmPlan::default()
        };
        let mut new_examples = learn.clone();
        for name in &new_tools {
            let (Some(spec), examples) = (context.tool(name), context.examples_of(name)) else {
                continue;
            };
            if examples.is_empty() || args.generate == 0 {
                continue;
            }
            let mut generator = ExampleGenerator::new(spec.clone(), examples, plan.seed)?;
            let generated = generator.generate(args.generate);
            println!(
                "{} requests generated for `{name}` from its {} examples",
                generated.len(),
                examples.len()
            );
            new_examples.extend(generated);
        }
        let train_set = warm_training_set(&new_examples, &old_train, &plan);
        let mut warm_validation: Vec<Example> = validation
            .iter()
            .step_by((validation.len() / 1000).max(1))
            .cloned()
            .collect();
        warm_validation.extend(learn.iter().cloned());
        let config = TrainConfig {
            max_epochs: args.epochs.unwrap_or(6),
            patience: 3,
            lr: args.lr,
            warmup_steps: 20,
            ..TrainConfig::default()
        };
        if let [single] = bases.as_slice() {
            train::train_warm(
                &train_set,
                &warm_validation,
                &tools,
                single,
                &config,
                &model_dir,
                progress,
            )
            .with_context(|| format!("warm-start training into {}", model_dir.display()))?;
        } else {
            let mut member_dirs = Vec::with_capacity(bases.len());
            for (k, base) in bases.iter().enumerate() {
                let dir = candidate_dir.join("members").join(k.to_string());
                let config = TrainConfig {
                    seed: config.seed.wrapping_add(k as u64),
                    ..config.clone()
                };
                train::train_warm(
                    &train_set,
                    &warm_validation,
                    &tools,
                    base,
                    &config,
                    &dir,
                    progress,
                )
                .with_context(|| format!("warm-start training into {}", dir.display()))?;
                member_dirs.push(dir);
            }
            let report = ensemble::combine(&member_dirs, &warm_validation, &model_dir)
                .with_context(|| format!("combining the members into {}", model_dir.display()))?;
            println!(
                "{} members continued and combined: validation tool-set accuracy {:.2}%",
                bases.len(),
                100.0 * report.validation_tool_set_accuracy
            );
        }
    }
    let train_seconds = train_started.elapsed().as_secs_f64();
    let candidate = ToolForgeRouter::new(&model_dir);

    let policy = GatePolicy::default();
    let mut guard_scores = vec![
        paired_on(
            &current,
            &candidate,
            &context,
            &test,
            "frozen test split",
            &policy,
        )
        .await,
    ];
    for (name, set) in &guards {
        guard_scores.push(paired_on(&current, &candidate, &context, set, name, &policy).await);
    }
    let corrections = if held_out.is_empty() {
        None
    } else {
        Some(
            paired_on(
                &current,
                &candidate,
                &context,
                &held_out,
                "held-out corrections",
                &policy,
            )
            .await,
        )
    };
    let verdict = gate::decide(&guard_scores, corrections.as_ref());
    let arguments = if held_out.is_empty() {
        None
    } else {
        let current_predictions = predict(&current, &context, &held_out, false).await;
        let candidate_predictions = predict(&candidate, &context, &held_out, false).await;
        Some((
            evaluate("current", &held_out, &current_predictions, &tools).argument_f1,
            evaluate("candidate", &held_out, &candidate_predictions, &tools).argument_f1,
        ))
    };
    print_report(
        &guard_scores,
        corrections.as_ref(),
        arguments,
        &verdict,
        train_seconds,
        if args.full { "full" } else { "warm start" },
    );
    let report = serde_json::json!({
        "mode": if args.full { "full" } else { "warm_start" },
        "train_seconds": train_seconds,
        "learned_from": learn.len(),
        "held_out": held_out.len(),
        "guards": guard_scores,
        "corrections": corrections,
        "held_out_argument_f1": arguments.map(|(a, b)| serde_json::json!({"current": a, "candidate": b})),
        "verdict": verdict,
    });
    let report_path = candidate_dir.join("gate.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", report_path.display()))?;

    if args.dry_run {
        println!(
            "dry run: nothing promoted (candidate in {}, report in {}); {:.1} s in all",
            model_dir.display(),
            report_path.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(false);
    }
    if !verdict.promote {
        println!(
            "not promoted (candidate kept in {}, report in {})",
            model_dir.display(),
            report_path.display()
        );
        return Ok(false);
    }
    let replaced = promote(&model_dir, &out)?;
    let kept = if replaced {
        format!(
            " (the one it replaced is in {}; `toolforge rollback --model {}` restores it)",
            previous_dir(&out).display(),
            out.display()
        )
    } else {
        String::new()
    };
    println!(
        "promoted: the new model is in {}{kept}; {:.1} s in all",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

async fn paired_on(
    current: &dyn Router,
    candidate: &dyn Router,
    context: &RouteContext,
    examples: &[Example],
    name: &str,
    policy: &GatePolicy,
) -> PairedScore {
    let progress = std::io::stderr().is_terminal();
    let right = |predictions: Vec<toolforge_trainer::Prediction>| -> Vec<bool> {
        examples
            .iter()
            .zip(&predictions)
            .map(|(example, prediction)| {
                prediction.error.is_none() && tool_set_right(example, prediction)
            })
            .collect()
    };
    let current_right = right(predict(current, context, examples, progress).await);
    let candidate_right = right(predict(candidate, context, examples, progress).await);
    gate::paired(name, &current_right, &candidate_right, policy)
}

fn print_report(
    guards: &[PairedScore],
    corrections: Option<&PairedScore>,
    arguments: Option<(f64, f64)>,
    verdict: &Verdict,
    train_seconds: f64,
    mode: &str,
) {
    println!("{mode}: trained in {train_seconds:.1} s");
    println!(
        "gate (tool-set accuracy, paired; interval: 95% bootstrap; decision: McNemar exact test):"
    );
    for score in guards.iter().chain(corrections) {
        println!("  {score}");
    }
    if let Some((current, candidate)) = arguments {
        println!(
            "  held-out corrections argument F1: current {current:.3}  candidate {candidate:.3}"
        );
    }
    println!(
        "verdict: {}",
        if verdict.promote { "promote" } else { "refuse" }
    );
    for reason in &verdict.reasons {
        println!("  - {reason}");
    }
}

/// Moves the model in `out` (if any) to `<out>.previous` and copies the
/// candidate's files into `out`; true when a model was replaced.
fn promote(model_dir: &Path, out: &Path) -> anyhow::Result<bool> {
    let previous = previous_dir(out);
    let replaces = out.join("config.json").is_file();
    if replaces {
        if previous.exists() {
            std::fs::remove_dir_all(&previous)
                .with_context(|| format!("removing {}", previous.display()))?;
        }
        std::fs::rename(out, &previous)
            .with_context(|| format!("moving {} to {}", out.display(), previous.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for entry in std::fs::read_dir(model_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), out.join(entry.file_name()))
                .with_context(|| format!("copying into {}", out.display()))?;
        }
    }
    Ok(replaces)
}

/// Runs `toolforge rollback`: swaps the model directory with the one its last
/// promotion replaced (running it again re-applies the promotion).
pub fn run_rollback(agent_config: &AgentConfig, args: RollbackArgs) -> anyhow::Result<()> {
    let Some(dir) = args.model.or_else(|| agent_config.model.dir.clone()) else {
        bail!("no model directory: pass --model DIR or set [model] dir in the config");
    };
    let previous = previous_dir(&dir);
    if !previous.join("config.json").is_file() {
        bail!(
            "nothing to roll back to: {} holds no previous model",
            previous.display()
        );
    }
    let version = |d: &Path| {
        ToolForgeRouter::new(d)
            .model_version()
            .unwrap_or_else(|| "unreadable model".to_string())
    };
    let (from, to) = (version(&dir), version(&previous));
    let mut swap_name = dir.as_os_str().to_owned();
    swap_name.push(".rollback");
    let swap = PathBuf::from(swap_name);
    if swap.exists() {
        std::fs::remove_dir_all(&swap).with_context(|| format!("removing {}", swap.display()))?;
    }
    std::fs::rename(&dir, &swap).with_context(|| format!("moving {}", dir.display()))?;
    std::fs::rename(&previous, &dir).with_context(|| format!("moving {}", previous.display()))?;
    std::fs::rename(&swap, &previous).with_context(|| format!("moving {}", swap.display()))?;
    println!(
        "rolled back {}: {} -> {} (the replaced model is in {})",
        dir.display(),
        from,
        to,
        previous.display()
    );
    Ok(())
}
