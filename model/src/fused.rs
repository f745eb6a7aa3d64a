//! Fused layer norm, GELU and bias addition with hand-written backward passes.
//!
//! candle's autograd differentiates these op by op: a dozen intermediate
//! tensors per call and, for parameters broadcast over rows (biases, norm
//! scales), sums over leading dimensions that candle's CPU backend walks
//! element by element. That was a third of a compact training step. These
//! versions compute the same functions in one pass forward and one backward;
//! the tests check values and gradients against the op-by-op formulation.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// `sqrt(2 / pi)`, the constant of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 tensors only");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: contiguous tensors only"),
    }
}

#[cfg(feature = "train")]
fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

fn gelu_value(v: f32) -> f32 {
    0.5 * v * (1.0 + (SQRT_2_OVER_PI * v * (1.0 + GELU_CUBIC * v * v)).tanh())
}

#[cfg(feature = "train")]
fn gelu_derivative(v: f32) -> f32 {
    let t = (SQRT_2_OVER_PI * v * (1.0 + GELU_CUBIC * v * v)).tanh();
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let y = x.iter().map(|&v| gelu_value(v)).collect();
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    #[cfg(feature = "train")]
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx: Vec<f32> = values(arg)?
            .iter()
            .zip(values(grad)?)
            .map(|(&v, g)| g * gelu_derivative(v))
            .collect();
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// GELU (tanh approximation, as candle's `Tensor::gelu`).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "fused-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let bias = contiguous_f32(s2, l2, self.name())?;
        if bias.is_empty() || x.len() % bias.len() != 0 {
            candle_core::bail!(
                "{}: bias of {} for {:?}",
                self.name(),
                bias.len(),
                l1.dims()
            );
        }
        let mut y = x.to_vec();
        for row in y.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    #[cfg(feature = "train")]
    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let mut sums = vec![0f32; bias.elem_count()];
        for row in values(grad)?.chunks_exact(sums.len()) {
            sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
        }
        let dbias = Tensor::from_vec(sums, bias.shape(), bias.device())?;
        Ok((Some(grad.clone()), Some(dbias)))
    }
}

/// `x + bias` with `bias` (one value per column of the last dimension) broadcast over rows.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

struct LayerNorm {
    eps: f32,
}

impl LayerNorm {
    /// Mean and inverse standard deviation of one row.
    fn stats(&self, row: &[f32]) -> (f32, f32) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let weight = contiguous_f32(s2, l2, self.name())?;
        let bias = contiguous_f32(s3, l3, self.name())?;
        let d = weight.len();
        if d == 0 || bias.len() != d || x.len() % d != 0 {
            candle_core::bail!("{}: parameters of {d} for {:?}", self.name(), l1.dims());
        }
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks_exact(d) {
            let (mean, inv) = self.stats(row);
            y.extend(
                row.iter()
                    .zip(weight.iter().zip(bias))
                    .map(|(v, (w, b))| (v - mean) * inv * w + b),
            );
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    #[cfg(feature = "train")]
    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let xs = values(x)?;
        let gs = values(grad)?;
        let w = values(weight)?;
        let d = w.len();
        let mut dx = Vec::with_capacity(xs.len());
        let mut dw = vec![0f32; d];
        let mut db = vec![0f32; d];
        let mut normed = vec![0f32; d];
        let mut dnormed = vec![0f32; d];
        for (row, g) in xs.chunks_exact(d).zip(gs.chunks_exact(d)) {
            let (mean, inv) = self.stats(row);
            for i in 0..d {
                normed[i] = (row[i] - mean) * inv;
                dnormed[i] = g[i] * w[i];
                dw[i] += g[i] * normed[i];
                db[i] += g[i];
            }
            let n = d as f32;
            let mean_dn = dnormed.iter().sum::<f32>() / n;
            let mean_dn_n = dnormed.iter().zip(&normed).map(|(a, b)| a * b).sum::<f32>() / n;
            dx.extend((0..d).map(|i| inv * (dnormed[i] - mean_dn - normed[i] * mean_dn_n)));
        }
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, weight.shape(), weight.device())?),
            Some(Tensor::from_vec(db, bias.shape(), bias.device())?),
        ))
    }
}

/// Layer norm over the last dimension, `weight` and `bias` of its size.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let op = LayerNorm { eps: eps as f32 };
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn var(values: &[f32], shape: &[usize]) -> Var {
        Var::from_tensor(&Tensor::from_slice(values, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed)
                    .wrapping_mul(2_654_435_761)
                    .rotate_left(13);
                (h % 2000) as f32 / 500.0 - 2.0
            })
            .collect()
    }

    fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
        let (a, b) = (values(a).unwrap(), values(b).unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Values of `fused` and `reference` agree, and so do the gradients of the
    /// same weighted sum of each with respect to every variable in `vars`.
    fn assert_same_values_and_gradients(fused: &Tensor, reference: &Tensor, vars: &[(&str, &Var)]) {
        assert_close(fused, reference, "values");
        let g_fused = loss(fused).backward().unwrap();
        let g_ref = loss(reference).backward().unwrap();
        for (name, v) in vars {
            assert_close(
                g_fused.get(v.as_tensor()).unwrap(),
                g_ref.get(v.as_tensor()).unwrap(),
                name,
            );
        }
    }

    /// A weighted sum of the output, so every gradient entry differs.
    fn loss(y: &Tensor) -> Tensor {
        let n = y.elem_count();
        let weights = Tensor::from_vec(pseudo_random(n, 99), y.shape(), y.device()).unwrap();
        (y * weights).unwrap().sum_all().unwrap()
    }

    #[test]
    fn layer_norm_matches_the_op_by_op_version_in_values_and_gradients() {
        let (rows, d) = (6, 8);
        let x = var(&pseudo_random(rows * d, 1), &[2, 3, d]);
        let w = var(&pseudo_random(d, 2), &[d]);
        let b = var(&pseudo_random(d, 3), &[d]);
        let fused = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let xt = x.as_tensor();
        let mean = xt.mean_keepdim(D::Minus1).unwrap();
        let centered = xt.broadcast_sub(&mean).unwrap();
        let var_ = centered.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let reference = centered
            .broadcast_div(&(var_ + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(w.as_tensor())
            .unwrap()
            .broadcast_add(b.as_tensor())
            .unwrap();
        assert_same_values_and_gradients(
            &fused,
            &reference,
            &[("x", &x), ("weight", &w), ("bias", &b)],
        );
    }

    #[test]
    fn gelu_matches_candle_in_values_and_gradients() {
        let x = var(&pseudo_random(40, 4), &[5, 8]);
        let fused = gelu(x.as_tensor()).unwrap();
        let reference = x.as_tensor().gelu().unwrap();
        assert_same_values_and_gradients(&fused, &reference, &[("x", &x)]);
    }

    #[test]
    fn add_bias_matches_broadcast_add_in_values_and_gradients() {
        let x = var(&pseudo_random(24, 5), &[2, 3, 4]);
        let b = var(&pseudo_random(4, 6), &[4]);
        let fused = add_bias(x.as_tensor(), b.as_tensor()).unwrap();
        let reference = x.as_tensor().broadcast_add(b.as_tensor()).unwrap();
        assert_same_values_and_gradients(&fused, &reference, &[("x", &x), ("bias", &b)]);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let x = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(add_bias(&x, &b).is_err());
        assert!(layer_norm(&x, &b, &b, 1e-5).is_err());
    }
}
