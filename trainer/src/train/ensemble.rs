//! Ensembles: several `compact` trainings of one architecture on one dataset,
//! differing only in their seed, combined into one model directory whose
//! outputs are the members' mean and calibrated again on validation. Seeds
//! disagree most on queries unlike the training data, which is where averaging
//! them helps; each member costs one more forward pass (tens of microseconds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Serialize;
use serde_json::{json, Value};
use toolforge_core::{RouteContext, ToolSpec};
use toolforge_routers::toolforge_model::files::{ModelConfig, WEIGHTS_FILE};
use toolforge_routers::toolforge_model::network::Network;
use toolforge_routers::toolforge_model::{
    minilm, read_weights, write_members_dir, ModelError, ToolForgeModel, MAX_MEMBERS,
};

use super::{
    fit_temperature, fit_unsupported_threshold, prepare, validate, write_json_report, TrainError,
};
use crate::dataset::Example;

/// What [`combine`] wrote (also `ensemble_report.json` in the model directory).
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleReport {
    /// The ensemble's model directory.
    pub model_dir: PathBuf,
    /// Its model version (from the combined weights' hash).
    pub model_version: String,
    /// The members' model versions, in member order.
    pub members: Vec<String>,
    /// Validation examples used for calibration and scoring.
    pub validation_examples: usize,
    /// Each member's validation tool-set accuracy on its own.
    pub member_tool_set_accuracy: Vec<f64>,
    /// The ensemble's validation tool-set accuracy.
    pub validation_tool_set_accuracy: f64,
    /// The ensemble's validation argument F1.
    pub validation_argument_f1: f64,
    /// Temperature fitted on the averaged logits.
    pub temperature: f64,
    /// Unsupported threshold fitted on the averaged logits.
    pub unsupported_threshold: f64,
    /// Size of the combined weights file.
    pub weights_bytes: u64,
}

/// One member as read from its directory.
struct Member {
    model: ToolForgeModel,
    weights: HashMap<String, Tensor>,
}

fn incompatible(dir: &Path, what: &str) -> TrainError {
    TrainError::Config(format!(
        "{} cannot join the ensemble: its {what} differs from the first member's \
         (members must be trained on the same data with the same settings, except the seed)",
        dir.display()
    ))
}

fn load_member(dir: &Path) -> Result<Member, TrainError> {
    let model = ToolForgeModel::load_dir(dir)?;
    let config = model.config();
    if config.backbone == minilm::BACKBONE {
        return Err(TrainError::Config(format!(
            "{} is a minilm model; only compact models are combined",
            dir.display()
        )));
    }
    if config.members != 1 {
        return Err(TrainError::Config(format!(
            "{} is already an ensemble of {}; combine its members' directories instead",
            dir.display(),
            config.members
        )));
    }
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Io { path, source })?;
    let weights = read_weights(&bytes)?;
    Ok(Member { model, weights })
}

/// Checks that `other` can be averaged with `first`.
fn check_compatible(
    first: &ToolForgeModel,
    other: &ToolForgeModel,
    dir: &Path,
) -> Result<(), TrainError> {
    let (a, b) = (first.config(), other.config());
    if a.architecture != b.architecture {
        return Err(incompatible(dir, "architecture"));
    }
    if a.tools != b.tools || first.tools() != other.tools() {
        return Err(incompatible(dir, "tool list"));
    }
    if a.slots != b.slots || a.unsupported_output != b.unsupported_output {
        return Err(incompatible(dir, "output layout"));
    }
    if first.vocab().map(|v| v.to_file()) != other.vocab().map(|v| v.to_file()) {
        return Err(incompatible(dir, "vocabulary"));
    }
    Ok(())
}

/// Combines the `compact` models in `member_dirs` (at least two, trained on the
/// same data with different seeds) into one ensemble in `out_dir`, calibrated
/// and scored on `validation` (normally the members' own validation split).
pub fn combine(
    member_dirs: &[PathBuf],
    validation: &[Example],
    out_dir: &Path,
) -> Result<EnsembleReport, TrainError> {
    if member_dirs.len() < 2 || member_dirs.len() > MAX_MEMBERS {
        return Err(TrainError::Config(format!(
            "an ensemble combines 2 to {MAX_MEMBERS} models, not {}",
            member_dirs.len()
        )));
    }
    let members = member_dirs
        .iter()
        .map(|dir| load_member(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &members[0].model;
    for (member, dir) in members.iter().zip(member_dirs).skip(1) {
        check_compatible(first, &member.model, dir)?;
    }
    let vocab = first
        .vocab()
        .ok_or_else(|| TrainError::Config("a compact member has no vocabulary".into()))?
        .clone();
    let tools: Vec<ToolSpec> = first.tools().to_vec();
    let arch = first.config().architecture.clone();
    let networks = members
        .iter()
        .map(|m| {
            Network::new(
                &VarBuilder::from_tensors(m.weights.clone(), DType::F32, &Device::Cpu),
                &arch,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut config: ModelConfig = first.config().clone();
    config.model_version = String::new();
    config.members = members.len();
    let uncalibrated = ToolForgeModel::from_members(
        config.clone(),
        vocab.clone(),
        tools.clone(),
        networks.clone(),
    )?;

    let tool_names: Vec<String> = config.tools.iter().map(|t| t.name.clone()).collect();
    let prepared = prepare(
        validation,
        &tool_names,
        &config.slots,
        &tools,
        arch.max_tokens,
    );
    if prepared.examples.is_empty() {
        return Err(TrainError::Config(
            "an ensemble is calibrated on validation examples, and none are usable".into(),
        ));
    }
    let kept: Vec<Example> = prepared
        .kept
        .iter()
        .map(|&i| validation[i].clone())
        .collect();
    let gold: Vec<Vec<f32>> = prepared.examples.iter().map(|e| e.tools.clone()).collect();
    let logits = kept
        .iter()
        .map(|e| uncalibrated.score(&e.query).map(|s| s.tool_logits))
        .collect::<Result<Vec<_>, _>>()?;
    config.temperature = fit_temperature(&logits, &gold);
    config.unsupported_threshold = fit_unsupported_threshold(&logits, &gold, config.temperature);

    let context = RouteContext::new(tools.clone());
    let member_tool_set_accuracy: Vec<f64> = members
        .iter()
        .map(|m| validate(&m.model, &kept, &tools, &context).0)
        .collect();
    let ensemble =
        ToolForgeModel::from_members(config.clone(), vocab.clone(), tools.clone(), networks)?;
    let (accuracy, argument_f1) = validate(&ensemble, &kept, &tools, &context);
    let member_versions: Vec<String> = members
        .iter()
        .map(|m| m.model.version().to_string())
        .collect();
    let member_training: Vec<Value> = members
        .iter()
        .map(|m| m.model.config().training.clone())
        .collect();
    config.training = json!({
        "backbone": config.backbone,
        "ensemble_of": member_versions,
        "members": member_training,
        "dataset_sha256": first.config().training.get("dataset_sha256"),
        "validation_examples": kept.len(),
        "validation_tool_set_accuracy": accuracy,
        "validation_argument_f1": argument_f1,
    });
    let weights: Vec<HashMap<String, Tensor>> = members.into_iter().map(|m| m.weights).collect();
    let written = write_members_dir(out_dir, config, &vocab, &tools, &weights)?;
    let weights_bytes = std::fs::metadata(out_dir.join(WEIGHTS_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let report = EnsembleReport {
        model_dir: out_dir.to_path_buf(),
        model_version: written.model_version.clone(),
        members: member_versions,
        validation_examples: kept.len(),
        member_tool_set_accuracy,
        validation_tool_set_accuracy: accuracy,
        validation_argument_f1: argument_f1,
        temperature: written.temperature,
        unsupported_threshold: written.unsupported_threshold,
        weights_bytes,
    };
    write_json_report(out_dir, "ensemble_report.json", &report)?;
    Ok(report)
}
