//! `vital stats [--json]`

use std::io::Write;

use clap::Args;

use super::{exit, Context};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print a JSON object (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List every answer on which reviewers' verdicts contradict each other.
    #[arg(long)]
    pub conflicts: bool,
}

pub fn run(ctx: &Context, args: StatsArgs) -> anyhow::Result<i32> {
    match print(ctx, &args) {
        // `vital stats | head`: the reader has gone, which is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(exit::OK)
        }
        other => other,
    }
}

fn print(ctx: &Context, args: &StatsArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    if args.json {
        let mut out = std::io::stdout().lock();
        // The counts plus reviewers' decisions, agreement and conflicts.
        let mut value = serde_json::to_value(ws.stats()?)?;
        // Blind review: a reviewer's counts are their own; agreement is the curator's.
        let report = if ws.is_curator()? {
            Some(ws.agreement_report()?)
        } else {
            None
        };
        if let (Some(obj), Some(report)) = (value.as_object_mut(), report) {
            obj.insert(
                "reviewer_decisions".into(),
                serde_json::to_value(&report.decisions)?,
            );
            obj.insert("agreement".into(), serde_json::to_value(&report.agreement)?);
            obj.insert("conflicts".into(), serde_json::to_value(&report.conflicts)?);
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(exit::OK);
    }
    print_stats(&ws, false)?;
    print_agreement(&ws, args.conflicts)?;
    Ok(exit::OK)
}

pub fn print_stats(ws: &crate::store::Workspace, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let stats = ws.stats()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        return Ok(());
    }
    let mut rows = vec![
        ("samples", stats.samples),
        ("  demonstrations", stats.demos),
        ("rounds", stats.rounds),
        ("  unanswered", stats.unanswered_rounds),
        ("answers", stats.answers),
        ("judgments", stats.judgments),
        ("human pairs", stats.human_pairs),
        ("edited answers", stats.edits),
        ("decided without the figure", stats.decided_without_figure),
        ("reviewers", stats.reviewers),
        ("judge scores", stats.model_scores),
        ("selector runs", stats.selector_runs),
        ("scored answers", stats.scored_answers),
        ("image URLs", stats.image_urls),
        ("imported files", stats.sources),
    ];
    // Below "human pairs": how they were made.
    let at = rows
        .iter()
        .position(|(name, _)| *name == "human pairs")
        .unwrap_or(0)
        + 1;
    let kinds = [
        ("  same round", "same-round"),
        ("  same figure", "same-figure"),
        ("  corrections", "correction"),
    ];
    for (i, (label, kind)) in kinds.into_iter().enumerate() {
        let count = stats.human_pairs_by_kind.get(kind).copied().unwrap_or(0);
        rows.insert(at + i, (label, count));
    }
    // The label column is as wide as the longest label, plus two spaces.
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 2;
    writeln!(out, "{:<width$}{}", "workspace", ws.describe())?;
    for (name, value) in rows {
        writeln!(out, "{name:<width$}{value}")?;
    }
    if !stats.reasons.is_empty() {
        writeln!(out, "reasons for ✗ (most given first)")?;
        for r in &stats.reasons {
            writeln!(
                out,
                "  {:<width$}{}",
                r.reason,
                r.count,
                width = width.max(28) - 2
            )?;
        }
    }
    Ok(())
}

/// Decisions per reviewer, agreement where reviewers overlap, and (with `conflicts`) each conflict.
pub fn print_agreement(ws: &crate::store::Workspace, conflicts: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if !ws.is_curator()? {
        writeln!(
            out,
            "\n(your own decisions only: agreement between reviewers is the curator's, reviewers review blind)"
        )?;
        return Ok(());
    }
    let report = ws.agreement_report()?;
    if report.decisions.is_empty() {
        return Ok(());
    }
    writeln!(
            out,
        "\ndecisions in force per reviewer (✓ ✗ prefer tie rate flag note demo edit reason | total, events)"
    )?;
    for d in &report.decisions {
        writeln!(
            out,
            "  {:<14}{:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} | {:>6} {:>6}",
            d.reviewer,
            d.accept,
            d.reject,
            d.prefer,
            d.tie,
            d.rate,
            d.flag,
            d.note,
            d.demo,
            d.edit,
            d.reason,
            d.total,
            d.events
        )?;
    }
    let a = &report.agreement;
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    if a.items == 0 {
        writeln!(
            out,
            "agreement       no answer decided by two or more reviewers yet"
        )?;
    } else {
        writeln!(
            out,
            "agreement       {} answers decided by 2+ of {}: {:.1}% unanimous, Cohen's κ {}, Krippendorff's α {}",
            a.items,
            a.reviewers.join(", "),
            a.percent_agreement.unwrap_or(0.0),
            fmt(a.cohen_kappa),
            fmt(a.krippendorff_alpha)
        )?;
        for p in &a.pairs {
            writeln!(
                out,
                "  {} & {}: {} shared, {:.1}% agree, κ {}",
                p.a,
                p.b,
                p.items,
                p.percent.unwrap_or(0.0),
                fmt(p.cohen_kappa)
            )?;
        }
        writeln!(
            out,
            "conflicts       {} ({} resolved by a final decision){}",
            a.conflicts,
            a.resolved_conflicts,
            if conflicts || a.conflicts == 0 {
                ""
            } else {
                "; list them with --conflicts"
            }
        )?;
    }
    if conflicts {
        for c in &report.conflicts {
            let resolution = match &c.resolution {
                Some(f) => format!(
                    "  → final {}{}",
                    if f.accepted { "✓" } else { "✗" },
                    f.by.as_deref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default()
                ),
                None => String::new(),
            };
            // Sample ids come from the data: printed without their control sequences.
            let line = format!(
                "  {} Q{} Answer {}: ✓ {} / ✗ {}{resolution}",
                c.sample_id,
                c.round,
                c.answer,
                c.accepted_by.join(", "),
                c.rejected_by.join(", ")
            );
            writeln!(out, "{}", crate::data::plain_text(&line))?;
        }
    }
    Ok(())
}
