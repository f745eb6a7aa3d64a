//! SHA-256 as lowercase hex, for dataset manifests and model-file manifests
//! (the `sha2` crate underneath).

use sha2::Digest;
pub use sha2::Sha256;

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    finish_hex(Sha256::new_with_prefix(bytes))
}

/// Finishes a streaming hash as lowercase hex.
///
/// ```
/// use sha2::Digest;
/// use toolforge_core::digest::{finish_hex, sha256_hex, Sha256};
///
/// let mut hash = Sha256::new();
/// hash.update(b"ab");
/// hash.update(b"c");
/// assert_eq!(finish_hex(hash), sha256_hex(b"abc"));
/// ```
pub fn finish_hex(hash: Sha256) -> String {
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_and_streaming_matches_one_shot() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut streaming = Sha256::new();
        for chunk in data.chunks(77) {
            streaming.update(chunk);
        }
        assert_eq!(finish_hex(streaming), sha256_hex(&data));
    }
}
