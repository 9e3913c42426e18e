//! `vital team …`: the curator's plan for spreading work over reviewers, and how the team is
//! doing. `vital team work` (hidden) serves and decides samples the way the review screen
//! does, without a terminal: scripted reviewers for tests and load checks.

use clap::{Args, Subcommand};

use anyhow::Context as _;

use super::{exit, Context};
use crate::store::{DecisionKind, NewDecision, PlanOrder, TeamPlan};

#[derive(Debug, Args)]
pub struct TeamArgs {
    #[command(subcommand)]
    pub command: TeamCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Print the plan, or change it (changes apply to every sample not yet complete).
    Plan(PlanArgs),
    /// Per reviewer: samples finished, leased now, pace, agreement (κ), last active; overall
    /// progress and an ETA.
    Status(StatusArgs),
    /// Store FILE as the next version of the reviewers' guidelines, or print the version in
    /// force. The review screen shows a new version to each reviewer; every decision records the
    /// version it was made under.
    Guidelines(GuidelinesArgs),
    /// Serve and decide samples as reviewer NAME without the review screen (tests, load checks).
    #[command(hide = true)]
    Work(WorkArgs),
}

#[derive(Debug, Args)]
pub struct GuidelinesArgs {
    /// A Markdown or text file (UTF-8, at most 256 KiB). Without it: print the version in force.
    pub file: Option<std::path::PathBuf>,
    /// Print the version in force as JSON ({version, text, stored_at, stored_by}, or null).
    #[arg(long, conflicts_with = "file")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Reviewers on each overlapping sample (K).
    #[arg(long, value_name = "K")]
    pub per_sample: Option<u32>,
    /// Share of samples that get K reviewers (the rest get one), e.g. 30%.
    #[arg(long, value_name = "P%")]
    pub overlap: Option<String>,
    /// Serve REVIEWER only samples of these domains (REVIEWER= removes the route). Repeatable.
    #[arg(long, value_name = "REVIEWER=DOMAIN,…")]
    pub route: Vec<String>,
    /// REVIEWER finishes at most N samples (REVIEWER=none removes the cap). Repeatable.
    #[arg(long, value_name = "REVIEWER=N")]
    pub cap: Vec<String>,
    /// A sample opened and not decided on within M minutes is served to others again (a
    /// fraction is fine: 0.5 is 30 seconds).
    #[arg(long, value_name = "M")]
    pub lease_minutes: Option<f64>,
    /// The order samples are served in: file, random or uncertainty.
    #[arg(long, value_name = "ORDER")]
    pub order: Option<String>,
    /// Serve each reviewer a gold sample (`vital import --format verdicts --gold FILE`) after
    /// every N other samples they finish, looking like any other (0: no gold checks).
    #[arg(long, value_name = "N")]
    pub gold_every: Option<u32>,
    /// Each reviewer finishes N gold samples before any other (0: no onboarding).
    #[arg(long, value_name = "N")]
    pub onboarding: Option<u32>,
    /// A sample whose planned reviewers contradict each other on an answer gets up to N more
    /// reviewers before it goes to adjudication (0: none).
    #[arg(long, value_name = "N")]
    pub extra_when_split: Option<u32>,
    /// Remove the plan: every reviewer is served every sample again.
    #[arg(long, conflicts_with_all = ["per_sample", "overlap", "route", "cap", "lease_minutes", "order", "gold_every", "onboarding", "extra_when_split"])]
    pub off: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WorkArgs {
    /// The reviewer to decide as (on a server: the connection's role).
    #[arg(long)]
    pub reviewer: String,
    /// Stop after finishing this many samples (default: until nothing is served).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Hold each sample this long before deciding (reading time), in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// When nothing is served, ask again (others' leases may lapse) until the plan is complete
    /// or --seconds runs out, instead of stopping.
    #[arg(long)]
    pub wait: bool,
}

pub fn run(ctx: &Context, args: TeamArgs) -> anyhow::Result<i32> {
    match args.command {
        TeamCommand::Plan(args) => plan(ctx, args),
        TeamCommand::Status(args) => status(ctx, args),
        TeamCommand::Work(args) => work(ctx, args),
        TeamCommand::Guidelines(args) => guidelines(ctx, args),
    }
}

fn guidelines(ctx: &Context, args: GuidelinesArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    let Some(path) = args.file else {
        let current = ws.current_guidelines()?;
        if args.json {
            println!("{}", serde_json::to_string(&current)?);
            return Ok(exit::OK);
        }
        match current {
            None => {
                eprintln!("no guidelines stored yet: `vital team guidelines FILE.md` stores them")
            }
            Some(g) => {
                if !ctx.quiet {
                    eprintln!(
                        "guidelines version {}, stored {} by {}",
                        g.version, g.stored_at, g.stored_by
                    );
                }
                // Printed on a reviewer's terminal: no escape sequences get through.
                let text = crate::data::plain_text(&g.text);
                print!("{text}");
                if !text.ends_with('\n') && !text.is_empty() {
                    println!();
                }
            }
        }
        return Ok(exit::OK);
    };
    let text = read_guidelines(&path)?;
    // Who stored it: the server role, else the configured reviewer name, else "curator".
    let by = match ws.role()? {
        Some(role) => role,
        None => ctx.config.reviewer().unwrap_or_else(|| "curator".into()),
    };
    match ws.store_guidelines(&text, &by)? {
        crate::store::GuidelinesStored::New(version) => println!(
            "stored guidelines version {version} ({} bytes) from {}; each reviewer's screen shows it before their next decision",
            text.len(),
            path.display()
        ),
        crate::store::GuidelinesStored::Unchanged(version) => println!(
            "{} is guidelines version {version} already: nothing stored",
            path.display()
        ),
    }
    Ok(exit::OK)
}

/// The file's text: at most [`crate::store::MAX_GUIDELINES_BYTES`] of UTF-8 (a leading BOM
/// dropped), read no further than that.
fn read_guidelines(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let max = crate::store::MAX_GUIDELINES_BYTES;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the guidelines {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the guidelines {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() <= max,
        "{}: guidelines are at most {max} bytes (256 KiB)",
        path.display()
    );
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {} is not valid UTF-8)",
            path.display(),
            e.utf8_error().valid_up_to() + 1
        )
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_string())
}

fn plan(ctx: &Context, args: PlanArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    if args.off {
        ws.clear_team_plan()?;
        if !ctx.quiet {
            eprintln!("no team plan: every reviewer is served every sample");
        }
        return Ok(exit::OK);
    }
    let changing = args.per_sample.is_some()
        || args.overlap.is_some()
        || !args.route.is_empty()
        || !args.cap.is_empty()
        || args.lease_minutes.is_some()
        || args.order.is_some()
        || args.gold_every.is_some()
        || args.onboarding.is_some()
        || args.extra_when_split.is_some();
    let current = ws.team_plan()?;
    let plan = if changing {
        let plan = apply_changes(current.unwrap_or_default(), &args)?;
        ws.set_team_plan(&plan)?;
        Some(plan)
    } else {
        current
    };
    match (&plan, args.json) {
        (plan, true) => println!("{}", serde_json::to_string(plan)?),
        (None, false) => println!(
            "no team plan: every reviewer is served every sample (set one with --per-sample, --overlap, …)"
        ),
        (Some(plan), false) => print!("{}", describe_plan(plan)),
    }
    Ok(exit::OK)
}

/// `plan` with the flags' changes, checked.
fn apply_changes(mut plan: TeamPlan, args: &PlanArgs) -> anyhow::Result<TeamPlan> {
    if let Some(k) = args.per_sample {
        plan.per_sample = k;
    }
    if let Some(overlap) = &args.overlap {
        plan.overlap_basis_points = parse_percent(overlap)?;
    }
    if let Some(m) = args.lease_minutes {
        anyhow::ensure!(
            m.is_finite() && m > 0.0,
            "--lease-minutes {m}: a lease is a positive number of minutes"
        );
        plan.lease_seconds = (m * 60.0).round().min(f64::from(u32::MAX)) as u32;
    }
    if let Some(order) = &args.order {
        plan.order = PlanOrder::parse(order)?;
    }
    if let Some(n) = args.gold_every {
        plan.gold_every = n;
    }
    if let Some(n) = args.onboarding {
        plan.onboarding = n;
    }
    if let Some(n) = args.extra_when_split {
        plan.extra_when_split = n;
    }
    for route in &args.route {
        let (who, domains) = split_pair(route, "--route", "REVIEWER=DOMAIN,…")?;
        let domains: Vec<String> = domains
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect();
        if domains.is_empty() {
            plan.routes.remove(&who);
        } else {
            plan.routes.insert(who, domains);
        }
    }
    for cap in &args.cap {
        let (who, n) = split_pair(cap, "--cap", "REVIEWER=N")?;
        if n == "none" {
            plan.caps.remove(&who);
        } else {
            let n: u64 = n.parse().map_err(|_| {
                anyhow::anyhow!("--cap {cap}: `{n}` is not a number of samples (or `none`)")
            })?;
            plan.caps.insert(who, n);
        }
    }
    plan.check()?;
    Ok(plan)
}

fn split_pair(text: &str, flag: &str, form: &str) -> anyhow::Result<(String, String)> {
    let Some((who, rest)) = text.split_once('=') else {
        anyhow::bail!("{flag} {text}: expected {form}");
    };
    let who = who.trim();
    anyhow::ensure!(!who.is_empty(), "{flag} {text}: no reviewer named");
    Ok((who.to_string(), rest.trim().to_string()))
}

/// "30%", "30" or "12.5%" → basis points.
fn parse_percent(text: &str) -> anyhow::Result<u32> {
    let number = text.trim().trim_end_matches('%').trim();
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--overlap {text}: expected a share such as 30%"))?;
    anyhow::ensure!(
        (0.0..=100.0).contains(&value),
        "--overlap {text}: a share is 0% to 100%"
    );
    Ok((value * 100.0).round() as u32)
}

fn describe_plan(plan: &TeamPlan) -> String {
    let mut out = String::new();
    let overlap = f64::from(plan.overlap_basis_points) / 100.0;
    out.push_str(&format!(
        "reviewers per sample: {} on {overlap}% of samples, 1 on the rest\n",
        plan.per_sample
    ));
    let minutes = f64::from(plan.lease_seconds) / 60.0;
    out.push_str(&format!("lease: {minutes} minutes\n"));
    out.push_str(&format!("order: {}\n", plan.order.label()));
    if plan.routes.is_empty() {
        out.push_str("routes: none (every reviewer is served every domain)\n");
    }
    for (who, domains) in &plan.routes {
        out.push_str(&format!("route: {who} → {}\n", domains.join(", ")));
    }
    for (who, n) in &plan.caps {
        out.push_str(&format!("cap: {who} finishes at most {n} samples\n"));
    }
    if plan.extra_when_split > 0 {
        out.push_str(&format!(
            "split samples: up to {} more reviewers before adjudication\n",
            plan.extra_when_split
        ));
    }
    match plan.gold_every {
        0 => out.push_str("gold checks: none\n"),
        n => out.push_str(&format!(
            "gold checks: a gold sample after every {n} samples a reviewer finishes\n"
        )),
    }
    if plan.onboarding > 0 {
        out.push_str(&format!(
            "onboarding: {} gold samples before any other\n",
            plan.onboarding
        ));
    }
    out
}

fn status(ctx: &Context, args: StatusArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    let status = ws.team_status()?;
    if args.json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        let planned = ws.team_plan()?.is_some();
        for line in crate::tui::view::team_status_lines(&status, planned) {
            println!("{line}");
        }
    }
    Ok(exit::OK)
}

/// Serves and decides like the review screen: take the next place (`claim_next`), hold it,
/// accept every answer of every answered round, settle the place (`settle_lease`), and print
/// one JSON line per event, `{"event": "served"|"finished", "sample", "reviewer", "at_ms"}`.
fn work(ctx: &Context, args: WorkArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    // Several scripted reviewers on one directory take turns at its write lock.
    ws.set_write_wait(std::time::Duration::from_secs(30))?;
    let reviewer = match ws.role()? {
        Some(role) => role,
        None => args.reviewer.trim().to_string(),
    };
    let started = std::time::Instant::now();
    let mut finished = 0usize;
    let mut last = None;
    let out_of_time = || {
        args.seconds
            .is_some_and(|s| started.elapsed().as_secs_f64() >= s)
    };
    while args.samples.is_none_or(|n| finished < n) && !out_of_time() {
        let Some((key, check)) = ws.claim_next_or_check(&reviewer, last)? else {
            if args.wait && ws.plan_progress()?.2 > 0 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            break;
        };
        if !check {
            // A gold check is served out of order: the next search starts where it was.
            last = Some(key);
        }
        event("served", key, &reviewer);
        if args.hold_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(args.hold_ms));
        }
        let Some(stored) = ws.load_sample(key)? else {
            continue;
        };
        for (round, answers) in stored.round_ids.iter().zip(&stored.answer_ids) {
            for &answer in answers {
                ws.record(
                    &reviewer,
                    &NewDecision {
                        sample_key: key,
                        round_id: Some(*round),
                        answer_id: Some(answer),
                        kind: DecisionKind::Accept,
                        value: None,
                        shown_order: None,
                        figure_shown: None,
                    },
                )?;
            }
        }
        ws.settle_lease(&reviewer, key)?;
        event("finished", key, &reviewer);
        finished += 1;
    }
    ws.release_leases(&reviewer)?;
    Ok(exit::OK)
}

fn event(what: &str, key: i64, reviewer: &str) {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    println!(
        "{}",
        serde_json::json!({"event": what, "sample": key, "reviewer": reviewer, "at_ms": at_ms})
    );
}
