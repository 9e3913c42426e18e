//! `vital store …`: a curator's commands for the workspace itself — copying it between a
//! directory and a team server, and making reviewer roles on a server.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{exit, Context};
use crate::store::Workspace;

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a workspace (directory or postgresql:// server) into an empty one, every event with
    /// its time, reviewer and order; run it again after an interruption to finish.
    Copy(CopyArgs),
    /// Make a reviewer's own database role on the team server (-w) and print its password once.
    AddReviewer(AddReviewerArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The workspace to copy: a directory or a connection string.
    pub from: PathBuf,
    /// The empty workspace to copy into: a directory or a connection string.
    pub to: PathBuf,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddReviewerArgs {
    /// The reviewer's name, which is also their role: lower-case letters, digits and _.
    pub name: String,
    /// Print {"role", "password"} instead of the two lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: StoreArgs) -> anyhow::Result<i32> {
    match args.command {
        StoreCommand::Copy(args) => copy(ctx, args),
        StoreCommand::AddReviewer(args) => add_reviewer(ctx, args),
    }
}

fn copy(ctx: &Context, args: CopyArgs) -> anyhow::Result<i32> {
    let from = Workspace::open_existing(&args.from)?;
    let to = Workspace::open(&args.to)?;
    let bar = ctx.count_bar(0, "copying");
    let summary = from.copy_into(&to, &mut |table, rows| {
        bar.set_message(format!("copying {table}"));
        bar.set_position(rows);
        Ok(())
    })?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else if !ctx.quiet {
        println!(
            "copied {} rows from {} to {}{}",
            summary.rows,
            from.describe(),
            to.describe(),
            if summary.resumed {
                format!(
                    " (resumed; {} tables were already done)",
                    summary.tables_skipped
                )
            } else {
                String::new()
            }
        );
    }
    Ok(exit::OK)
}

fn add_reviewer(ctx: &Context, args: AddReviewerArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    let made = ws.add_reviewer(&args.name)?;
    if args.json {
        println!("{}", serde_json::to_string(&made)?);
    } else {
        println!("role: {}", made.role);
        println!("password: {}", made.password);
        if !ctx.quiet {
            eprintln!(
                "shown once and stored nowhere: give it to {} over a safe channel; they connect with -w postgresql://{}@…",
                made.role, made.role
            );
        }
    }
    Ok(exit::OK)
}
