//! Streams the records of a JSON array or a JSON Lines file one at a time, so a 463 MB release is
//! never held as a whole DOM. Each record comes with its index and the line it starts on.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;

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

/// Counts newlines in the bytes the parser has consumed, so records can be located by line.
/// serde_json pulls one byte at a time from its reader, so the count is exact.
/// It also notes the line of the first significant byte read since `start` was reset to None:
/// the line a record starts on.
struct LineCounter<R> {
    inner: R,
    newlines: Rc<Cell<u64>>,
    start: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.newlines.set(self.newlines.get() + 1);
            } else if self.start.get().is_none() && !b.is_ascii_whitespace() {
                self.start.set(Some(self.newlines.get() + 1));
            }
        }
        Ok(n)
    }
}

/// A reader positioned after any UTF-8 byte-order mark, with the layout detected.
pub struct JsonSource<R> {
    reader: BufReader<R>,
    pub layout: Layout,
    /// A UTF-8 BOM was present (and skipped).
    pub had_bom: bool,
    leading_newlines: u64,
}

impl<R: Read> JsonSource<R> {
    pub fn new(inner: R) -> std::io::Result<Self> {
        let mut reader = BufReader::with_capacity(1 << 16, inner);
        let buf = reader.fill_buf()?;
        let had_bom = buf.starts_with(&[0xEF, 0xBB, 0xBF]);
        if had_bom {
            reader.consume(3);
        }
        // Skip leading whitespace, remembering its newlines so record lines stay exact.
        let mut leading_newlines = 0u64;
        let layout = loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break Layout::Empty;
            }
            let first = buf.iter().position(|b| !b.is_ascii_whitespace());
            let skip = first.unwrap_or(buf.len());
            leading_newlines += buf[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
            let layout = first.map(|i| {
                if buf[i] == b'[' {
                    Layout::Array
                } else {
                    Layout::Objects
                }
            });
            reader.consume(skip);
            if let Some(layout) = layout {
                break layout;
            }
        };
        Ok(Self {
            reader,
            layout,
            had_bom,
            leading_newlines,
        })
    }

    /// Calls `handle` with each record in order. Stops at the first malformed byte or handler error.
    /// Returns the number of records read.
    pub fn for_each<F>(self, mut handle: F) -> Result<usize, StreamError>
    where
        F: FnMut(RecordLoc, Value) -> anyhow::Result<()>,
    {
        let newlines = Rc::new(Cell::new(self.leading_newlines));
        let starts: Rc<Cell<Option<u64>>> = Rc::new(Cell::new(None));
        let counted = LineCounter {
            inner: self.reader,
            newlines: newlines.clone(),
            start: starts.clone(),
        };
        let handler_error: RefCell<Option<anyhow::Error>> = RefCell::new(None);
        let index = Cell::new(0usize);
        let mut call = |line: u64, value: Value| -> bool {
            let loc = RecordLoc {
                index: index.get(),
                line,
            };
            index.set(index.get() + 1);
            match handle(loc, value) {
                Ok(()) => true,
                Err(e) => {
                    *handler_error.borrow_mut() = Some(e);
                    false
                }
            }
        };
        let syntax = |e: serde_json::Error, index: usize| StreamError::Syntax {
            line: e.line(),
            column: e.column(),
            index,
            message: strip_position(&e.to_string()),
        };
        match self.layout {
            Layout::Empty => Ok(0),
            Layout::Array => {
                let mut de = serde_json::Deserializer::from_reader(counted);
                let visitor = ArrayVisitor {
                    newlines: &newlines,
                    call: &mut call,
                };
                let result = de.deserialize_seq(visitor).and_then(|()| de.end());
                match result {
                    Ok(()) => Ok(index.get()),
                    Err(e) => match handler_error.borrow_mut().take() {
                        Some(h) => Err(StreamError::Handler(h)),
                        None => Err(syntax(e, index.get())),
                    },
                }
            }
            Layout::Objects => {
                // One streaming deserializer over the whole file: linear time, however the
                // objects are spread over lines (pretty-printed, several on a line).
                let mut stream =
                    serde_json::Deserializer::from_reader(counted).into_iter::<Value>();
                loop {
                    starts.set(None);
                    match stream.next() {
                        None => return Ok(index.get()),
                        Some(Ok(value)) => {
                            let line = starts.get().unwrap_or(newlines.get() + 1);
                            if !call(line, value) {
                                let e = handler_error.borrow_mut().take();
                                return Err(StreamError::Handler(e.expect("handler error stored")));
                            }
                        }
                        Some(Err(e)) if e.is_io() => return Err(StreamError::Io(e.into())),
                        Some(Err(e)) => {
                            let mut err = syntax(e, index.get());
                            if let StreamError::Syntax { line, .. } = &mut err {
                                *line += self.leading_newlines as usize;
                            }
                            return Err(err);
                        }
                    }
                }
            }
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

struct ArrayVisitor<'a, C> {
    newlines: &'a Cell<u64>,
    call: &'a mut C,
}

impl<'de, C: FnMut(u64, Value) -> bool> Visitor<'de> for ArrayVisitor<'_, C> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            match seq.next_element_seed(Located(self.newlines))? {
                None => return Ok(()),
                Some((line, value)) => {
                    if !(self.call)(line, value) {
                        return Err(de::Error::custom("record rejected"));
                    }
                }
            }
        }
    }
}

/// Deserialises one record, noting the line it starts on: serde_json has skipped the separator
/// and whitespace before it calls us, so the newline count is exactly the lines before the value.
struct Located<'a>(&'a Cell<u64>);

impl<'de> de::DeserializeSeed<'de> for Located<'_> {
    type Value = (u64, Value);

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        let line = self.0.get() + 1;
        serde::Deserialize::deserialize(deserializer).map(|value| (line, value))
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
    fn empty_file_has_no_records() {
        assert_eq!(collect(b"  \n ").unwrap().len(), 0);
    }
}
