//! The judge request (GUIDE step 5): the rubric, then the figure (image when it can be found,
//! caption, context) with the question and the answer(s); the score is the first number on the
//! reply's first line (two numbers for pairwise judging).

use serde_json::{json, Value};

/// The method's rubric, used unless `--rubric FILE` gives another.
pub const DEFAULT_RUBRIC: &str = "\
You are a biomedical expert reviewing data for training a biomedical vision-language \
assistant. You will see a biomedical figure (its image when available, its caption and the \
text that mentions it), a question a user asked about the image, and an AI assistant's answer.

Rate the answer on a scale of 0 to 10 (higher is better), considering:
- scope and relevance: is the question about this image and caption, and does it stay in scope;
- value of this question-answer pair as fine-tuning data for a biomedical assistant;
- whether the answer addresses the question that was asked;
- medical accuracy, and no overconfident diagnosis beyond what the image and text support;
- utility to a clinician or a student;
- whether the answer recognises and uses the content of the image;
- clarity, depth and medical precision.

Output the score alone on the first line, as a number from 0 to 10. On the following lines, \
give a short justification.";

/// The system role when the rubric goes in the user message (the method's layout).
pub const JUDGE_ROLE: &str = "You are a careful biomedical expert who checks the quality of \
answers written by an AI assistant about biomedical figures.";

/// Appended to the rubric when two answers are judged together.
pub const PAIRWISE_SUFFIX: &str = "\n\nTwo answers to the same question are shown, Answer 1 and \
Answer 2. Score each of them separately. Output the two scores on the first line, Answer 1's \
then Answer 2's, separated by a space (e.g. `7 4`), and nothing else on that line. Judge each \
on its own merits; the order they are shown in says nothing about their quality.";

/// What one judge request is about.
#[derive(Debug, Clone)]
pub struct JudgeItem {
    pub caption: String,
    pub mentions: Vec<String>,
    pub question: String,
    /// One answer, or two for pairwise judging.
    pub answers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct JudgeSettings {
    pub model: String,
    pub rubric: String,
    /// None: not sent, so the endpoint's default applies (the method's).
    pub temperature: Option<f64>,
    pub max_tokens: u32,
    /// The rubric opens the user message after a short system role (the method's layout),
    /// instead of being the system message.
    pub rubric_in_user: bool,
}

/// The chat-completions request judging `item`; `image_url` is a data URL when the image exists.
pub fn judge_request(settings: &JudgeSettings, item: &JudgeItem, image_url: Option<&str>) -> Value {
    let pairwise = item.answers.len() > 1;
    let rubric = if pairwise {
        format!("{}{PAIRWISE_SUFFIX}", settings.rubric.trim_end())
    } else {
        settings.rubric.trim_end().to_string()
    };
    let (system, mut text) = if settings.rubric_in_user {
        (JUDGE_ROLE.to_string(), format!("{rubric}\n\n"))
    } else {
        (rubric, String::new())
    };
    text.push_str(&format!("Caption: {}\n", item.caption.trim()));
    if !item.mentions.is_empty() {
        text.push_str(&format!("Context: {}\n", item.mentions.join(" ")));
    }
    text.push_str(&format!(
        "\nQuestion: {}\n",
        crate::data::display_text(&item.question)
    ));
    if pairwise {
        for (i, a) in item.answers.iter().enumerate() {
            text.push_str(&format!("\nAnswer {}: {}\n", i + 1, a.trim()));
        }
        text.push_str("\nThe two scores, on the first line:");
    } else {
        text.push_str(&format!("\nAnswer: {}\n", item.answers[0].trim()));
        text.push_str("\nThe score, on the first line:");
    }
    let mut content = Vec::new();
    if let Some(url) = image_url {
        content.push(json!({"type": "image_url", "image_url": {"url": url}}));
    } else {
        text.insert_str(0, "(The image is not available; judge from the text.)\n");
    }
    content.push(json!({"type": "text", "text": text}));
    let mut body = json!({
        "model": settings.model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": content},
        ],
        "max_tokens": settings.max_tokens,
    });
    if let Some(t) = settings.temperature {
        body["temperature"] = json!(t);
    }
    body
}

/// The resume key of a judge request: its body together with the task (`judge` or
/// `judge-pairwise`) and the judge's name, so two judges that send the same request (same model
/// and rubric) each have their answers scored and recorded.
pub fn request_key(judge: &str, task: &str, body: &Value) -> String {
    #[derive(serde::Serialize)]
    struct Keyed<'a> {
        task: &'a str,
        judge: &'a str,
        body: &'a Value,
    }
    super::ledger::request_key(&Keyed { task, judge, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rubric_covers_the_method_criteria() {
        for needle in [
            "relevance",
            "fine-tuning",
            "addresses the question",
            "medical accuracy",
            "utility",
            "content of the image",
            "clarity, depth and medical precision",
            "first line",
        ] {
            assert!(DEFAULT_RUBRIC.contains(needle), "{needle}");
        }
    }

    #[test]
    fn single_and_pairwise_requests() {
        let settings = JudgeSettings {
            model: "judge".into(),
            rubric: DEFAULT_RUBRIC.into(),
            temperature: Some(0.0),
            max_tokens: 50,
            rubric_in_user: false,
        };
        let mut item = JudgeItem {
            caption: "CT.".into(),
            mentions: vec!["Fig 1.".into()],
            question: "<image>\nWhat?".into(),
            answers: vec!["A.".into()],
        };
        let body = judge_request(&settings, &item, Some("data:image/png;base64,AA=="));
        let parts = body["messages"][1]["content"].as_array().unwrap();
        assert_eq!(parts[0]["type"], "image_url");
        let text = parts[1]["text"].as_str().unwrap();
        assert!(
            text.contains("Question: What?") && text.contains("Answer: A."),
            "{text}"
        );
        item.answers.push("B.".into());
        let body = judge_request(&settings, &item, None);
        assert!(body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("two scores"));
        let text = body["messages"][1]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("Answer 2: B.") && text.contains("not available"));
    }

    #[test]
    fn the_methods_layout_puts_the_rubric_in_the_user_message_after_the_system_role() {
        let settings = JudgeSettings {
            model: "judge".into(),
            rubric: DEFAULT_RUBRIC.into(),
            temperature: None,
            max_tokens: 4096,
            rubric_in_user: true,
        };
        let item = JudgeItem {
            caption: "CT.".into(),
            mentions: vec![],
            question: "What?".into(),
            answers: vec!["A.".into()],
        };
        let body = judge_request(&settings, &item, Some("data:image/png;base64,AA=="));
        assert!(body.get("temperature").is_none());
        assert_eq!(body["messages"][0]["content"], JUDGE_ROLE);
        let text = body["messages"][1]["content"][1]["text"].as_str().unwrap();
        assert!(text.starts_with(DEFAULT_RUBRIC.trim_end()), "{text}");
        let (rubric_at, question_at) = (
            text.find("medical accuracy").unwrap(),
            text.find("Question: What?").unwrap(),
        );
        assert!(rubric_at < question_at, "the rubric comes first: {text}");
    }

    #[test]
    fn request_keys_differ_by_judge_and_task() {
        let body = json!({"model": "m", "messages": []});
        let a = request_key("A", "judge", &body);
        assert_eq!(a, request_key("A", "judge", &body));
        assert_ne!(a, request_key("B", "judge", &body));
        assert_ne!(a, request_key("A", "judge-pairwise", &body));
        assert_ne!(
            a,
            request_key("A", "judge", &json!({"model": "n", "messages": []}))
        );
        assert_ne!(a, super::super::ledger::request_key(&body));
    }
}
