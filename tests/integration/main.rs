//! All integration tests in one binary (one link, one process start-up), each against a temp dir.

mod broken_input;
mod cli;
mod common;
mod export;
mod llm;
mod real_fixtures;
mod quality_data;
mod review;
mod selector;
