//! Streams the records of a JSON array or a JSON Lines file one at a time, so a 463 MB release is
//! never held as a whole DOM. Each record comes with its index and the line it starts on.
//!
//! The file is read in large blocks; a small scanner finds where each record ends (strings,
//! escapes and nesting only, no validation) and serde_json parses that slice, so the bytes are
//! walked twice but never one `read` call per byte. serde_json reports any malformed byte inside
//! a record; its position is turned back into the file's line and column. A record is at most
//! [`MAX_RECORD_BYTES`] long, so memory stays bounded whatever the file holds.

use std::fmt;
use std::io::Read;

use serde_json::Value;

/// Longest record read (bytes). A release's records are a few KB; a file that is not an array of
/// records (one giant object) stops here instead of filling memory.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Bytes asked of the reader at a time.
const READ_BLOCK: usize = 1 << 20;

/// Where a record sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLoc {
    /// 0-based index of the record in the file.
    pub index: usize,
    /// 1-based line on which the record starts.
    pub line: u64,
}

impl fmt::Display for RecordLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} (line {})", self.index, self.line)
    }
}

/// Why a stream stopped: the file itself is malformed, or the record handler refused a record.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed JSON at line {line}:{column}, in record {index}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        index: usize,
        message: String,
    },
    #[error("{0:#}")]
    Handler(anyhow::Error),
}

/// The layout of the file, read from its first significant byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[ {...}, {...} ]`
    Array,
    /// `{...}\n{...}\n` (JSON Lines, or concatenated objects)
    Objects,
    Empty,
}

/// A reader positioned after any UTF-8 byte-order mark, with the layout detected.
pub struct JsonSource<R> {
    scanner: Scanner<R>,
    pub layout: Layout,
    /// A UTF-8 BOM was present (and skipped).
    pub had_bom: bool,
}

impl<R: Read> JsonSource<R> {
    pub fn new(inner: R) -> std::io::Result<Self> {
        let mut scanner = Scanner {
            reader: inner,
            buf: Vec::with_capacity(READ_BLOCK),
            pos: 0,
            eof: false,
            consumed: 0,
            newlines: 0,
            line_start: 0,
        };
        while scanner.available() < 3 && scanner.fill()? {}
        let had_bom = scanner.rest().starts_with(&[0xEF, 0xBB, 0xBF]);
        if had_bom {
            scanner.advance(3);
            // Columns count from after the mark, as before.
            scanner.line_start = scanner.offset();
        }
        let layout = match scanner.skip_whitespace()? {
            None => Layout::Empty,
            Some(b'[') => Layout::Array,
            Some(_) => Layout::Objects,
        };
        Ok(Self {
            scanner,
            layout,
            had_bom,
        })
    }

    /// Calls `handle` with each record in order. Stops at the first malformed byte or handler error.
    /// Returns the number of records read.
    pub fn for_each<F>(self, mut handle: F) -> Result<usize, StreamError>
    where
        F: FnMut(RecordLoc, Value) -> anyhow::Result<()>,
    {
        self.for_each_raw(|loc, raw| handle(loc, raw.value()?).map_err(StreamError::Handler))
    }

    /// Calls `handle` with each record's bytes in order, unparsed: a caller that reads a known
    /// shape straight into its own types parses once, and asks [`RawRecord::value`] for the
    /// `Value` (and the error that names line and column) only when it needs one. Stops at the
    /// first malformed byte between records or error of `handle`; returns the number of records.
    pub fn for_each_raw<F>(self, mut handle: F) -> Result<usize, StreamError>
    where
        F: FnMut(RecordLoc, RawRecord<'_>) -> Result<(), StreamError>,
    {
        let mut s = self.scanner;
        let mut index = 0usize;
        let mut record = |s: &mut Scanner<R>, index: &mut usize| -> Result<(), StreamError> {
            let loc = RecordLoc {
                index: *index,
                line: s.newlines + 1,
            };
            let len = s.next_len(*index)?;
            let raw = RawRecord {
                bytes: &s.rest()[..len],
                index: *index,
                first_line: s.newlines as usize + 1,
                start_column: (s.offset() - s.line_start) as usize,
            };
            handle(loc, raw)?;
            s.advance(len);
            *index += 1;
            Ok(())
        };
        match self.layout {
            Layout::Empty => return Ok(0),
            Layout::Array => {
                s.advance(1); // `[`
                let mut after_comma = false;
                loop {
                    match s.skip_whitespace()? {
                        None => return Err(s.error_here(index, "EOF while parsing a list")),
                        Some(b']') if after_comma => {
                            return Err(s.error_here(index, "trailing comma"))
                        }
                        Some(b']') => {
                            s.advance(1);
                            break;
                        }
                        Some(_) => record(&mut s, &mut index)?,
                    }
                    match s.skip_whitespace()? {
                        Some(b',') => {
                            s.advance(1);
                            after_comma = true;
                        }
                        Some(b']') => {
                            s.advance(1);
                            break;
                        }
                        None => return Err(s.error_here(index, "EOF while parsing a list")),
                        Some(_) => return Err(s.error_here(index, "expected `,` or `]`")),
                    }
                }
                if s.skip_whitespace()?.is_some() {
                    return Err(s.error_here(index, "trailing characters"));
                }
            }
            Layout::Objects => {
                // However the objects are spread over lines (pretty-printed, several on a line).
                while s.skip_whitespace()?.is_some() {
                    record(&mut s, &mut index)?;
                }
            }
        }
        Ok(index)
    }
}

/// One record's bytes, as the file holds them (see [`JsonSource::for_each_raw`]).
pub struct RawRecord<'a> {
    bytes: &'a [u8],
    index: usize,
    /// The file's line and column of the record's first byte.
    first_line: usize,
    start_column: usize,
}

impl RawRecord<'_> {
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The record parsed as a `Value`, or the syntax error with the file's line and column.
    pub fn value(&self) -> Result<Value, StreamError> {
        serde_json::from_slice(self.bytes).map_err(|e| {
            let (line, column) = if e.line() <= 1 {
                (self.first_line, self.start_column + e.column())
            } else {
                (self.first_line + e.line() - 1, e.column())
            };
            StreamError::Syntax {
                line,
                column,
                index: self.index,
                message: strip_position(&e.to_string()),
            }
        })
    }
}

/// The file in blocks: `buf[pos..]` is read but not yet consumed.
struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// File offset of `buf[0]`.
    consumed: u64,
    /// Newlines among the consumed bytes.
    newlines: u64,
    /// File offset of the first byte of the current line.
    line_start: u64,
}

impl<R: Read> Scanner<R> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// File offset of the next unconsumed byte.
    fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// Reads another block after the unconsumed bytes (moving them to the front first); false
    /// at the end of the file.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.consumed += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_BLOCK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Consumes `n` bytes, counting their newlines.
    fn advance(&mut self, n: usize) {
        let bytes = &self.buf[self.pos..self.pos + n];
        if let Some(last) = memchr::memrchr(b'\n', bytes) {
            self.newlines += memchr::memchr_iter(b'\n', bytes).count() as u64;
            self.line_start = self.offset() + last as u64 + 1;
        }
        self.pos += n;
    }

    /// Skips whitespace; the next byte (not consumed), or `None` at the end of the file.
    fn skip_whitespace(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let rest = self.rest();
            match rest.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let next = rest[i];
                    self.advance(i);
                    return Ok(Some(next));
                }
                None => {
                    let n = rest.len();
                    self.advance(n);
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The length of the value starting at the next byte (not whitespace), read into the buffer
    /// whole; not consumed.
    fn next_len(&mut self, index: usize) -> Result<usize, StreamError> {
        let mut end = ValueEnd::new(self.rest()[0]);
        let len = loop {
            if let Some(len) = end.scan(self.rest()) {
                break len;
            }
            if self.available() > MAX_RECORD_BYTES {
                return Err(self.error_here(
                    index,
                    &format!(
                        "record longer than {} MiB (is the file an array of records?)",
                        MAX_RECORD_BYTES >> 20
                    ),
                ));
            }
            if !self.fill()? {
                // Unfinished at the end of the file: serde_json says what is missing, and where.
                break self.available();
            }
        };
        if len == 0 {
            // A separator or closing bracket where a record should start.
            return Err(self.error_here(index, "expected value"));
        }
        Ok(len)
    }

    /// The file position of (`line`, `column`) counted, serde_json's way, from the next byte.
    fn position(&self, line: usize, column: usize) -> (usize, usize) {
        let first_line = self.newlines as usize + 1;
        if line <= 1 {
            let start_column = (self.offset() - self.line_start) as usize;
            (first_line, start_column + column)
        } else {
            (first_line + line - 1, column)
        }
    }

    /// A syntax error at the next byte.
    fn error_here(&self, index: usize, message: &str) -> StreamError {
        let (line, column) = self.position(1, 1);
        StreamError::Syntax {
            line,
            column,
            index,
            message: message.to_string(),
        }
    }
}

/// Finds where a JSON value ends, across blocks: tracks strings, escapes and nesting only.
struct ValueEnd {
    /// Bytes of the value already scanned.
    done: usize,
    depth: usize,
    in_string: bool,
    /// Scalars (numbers, literals) end at the first delimiter, or at the end of the file.
    scalar: bool,
}

impl ValueEnd {
    fn new(first: u8) -> Self {
        ValueEnd {
            done: 0,
            depth: 0,
            in_string: false,
            scalar: !matches!(first, b'{' | b'[' | b'"'),
        }
    }

    /// The value's length if it ends inside `bytes` (the value's bytes so far, from its start).
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.scalar {
            let from = self.done;
            return match bytes[from..]
                .iter()
                .position(|&b| b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}'))
            {
                Some(i) => Some(from + i),
                None => {
                    self.done = bytes.len();
                    None
                }
            };
        }
        let mut i = self.done;
        while i < bytes.len() {
            if self.in_string {
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => i = bytes.len(),
                    Some(j) if bytes[i + j] == b'\\' => {
                        // The escaped byte must be here too, or the scan resumes at the backslash.
                        if i + j + 1 >= bytes.len() {
                            self.done = i + j;
                            return None;
                        }
                        i += j + 2;
                    }
                    Some(j) => {
                        self.in_string = false;
                        i += j + 1;
                        if self.depth == 0 {
                            return Some(i);
                        }
                    }
                }
                continue;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.done = bytes.len();
        None
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &[u8]) -> Result<Vec<(RecordLoc, Value)>, StreamError> {
        let source = JsonSource::new(text)?;
        let mut out = Vec::new();
        source.for_each(|loc, v| {
            out.push((loc, v));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_array_records_with_their_lines() {
        let text = b"[\n {\"a\": 1},\n {\"a\": 2}\n]\n";
        let records = collect(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].1["a"], 2);
        assert_eq!(records[1].0.index, 1);
        assert_eq!(records[1].0.line, 3);
    }

    #[test]
    fn reads_json_lines_and_skips_blank_lines() {
        let text = b"{\"a\": 1}\n\n{\"a\": 2}\n";
        let records = collect(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].0.line, 3);
    }

    #[test]
    fn skips_a_byte_order_mark() {
        let mut text = vec![0xEF, 0xBB, 0xBF];
        text.extend_from_slice(b"[{\"a\": 1}]");
        let source = JsonSource::new(&text[..]).unwrap();
        assert!(source.had_bom);
        assert_eq!(source.layout, Layout::Array);
        assert_eq!(collect(&text).unwrap().len(), 1);
    }

    #[test]
    fn truncated_array_names_line_column_and_record() {
        let text = b"[\n {\"a\": 1},\n {\"a\": ";
        match collect(text) {
            Err(StreamError::Syntax { line, index, .. }) => {
                assert_eq!(line, 3);
                assert_eq!(index, 1);
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn broken_json_line_is_reported_at_its_line() {
        let text = b"{\"a\": 1}\n{\"a\": }\n";
        let err = collect(text).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("record 1"), "{message}");
    }

    #[test]
    fn handler_error_stops_the_stream_and_is_returned() {
        let source = JsonSource::new(&b"[1, 2, 3]"[..]).unwrap();
        let mut seen = 0;
        let err = source
            .for_each(|loc, _| {
                seen += 1;
                if loc.index == 1 {
                    anyhow::bail!("no thanks")
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(seen, 2);
        assert!(matches!(err, StreamError::Handler(_)));
    }

    #[test]
    fn pretty_printed_and_concatenated_objects_keep_their_start_lines() {
        let text = b"\n{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}\n\n{\"a\": 2} {\"a\": 3}\n  {\"a\":\n 4}\n";
        let records = collect(text).unwrap();
        let lines: Vec<u64> = records.iter().map(|(loc, _)| loc.line).collect();
        assert_eq!(lines, vec![2, 9, 9, 10]);
        assert_eq!(records[3].1["a"], 4);
        let err = collect(b"{\"a\": 1}\n\n{\n \"a\": }\n").unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
    }

    /// A pretty-printed object over many lines used to be parsed again after every line
    /// (quadratic: minutes for a megabyte); one streaming pass takes milliseconds.
    #[test]
    fn a_long_pretty_printed_json_lines_file_is_read_in_linear_time() {
        let mut text = String::new();
        for record in 0..2 {
            text.push_str("{\n  \"rounds\": [\n");
            for i in 0..8000 {
                text.push_str(&format!(
                    "    {{\"question\": \"q{i}\", \"answer\": \"a{i}\"}},\n"
                ));
            }
            text.push_str(&format!("    {{}}\n  ],\n  \"id\": {record}\n}}\n"));
        }
        let started = std::time::Instant::now();
        let records = collect(text.as_bytes()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].0.line, 8007);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{} KB took {:?}",
            text.len() / 1024,
            started.elapsed()
        );
    }

    #[test]
    fn records_split_across_read_blocks_keep_their_lines() {
        // Strings with escapes and brackets, records longer than a read block.
        let long = "x\\\"]}[{".repeat(READ_BLOCK / 4);
        let mut text = String::from("[\n");
        for i in 0..5 {
            text.push_str(&format!(
                "{{\"i\": {i}, \"s\": \"{long}\", \"n\": [1, {{}}]}},\n"
            ));
        }
        text.push_str("7\n]\n");
        let records = collect(text.as_bytes()).unwrap();
        assert_eq!(records.len(), 6);
        assert_eq!(records[4].0.line, 6);
        assert_eq!(records[4].1["i"], 4);
        // Each 7-byte piece of JSON text `x\"]}[{` decodes to the 6 characters `x"]}[{`.
        assert_eq!(
            records[4].1["s"].as_str().unwrap().len(),
            long.len() / 7 * 6
        );
        assert_eq!(records[5].1, 7);
    }

    #[test]
    fn separators_out_of_place_are_syntax_errors_with_positions() {
        for (text, line, message) in [
            (&b"[\n{\"a\": 1},\n,{\"a\": 2}]"[..], 3, "expected value"),
            (b"[{\"a\": 1},\n]", 2, "trailing comma"),
            (b"[{\"a\": 1} {\"a\": 2}]", 1, "expected `,` or `]`"),
            (b"[{\"a\": 1}]\n\nx", 3, "trailing characters"),
            (b"[{\"a\": 1},\n", 2, "EOF while parsing a list"),
        ] {
            match collect(text) {
                Err(StreamError::Syntax {
                    line: l,
                    message: m,
                    ..
                }) => {
                    assert_eq!(
                        (l, m.as_str()),
                        (line, message),
                        "{:?}",
                        String::from_utf8_lossy(text)
                    )
                }
                other => panic!("expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_record_longer_than_the_bound_stops_the_stream() {
        struct Endless;
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(b' ');
                buf[0] = b'[';
                Ok(buf.len())
            }
        }
        let head = std::io::Cursor::new(b"[{\"a\": \"".to_vec()).chain(Endless);
        let err = JsonSource::new(head)
            .unwrap()
            .for_each(|_, _| Ok(()))
            .unwrap_err();
        assert!(
            err.to_string().contains("record longer than 64 MiB"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_has_no_records() {
        assert_eq!(collect(b"  \n ").unwrap().len(), 0);
    }
}
