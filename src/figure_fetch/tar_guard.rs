//! A reader between the decompressed package and the tar parser that refuses, while reading,
//! extension headers (GNU long names and long links, pax headers) larger than
//! [`MAX_EXTENSION_BYTES`]. The tar parser holds such a header's data in memory whole, so a small
//! package declaring a 2 GiB long name (a gzip of zeros) would otherwise take gigabytes.
//!
//! It follows the tar layout on its own: 512-byte headers, each followed by its data rounded up to
//! 512 bytes (GNU sparse extension blocks and a pax `size` override included).

use std::io::{self, Read};

/// The largest GNU long name / long link or pax header accepted (64 KiB).
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

const BLOCK: usize = 512;

pub struct TarGuard<R> {
    inner: R,
    state: State,
    header: Vec<u8>,
    /// A pax header's data, collected to read a `size` override for the next entry.
    pax: Vec<u8>,
    pending_size: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// GNU sparse extension blocks follow the header, then `data` bytes.
    SparseExtension { data: u64 },
    /// Passing `left` bytes of entry data (padding included); `pax` when it is a pax header's.
    Data { left: u64, pax: bool, real: u64 },
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            pax: Vec::new(),
            pending_size: None,
        }
    }

    fn take(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.state {
                State::Header => {
                    let n = (BLOCK - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.header.len() == BLOCK {
                        self.state = self.on_header()?;
                        self.header.clear();
                    }
                }
                State::SparseExtension { data } => {
                    let n = (BLOCK - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.header.len() == BLOCK {
                        let more = self.header[504] != 0;
                        self.header.clear();
                        if !more {
                            self.state = data_state(data, false);
                        }
                    }
                }
                State::Data { left, pax, real } => {
                    let n = (left.min(bytes.len() as u64)) as usize;
                    if pax {
                        let room = (real as usize).saturating_sub(self.pax.len());
                        self.pax.extend_from_slice(&bytes[..n.min(room)]);
                    }
                    bytes = &bytes[n..];
                    let left = left - n as u64;
                    self.state = State::Data { left, pax, real };
                    if left == 0 {
                        if pax {
                            self.pending_size = pax_size(&self.pax);
                            self.pax.clear();
                        }
                        self.state = State::Header;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_header(&mut self) -> io::Result<State> {
        let h = &self.header;
        if h.iter().all(|&b| b == 0) {
            return Ok(State::Header);
        }
        let kind = h[156];
        let size = octal_or_binary(&h[124..136]);
        if matches!(kind, b'L' | b'K' | b'x' | b'g' | b'X') {
            if size > MAX_EXTENSION_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a {} header declares {size} bytes, over the limit of {MAX_EXTENSION_BYTES}; package refused",
                        if matches!(kind, b'L' | b'K') {
                            "GNU long name"
                        } else {
                            "pax"
                        }
                    ),
                ));
            }
            return Ok(data_state(size, kind == b'x' || kind == b'X'));
        }
        let size = self.pending_size.take().unwrap_or(size);
        // GNU sparse file: extension blocks follow while the header says so.
        if kind == b'S' && h[482] != 0 {
            return Ok(State::SparseExtension { data: size });
        }
        Ok(data_state(size, false))
    }
}

fn data_state(size: u64, pax: bool) -> State {
    let left = size.div_ceil(BLOCK as u64) * BLOCK as u64;
    if left == 0 {
        State::Header
    } else {
        State::Data {
            left,
            pax,
            real: size,
        }
    }
}

/// A tar numeric field: octal text, or base-256 when the top bit of the first byte is set.
fn octal_or_binary(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .fold(0u64, |n, &b| n.saturating_mul(256).saturating_add(b as u64));
    }
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    u64::from_str_radix(&text, 8).unwrap_or(0)
}

/// The `size` record of pax data (`"<len> size=<n>\n"` records).
fn pax_size(data: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|record| record.split_once(' ').map(|(_, kv)| kv))
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "size")
        .and_then(|(_, v)| v.trim().parse().ok())
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.take(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut archive = tar::Archive::new(TarGuard::new(bytes));
        let mut names = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            names.push(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
            io::copy(&mut entry, &mut io::sink())?;
        }
        Ok(names)
    }

    #[test]
    fn ordinary_packages_pass_with_long_names_and_pax_headers_within_the_limit() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("PMC1/{}/fig1.jpg", "d".repeat(300));
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        b.append_pax_extensions([("comment", &b"hi"[..])]).unwrap();
        b.append(
            &header("PMC1/a.jpg", tar::EntryType::Regular, 700),
            &[7u8; 700][..],
        )
        .unwrap();
        let bytes = b.into_inner().unwrap();
        assert_eq!(
            read_all(&bytes).unwrap(),
            vec![long, "PMC1/a.jpg".to_string()]
        );
    }

    #[test]
    fn a_huge_long_name_header_is_refused_before_it_is_read() {
        for kind in [tar::EntryType::GNULongName, tar::EntryType::XHeader] {
            let mut bytes = header("././@LongLink", kind, 2 << 30).as_bytes().to_vec();
            // Only the start of the declared data: the guard refuses at the header.
            bytes.extend_from_slice(&[b'a'; 4096]);
            let err = read_all(&bytes).unwrap_err();
            assert!(err.to_string().contains("over the limit"), "{err}");
        }
    }
}
