//! How weights are stored on disk: embedding tables, most of a compact model's
//! bytes, as 8-bit rows (one scale per row, `name.q8` and `name.q8_scale`),
//! everything else as it is. Reading restores f32 tables under their own names,
//! so a `VarBuilder` over the result sees a plain weight map.

use std::collections::HashMap;

use candle_core::{DType, Result, Tensor, D};

/// Suffix of a table's 8-bit codes (`u8`, the signed code plus 128).
pub const CODES: &str = ".q8";
/// Suffix of a table's per-row scales (`f32`).
pub const SCALES: &str = ".q8_scale";

/// A 2-D f32 table as 8-bit codes and one scale per row: row `r` is
/// `(codes[r] - 128) * scales[r]`, within half a step (`max |row| / 254`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use toolforge_model::stored::{dequantize_rows, quantize_rows};
///
/// let table = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.1]], &Device::Cpu)?;
/// let (codes, scales) = quantize_rows(&table)?;
/// let back = dequantize_rows(&codes, &scales)?;
/// assert!(toolforge_model::max_abs_diff(&table, &back)? <= 2.0 / 254.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn quantize_rows(table: &Tensor) -> Result<(Tensor, Tensor)> {
    let table = table.to_dtype(DType::F32)?;
    let scales = (table.abs()?.max_keepdim(D::Minus1)? / 127.0)?;
    // An all-zero row keeps scale 0 and divides by 1 instead.
    let safe = scales.maximum(f32::MIN_POSITIVE)?;
    let codes = (table
        .broadcast_div(&safe)?
        .round()?
        .clamp(-127f32, 127f32)?
        + 128.0)?
        .to_dtype(DType::U8)?;
    Ok((codes, scales.squeeze(D::Minus1)?))
}

/// The f32 table that [`quantize_rows`] encoded.
pub fn dequantize_rows(codes: &Tensor, scales: &Tensor) -> Result<Tensor> {
    let values = (codes.to_dtype(DType::F32)? - 128.0)?;
    values.broadcast_mul(&scales.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?)
}

/// The stored form of `weights`: the tables named in `tables` as 8-bit rows.
pub fn pack(weights: &HashMap<String, Tensor>, tables: &[&str]) -> Result<HashMap<String, Tensor>> {
    let mut stored = HashMap::with_capacity(weights.len() + tables.len());
    for (name, tensor) in weights {
        let is_table = tables
            .iter()
            .any(|t| name == t || name.ends_with(&format!(".{t}")));
        if is_table && tensor.rank() == 2 {
            let (codes, scales) = quantize_rows(tensor)?;
            stored.insert(format!("{name}{CODES}"), codes);
            stored.insert(format!("{name}{SCALES}"), scales);
        } else {
            stored.insert(name.clone(), tensor.clone());
        }
    }
    Ok(stored)
}

/// The weights [`pack`] stored, 8-bit tables restored to f32 (other entries,
/// f16 tables of older files included, are returned as they are).
pub fn unpack(mut stored: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let names: Vec<String> = stored
        .keys()
        .filter_map(|k| k.strip_suffix(CODES).map(str::to_string))
        .collect();
    for name in names {
        let codes = stored.remove(&format!("{name}{CODES}"));
        let scales = stored.remove(&format!("{name}{SCALES}"));
        match (codes, scales) {
            (Some(codes), Some(scales)) => {
                stored.insert(name, dequantize_rows(&codes, &scales)?);
            }
            _ => {
                return Err(candle_core::Error::Msg(format!(
                    "8-bit table {name} has no {SCALES} scales"
                )))
            }
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn rows_round_trip_within_half_a_step() {
        let table = Tensor::new(
            &[
                [0.5f32, -1.0, 0.25, 0.0],
                [0.0, 0.0, 0.0, 0.0],
                [3.0, -0.001, 2.0, -3.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let (codes, scales) = quantize_rows(&table).unwrap();
        assert_eq!(codes.dtype(), DType::U8);
        assert_eq!(scales.dims(), &[3]);
        let back = dequantize_rows(&codes, &scales).unwrap();
        let rows: Vec<Vec<f32>> = back.to_vec2().unwrap();
        assert_eq!(rows[1], vec![0.0; 4], "a zero row stays zero");
        assert_eq!(rows[0][1], -1.0, "the largest entry is exact");
        let error = crate::max_abs_diff(&table, &back).unwrap();
        assert!(error <= 3.0 / 254.0 + 1e-6, "{error}");
        assert!(error > 0.0, "lossy, so the test can tell");
    }

    #[test]
    fn pack_stores_named_tables_and_unpack_restores_them() {
        let device = Device::Cpu;
        let table = Tensor::new(&[[0.1f32, 0.2], [0.3, -0.4]], &device).unwrap();
        let other = Tensor::new(&[1.5f32, 2.5], &device).unwrap();
        let weights = HashMap::from([
            ("member1.emb.word".to_string(), table.clone()),
            ("head.bias".to_string(), other.clone()),
        ]);
        let stored = pack(&weights, &["emb.word"]).unwrap();
        let mut names: Vec<&String> = stored.keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "head.bias",
                "member1.emb.word.q8",
                "member1.emb.word.q8_scale"
            ]
        );
        let back = unpack(stored.clone()).unwrap();
        assert_eq!(back.len(), 2);
        assert!(crate::max_abs_diff(&back["member1.emb.word"], &table).unwrap() < 0.002);
        assert_eq!(back["head.bias"].to_vec1::<f32>().unwrap(), vec![1.5, 2.5]);

        let mut broken = stored;
        broken.remove("member1.emb.word.q8_scale");
        let err = unpack(broken).unwrap_err().to_string();
        assert!(err.contains("member1.emb.word"), "{err}");
    }
}
