use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use proptest::prelude::*;

use super::*;

fn keys_of(inputs: &[Input]) -> Vec<KeyEvent> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Key(k) => Some(*k),
            _ => None,
        })
        .collect()
}

fn plain(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Every reply the issue names, as real terminals send them.
const REPLIES: &[&[u8]] = &[
    b"\x1b_Gi=1;OK\x1b\\",                   // kitty, an image transmitted
    b"\x1b_Gi=31;OK\x1b\\",                  // kitty, the query
    b"\x1b_Gi=7;ENOENT:no such image\x1b\\", // kitty, an error
    b"\x1b[?62;4;22c",                       // DA1 with sixel
    b"\x1b[?1;2c",                           // DA1 (tmux)
    b"\x1b[>1;4000;29c",                     // DA2
    b"\x1bP!|7E565445\x1b\\",                // DA3
    b"\x1bP>|kitty(0.26.5)\x1b\\",           // XTVERSION
    b"\x1bP>|XTerm(379)\x1b\\",              // XTVERSION
    b"\x1b]11;rgb:0000/0000/0000\x1b\\",     // OSC 11, ST
    b"\x1b]11;rgb:ffff/ffff/dddd\x07",       // OSC 11, BEL
    b"\x1b]10;rgb:0000/0000/0000\x07",       // OSC 10
    b"\x1b[4;900;1400t",                     // window in pixels
    b"\x1b[6;20;10t",                        // cell in pixels
    b"\x1b[8;42;150t",                       // text area in cells
    b"\x1b[12;40R",                          // cursor report
    b"\x1b[?12;40R",                         // DECXCPR
    b"\x1b[0n",                              // status
    b"\x1b[?2026;2$y",                       // DECRPM
    b"\x1b[?2;0;1400;900S",                  // XTSMGRAPHICS sixel geometry
    b"\x1b[?1;0;256S",                       // XTSMGRAPHICS colours
    b"\x1b[I",                               // focus in
    b"\x1b[O",                               // focus out
    b"\x1b[?0u",                             // kitty keyboard flags
    b"\x1bP1$r0m\x1b\\",                     // DECRQSS
];

/// Keys a reviewer presses, with what they mean.
fn key_table() -> Vec<(&'static [u8], KeyEvent)> {
    let k = KeyEvent::new;
    vec![
        (b"a", plain('a')),
        (b"x", plain('x')),
        (b"=", plain('=')),
        (b"1", plain('1')),
        (b"2", plain('2')),
        (b"?", plain('?')),
        (b"/", plain('/')),
        (b"u", plain('u')),
        (b"R", k(KeyCode::Char('R'), KeyModifiers::SHIFT)),
        (b"\r", k(KeyCode::Enter, KeyModifiers::NONE)),
        (b"\t", k(KeyCode::Tab, KeyModifiers::NONE)),
        (b"\x7f", k(KeyCode::Backspace, KeyModifiers::NONE)),
        (b"\x13", k(KeyCode::Char('s'), KeyModifiers::CONTROL)),
        (b"\x1b[A", k(KeyCode::Up, KeyModifiers::NONE)),
        (b"\x1bOB", k(KeyCode::Down, KeyModifiers::NONE)),
        (b"\x1b[1;5C", k(KeyCode::Right, KeyModifiers::CONTROL)),
        (b"\x1b[6~", k(KeyCode::PageDown, KeyModifiers::NONE)),
        (b"\x1b[Z", k(KeyCode::BackTab, KeyModifiers::SHIFT)),
        ("é".as_bytes(), plain('é')),
        ("→".as_bytes(), plain('→')),
        (b"\x1bx", k(KeyCode::Char('x'), KeyModifiers::ALT)),
    ]
}

#[test]
fn kittys_reply_to_an_image_is_no_key() {
    let mut d = Decoder::new();
    let out = d.decode(b"\x1b_Gi=1;OK\x1b\\");
    assert_eq!(out, vec![Input::Reply(Reply::KittyGraphics { ok: true })]);
    assert!(!d.pending());
}

#[test]
fn every_reply_is_consumed_whole_and_typed_keys_around_it_survive() {
    for reply in REPLIES {
        let mut bytes = b"a".to_vec();
        bytes.extend_from_slice(reply);
        bytes.push(b'x');
        let out = Decoder::new().decode(&bytes);
        assert_eq!(
            keys_of(&out),
            vec![plain('a'), plain('x')],
            "{}",
            String::from_utf8_lossy(reply).escape_debug()
        );
        assert_eq!(out.len(), 3, "one reply: {out:?}");
    }
}

#[test]
fn replies_split_at_every_byte_are_still_consumed() {
    for reply in REPLIES {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for byte in reply.iter() {
            d.push(&[*byte], &mut out);
            d.idle(Duration::from_millis(5), &mut out);
        }
        assert!(
            keys_of(&out).is_empty(),
            "{}: {out:?}",
            String::from_utf8_lossy(reply).escape_debug()
        );
        assert!(!d.pending());
    }
}

#[test]
fn replies_that_detection_reads_are_parsed() {
    let out = Decoder::new().decode(
        b"\x1b[?62;4;22c\x1b[6;20;10t\x1b[4;900;1400t\x1bP>|kitty(0.26.5)\x1b\\\x1b_Gi=31;OK\x1b\\\x1b[0n",
    );
    assert_eq!(
        out,
        vec![
            Input::Reply(Reply::DeviceAttributes(vec![62, 4, 22])),
            Input::Reply(Reply::CellSize {
                width: 10,
                height: 20
            }),
            Input::Reply(Reply::WindowPixels {
                width: 1400,
                height: 900
            }),
            Input::Reply(Reply::Version("kitty(0.26.5)".into())),
            Input::Reply(Reply::KittyGraphics { ok: true }),
            Input::Reply(Reply::Status),
        ]
    );
    let out = Decoder::new().decode(b"\x1b_Gi=31;EINVAL:bad\x1b\\");
    assert_eq!(out, vec![Input::Reply(Reply::KittyGraphics { ok: false })]);
}

#[test]
fn a_lone_esc_is_the_esc_key_after_a_silence_and_not_before() {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    d.push(b"\x1b", &mut out);
    d.idle(Duration::from_millis(5), &mut out);
    assert!(out.is_empty(), "too soon to tell: {out:?}");
    d.idle(ESC_KEY_SILENCE, &mut out);
    assert_eq!(
        keys_of(&out),
        vec![KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)]
    );
    // Esc pressed twice quickly is two Escs.
    let out = Decoder::new().decode(b"\x1b\x1b[A");
    assert_eq!(
        keys_of(&out),
        vec![
            KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
            KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)
        ]
    );
}

#[test]
fn a_string_the_terminal_never_ends_is_dropped_after_a_silence_and_keys_follow() {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    d.push(b"\x1b_Gi=1;O", &mut out);
    d.idle(ABANDON_SILENCE, &mut out);
    d.push(b"a", &mut out);
    assert_eq!(keys_of(&out), vec![plain('a')]);
}

#[test]
fn an_esc_inside_a_string_ends_it_and_starts_the_next_sequence() {
    let out = Decoder::new().decode(b"\x1b]11;rgb:0/0/0\x1b[?62;4c\x1b[A");
    assert_eq!(
        out,
        vec![
            Input::Reply(Reply::Other("operating system command")),
            Input::Reply(Reply::DeviceAttributes(vec![62, 4])),
            Input::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)),
        ]
    );
}

#[test]
fn a_bracketed_paste_is_one_text_and_its_keys_decide_nothing() {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for byte in b"\x1b[200~a=1\r\x1b[A x\x1b[201~q" {
        d.push(&[*byte], &mut out);
    }
    assert_eq!(
        out,
        vec![Input::Paste("a=1\r\x1b[A x".into()), Input::Key(plain('q'))]
    );
}

#[test]
fn bytes_decode_to_the_keys_crossterm_reports() {
    for (bytes, expected) in key_table() {
        let out = Decoder::new().decode(bytes);
        assert_eq!(keys_of(&out), vec![expected], "{:?}", bytes);
    }
    let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    assert_eq!(
        keys_of(&Decoder::new().decode(b"\x05\x1a\x00")),
        vec![ctrl('e'), ctrl('z'), ctrl(' ')]
    );
}

#[test]
fn utf8_split_across_reads_is_one_character_and_broken_utf8_is_dropped() {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let bytes = "é→".as_bytes();
    for b in bytes {
        d.push(&[*b], &mut out);
    }
    assert_eq!(keys_of(&out), vec![plain('é'), plain('→')]);
    let out = Decoder::new().decode(b"\xff\xc3a\x80b");
    assert_eq!(keys_of(&out), vec![plain('a'), plain('b')]);
}

/// One piece of what a terminal sends: a key, a reply, or a silence (the reader's idle call).
#[derive(Debug, Clone)]
enum Piece {
    Key(usize),
    Reply(usize),
    /// Esc pressed, then a silence long enough to tell it from a sequence.
    Esc,
}

fn piece() -> impl Strategy<Value = Piece> {
    let keys = key_table().len();
    prop_oneof![
        (0..keys).prop_map(Piece::Key),
        (0..REPLIES.len()).prop_map(Piece::Reply),
        Just(Piece::Esc),
    ]
}

proptest! {
    /// Any interleaving of replies and keys, cut into reads anywhere, decodes to the keys alone.
    #[test]
    fn replies_interleaved_with_keys_at_any_split_give_the_keys_alone(
        pieces in proptest::collection::vec(piece(), 0..40),
        cuts in proptest::collection::vec(1usize..12, 1..80),
    ) {
        let table = key_table();
        let mut expected = Vec::new();
        // Segments between silences: within one, the bytes are cut into reads at `cuts`.
        let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
        for piece in &pieces {
            match piece {
                Piece::Key(i) => {
                    segments.last_mut().unwrap().extend_from_slice(table[*i].0);
                    expected.push(table[*i].1);
                }
                Piece::Reply(i) => segments.last_mut().unwrap().extend_from_slice(REPLIES[*i]),
                Piece::Esc => {
                    segments.last_mut().unwrap().push(0x1b);
                    segments.push(Vec::new());
                    expected.push(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
                }
            }
        }
        let mut d = Decoder::new();
        let mut out = Vec::new();
        let mut cut = cuts.iter().cycle();
        for segment in &segments {
            let mut rest = segment.as_slice();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                d.push(&rest[..n], &mut out);
                // A short pause between reads, shorter than any silence that means something.
                d.idle(Duration::from_millis(1), &mut out);
                rest = &rest[n..];
            }
            d.idle(ESC_KEY_SILENCE, &mut out);
        }
        prop_assert_eq!(keys_of(&out), expected);
        prop_assert!(!d.pending());
    }
}
