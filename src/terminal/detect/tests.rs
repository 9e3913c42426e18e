use super::*;
use crate::terminal::input::{Decoder, Input};

fn answers(bytes: &[u8]) -> Answers {
    let mut a = Answers::default();
    for input in Decoder::new().decode(bytes) {
        if let Input::Reply(r) = input {
            a.take(&r);
        }
    }
    a
}

fn outside() -> Environment {
    Environment::default()
}

const KITTY_026: &[u8] =
    b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[6;20;10t\x1b[?62;c\x1b[0n";
const KITTY_035: &[u8] =
    b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.35.2)\x1b\\\x1b[6;20;10t\x1b[?62;c\x1b[0n";
const XTERM_VT340: &[u8] =
    b"\x1bP>|XTerm(379)\x1b\\\x1b[6;17;9t\x1b[?63;1;2;4;6;9;15;16;22;28c\x1b[0n";
const XTERM_PLAIN: &[u8] =
    b"\x1bP>|XTerm(379)\x1b\\\x1b[6;17;9t\x1b[?64;1;2;6;9;15;16;22;28c\x1b[0n";
const MLTERM: &[u8] = b"\x1b[6;16;8t\x1b[?63;1;2;3;4;7;29c\x1b[0n";

#[test]
fn kitty_before_0_28_gets_placed_images_and_after_it_placeholders() {
    let old = choose(ImageProtocol::Auto, &outside(), &answers(KITTY_026));
    assert_eq!(old.graphics, Graphics::KittyDirect);
    assert_eq!(old.cell, Some((10, 20)));
    assert!(old.why.contains("kitty(0.26.5)"), "{}", old.why);
    let new = choose(ImageProtocol::Auto, &outside(), &answers(KITTY_035));
    assert_eq!(new.graphics, Graphics::KittyPlaceholders);
    // Forced kitty follows the version too: no boxes on 0.26.
    let forced = choose(ImageProtocol::Kitty, &outside(), &answers(KITTY_026));
    assert_eq!(forced.graphics, Graphics::KittyDirect);
}

#[test]
fn sixel_comes_from_da1_attribute_4() {
    let xterm = choose(ImageProtocol::Auto, &outside(), &answers(XTERM_VT340));
    assert_eq!(xterm.graphics, Graphics::Sixel);
    assert_eq!(xterm.cell, Some((9, 17)));
    let mlterm = choose(ImageProtocol::Auto, &outside(), &answers(MLTERM));
    assert_eq!(mlterm.graphics, Graphics::Sixel);
    let plain = choose(ImageProtocol::Auto, &outside(), &answers(XTERM_PLAIN));
    assert_eq!(plain.graphics, Graphics::Halfblocks);
    assert!(plain.why.contains("no image protocol"), "{}", plain.why);
    // 4 as the conformance level (the first number) is not the sixel attribute.
    let level = choose(
        ImageProtocol::Auto,
        &outside(),
        &answers(b"\x1b[6;16;8t\x1b[?4;6c\x1b[0n"),
    );
    assert_eq!(level.graphics, Graphics::Halfblocks);
}

#[test]
fn inside_tmux_only_kitty_placeholders_pass_and_half_blocks_say_why() {
    let tmux = |p| Environment {
        tmux: Some(p),
        ..Environment::default()
    };
    let on = tmux(Passthrough::On);
    let kitty = choose(ImageProtocol::Auto, &on, &answers(KITTY_035));
    assert_eq!(kitty.graphics, Graphics::KittyPlaceholders);
    assert!(kitty.tmux);
    let old = choose(ImageProtocol::Auto, &on, &answers(KITTY_026));
    assert_eq!(old.graphics, Graphics::Halfblocks);
    assert!(old.why.contains("0.28"), "{}", old.why);
    let xterm = choose(ImageProtocol::Auto, &on, &answers(XTERM_VT340));
    assert_eq!(xterm.graphics, Graphics::Halfblocks);
    assert!(xterm.why.contains("outside tmux"), "{}", xterm.why);
    let off = tmux(passthrough_from_answer(Some("off\n")));
    let blocked = choose(ImageProtocol::Auto, &off, &answers(KITTY_035));
    assert_eq!(blocked.graphics, Graphics::Halfblocks);
    assert!(
        blocked.why.contains("allow-passthrough on"),
        "{}",
        blocked.why
    );
    assert_eq!(passthrough_from_answer(Some("all")), Passthrough::On);
    assert!(matches!(passthrough_from_answer(None), Passthrough::Off(w) if w.contains("3.3")));
}

#[test]
fn a_silent_terminal_or_no_cell_size_gives_half_blocks_with_the_reason() {
    let silent = choose(ImageProtocol::Auto, &outside(), &Answers::default());
    assert_eq!(silent.graphics, Graphics::Halfblocks);
    assert!(silent.why.contains("did not answer"), "{}", silent.why);
    let no_cell = choose(
        ImageProtocol::Auto,
        &outside(),
        &answers(b"\x1b[?63;4c\x1b[0n"),
    );
    assert_eq!(no_cell.graphics, Graphics::Halfblocks);
    assert!(no_cell.why.contains("cell size"), "{}", no_cell.why);
    // The kernel's window size fills in what the terminal did not say.
    let env = Environment {
        window_cell: Some((8, 16)),
        ..Environment::default()
    };
    let sized = choose(ImageProtocol::Auto, &env, &answers(b"\x1b[?63;4c\x1b[0n"));
    assert_eq!(
        (sized.graphics, sized.cell),
        (Graphics::Sixel, Some((8, 16)))
    );
}

#[test]
fn the_query_ends_with_the_status_report_and_tmux_wraps_the_terminals_part() {
    let plain = query(false);
    assert!(plain.ends_with("\x1b[5n"));
    assert!(plain.contains("a=q"));
    let wrapped = query(true);
    assert!(wrapped.starts_with("\x1bPtmux;\x1b\x1b_G"), "{wrapped:?}");
    assert!(wrapped.ends_with("\x1b\\\x1b[c\x1b[5n"), "{wrapped:?}");
    assert_eq!(statuses_expected(true), 2);
}

#[test]
fn collection_stops_at_the_status_report_or_the_silence() {
    let mut replies = vec![
        Reply::Status,
        Reply::CellSize {
            width: 9,
            height: 17,
        },
        Reply::DeviceAttributes(vec![63, 4]),
    ];
    let a = collect(false, |_| replies.pop(), QUIET);
    assert_eq!(a.statuses, 1);
    assert_eq!(a.cell, Some((9, 17)));
    let a = collect(false, |_| None, QUIET);
    assert_eq!(a, Answers::default());
}
