//! Greedy word wrapping by display width, so the rounds pane knows each block's exact height
//! (needed to lay answers side by side and keep the focused round in view).

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Wraps `text` into lines at most `width` columns wide; newlines in the text are kept.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0;
        for word in paragraph.split_whitespace() {
            let word_width = word.width();
            if line_width > 0 && line_width + 1 + word_width <= width {
                line.push(' ');
                line.push_str(word);
                line_width += 1 + word_width;
                continue;
            }
            if line_width > 0 {
                lines.push(std::mem::take(&mut line));
                line_width = 0;
            }
            if word_width <= width {
                line.push_str(word);
                line_width = word_width;
            } else {
                // A word longer than the line (a URL, a sequence): cut it by characters.
                for c in word.chars() {
                    let w = c.width().unwrap_or(0);
                    if line_width + w > width {
                        lines.push(std::mem::take(&mut line));
                        line_width = 0;
                    }
                    line.push(c);
                    line_width += w;
                }
            }
        }
        lines.push(line);
    }
    lines
}

/// Pads (or cuts) `text` to exactly `width` columns.
pub fn pad(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.extend(std::iter::repeat_n(' ', width - used));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_word_boundaries_and_cuts_long_words() {
        assert_eq!(
            wrap("the quick brown fox", 9),
            vec!["the quick", "brown fox"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 5), vec!["a", "", "b"]);
        assert_eq!(wrap("", 5), vec![""]);
        for line in wrap(
            "Axial T2-weighted MRI shows a well-circumscribed hyperintense lesion",
            12,
        ) {
            assert!(line.width() <= 12, "{line}");
        }
    }

    #[test]
    fn pad_fills_and_cuts_by_display_width() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 3), "abc");
        assert_eq!(pad("✓ ok", 5).width(), 5);
    }
}
