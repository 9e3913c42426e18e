//! All-or-nothing output files, the one way vital writes a file a user or a rerun relies on (exports,
//! downloaded figures): written to a temporary file in the target's directory, fsynced, then renamed
//! over the target. Dropping an unfinished file removes the temporary one, so a failed or cancelled
//! write never leaves a partial file under the target's name, and a link at the target is replaced,
//! never followed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// A buffered writer into a temporary file that becomes `target` on [`AtomicFile::commit`].
pub struct AtomicFile {
    target: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    bytes: u64,
}

impl AtomicFile {
    pub fn create(target: &Path) -> anyhow::Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        anyhow::ensure!(
            dir.is_dir(),
            "cannot write {}: the directory {} does not exist",
            target.display(),
            dir.display()
        );
        anyhow::ensure!(
            !target.is_dir(),
            "cannot write {}: it is a directory",
            target.display()
        );
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Self {
            target: target.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 20, temp),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, fsyncs, renames onto the target and fsyncs the directory. Returns the file's
    /// size and SHA-256.
    pub fn commit(self) -> anyhow::Result<(u64, String)> {
        let target = self.target;
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", target.display()))?;
        temp.as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", target.display()))?;
        temp.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| {
                format!("cannot rename the temporary file onto {}", target.display())
            })?;
        if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Makes the rename itself durable; not possible on every platform, hence no error.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok((self.bytes, hex::encode(self.hasher.finalize())))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.writer.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_a_dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        std::fs::write(&target, "old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half a fi").unwrap();
            // dropped without commit: an interrupted export
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        let (bytes, sha) = f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(bytes, 3);
        assert_eq!(sha, hex::encode(Sha256::digest(b"new")));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = AtomicFile::create(&dir.path().join("nope/out.json"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
