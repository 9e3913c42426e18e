//! All integration tests in one binary (one link, one process start-up), each against a temp dir.

mod broken_input;
mod cli;
mod common;
mod encoder;
mod export;
mod llm;
mod quality_data;
mod real_fixtures;
mod review;
mod selector;
