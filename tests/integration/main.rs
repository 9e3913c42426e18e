//! All integration tests in one binary (one link, one process start-up), each against a temp dir.

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

mod batch;
mod broken_input;
mod cli;
mod common;
mod encoder;
mod export;
mod first_key;
mod gpu;
mod import_work;
mod layout;
mod llm;
mod open_clip;
mod quality_data;
mod real_fixtures;
mod review;
mod selector;
mod shards;
mod simulate;
mod team;
mod team_work;
mod terminals;
