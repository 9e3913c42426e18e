//! The real encoder behind [`SentenceEncoder`]: a model folder loaded on a burn backend.

use std::path::Path;

use anyhow::Result;

use super::SentenceEncoder;
use crate::selector::BackendKind;

/// Loads the encoder in `dir` on `backend`; its identity is [`super::folder_identity`] of `dir`.
pub fn open_encoder(dir: &Path, backend: BackendKind) -> Result<Box<dyn SentenceEncoder>> {
    let _ = backend;
    anyhow::bail!(
        "{}: this build has no BERT encoder yet (the `encoder` module is not merged)",
        dir.display()
    )
}
