//! The data model and the file formats the method uses. Knows nothing of the store or the UI.

pub mod detect;
pub mod fields;
pub mod formats;
pub mod json_stream;
pub mod warnings;

use serde::{Deserialize, Serialize};

/// A figure with its multi-round Q&A: the unit a clinician reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Sample {
    /// The id from the source file (namespaced for shapes without one, e.g. `demo-7`, `pair-…`).
    pub id: String,
    /// Image reference as written in the data (file name, relative path or URL).
    pub image: Option<String>,
    pub caption: String,
    /// Inline mentions of the figure from the paper text, one sentence each.
    pub mentions: Vec<String>,
    pub fig_label: Option<String>,
    /// Domain tags, e.g. `ct_scan`, `mri`, `chest_xray`, `histology`, `gross`.
    pub domains: Vec<String>,
    pub rounds: Vec<Round>,
    /// Marked as a clinician-selected demonstration for the generator.
    pub is_demo: bool,
}

/// One question with its candidate answers. No answers means the question was left unanswered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Round {
    pub question: String,
    pub answers: Vec<String>,
}

impl Sample {
    /// Stable hash of the content, used to tell a re-import (same content) from a conflict.
    /// Hashes an explicit, versioned list of the content fields (not the struct's serde form),
    /// so adding a field to `Sample` later does not turn every re-import into a conflict.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let rounds: Vec<(&str, &[String])> = self
            .rounds
            .iter()
            .map(|r| (r.question.as_str(), r.answers.as_slice()))
            .collect();
        // A tuple serialises as the same JSON array as `json!([...])` did, without copying every
        // string into a `Value` first (the hashes of stored samples must not change).
        let content = (
            "sample-v1",
            &self.id,
            &self.image,
            &self.caption,
            &self.mentions,
            &self.fig_label,
            &self.domains,
            rounds,
            self.is_demo,
        );
        let mut hasher = HashWriter(Sha256::new());
        serde_json::to_writer(&mut hasher, &content).expect("strings and lists serialise");
        hex::encode(&hasher.0.finalize()[..16])
    }

    /// The key that groups samples of the same figure (train/validation splits are by figure).
    pub fn figure_key(&self) -> &str {
        self.image.as_deref().unwrap_or(&self.id)
    }
}

/// Feeds serialised bytes straight into a hash.
struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A clinician's acceptable / not acceptable mark carried by the data itself (clinician pair files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportedVerdict {
    /// 0-based round index inside the sample.
    pub round: usize,
    /// 0-based answer index inside the round.
    pub answer: usize,
    pub accepted: bool,
}

/// A judge LLM's 0–10 score for one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    pub sample_id: String,
    /// 1-based, as shown on screen.
    pub round: usize,
    /// 1-based, as shown on screen ("Answer 1").
    pub answer: usize,
    pub score: f64,
    pub judge: String,
}

/// Where the image of a figure can be downloaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUrlRecord {
    /// The figure's key (pair id or image file name).
    pub key: String,
    pub url: String,
    /// Path of the figure inside a `.tar.gz` package, when the URL points at one.
    pub member: Option<String>,
}

/// One parsed record of any supported shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Sample {
        sample: Sample,
        verdicts: Vec<ImportedVerdict>,
    },
    Score(ScoreRecord),
    ImageUrl(ImageUrlRecord),
    Edit(EditImport),
    Verdict(VerdictImport),
}

/// A reviewer's ✓ or ✗ on one answer, read from a verdicts file.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictImport {
    pub sample_id: String,
    /// 1-based.
    pub round: usize,
    /// 1-based.
    pub answer: usize,
    pub accepted: bool,
    pub reviewer: String,
    /// When the verdict was made, as the log writes times; None: when it is imported.
    pub time: Option<String>,
}

/// A reviewer's corrected answer read back from an edits file.
#[derive(Debug, Clone, PartialEq)]
pub struct EditImport {
    pub sample_id: String,
    /// 1-based.
    pub round: usize,
    /// 1-based; None: the answer whose text is `original`.
    pub answer: Option<usize>,
    pub original: String,
    pub edited: String,
    pub reviewer: String,
    pub reasons: Vec<String>,
}

/// Strips the `<image>` placeholder LLaVA puts in the first question; the stored text keeps it for export.
pub fn display_text(text: &str) -> String {
    text.replace("<image>\n", "")
        .replace("\n<image>", "")
        .replace("<image>", "")
        .trim()
        .to_string()
}

/// `text` safe to print on a terminal: escape sequences (CSI, OSC, DCS, APC, PM, SOS, in 7- and
/// 8-bit form) and other control characters removed, line breaks and tabs kept. Data is hostile:
/// a caption holding `ESC ] 0 ; title BEL` or `ESC [ 2 J` must not set the window title or clear
/// the screen of whoever prints it.
pub fn plain_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    // Skips a string sequence's body, up to and including BEL or ST (ESC \ or 0x9c).
    fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
        while let Some(c) = chars.next() {
            match c {
                '\u{7}' | '\u{9c}' => return,
                '\u{1b}' => {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    return;
                }
                _ => {}
            }
        }
    }
    fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
        for c in chars.by_ref() {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                return;
            }
        }
    }
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | '_' | '^' | 'X') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{9f}' | '\u{9e}' | '\u{98}' => skip_string(&mut chars),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_drops_escape_sequences_and_control_characters() {
        assert_eq!(
            plain_text("A normal caption.\nLine two\t."),
            "A normal caption.\nLine two\t."
        );
        assert_eq!(
            plain_text("Chest\u{1b}]0;pwned\u{7} X-ray\u{1b}[2J\u{1b}[31m red\u{1b}[0m"),
            "Chest X-ray red"
        );
        assert_eq!(
            plain_text("a\u{1b}P>|x\u{1b}\\b\u{9b}1;2Hc\u{0}d\rē"),
            "abcdē"
        );
        assert_eq!(plain_text("cut \u{1b}]8;;http://x"), "cut ");
    }

    #[test]
    fn display_text_hides_image_token_wherever_it_is() {
        assert_eq!(display_text("<image>\nWhat is shown?"), "What is shown?");
        assert_eq!(display_text("What is shown?\n<image>"), "What is shown?");
        assert_eq!(display_text("A <image> B"), "A  B");
    }

    #[test]
    fn content_hash_changes_with_content() {
        let a = Sample {
            id: "x".into(),
            caption: "c".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.caption.push('!');
        assert_ne!(a.content_hash(), b.content_hash());
    }

    /// The hash as first written (a `json!` array serialised, then hashed): stored samples keep
    /// their hashes, so re-importing a file still finds them unchanged.
    fn content_hash_v1(s: &Sample) -> String {
        use sha2::{Digest, Sha256};
        let rounds: Vec<(&str, &[String])> = s
            .rounds
            .iter()
            .map(|r| (r.question.as_str(), r.answers.as_slice()))
            .collect();
        let content = serde_json::json!([
            "sample-v1",
            s.id,
            s.image,
            s.caption,
            s.mentions,
            s.fig_label,
            s.domains,
            rounds,
            s.is_demo
        ]);
        hex::encode(&Sha256::digest(serde_json::to_vec(&content).unwrap())[..16])
    }

    #[test]
    fn content_hash_is_the_one_stored_workspaces_hold() {
        let plain = Sample {
            id: "x".into(),
            caption: "c".into(),
            ..Default::default()
        };
        let full = Sample {
            id: "PMC1_F2".into(),
            image: Some("a/b \"c\".png".into()),
            caption: "Axial CT — 3 × 4 cm\tlesion\n\u{1}".into(),
            mentions: vec!["As seen ( Fig. 2 ) .".into(), "é".into()],
            fig_label: Some("Figure 2".into()),
            domains: vec!["ct_scan".into(), "mri".into()],
            rounds: vec![
                Round {
                    question: "<image>\nWhat?".into(),
                    answers: vec!["A.".into(), "B \\ C".into()],
                },
                Round {
                    question: "Unanswered?".into(),
                    answers: vec![],
                },
            ],
            is_demo: true,
        };
        for s in [plain, full] {
            assert_eq!(s.content_hash(), content_hash_v1(&s));
        }
    }
}
