//! Clinician-style pairs built from the real qa50 fixture, shared by the selector quality test
//! and `benches/quality.rs`. Each question's real GPT-4 answer is the ✓ answer; the ✗ answer is
//! one of the failure kinds clinicians reject, chosen by position so every kind is present:
//!   0. an answer to a question about another figure (fluent, plausible length, off-image),
//!   1. a hedging refusal,
//!   2. the answer to another question about the same figure (on-topic words, wrong answer),
//!   3. a long generic answer that ignores the figure (beats "longer is better").
//!
//! Kinds 1 and 3 are fixed strings ([`REFUSAL`], [`GENERIC`]): every pair of that kind has the
//! same ✗ answer, in training and in evaluation. Kinds 0 and 2 are real GPT-4 answers.
//!
//! Both answers go into one candidates record per figure; the verdicts are recorded as a
//! clinician's (reviewer `clinician`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub const REFUSAL: &str = "I'm sorry, but as an AI I cannot determine this from the image alone. Please consult a qualified medical professional for an accurate interpretation.";
pub const GENERIC: &str = "This is a medical image that provides valuable information to clinicians. Medical images such as this one are commonly used by doctors to evaluate patients, and they can reveal many different findings depending on the modality, the body part and the clinical context in which they were obtained. A thorough evaluation would require correlation with the patient's history and other tests.";

/// The failure kinds, by number (see the header); the fixed-string ones say so.
#[allow(dead_code)] // read by benches/quality.rs, not by the tests
pub const FAILURE_KINDS: [&str; 4] = [
    "other figure's answer",
    "refusal (fixed string)",
    "same figure, other question",
    "generic (fixed string)",
];

/// The qa50 fixture and the all-MiniLM-L6-v2 folder (`VITAL_TEST_MINILM`) for the benches that
/// need both; None, after saying which is missing, when either is.
#[allow(dead_code)] // read by benches/few_pairs.rs and benches/orders.rs, not by the tests
pub fn qa50_and_minilm() -> Option<(PathBuf, PathBuf)> {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/llava_med_qa50.jsonl");
    let Some(minilm) = std::env::var_os("VITAL_TEST_MINILM") else {
        println!("skipping: VITAL_TEST_MINILM names no all-MiniLM-L6-v2 folder");
        return None;
    };
    if !fixture.is_file() {
        println!("skipping: ../shared/fixtures is absent");
        return None;
    }
    Some((fixture, PathBuf::from(minilm)))
}

/// Embeds, on the CPU, every text of `ws` the cache lacks with the sentence encoder in `folder`:
/// the benches' vectors, cached once before their runs read them.
#[allow(dead_code)] // read by the benches, not by the tests
pub fn embed_texts(
    ws: &vital::store::Workspace,
    folder: &Path,
) -> anyhow::Result<vital::embed::FillReport> {
    let mut model = vital::embed::open_encoder(folder, vital::selector::BackendKind::Cpu)?;
    vital::embed::fill_cache(
        ws,
        model.as_mut(),
        32,
        &mut |_, _| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
}

/// Writes the candidates file (two answers per question, the real one first; the review screen
/// shuffles the order it shows) and returns the number of figures.
#[allow(dead_code)] // the tests' entry; benches/quality.rs needs the kinds
pub fn write_candidates(fixture: &Path, out: &Path) -> usize {
    write_candidates_with_kinds(fixture, out).len()
}

/// [`write_candidates`], returning each figure's id with the failure kind (an index into
/// [`FAILURE_KINDS`]) of the ✗ answer of each of its rounds, in round order.
pub fn write_candidates_with_kinds(fixture: &Path, out: &Path) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(fixture).expect("qa50 fixture readable");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut figures: Vec<(String, Vec<&Value>)> = Vec::new();
    for line in &lines {
        let id = line["pair_id"].as_str().unwrap().to_string();
        match figures.iter_mut().find(|(f, _)| *f == id) {
            Some((_, qs)) => qs.push(line),
            None => figures.push((id, vec![line])),
        }
    }
    let mut out_text = String::new();
    let mut k = 0usize;
    let mut kinds_of = Vec::new();
    for (f, (id, questions)) in figures.iter().enumerate() {
        let mut rounds = Vec::new();
        let mut kinds = Vec::new();
        for (q, line) in questions.iter().enumerate() {
            let good = line["gpt4_answer"].as_str().unwrap();
            let kind = match k % 4 {
                2 if questions.len() == 1 => 3,
                kind => kind,
            };
            let bad = match kind {
                0 => {
                    let other = &figures[(f + 7) % figures.len()].1;
                    other[q % other.len()]["gpt4_answer"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }
                1 => REFUSAL.to_string(),
                2 => questions[(q + 1) % questions.len()]["gpt4_answer"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                _ => GENERIC.to_string(),
            };
            k += 1;
            if bad == good {
                continue;
            }
            rounds.push(json!({"question": line["text"], "answers": [good, bad]}));
            kinds.push(kind);
        }
        let record = json!({
            "id": id, "image": line0(questions)["image"], "fig_caption": line0(questions)["fig_caption"],
            "in_text_mention": line0(questions)["in_text_mention"], "domain": line0(questions)["domain"], "rounds": rounds,
        });
        out_text.push_str(&record.to_string());
        out_text.push('\n');
        kinds_of.push((id.clone(), kinds));
    }
    std::fs::write(out, out_text).unwrap();
    kinds_of
}

fn line0<'a>(questions: &[&'a Value]) -> &'a Value {
    questions[0]
}

/// Records the clinician's verdicts (answer 1 ✓, answer 2 ✗) for every round.
#[allow(dead_code)] // benches/orders.rs gives its verdicts through the simulated reviewer
pub fn record_verdicts(ws: &vital::store::Workspace) -> usize {
    use vital::store::{DecisionKind, NewDecision};
    let mut n = 0;
    for key in ws.sample_keys().unwrap() {
        let s = ws.load_sample(key).unwrap().unwrap();
        for (r, answers) in s.answer_ids.iter().enumerate() {
            for (a, &answer) in answers.iter().enumerate() {
                let kind = if a == 0 {
                    DecisionKind::Accept
                } else {
                    DecisionKind::Reject
                };
                let j = NewDecision {
                    sample_key: key,
                    round_id: Some(s.round_ids[r]),
                    answer_id: Some(answer),
                    kind,
                    value: None,
                    shown_order: None,
                    figure_shown: None,
                };
                ws.record("clinician", &j).unwrap();
            }
            n += 1;
        }
    }
    n
}
