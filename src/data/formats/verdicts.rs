//! Clinicians' verdicts gathered elsewhere (a spreadsheet, another annotation tool), one per
//! line, as `vital export --format verdicts` writes them: `{"sample_id": "fig-1", "round": 1,
//! "answer": 2, "verdict": "accept", "reviewer": "dr_lee", "time": "2026-12-01T09:30:00.000Z"}`.
//! `round` and `answer` are 1-based, as on screen (and as in `scores`); `verdict` is `accept` or
//! `reject`; `time` (UTC, RFC 3339 with `Z`) is optional.
//!
//! Every field is checked and a line that fails is refused, never guessed at: a verdict trains
//! the selector, so a wrong one teaches the wrong thing. The reviewer is a person's name, as
//! given; `final` and `imported` carry meaning in the log and are refused (the import says so).

use serde_json::Value;

use super::{required_id, RecordParser};
use crate::data::fields::{type_name, Fields};
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{Record, VerdictImport};

/// The longest reviewer name taken from a file (characters), as for edits.
const MAX_REVIEWER_CHARS: usize = 100;

pub struct VerdictsParser;

impl RecordParser for VerdictsParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let sample_id = required_id(&fields, &["sample_id", "id"])?;
        let position = |key: &str| -> anyhow::Result<usize> {
            match fields.index(&[key]) {
                Some(0) => anyhow::bail!("{loc}: `{key}` is 1-based; found 0"),
                Some(n) => Ok(n),
                None => anyhow::bail!("{loc}: missing or non-numeric field `{key}` (1-based)"),
            }
        };
        let round = position("round")?;
        let answer = position("answer")?;
        let accepted = match fields.get(&["verdict"]) {
            Some((_, Value::String(v))) => match v.trim().to_ascii_lowercase().as_str() {
                "accept" => true,
                "reject" => false,
                other => {
                    anyhow::bail!(
                        "{loc}: `verdict` is {other:?}; expected \"accept\" or \"reject\""
                    )
                }
            },
            Some((_, other)) => anyhow::bail!(
                "{loc}: `verdict` is {}; expected \"accept\" or \"reject\"",
                type_name(other)
            ),
            None => anyhow::bail!("{loc}: missing field `verdict` (\"accept\" or \"reject\")"),
        };
        let reviewer = fields
            .required_text(&["reviewer"], warnings)?
            .trim()
            .to_string();
        anyhow::ensure!(
            reviewer.chars().count() <= MAX_REVIEWER_CHARS
                && !reviewer.chars().any(char::is_control),
            "{loc}: `reviewer` is not a name (at most {MAX_REVIEWER_CHARS} characters, no control characters)"
        );
        let time = match fields.get(&["time"]) {
            None => None,
            Some((_, Value::String(t))) => Some(utc_time(t).ok_or_else(|| {
                anyhow::anyhow!(
                    "{loc}: `time` {t:?} is not a UTC time like 2026-12-01T09:30:00.000Z"
                )
            })?),
            Some((_, other)) => anyhow::bail!(
                "{loc}: `time` is {}; expected text like 2026-12-01T09:30:00.000Z",
                type_name(other)
            ),
        };
        Ok(vec![Record::Verdict(VerdictImport {
            sample_id,
            round,
            answer,
            accepted,
            reviewer,
            time,
        })])
    }
}

/// `text` as the log writes times (`YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC) when it is one: RFC 3339 in
/// UTC (`Z`), seconds' fraction optional (cut or padded to milliseconds). None otherwise.
pub fn utc_time(text: &str) -> Option<String> {
    let t = text.trim();
    let body = t.strip_suffix('Z').or_else(|| t.strip_suffix('z'))?;
    let (main, fraction) = match body.split_once('.') {
        Some((main, f)) => (main, f),
        None => (body, ""),
    };
    let b = main.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = main.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if !fraction.bytes().all(|c| c.is_ascii_digit()) || (body.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis}Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> anyhow::Result<Vec<Record>> {
        VerdictsParser.parse(
            &value,
            RecordLoc { line: 3, index: 2 },
            &mut Warnings::default(),
        )
    }

    #[test]
    fn a_verdict_line_reads_into_one_event_with_its_time_in_the_logs_spelling() {
        let records = parse(json!({"sample_id": "fig-1", "round": 2, "answer": 1,
            "verdict": "Reject", "reviewer": " dr_lee ", "time": "2026-12-01T09:30:00Z"}))
        .unwrap();
        assert_eq!(
            records,
            vec![Record::Verdict(VerdictImport {
                sample_id: "fig-1".into(),
                round: 2,
                answer: 1,
                accepted: false,
                reviewer: "dr_lee".into(),
                time: Some("2026-12-01T09:30:00.000Z".into()),
            })]
        );
    }

    #[test]
    fn bad_verdict_lines_are_refused_naming_the_line_and_the_field() {
        let base = json!({"sample_id": "fig-1", "round": 1, "answer": 1, "verdict": "accept", "reviewer": "ana"});
        let with = |key: &str, v: Value| {
            let mut b = base.clone();
            b[key] = v;
            b
        };
        let without = |key: &str| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().remove(key);
            b
        };
        for (record, says) in [
            (with("round", json!(0)), "`round` is 1-based"),
            (with("answer", json!("two")), "`answer` (1-based)"),
            (without("answer"), "`answer` (1-based)"),
            (
                with("verdict", json!("maybe")),
                "expected \"accept\" or \"reject\"",
            ),
            (with("verdict", json!(true)), "`verdict` is a boolean"),
            (without("verdict"), "missing field `verdict`"),
            (without("reviewer"), "missing field `reviewer`"),
            (with("reviewer", json!("a\u{1b}[2Jb")), "not a name"),
            (with("time", json!("yesterday")), "not a UTC time"),
            (
                with("time", json!("2026-02-30T00:00:00Z")),
                "not a UTC time",
            ),
            (without("sample_id"), "missing field `sample_id`"),
        ] {
            let err = parse(record.clone()).unwrap_err().to_string();
            assert!(err.contains("line 3"), "{record}: {err}");
            assert!(err.contains(says), "{record}: {err}");
        }
        assert!(parse(base).is_ok());
    }

    #[test]
    fn utc_times_are_checked_and_written_as_the_log_writes_them() {
        assert_eq!(
            utc_time("2024-02-29T23:59:59.5Z").as_deref(),
            Some("2024-02-29T23:59:59.500Z")
        );
        assert_eq!(
            utc_time("2026-12-08T00:25:38.123456Z").as_deref(),
            Some("2026-12-08T00:25:38.123Z")
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-12-08T00:25:38+01:00",
            "2026-12-08T24:00:00Z",
            "2026-12-08",
            "2026-12-08T00:25:38.Z",
        ] {
            assert_eq!(utc_time(bad), None, "{bad}");
        }
    }
}
