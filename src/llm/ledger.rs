//! Request keys for the ledger of finished LLM requests: a request is keyed by the SHA-256 of its
//! exact body (for judging, with the task and the judge's name: see
//! [`super::judge::request_key`]). The ledger itself, which makes runs resumable, is a table of
//! the workspace: see [`crate::store::LlmRequest`] and `Workspace::llm_request_outcome`.

/// The content key of a request body: SHA-256 over its canonical JSON bytes.
pub fn request_key(body: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_key_is_a_sha256_hex_digest() {
        let key = request_key(&serde_json::json!({"model": "m"}));
        assert_eq!(key.len(), 64);
    }
}
