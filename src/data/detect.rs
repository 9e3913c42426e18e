//! Tells a file's shape from the keys of its first record.

use serde_json::Value;

use super::formats::Format;

/// The format whose tell-tale keys the record has, or `None`.
pub fn detect(record: &Value) -> Option<Format> {
    let obj = record.as_object()?;
    let has = |k: &str| obj.contains_key(k);
    if has("answer_positive") || has("answer_negative") {
        Some(Format::Pairs)
    } else if has("edited") && has("original") {
        Some(Format::Edits)
    } else if has("verdict") && has("reviewer") {
        Some(Format::Verdicts)
    } else if has("rounds") {
        Some(Format::Candidates)
    } else if has("conversations") && (has("imgs") || has("fig_id") || has("pmid")) {
        Some(Format::Demos)
    } else if has("conversations") {
        Some(Format::Llava)
    } else if has("gpt4_answer") || (has("question_id") && has("text")) {
        Some(Format::Qa)
    } else if has("score") {
        Some(Format::Scores)
    } else if has("url") || has("pmc_tar_url") || has("image_url") {
        Some(Format::Urls)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_each_shape() {
        let cases = [
            (
                json!({"img": "a", "question": "q", "answer_positive": "p", "answer_negative": "n"}),
                Format::Pairs,
            ),
            (json!({"id": "a", "rounds": []}), Format::Candidates),
            (
                json!({"id": 1, "imgs": "a.jpg", "conversations": []}),
                Format::Demos,
            ),
            (
                json!({"id": "a", "image": "a.jpg", "conversations": []}),
                Format::Llava,
            ),
            (
                json!({"question_id": 0, "text": "q", "gpt4_answer": "a"}),
                Format::Qa,
            ),
            (json!({"sample_id": "a", "score": 3}), Format::Scores),
            (json!({"pair_id": "a", "pmc_tar_url": "u"}), Format::Urls),
            (
                json!({"sample_id": "a", "round": 1, "answer": 1, "verdict": "accept", "reviewer": "ana"}),
                Format::Verdicts,
            ),
        ];
        for (record, format) in cases {
            assert_eq!(detect(&record), Some(format), "{record}");
        }
        assert_eq!(detect(&json!({"what": 1})), None);
        assert_eq!(detect(&json!([1])), None);
    }
}
