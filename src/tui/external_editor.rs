//! `C-e`: the reviewer's own editor (`$VISUAL`, else `$EDITOR`, else `vi`) on a temporary file
//! holding the answer, the way git and lazygit do it. The screen is handed over while it runs:
//! the input thread is parked first (else it would take the editor's keys), raw mode and the
//! alternate screen are left, and both come back afterwards whatever the editor did.

use std::path::Path;
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::store::MAX_EDIT_CHARS;

/// Lets the UI thread park the terminal-input thread while another program owns the terminal.
#[derive(Debug, Default)]
pub struct InputGate {
    /// (pause asked, input thread parked)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl InputGate {
    /// Asks the input thread to stop reading and waits (a bounded time) until it has.
    pub fn pause(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.0 = true;
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !state.1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // The input thread is gone (its terminal closed): nothing to wait for.
                break;
            }
            match self.changed.wait_timeout(state, left) {
                Ok((next, _)) => state = next,
                Err(_) => return,
            }
        }
    }

    pub fn resume(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = false;
        }
        self.changed.notify_all();
    }

    /// Called by the input thread between reads: blocks while a pause is asked.
    pub fn park_if_paused(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !state.0 {
            return;
        }
        state.1 = true;
        self.changed.notify_all();
        while state.0 {
            match self.changed.wait(state) {
                Ok(next) => state = next,
                Err(_) => return,
            }
        }
        state.1 = false;
    }
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi`; split on spaces so `code --wait`
/// works (a path with spaces needs a wrapper script, as with git).
pub fn editor_command(visual: Option<&str>, editor: Option<&str>) -> Vec<String> {
    let chosen = [visual, editor]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|e| !e.is_empty())
        .unwrap_or("vi");
    chosen.split_whitespace().map(str::to_string).collect()
}

/// Runs `command` on a temporary file holding `text` and returns the file's text afterwards.
/// An editor that cannot start or exits non-zero is an error: nothing is to be recorded.
pub fn edit_in(command: &[String], text: &str, dir: &Path) -> anyhow::Result<String> {
    let (program, args) = command
        .split_first()
        .context("no editor command (set $VISUAL or $EDITOR)")?;
    // The answer is clinical text: the folder is the reviewer's alone (0700), whatever the
    // umask and whoever else can read the workspace's folder.
    let mut builder = tempfile::Builder::new();
    builder.prefix("vital-edit-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let scratch = builder
        .tempdir_in(dir)
        .with_context(|| format!("cannot make a temporary folder in {}", dir.display()))?;
    let file = scratch.path().join("answer.txt");
    // A final newline, as editors expect; taken off again by the caller.
    std::fs::write(&file, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    let status = Command::new(program)
        .args(args)
        .arg(&file)
        .status()
        .with_context(|| format!("cannot start the editor `{}`", command.join(" ")))?;
    anyhow::ensure!(
        status.success(),
        "the editor `{}` exited with {status}",
        command.join(" ")
    );
    // Bounded: a 4-byte character at most per allowed character, plus the newline.
    let bound = (MAX_EDIT_CHARS * 4 + 1) as u64;
    let size = std::fs::metadata(&file)
        .with_context(|| format!("the editor left no file at {}", file.display()))?
        .len();
    anyhow::ensure!(
        size <= bound,
        "the edited file has {size} bytes; an edited answer holds at most {MAX_EDIT_CHARS} characters"
    );
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    String::from_utf8(bytes).context("the edited file is not UTF-8 text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_is_visual_then_editor_then_vi() {
        assert_eq!(editor_command(Some("nvim"), Some("nano")), ["nvim"]);
        assert_eq!(
            editor_command(Some(" "), Some("code --wait")),
            ["code", "--wait"]
        );
        assert_eq!(editor_command(None, None), ["vi"]);
    }

    #[test]
    fn an_editor_that_changes_the_file_returns_its_text_and_a_failing_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let sed = ["sed".to_string(), "-i".into(), "s/left/right/".into()];
        assert_eq!(
            edit_in(&sed, "left lung", dir.path()).unwrap(),
            "right lung\n"
        );
        let failing = ["false".to_string()];
        let err = edit_in(&failing, "x", dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("exited with"), "{err:#}");
        let missing = ["/nonexistent/editor".to_string()];
        assert!(edit_in(&missing, "x", dir.path()).is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    /// The answer's folder is the reviewer's alone, whatever the umask.
    #[cfg(unix)]
    #[test]
    fn the_answer_waits_in_a_folder_only_the_reviewer_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let editor = [
            "sh".to_string(),
            "-c".into(),
            r#"stat -c %a "$(dirname "$1")" > "$1""#.into(),
            "sh".into(),
        ];
        assert_eq!(edit_in(&editor, "x", dir.path()).unwrap(), "700\n");
    }

    #[test]
    fn a_paused_input_thread_parks_until_resumed() {
        let gate = std::sync::Arc::new(InputGate::default());
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (g, r) = (gate.clone(), reads.clone());
        let thread = std::thread::spawn(move || {
            for _ in 0..200 {
                g.park_if_paused();
                r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        gate.pause();
        let parked_at = reads.load(std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            parked_at,
            "no read while paused"
        );
        gate.resume();
        thread.join().unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 200);
    }
}
