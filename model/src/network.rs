//! The ToolForge network in candle: token embeddings (word + mean of character
//! n-grams + shape + position, and in training optionally fixed static word
//! vectors through a learned projection, folded into the word table when saved),
//! a small pre-norm transformer encoder with padding
//! masks, a multi-label tool head over mean ⊕ max pooling and a per-token BIO tag
//! head over argument slots. One struct serves training (parameters in a
//! `VarMap`, dropout, ops that record gradients) and inference (parameters from
//! safetensors, fused ops, batch of one).
//!
//! candle 0.11's fused `softmax_last_dim` and `layer_norm` record no backward
//! pass, so the training path uses `ops::softmax` and a layer norm written with
//! broadcast ops; inference uses the fused ones.

#[cfg(feature = "train")]
use candle_core::{DType, Device, Var, D};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
#[cfg(feature = "train")]
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

#[cfg(feature = "train")]
use super::features::Features;
#[cfg(feature = "train")]
use super::fused;

/// Shape and sizes of the network, saved in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Width of token vectors.
    pub dim: usize,
    /// Transformer encoder layers.
    pub layers: usize,
    /// Attention heads (must divide `dim`).
    pub heads: usize,
    /// Hidden width of the feed-forward blocks.
    pub ff_dim: usize,
    /// Positions (most tokens per query).
    pub max_tokens: usize,
    /// Rows of the word table (padding, vocabulary, OOV buckets).
    pub word_rows: usize,
    /// Rows of the n-gram table.
    pub ngram_buckets: usize,
    /// N-gram slots per token.
    pub max_ngrams: usize,
    /// Shape ids.
    pub shapes: usize,
    /// Tools (outputs of the tool head).
    pub tools: usize,
    /// BIO tags (outputs of the tag head): `O` plus `B-`/`I-` per slot.
    pub tags: usize,
    /// Dropout rate used in training.
    pub dropout: f32,
}

impl ArchConfig {
    /// Checks that the sizes fit together.
    pub fn check(&self) -> std::result::Result<(), String> {
        let positive = [
            ("dim", self.dim),
            ("layers", self.layers),
            ("heads", self.heads),
            ("ff_dim", self.ff_dim),
            ("max_tokens", self.max_tokens),
            ("word_rows", self.word_rows),
            ("ngram_buckets", self.ngram_buckets),
            ("max_ngrams", self.max_ngrams),
            ("shapes", self.shapes),
            ("tools", self.tools),
            ("tags", self.tags),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("architecture size `{name}` is 0"));
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(format!(
                "dim {} is not a multiple of heads {}",
                self.dim, self.heads
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }
}

/// How a parameter starts out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamInit {
    /// All zeros (biases, layer-norm shifts).
    Zeros,
    /// All ones (layer-norm scales).
    Ones,
    /// Normal with mean 0 and this standard deviation.
    Normal(f32),
    /// Uniform in `[-bound, bound]`.
    Uniform(f32),
}

/// A parameter's name, shape and initialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Name in the weights file (e.g. `emb.word`).
    pub name: String,
    /// Dimensions of the tensor.
    pub shape: Vec<usize>,
    /// How the parameter starts out.
    pub init: ParamInit,
}

/// Draws for initialisation, dropout, shuffling and augmentation over one
/// seeded, platform-stable stream (`rand_xoshiro`'s SplitMix64): the same seed
/// gives the same model.
#[derive(Debug, Clone)]
pub struct Rng(rand_xoshiro::SplitMix64);

impl Rng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        use rand_xoshiro::rand_core::SeedableRng;
        Self(rand_xoshiro::SplitMix64::seed_from_u64(
            seed ^ 0x5DEE_CE66_D1A4_F87B,
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        rand_xoshiro::rand_core::RngCore::next_u64(&mut self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.uniform() < p
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Dropout driven by a seeded [`Rng`]; present only in training.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    rng: Rng,
}

impl Dropout {
    /// Dropout with probability `p`, its draws seeded by `seed`.
    pub fn new(p: f32, seed: u64) -> Self {
        Self {
            p,
            rng: Rng::new(seed),
        }
    }

    /// `x` with each element zeroed with probability `p` and the rest scaled by
    /// `1 / (1 - p)`.
    pub fn apply(&mut self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if self.rng.chance(self.p) { 0.0 } else { keep })
            .collect();
        x * Tensor::from_vec(mask, x.shape(), x.device())?
    }
}

/// A padded batch of featurized queries.
#[cfg(feature = "train")]
#[derive(Debug, Clone)]
pub struct Batch {
    /// Queries in the batch.
    pub size: usize,
    /// Padded length (tokens).
    pub len: usize,
    /// `[size, len]` u32.
    pub word_ids: Tensor,
    /// `[size * len * max_ngrams]` u32.
    pub ngram_ids: Tensor,
    /// `[size * len, 1, max_ngrams]` f32.
    pub ngram_weights: Tensor,
    /// `[size, len]` u32.
    pub shape_ids: Tensor,
    /// `[size, len]` f32: 1 for tokens, 0 for padding.
    pub mask: Tensor,
}

#[cfg(feature = "train")]
impl Batch {
    /// Pads `features` (each with at least one token) to the longest one.
    pub fn new(features: &[&Features], max_ngrams: usize, device: &Device) -> Result<Self> {
        let size = features.len();
        let len = features.iter().map(|f| f.len).max().unwrap_or(0).max(1);
        let g = max_ngrams;
        let mut word_ids = vec![0u32; size * len];
        let mut shape_ids = vec![0u32; size * len];
        let mut mask = vec![0f32; size * len];
        let mut ngram_ids = vec![0u32; size * len * g];
        let mut ngram_weights = vec![0f32; size * len * g];
        for (b, f) in features.iter().enumerate() {
            let n = f.len.min(len);
            let row = b * len;
            word_ids[row..row + n].copy_from_slice(&f.word_ids[..n]);
            shape_ids[row..row + n].copy_from_slice(&f.shape_ids[..n]);
            mask[row..row + n].iter_mut().for_each(|m| *m = 1.0);
            ngram_ids[row * g..(row + n) * g].copy_from_slice(&f.ngram_ids[..n * g]);
            ngram_weights[row * g..(row + n) * g].copy_from_slice(&f.ngram_weights[..n * g]);
        }
        Ok(Self {
            size,
            len,
            word_ids: Tensor::from_vec(word_ids, (size, len), device)?,
            ngram_ids: Tensor::from_vec(ngram_ids, size * len * g, device)?,
            ngram_weights: Tensor::from_vec(ngram_weights, (size * len, 1, g), device)?,
            shape_ids: Tensor::from_vec(shape_ids, (size, len), device)?,
            mask: Tensor::from_vec(mask, (size, len), device)?,
        })
    }
}

/// What the network says about a batch.
#[cfg(feature = "train")]
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `[size, tools]`: one logit per tool (sigmoid for its probability).
    pub tool_logits: Tensor,
    /// `[size, len, tags]`: BIO tag logits per token.
    pub tag_logits: Tensor,
}

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

#[derive(Debug, Clone)]
struct Layer {
    ln1: Norm,
    qkv: Linear,
    out: Linear,
    ln2: Norm,
    ff_in: Linear,
    ff_out: Linear,
}

/// (weight, bias) pairs of one encoder layer.
pub(crate) struct LayerRefs<'a> {
    pub ln1: (&'a Tensor, &'a Tensor),
    pub qkv: (&'a Tensor, &'a Tensor),
    pub out: (&'a Tensor, &'a Tensor),
    pub ln2: (&'a Tensor, &'a Tensor),
    pub ff_in: (&'a Tensor, &'a Tensor),
    pub ff_out: (&'a Tensor, &'a Tensor),
}

/// Borrowed parameters of a [`Network`].
pub(crate) struct ParamRefs<'a> {
    pub word_emb: &'a Tensor,
    pub ngram_emb: &'a Tensor,
    pub shape_emb: &'a Tensor,
    pub pos_emb: &'a Tensor,
    pub layers: Vec<LayerRefs<'a>>,
    pub final_ln: (&'a Tensor, &'a Tensor),
    pub tool_head: (&'a Tensor, &'a Tensor),
    pub tag_head: (&'a Tensor, &'a Tensor),
}

/// Name of the projection of [`StaticWords`] among training parameters.
pub const STATIC_PROJ: &str = "emb.static_proj";

/// Fixed word vectors (static embeddings distilled from a pretrained encoder, one
/// row per word-table row, zeros where a row has none) read through a trained
/// projection and added to the word embedding. Only training carries them: a
/// saved model has `emb.word + table · proj` as its word table
/// ([`fold_static_weights`], [`Network::folded`]), so inference is unchanged.
#[derive(Debug, Clone)]
pub struct StaticWords {
    /// `[word_rows, static_dim]`, not trained.
    pub table: Tensor,
    /// `[static_dim, dim]`, trained.
    pub proj: Tensor,
}

/// Replaces `emb.word` in saved weights by `emb.word + table · proj` and drops
/// the projection, so the weights load as a plain network.
pub fn fold_static_weights(
    weights: &mut std::collections::HashMap<String, Tensor>,
    table: &Tensor,
) -> Result<()> {
    let Some(proj) = weights.remove(STATIC_PROJ) else {
        return Ok(());
    };
    let word = weights
        .get("emb.word")
        .ok_or_else(|| candle_core::Error::Msg("missing emb.word".into()))?;
    let folded = (word + table.matmul(&proj)?)?;
    weights.insert("emb.word".into(), folded);
    Ok(())
}

/// The network.
#[derive(Debug, Clone)]
pub struct Network {
    arch: ArchConfig,
    static_words: Option<StaticWords>,
    word_emb: Tensor,
    ngram_emb: Tensor,
    shape_emb: Tensor,
    pos_emb: Tensor,
    layers: Vec<Layer>,
    final_ln: Norm,
    tool_head: Linear,
    tag_head: Linear,
}

/// Epsilon of every layer norm.
pub(crate) const LN_EPS: f64 = 1e-5;
#[cfg(feature = "train")]
const NEG: f64 = -1e9;

impl Network {
    /// Every parameter of a network of this shape, in a fixed order.
    pub fn param_specs(arch: &ArchConfig) -> Vec<ParamSpec> {
        let d = arch.dim;
        let emb = ParamInit::Normal(0.1);
        let mut specs = Vec::new();
        let mut add = |name: String, shape: Vec<usize>, init: ParamInit| {
            specs.push(ParamSpec { name, shape, init })
        };
        let linear = |fan_in: usize| ParamInit::Uniform(1.0 / (fan_in as f32).sqrt());
        add("emb.word".into(), vec![arch.word_rows, d], emb);
        add("emb.ngram".into(), vec![arch.ngram_buckets, d], emb);
        add("emb.shape".into(), vec![arch.shapes, d], emb);
        add(
            "emb.pos".into(),
            vec![arch.max_tokens, d],
            ParamInit::Normal(0.02),
        );
        for i in 0..arch.layers {
            let p = format!("layers.{i}");
            add(format!("{p}.ln1.weight"), vec![d], ParamInit::Ones);
            add(format!("{p}.ln1.bias"), vec![d], ParamInit::Zeros);
            add(format!("{p}.attn.qkv.weight"), vec![3 * d, d], linear(d));
            add(format!("{p}.attn.qkv.bias"), vec![3 * d], ParamInit::Zeros);
            add(format!("{p}.attn.out.weight"), vec![d, d], linear(d));
            add(format!("{p}.attn.out.bias"), vec![d], ParamInit::Zeros);
            add(format!("{p}.ln2.weight"), vec![d], ParamInit::Ones);
            add(format!("{p}.ln2.bias"), vec![d], ParamInit::Zeros);
            add(format!("{p}.ff.in.weight"), vec![arch.ff_dim, d], linear(d));
            add(
                format!("{p}.ff.in.bias"),
                vec![arch.ff_dim],
                ParamInit::Zeros,
            );
            add(
                format!("{p}.ff.out.weight"),
                vec![d, arch.ff_dim],
                linear(arch.ff_dim),
            );
            add(format!("{p}.ff.out.bias"), vec![d], ParamInit::Zeros);
        }
        add("final_ln.weight".into(), vec![d], ParamInit::Ones);
        add("final_ln.bias".into(), vec![d], ParamInit::Zeros);
        add(
            "tool_head.weight".into(),
            vec![arch.tools, 2 * d],
            linear(2 * d),
        );
        add("tool_head.bias".into(), vec![arch.tools], ParamInit::Zeros);
        add("tag_head.weight".into(), vec![arch.tags, d], linear(d));
        add("tag_head.bias".into(), vec![arch.tags], ParamInit::Zeros);
        specs
    }

    /// Total number of parameters of a network of this shape.
    pub fn param_count(arch: &ArchConfig) -> usize {
        Self::param_specs(arch)
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum()
    }

    /// Fills `varmap` with freshly initialised parameters drawn from `seed`.
    #[cfg(feature = "train")]
    pub fn init_varmap(
        arch: &ArchConfig,
        varmap: &VarMap,
        seed: u64,
        device: &Device,
    ) -> Result<()> {
        let mut rng = Rng::new(seed);
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter map lock poisoned".into()))?;
        for spec in Self::param_specs(arch) {
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = match spec.init {
                ParamInit::Zeros => vec![0.0; n],
                ParamInit::Ones => vec![1.0; n],
                ParamInit::Normal(std) => (0..n).map(|_| rng.normal() * std).collect(),
                ParamInit::Uniform(bound) => (0..n)
                    .map(|_| (rng.uniform() * 2.0 - 1.0) * bound)
                    .collect(),
            };
            let tensor = Tensor::from_vec(values, spec.shape.as_slice(), device)?;
            data.insert(spec.name, Var::from_tensor(&tensor)?);
        }
        Ok(())
    }

    /// Builds the network from `vb` (a `VarMap` for training, safetensors for inference).
    pub fn new(vb: &VarBuilder, arch: &ArchConfig) -> Result<Self> {
        arch.check().map_err(candle_core::Error::Msg)?;
        let get = |spec: &ParamSpec| vb.get(spec.shape.as_slice(), &spec.name);
        let mut params = Self::param_specs(arch)
            .iter()
            .map(get)
            .collect::<Result<Vec<Tensor>>>()?
            .into_iter();
        let mut next = || {
            params
                .next()
                .ok_or_else(|| candle_core::Error::Msg("missing parameter".into()))
        };
        let word_emb = next()?;
        let ngram_emb = next()?;
        let shape_emb = next()?;
        let pos_emb = next()?;
        let mut layers = Vec::with_capacity(arch.layers);
        for _ in 0..arch.layers {
            layers.push(Layer {
                ln1: Norm {
                    weight: next()?,
                    bias: next()?,
                },
                qkv: Linear {
                    weight: next()?,
                    bias: next()?,
                },
                out: Linear {
                    weight: next()?,
                    bias: next()?,
                },
                ln2: Norm {
                    weight: next()?,
                    bias: next()?,
                },
                ff_in: Linear {
                    weight: next()?,
                    bias: next()?,
                },
                ff_out: Linear {
                    weight: next()?,
                    bias: next()?,
                },
            });
        }
        let final_ln = Norm {
            weight: next()?,
            bias: next()?,
        };
        let tool_head = Linear {
            weight: next()?,
            bias: next()?,
        };
        let tag_head = Linear {
            weight: next()?,
            bias: next()?,
        };
        Ok(Self {
            arch: arch.clone(),
            static_words: None,
            word_emb,
            ngram_emb,
            shape_emb,
            pos_emb,
            layers,
            final_ln,
            tool_head,
            tag_head,
        })
    }

    /// The same network without gradient tracking: it shares the parameters'
    /// storage, so it sees every later optimizer step.
    pub fn detached(&self) -> Self {
        let linear = |l: &Linear| Linear {
            weight: l.weight.detach(),
            bias: l.bias.detach(),
        };
        let norm = |n: &Norm| Norm {
            weight: n.weight.detach(),
            bias: n.bias.detach(),
        };
        Self {
            arch: self.arch.clone(),
            static_words: self.static_words.as_ref().map(|s| StaticWords {
                table: s.table.clone(),
                proj: s.proj.detach(),
            }),
            word_emb: self.word_emb.detach(),
            ngram_emb: self.ngram_emb.detach(),
            shape_emb: self.shape_emb.detach(),
            pos_emb: self.pos_emb.detach(),
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    ln1: norm(&l.ln1),
                    qkv: linear(&l.qkv),
                    out: linear(&l.out),
                    ln2: norm(&l.ln2),
                    ff_in: linear(&l.ff_in),
                    ff_out: linear(&l.ff_out),
                })
                .collect(),
            final_ln: norm(&self.final_ln),
            tool_head: linear(&self.tool_head),
            tag_head: linear(&self.tag_head),
        }
    }

    /// Adds fixed static word vectors read through `proj` (see [`StaticWords`]).
    pub fn with_static_words(mut self, static_words: StaticWords) -> Result<Self> {
        let (rows, s) = static_words.table.dims2()?;
        if rows != self.arch.word_rows || static_words.proj.dims2()? != (s, self.arch.dim) {
            candle_core::bail!(
                "static word vectors of shape {:?} with projection {:?} do not fit {} word rows of width {}",
                static_words.table.dims(),
                static_words.proj.dims(),
                self.arch.word_rows,
                self.arch.dim
            );
        }
        self.static_words = Some(static_words);
        Ok(self)
    }

    /// The same network with any static word vectors folded into the word table
    /// (the form that is saved and run by inference).
    pub fn folded(&self) -> Result<Self> {
        let Some(static_words) = &self.static_words else {
            return Ok(self.clone());
        };
        let word_emb =
            (self.word_emb.detach() + static_words.table.matmul(&static_words.proj.detach())?)?;
        Ok(Self {
            static_words: None,
            word_emb,
            ..self.clone()
        })
    }

    /// The parameters, for the single-query inference copy (static word vectors,
    /// if any, are not included: fold them first).
    pub(crate) fn params(&self) -> ParamRefs<'_> {
        ParamRefs {
            word_emb: &self.word_emb,
            ngram_emb: &self.ngram_emb,
            shape_emb: &self.shape_emb,
            pos_emb: &self.pos_emb,
            layers: self
                .layers
                .iter()
                .map(|l| LayerRefs {
                    ln1: (&l.ln1.weight, &l.ln1.bias),
                    qkv: (&l.qkv.weight, &l.qkv.bias),
                    out: (&l.out.weight, &l.out.bias),
                    ln2: (&l.ln2.weight, &l.ln2.bias),
                    ff_in: (&l.ff_in.weight, &l.ff_in.bias),
                    ff_out: (&l.ff_out.weight, &l.ff_out.bias),
                })
                .collect(),
            final_ln: (&self.final_ln.weight, &self.final_ln.bias),
            tool_head: (&self.tool_head.weight, &self.tool_head.bias),
            tag_head: (&self.tag_head.weight, &self.tag_head.bias),
        }
    }

    /// Every parameter by name, in [`Network::param_specs`] order (static word
    /// vectors, if any, are not included: fold them first). With
    /// `VarBuilder::from_tensors` they build the same network again.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let p = self.params();
        let mut tensors = vec![p.word_emb, p.ngram_emb, p.shape_emb, p.pos_emb];
        for layer in &p.layers {
            for (weight, bias) in [
                layer.ln1,
                layer.qkv,
                layer.out,
                layer.ln2,
                layer.ff_in,
                layer.ff_out,
            ] {
                tensors.extend([weight, bias]);
            }
        }
        for (weight, bias) in [p.final_ln, p.tool_head, p.tag_head] {
            tensors.extend([weight, bias]);
        }
        Self::param_specs(&self.arch)
            .into_iter()
            .zip(tensors)
            .map(|(spec, tensor)| (spec.name, tensor.clone()))
            .collect()
    }

    /// The network's architecture.
    pub fn arch(&self) -> &ArchConfig {
        &self.arch
    }

    /// Runs the network. `dropout` is `Some` in training: dropout is applied and
    /// only ops with a backward pass are used.
    #[cfg(feature = "train")]
    pub fn forward(&self, batch: &Batch, mut dropout: Option<&mut Dropout>) -> Result<Outputs> {
        let train = dropout.is_some();
        let (b, t, d) = (batch.size, batch.len, self.arch.dim);
        if t > self.arch.max_tokens {
            candle_core::bail!(
                "{t} tokens exceed the model's {} positions",
                self.arch.max_tokens
            );
        }
        let g = self.arch.max_ngrams;
        let ids = batch.word_ids.flatten_all()?;
        let mut words = self.word_emb.index_select(&ids, 0)?;
        if let Some(static_words) = &self.static_words {
            words = (words
                + static_words
                    .table
                    .index_select(&ids, 0)?
                    .matmul(&static_words.proj)?)?;
        }
        let words = words.reshape((b, t, d))?;
        // Weighted mean of each token's n-gram vectors, as a batched product.
        let ngram_vectors =
            self.ngram_emb
                .index_select(&batch.ngram_ids, 0)?
                .reshape((b * t, g, d))?;
        let ngrams = batch
            .ngram_weights
            .matmul(&ngram_vectors)?
            .reshape((b, t, d))?;
        let shapes = self
            .shape_emb
            .index_select(&batch.shape_ids.flatten_all()?, 0)?
            .reshape((b, t, d))?;
        let pos = self.pos_emb.narrow(0, 0, t)?;
        let x = ((words + ngrams)? + shapes)?;
        let mut x = fused::add_bias(&x, &pos)?;
        if let Some(drop) = dropout.as_deref_mut() {
            x = drop.apply(&x)?;
        }
        // A batch of one has no padding: no masks needed.
        let mask_bias = if b > 1 {
            Some(((&batch.mask - 1.0)? * -NEG)?)
        } else {
            None
        };
        let attn_bias = match &mask_bias {
            Some(m) => Some(m.reshape((b, 1, 1, t))?),
            None => None,
        };
        for layer in &self.layers {
            let h = norm(&x, &layer.ln1, train)?;
            let mut a = self.attention(&h, layer, attn_bias.as_ref(), train)?;
            if let Some(drop) = dropout.as_deref_mut() {
                a = drop.apply(&a)?;
            }
            x = (x + a)?;
            let h = norm(&x, &layer.ln2, train)?;
            let mut f = linear(&fused::gelu(&linear(&h, &layer.ff_in)?)?, &layer.ff_out)?;
            if let Some(drop) = dropout.as_deref_mut() {
                f = drop.apply(&f)?;
            }
            x = (x + f)?;
        }
        let h = norm(&x, &self.final_ln, train)?;
        let (mean, max) = match &mask_bias {
            Some(bias) => {
                let mask = batch.mask.reshape((b, t, 1))?;
                let count = batch.mask.sum_keepdim(1)?.maximum(1.0)?;
                let mean = h.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&count)?;
                let max = h.broadcast_add(&bias.reshape((b, t, 1))?)?.max(1)?;
                (mean, max)
            }
            None => (h.mean(1)?, h.max(1)?),
        };
        let pooled = Tensor::cat(&[&mean, &max], 1)?;
        let tool_logits = linear(&pooled, &self.tool_head)?;
        let tag_logits = linear(&h, &self.tag_head)?;
        Ok(Outputs {
            tool_logits,
            tag_logits,
        })
    }

    #[cfg(feature = "train")]
    fn attention(
        &self,
        x: &Tensor,
        layer: &Layer,
        bias: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let heads = self.arch.heads;
        let dh = d / heads;
        let qkv = linear(x, &layer.qkv)?
            .reshape((b, t, 3, heads, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let mut scores = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = if train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        linear(&context, &layer.out)
    }
}

/// `x · Wᵀ + b` over the last dimension of `x` (any rank).
#[cfg(feature = "train")]
fn linear(x: &Tensor, l: &Linear) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (last, lead) = match dims.split_last() {
        Some((last, lead)) => (*last, lead.to_vec()),
        None => candle_core::bail!("linear on a scalar"),
    };
    let rows: usize = lead.iter().product();
    let out = l.weight.dim(0)?;
    let y = fused::add_bias(&x.reshape((rows, last))?.matmul(&l.weight.t()?)?, &l.bias)?;
    let mut shape = lead;
    shape.push(out);
    y.reshape(shape)
}

/// Layer norm over the last dimension: candle's kernel for inference, the
/// differentiable fused op ([`fused::layer_norm`]) for training.
#[cfg(feature = "train")]
fn norm(x: &Tensor, n: &Norm, train: bool) -> Result<Tensor> {
    if !train {
        return candle_nn::ops::layer_norm(&x.contiguous()?, &n.weight, &n.bias, LN_EPS as f32);
    }
    fused::layer_norm(x, &n.weight, &n.bias, LN_EPS)
}

/// A `VarBuilder` over `varmap` for training.
#[cfg(feature = "train")]
pub fn training_builder(varmap: &VarMap, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_varmap(varmap, DType::F32, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{tokenize, FeatureSizes, Vocab, SHAPES};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    fn arch(word_rows: usize) -> ArchConfig {
        ArchConfig {
            dim: 16,
            layers: 2,
            heads: 4,
            ff_dim: 32,
            max_tokens: 64,
            word_rows,
            ngram_buckets: 256,
            max_ngrams: 8,
            shapes: SHAPES,
            tools: 3,
            tags: 5,
            dropout: 0.1,
        }
    }

    fn batch(vocab: &Vocab, queries: &[&str], device: &Device) -> Batch {
        let feats: Vec<Features> = queries
            .iter()
            .map(|q| {
                let texts: Vec<&str> = tokenize(q, 64).iter().map(|t| t.text(q)).collect();
                vocab.featurize(&texts)
            })
            .collect();
        let refs: Vec<&Features> = feats.iter().collect();
        Batch::new(&refs, vocab.sizes().max_ngrams as usize, device).unwrap()
    }

    fn sizes() -> FeatureSizes {
        FeatureSizes {
            oov_buckets: 8,
            ngram_buckets: 256,
            max_ngrams: 8,
            max_tokens: 64,
        }
    }

    #[test]
    fn the_inference_copy_gives_the_same_network_back() {
        let device = Device::Cpu;
        let arch = arch(12);
        let varmap = VarMap::new();
        Network::init_varmap(&arch, &varmap, 5, &device).unwrap();
        let net = Network::new(&training_builder(&varmap, &device), &arch).unwrap();
        let back = crate::infer::InferenceNet::from_network(&net)
            .unwrap()
            .to_network(&arch)
            .unwrap();
        for ((name, a), (other, b)) in net.named_tensors().iter().zip(back.named_tensors()) {
            assert_eq!(name, &other);
            assert_eq!(a.dims(), b.dims(), "{name}");
            assert_eq!(
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{name}"
            );
        }
        let wrong = ArchConfig { tools: 4, ..arch };
        assert!(crate::infer::InferenceNet::from_network(&net)
            .unwrap()
            .to_network(&wrong)
            .is_err());
    }

    #[test]
    fn named_tensors_rebuild_the_same_network() {
        let device = Device::Cpu;
        let arch = arch(12);
        let varmap = VarMap::new();
        Network::init_varmap(&arch, &varmap, 3, &device).unwrap();
        let net = Network::new(&training_builder(&varmap, &device), &arch).unwrap();
        let named = net.named_tensors();
        assert_eq!(named.len(), Network::param_specs(&arch).len());
        let data = varmap.data().lock().unwrap();
        for (name, tensor) in &named {
            let original = data[name].as_tensor();
            assert_eq!(tensor.dims(), original.dims(), "{name}");
            let diff = (tensor - original)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
    }

    #[test]
    fn every_parameter_changes_after_one_step() {
        let device = Device::Cpu;
        let vocab = Vocab::build(["weather", "weather", "in", "in"], 2, 10, sizes());
        let arch = arch(vocab.word_rows());
        let varmap = VarMap::new();
        Network::init_varmap(&arch, &varmap, 7, &device).unwrap();
        let net = Network::new(&training_builder(&varmap, &device), &arch).unwrap();
        let before: Vec<(String, Vec<f32>)> = {
            let data = varmap.data().lock().unwrap();
            let mut v: Vec<_> = data
                .iter()
                .map(|(k, var)| {
                    (
                        k.clone(),
                        var.as_tensor()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap(),
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(before.len(), Network::param_specs(&arch).len());
        let b = batch(&vocab, &["weather in Paris?", "hi"], &device);
        let mut dropout = Dropout::new(0.1, 3);
        let out = net.forward(&b, Some(&mut dropout)).unwrap();
        let targets = Tensor::new(&[[1f32, 0., 0.], [0., 0., 1.]], &device).unwrap();
        let tool_loss =
            candle_nn::loss::binary_cross_entropy_with_logit(&out.tool_logits, &targets).unwrap();
        let tags = out.tag_logits.flatten_to(1).unwrap();
        let gold = Tensor::from_vec(
            (0..tags.dim(0).unwrap() as u32)
                .map(|i| i % 5)
                .collect::<Vec<u32>>(),
            tags.dim(0).unwrap(),
            &device,
        )
        .unwrap();
        let tag_loss = candle_nn::loss::cross_entropy(&tags, &gold).unwrap();
        let loss = (tool_loss + tag_loss).unwrap();
        let mut opt = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )
        .unwrap();
        opt.backward_step(&loss).unwrap();
        let data = varmap.data().lock().unwrap();
        for (name, old) in before {
            let new = data[&name]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let delta = old
                .iter()
                .zip(&new)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(delta > 0.0, "parameter {name} did not change");
        }
    }

    #[test]
    fn training_and_inference_paths_agree_without_dropout() {
        let device = Device::Cpu;
        let vocab = Vocab::build(["a", "a"], 2, 10, sizes());
        let mut arch = arch(vocab.word_rows());
        arch.dropout = 0.0;
        let varmap = VarMap::new();
        Network::init_varmap(&arch, &varmap, 1, &device).unwrap();
        let net = Network::new(&training_builder(&varmap, &device), &arch).unwrap();
        let b = batch(&vocab, &["convert 5 km to miles", "a b"], &device);
        let mut no_drop = Dropout::new(0.0, 0);
        let train = net.forward(&b, Some(&mut no_drop)).unwrap();
        let infer = net.detached().forward(&b, None).unwrap();
        let diff = crate::max_abs_diff(&train.tool_logits, &infer.tool_logits).unwrap();
        assert!(diff < 1e-4, "paths differ by {diff}");
        // Padding does not change a query's result.
        let alone = batch(&vocab, &["a b"], &device);
        let single = net.forward(&alone, None).unwrap();
        let padded = net.forward(&b, None).unwrap();
        let a = single.tool_logits.to_vec2::<f32>().unwrap();
        let p = padded.tool_logits.to_vec2::<f32>().unwrap();
        for (x, y) in a[0].iter().zip(&p[1]) {
            assert!((x - y).abs() < 1e-4);
        }
    }

    #[test]
    fn static_words_fold_into_the_word_table() {
        let device = Device::Cpu;
        let vocab = Vocab::build(["a", "a", "b", "b"], 2, 10, sizes());
        let mut arch = arch(vocab.word_rows());
        arch.dropout = 0.0;
        let varmap = VarMap::new();
        Network::init_varmap(&arch, &varmap, 3, &device).unwrap();
        let plain = Network::new(&training_builder(&varmap, &device), &arch).unwrap();
        let mut rng = Rng::new(4);
        let table: Vec<f32> = (0..arch.word_rows * 5).map(|_| rng.normal()).collect();
        let table = Tensor::from_vec(table, (arch.word_rows, 5), &device).unwrap();
        let proj: Vec<f32> = (0..5 * arch.dim).map(|_| rng.normal()).collect();
        let proj = Tensor::from_vec(proj, (5, arch.dim), &device).unwrap();
        let with_static = plain
            .clone()
            .with_static_words(StaticWords {
                table: table.clone(),
                proj: proj.clone(),
            })
            .unwrap();
        let b = batch(&vocab, &["a b c", "b"], &device);
        let unfolded = with_static.forward(&b, None).unwrap();
        let folded = with_static.folded().unwrap().forward(&b, None).unwrap();
        let diff = crate::max_abs_diff(&unfolded.tool_logits, &folded.tool_logits).unwrap();
        assert!(diff < 1e-4, "folding changed the output by {diff}");
        // The static vectors matter, and saved weights fold the same way.
        let without = plain.forward(&b, None).unwrap();
        assert!(crate::max_abs_diff(&unfolded.tool_logits, &without.tool_logits).unwrap() > 1e-3);
        let mut weights = std::collections::HashMap::from([
            ("emb.word".to_string(), plain.word_emb.clone()),
            (STATIC_PROJ.to_string(), proj),
        ]);
        fold_static_weights(&mut weights, &table).unwrap();
        assert!(!weights.contains_key(STATIC_PROJ));
        let diff = crate::max_abs_diff(
            &weights["emb.word"],
            &with_static.folded().unwrap().word_emb,
        )
        .unwrap();
        assert!(diff < 1e-5);
        // A table of the wrong size is refused.
        let small = Tensor::zeros((2, 5), DType::F32, &device).unwrap();
        let proj = Tensor::zeros((5, arch.dim), DType::F32, &device).unwrap();
        assert!(plain
            .with_static_words(StaticWords { table: small, proj })
            .is_err());
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(9);
        let mut b = Rng::new(9);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let u = a.uniform();
        assert!((0.0..1.0).contains(&u));
        let mut items = vec![1, 2, 3, 4, 5];
        a.shuffle(&mut items);
        items.sort();
        assert_eq!(items, vec![1, 2, 3, 4, 5]);
    }
}
