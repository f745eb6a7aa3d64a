//! Trainable copies of the top layers of the `minilm` encoder: the computation of
//! candle-transformers' `BertLayer` (self-attention, feed-forward, post-norm
//! residuals, padding mask), written with ops that all have a backward pass.
//! candle's fused layer norm and `softmax_last_dim` record none, so training
//! through them, or through candle-transformers' BERT, silently leaves every
//! parameter below them untrained.

use std::collections::HashMap;

use candle_core::{Result, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use serde_json::Value;
use toolforge_routers::toolforge_model::minilm::Encoder;
use toolforge_routers::toolforge_model::network::Dropout;

use super::TrainError;

/// Additive attention score of padded keys (far below any real score).
const MASKED: f64 = -1e9;

/// Tensors of one layer, by name under the layer (`encoder.layer.5.` + name).
const PARAMS: [&str; 16] = [
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
];

/// The feed-forward activation (`hidden_act` of the encoder config).
#[derive(Debug, Clone, Copy)]
enum Activation {
    /// `gelu`: the exact (erf) GELU.
    Gelu,
    /// `geluapproximate`: the tanh approximation.
    GeluApproximate,
    Relu,
}

/// Sizes of the encoder's layers, from its `config.json`.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    hidden: usize,
    intermediate: usize,
    heads: usize,
    eps: f64,
    activation: Activation,
}

impl Sizes {
    fn of(config: &Value) -> std::result::Result<Self, TrainError> {
        let size = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_u64)
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| TrainError::Config(format!("encoder config lacks {key}")))
        };
        let activation = match config.get("hidden_act").and_then(Value::as_str) {
            Some("gelu") => Activation::Gelu,
            Some("geluapproximate") => Activation::GeluApproximate,
            Some("relu") => Activation::Relu,
            other => {
                return Err(TrainError::Config(format!(
                    "unsupported encoder activation {other:?}"
                )))
            }
        };
        let sizes = Self {
            hidden: size("hidden_size")?,
            intermediate: size("intermediate_size")?,
            heads: size("num_attention_heads")?,
            eps: config
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12),
            activation,
        };
        if !sizes.hidden.is_multiple_of(sizes.heads) {
            return Err(TrainError::Config(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        Ok(sizes)
    }

    fn shape(&self, param: &str) -> Vec<usize> {
        let (h, i) = (self.hidden, self.intermediate);
        match param {
            "intermediate.dense.weight" => vec![i, h],
            "intermediate.dense.bias" => vec![i],
            "output.dense.weight" => vec![h, i],
            p if p.ends_with(".weight") && !p.contains("LayerNorm") => vec![h, h],
            _ => vec![h],
        }
    }
}

/// A dense layer as BERT stores it: `weight` is `out x in`.
#[derive(Debug, Clone)]
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)
    }
}

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

#[derive(Debug, Clone)]
struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// The tuned top layers (none for a frozen encoder: the identity).
#[derive(Debug, Clone)]
pub(super) struct TopLayers {
    sizes: Option<Sizes>,
    /// Names of the layers in the encoder's weights file (`encoder.layer.4`).
    names: Vec<String>,
    layers: Vec<Layer>,
}

/// Names of the top `count` layers of `encoder`.
fn top_names(encoder: &Encoder, count: usize) -> std::result::Result<Vec<String>, TrainError> {
    let total = encoder.layers();
    if count > total {
        return Err(TrainError::Config(format!(
            "cannot tune {count} layers of an encoder of {total}"
        )));
    }
    Ok((total - count..total)
        .map(|i| encoder.layer_name(i))
        .collect())
}

impl TopLayers {
    /// Puts trainable copies of the pretrained top `count` layers of `encoder`
    /// into `varmap`, under their names in the encoder's weights file.
    pub fn init_varmap(
        varmap: &VarMap,
        encoder: &Encoder,
        count: usize,
    ) -> std::result::Result<(), TrainError> {
        let names = top_names(encoder, count)?;
        let first = encoder.layers() - count;
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?;
        for (offset, name) in names.iter().enumerate() {
            let tensors = encoder.layer_tensors(first + offset)?;
            for param in PARAMS {
                let key = format!("{name}.{param}");
                let tensor = tensors.get(&key).ok_or_else(|| {
                    TrainError::Config(format!("the encoder has no tensor {key}"))
                })?;
                data.insert(key, Var::from_tensor(tensor)?);
            }
        }
        Ok(())
    }

    /// The top `count` layers of `encoder` with their weights from `vb` (a
    /// `VarMap` filled by [`TopLayers::init_varmap`] for training, tensors
    /// otherwise).
    pub fn new(
        vb: &VarBuilder,
        encoder: &Encoder,
        count: usize,
    ) -> std::result::Result<Self, TrainError> {
        let names = top_names(encoder, count)?;
        if count == 0 {
            return Ok(Self {
                sizes: None,
                names,
                layers: Vec::new(),
            });
        }
        let sizes = Sizes::of(encoder.config())?;
        let mut layers = Vec::with_capacity(count);
        for name in &names {
            let get = |param: &str| vb.get(sizes.shape(param), &format!("{name}.{param}"));
            let dense = |prefix: &str| -> Result<Dense> {
                Ok(Dense {
                    weight: get(&format!("{prefix}.weight"))?,
                    bias: get(&format!("{prefix}.bias"))?,
                })
            };
            let norm = |prefix: &str| -> Result<Norm> {
                Ok(Norm {
                    weight: get(&format!("{prefix}.weight"))?,
                    bias: get(&format!("{prefix}.bias"))?,
                })
            };
            layers.push(Layer {
                query: dense("attention.self.query")?,
                key: dense("attention.self.key")?,
                value: dense("attention.self.value")?,
                attention_out: dense("attention.output.dense")?,
                attention_norm: norm("attention.output.LayerNorm")?,
                intermediate: dense("intermediate.dense")?,
                output: dense("output.dense")?,
                output_norm: norm("output.LayerNorm")?,
            });
        }
        Ok(Self {
            sizes: Some(sizes),
            names,
            layers,
        })
    }

    /// Number of tuned layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether `name` (a weights-file name) is a tensor of these layers.
    pub fn owns(&self, name: &str) -> bool {
        self.names.iter().any(|layer| {
            name.strip_prefix(layer.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// Number of trained parameters.
    pub fn param_count(&self) -> usize {
        self.sizes.map_or(0, |sizes| {
            self.layers.len()
                * PARAMS
                    .iter()
                    .map(|p| sizes.shape(p).iter().product::<usize>())
                    .sum::<usize>()
        })
    }

    /// Runs the layers over `states` (`batch x len x hidden`, the output of the
    /// layer below) with `attention` (`batch x len`, 1 for real positions, 0 for
    /// padding); `dropout` (training only) applies where BERT's hidden dropout is.
    pub fn forward(
        &self,
        states: &Tensor,
        attention: &Tensor,
        mut dropout: Option<&mut Dropout>,
    ) -> Result<Tensor> {
        let Some(sizes) = self.sizes else {
            return Ok(states.clone());
        };
        let (batch, len, hidden) = states.dims3()?;
        let heads = sizes.heads;
        let head_dim = hidden / heads;
        let mask = ((attention.ones_like()? - attention)? * MASKED)?.reshape((batch, 1, 1, len))?;
        let eps = sizes.eps as f32;
        let mut x = states.clone();
        for layer in &self.layers {
            let split = |t: Tensor| {
                t.reshape((batch, len, heads, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?.broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((batch, len, hidden))?;
            let mut attended = layer.attention_out.forward(&context)?;
            if let Some(d) = dropout.as_deref_mut() {
                attended = d.apply(&attended)?;
            }
            let attended = candle_nn::ops::layer_norm_slow(
                &(attended + &x)?,
                &layer.attention_norm.weight,
                &layer.attention_norm.bias,
                eps,
            )?;
            let inner = layer.intermediate.forward(&attended)?;
            let inner = match sizes.activation {
                Activation::Gelu => inner.gelu_erf()?,
                Activation::GeluApproximate => inner.gelu()?,
                Activation::Relu => inner.relu()?,
            };
            let mut out = layer.output.forward(&inner)?;
            if let Some(d) = dropout.as_deref_mut() {
                out = d.apply(&out)?;
            }
            x = candle_nn::ops::layer_norm_slow(
                &(out + &attended)?,
                &layer.output_norm.weight,
                &layer.output_norm.bias,
                eps,
            )?;
        }
        Ok(x)
    }
}

/// The tensors of `weights` that belong to `top` (the tuned layers), and the rest.
pub(super) fn split_weights(
    top: &TopLayers,
    weights: HashMap<String, Tensor>,
) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    weights.into_iter().partition(|(name, _)| top.owns(name))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use toolforge_routers::toolforge_model::minilm::MAX_PIECES;
    use toolforge_routers::toolforge_model::network::training_builder;

    use super::*;
    use crate::train::tests::tiny_encoder;

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2().unwrap()
    }

    /// Padded `batch x len x hidden` states and `batch x len` mask of `states`.
    fn pad(states: &[Tensor]) -> (Tensor, Tensor) {
        let len = states.iter().map(|s| s.dims()[0]).max().unwrap();
        let padded: Vec<Tensor> = states
            .iter()
            .map(|s| s.pad_with_zeros(0, 0, len - s.dims()[0]).unwrap())
            .collect();
        let mask: Vec<f32> = states
            .iter()
            .flat_map(|s| (0..len).map(move |i| if i < s.dims()[0] { 1.0 } else { 0.0 }))
            .collect();
        (
            Tensor::stack(&padded, 0).unwrap(),
            Tensor::from_vec(mask, (states.len(), len), &Device::Cpu).unwrap(),
        )
    }

    #[test]
    fn trainable_layers_compute_candle_transformers_bert() {
        let tmp = tempfile::tempdir().unwrap();
        tiny_encoder(tmp.path(), 3);
        let full = Encoder::load(tmp.path()).unwrap();
        let queries = [
            "weather in paris",
            "how do you say good night in german?",
            "hi",
        ];
        let expected = full
            .encode_batch_with_specials(&queries, MAX_PIECES)
            .unwrap();
        for tuned in [1, 2, 3] {
            let bottom = Encoder::load_bottom(tmp.path(), 3 - tuned).unwrap();
            let input = bottom
                .encode_batch_with_specials(&queries, MAX_PIECES)
                .unwrap();
            let varmap = VarMap::new();
            TopLayers::init_varmap(&varmap, &full, tuned).unwrap();
            let top =
                TopLayers::new(&training_builder(&varmap, &Device::Cpu), &full, tuned).unwrap();
            assert_eq!(top.len(), tuned);
            let states: Vec<Tensor> = input.iter().map(|e| e.states.clone()).collect();
            let (batch, mask) = pad(&states);
            let out = top.forward(&batch, &mask, None).unwrap();
            let mut worst = 0f32;
            for (row, want) in expected.iter().enumerate() {
                let n = want.states.dims()[0];
                let got = out.get(row).unwrap().narrow(0, 0, n).unwrap();
                for (a, b) in rows(&got).iter().zip(rows(&want.states)) {
                    for (x, y) in a.iter().zip(b) {
                        worst = worst.max((x - y).abs());
                    }
                }
            }
            assert!(worst < 1e-4, "{tuned} tuned layers differ by {worst}");
        }
    }

    #[test]
    fn layer_names_and_parameters() {
        let tmp = tempfile::tempdir().unwrap();
        tiny_encoder(tmp.path(), 3);
        let full = Encoder::load(tmp.path()).unwrap();
        let varmap = VarMap::new();
        TopLayers::init_varmap(&varmap, &full, 2).unwrap();
        let top = TopLayers::new(&training_builder(&varmap, &Device::Cpu), &full, 2).unwrap();
        assert_eq!(varmap.all_vars().len(), 2 * PARAMS.len());
        let count: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(top.param_count(), count);
        assert!(top.owns("encoder.layer.1.output.dense.weight"));
        assert!(top.owns("encoder.layer.2.attention.self.key.bias"));
        assert!(!top.owns("encoder.layer.0.output.dense.weight"));
        assert!(!top.owns("encoder.layer.10.output.dense.weight"));
        assert!(!top.owns("proj.weight"));
        assert!(TopLayers::init_varmap(&VarMap::new(), &full, 4).is_err());
        let none = TopLayers::new(&VarBuilder::zeros(DType::F32, &Device::Cpu), &full, 0).unwrap();
        assert_eq!((none.len(), none.param_count()), (0, 0));
        let x = Tensor::ones((1, 2, 32), DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, 2), DType::F32, &Device::Cpu).unwrap();
        let same = none.forward(&x, &mask, None).unwrap();
        assert_eq!(rows(&same.get(0).unwrap()), rows(&x.get(0).unwrap()));
    }
}
