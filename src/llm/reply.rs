//! Reading what the model wrote: conversations in `User:` / `Assistant:` lines (or the two-answer
//! form `User:` / `Answer 1:` / `Answer 2:`) and judge scores (the first number on the first line).

use crate::data::Round;

/// A reply that could be read, with what was odd about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub rounds: Vec<Round>,
    /// E.g. "incomplete last round dropped"; stored replies with notes are still usable.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    User,
    /// 0-based answer slot (`Assistant:` and `Answer 1:` are slot 0).
    Answer(usize),
}

/// Recognises a turn tag at the start of a line: `User:`, `**User:**`, `Human:`, `Assistant:`,
/// `GPT:`, `Answer 1:`, `Answer 2:` (any case), returning the tag and the rest of the line.
fn tag_of(line: &str) -> Option<(Tag, &str)> {
    let trimmed = line
        .trim_start()
        .trim_start_matches(['*', '#', '-', '>', ' ']);
    let colon = trimmed.find(':')?;
    if colon > 16 {
        return None;
    }
    let name = trimmed[..colon]
        .trim()
        .trim_matches('*')
        .trim()
        .to_ascii_lowercase();
    let rest = trimmed[colon + 1..].trim_start_matches('*').trim();
    let tag = match name.as_str() {
        "user" | "human" | "question" | "q" => Tag::User,
        "assistant" | "gpt" | "ai" | "answer" | "a" => Tag::Answer(0),
        other => {
            let n: usize = other
                .strip_prefix("answer")
                .or_else(|| other.strip_prefix("assistant"))?
                .trim()
                .parse()
                .ok()?;
            if n == 0 {
                return None;
            }
            Tag::Answer(n - 1)
        }
    };
    Some((tag, rest))
}

/// Parses a generated conversation. `answers` is 1 (`User`/`Assistant`) or 2 (`Answer 1`/`Answer 2`).
/// Lines without a tag continue the turn above them. Text before the first `User:` is ignored.
pub fn parse_conversation(reply: &str, answers: usize) -> Result<Parsed, String> {
    let mut rounds: Vec<(String, Vec<Option<String>>)> = Vec::new();
    let mut notes = Vec::new();
    let mut current: Option<Tag> = None;
    let mut preamble = false;
    for line in reply.lines() {
        match tag_of(line) {
            Some((Tag::User, rest)) => {
                rounds.push((rest.to_string(), vec![None; answers]));
                current = Some(Tag::User);
            }
            Some((Tag::Answer(slot), rest)) => {
                let Some((_, slots)) = rounds.last_mut() else {
                    preamble = true;
                    continue;
                };
                if slot >= answers {
                    return Err(format!(
                        "round {} has an answer {} but {answers} answer(s) were asked for",
                        rounds.len(),
                        slot + 1
                    ));
                }
                if slots[slot].is_some() {
                    return Err(format!(
                        "round {} has answer {} twice",
                        rounds.len(),
                        slot + 1
                    ));
                }
                slots[slot] = Some(rest.to_string());
                current = Some(Tag::Answer(slot));
            }
            None => {
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                let Some((question, slots)) = rounds.last_mut() else {
                    preamble = true;
                    continue;
                };
                let target = match current {
                    Some(Tag::User) | None => question,
                    Some(Tag::Answer(slot)) => slots[slot].get_or_insert_with(String::new),
                };
                if !target.is_empty() {
                    target.push('\n');
                }
                target.push_str(text);
            }
        }
    }
    if rounds.is_empty() {
        return Err(if answers == 1 {
            "no `User:` line in the reply".to_string()
        } else {
            "no `User:` line in the reply (expected `User:` / `Answer 1:` / `Answer 2:`)"
                .to_string()
        });
    }
    if preamble {
        notes.push("text before the first question ignored".to_string());
    }
    let complete = |(q, slots): &(String, Vec<Option<String>>)| {
        !q.trim().is_empty()
            && slots
                .iter()
                .all(|s| s.as_deref().is_some_and(|t| !t.trim().is_empty()))
    };
    // A reply cut off by the token limit ends in a half round: drop it, keep the rest.
    if rounds.len() > 1 && !complete(rounds.last().expect("not empty")) {
        rounds.pop();
        notes.push("incomplete last round dropped".to_string());
    }
    let mut out = Vec::with_capacity(rounds.len());
    for (i, round) in rounds.iter().enumerate() {
        if !complete(round) {
            let (q, slots) = round;
            let missing: Vec<String> = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.as_deref().is_none_or(|t| t.trim().is_empty()))
                .map(|(a, _)| {
                    if answers == 1 {
                        "its answer".to_string()
                    } else {
                        format!("answer {}", a + 1)
                    }
                })
                .collect();
            return Err(if q.trim().is_empty() {
                format!("round {} has an empty question", i + 1)
            } else {
                format!("round {} lacks {}", i + 1, missing.join(" and "))
            });
        }
        out.push(Round {
            question: round.0.trim().to_string(),
            answers: round
                .1
                .iter()
                .map(|s| s.as_deref().unwrap_or("").trim().to_string())
                .collect(),
        });
    }
    Ok(Parsed { rounds: out, notes })
}

/// The judge's score: the first number on the first non-empty line, 0–10.
pub fn parse_score(reply: &str) -> Result<f64, String> {
    Ok(parse_scores(reply, 1)?[0])
}

/// The first `n` numbers on the first non-empty line, each 0–10 (pairwise judging asks for two).
pub fn parse_scores(reply: &str, n: usize) -> Result<Vec<f64>, String> {
    let line = reply
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| "the reply is empty".to_string())?;
    let numbers = numbers_in(line);
    if numbers.len() < n {
        return Err(format!(
            "expected {n} score(s) on the first line, found {}: {:?}",
            numbers.len(),
            shorten(line)
        ));
    }
    let scores: Vec<f64> = numbers.into_iter().take(n).collect();
    if let Some(bad) = scores.iter().find(|s| !(0.0..=10.0).contains(*s)) {
        return Err(format!("score {bad} is outside 0–10: {:?}", shorten(line)));
    }
    Ok(scores)
}

/// Decimal numbers in `text`, in order (`8/10` gives 8 and 10; the caller takes the first).
fn numbers_in(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<f64>| {
        let t = current.trim_end_matches('.');
        if let Ok(v) = t.parse::<f64>() {
            out.push(v);
        }
        current.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '.' && !current.is_empty() && !current.contains('.')) {
            current.push(c);
        } else if !current.is_empty() {
            flush(&mut current, &mut out);
        }
    }
    if !current.is_empty() {
        flush(&mut current, &mut out);
    }
    out
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_conversation_with_continuations_and_markdown() {
        let reply = "Sure, here it is.\n\nUser: What modality is this?\nAssistant: A CT scan.\n\
                     **User:** Where is the lesion?\n**Assistant:** In the left lobe,\nnear the hilum.\n";
        let p = parse_conversation(reply, 1).unwrap();
        assert_eq!(p.rounds.len(), 2);
        assert_eq!(p.rounds[0].question, "What modality is this?");
        assert_eq!(
            p.rounds[1].answers,
            vec!["In the left lobe,\nnear the hilum."]
        );
        assert_eq!(p.notes, vec!["text before the first question ignored"]);
    }

    #[test]
    fn two_answer_form() {
        let reply =
            "User: Is there a mass?\nAnswer 1: Yes, a 3 cm mass.\nAnswer 2: No mass is seen.\n\
                     User: Which organ?\nAnswer 1: The liver.\nAnswer 2: The spleen.";
        let p = parse_conversation(reply, 2).unwrap();
        assert_eq!(p.rounds.len(), 2);
        assert_eq!(
            p.rounds[0].answers,
            vec!["Yes, a 3 cm mass.", "No mass is seen."]
        );
    }

    #[test]
    fn truncated_last_round_is_dropped_with_a_note() {
        let reply = "User: Q1\nAnswer 1: A\nAnswer 2: B\nUser: Q2\nAnswer 1: half";
        let p = parse_conversation(reply, 2).unwrap();
        assert_eq!(p.rounds.len(), 1);
        assert_eq!(p.notes, vec!["incomplete last round dropped"]);
    }

    #[test]
    fn unusable_replies_say_why() {
        assert!(parse_conversation("I cannot help with that.", 1)
            .unwrap_err()
            .contains("no `User:`"));
        assert!(parse_conversation("User: Q\nAssistant: A\nAnswer 2: B", 1)
            .unwrap_err()
            .contains("answer 2"));
        assert!(parse_conversation(
            "User: Q1\nAnswer 1: A\nUser: Q2\nAnswer 1: C\nAnswer 2: D",
            2
        )
        .unwrap_err()
        .contains("round 1 lacks answer 2"));
        assert!(parse_conversation("User: only a question", 1)
            .unwrap_err()
            .contains("lacks its answer"));
    }

    #[test]
    fn scores_are_the_first_numbers_of_the_first_line() {
        assert_eq!(parse_score("8\nGood answer with 3 points.").unwrap(), 8.0);
        assert_eq!(parse_score("\n  Score: 7.5/10").unwrap(), 7.5);
        assert_eq!(
            parse_scores("9 4\nfirst is better", 2).unwrap(),
            vec![9.0, 4.0]
        );
        assert!(parse_score("Excellent.\n9")
            .unwrap_err()
            .contains("found 0"));
        assert!(parse_score("11").unwrap_err().contains("outside"));
        assert!(parse_score("").unwrap_err().contains("empty"));
        assert!(parse_scores("8\n6", 2).is_err());
    }
}
