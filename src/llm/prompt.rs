//! The generation request (GUIDE steps 2–3): the system text, the demonstrations as text
//! (caption, context, conversation), then the target figure: its image as a base64 data URL with
//! its caption and inline mention.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};

use crate::data::Sample;

// Both system texts follow the method's generation instructions rule by rule (GUIDE section 1,
// step 3), in our own words: a biomedical assistant; the caption and mention are supplementary
// text that helps understand the image, never a source to copy facts or terms from; answers as
// if seeing the image; diverse questions (modality, organ, location, findings, size, counts,
// reasoning; yes/no and open); only questions the image can answer; 4-5 rounds (3-4 with two
// answers); start with the user's question; no overconfident diagnosis; a fixed line format.

/// The generation system text for one answer per question.
pub const SYSTEM_ONE_ANSWER: &str = "\
You are an AI assistant specialised in biomedicine. You receive one biomedical figure: its \
image, its caption, and the sentences of the article that refer to it. The caption and those \
sentences are supplementary text: they are there to help you understand what the image shows.

Write a conversation in which a user asks about the image and you, the assistant, answer as \
someone who is looking at the image, not reading about it. Rules:
- Write 4 to 5 rounds. Start with the user's question.
- Make the questions diverse: the imaging modality, the organ or body part, the location and \
side of findings, the findings themselves, their size or extent, counts of structures or \
lesions, comparisons, and reasoning about what the image implies. Mix yes/no questions with \
open-ended ones.
- Ask only what can be seen in the image or confidently worked out from it.
- Do not copy specific facts, numbers, names or terms from the supplementary text into the \
conversation. Use it to understand the image, then describe and reason about what is visible \
in your own words, with precise medical terminology.
- Never refer to the text (no \"the caption says\", no \"as mentioned\"): talk about the image.
- Do not make overconfident diagnoses: when the image does not settle a point, say so and \
describe what is visible instead.
- Output only the conversation, one line per turn, in exactly this form:
User: <question>
Assistant: <answer>";

/// The generation system text for two distinct answers per question (what clinicians judge).
pub const SYSTEM_TWO_ANSWERS: &str = "\
You are an AI assistant specialised in biomedicine. You receive one biomedical figure: its \
image, its caption, and the sentences of the article that refer to it. The caption and those \
sentences are supplementary text: they are there to help you understand what the image shows.

Write a conversation in which a user asks about the image and you, the assistant, give two \
distinct candidate answers to every question, each as someone who is looking at the image, not \
reading about it. Rules:
- Write 3 to 4 rounds. Start with the user's question.
- Make the questions diverse: the imaging modality, the organ or body part, the location and \
side of findings, the findings themselves, their size or extent, counts of structures or \
lesions, comparisons, and reasoning about what the image implies. Mix yes/no questions with \
open-ended ones.
- Ask only what can be seen in the image or confidently worked out from it.
- The two answers to a question must differ in content or approach, not only in wording.
- Do not copy specific facts, numbers, names or terms from the supplementary text into the \
conversation. Use it to understand the image, then describe and reason about what is visible \
in your own words, with precise medical terminology.
- Never refer to the text (no \"the caption says\", no \"as mentioned\"): talk about the image.
- Do not make overconfident diagnoses: when the image does not settle a point, say so and \
describe what is visible instead.
- Output only the conversation, one line per turn, in exactly this form:
User: <question>
Answer 1: <first answer>
Answer 2: <second answer>";

/// Generation settings that shape the request body.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    pub model: String,
    /// 1 or 2 answers per question.
    pub answers: usize,
    /// None: not sent, so the endpoint's default applies (the method's).
    pub temperature: Option<f64>,
    pub max_tokens: u32,
}

/// Each demonstration as its own pair of turns (the method's): a user turn with the example's
/// caption and context, an assistant turn with its conversation in the reply format.
pub fn demonstration_turns(demos: &[Sample]) -> Vec<Value> {
    let mut turns = Vec::new();
    for demo in demos {
        let mut user = String::from("An example figure (its image is not shown).\n");
        user.push_str(&format!("Caption: {}\n", demo.caption.trim()));
        if !demo.mentions.is_empty() {
            user.push_str(&format!("Inline mention: {}\n", demo.mentions.join(" ")));
        }
        let mut conversation = String::new();
        for round in &demo.rounds {
            conversation.push_str(&format!(
                "User: {}\n",
                crate::data::display_text(&round.question)
            ));
            for answer in &round.answers {
                conversation.push_str(&format!("Assistant: {}\n", answer.trim()));
            }
        }
        turns.push(json!({"role": "user", "content": user.trim_end()}));
        turns.push(json!({"role": "assistant", "content": conversation.trim_end()}));
    }
    turns
}

/// The demonstrations as one text block, numbered, each with caption, context and conversation.
pub fn demonstrations_text(demos: &[Sample]) -> String {
    let mut text = String::from(
        "Here are example conversations that clinicians chose as good, each with its figure's \
         caption and context (their images are not shown). Follow their style, not their content.\n",
    );
    for (i, demo) in demos.iter().enumerate() {
        let domain = demo.domains.first().map(String::as_str).unwrap_or("figure");
        text.push_str(&format!("\n### Example {} ({domain})\n", i + 1));
        text.push_str(&format!("Caption: {}\n", demo.caption.trim()));
        if !demo.mentions.is_empty() {
            text.push_str(&format!("Context: {}\n", demo.mentions.join(" ")));
        }
        text.push_str("Conversation:\n");
        for round in &demo.rounds {
            text.push_str(&format!(
                "User: {}\n",
                crate::data::display_text(&round.question)
            ));
            for answer in &round.answers {
                text.push_str(&format!("Assistant: {}\n", answer.trim()));
            }
        }
    }
    text
}

/// The text that goes with the target image.
pub fn figure_text(figure: &Sample, answers: usize) -> String {
    let mut text = String::from("Now the figure to write about (its image is attached).\n");
    text.push_str(&format!("Caption: {}\n", figure.caption.trim()));
    if !figure.mentions.is_empty() {
        text.push_str(&format!("Inline mention: {}\n", figure.mentions.join(" ")));
    }
    text.push_str(if answers == 2 {
        "\nWrite the conversation now, with `User:`, `Answer 1:` and `Answer 2:` lines."
    } else {
        "\nWrite the conversation now, with `User:` and `Assistant:` lines."
    });
    text
}

/// An image file as a `data:` URL, if it is one vital may send (under `max_bytes`, decodes as an
/// image; see [`crate::image_files`]).
pub fn image_data_url(path: &Path, max_bytes: u64) -> Result<String, String> {
    let bytes = crate::image_files::read_sendable_image(path, max_bytes)?;
    Ok(format!(
        "data:{};base64,{}",
        mime_of(path, &bytes),
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    ))
}

/// The image's MIME type from its first bytes, else from its extension.
pub fn mime_of(path: &Path, bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::Gif) => "image/gif",
        Ok(image::ImageFormat::WebP) => "image/webp",
        Ok(image::ImageFormat::Bmp) => "image/bmp",
        Ok(image::ImageFormat::Tiff) => "image/tiff",
        _ => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => "image/png",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        },
    }
}

/// The full chat-completions request for one figure, the demonstrations as one text block.
pub fn generation_request(
    settings: &GenerationSettings,
    demos_text: &str,
    figure: &Sample,
    image_url: &str,
) -> Value {
    request_body(settings, Vec::new(), demos_text, figure, image_url)
}

/// The request with each demonstration as its own user/assistant turns before the figure.
pub fn generation_request_with_turns(
    settings: &GenerationSettings,
    demos: &[Sample],
    figure: &Sample,
    image_url: &str,
) -> Value {
    request_body(settings, demonstration_turns(demos), "", figure, image_url)
}

fn request_body(
    settings: &GenerationSettings,
    turns: Vec<Value>,
    demos_text: &str,
    figure: &Sample,
    image_url: &str,
) -> Value {
    let system = if settings.answers == 2 {
        SYSTEM_TWO_ANSWERS
    } else {
        SYSTEM_ONE_ANSWER
    };
    let mut content = Vec::new();
    if !demos_text.is_empty() {
        content.push(json!({"type": "text", "text": demos_text}));
    }
    content.push(json!({"type": "image_url", "image_url": {"url": image_url}}));
    content.push(json!({"type": "text", "text": figure_text(figure, settings.answers)}));
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(turns);
    messages.push(json!({"role": "user", "content": content}));
    let mut body = json!({
        "model": settings.model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
    });
    if let Some(t) = settings.temperature {
        body["temperature"] = json!(t);
    }
    body
}

/// A rough token count for the rate limiter: ~4 characters a token for text, a fixed count per
/// image, plus the completion budget.
pub fn estimate_tokens(body: &Value, image_tokens: u64) -> u64 {
    fn walk(v: &Value, image_tokens: u64) -> u64 {
        match v {
            Value::String(s) if s.starts_with("data:") => image_tokens,
            Value::String(s) => s.len() as u64 / 4 + 1,
            Value::Array(items) => items.iter().map(|i| walk(i, image_tokens)).sum(),
            Value::Object(o) => o.values().map(|i| walk(i, image_tokens)).sum(),
            _ => 0,
        }
    }
    let completion = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(512);
    walk(body.get("messages").unwrap_or(&Value::Null), image_tokens) + completion
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Round;

    fn demo() -> Sample {
        Sample {
            id: "demo-1".into(),
            caption: "Axial CT of the head.".into(),
            mentions: vec!["Figure 2 shows a hematoma.".into()],
            domains: vec!["ct_scan".into()],
            rounds: vec![Round {
                question: "<image>\nWhat modality?".into(),
                answers: vec!["CT.".into()],
            }],
            is_demo: true,
            ..Default::default()
        }
    }

    #[test]
    fn request_carries_system_demos_image_and_figure_text_in_order() {
        let settings = GenerationSettings {
            model: "m".into(),
            answers: 2,
            temperature: Some(0.7),
            max_tokens: 100,
        };
        let demos = demonstrations_text(&[demo()]);
        assert!(demos.contains("Example 1 (ct_scan)") && demos.contains("User: What modality?"));
        assert!(!demos.contains("<image>"));
        let figure = Sample {
            caption: "MRI of the knee.".into(),
            mentions: vec!["See Fig. 1.".into()],
            ..Default::default()
        };
        let body = generation_request(&settings, &demos, &figure, "data:image/png;base64,AA==");
        let messages = body["messages"].as_array().unwrap();
        assert!(messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("Answer 2:"));
        let parts = messages[1]["content"].as_array().unwrap();
        assert_eq!(parts[0]["type"], "text");
        assert_eq!(parts[1]["image_url"]["url"], "data:image/png;base64,AA==");
        let text = parts[2]["text"].as_str().unwrap();
        assert!(
            text.contains("Caption: MRI of the knee.")
                && text.contains("Inline mention: See Fig. 1.")
        );
        assert!(estimate_tokens(&body, 765) > 765 + 100);
    }

    #[test]
    fn demonstrations_go_as_their_own_turns_and_an_unset_temperature_is_not_sent() {
        let settings = GenerationSettings {
            model: "m".into(),
            answers: 1,
            temperature: None,
            max_tokens: 4096,
        };
        let figure = Sample {
            caption: "MRI of the knee.".into(),
            ..Default::default()
        };
        let body = generation_request_with_turns(&settings, &[demo(), demo()], &figure, "data:x");
        assert!(body.get("temperature").is_none(), "{body}");
        assert_eq!(body["max_tokens"], 4096);
        let messages = body["messages"].as_array().unwrap();
        let roles: Vec<&str> = messages
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "user", "assistant", "user"]
        );
        let example = messages[1]["content"].as_str().unwrap();
        assert!(
            example.contains("Caption: Axial CT of the head."),
            "{example}"
        );
        assert!(example.contains("Inline mention: Figure 2 shows a hematoma."));
        assert_eq!(
            messages[2]["content"],
            "User: What modality?\nAssistant: CT."
        );
        let last = messages[5]["content"].as_array().unwrap();
        assert_eq!(last[0]["image_url"]["url"], "data:x");
        assert!(last[1]["text"]
            .as_str()
            .unwrap()
            .contains("MRI of the knee."));
    }

    #[test]
    fn system_texts_forbid_copying_facts_and_terms_from_the_supplementary_text() {
        for text in [SYSTEM_ONE_ANSWER, SYSTEM_TWO_ANSWERS] {
            assert!(text.contains(
                "Do not copy specific facts, numbers, names or terms from the supplementary text"
            ));
            assert!(
                text.contains("answer as")
                    || text.contains("each as someone who is looking at the image")
            );
            assert!(text.contains("Ask only what can be seen in the image"));
            assert!(!text.contains("Use the terminology of the figure's caption"));
        }
    }

    #[test]
    fn system_texts_carry_the_method_requirements() {
        for (text, rounds) in [
            (SYSTEM_ONE_ANSWER, "4 to 5"),
            (SYSTEM_TWO_ANSWERS, "3 to 4"),
        ] {
            for needle in [
                rounds,
                "modality",
                "yes/no",
                "overconfident",
                "terminology",
                "Start with the user",
            ] {
                assert!(text.contains(needle), "{needle}");
            }
        }
    }
}
