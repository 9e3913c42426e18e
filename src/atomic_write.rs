//! All-or-nothing output files, the one way vital writes a file a user or a rerun relies on (exports,
//! downloaded figures): written to a temporary file in the target's directory, fsynced, then renamed
//! over the target. Dropping an unfinished file removes the temporary one, so a failed or cancelled
//! write never leaves a partial file under the target's name, and a link at the target is replaced,
//! never followed. The file gets the permissions of any other output (0666 less the umask), not the
//! temporary file's 0600. A temporary file left by a killed process (`.NAME.*.partial`, no longer
//! locked by a live writer, and older than a minute: a writer locks its file just after creating
//! it, and a file of that instant is not yet locked) is removed by a later write of the same
//! target. [`commit_pair`] puts
//! an output and its manifest in place so that a crash never pairs a new output with an old
//! manifest.

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
        let prefix = format!(".{name}.");
        remove_abandoned(&dir, &prefix);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(PARTIAL);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The mode given to open(2): the kernel applies the umask, as for any created file.
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        // Held until the file is committed or dropped: tells a later writer this one is alive.
        let _ = temp.as_file().try_lock();
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
        let done = self.finish()?;
        let summary = (done.bytes, done.sha256.clone());
        done.persist()?;
        Ok(summary)
    }

    /// Flushes and fsyncs the temporary file, not yet renamed: see [`Finished::persist`].
    pub fn finish(self) -> anyhow::Result<Finished> {
        let target = self.target;
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", target.display()))?;
        temp.as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", target.display()))?;
        Ok(Finished {
            target,
            temp,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// A complete, synced temporary file waiting to be renamed onto its target.
pub struct Finished {
    target: PathBuf,
    temp: tempfile::NamedTempFile,
    pub bytes: u64,
    pub sha256: String,
}

impl Finished {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the file onto its target and fsyncs the directory.
    pub fn persist(self) -> anyhow::Result<()> {
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| {
                format!("cannot rename the temporary file onto {}", target.display())
            })?;
        sync_dir_of(&target);
        Ok(())
    }
}

/// Puts `output` and its `manifest` in place: the old manifest is removed first, then the output
/// and the manifest are renamed in that order. A crash at any point leaves the old pair, the new
/// output without a manifest, or the new pair; never a new output beside an old manifest.
pub fn commit_pair(output: Finished, manifest: Finished) -> anyhow::Result<()> {
    match std::fs::remove_file(&manifest.target) {
        Ok(()) => sync_dir_of(&manifest.target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot replace the manifest {}", manifest.target.display())
            })
        }
    }
    output.persist()?;
    manifest.persist()
}

/// Makes a rename in `target`'s directory durable; not possible on every platform, hence no error.
fn sync_dir_of(target: &Path) {
    if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The temporary files' suffix.
const PARTIAL: &str = ".partial";

/// A temporary file younger than this may be a live writer's that has not locked it yet.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes `dir/<prefix>*.partial` files no live writer holds (their writer was killed).
fn remove_abandoned(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) || !name.ends_with(PARTIAL) {
            continue;
        }
        // Only plain files: a link or folder of that name is not ours to touch.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // Between creating its file and locking it a writer holds no lock: a second writer of
        // the same target at that instant must not take the file away from under it.
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < ABANDONED_AFTER);
        if young {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
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
    fn partial_files_of_a_killed_writer_are_removed_by_the_next_write_but_a_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        // What a writer killed with SIGKILL leaves: a temporary file nobody holds, for a while.
        let old = |path: &Path| {
            std::fs::write(path, "half").unwrap();
            let then = std::time::SystemTime::now() - 2 * ABANDONED_AFTER;
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(then)
                .unwrap();
        };
        let left = dir.path().join(".out.json.AbC123.partial");
        old(&left);
        let other = dir.path().join(".other.json.AbC123.partial");
        old(&other);
        // A writer that has just created its file and not yet locked it.
        let starting = dir.path().join(".out.json.XyZ789.partial");
        std::fs::write(&starting, "").unwrap();
        let live = AtomicFile::create(&target).unwrap();
        assert!(!left.exists(), "the abandoned temporary file is removed");
        assert!(
            starting.exists(),
            "a file of this instant is not taken away"
        );
        std::fs::remove_file(&starting).unwrap();
        assert!(other.exists(), "another target's file is left alone");
        let partials = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(".out.json.")
                })
                .count()
        };
        let mut second = AtomicFile::create(&target).unwrap();
        second.write_all(b"x").unwrap();
        second.commit().unwrap();
        assert_eq!(partials(), 1, "a live writer's file is kept");
        drop(live);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
        assert_eq!(partials(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_follows_the_umask_like_any_other_output() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let target = dir.path().join("out.json");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"x").unwrap();
        f.commit().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), mode(&plain));
        assert_ne!(
            mode(&target),
            0o600,
            "not the temporary file's private mode"
        );
    }

    /// Each state a crash can leave while a pair is put in place.
    #[test]
    fn a_new_output_is_never_left_beside_an_old_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        let manifest = dir.path().join("out.json.manifest.json");
        std::fs::write(&out, "old").unwrap();
        std::fs::write(&manifest, "old").unwrap();
        let finish = |target: &Path| {
            let mut f = AtomicFile::create(target).unwrap();
            f.write_all(b"new").unwrap();
            f.finish().unwrap()
        };
        // The manifest cannot be put in place (its temporary file is gone): a crash right after
        // the output's rename looks the same on disk.
        let (o, m) = (finish(&out), finish(&manifest));
        std::fs::remove_file(m.temp.path()).unwrap();
        assert!(commit_pair(o, m).is_err());
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        match (read(&out).as_deref(), read(&manifest).as_deref()) {
            (Some("old"), Some("old")) | (Some("new"), None) | (Some("new"), Some("new")) => {}
            other => panic!("output and manifest do not belong together: {other:?}"),
        }
        let (o, m) = (finish(&out), finish(&manifest));
        commit_pair(o, m).unwrap();
        assert_eq!(read(&out).as_deref(), Some("new"));
        assert_eq!(read(&manifest).as_deref(), Some("new"));
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
