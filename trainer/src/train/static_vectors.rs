//! Static word vectors distilled from a pretrained sentence encoder (Model2Vec's
//! recipe): every whole word of the encoder's WordPiece vocabulary goes through
//! the encoder on its own, its states are mean-pooled, and PCA reduces the
//! vectors to a few dimensions. The compact model reads them through a trained
//! projection ([`StaticWords`](toolforge_model::network::StaticWords)),
//! so it knows words its training data never shows.
//!
//! The files (`vectors.safetensors`, f16 `vectors` `[words, dim]`, and
//! `words.json`) are derived from the encoder's weights and keep its licence.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use toolforge_model::features::{normalize_word, tokenize, Vocab};
use toolforge_routers::toolforge_model::minilm::Encoder;

use super::TrainError;

/// Tensor file of a static-vector directory.
pub const VECTORS_FILE: &str = "vectors.safetensors";
/// Word list (and provenance) of a static-vector directory.
pub const WORDS_FILE: &str = "words.json";

/// `words.json`: the word of each row and where the vectors come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordsFile {
    /// The encoder the vectors were distilled from (e.g. `sentence-transformers/all-MiniLM-L6-v2`).
    pub encoder: String,
    /// The licence the vectors keep from the encoder's weights.
    pub licence: String,
    /// Width of each vector.
    pub dim: usize,
    /// The word of each row of the `vectors` tensor.
    pub words: Vec<String>,
}

/// Static vectors: one row per word.
#[derive(Debug, Clone)]
pub struct StaticVectors {
    /// The word of each row of `vectors`.
    pub words: Vec<String>,
    /// `[words, dim]`, f32.
    pub vectors: Tensor,
}

impl StaticVectors {
    /// Width of each vector (0 if `vectors` is not 2-D).
    pub fn dim(&self) -> usize {
        self.vectors.dims().get(1).copied().unwrap_or(0)
    }

    /// Writes `vectors.safetensors` (f16) and `words.json` into `dir`.
    pub fn save(&self, dir: &Path, encoder: &str) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Write {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let half = self.vectors.to_dtype(DType::F16)?;
        candle_core::safetensors::save(
            &HashMap::from([("vectors".to_string(), half)]),
            dir.join(VECTORS_FILE),
        )?;
        let words = WordsFile {
            encoder: encoder.to_string(),
            licence: "Apache-2.0 (derived from sentence-transformers/all-MiniLM-L6-v2)".into(),
            dim: self.dim(),
            words: self.words.clone(),
        };
        let path = dir.join(WORDS_FILE);
        let text = serde_json::to_string(&words)
            .map_err(|e| TrainError::Config(format!("cannot write {}: {e}", path.display())))?;
        std::fs::write(&path, text).map_err(|e| TrainError::Write {
            path,
            message: e.to_string(),
        })
    }

    /// Reads a directory written by [`StaticVectors::save`].
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(WORDS_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TrainError::Config(format!("cannot read {}: {e}", path.display())))?;
        let file: WordsFile = serde_json::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        let tensors = candle_core::safetensors::load(dir.join(VECTORS_FILE), &Device::Cpu)?;
        let vectors = tensors
            .get("vectors")
            .ok_or_else(|| TrainError::Config(format!("{VECTORS_FILE} has no `vectors`")))?
            .to_dtype(DType::F32)?;
        if vectors.dims() != [file.words.len(), file.dim] {
            return Err(TrainError::Config(format!(
                "{VECTORS_FILE} is {:?}, {WORDS_FILE} lists {} words of {} dimensions",
                vectors.dims(),
                file.words.len(),
                file.dim
            )));
        }
        Ok(Self {
            words: file.words,
            vectors,
        })
    }

    /// The rows of a word table for `vocab` (padding, words, OOV buckets): a
    /// word's static vector, zeros where there is none.
    pub fn table_for(&self, vocab: &Vocab) -> Result<Tensor, TrainError> {
        let dim = self.dim();
        let rows = vocab.word_rows();
        let index: HashMap<&str, usize> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
        let source: Vec<f32> = self.vectors.flatten_all()?.to_vec1()?;
        let mut table = vec![0f32; rows * dim];
        for (i, word) in vocab.words().iter().enumerate() {
            if let Some(&row) = index.get(word.as_str()) {
                let id = i + 1;
                table[id * dim..(id + 1) * dim]
                    .copy_from_slice(&source[row * dim..(row + 1) * dim]);
            }
        }
        Ok(Tensor::from_vec(table, (rows, dim), &Device::Cpu)?)
    }
}

/// The whole words of the encoder's vocabulary: alphabetic (an inner `'` or `-`
/// allowed), at least two characters, as the compact tokenizer normalises them.
pub fn vocabulary_words(encoder: &Encoder) -> Vec<String> {
    let mut words: Vec<String> = encoder
        .wordpiece()
        .entries()
        .filter(|w| !w.starts_with("##") && !w.starts_with('['))
        .filter(|w| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic))
        .map(normalize_word)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// The words of `queries` as the compact tokenizer normalises them: alphabetic
/// (an inner `'` allowed), at least two characters.
pub fn query_words<'a>(queries: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut words: Vec<String> = queries
        .into_iter()
        .flat_map(|q| {
            tokenize(q, usize::MAX)
                .into_iter()
                .map(|t| normalize_word(t.text(q)))
                .collect::<Vec<String>>()
        })
        .filter(|w| w.chars().count() >= 2 && w.chars().all(|c| c.is_alphabetic() || c == '\''))
        .filter(|w| w.chars().next().is_some_and(char::is_alphabetic))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// Distils static vectors of `words` from `encoder`: each word alone through the
/// encoder, the states (with `[CLS]` and `[SEP]`) mean-pooled, then PCA to `dim`
/// dimensions, scaled to unit variance per entry.
pub fn distill(
    encoder: &Encoder,
    words: &[String],
    dim: usize,
    progress: bool,
) -> Result<StaticVectors, TrainError> {
    let hidden = encoder.hidden();
    if dim == 0 || dim > hidden {
        return Err(TrainError::Config(format!(
            "static vectors need 1..={hidden} dimensions, not {dim}"
        )));
    }
    let bar = super::progress_bar(
        words.len(),
        progress,
        "static vectors [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
    );
    let mut pooled: Vec<f64> = Vec::with_capacity(words.len() * hidden);
    for chunk in words.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for encoded in encoder.encode_batch_with_specials(&texts, 16)? {
            let mean: Vec<f32> = encoded.states.mean(0)?.to_vec1()?;
            pooled.extend(mean.iter().map(|&v| f64::from(v)));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let n = words.len();
    let projected = pca(&pooled, n, hidden, dim);
    Ok(StaticVectors {
        words: words.to_vec(),
        vectors: Tensor::from_vec(projected, (n, dim), &Device::Cpu)?,
    })
}

/// Rows of `data` (`n x width`, row-major) centred and projected on the top `dim`
/// principal components, scaled so the entries have unit variance.
fn pca(data: &[f64], n: usize, width: usize, dim: usize) -> Vec<f32> {
    let mut mean = vec![0f64; width];
    for row in data.chunks(width) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n.max(1) as f64;
        }
    }
    let mut cov = vec![0f64; width * width];
    for row in data.chunks(width) {
        let centred: Vec<f64> = row.iter().zip(&mean).map(|(v, m)| v - m).collect();
        for i in 0..width {
            let ci = centred[i];
            for j in i..width {
                cov[i * width + j] += ci * centred[j];
            }
        }
    }
    for i in 0..width {
        for j in 0..i {
            cov[i * width + j] = cov[j * width + i];
        }
    }
    let (values, vectors) = symmetric_eigen(cov, width);
    let mut order: Vec<usize> = (0..width).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let top = &order[..dim];
    let mut out = Vec::with_capacity(n * dim);
    for row in data.chunks(width) {
        for &k in top {
            let dot: f64 = (0..width)
                .map(|i| (row[i] - mean[i]) * vectors[i * width + k])
                .sum();
            out.push(dot);
        }
    }
    let variance = out.iter().map(|v| v * v).sum::<f64>() / out.len().max(1) as f64;
    let scale = 1.0 / variance.sqrt().max(1e-12);
    out.into_iter().map(|v| (v * scale) as f32).collect()
}

/// Eigenvalues and eigenvectors (columns of a row-major `n x n` matrix) of a
/// symmetric matrix, by cyclic Jacobi rotations.
fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-22 * total.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_are_normalised_alphabetic_words() {
        let words = query_words(["What's 15% of $80, Mañana?", "calories in a BIG mac"]);
        assert_eq!(
            words,
            vec!["big", "calories", "in", "mac", "mañana", "of", "what's"]
        );
    }

    #[test]
    fn jacobi_finds_eigenpairs() {
        let a = vec![4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let (values, vectors) = symmetric_eigen(a.clone(), 3);
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i * 3 + j] * vectors[j * 3 + k]).sum();
                assert!((av - values[k] * vectors[i * 3 + k]).abs() < 1e-9);
            }
        }
        let trace: f64 = values.iter().sum();
        assert!((trace - 12.0).abs() < 1e-9);
    }

    #[test]
    fn pca_keeps_the_direction_of_largest_variance() {
        // Points along (1, 1) with small noise on (1, -1): the first component
        // separates them by position along the line.
        let mut data = Vec::new();
        for i in 0..20 {
            let t = f64::from(i) - 9.5;
            let noise = if i % 2 == 0 { 0.01 } else { -0.01 };
            data.extend([t + noise, t - noise]);
        }
        let out = pca(&data, 20, 2, 1);
        assert!(out.windows(2).all(|w| w[0] < w[1]) || out.windows(2).all(|w| w[0] > w[1]));
        let variance: f32 = out.iter().map(|v| v * v).sum::<f32>() / 20.0;
        assert!((variance - 1.0).abs() < 1e-4);
    }
}
