//! LLaVA / LLaVA-Med / BioMed-VITAL instruction records: `{id, image, conversations, domain?}`.

use serde_json::Value;

use super::{conversation_rounds, figure_fields, required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::Record;

pub struct LlavaParser;

impl RecordParser for LlavaParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let id = required_id(&fields, &["id", "pair_id"])?;
        let mut sample = figure_fields(&fields, id, warnings);
        sample.rounds = conversation_rounds(&fields, warnings)?;
        if sample.rounds.is_empty() {
            warnings.add("record without questions skipped", loc.to_string());
            return Ok(Vec::new());
        }
        Ok(vec![Record::Sample {
            sample,
            verdicts: Vec::new(),
        }])
    }

    fn parse_plain(&mut self, bytes: &[u8], _loc: RecordLoc) -> Option<Vec<Record>> {
        let sample = plain::sample(bytes)?;
        Some(vec![Record::Sample {
            sample,
            verdicts: Vec::new(),
        }])
    }
}

/// The release shape read straight from the bytes into a [`Sample`]: exactly the keys a
/// BioMed-VITAL / LLaVA-Med release writes (`id`, `image`, `domain` flags, `from`/`value`
/// turns, `fig_caption`, `fig_label`, `in_text_mention` with `tokens` text), each string
/// deserialised once into the sample's own `String`. Anything else (another key or spelling, a
/// number where text belongs, a duplicate key, a turn or field that would warn, a broken
/// record) gives `None`, and the lenient `Value` path reads the record.
mod plain {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    use serde::Deserialize;

    use crate::data::fields::MAX_FIELD_CHARS;
    use crate::data::{Round, Sample};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Record {
        id: Option<String>,
        image: Option<String>,
        domain: Option<Domains>,
        conversations: Vec<Turn>,
        fig_caption: Option<String>,
        fig_label: Option<String>,
        in_text_mention: Option<Vec<Mention>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Turn {
        from: String,
        value: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Mention {
        tokens: Option<String>,
        #[allow(dead_code)]
        entities: Option<IgnoredAny>,
    }

    /// `{name: true|false, …}`: the names whose value is `true`, in the file's order.
    struct Domains(Vec<String>);

    impl<'de> Deserialize<'de> for Domains {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Flags;
            impl<'de> Visitor<'de> for Flags {
                type Value = Domains;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object of domain flags")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Domains, A::Error> {
                    let mut seen: Vec<String> = Vec::new();
                    let mut on = Vec::new();
                    while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
                        // A repeated flag: the `Value` path's map decides which one counts.
                        if seen.contains(&name) {
                            return Err(serde::de::Error::custom("repeated domain flag"));
                        }
                        if value.as_bool() == Some(true) {
                            on.push(name.clone());
                        }
                        seen.push(name);
                    }
                    Ok(Domains(on))
                }
            }
            d.deserialize_map(Flags)
        }
    }

    /// Text the `Value` path keeps as it is (no NUL to take out, nothing to cut).
    fn plain(text: &str) -> bool {
        text.len() <= MAX_FIELD_CHARS && !text.contains('\0')
    }

    fn trimmed(text: String) -> String {
        let t = text.trim();
        if t.len() == text.len() {
            text
        } else {
            t.to_string()
        }
    }

    pub(super) fn sample(bytes: &[u8]) -> Option<Sample> {
        let record: Record = serde_json::from_slice(bytes).ok()?;
        let id = trimmed(record.id?);
        if id.is_empty() {
            return None;
        }
        let texts = [&record.image, &record.fig_caption, &record.fig_label];
        if !texts.into_iter().flatten().all(|t| plain(t)) {
            return None;
        }
        let mut mentions = Vec::new();
        for m in record.in_text_mention.unwrap_or_default() {
            let Some(tokens) = m.tokens else { continue };
            if !plain(&tokens) {
                return None;
            }
            let tokens = trimmed(tokens);
            if !tokens.is_empty() {
                mentions.push(tokens);
            }
        }
        let mut rounds: Vec<Round> = Vec::new();
        for turn in record.conversations {
            if !plain(&turn.from) || !plain(&turn.value) || turn.value.trim().is_empty() {
                return None;
            }
            let speaker = turn.from.as_str();
            let is = |names: &[&str]| names.iter().any(|n| speaker.eq_ignore_ascii_case(n));
            if is(&["human", "user"]) {
                rounds.push(Round {
                    question: turn.value,
                    answers: Vec::new(),
                });
            } else if is(&["gpt", "assistant", "model"]) {
                // A second answer or one before any question warns: the `Value` path says so.
                match rounds.last_mut() {
                    Some(round) if round.answers.is_empty() => round.answers.push(turn.value),
                    _ => return None,
                }
            } else {
                return None;
            }
        }
        // No question, or an unanswered last one, warns.
        if rounds.last().is_none_or(|r| r.answers.is_empty()) {
            return None;
        }
        Some(Sample {
            id,
            image: record.image,
            caption: record.fig_caption.unwrap_or_default(),
            mentions,
            fig_label: record.fig_label,
            domains: record.domain.map(|d| d.0).unwrap_or_default(),
            rounds,
            is_demo: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// A record as the releases write it.
    fn release_record() -> Value {
        json!({
            "id": "PMC1000000_F1",
            "image": "PMC1000000/fig-1.jpg",
            "domain": {"chest_xray": false, "mri": true, "ct_scan": true, "histology": false, "gross": false},
            "conversations": [
                {"from": "human", "value": "What could explain the septa?\n<image>"},
                {"from": "gpt", "value": "A mass with \"central\" necrosis — 3–6 cm\tin the\\left pelvis."},
                {"from": "Human", "value": "Which features?"},
                {"from": "GPT", "value": "An enhancing nodule."}
            ],
            "fig_caption": "Representative CT image. Scale bar, 2.3 cm.",
            "fig_label": "Figure 3",
            "in_text_mention": [
                {"tokens": " Follow-up imaging ( Figure 3 ) showed oedema . ", "entities": [{"type": "figure", "entity_id": "3", "start_tok": 7, "end_tok": 9}]},
                {"tokens": "   ", "entities": []},
                {"entities": []},
                {"tokens": null}
            ]
        })
    }

    fn with(mut record: Value, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        edit(record.as_object_mut().unwrap());
        record
    }

    /// The plain path's records, and the lenient path's with its warnings.
    fn both(text: &str) -> (Option<Vec<Record>>, anyhow::Result<Vec<Record>>, Warnings) {
        let loc = RecordLoc { index: 0, line: 1 };
        let plain = LlavaParser.parse_plain(text.as_bytes(), loc);
        let mut warnings = Warnings::default();
        let lenient = serde_json::from_str(text)
            .map_err(anyhow::Error::from)
            .and_then(|value| LlavaParser.parse(&value, loc, &mut warnings));
        (plain, lenient, warnings)
    }

    #[test]
    fn a_release_record_reads_the_same_straight_from_its_bytes_as_through_a_value() {
        let text = release_record().to_string();
        let (plain, lenient, warnings) = both(&text);
        let lenient = lenient.unwrap();
        assert_eq!(warnings.counts().len(), 0, "{warnings}");
        assert_eq!(format!("{plain:?}"), format!("{:?}", Some(&lenient)));
        let Some(Record::Sample { sample, .. }) = lenient.first() else {
            panic!("a sample")
        };
        assert_eq!(sample.domains, ["mri", "ct_scan"]);
        assert_eq!(
            sample.mentions,
            ["Follow-up imaging ( Figure 3 ) showed oedema ."]
        );
        assert_eq!(sample.rounds.len(), 2);
        // Pretty-printed (other whitespace, the same record).
        let pretty = serde_json::to_string_pretty(&release_record()).unwrap();
        assert_eq!(format!("{:?}", both(&pretty).0), format!("{plain:?}"));
    }

    /// Every way a record strays from the release shape either reads the same on both paths
    /// without a warning, or is left to the lenient path (`None`), which warns or fails as it
    /// always did.
    #[test]
    fn a_record_off_the_release_shape_is_left_to_the_lenient_parser() {
        let base = release_record;
        let turns = |list: Value| {
            move |o: &mut serde_json::Map<String, Value>| {
                o.insert("conversations".into(), list);
            }
        };
        let set = |key: &'static str, value: Value| {
            move |o: &mut serde_json::Map<String, Value>| {
                o.insert(key.into(), value);
            }
        };
        let cases: Vec<(&str, Value, bool)> = vec![
            ("padded id", with(base(), set("id", json!("  x1 "))), true),
            (
                "null image and label",
                with(
                    with(base(), set("image", Value::Null)),
                    set("fig_label", Value::Null),
                ),
                true,
            ),
            (
                "no optional fields",
                json!({"id": "a", "conversations": [{"from": "user", "value": "q"}, {"from": "assistant", "value": "a"}]}),
                true,
            ),
            (
                "null domain",
                with(base(), set("domain", Value::Null)),
                true,
            ),
            (
                "a domain flag that is not a boolean",
                with(base(), set("domain", json!({"mri": 1, "ct_scan": true}))),
                true,
            ),
            (
                "empty mentions",
                with(base(), set("in_text_mention", json!([]))),
                true,
            ),
            ("empty id", with(base(), set("id", json!("  "))), false),
            ("numeric id", with(base(), set("id", json!(17))), false),
            ("null id", with(base(), set("id", Value::Null)), false),
            (
                "pair_id instead of id",
                with(
                    with(base(), |o| {
                        o.remove("id");
                    }),
                    set("pair_id", json!("p")),
                ),
                false,
            ),
            (
                "imgs instead of image",
                with(
                    with(base(), |o| {
                        o.remove("image");
                    }),
                    set("imgs", json!("a.png")),
                ),
                false,
            ),
            ("another key", with(base(), set("pmid", json!(12))), false),
            (
                "number caption",
                with(base(), set("fig_caption", json!(3))),
                false,
            ),
            (
                "NUL in the caption",
                with(base(), set("fig_caption", json!("a\u{0}b"))),
                false,
            ),
            (
                "huge caption",
                with(
                    base(),
                    set(
                        "fig_caption",
                        json!("x".repeat(crate::data::fields::MAX_FIELD_CHARS + 1)),
                    ),
                ),
                false,
            ),
            (
                "domain list",
                with(base(), set("domain", json!(["mri"]))),
                false,
            ),
            (
                "domain text",
                with(base(), set("domain", json!("mri"))),
                false,
            ),
            (
                "mention text",
                with(base(), set("in_text_mention", json!("As seen in Fig. 2"))),
                false,
            ),
            (
                "mention token list",
                with(
                    base(),
                    set("in_text_mention", json!([{"tokens": ["As", "seen"]}])),
                ),
                false,
            ),
            (
                "mention with text",
                with(base(), set("in_text_mention", json!([{"text": "As seen"}]))),
                false,
            ),
            (
                "NUL in a mention",
                with(
                    base(),
                    set("in_text_mention", json!([{"tokens": "a\u{0}"}])),
                ),
                false,
            ),
            (
                "role and content",
                with(
                    base(),
                    turns(
                        json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
                    ),
                ),
                false,
            ),
            (
                "two answers in a row",
                with(
                    base(),
                    turns(
                        json!([{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "gpt", "value": "b"}]),
                    ),
                ),
                false,
            ),
            (
                "answer first",
                with(
                    base(),
                    turns(
                        json!([{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "b"}]),
                    ),
                ),
                false,
            ),
            (
                "unknown speaker",
                with(
                    base(),
                    turns(
                        json!([{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "b"}]),
                    ),
                ),
                false,
            ),
            (
                "empty turn",
                with(
                    base(),
                    turns(json!([{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}])),
                ),
                false,
            ),
            (
                "unanswered last question",
                with(base(), turns(json!([{"from": "human", "value": "q"}]))),
                false,
            ),
            ("no turns", with(base(), turns(json!([]))), false),
            (
                "a turn that is text",
                with(base(), turns(json!(["q"]))),
                false,
            ),
            (
                "conversations missing",
                with(base(), |o| {
                    o.remove("conversations");
                }),
                false,
            ),
            (
                "NUL in an answer",
                with(
                    base(),
                    turns(
                        json!([{"from": "human", "value": "q"}, {"from": "gpt", "value": "a\u{0}"}]),
                    ),
                ),
                false,
            ),
            ("not an object", json!(["a"]), false),
        ];
        for (what, record, plain_expected) in cases {
            let (plain, lenient, warnings) = both(&record.to_string());
            assert_eq!(plain.is_some(), plain_expected, "{what}");
            if let Some(plain) = plain {
                assert_eq!(warnings.counts().len(), 0, "{what}: {warnings}");
                assert_eq!(
                    format!("{plain:?}"),
                    format!("{:?}", lenient.unwrap()),
                    "{what}"
                );
            }
        }
        // Keys the releases never repeat: the lenient parser decides which one counts.
        for text in [
            r#"{"id": "a", "id": "b", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#,
            r#"{"id": "a", "domain": {"mri": true, "mri": false}, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}"#,
            r#"{"id": "a", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]"#,
        ] {
            assert!(both(text).0.is_none(), "{text}");
        }
    }
}
