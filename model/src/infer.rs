//! Single-query inference for the ToolForge network on plain `f32` buffers.
//!
//! The candle [`Network`] is the model (training, saving, loading); this is the
//! same forward pass for a batch of one, with the weights copied out once at load
//! time. It exists for latency: candle 0.11 asks the OS for the CPU count on every
//! CPU matmul (parsing `/proc/cpuinfo` unless `RAYON_NUM_THREADS` is set) and its
//! small fused ops go through a thread pool, which together cost about ten times
//! the arithmetic of a query. Matrix products here use `gemm` single-threaded;
//! a test checks that both paths give the same outputs.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::features::Features;
use super::network::{ArchConfig, Network, LN_EPS};

/// A row-major matrix view: element `(i, j)` is `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    rs: usize,
    cs: usize,
}

impl View<'_> {
    /// Whether a `rows × cols` matrix fits in the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs;
        last < self.data.len()
    }
}

fn view(data: &[f32], offset: usize, rs: usize, cs: usize) -> View<'_> {
    View {
        data,
        offset,
        rs,
        cs,
    }
}

/// `dst[m × n] (row stride dst_rs, from dst_offset) = a[m × k] · b[k × n]`.
/// Does nothing when a view would run past its slice (never the case for a
/// consistent model; checked so that no out-of-bounds access is possible).
/// The one `unsafe` call outside the plugin loader: `gemm` only has an unsafe
/// interface, and this small-matrix kernel is most of a query's time.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn matmul(
    dst: &mut [f32],
    dst_offset: usize,
    dst_rs: usize,
    a: View<'_>,
    b: View<'_>,
    m: usize,
    k: usize,
    n: usize,
) {
    if m == 0 || n == 0 || dst_offset + (m - 1) * dst_rs + (n - 1) >= dst.len() {
        return;
    }
    if k == 0 {
        for i in 0..m {
            dst[dst_offset + i * dst_rs..dst_offset + i * dst_rs + n].fill(0.0);
        }
        return;
    }
    if !a.fits(m, k) || !b.fits(k, n) {
        return;
    }
    // SAFETY: every element gemm reads or writes lies inside its slice (checked
    // by `fits` above for the exact shapes and strides passed), `dst` is borrowed
    // mutably and does not alias `a` or `b`, and no other thread touches them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dst_offset),
            1,
            dst_rs as isize,
            false,
            a.data.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

struct Linear {
    /// `[in, out]` row-major (the transpose of the stored weight).
    w_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    fn new(weight: &Tensor, bias: &Tensor) -> Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        Ok(Self {
            w_t: weight.t()?.contiguous()?.flatten_all()?.to_vec1()?,
            bias: bias.to_vec1()?,
            inputs,
            outputs,
        })
    }

    /// The weight `[outputs, inputs]` as stored, and the bias.
    fn parts(&self) -> [Vec<f32>; 2] {
        let mut weight = vec![0.0; self.w_t.len()];
        for (i, row) in self.w_t.chunks_exact(self.outputs.max(1)).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                weight[o * self.inputs + i] = v;
            }
        }
        [weight, self.bias.clone()]
    }

    /// `out[rows × outputs] = x[rows × inputs] · Wᵀ + b`.
    fn apply(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.resize(rows * self.outputs, 0.0);
        matmul(
            out,
            0,
            self.outputs,
            view(x, 0, self.inputs, 1),
            view(&self.w_t, 0, self.outputs, 1),
            rows,
            self.inputs,
            self.outputs,
        );
        for row in out.chunks_exact_mut(self.outputs) {
            for (o, b) in row.iter_mut().zip(&self.bias) {
                *o += b;
            }
        }
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Norm {
    fn new(weight: &Tensor, bias: &Tensor) -> Result<Self> {
        Ok(Self {
            weight: weight.to_vec1()?,
            bias: bias.to_vec1()?,
        })
    }

    fn parts(&self) -> [Vec<f32>; 2] {
        [self.weight.clone(), self.bias.clone()]
    }

    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        let d = self.weight.len();
        out.clear();
        out.resize(x.len(), 0.0);
        for (row, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + LN_EPS as f32).sqrt();
            for (((o, v), w), b) in dst.iter_mut().zip(row).zip(&self.weight).zip(&self.bias) {
                *o = (v - mean) * inv * w + b;
            }
        }
    }
}

struct Layer {
    ln1: Norm,
    qkv: Linear,
    out: Linear,
    ln2: Norm,
    ff_in: Linear,
    ff_out: Linear,
}

/// The network's weights as plain buffers, for one query at a time.
pub struct InferenceNet {
    dim: usize,
    heads: usize,
    max_tokens: usize,
    max_ngrams: usize,
    word_emb: Vec<f32>,
    ngram_emb: Vec<f32>,
    shape_emb: Vec<f32>,
    pos_emb: Vec<f32>,
    layers: Vec<Layer>,
    final_ln: Norm,
    tool_head: Linear,
    tag_head: Linear,
}

impl std::fmt::Debug for InferenceNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceNet")
            .field("dim", &self.dim)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

/// Reusable buffers of one forward pass.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    scores: Vec<f32>,
    a: Vec<f32>,
    f: Vec<f32>,
}

/// What the network says about one query.
#[derive(Debug, Clone, PartialEq)]
pub struct NetOutput {
    /// One logit per head output (tools, then the unsupported output).
    pub tools: Vec<f32>,
    /// `len × tags` BIO tag logits.
    pub tags: Vec<f32>,
    /// The sentence vector the tool head reads: the final states' mean and
    /// max over tokens (`2 × dim`), for similarity between queries.
    pub sentence: Vec<f32>,
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1()
}

fn gelu(v: f32) -> f32 {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    0.5 * v * (1.0 + (SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v)).tanh())
}

fn add_row(dst: &mut [f32], table: &[f32], row: usize, scale: f32) {
    let d = dst.len();
    if let Some(src) = table.get(row * d..(row + 1) * d) {
        for (o, v) in dst.iter_mut().zip(src) {
            *o += scale * v;
        }
    }
}

impl InferenceNet {
    /// Copies the weights of `net`.
    pub fn from_network(net: &Network) -> Result<Self> {
        let net = &net.folded()?;
        let arch = net.arch();
        let p = net.params();
        let layers = p
            .layers
            .iter()
            .map(|l| {
                Ok(Layer {
                    ln1: Norm::new(l.ln1.0, l.ln1.1)?,
                    qkv: Linear::new(l.qkv.0, l.qkv.1)?,
                    out: Linear::new(l.out.0, l.out.1)?,
                    ln2: Norm::new(l.ln2.0, l.ln2.1)?,
                    ff_in: Linear::new(l.ff_in.0, l.ff_in.1)?,
                    ff_out: Linear::new(l.ff_out.0, l.ff_out.1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            dim: arch.dim,
            heads: arch.heads,
            max_tokens: arch.max_tokens,
            max_ngrams: arch.max_ngrams,
            word_emb: flat(p.word_emb)?,
            ngram_emb: flat(p.ngram_emb)?,
            shape_emb: flat(p.shape_emb)?,
            pos_emb: flat(p.pos_emb)?,
            layers,
            final_ln: Norm::new(p.final_ln.0, p.final_ln.1)?,
            tool_head: Linear::new(p.tool_head.0, p.tool_head.1)?,
            tag_head: Linear::new(p.tag_head.0, p.tag_head.1)?,
        })
    }

    /// The candle network with these weights again (for warm starts), so a
    /// loaded model keeps one copy of its weights, this one.
    pub fn to_network(&self, arch: &ArchConfig) -> Result<Network> {
        let mut values: Vec<Vec<f32>> = vec![
            self.word_emb.clone(),
            self.ngram_emb.clone(),
            self.shape_emb.clone(),
            self.pos_emb.clone(),
        ];
        for layer in &self.layers {
            values.extend(layer.ln1.parts());
            values.extend(layer.qkv.parts());
            values.extend(layer.out.parts());
            values.extend(layer.ln2.parts());
            values.extend(layer.ff_in.parts());
            values.extend(layer.ff_out.parts());
        }
        values.extend(self.final_ln.parts());
        values.extend(self.tool_head.parts());
        values.extend(self.tag_head.parts());
        if (self.dim, self.heads, self.max_tokens, self.max_ngrams)
            != (arch.dim, arch.heads, arch.max_tokens, arch.max_ngrams)
        {
            candle_core::bail!("the architecture differs from the inference copy's");
        }
        let specs = Network::param_specs(arch);
        if specs.len() != values.len() {
            candle_core::bail!(
                "the architecture has {} parameters, the inference copy {}",
                specs.len(),
                values.len()
            );
        }
        let tensors = specs
            .into_iter()
            .zip(values)
            .map(|(spec, v)| Ok((spec.name, Tensor::from_vec(v, spec.shape, &Device::Cpu)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Network::new(
            &VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
            arch,
        )
    }

    /// Tool logits, `len × tags` tag logits and the sentence vector of one
    /// featurized query.
    pub fn run(&self, f: &Features) -> NetOutput {
        let d = self.dim;
        let t = f.len.min(self.max_tokens);
        if t == 0 {
            return NetOutput {
                tools: vec![0.0; self.tool_head.outputs],
                tags: Vec::new(),
                sentence: vec![0.0; 2 * d],
            };
        }
        let mut s = Scratch::default();
        let g = self.max_ngrams;
        s.x.resize(t * d, 0.0);
        for (i, row) in s.x.chunks_exact_mut(d).enumerate() {
            let word = f.word_ids.get(i).copied().unwrap_or(0);
            add_row(row, &self.word_emb, word as usize, 1.0);
            for k in 0..g {
                let w = f.ngram_weights.get(i * g + k).copied().unwrap_or(0.0);
                if let (true, Some(&id)) = (w != 0.0, f.ngram_ids.get(i * g + k)) {
                    add_row(row, &self.ngram_emb, id as usize, w);
                }
            }
            let shape = f.shape_ids.get(i).copied().unwrap_or(0);
            add_row(row, &self.shape_emb, shape as usize, 1.0);
            add_row(row, &self.pos_emb, i, 1.0);
        }
        for layer in &self.layers {
            layer.ln1.apply(&s.x, &mut s.h);
            layer.qkv.apply(&s.h, t, &mut s.qkv);
            self.attention(t, &mut s);
            layer.out.apply(&s.ctx, t, &mut s.a);
            for (x, a) in s.x.iter_mut().zip(&s.a) {
                *x += a;
            }
            layer.ln2.apply(&s.x, &mut s.h);
            layer.ff_in.apply(&s.h, t, &mut s.f);
            for v in s.f.iter_mut() {
                *v = gelu(*v);
            }
            layer.ff_out.apply(&s.f, t, &mut s.a);
            for (x, a) in s.x.iter_mut().zip(&s.a) {
                *x += a;
            }
        }
        self.final_ln.apply(&s.x, &mut s.h);
        let mut pooled = vec![0f32; 2 * d];
        pooled[d..].fill(f32::NEG_INFINITY);
        for row in s.h.chunks_exact(d) {
            for (j, v) in row.iter().enumerate() {
                pooled[j] += v / t as f32;
                pooled[d + j] = pooled[d + j].max(*v);
            }
        }
        let mut tools = Vec::new();
        self.tool_head.apply(&pooled, 1, &mut tools);
        let mut tags = Vec::new();
        self.tag_head.apply(&s.h, t, &mut tags);
        NetOutput {
            tools,
            tags,
            sentence: pooled,
        }
    }

    /// Multi-head self-attention of `s.qkv` (`[t, 3d]`: q, k, v) into `s.ctx`.
    fn attention(&self, t: usize, s: &mut Scratch) {
        let d = self.dim;
        let dh = d / self.heads.max(1);
        let scale = 1.0 / (dh as f32).sqrt();
        s.ctx.clear();
        s.ctx.resize(t * d, 0.0);
        s.scores.clear();
        s.scores.resize(t * t, 0.0);
        for head in 0..self.heads {
            let q = view(&s.qkv, head * dh, 3 * d, 1);
            // kᵀ: element (i, j) is k[j][i].
            let k_t = view(&s.qkv, d + head * dh, 1, 3 * d);
            matmul(&mut s.scores, 0, t, q, k_t, t, dh, t);
            for row in s.scores.chunks_exact_mut(t) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v * scale));
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v * scale - max).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
            let v = view(&s.qkv, 2 * d + head * dh, 3 * d, 1);
            matmul(
                &mut s.ctx,
                head * dh,
                d,
                view(&s.scores, 0, t, 1),
                v,
                t,
                t,
                dh,
            );
        }
    }
}
