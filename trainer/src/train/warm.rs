//! Warm start: training that continues from an existing compact model instead
//! of random weights. The model's vocabulary and encoder are kept; its tool head
//! grows a row for each registered tool it does not know (the unsupported output
//! stays last) and its tag head grows B/I rows for each new argument, so a
//! retrain on new traffic takes seconds and starts from what the model knew.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use toolforge_core::ToolSpec;
use toolforge_model::features::Vocab;
use toolforge_model::network::ArchConfig;
use toolforge_routers::toolforge_model::decode::{tag_begin, tag_inside};
use toolforge_routers::toolforge_model::files::{ModelConfig, SlotInfo};
use toolforge_routers::toolforge_model::ToolForgeModel;

use super::TrainError;

/// A compact model to continue training from.
#[derive(Debug, Clone)]
pub struct WarmStart {
    config: ModelConfig,
    vocab: Vocab,
    weights: HashMap<String, Tensor>,
}

impl WarmStart {
    /// Takes the weights, vocabulary and heads' layout of `model` (a `compact`
    /// model; the first member of an ensemble, see [`WarmStart::members`]).
    pub fn from_model(model: &ToolForgeModel) -> Result<Self, TrainError> {
        Self::members(model)?
            .into_iter()
            .next()
            .ok_or_else(|| TrainError::Config(format!("{} has no members", model.version())))
    }

    /// One warm start per member of `model` (a `compact` model, an ensemble or
    /// a single one), each continuing that member's own weights.
    pub fn members(model: &ToolForgeModel) -> Result<Vec<Self>, TrainError> {
        let vocab = model.vocab().ok_or_else(|| {
            TrainError::Config(format!(
                "warm start needs a compact model; {} is a {} model (train it in full instead)",
                model.version(),
                model.config().backbone
            ))
        })?;
        let config = ModelConfig {
            members: 1,
            ..model.config().clone()
        };
        model
            .networks()?
            .iter()
            .map(|network| {
                let weights = network
                    .named_tensors()
                    .into_iter()
                    .map(|(name, tensor)| Ok((name, tensor.to_dtype(DType::F32)?)))
                    .collect::<candle_core::Result<HashMap<_, _>>>()?;
                Ok(Self {
                    config: config.clone(),
                    vocab: vocab.clone(),
                    weights,
                })
            })
            .collect()
    }

    /// The vocabulary, kept as it is (new words are read through n-grams).
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The version of the model training starts from.
    pub fn version(&self) -> &str {
        &self.config.model_version
    }

    /// `tools` with the ones the model knows first, in its order, then the others
    /// in registry order, so known tools and arguments keep their head rows.
    pub fn order_tools(&self, tools: &[ToolSpec]) -> Vec<ToolSpec> {
        let known: Vec<&str> = self.config.tools.iter().map(|t| t.name.as_str()).collect();
        let mut ordered: Vec<ToolSpec> = known
            .iter()
            .filter_map(|name| tools.iter().find(|t| t.name == *name).cloned())
            .collect();
        ordered.extend(
            tools
                .iter()
                .filter(|t| !known.contains(&t.name.as_str()))
                .cloned(),
        );
        ordered
    }

    /// Names of `tools` the model does not know.
    pub fn new_tools<'a>(&self, tools: &'a [ToolSpec]) -> Vec<&'a str> {
        tools
            .iter()
            .map(|t| t.name.as_str())
            .filter(|name| !self.config.tools.iter().any(|k| k.name == *name))
            .collect()
    }

    /// The model's architecture with heads for `tools` outputs and `tags` tags.
    pub fn arch(&self, tools: usize, tags: usize, dropout: f32) -> ArchConfig {
        ArchConfig {
            tools,
            tags,
            dropout,
            ..self.config.architecture.clone()
        }
    }

    /// Overwrites the freshly initialised `varmap` (built for the grown
    /// architecture) with the model's weights: the encoder as it is, the head
    /// rows by tool and argument name. Rows of new tools and arguments keep
    /// their initialisation.
    pub fn seed(
        &self,
        varmap: &VarMap,
        tool_names: &[String],
        slots: &[SlotInfo],
    ) -> Result<(), TrainError> {
        let base_tools: Vec<&str> = self.config.tools.iter().map(|t| t.name.as_str()).collect();
        let mut tool_rows: Vec<Option<usize>> = tool_names
            .iter()
            .map(|name| base_tools.iter().position(|b| b == name))
            .collect();
        tool_rows.push(self.config.unsupported_output.then_some(base_tools.len()));
        let mut tag_rows: Vec<Option<usize>> = vec![Some(0); 1 + 2 * slots.len()];
        for (s, slot) in slots.iter().enumerate() {
            let base = self
                .config
                .slots
                .iter()
                .position(|b| b.tool == slot.tool && b.argument == slot.argument);
            tag_rows[tag_begin(s)] = base.map(tag_begin);
            tag_rows[tag_inside(s)] = base.map(tag_inside);
        }
        let data = varmap
            .data()
            .lock()
            .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?;
        for (name, var) in data.iter() {
            let Some(base) = self.weights.get(name) else {
                return Err(TrainError::Config(format!(
                    "the warm-start model has no parameter {name}"
                )));
            };
            let rows = match name.as_str() {
                "tool_head.weight" | "tool_head.bias" => Some(&tool_rows),
                "tag_head.weight" | "tag_head.bias" => Some(&tag_rows),
                _ => None,
            };
            let value = match rows {
                None => {
                    if base.dims() != var.dims() {
                        return Err(TrainError::Config(format!(
                            "parameter {name} has shape {:?} in the warm-start model, {:?} here",
                            base.dims(),
                            var.dims()
                        )));
                    }
                    base.clone()
                }
                Some(rows) => grow_rows(var.as_tensor(), base, rows)?,
            };
            var.set(&value)?;
        }
        Ok(())
    }
}

/// `fresh` with row `i` replaced by `base`'s row `rows[i]` where there is one.
fn grow_rows(fresh: &Tensor, base: &Tensor, rows: &[Option<usize>]) -> Result<Tensor, TrainError> {
    let parts = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            Some(from) => base.get(*from),
            None => fresh.get(i),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&parts, 0)?)
}
