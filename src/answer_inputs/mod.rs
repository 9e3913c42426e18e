//! Answers as selector inputs, read from the workspace: all of them in chunks (for scoring
//! 1.7M answers without holding them at once, and for filling the embeddings cache), or just
//! those a set of pairs needs (training). Below both `embed` and `selector_runs`, which read
//! the workspace through it.

pub mod figures;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::selector::image_stats::ImageStats;
use crate::selector::{AnswerInput, FigureStats};
use crate::store::{AnswerRecord, Workspace};

/// Inputs plus what the caller needs to map scores back.
#[derive(Debug, Default)]
pub struct AnswerIndex {
    pub inputs: Vec<AnswerInput>,
    /// answer id → sample row id.
    pub sample_of: HashMap<i64, i64>,
    figure_of: HashMap<i64, usize>,
}

impl AnswerIndex {
    /// The figure key (for splits) of an answer.
    pub fn figure_of(&self, answer_id: i64) -> Option<&str> {
        self.figure_of
            .get(&answer_id)
            .map(|&i| self.inputs[i].figure_key.as_str())
    }

    fn push(&mut self, sample: i64, input: AnswerInput) {
        self.sample_of.insert(input.answer_id, sample);
        self.figure_of.insert(input.answer_id, self.inputs.len());
        self.inputs.push(input);
    }
}

/// Resolves image references once per distinct reference, and gives each found figure the
/// statistics the workspace keeps for it (see [`figures`]).
struct ImageResolver {
    finder: crate::store::ImageFinder,
    cache: HashMap<String, Option<PathBuf>>,
    stats: HashMap<PathBuf, Option<ImageStats>>,
}

impl ImageResolver {
    fn new(ws: &Workspace) -> anyhow::Result<Self> {
        Ok(Self {
            finder: crate::store::ImageFinder::new(ws)?,
            cache: HashMap::new(),
            stats: HashMap::new(),
        })
    }

    fn resolve(&mut self, reference: Option<String>) -> Option<PathBuf> {
        let reference = reference?;
        if let Some(hit) = self.cache.get(&reference) {
            return hit.clone();
        }
        let path = self.finder.find(&reference);
        self.cache.insert(reference, path.clone());
        path
    }

    /// Reads (or computes once and stores) the statistics of every figure resolved so far.
    fn load_stats(&mut self, ws: &Workspace) -> anyhow::Result<()> {
        let mut paths: Vec<PathBuf> = self.cache.values().flatten().cloned().collect();
        paths.sort();
        paths.dedup();
        self.stats = figures::figure_stats(ws, &paths, &figures::decode)?;
        Ok(())
    }

    fn stats_of(&self, path: Option<&PathBuf>) -> FigureStats {
        match path.and_then(|p| self.stats.get(p)) {
            Some(stats) => FigureStats::Known(*stats),
            None => FigureStats::Unknown,
        }
    }
}

/// The selector's input for a stored answer, and its sample's key.
fn to_input(record: AnswerRecord, images: &mut ImageResolver) -> (i64, AnswerInput) {
    let image_path = images.resolve(record.image.clone());
    let figure_stats = images.stats_of(image_path.as_ref());
    (
        record.sample_key,
        AnswerInput {
            answer_id: record.answer_id,
            figure_key: record.image.clone().unwrap_or(record.ext_id),
            caption: record.caption,
            mentions: record.mentions,
            question: crate::data::display_text(&record.question),
            answer: record.text,
            round_position: record.round_position,
            image_path,
            figure_stats,
        },
    )
}

/// Inputs for the answers in `ids` (those some training pair refers to).
pub fn answer_inputs_for(ws: &Workspace, ids: &HashSet<i64>) -> anyhow::Result<AnswerIndex> {
    let mut index = AnswerIndex::default();
    let mut images = ImageResolver::new(ws)?;
    let mut sorted: Vec<i64> = ids.iter().copied().collect();
    sorted.sort_unstable();
    let records: Vec<AnswerRecord> = sorted
        .into_iter()
        .map(|id| ws.answer_record(id))
        .collect::<anyhow::Result<_>>()?;
    for record in &records {
        images.resolve(record.image.clone());
    }
    images.load_stats(ws)?;
    for record in records {
        let (sample, input) = to_input(record, &mut images);
        index.push(sample, input);
    }
    Ok(index)
}

/// Receives a chunk of answers and, in parallel, the sample row id of each.
pub type ChunkVisitor<'a> = dyn FnMut(&[AnswerInput], &[i64]) -> anyhow::Result<()> + 'a;

/// Every answer, about `chunk` at a time (a chunk ends between samples), in sample order:
/// `visit(inputs, sample keys)`.
pub fn for_each_answer_chunk(
    ws: &Workspace,
    chunk: usize,
    visit: &mut ChunkVisitor,
) -> anyhow::Result<usize> {
    let mut images = ImageResolver::new(ws)?;
    for reference in ws.image_references()? {
        images.resolve(Some(reference));
    }
    images.load_stats(ws)?;
    let (mut inputs, mut samples) = (Vec::with_capacity(chunk), Vec::with_capacity(chunk));
    let mut total = 0;
    ws.for_each_answer_record(&mut |record| {
        let (sample, input) = to_input(record, &mut images);
        // Chunks end between samples, so a round's answers are always seen together.
        if inputs.len() >= chunk && samples.last() != Some(&sample) {
            visit(&inputs, &samples)?;
            total += inputs.len();
            inputs.clear();
            samples.clear();
        }
        inputs.push(input);
        samples.push(sample);
        Ok(())
    })?;
    if !inputs.is_empty() {
        visit(&inputs, &samples)?;
        total += inputs.len();
    }
    Ok(total)
}
