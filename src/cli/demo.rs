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
                "demo workspace: review it with `vital -w {} review`\n",
                dir.display()
            );
        }
        super::stats::print_stats(&ws, false)?;
        return Ok(exit::OK);
    }
    drop(ws);
    super::review::review(ctx, dir, args.review)
}
