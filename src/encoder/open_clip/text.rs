//! The text tower: open_clip's `HFTextEncoder` around the BERT of [`crate::encoder::model`] —
//! pooling per `hf_pooler_type`, projection per `hf_proj_type` — and `HFTokenizer`'s cleaning.
//!
//! Field names follow the checkpoint (`text.transformer.*`); the pooler and the projection get
//! short names that [`super::weights`] maps (`text.transformer.pooler.dense` → `text.pooler`,
//! `text.proj.{0,2}` → `text.head.{fc1,fc2}`, `text.proj` → `text.head.linear`).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::{Clean, Projection, TextPool};
use crate::encoder::config::BertConfig;
use crate::encoder::model::{gelu, BertModel, TokenBatch};

/// The projection after pooling: one Linear, or Linear → GELU → Linear (no biases).
#[derive(Module, Debug)]
pub struct TextHead<B: Backend> {
    pub linear: Option<Linear<B>>,
    pub fc1: Option<Linear<B>>,
    pub fc2: Option<Linear<B>>,
}

#[derive(Module, Debug)]
pub struct TextTower<B: Backend> {
    pub transformer: BertModel<B>,
    /// BERT's pooler (dense + tanh), only for `cls_pooler`.
    pub pooler: Option<Linear<B>>,
    pub head: TextHead<B>,
    /// `mean_pooler`; otherwise the `[CLS]` vector (through `pooler` when there is one).
    mean_pool: bool,
}

/// `proj_type` resolved as `HFTextEncoder.__init__` does: none only when the widths agree and
/// no type is given (open_clip has no projection to run otherwise, so that is an error).
pub fn resolve_projection(
    proj: Option<Projection>,
    width: usize,
    embed_dim: usize,
) -> Option<Projection> {
    match proj {
        Some(p) => Some(p),
        None if width == embed_dim => Some(Projection::Identity),
        None => None,
    }
}

/// A tower with untrained weights (the loader overwrites every one of them).
pub fn init<B: Backend>(
    bert: &BertConfig,
    pool: TextPool,
    proj: Projection,
    embed_dim: usize,
    device: &B::Device,
) -> TextTower<B> {
    let w = bert.hidden_size;
    let no_bias = |d_in, d_out| LinearConfig::new(d_in, d_out).with_bias(false).init(device);
    let hidden = (w + embed_dim) / 2;
    let head = match proj {
        Projection::Linear => TextHead {
            linear: Some(no_bias(w, embed_dim)),
            fc1: None,
            fc2: None,
        },
        Projection::Mlp => TextHead {
            linear: None,
            fc1: Some(no_bias(w, hidden)),
            fc2: Some(no_bias(hidden, embed_dim)),
        },
        Projection::Identity => TextHead {
            linear: None,
            fc1: None,
            fc2: None,
        },
    };
    TextTower {
        transformer: bert.init(device),
        pooler: (pool == TextPool::ClsPooler).then(|| LinearConfig::new(w, w).init(device)),
        head,
        mean_pool: pool == TextPool::Mean,
    }
}

impl<B: Backend> TextTower<B> {
    /// One vector per text, `[b, embed_dim]`, not normalised.
    pub fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 2> {
        let tokens = self.transformer.forward(batch);
        let [b, s, h] = tokens.dims();
        let cls = || tokens.clone().narrow(1, 0, 1).reshape([b, h]);
        let pooled = match (self.mean_pool, &self.pooler) {
            (false, Some(dense)) => dense.forward(cls()).tanh(),
            (true, _) => {
                // open_clip divides by the mask's sum (at least [CLS] and [SEP]).
                let mask = batch.mask.clone().float().reshape([b, s, 1]);
                let count = mask.clone().sum_dim(1).reshape([b, 1]);
                (tokens.clone() * mask).sum_dim(1).reshape([b, h]) / count
            }
            _ => cls(),
        };
        let head = &self.head;
        match (&head.linear, &head.fc1, &head.fc2) {
            (Some(linear), _, _) => linear.forward(pooled),
            (None, Some(fc1), Some(fc2)) => fc2.forward(gelu(fc1.forward(pooled))),
            _ => pooled,
        }
    }
}

/// `HFTokenizer`'s cleaning: HTML entities decoded twice (`html.unescape`), whitespace runs made
/// one space and the ends stripped (`" ".join(text.split())`), lower-cased for `clean: lower`.
/// open_clip also runs `ftfy.fix_text` (mojibake repair), which vital does not: text that is
/// already valid Unicode, as figure captions and answers are, passes through ftfy unchanged
/// except for rare compatibility fixes.
pub fn clean(text: &str, mode: Clean) -> String {
    let text = unescape_html(&unescape_html(text));
    // Python's str.split() also splits on the ASCII separators \x1c-\x1f.
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    match mode {
        Clean::Whitespace => joined,
        Clean::Lower => joined.to_lowercase(),
    }
}

/// The named entities decoded (Python decodes all of HTML5's; these are the ones figure text
/// uses), then numeric references `&#NNN;` / `&#xHH;` as `html.unescape` treats them.
const ENTITIES: [(&str, &str); 34] = [
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{a0}"),
    ("times", "×"),
    ("divide", "÷"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("micro", "µ"),
    ("middot", "·"),
    ("ndash", "–"),
    ("mdash", "—"),
    ("hellip", "…"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("le", "≤"),
    ("ge", "≥"),
    ("ne", "≠"),
    ("alpha", "α"),
    ("beta", "β"),
    ("gamma", "γ"),
    ("delta", "δ"),
    ("kappa", "κ"),
    ("lambda", "λ"),
    ("mu", "μ"),
    ("sigma", "σ"),
    ("rarr", "→"),
];

fn unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some((decoded, used)) = numeric_reference(after).or_else(|| named_reference(after)) {
            out.push_str(&decoded);
            rest = &after[used..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `#123;` or `#x1F;` (the `;` optional, as in Python) → the character and the bytes used.
fn numeric_reference(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix('#')?;
    let (digits, radix, skip) = match body.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16, 2),
        None => (body, 10, 1),
    };
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if len == 0 {
        return None;
    }
    let used = skip + len + usize::from(digits[len..].starts_with(';'));
    let value = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
    let c = match value {
        0 | 0xD800..=0xDFFF => '\u{fffd}',
        v => char::from_u32(v).unwrap_or('\u{fffd}'),
    };
    Some((c.to_string(), used))
}

fn named_reference(s: &str) -> Option<(String, usize)> {
    let end = s.find(';')?;
    let name = &s[..end];
    ENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (v.to_string(), end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_decodes_entities_twice_and_collapses_whitespace() {
        assert_eq!(
            clean(
                "  a\t\tb\n\nc  &amp;amp; &lt;2&gt; &#x41;&#66; &bogus; &",
                Clean::Whitespace
            ),
            "a b c & <2> AB &bogus; &"
        );
        assert_eq!(clean("MRI &amp; CT", Clean::Lower), "mri & ct");
        assert_eq!(clean("", Clean::Whitespace), "");
        assert_eq!(clean(" \u{3000}x\u{1f}y ", Clean::Whitespace), "x y");
    }
}
