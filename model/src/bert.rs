//! The BERT encoder of the `minilm` backbone, written once for inference and
//! for fine-tuning: the computation of candle-transformers' `BertModel` (same
//! `Config`, same weight names loaded through `VarBuilder` prefixes, same
//! results to rounding), with dropout as an option. Every op has a backward
//! pass (layer norm is the fused, differentiable [`super::fused::layer_norm`]),
//! so gradients reach every tuned parameter. `BertModel` multiplies activations
//! by each weight's transpose, which makes gemm repack the whole weight with
//! strided loads on every call, half of a query's time; here each weight is the
//! left operand (`W · xᵀ`), read row by row in place, and the query, key and
//! value projections are one matmul. For serving, [`Bert::to_int8`] holds every
//! dense weight in 8 bits (GGML's Q8_0: a scale per 32 weights) and multiplies
//! with candle's quantized kernels, a quarter of the memory.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
pub use candle_transformers::models::bert::{Config, HiddenAct};

use super::network::Dropout;

/// A dense layer's weight, `out x in`: as loaded, or quantized to 8 bits.
#[derive(Debug, Clone)]
enum Weight {
    Float(Tensor),
    Int8(QMatMul),
}

/// A dense layer as BERT stores it: `weight` is `out x in`.
#[derive(Debug, Clone)]
struct Dense {
    weight: Weight,
    bias: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Self {
            weight: Weight::Float(vb.get((outputs, inputs), "weight")?),
            bias: vb.get(outputs, "bias")?,
        })
    }

    /// Stacks the outputs of `parts` (all with the same inputs, as loaded) into
    /// one layer.
    fn stacked(parts: &[Dense]) -> Result<Self> {
        let weights = parts
            .iter()
            .map(|p| match &p.weight {
                Weight::Float(w) => Ok(w),
                Weight::Int8(_) => candle_core::bail!("cannot stack quantized weights"),
            })
            .collect::<Result<Vec<_>>>()?;
        let biases: Vec<&Tensor> = parts.iter().map(|p| &p.bias).collect();
        Ok(Self {
            weight: Weight::Float(Tensor::cat(&weights, 0)?),
            bias: Tensor::cat(&biases, 0)?,
        })
    }

    /// The same layer with its weight in Q8_0 (the bias stays f32).
    fn to_int8(&self) -> Result<Self> {
        let weight = match &self.weight {
            Weight::Float(w) => Weight::Int8(QMatMul::from_qtensor(QTensor::quantize(
                w,
                GgmlDType::Q8_0,
            )?)?),
            Weight::Int8(q) => Weight::Int8(q.clone()),
        };
        Ok(Self {
            weight,
            bias: self.bias.clone(),
        })
    }

    fn param_count(&self) -> usize {
        let weights = match &self.weight {
            Weight::Float(w) => w.elem_count(),
            Weight::Int8(QMatMul::QTensor(q)) => q.shape().elem_count(),
            Weight::Int8(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => w.elem_count(),
        };
        weights + self.bias.elem_count()
    }

    /// `rows x in` to `rows x out`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Float(w) => w.matmul(&x.t()?)?.t()?.broadcast_add(&self.bias),
            Weight::Int8(q) => q.forward(x)?.broadcast_add(&self.bias),
        }
    }
}

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// The query, key and value projections.
#[derive(Debug, Clone)]
enum Projections {
    /// Stacked into one `3 hidden x hidden` layer, one matmul per query
    /// (serving: the weights never change).
    Stacked(Dense),
    /// Kept apart, each the training variable itself, so every optimizer step
    /// is seen by the next forward (a stacked copy would keep the first values).
    Separate([Dense; 3]),
}

impl Projections {
    /// `rows x 3 hidden`: queries, keys, values side by side.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Projections::Stacked(qkv) => qkv.forward(x),
            Projections::Separate([q, k, v]) => {
                Tensor::cat(&[q.forward(x)?, k.forward(x)?, v.forward(x)?], 1)
            }
        }
    }

    fn param_count(&self) -> usize {
        match self {
            Projections::Stacked(qkv) => qkv.param_count(),
            Projections::Separate(parts) => parts.iter().map(Dense::param_count).sum(),
        }
    }

    fn to_int8(&self) -> Result<Self> {
        Ok(match self {
            Projections::Stacked(qkv) => Projections::Stacked(qkv.to_int8()?),
            Projections::Separate([q, k, v]) => {
                Projections::Separate([q.to_int8()?, k.to_int8()?, v.to_int8()?])
            }
        })
    }
}

/// One encoder layer (`encoder.layer.N`): self-attention and feed-forward, each
/// with a post-norm residual.
#[derive(Debug, Clone)]
pub struct BertLayer {
    qkv: Projections,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
    heads: usize,
    activation: HiddenAct,
}

impl BertLayer {
    /// Loads a layer for serving from `vb`, which points at its prefix
    /// (`encoder.layer.N`); the query, key and value weights are stacked.
    pub fn load(vb: &VarBuilder, config: &Config) -> Result<Self> {
        Self::load_as(vb, config, true)
    }

    /// Loads a layer to train from `vb` (over a `VarMap`): the projections stay
    /// the training variables themselves.
    pub fn load_trainable(vb: &VarBuilder, config: &Config) -> Result<Self> {
        Self::load_as(vb, config, false)
    }

    fn load_as(vb: &VarBuilder, config: &Config, stacked: bool) -> Result<Self> {
        check_heads(config)?;
        let (hidden, inner, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let attention = vb.pp("attention");
        let projection = |name: &str| Dense::load(&attention.pp("self").pp(name), hidden, hidden);
        let parts = [
            projection("query")?,
            projection("key")?,
            projection("value")?,
        ];
        Ok(Self {
            qkv: if stacked {
                Projections::Stacked(Dense::stacked(&parts)?)
            } else {
                Projections::Separate(parts)
            },
            attention_out: Dense::load(&attention.pp("output").pp("dense"), hidden, hidden)?,
            attention_norm: Norm::load(&attention.pp("output").pp("LayerNorm"), hidden, eps)?,
            intermediate: Dense::load(&vb.pp("intermediate").pp("dense"), hidden, inner)?,
            output: Dense::load(&vb.pp("output").pp("dense"), inner, hidden)?,
            output_norm: Norm::load(&vb.pp("output").pp("LayerNorm"), hidden, eps)?,
            heads: config.num_attention_heads,
            activation: config.hidden_act,
        })
    }

    /// The same layer for serving with every dense weight in Q8_0 (8-bit
    /// weights, a scale per block of 32); inputs must be multiples of 32 wide.
    /// Layer norms and biases stay f32. No gradients flow through it.
    pub fn to_int8(&self) -> Result<Self> {
        Ok(Self {
            qkv: self.qkv.to_int8()?,
            attention_out: self.attention_out.to_int8()?,
            intermediate: self.intermediate.to_int8()?,
            output: self.output.to_int8()?,
            ..self.clone()
        })
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        let norm = |n: &Norm| n.weight.elem_count() + n.bias.elem_count();
        self.qkv.param_count()
            + self.attention_out.param_count()
            + self.intermediate.param_count()
            + self.output.param_count()
            + norm(&self.attention_norm)
            + norm(&self.output_norm)
    }

    /// The layer over `x` (`batch * len` rows of `hidden`) with `mask` from
    /// [`attention_mask`]; `dropout` (training only) applies where BERT's hidden
    /// dropout is, after each sublayer's output projection.
    pub fn forward(
        &self,
        x: &Tensor,
        (batch, len): (usize, usize),
        mask: &Tensor,
        mut dropout: Option<&mut Dropout>,
    ) -> Result<Tensor> {
        let hidden = x.dim(1)?;
        let rows = batch * len;
        let head_dim = hidden / self.heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let qkv = self.qkv.forward(x)?;
        let split = |part: usize| {
            qkv.narrow(1, part * hidden, hidden)?
                .reshape((batch, len, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax(&scores, candle_core::D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((rows, hidden))?;
        let mut attention = self.attention_out.forward(&context)?;
        if let Some(d) = dropout.as_deref_mut() {
            attention = d.apply(&attention)?;
        }
        let attended = self.attention_norm.forward(&(attention + x)?)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.activation {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        let mut out = self.output.forward(&inner)?;
        if let Some(d) = dropout {
            out = d.apply(&out)?;
        }
        self.output_norm.forward(&(out + &attended)?)
    }
}

/// `BertModel`'s extended attention mask from `mask` (`batch x len`, 1 for real
/// positions, 0 for padding): 0 for real keys, `f32::MIN` for padding, shaped
/// `batch x 1 x 1 x len` to add to the attention scores.
pub fn attention_mask(mask: &Tensor) -> Result<Tensor> {
    let (batch, len) = mask.dims2()?;
    let mask = mask.to_dtype(candle_core::DType::F32)?;
    ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?.reshape((batch, 1, 1, len))
}

fn check_heads(config: &Config) -> Result<()> {
    let hidden = config.hidden_size;
    if config.num_attention_heads == 0 || !hidden.is_multiple_of(config.num_attention_heads) {
        candle_core::bail!(
            "hidden size {hidden} is not a multiple of {} attention heads",
            config.num_attention_heads
        );
    }
    Ok(())
}

/// A BERT encoder (embeddings and layers) for inference.
#[derive(Debug, Clone)]
pub struct Bert {
    words: Tensor,
    positions: Tensor,
    types: Tensor,
    embedding_norm: Norm,
    layers: Vec<BertLayer>,
}

impl Bert {
    /// Loads the encoder from `vb`, which points where the weights file has
    /// `embeddings.*` and `encoder.layer.*` (after any `bert.` prefix).
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        check_heads(config)?;
        let hidden = config.hidden_size;
        let embeddings = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(&vb.pp(format!("encoder.layer.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words: embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?,
            positions: embeddings.get(
                (config.max_position_embeddings, hidden),
                "position_embeddings.weight",
            )?,
            types: embeddings.get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?,
            embedding_norm: Norm::load(&embeddings.pp("LayerNorm"), hidden, config.layer_norm_eps)?,
            layers,
        })
    }

    /// The same encoder for serving with the layers' dense weights in 8 bits
    /// ([`BertLayer::to_int8`]); the embedding tables stay f32.
    pub fn to_int8(&self) -> Result<Self> {
        Ok(Self {
            layers: self
                .layers
                .iter()
                .map(BertLayer::to_int8)
                .collect::<Result<_>>()?,
            ..self.clone()
        })
    }

    /// Last hidden states (`batch x len x hidden`) of `ids` and `token_types`
    /// (`batch x len`) with `mask` (`batch x len`, 1 for real positions, 0 for
    /// padding), as `BertModel::forward` computes them.
    pub fn forward(&self, ids: &Tensor, token_types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let hidden = self.words.dim(1)?;
        let rows = batch * len;
        let lookup = |table: &Tensor, ids: &Tensor| table.index_select(&ids.flatten_all()?, 0);
        let embedded = (lookup(&self.words, ids)? + lookup(&self.types, token_types)?)?
            .reshape((batch, len, hidden))?
            .broadcast_add(&self.positions.narrow(0, 0, len)?)?
            .reshape((rows, hidden))?;
        let mut x = self.embedding_norm.forward(&embedded)?;
        let mask = attention_mask(mask)?;
        for layer in &self.layers {
            x = layer.forward(&x, (batch, len), &mask, None)?;
        }
        x.reshape((batch, len, hidden))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use candle_transformers::models::bert::BertModel;

    use super::*;

    fn config() -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 32, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "max_position_embeddings": 24,
            "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
            "pad_token_id": 0, "classifier_dropout": null, "model_type": "bert"
        }))
        .unwrap()
    }

    #[test]
    fn computes_candle_transformers_bert() {
        let config = config();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let reference = BertModel::load(vb.clone(), &config).unwrap();
        // Layer norms start at the identity; give them values of their own.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.contains("LayerNorm") {
                let noise = Tensor::randn(0f32, 0.5, var.shape(), &Device::Cpu).unwrap();
                var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
            }
        }
        let ours = Bert::load(vb, &config).unwrap();
        let ids = Tensor::new(
            &[[2u32, 17, 33, 4, 0, 0], [5, 9, 41, 12, 48, 3]],
            &Device::Cpu,
        )
        .unwrap();
        let types = ids.zeros_like().unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
        let want = reference.forward(&ids, &types, Some(&mask)).unwrap();
        let got = ours.forward(&ids, &types, &mask).unwrap();
        assert_eq!(got.dims(), want.dims());
        let worst = crate::max_abs_diff(&got, &want).unwrap();
        assert!(worst < 1e-4, "differs from BertModel by {worst}");
    }

    #[test]
    fn int8_encoder_stays_close_to_f32_and_refuses_odd_widths() {
        let mut config = config();
        config.hidden_size = 64;
        config.intermediate_size = 128;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        Bert::load(vb.clone(), &config).unwrap();
        // The variables start at zero; give every one values of its own.
        for var in varmap.all_vars() {
            let noise = Tensor::randn(0f32, 0.2, var.shape(), &Device::Cpu).unwrap();
            var.set(&noise).unwrap();
        }
        let float = Bert::load(vb, &config).unwrap();
        let int8 = float.to_int8().unwrap();
        let ids = Tensor::new(&[[2u32, 17, 33, 4, 9, 0]], &Device::Cpu).unwrap();
        let types = ids.zeros_like().unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0]], &Device::Cpu).unwrap();
        let want = float.forward(&ids, &types, &mask).unwrap();
        let got = int8.forward(&ids, &types, &mask).unwrap();
        let worst = crate::max_abs_diff(&got, &want).unwrap();
        assert!(worst > 0.0, "the int8 encoder computed in f32");
        assert!(worst < 0.05, "int8 differs from f32 by {worst}");
        assert_eq!(int8.layers[0].param_count(), float.layers[0].param_count());

        let odd = Bert::load(
            VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
            &self::config(),
        )
        .unwrap();
        assert!(odd.to_int8().is_err(), "16 wide is not a whole Q8_0 block");
    }
}
