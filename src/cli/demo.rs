//! `vital demo`: the bundled demo workspace.

use clap::Args;

use super::{exit, Context};

#[derive(Debug, Args)]
pub struct DemoArgs {}

pub fn run(ctx: &Context, _args: DemoArgs) -> anyhow::Result<i32> {
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
    if !ctx.quiet {
        println!(
            "demo workspace ready: try `vital -w {} show demo-ct-1`\n",
            dir.display()
        );
    }
    super::stats::print_stats(&ws, false)?;
    Ok(exit::OK)
}
