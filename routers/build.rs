//! Embeds the default router model when one has been trained into
//! `models/compact/`: generates `embedded_model.rs` in `OUT_DIR` defining
//! `EMBEDDED` as the model's files (`include_bytes!`) or `None` when absent.

use std::error::Error;
use std::path::{Path, PathBuf};

const REQUIRED: [&str; 4] = [
    "model.safetensors",
    "config.json",
    "vocab.json",
    "tools.json",
];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dir = manifest_dir.join("models").join("compact");
    println!("cargo:rerun-if-changed={}", dir.display());
    for name in REQUIRED.iter().chain(["manifest.json"].iter()) {
        println!("cargo:rerun-if-changed={}", dir.join(name).display());
    }
    let bytes = |name: &str| format!("include_bytes!({:?})", path_str(&dir.join(name)));
    let code = if REQUIRED.iter().all(|name| dir.join(name).is_file()) {
        let manifest = if dir.join("manifest.json").is_file() {
            format!("Some({})", bytes("manifest.json"))
        } else {
            "None".to_string()
        };
        format!(
            "static EMBEDDED: Option<EmbeddedModel> = Some(EmbeddedModel {{\n    \
             config: {},\n    vocab: {},\n    tools: {},\n    weights: {},\n    manifest: {},\n}});\n",
            bytes("config.json"),
            bytes("vocab.json"),
            bytes("tools.json"),
            bytes("model.safetensors"),
            manifest,
        )
    } else {
        "static EMBEDDED: Option<EmbeddedModel> = None;\n".to_string()
    };
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_model.rs");
    std::fs::write(out, code)?;
    Ok(())
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
