//! `vital demo`: the bundled demo workspace, opened in the review screen.

use std::io::IsTerminal;

use clap::Args;

use super::{exit, Context};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the demo workspace's stats instead of opening the review screen (the default when
    /// not on a terminal).
    #[arg(long)]
    pub stats: bool,

    #[command(flatten)]
    pub review: super::review::ReviewArgs,
}

pub fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<i32> {
    // The demo lives beside the default workspace unless -w names another directory.
    let dir = if ctx.workspace_given {
        ctx.workspace_dir.clone()
    } else {
        crate::config::project_dirs()
            .map(|d| d.data_dir().join("demo"))
            .ok_or_else(|| {
                anyhow::anyhow!("cannot find the platform data directory; pass -w DIR")
            })?
    };
    let ws = crate::demo::open(&dir)?;
    let on_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if args.stats || !on_terminal {
        if !ctx.quiet {
            println!(
                "demo workspace: review it with `{} -w {} review`\n",
                shell_word(&this_program()),
                shell_word(&dir.display().to_string())
            );
        }
        super::stats::print_stats(&ws, false)?;
        return Ok(exit::OK);
    }
    drop(ws);
    super::review::review(ctx, dir, args.review)
}

/// How to run this very program again from a shell: its full path (so the hint works after
/// `cargo run`, before `vital` is on the PATH), or `vital` when that is what the PATH finds.
fn this_program() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "vital".to_string();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::canonicalize(dir.join("vital")).ok() == std::fs::canonicalize(&exe).ok()
        })
    });
    if on_path {
        "vital".to_string()
    } else {
        exe.display().to_string()
    }
}

/// `word` quoted for a POSIX shell when it holds anything but plain path characters.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn hint_words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(
            shell_word("/home/a/.local/share/vital/demo"),
            "/home/a/.local/share/vital/demo"
        );
        assert_eq!(shell_word("/tmp/my demo"), "'/tmp/my demo'");
        assert_eq!(shell_word("/tmp/it's"), "'/tmp/it'\\''s'");
    }
}
