//! Allocation-free text helpers for the hashed featurizer: a stable hash, a byte tokenizer,
//! and the word lists behind the engineered signals.

pub use crate::stable::{fnv1a_lower, mix};

/// A word is a run of ASCII alphanumerics, `.`/`%` inside numbers, or any non-ASCII byte
/// (so UTF-8 letters stay inside words).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Calls `f(word_bytes)` for each word of `text`, in order.
pub fn for_each_word(text: &str, mut f: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let is_number = bytes[start].is_ascii_digit();
        while i < bytes.len() {
            let b = bytes[i];
            if is_word_byte(b) {
                i += 1;
            } else if is_number && b == b'%' {
                i += 1; // "20%" is one token
                break;
            } else if is_number && b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1; // decimal point inside a number: "3.5"
            } else {
                break;
            }
        }
        f(&bytes[start..i]);
    }
}

const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be",
    "been", "being", "but", "by", "can", "could", "did", "do", "does", "each", "for", "from",
    "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "me", "more", "most", "my", "no", "not", "of", "on", "or", "other", "our", "she", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "why", "will", "with", "would", "you", "your",
];

/// Single-word hedges; multi-word ones are in [`HEDGE_PHRASES`].
const HEDGE_WORDS: &[&str] = &[
    "may",
    "might",
    "possibly",
    "possible",
    "perhaps",
    "likely",
    "unclear",
    "uncertain",
    "suggest",
    "suggests",
    "suggestive",
    "could",
    "appears",
    "seems",
    "probably",
    "consult",
];
pub const HEDGE_PHRASES: &[&str] = &[
    "cannot determine",
    "can't determine",
    "difficult to determine",
    "hard to say",
    "it is not possible",
    "not possible to",
    "without more information",
    "further evaluation",
    "healthcare professional",
    "medical professional",
];
pub const REFUSAL_PHRASES: &[&str] = &[
    "i'm sorry",
    "i am sorry",
    "as an ai",
    "i cannot",
    "i can't",
    "i am unable",
    "i'm unable",
    "unable to provide",
    "cannot provide",
    "not able to",
    "i don't have access",
    "i do not have access",
    "cannot see the image",
    "can't see the image",
];
const IMAGE_WORDS: &[&str] = &[
    "image",
    "images",
    "shows",
    "showing",
    "shown",
    "visible",
    "arrow",
    "arrows",
    "arrowhead",
    "arrowheads",
    "scan",
    "seen",
    "demonstrates",
    "depicted",
    "depicts",
    "panel",
    "view",
    "asterisk",
    "highlighted",
    "appearance",
];
const YES_NO_OPENERS: &[&str] = &[
    "is", "are", "does", "do", "did", "can", "could", "was", "were", "has", "have", "had", "will",
    "should", "would", "may",
];
const UNITS: &[&str] = &[
    "mm", "cm", "m", "ml", "l", "mg", "g", "kg", "hu", "%", "x", "years", "year", "days", "weeks",
    "months", "hours", "cc", "mmhg", "µm", "um",
];

/// Sorted hashes of a word list, for binary-search membership.
fn hashed_set(words: &[&str]) -> Vec<u64> {
    let mut hashes: Vec<u64> = words.iter().map(|w| fnv1a_lower(w.as_bytes())).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// Hashed word lists, built once per featurizer.
#[derive(Debug, Clone)]
pub struct Lexicon {
    stopwords: Vec<u64>,
    hedges: Vec<u64>,
    image_words: Vec<u64>,
    yes_no_openers: Vec<u64>,
    units: Vec<u64>,
    pub yes: u64,
    pub no: u64,
}

impl Default for Lexicon {
    fn default() -> Self {
        Lexicon {
            stopwords: hashed_set(STOPWORDS),
            hedges: hashed_set(HEDGE_WORDS),
            image_words: hashed_set(IMAGE_WORDS),
            yes_no_openers: hashed_set(YES_NO_OPENERS),
            units: hashed_set(UNITS),
            yes: fnv1a_lower(b"yes"),
            no: fnv1a_lower(b"no"),
        }
    }
}

impl Lexicon {
    pub fn is_stopword(&self, h: u64) -> bool {
        self.stopwords.binary_search(&h).is_ok()
    }
    pub fn is_hedge(&self, h: u64) -> bool {
        self.hedges.binary_search(&h).is_ok()
    }
    pub fn is_image_word(&self, h: u64) -> bool {
        self.image_words.binary_search(&h).is_ok()
    }
    pub fn is_yes_no_opener(&self, h: u64) -> bool {
        self.yes_no_openers.binary_search(&h).is_ok()
    }
    pub fn is_unit(&self, h: u64) -> bool {
        self.units.binary_search(&h).is_ok()
    }
}

/// |a ∩ b| for two sorted, deduplicated slices.
pub fn intersection_len(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Counts how many of `phrases` occur in `lower` (an already lower-cased text).
pub fn count_phrases(lower: &str, phrases: &[&str]) -> usize {
    phrases.iter().filter(|p| lower.contains(*p)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(String::from_utf8_lossy(w).into_owned()));
        out
    }

    #[test]
    fn hash_is_stable_and_case_insensitive() {
        // Pinned value: changing the hash silently breaks every saved model.
    }

    #[test]
    fn tokenizer_keeps_numbers_and_units_together() {
        assert_eq!(
            words("A 3.5 cm mass, (arrow)."),
            ["A", "3.5", "cm", "mass", "arrow"]
        );
        assert_eq!(
            words("grew 20% in 2 yrs"),
            ["grew", "20%", "in", "2", "yrs"]
        );
        assert_eq!(words("end."), ["end"]);
        assert_eq!(words("naïve café"), ["naïve", "café"]);
    }

    #[test]
    fn lexicon_membership() {
        let lex = Lexicon::default();
        assert!(lex.is_stopword(fnv1a_lower(b"The")));
        assert!(lex.is_hedge(fnv1a_lower(b"might")));
        assert!(!lex.is_hedge(fnv1a_lower(b"lesion")));
        assert!(lex.is_image_word(fnv1a_lower(b"arrow")));
        assert!(lex.is_yes_no_opener(fnv1a_lower(b"Is")));
    }

    #[test]
    fn set_intersection_and_phrases() {
        assert_eq!(intersection_len(&[1, 3, 5, 7], &[3, 4, 5]), 2);
        assert_eq!(intersection_len(&[], &[1]), 0);
        assert_eq!(
            count_phrases("i'm sorry, as an ai i cannot", REFUSAL_PHRASES),
            3
        );
    }
}
