//! Answers as selector inputs, read from the workspace: all of them in chunks (for scoring
//! 1.7M answers without holding them at once), or just those a set of pairs needs (training).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::selector::AnswerInput;
use crate::store::Workspace;

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

const SELECT: &str =
    "SELECT a.id, a.text, r.position, r.question, s.id, s.ext_id, s.image, s.caption, s.mentions
     FROM answers a JOIN rounds r ON r.id = a.round_id JOIN samples s ON s.id = r.sample_id";

/// Resolves image references once per distinct reference.
struct ImageResolver {
    finder: crate::store::ImageFinder,
    cache: HashMap<String, Option<PathBuf>>,
}

impl ImageResolver {
    fn new(ws: &Workspace) -> anyhow::Result<Self> {
        Ok(Self {
            finder: crate::store::ImageFinder::new(ws)?,
            cache: HashMap::new(),
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
}

fn read_row(
    row: &rusqlite::Row,
    images: &mut ImageResolver,
) -> rusqlite::Result<(i64, AnswerInput)> {
    let image: Option<String> = row.get(6)?;
    let ext_id: String = row.get(5)?;
    let mentions: String = row.get(8)?;
    Ok((
        row.get(4)?,
        AnswerInput {
            answer_id: row.get(0)?,
            figure_key: image.clone().unwrap_or(ext_id),
            caption: row.get(7)?,
            mentions: serde_json::from_str(&mentions).unwrap_or_default(),
            question: crate::data::display_text(&row.get::<_, String>(3)?),
            answer: row.get(1)?,
            round_position: row.get::<_, i64>(2)? as usize,
            image_path: images.resolve(image),
        },
    ))
}

/// Inputs for the answers in `ids` (those some training pair refers to).
pub fn answer_inputs_for(ws: &Workspace, ids: &HashSet<i64>) -> anyhow::Result<AnswerIndex> {
    let mut index = AnswerIndex::default();
    let mut images = ImageResolver::new(ws)?;
    let mut stmt = ws
        .conn()
        .prepare_cached(&format!("{SELECT} WHERE a.id = ?1"))?;
    let mut sorted: Vec<i64> = ids.iter().copied().collect();
    sorted.sort_unstable();
    for id in sorted {
        let (sample, input) = stmt.query_row([id], |row| read_row(row, &mut images))?;
        index.push(sample, input);
    }
    Ok(index)
}

/// Receives a chunk of answers and, in parallel, the sample row id of each.
pub type ChunkVisitor<'a> = dyn FnMut(&[AnswerInput], &[i64]) -> anyhow::Result<()> + 'a;

/// Every answer, `chunk` at a time, in sample order: `visit(inputs, sample keys)`.
pub fn for_each_answer_chunk(
    ws: &Workspace,
    chunk: usize,
    visit: &mut ChunkVisitor,
) -> anyhow::Result<usize> {
    let mut images = ImageResolver::new(ws)?;
    let mut stmt = ws
        .conn()
        .prepare(&format!("{SELECT} ORDER BY s.id, r.position, a.position"))?;
    let mut rows = stmt.query([])?;
    let (mut inputs, mut samples) = (Vec::with_capacity(chunk), Vec::with_capacity(chunk));
    let mut total = 0;
    while let Some(row) = rows.next()? {
        let (sample, input) = read_row(row, &mut images)?;
        inputs.push(input);
        samples.push(sample);
        if inputs.len() == chunk {
            visit(&inputs, &samples)?;
            total += inputs.len();
            inputs.clear();
            samples.clear();
        }
    }
    if !inputs.is_empty() {
        visit(&inputs, &samples)?;
        total += inputs.len();
    }
    Ok(total)
}
