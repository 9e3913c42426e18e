//! What arrives from the runtime and its workers (a loaded sample, a saved decision, search results, the journal, the ticker): each message's effect on the state.

use super::*;

impl App {
    pub(super) fn apply(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Loaded(view) => {
                if Some(view.key()) == self.queue.current() {
                    // The stored state wins over the queue's (e.g. after an undo elsewhere).
                    self.queue
                        .update(view.key(), view.decided(), view.flagged());
                    self.focus_round = decisions::first_undecided_round(&view);
                    self.focus_answer = 0;
                    self.scroll = 0;
                    self.current = Some(*view);
                }
                vec![]
            }
            Msg::SaveFailed(why) => {
                self.pending_trains = false;
                self.save_error = Some(why);
                vec![]
            }
            Msg::Saved { key, decisions, at } => {
                self.last_save = Some(at);
                self.save_error = None;
                self.journal_note = None;
                if std::mem::take(&mut self.pending_trains) {
                    self.decisions_since_train += 1;
                }
                let mut effects = self.apply_decisions(key, decisions, true);
                if self.train_after > 0 && self.decisions_since_train >= self.train_after {
                    effects.extend(self.request_training());
                }
                effects
            }
            Msg::SavedLocally {
                key,
                decisions,
                note,
            } => {
                self.save_error = None;
                self.journal_note = Some(note);
                if std::mem::take(&mut self.pending_trains) {
                    self.decisions_since_train += 1;
                }
                self.apply_decisions(key, decisions, true)
            }
            Msg::Journal { note, refused } => {
                if self.journal_note.is_some() && note.is_none() {
                    self.message = Some("every decision is stored in the workspace".into());
                }
                self.journal_note = note;
                if let Some(why) = refused {
                    self.save_error = Some(why);
                }
                vec![]
            }
            Msg::Tick => {
                self.ticks += 1;
                let mut effects = Vec::new();
                if self.journal_note.is_some() {
                    effects.push(Effect::RetryJournal);
                }
                if self.ticks.is_multiple_of(TICKS_PER_TEAM_LOOK) {
                    effects.push(Effect::LoadDisagreements);
                    effects.push(Effect::LoadGuidelines);
                }
                // While the workspace answers, the next few samples are read ahead (once each,
                // on the timer, so no key waits for them).
                let ahead = self.queue.upcoming(super::READ_AHEAD);
                if self.journal_note.is_none() && !ahead.is_empty() && ahead != self.prefetched {
                    self.prefetched = ahead.clone();
                    effects.push(Effect::Prefetch(ahead));
                }
                effects
            }
            Msg::Disagreements(keys) => {
                self.queue.set_disagreements(&keys);
                vec![]
            }
            Msg::Refreshed(view) => {
                if let Some(current) = self.current.as_mut().filter(|c| c.key() == view.key()) {
                    current.selector_scores = view.selector_scores;
                    current.judge_scores = view.judge_scores;
                    current.others = view.others;
                    current.decisions = view.decisions;
                    let (key, conflict) = (current.key(), current.unresolved_conflict());
                    let was = self.queue.entry_for(key).is_some_and(|e| e.disagreement);
                    if self.adjudicating && was && !conflict {
                        // Resolved: it leaves the adjudication queue (it stays on screen until
                        // the curator moves on).
                        self.queue.resolve(key);
                        let left = self.queue.position().1.saturating_sub(1);
                        self.message = Some(format!(
                            "every conflict on this sample is resolved: {left} sample{} left to adjudicate",
                            if left == 1 { "" } else { "s" }
                        ));
                    } else {
                        self.queue.set_disagreement(key, conflict);
                    }
                }
                vec![]
            }
            Msg::Trainer(event) => self.on_trainer(event),
            Msg::ExportProgress { done, total } => {
                let percent = (100 * done).checked_div(total).unwrap_or(0);
                self.export_status = Some(format!("exporting {percent}%"));
                vec![]
            }
            Msg::ExportDone(result) => {
                self.export_status = None;
                self.message = Some(match result {
                    Ok(summary) => summary,
                    Err(why) => format!("export failed: {why}"),
                });
                vec![]
            }
            Msg::Agreement(lines) => {
                // Computed in the background: it opens only if no key came since S, so it never
                // swallows a key meant for a decision.
                if self.mode == Mode::Normal && self.agreement == AgreementRequest::Waiting {
                    self.agreement = AgreementRequest::NotAsked;
                    self.mode = Mode::Agreement(lines);
                    self.message = None;
                } else {
                    self.message = Some("agreement ready: press S again".into());
                }
                vec![]
            }
            Msg::Undone {
                key,
                decisions,
                at,
                what,
            } => match key {
                None => {
                    self.message = Some("nothing to undo".into());
                    vec![]
                }
                Some(key) => {
                    self.last_save = Some(at);
                    let sample = self
                        .queue
                        .entry_for(key)
                        .map(|e| format!(" on {}", e.ext_id))
                        .unwrap_or_default();
                    self.message = Some(match what {
                        Some(what) => format!("undone: {what}{sample} (U redoes)"),
                        None => format!("undone{sample} (U redoes)"),
                    });
                    if self.current.as_ref().map(SampleView::key) == Some(key) {
                        let mut effects = self.apply_decisions(key, decisions, false);
                        // Others' verdicts (a withdrawn final decision) come back with a refresh.
                        effects.push(Effect::Refresh(key));
                        effects
                    } else {
                        // The undone decision was on another sample: go there so it can be seen.
                        self.queue.jump_to(key);
                        self.load_current()
                    }
                }
            },
            Msg::SearchDone { query, keys } => {
                self.message = Some(format!("{} sample(s) match \"{query}\"", keys.len()));
                self.queue.set_search(Some((query, keys)));
                self.load_current()
            }
            Msg::Found { id, key } => match key {
                Some(key) if self.queue.jump_to(key) => self.load_current(),
                _ => {
                    self.message = Some(format!("no sample with id `{id}`"));
                    vec![]
                }
            },
            Msg::Guidelines(now) => {
                self.on_guidelines(now);
                vec![]
            }
            Msg::FinalSaved => self
                .current
                .as_ref()
                .map(|v| vec![Effect::Refresh(v.key())])
                .unwrap_or_default(),
            Msg::TrainingUnavailable => {
                self.message = Some("training is not available in this session".into());
                vec![]
            }
            Msg::Image { key, update } => self.on_image(key, update),
            Msg::Redraw => vec![],
            Msg::Notice(text) => {
                self.message = Some(text);
                vec![]
            }
            Msg::NotServed(key) => {
                let on_screen = self.queue.current() == Some(key);
                self.queue.leave(key);
                if on_screen {
                    self.message =
                        Some("that sample is with other reviewers now: on to the next".into());
                    self.load_current()
                } else {
                    vec![]
                }
            }
            Msg::Instead { asked, view } => {
                if self.queue.current() != Some(asked) {
                    // The reviewer moved on meanwhile: the next sample they open asks again.
                    return vec![];
                }
                let stored = &view.stored;
                self.queue.serve_before(
                    asked,
                    crate::store::IndexEntry {
                        key: view.key(),
                        ext_id: stored.sample.id.clone(),
                        domains: stored.sample.domains.clone(),
                        decided: view.decided(),
                        flagged: view.flagged(),
                        disagreement: false,
                        rounds: stored.answer_ids.iter().filter(|a| !a.is_empty()).count(),
                    },
                );
                self.update(Msg::Loaded(view))
            }
            Msg::Paste(text) => self.on_paste(&text),
            Msg::Resized(width, _) => {
                self.screen_width = width;
                if let Mode::Edit(state) = &mut self.mode {
                    state
                        .editor
                        .set_width(crate::tui::editor::text_width(width));
                }
                vec![]
            }
            Msg::ExternalEditDone { target, result } => self.external_edit_done(target, result),
            Msg::Terminate => {
                self.quitting = true;
                // As `q` does: the executor lets go of the reviewer's places (an SSH session
                // that hung up frees its sample at once, not when the lease lapses).
                vec![Effect::Quit]
            }
            Msg::Error(e) => {
                self.message = Some(format!("error: {e}"));
                vec![]
            }
        }
    }
}

impl App {
    /// The guidelines in force, read now: a new version opens over the screen when nothing
    /// else is open (a key meant for a decision then only closes it), else the status line
    /// says so and `G` shows it.
    pub(super) fn on_guidelines(&mut self, now: Option<crate::store::Guidelines>) {
        let version = |g: &Option<crate::store::Guidelines>| g.as_ref().map(|g| g.version);
        let changed = version(&now) != version(&self.guidelines);
        self.guidelines = now;
        let Some(v) = version(&self.guidelines).filter(|_| changed) else {
            return;
        };
        if self.mode == Mode::Normal {
            self.guidelines_scroll = 0;
            self.mode = Mode::Guidelines;
            self.message = Some(format!("the guidelines changed: version {v}"));
        } else {
            self.message = Some(format!(
                "the guidelines changed (version {v}): G shows them"
            ));
        }
    }
}
