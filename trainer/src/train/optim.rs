//! AdamW with row-sparse updates for embedding tables.
//!
//! The update rule is candle's `AdamW` (decoupled weight decay, bias-corrected
//! moments), but it runs on plain buffers, and rows of an embedding table whose
//! gradient is zero in a step are skipped ("lazy" Adam). A batch touches a few
//! hundred of the ~17k word and n-gram rows, and candle's `AdamW` spends a dozen
//! full-size tensor operations per table per step on the rest, which made the
//! optimizer the largest cost of a training step.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::ParamsAdamW;

struct Param {
    var: Var,
    /// Row length (last dimension; 1 for vectors' single row).
    cols: usize,
    sparse: bool,
    theta: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// The optimizer.
pub(crate) struct SparseAdamW {
    params: Vec<Param>,
    config: ParamsAdamW,
    step: i32,
}

impl SparseAdamW {
    /// Optimises `vars` (name, variable); variables for which `sparse(name)` holds
    /// are updated row by row, skipping rows without gradient.
    pub fn new(
        vars: Vec<(String, Var)>,
        sparse: impl Fn(&str) -> bool,
        config: ParamsAdamW,
    ) -> Result<Self> {
        let mut params = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            let theta: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            let cols = var.as_tensor().dims().last().copied().unwrap_or(1).max(1);
            params.push(Param {
                cols,
                sparse: sparse(&name),
                m: vec![0.0; theta.len()],
                v: vec![0.0; theta.len()],
                theta,
                var,
            });
        }
        Ok(Self {
            params,
            config,
            step: 0,
        })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// One update from the sum of the gradient stores `grads` (one per shard of a
    /// data-parallel batch); variables without a gradient are left alone.
    pub fn step(&mut self, grads: &[GradStore]) -> Result<()> {
        self.step += 1;
        let c = &self.config;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let lr = c.lr as f32;
        let decay = 1.0 - (c.lr * c.weight_decay) as f32;
        let scale_m = 1.0 / (1.0 - c.beta1.powi(self.step)) as f32;
        let scale_v = 1.0 / (1.0 - c.beta2.powi(self.step)) as f32;
        let eps = c.eps as f32;
        for p in &mut self.params {
            let mut g: Option<Vec<f32>> = None;
            for grad in grads.iter().filter_map(|s| s.get(p.var.as_tensor())) {
                let shard: Vec<f32> = grad.flatten_all()?.to_vec1()?;
                if shard.len() != p.theta.len() {
                    candle_core::bail!(
                        "gradient size {} for a parameter of {}",
                        shard.len(),
                        p.theta.len()
                    );
                }
                match &mut g {
                    None => g = Some(shard),
                    Some(sum) => sum.iter_mut().zip(&shard).for_each(|(a, b)| *a += b),
                }
            }
            let Some(g) = g else {
                continue;
            };
            let cols = if p.sparse { p.cols } else { g.len().max(1) };
            for (row, grad_row) in g.chunks(cols).enumerate() {
                if p.sparse && grad_row.iter().all(|x| *x == 0.0) {
                    continue;
                }
                let base = row * cols;
                for (j, &gj) in grad_row.iter().enumerate() {
                    let i = base + j;
                    let m = b1 * p.m[i] + (1.0 - b1) * gj;
                    let v = b2 * p.v[i] + (1.0 - b2) * gj * gj;
                    p.m[i] = m;
                    p.v[i] = v;
                    let update = (m * scale_m) / ((v * scale_v).sqrt() + eps);
                    p.theta[i] = p.theta[i] * decay - lr * update;
                }
            }
            let shape = p.var.as_tensor().shape().clone();
            p.var
                .set(&Tensor::from_slice(&p.theta, shape, p.var.device())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{AdamW, Optimizer};

    fn values(x: &Var) -> Vec<f32> {
        x.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
    }

    fn loss(x: &Var, target: &Tensor) -> Tensor {
        (x.as_tensor() - target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    }

    #[test]
    fn matches_candle_adamw_and_skips_untouched_rows() {
        let device = Device::Cpu;
        let init = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25], [1.0, 1.0]], &device).unwrap();
        let target = Tensor::new(&[[1f32, 1.0], [0.0, 0.0], [1.0, 1.0]], &device).unwrap();
        let config = ParamsAdamW {
            lr: 0.1,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let reference = Var::from_tensor(&init).unwrap();
        let mine_dense = Var::from_tensor(&init).unwrap();
        let mine_sparse = Var::from_tensor(&init).unwrap();
        let mut adamw = AdamW::new(vec![reference.clone()], config.clone()).unwrap();
        let mut dense = SparseAdamW::new(
            vec![("dense".into(), mine_dense.clone())],
            |_| false,
            config.clone(),
        )
        .unwrap();
        let mut sparse =
            SparseAdamW::new(vec![("emb".into(), mine_sparse.clone())], |_| true, config).unwrap();
        for _ in 0..3 {
            adamw.backward_step(&loss(&reference, &target)).unwrap();
            dense
                .step(&[loss(&mine_dense, &target).backward().unwrap()])
                .unwrap();
            sparse
                .step(&[loss(&mine_sparse, &target).backward().unwrap()])
                .unwrap();
        }
        let a = values(&reference);
        let b = values(&mine_dense);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        // Row 2 is already at its target: zero gradient, so the sparse optimizer
        // leaves it (and its weight decay) alone, while the others move as in AdamW.
        let s = values(&mine_sparse);
        assert_eq!(&s[4..], &[1.0, 1.0]);
        for (x, y) in a[..4].iter().zip(&s[..4]) {
            assert!((x - y).abs() < 1e-5);
        }
        assert!(a[4] != 1.0, "dense AdamW decays untouched rows");
    }

    #[test]
    fn gradient_stores_of_shards_are_summed() {
        let device = Device::Cpu;
        let init = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25], [1.5, 1.0]], &device).unwrap();
        let target = Tensor::new(&[[1f32, 1.0], [0.0, 0.0], [1.0, 1.0]], &device).unwrap();
        let whole = Var::from_tensor(&init).unwrap();
        let sharded = Var::from_tensor(&init).unwrap();
        let mut one = SparseAdamW::new(
            vec![("w".into(), whole.clone())],
            |_| true,
            ParamsAdamW::default(),
        )
        .unwrap();
        let mut two = SparseAdamW::new(
            vec![("w".into(), sharded.clone())],
            |_| true,
            ParamsAdamW::default(),
        )
        .unwrap();
        let rows = |v: &Var, from: usize, len: usize| {
            let x = v.as_tensor().narrow(0, from, len).unwrap();
            let t = target.narrow(0, from, len).unwrap();
            (x - t).unwrap().sqr().unwrap().sum_all().unwrap()
        };
        for _ in 0..3 {
            one.step(&[loss(&whole, &target).backward().unwrap()])
                .unwrap();
            two.step(&[
                rows(&sharded, 0, 1).backward().unwrap(),
                rows(&sharded, 1, 2).backward().unwrap(),
            ])
            .unwrap();
        }
        let a = values(&whole);
        let b = values(&sharded);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
        assert_ne!(a, init.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
