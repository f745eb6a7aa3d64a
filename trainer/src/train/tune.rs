//! The top layers of the `minilm` encoder, fine-tuned: trainable copies of the
//! pretrained layers in a `VarMap`, run by the encoder's own layer type
//! ([`BertLayer`], one forward for inference and training, every op with a
//! backward pass) with dropout.

use std::collections::HashMap;

use candle_core::{Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use toolforge_model::bert::{attention_mask, BertLayer, Config as BertConfig};
use toolforge_model::network::Dropout;
use toolforge_routers::toolforge_model::minilm::Encoder;

use super::TrainError;

/// The tuned top layers (none for a frozen encoder: the identity).
#[derive(Debug, Clone)]
pub(super) struct TopLayers {
    /// Names of the layers in the encoder's weights file (`encoder.layer.4`).
    names: Vec<String>,
    layers: Vec<BertLayer>,
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
    /// (every tensor of each layer) into `varmap`, under their names in the
    /// encoder's weights file.
    pub fn init_varmap(
        varmap: &VarMap,
        encoder: &Encoder,
        count: usize,
    ) -> std::result::Result<(), TrainError> {
        top_names(encoder, count)?;
        let first = encoder.layers() - count;
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| TrainError::Config("parameter map lock poisoned".into()))?;
        for index in first..encoder.layers() {
            for (name, tensor) in encoder.layer_tensors(index)? {
                data.insert(name, Var::from_tensor(&tensor)?);
            }
        }
        Ok(())
    }

    /// The top `count` layers of `encoder` with their weights from `vb` (a
    /// `VarMap` filled by [`TopLayers::init_varmap`] for training, tensors
    /// otherwise), configured by the encoder's `config.json`.
    pub fn new(
        vb: &VarBuilder,
        encoder: &Encoder,
        count: usize,
    ) -> std::result::Result<Self, TrainError> {
        let names = top_names(encoder, count)?;
        if count == 0 {
            return Ok(Self {
                names,
                layers: Vec::new(),
            });
        }
        let config: BertConfig = serde_json::from_value(encoder.config().clone())
            .map_err(|e| TrainError::Config(format!("encoder config: {e}")))?;
        let layers = names
            .iter()
            .map(|name| BertLayer::load_trainable(&vb.pp(name), &config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { names, layers })
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
        self.layers.iter().map(BertLayer::param_count).sum()
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
        if self.layers.is_empty() {
            return Ok(states.clone());
        }
        let (batch, len, hidden) = states.dims3()?;
        let mask = attention_mask(attention)?;
        let mut x = states.reshape((batch * len, hidden))?;
        for layer in &self.layers {
            x = layer.forward(&x, (batch, len), &mask, dropout.as_deref_mut())?;
        }
        x.reshape((batch, len, hidden))
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
    use toolforge_model::network::training_builder;
    use toolforge_routers::toolforge_model::minilm::MAX_PIECES;

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
        let per_layer = full.layer_tensors(1).unwrap().len();
        assert_eq!(varmap.all_vars().len(), 2 * per_layer);
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

    /// The top layer of a two-layer tiny encoder, trainable, with its variables
    /// (the directory lives as long as the first value).
    fn trainable_top_layer() -> (tempfile::TempDir, VarMap, TopLayers) {
        let tmp = tempfile::tempdir().unwrap();
        tiny_encoder(tmp.path(), 2);
        let full = Encoder::load(tmp.path()).unwrap();
        let varmap = VarMap::new();
        TopLayers::init_varmap(&varmap, &full, 1).unwrap();
        let top = TopLayers::new(&training_builder(&varmap, &Device::Cpu), &full, 1).unwrap();
        (tmp, varmap, top)
    }

    #[test]
    fn gradients_reach_every_tuned_parameter() {
        let (_tmp, varmap, top) = trainable_top_layer();
        let states = Tensor::randn(0f32, 1.0, (2, 3, 32), &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 0.0], [1.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let out = top.forward(&states, &mask, None).unwrap();
        let loss = (out.sqr().unwrap().sum_all().unwrap() + out.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for var in varmap.all_vars() {
            let grad = grads
                .get(var.as_tensor())
                .expect("a gradient for every parameter");
            let size: f32 = grad.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(
                size > 0.0,
                "zero gradient for a parameter of shape {:?}",
                var.shape()
            );
        }
    }

    #[test]
    fn optimizer_steps_reach_the_next_forward() {
        let (_tmp, varmap, top) = trainable_top_layer();
        let states = Tensor::randn(0f32, 1.0, (1, 3, 32), &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap();
        let before = top.forward(&states, &mask, None).unwrap();
        // Change the query, key and value weights, as an optimizer step does.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.contains("attention.self.") && name.ends_with("weight") {
                let moved = (var.as_tensor() * 3.0).unwrap();
                var.set(&moved).unwrap();
            }
        }
        let after = top.forward(&states, &mask, None).unwrap();
        let moved: f32 = (after - before)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(moved > 1e-3, "the forward did not see the updated weights");
    }
}
