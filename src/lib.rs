//! vital: clinician-aligned biomedical visual instruction data, at the terminal.
//!
//! Dependencies point one way: `data` (formats, model) and `store` know nothing of the UI;
//! `import` joins them; `selector`, `encoder` and `llm` are libraries the CLI and the TUI both
//! call.

pub mod answer_inputs;
pub mod as_text;
pub mod atomic_write;
pub mod cli;
pub mod config;
pub mod data;
pub mod demo;
pub mod embed;
pub mod encoder;
pub mod export;
pub mod figure_fetch;
pub mod figure_pick;
pub mod image_files;
pub mod import;
pub mod llm;
pub mod process;
pub mod retry;
pub mod selector;
pub mod selector_runs;
pub mod shard;
pub mod stable;
pub mod store;
pub mod terminal;
pub mod tui;
