//! Keys are named actions with defaults; `[keys]` in config.toml overrides any subset. Each action
//! has a description that feeds the help screen and the key-hint bar.
//!
//! Actions belong to a [`Scope`]: the sheet's, or the full-screen figure's. Inside the figure its
//! own keys come first (so `h` pans there and moves between answers on the sheet) and the sheet's
//! keys work where not taken; a figure key may never take a key of an action that must keep
//! working there (the decisions, next/previous sample, help, quit).

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

macro_rules! actions {
    ($( $variant:ident = $name:literal, [$($key:literal),*], $desc:literal; )*) => {
        /// Everything a key can do on the review screen.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $( $variant, )* }

        impl Action {
            pub const ALL: &'static [Action] = &[$( Action::$variant, )*];

            /// The name used in config.toml's `[keys]` table.
            pub fn name(self) -> &'static str {
                match self { $( Action::$variant => $name, )* }
            }

            pub fn description(self) -> &'static str {
                match self { $( Action::$variant => $desc, )* }
            }

            fn default_keys(self) -> &'static [&'static str] {
                match self { $( Action::$variant => &[$($key),*], )* }
            }
        }
    };
}

actions! {
    Accept = "accept", ["a"], "accept the focused answer (✓)";
    Reject = "reject", ["x"], "reject the focused answer (✗)";
    Prefer1 = "prefer_1", ["1"], "prefer answer 1";
    Prefer2 = "prefer_2", ["2"], "prefer answer 2";
    Tie = "tie", ["="], "both answers equally good";
    Rate = "rate", ["r"], "rate the round: r then 1-5";
    Flag = "flag", ["f"], "flag / unflag the sample";
    Note = "note", ["n"], "write a note on the sample (a box like the editor: Ctrl-S saves, Esc cancels)";
    Undo = "undo", ["u"], "undo the last decision (unlimited)";
    Redo = "redo", ["U"], "redo what undo took back";
    Edit = "edit", ["e"], "correct the focused answer in place (Ctrl-S saves, Esc cancels)";
    EditExternal = "edit_external", ["C-e"], "correct the focused answer in $VISUAL / $EDITOR";
    Reason = "reason", ["R"], "why the answer is ✗: pick a reason (right after x: the answer just rejected)";
    ShowOriginal = "show_original", ["D"], "show the original text beside your edit";
    NextRound = "next_round", ["j", "Down"], "next round";
    PrevRound = "prev_round", ["k", "Up"], "previous round";
    NextAnswer = "next_answer", ["l", "Right", "Tab"], "next answer";
    PrevAnswer = "prev_answer", ["h", "Left", "BackTab"], "previous answer";
    NextSample = "next_sample", ["Space", "Enter"], "next sample";
    PrevSample = "prev_sample", ["Backspace"], "previous sample";
    Goto = "goto", ["g"], "jump to a sample id";
    Search = "search", ["/"], "search caption and Q&A text";
    Filter = "filter", ["F"], "filter: all, unreviewed, flagged, disagreements, domain";
    FilterBack = "filter_back", ["A-F", "A-f"], "filter, the other way round";
    Train = "train", ["T"], "train the selector now (Esc cancels)";
    Order = "order", ["o"], "order: file, score high/low, uncertainty, random";
    Preview = "preview", ["p"], "preview the selection (top share from config)";
    Demo = "demo", ["d"], "mark / unmark the sample as a demonstration";
    Export = "export", ["E"], "export the selection (runs in the background)";
    Agreement = "agreement", ["S"], "reviewers' decisions and agreement (κ, α)";
    Guidelines = "guidelines", ["G"], "the reviewers' guidelines in force (vital team guidelines)";
    FinalAccept = "final_accept", ["A"], "final decision: accept the focused answer (resolves a conflict)";
    FinalReject = "final_reject", ["X"], "final decision: reject the focused answer (resolves a conflict)";
    ScrollDown = "scroll_down", ["PageDown", "C-d"], "scroll the rounds down";
    ScrollUp = "scroll_up", ["PageUp", "C-u"], "scroll the rounds up";
    Help = "help", ["?"], "show all keys";
    Quit = "quit", ["q", "C-c"], "quit (everything is already saved)";
    Zoom = "zoom", ["z"], "show the figure over the whole screen";
    ZoomClose = "zoom_close", ["z", "Esc"], "back to the sheet, at the same answer";
    ZoomIn = "zoom_in", ["+"], "zoom in: 2×, 4×, 8× of the fitted figure";
    ZoomOut = "zoom_out", ["-"], "zoom out";
    ZoomFit = "zoom_fit", ["0"], "fit the whole figure again";
    PanLeft = "pan_left", ["h", "Left"], "pan left";
    PanRight = "pan_right", ["l", "Right"], "pan right";
    PanUp = "pan_up", ["k", "Up"], "pan up";
    PanDown = "pan_down", ["j", "Down"], "pan down";
    ContrastDown = "contrast_down", ["["], "less contrast";
    ContrastUp = "contrast_up", ["]"], "more contrast";
    BrightnessDown = "brightness_down", ["{"], "darker";
    BrightnessUp = "brightness_up", ["}"], "brighter";
    Invert = "invert", ["i"], "invert the figure's grey levels";
    CaptionOverlay = "caption_overlay", ["c"], "show / hide the caption and mention over the figure";
}

/// Where an action's keys work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The annotation sheet (and, where the figure does not take the key, the figure too).
    Sheet,
    /// The full-screen figure (`z`).
    Figure,
}

impl Action {
    pub fn scope(self) -> Scope {
        match self {
            Action::ZoomClose
            | Action::ZoomIn
            | Action::ZoomOut
            | Action::ZoomFit
            | Action::PanLeft
            | Action::PanRight
            | Action::PanUp
            | Action::PanDown
            | Action::ContrastDown
            | Action::ContrastUp
            | Action::BrightnessDown
            | Action::BrightnessUp
            | Action::Invert
            | Action::CaptionOverlay => Scope::Figure,
            _ => Scope::Sheet,
        }
    }

    /// Actions that judge an answer or a round: with `review.require_figure` they wait for the
    /// figure to be on screen.
    pub fn judges_content(self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Reject
                | Action::Prefer1
                | Action::Prefer2
                | Action::Tie
                | Action::Rate
                | Action::Edit
                | Action::EditExternal
                | Action::Reason
                | Action::FinalAccept
                | Action::FinalReject
        )
    }

    /// Sheet actions whose keys the full-screen figure must leave alone: a reviewer decides
    /// without leaving it.
    pub fn works_on_the_figure(self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Reject
                | Action::Prefer1
                | Action::Prefer2
                | Action::Tie
                | Action::Rate
                | Action::Flag
                | Action::Note
                | Action::Undo
                | Action::Redo
                | Action::Edit
                | Action::EditExternal
                | Action::Reason
                | Action::ShowOriginal
                | Action::Demo
                | Action::FinalAccept
                | Action::FinalReject
                | Action::NextSample
                | Action::PrevSample
                | Action::Help
                | Action::Quit
        )
    }
}

/// A parsed key: code plus the modifiers that matter (Ctrl, Alt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

impl KeySpec {
    /// Parses "a", "F", "=", "Tab", "BackTab", "Enter", "Space", "Backspace", "Esc", "Up", "Down",
    /// "Left", "Right", "PageUp", "PageDown", "Home", "End", "F1".."F12", with "C-" / "A-" prefixes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rest = text;
        let (mut ctrl, mut alt) = (false, false);
        loop {
            if let Some(r) = rest.strip_prefix("C-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("A-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "Tab" => KeyCode::Tab,
            "BackTab" | "S-Tab" => KeyCode::BackTab,
            "Enter" => KeyCode::Enter,
            "Space" => KeyCode::Char(' '),
            "Backspace" => KeyCode::Backspace,
            "Esc" => KeyCode::Esc,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            f if f.len() >= 2 && f.starts_with('F') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().expect("checked"))
            }
            single if single.chars().count() == 1 => {
                KeyCode::Char(single.chars().next().expect("one char"))
            }
            other => return Err(format!("unknown key `{other}` in `{text}`")),
        };
        Ok(Self { code, ctrl, alt })
    }

    pub fn from_event(event: &KeyEvent) -> Self {
        Self {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::BackTab => "S-Tab".to_string(),
            other => format!("{other:?}"),
        };
        format!(
            "{}{}{base}",
            if self.ctrl { "C-" } else { "" },
            if self.alt { "A-" } else { "" }
        )
    }
}

/// Key → action, plus each action's keys for help.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<Action, Vec<KeySpec>>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = Action::ALL
            .iter()
            .map(|&a| {
                (
                    a,
                    a.default_keys()
                        .iter()
                        .map(|k| KeySpec::parse(k).expect("default keys parse"))
                        .collect(),
                )
            })
            .collect();
        Self { bindings }
    }
}

impl Keymap {
    /// Defaults with `overrides` (action name → keys) applied. Unknown actions, unknown keys and a
    /// key bound to two actions are errors that name them.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut map = Self::default();
        for (name, keys) in overrides {
            let action = Action::ALL
                .iter()
                .copied()
                .find(|a| a.name() == name)
                .ok_or_else(|| format!("[keys]: unknown action `{name}`"))?;
            let specs = keys
                .iter()
                .map(|k| KeySpec::parse(k))
                .collect::<Result<Vec<_>, _>>()?;
            map.bindings.insert(action, specs);
        }
        // A key is one action per scope; a figure key must not hide a key the figure keeps.
        let mut seen: BTreeMap<(Scope, String), Action> = BTreeMap::new();
        for (action, keys) in &map.bindings {
            for key in keys {
                if let Some(other) = seen.insert((action.scope(), key.label()), *action) {
                    return Err(format!(
                        "[keys]: `{}` is bound to both `{}` and `{}`; rebind one of them",
                        key.label(),
                        other.name(),
                        action.name()
                    ));
                }
            }
        }
        for ((scope, label), action) in &seen {
            if *scope != Scope::Figure {
                continue;
            }
            if let Some(kept) = seen
                .get(&(Scope::Sheet, label.clone()))
                .filter(|a| a.works_on_the_figure())
            {
                return Err(format!(
                    "[keys]: `{label}` is bound to `{}`, which the full-screen figure keeps, and to its `{}`; rebind one of them",
                    kept.name(),
                    action.name()
                ));
            }
        }
        Ok(map)
    }

    /// The sheet's action for a key.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.action_in(Scope::Sheet, event)
    }

    /// The action for a key in `scope`: on the full-screen figure its own keys first, then the
    /// sheet's.
    pub fn action_in(&self, scope: Scope, event: &KeyEvent) -> Option<Action> {
        let spec = KeySpec::from_event(event);
        // Shifted letters arrive as uppercase chars; BackTab may carry SHIFT: ignore SHIFT itself.
        let find = |wanted: Scope| {
            self.bindings
                .iter()
                .find(|(a, keys)| a.scope() == wanted && keys.contains(&spec))
                .map(|(a, _)| *a)
        };
        match scope {
            Scope::Sheet => find(Scope::Sheet),
            Scope::Figure => find(Scope::Figure).or_else(|| find(Scope::Sheet)),
        }
    }

    /// "a" or "j, Down" — the keys bound to `action`, for help.
    pub fn keys_label(&self, action: Action) -> String {
        self.bindings
            .get(&action)
            .map(|keys| {
                keys.iter()
                    .map(KeySpec::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    /// The first key bound to `action`, for the hint bar.
    pub fn first_key_label(&self, action: Action) -> Option<String> {
        self.bindings.get(&action)?.first().map(KeySpec::label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn defaults_cover_the_documented_keys() {
        let map = Keymap::default();
        assert_eq!(map.action(&key(KeyCode::Char('a'))), Some(Action::Accept));
        assert_eq!(
            map.action(&key(KeyCode::Char('j'))),
            Some(Action::NextRound)
        );
        assert_eq!(map.action(&key(KeyCode::Down)), Some(Action::NextRound));
        assert_eq!(map.action(&key(KeyCode::Tab)), Some(Action::NextAnswer));
        assert_eq!(
            map.action(&key(KeyCode::Char(' '))),
            Some(Action::NextSample)
        );
        assert_eq!(map.action(&key(KeyCode::Char('F'))), Some(Action::Filter));
        assert_eq!(
            map.action(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(map.action(&key(KeyCode::Char('Z'))), None);
    }

    #[test]
    fn the_figure_takes_its_own_keys_first_and_keeps_the_decisions() {
        let map = Keymap::default();
        let on_figure = |code| map.action_in(Scope::Figure, &key(code));
        assert_eq!(on_figure(KeyCode::Char('h')), Some(Action::PanLeft));
        assert_eq!(
            map.action(&key(KeyCode::Char('h'))),
            Some(Action::PrevAnswer)
        );
        assert_eq!(on_figure(KeyCode::Char('z')), Some(Action::ZoomClose));
        assert_eq!(map.action(&key(KeyCode::Char('z'))), Some(Action::Zoom));
        assert_eq!(on_figure(KeyCode::Esc), Some(Action::ZoomClose));
        assert_eq!(map.action(&key(KeyCode::Esc)), None);
        assert_eq!(on_figure(KeyCode::Char('a')), Some(Action::Accept));
        assert_eq!(on_figure(KeyCode::Char('=')), Some(Action::Tie));
        assert_eq!(on_figure(KeyCode::Tab), Some(Action::NextAnswer));
        assert_eq!(
            map.action(&key(KeyCode::Char('+'))),
            None,
            "no zoom on the sheet"
        );
    }

    #[test]
    fn a_figure_key_may_not_hide_a_decision() {
        let hides = BTreeMap::from([("invert".to_string(), vec!["a".to_string()])]);
        let err = Keymap::with_overrides(&hides).unwrap_err();
        assert!(err.contains("invert") && err.contains("accept"), "{err}");
        // Navigation keys may be taken: the figure pans with them.
        let pans = BTreeMap::from([("invert".to_string(), vec!["g".to_string()])]);
        let map = Keymap::with_overrides(&pans).unwrap();
        assert_eq!(
            map.action_in(Scope::Figure, &key(KeyCode::Char('g'))),
            Some(Action::Invert)
        );
        assert_eq!(map.action(&key(KeyCode::Char('g'))), Some(Action::Goto));
    }

    #[test]
    fn overrides_rebind_partly() {
        let overrides = BTreeMap::from([
            ("accept".to_string(), vec!["y".to_string()]),
            ("reject".to_string(), vec!["a".to_string()]),
        ]);
        let map = Keymap::with_overrides(&overrides).unwrap();
        assert_eq!(map.action(&key(KeyCode::Char('y'))), Some(Action::Accept));
        assert_eq!(map.action(&key(KeyCode::Char('a'))), Some(Action::Reject));
        assert_eq!(map.action(&key(KeyCode::Char('x'))), None);
        let clash = BTreeMap::from([("accept".to_string(), vec!["x".to_string()])]);
        let err = Keymap::with_overrides(&clash).unwrap_err();
        assert!(err.contains("accept") && err.contains("reject"), "{err}");
        assert_eq!(map.keys_label(Action::NextRound), "j, Down");
        assert_eq!(
            Keymap::default().first_key_label(Action::Search).as_deref(),
            Some("/")
        );
    }

    #[test]
    fn bad_overrides_are_named() {
        let bad_action = BTreeMap::from([("acept".to_string(), vec!["y".to_string()])]);
        assert!(Keymap::with_overrides(&bad_action)
            .unwrap_err()
            .contains("acept"));
        let bad_key = BTreeMap::from([("accept".to_string(), vec!["Hyper".to_string()])]);
        assert!(Keymap::with_overrides(&bad_key)
            .unwrap_err()
            .contains("Hyper"));
    }
}
