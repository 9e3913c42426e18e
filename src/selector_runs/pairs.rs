//! Preference pairs from the workspace, built the method's way.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::selector::{PairSource, PreferencePair};
use crate::stable::SplitMix64;
use crate::store::{HumanPairKind, Workspace};

use super::RunSettings;

/// Which judge pairs a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JudgePairs {
    /// Two answers to the same question whose judge scores differ (vital's default).
    #[default]
    WithinRound,
    /// The method's: first-round answers grouped by judge score, two distinct levels drawn
    /// uniformly, one answer from each, the higher level wins.
    AcrossLevels,
    /// Both sources together.
    Both,
}

impl JudgePairs {
    pub fn within_round(self) -> bool {
        matches!(self, JudgePairs::WithinRound | JudgePairs::Both)
    }

    pub fn across_levels(self) -> bool {
        matches!(self, JudgePairs::AcrossLevels | JudgePairs::Both)
    }
}

impl std::fmt::Display for JudgePairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JudgePairs::WithinRound => "within-round",
            JudgePairs::AcrossLevels => "across-levels",
            JudgePairs::Both => "both",
        })
    }
}

impl std::str::FromStr for JudgePairs {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "within-round" => JudgePairs::WithinRound,
            "across-levels" => JudgePairs::AcrossLevels,
            "both" => JudgePairs::Both,
            other => anyhow::bail!(
                "unknown judge_pairs `{other}`: expected within-round, across-levels or both"
            ),
        })
    }
}

/// How pairs across score levels are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelDraw {
    /// Pairs drawn from the training side of every level.
    pub train_pairs: usize,
    /// Pairs drawn from the test side.
    pub test_pairs: usize,
    /// Share of each level's answers on the training side (the method: 0.8).
    pub split: f64,
    pub seed: u64,
}

/// Pairs across score levels: `train` for training, `test` (answers never in `train`) to
/// measure how well the selector reproduces the judge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelPairs {
    pub train: Vec<PreferencePair>,
    pub test: Vec<PreferencePair>,
    /// Score levels with at least one answer.
    pub levels: usize,
}

/// The method's judge pairs from `(answer id, judge score)` items: answers are grouped by
/// score (levels: distinct scores to 1e-6), each level's answers are shuffled (seeded) and
/// split, `floor(split · n)` to the training side, the rest to the test side. A pair draws two
/// distinct levels uniformly among a side's non-empty levels, then one answer uniformly from
/// each; the higher level wins. Draws are with replacement (30,000 pairs from a few thousand
/// answers repeat answers, as the method's did). A side with fewer than two levels gives none.
pub fn across_level_pairs(items: &[(i64, f64)], draw: &LevelDraw) -> LevelPairs {
    let mut levels: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &(id, score) in items {
        if score.is_finite() {
            levels
                .entry((score * 1e6).round() as i64)
                .or_default()
                .push(id);
        }
    }
    let mut rng = SplitMix64::new(draw.seed ^ 0x1e7e15);
    let (mut train, mut test): (Vec<Vec<i64>>, Vec<Vec<i64>>) = (Vec::new(), Vec::new());
    // Ascending score order: a side's later level always beats an earlier one.
    for ids in levels.values() {
        let mut ids = ids.clone();
        ids.sort_unstable();
        ids.dedup();
        rng.shuffle(&mut ids);
        // floor(split · n) train, the rest test: scikit-learn's train_test_split with a 20% test
        // size (ceil(0.2 · n) test); 1e-9 absorbs float error such as 0.8 · 10 = 7.999….
        let cut = ((ids.len() as f64 * draw.split.clamp(0.0, 1.0) + 1e-9).floor() as usize)
            .min(ids.len());
        let rest = ids.split_off(cut);
        train.push(ids);
        test.push(rest);
    }
    let count = levels.len();
    let mut sample = |side: &[Vec<i64>], n: usize| -> Vec<PreferencePair> {
        let filled: Vec<&Vec<i64>> = side.iter().filter(|ids| !ids.is_empty()).collect();
        if filled.len() < 2 {
            return Vec::new();
        }
        (0..n)
            .map(|_| {
                let a = rng.below(filled.len());
                let mut b = rng.below(filled.len() - 1);
                if b >= a {
                    b += 1;
                }
                let (low, high) = (a.min(b), a.max(b));
                let loser = filled[low][rng.below(filled[low].len())];
                let winner = filled[high][rng.below(filled[high].len())];
                PreferencePair {
                    winner,
                    loser,
                    source: PairSource::Judge,
                }
            })
            .collect()
    };
    let train = sample(&train, draw.train_pairs);
    let test = sample(&test, draw.test_pairs);
    LevelPairs {
        train,
        test,
        levels: count,
    }
}

/// [`across_level_pairs`] over the workspace's first-round answers with a judge score.
pub fn judge_level_pairs(ws: &Workspace, draw: &LevelDraw) -> anyhow::Result<LevelPairs> {
    Ok(across_level_pairs(&ws.first_round_judge_scores()?, draw))
}

/// Clinician pairs in force: a ✓ and a ✗ answer to the same question, or an explicit preference;
/// a ✓ and a ✗ answer to two questions of the same figure when one of them has no partner in its
/// own round (one-answer rounds; see [`HumanPairKind::SameFigure`]).
/// The same (winner, loser) from several reviewers counts once; when reviewers contradict each
/// other (one says A > B, another B > A) neither pair is used until a final decision settles it
/// (final decisions are recorded under their own reviewer and make their own pair). A reviewer's
/// correction is a clinician pair too: the corrected text beats the answer it corrects (after
/// the verdict pairs; see [`Workspace::edit_pairs`]).
pub fn human_pairs(ws: &Workspace) -> anyhow::Result<Vec<PreferencePair>> {
    Ok(human_pairs_with_kinds(ws)?.0)
}

/// [`human_pairs`] and how many of each kind (every kind named, even at 0).
pub fn human_pairs_with_kinds(
    ws: &Workspace,
) -> anyhow::Result<(Vec<PreferencePair>, BTreeMap<String, usize>)> {
    let mut counts: BTreeMap<String, usize> = HumanPairKind::ALL
        .iter()
        .map(|k| (k.name().to_string(), 0))
        .collect();
    let verdicts = ws.human_training_pair_kinds()?;
    let edits = ws.edit_pairs()?;
    for (_, kind) in &verdicts {
        *counts.entry(kind.name().to_string()).or_default() += 1;
    }
    *counts
        .entry(HumanPairKind::Correction.name().to_string())
        .or_default() += edits.len();
    let pairs = verdicts
        .into_iter()
        .map(|(pair, _)| pair)
        .chain(edits)
        .map(|(winner, loser)| PreferencePair {
            winner,
            loser,
            source: PairSource::Human,
        })
        .collect();
    Ok((pairs, counts))
}

/// Judge pairs: two answers to the same question whose mean judge scores differ by at least
/// `min_gap`; the higher one wins. Answers the clinicians already paired are left to them.
pub fn judge_pairs(ws: &Workspace, min_gap: f64) -> anyhow::Result<Vec<PreferencePair>> {
    let human: BTreeSet<(i64, i64)> = human_pairs(ws)?
        .into_iter()
        .flat_map(|p| [(p.winner, p.loser), (p.loser, p.winner)])
        .collect();
    let pairs = ws
        .judge_score_pairs(min_gap)?
        .into_iter()
        .filter(|p| !human.contains(p))
        .map(|(winner, loser)| PreferencePair {
            winner,
            loser,
            source: PairSource::Judge,
        })
        .collect();
    Ok(pairs)
}

/// Stage 2 of a run: its preference pairs, from both sources.
#[derive(Debug, Clone, Default)]
pub struct RunPairs {
    /// Clinician pairs that train.
    pub humans: Vec<PreferencePair>,
    /// Every clinician pair in force (held-out ones included) by kind: same-round, same-figure,
    /// correction.
    pub human_kinds: BTreeMap<String, usize>,
    /// Clinician pairs held out by count (the paper's first-N split), when that split is used;
    /// otherwise held-out clinician pairs are those of the held-out figures.
    pub fixed_held_out: Option<Vec<PreferencePair>>,
    /// Judge pairs within a round.
    pub within: Vec<PreferencePair>,
    /// Judge pairs across first-round score levels: a training side and a test side.
    pub levels: LevelPairs,
}

impl RunPairs {
    /// The judge pairs that train: within rounds, then across levels.
    pub fn judges(&self) -> Vec<PreferencePair> {
        let mut judges = self.within.clone();
        judges.extend(self.levels.train.iter().cloned());
        judges
    }

    /// Every pair given to training: clinician pairs first, then the judge's.
    pub fn training(&self) -> Vec<PreferencePair> {
        let mut all = self.humans.clone();
        all.extend(self.judges());
        all
    }

    /// Every answer a pair names, held-out and test pairs included.
    pub fn answer_ids(&self) -> HashSet<i64> {
        self.training()
            .iter()
            .chain(&self.levels.test)
            .chain(self.fixed_held_out.iter().flatten())
            .flat_map(|p| [p.winner, p.loser])
            .collect()
    }
}

/// The pairs `settings` trains on: the clinicians' (the paper's first N when set), and the
/// judge's within rounds and/or across score levels. Fails when there are none at all.
pub fn gather_pairs(ws: &Workspace, settings: &RunSettings) -> anyhow::Result<RunPairs> {
    let (all_humans, human_kinds) = human_pairs_with_kinds(ws)?;
    // The paper's protocol: the first N clinician pairs train, the others are held out.
    let (humans, fixed_held_out) = match settings.human_train_pairs {
        Some(n) => {
            let mut train = all_humans;
            let rest = train.split_off(n.min(train.len()));
            (train, Some(rest))
        }
        None => (all_humans, None),
    };
    let within = if settings.judge_pairs.within_round() {
        judge_pairs(ws, settings.judge_min_gap)?
    } else {
        Vec::new()
    };
    let levels = if settings.judge_pairs.across_levels() {
        judge_level_pairs(ws, &settings.level_draw())?
    } else {
        LevelPairs::default()
    };
    let pairs = RunPairs {
        humans,
        human_kinds,
        fixed_held_out,
        within,
        levels,
    };
    anyhow::ensure!(
        !pairs.humans.is_empty() || !pairs.judges().is_empty(),
        "no preference pairs yet: decide some answers (✓/✗ or a preference) or import judge scores{}",
        if settings.judge_pairs.across_levels() && pairs.levels.levels < 2 {
            format!(
                " (judge pairs across levels need first-round judge scores at two levels or more; found {})",
                pairs.levels.levels
            )
        } else {
            String::new()
        }
    );
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DecisionKind, NewDecision};

    fn draw(train_pairs: usize, test_pairs: usize) -> LevelDraw {
        LevelDraw {
            train_pairs,
            test_pairs,
            split: 0.8,
            seed: 7,
        }
    }

    #[test]
    fn pairs_across_levels_join_two_distinct_levels_and_the_higher_score_wins() {
        // Levels 2, 5 and 9 with 10 answers each: ids 200.., 500.., 900...
        let items: Vec<(i64, f64)> = [2.0, 5.0, 9.0]
            .iter()
            .flat_map(|&s| (0..10).map(move |k| ((s as i64) * 100 + k, s)))
            .collect();
        let score = |id: i64| (id / 100) as f64;
        let pairs = across_level_pairs(&items, &draw(3000, 1000));
        assert_eq!(pairs.levels, 3);
        assert_eq!((pairs.train.len(), pairs.test.len()), (3000, 1000));
        for p in pairs.train.iter().chain(&pairs.test) {
            assert!(score(p.winner) > score(p.loser), "{p:?}");
            assert_eq!(p.source, PairSource::Judge);
        }
        // Level pairs are drawn uniformly: each of the three pairs of levels about a third.
        let mut by_levels: BTreeMap<(i64, i64), usize> = BTreeMap::new();
        for p in &pairs.train {
            *by_levels
                .entry((p.loser / 100, p.winner / 100))
                .or_default() += 1;
        }
        assert_eq!(by_levels.len(), 3, "{by_levels:?}");
        for n in by_levels.values() {
            assert!((800..1200).contains(n), "{by_levels:?}");
        }
    }

    #[test]
    fn each_level_is_split_eighty_twenty_and_no_answer_is_on_both_sides() {
        let items: Vec<(i64, f64)> = (0..50).map(|k| (k, (k % 5) as f64)).collect();
        let pairs = across_level_pairs(&items, &draw(2000, 2000));
        let side = |pairs: &[PreferencePair]| -> BTreeSet<i64> {
            pairs.iter().flat_map(|p| [p.winner, p.loser]).collect()
        };
        let (train, test) = (side(&pairs.train), side(&pairs.test));
        assert!(train.is_disjoint(&test));
        // 10 answers per level: 8 train, 2 test; 2000 draws reach every one of them.
        assert_eq!((train.len(), test.len()), (40, 10));
        // A level of two: one on each side (a 20% test share rounds up, as scikit-learn's).
        let pairs = across_level_pairs(&[(1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0)], &draw(50, 50));
        assert_eq!((side(&pairs.train).len(), side(&pairs.test).len()), (2, 2));
        for level in 0..5 {
            assert_eq!(train.iter().filter(|&&id| id % 5 == level).count(), 8);
        }
    }

    #[test]
    fn pairs_across_levels_repeat_with_the_seed_and_need_two_levels() {
        let items: Vec<(i64, f64)> = (0..30).map(|k| (k, (k % 3) as f64 * 2.5)).collect();
        assert_eq!(
            across_level_pairs(&items, &draw(100, 20)),
            across_level_pairs(&items, &draw(100, 20))
        );
        let other = LevelDraw {
            seed: 8,
            ..draw(100, 20)
        };
        assert_ne!(
            across_level_pairs(&items, &draw(100, 20)).train,
            across_level_pairs(&items, &other).train
        );
        let one_level: Vec<(i64, f64)> = (0..30).map(|k| (k, 7.0)).collect();
        let none = across_level_pairs(&one_level, &draw(100, 20));
        assert!(none.train.is_empty() && none.test.is_empty());
        assert_eq!(none.levels, 1);
    }

    #[test]
    fn contradicting_reviewers_give_no_pair_until_a_final_decision() {
        let (_dir, ws, stored) =
            crate::store::test_support::workspace_with_rounds(&[("q", &["a", "b"])]);
        let key = stored.key;
        let (a, b) = (stored.answer_ids[0][0], stored.answer_ids[0][1]);
        let verdict = |answer, kind| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[0]),
            answer_id: Some(answer),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        ws.record("ana", &verdict(a, DecisionKind::Accept)).unwrap();
        ws.record("ana", &verdict(b, DecisionKind::Reject)).unwrap();
        let pairs = human_pairs(&ws).unwrap();
        assert_eq!(
            pairs,
            vec![PreferencePair {
                winner: a,
                loser: b,
                source: PairSource::Human
            }]
        );
        ws.record("ben", &verdict(a, DecisionKind::Reject)).unwrap();
        ws.record("ben", &verdict(b, DecisionKind::Accept)).unwrap();
        assert!(
            human_pairs(&ws).unwrap().is_empty(),
            "a contradiction trains nothing"
        );
        ws.record_final("chief", b, true).unwrap();
        ws.record_final("chief", a, false).unwrap();
        let pairs = human_pairs(&ws).unwrap();
        assert_eq!(
            pairs,
            vec![PreferencePair {
                winner: b,
                loser: a,
                source: PairSource::Human
            }]
        );
    }

    /// One-answer rounds (the public releases): a ✓ and a ✗ on two questions of one figure make
    /// a pair; an answer its own round already pairs makes none across rounds; figures never mix.
    #[test]
    fn verdicts_on_one_answer_rounds_pair_across_the_questions_of_their_figure() {
        let (_dir, ws, stored) = crate::store::test_support::workspace_with_rounds(&[
            ("q1", &["a"]),
            ("q2", &["b"]),
            ("q3", &["c"]),
            ("q4", &["d", "e"]),
        ]);
        let ids = &stored.answer_ids;
        let (a, b, c, d, e) = (ids[0][0], ids[1][0], ids[2][0], ids[3][0], ids[3][1]);
        let verdict = |round: usize, answer, kind| NewDecision {
            sample_key: stored.key,
            round_id: Some(stored.round_ids[round]),
            answer_id: Some(answer),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        let pairs = || -> Vec<(i64, i64)> {
            human_pairs(&ws)
                .unwrap()
                .into_iter()
                .map(|p| (p.winner, p.loser))
                .collect()
        };
        ws.record("ana", &verdict(0, a, DecisionKind::Accept))
            .unwrap();
        assert!(pairs().is_empty(), "one ✓ alone pairs with nothing");
        // What the review screen's background trainer gathers: nothing yet, then one pair.
        let settings = RunSettings::from_config(&crate::config::Config::defaults().selector);
        let err = gather_pairs(&ws, &settings).unwrap_err();
        assert!(err.to_string().contains("no preference pairs yet"), "{err}");
        ws.record("ana", &verdict(1, b, DecisionKind::Reject))
            .unwrap();
        assert_eq!(gather_pairs(&ws, &settings).unwrap().humans.len(), 1);
        ws.record("ana", &verdict(2, c, DecisionKind::Accept))
            .unwrap();
        assert_eq!(pairs(), vec![(a, b), (c, b)]);
        // A two-answer round decided both ways pairs inside itself; its ✓ still meets b, which
        // has no partner in its own round, and its ✗ meets a and c.
        ws.record("ana", &verdict(3, d, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(3, e, DecisionKind::Reject))
            .unwrap();
        let mut expected = vec![(a, b), (c, b), (d, e), (d, b), (a, e), (c, e)];
        expected.sort();
        assert_eq!(pairs(), expected);
        let (_, kinds) = human_pairs_with_kinds(&ws).unwrap();
        assert_eq!(kinds["same-round"], 1);
        assert_eq!(kinds["same-figure"], 5);
        assert_eq!(kinds["correction"], 0);
        let stats = ws.stats().unwrap();
        assert_eq!(stats.human_pairs, 6);
        assert_eq!(stats.human_pairs_by_kind["same-figure"], 5);
        // Another reviewer's ✗ does not pair with ana's ✓: pairs are one reviewer's.
        let (_dir2, ws2, two) =
            crate::store::test_support::workspace_with_rounds(&[("q1", &["a"]), ("q2", &["b"])]);
        let decide = |round: usize, kind| NewDecision {
            sample_key: two.key,
            round_id: Some(two.round_ids[round]),
            answer_id: Some(two.answer_ids[round][0]),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        ws2.record("ana", &decide(0, DecisionKind::Accept)).unwrap();
        ws2.record("ben", &decide(1, DecisionKind::Reject)).unwrap();
        assert!(human_pairs(&ws2).unwrap().is_empty());
    }

    /// One rule for training pairs and agreement: a reviewer's latest decision on a round wins
    /// (a preference accepts the preferred answer and rejects the others).
    #[test]
    fn the_latest_decision_of_a_reviewer_on_a_round_wins_for_pairs_and_agreement() {
        let (_dir, ws, stored) = crate::store::test_support::workspace_with_rounds(&[
            ("q1", &["a", "b"]),
            ("q2", &["c", "d", "e"]),
        ]);
        let key = stored.key;
        let ids = &stored.answer_ids;
        let (a, b) = (ids[0][0], ids[0][1]);
        let (c, d, e) = (ids[1][0], ids[1][1], ids[1][2]);
        let verdict = |round: usize, answer, kind| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[round]),
            answer_id: Some(answer),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        let prefer = |round: usize, answer: i64| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[round]),
            answer_id: None,
            kind: DecisionKind::Prefer,
            value: Some(answer.to_string()),
            shown_order: None,
            figure_shown: None,
        };
        // ✓A ✗B, then prefer B: B > A.
        ws.record("ana", &verdict(0, a, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(0, b, DecisionKind::Reject))
            .unwrap();
        ws.record("ana", &prefer(0, b)).unwrap();
        // Prefer C, then ✓D: C and D accepted, E rejected.
        ws.record("ana", &prefer(1, c)).unwrap();
        ws.record("ana", &verdict(1, d, DecisionKind::Accept))
            .unwrap();
        let pairs: Vec<(i64, i64)> = human_pairs(&ws)
            .unwrap()
            .into_iter()
            .map(|p| (p.winner, p.loser))
            .collect();
        let mut expected = vec![(b, a), (c, e), (d, e)];
        expected.sort();
        assert_eq!(pairs, expected);
        // The agreement figures read the same verdicts.
        let verdicts = ws.verdicts().unwrap();
        use crate::store::Resolution::{Accepted, Rejected};
        assert_eq!(
            [a, b, c, d, e].map(|x| verdicts.resolution(x)),
            [Rejected, Accepted, Accepted, Accepted, Rejected]
        );
        assert_eq!(ws.stats().unwrap().human_pairs, pairs.len() as i64);
    }

    /// A correction is a clinician pair: the corrected text (an answer of its own, with the
    /// original's question and figure) beats the answer it corrects; once however many reviewers
    /// make the same correction, and gone when it is undone.
    #[test]
    fn a_correction_trains_as_a_clinician_pair_the_corrected_text_beating_the_original() {
        let (_dir, ws, stored) =
            crate::store::test_support::workspace_with_rounds(&[("What is shown?", &["a", "b"])]);
        let (a, b) = (stored.answer_ids[0][0], stored.answer_ids[0][1]);
        let decision = |answer, kind, value: Option<&str>| NewDecision {
            sample_key: stored.key,
            round_id: Some(stored.round_ids[0]),
            answer_id: Some(answer),
            kind,
            value: value.map(String::from),
            shown_order: None,
            figure_shown: None,
        };
        // What the review screen records for an edit of answer a: its ✗, then the correction.
        ws.record("ana", &decision(a, DecisionKind::Reject, None))
            .unwrap();
        let edit = ws
            .record(
                "ana",
                &decision(a, DecisionKind::Edit, Some("a, corrected")),
            )
            .unwrap();
        ws.record("ana", &decision(b, DecisionKind::Accept, None))
            .unwrap();
        // The same correction by a second reviewer adds no pair.
        let second = ws
            .record(
                "ben",
                &decision(a, DecisionKind::Edit, Some("a, corrected")),
            )
            .unwrap();
        let corrected = crate::store::edited_answer_id(edit);
        let pairs = || -> Vec<(i64, i64)> {
            human_pairs(&ws)
                .unwrap()
                .into_iter()
                .map(|p| (p.winner, p.loser))
                .collect()
        };
        assert_eq!(pairs(), vec![(b, a), (corrected, a)]);
        assert_eq!(
            ws.stats().unwrap().human_pairs,
            2,
            "stats counts what trains"
        );

        let original = ws.answer_record(a).unwrap();
        let record = ws.answer_record(corrected).unwrap();
        assert_eq!(record.answer_id, corrected);
        assert_eq!(record.text, "a, corrected");
        assert_eq!(
            (
                record.question,
                record.round_position,
                record.sample_key,
                record.ext_id
            ),
            (
                original.question,
                original.round_position,
                original.sample_key,
                original.ext_id
            )
        );

        // Undone by both reviewers: the correction trains no more.
        ws.undo_event(second).unwrap();
        ws.undo_event(edit).unwrap();
        assert_eq!(pairs(), vec![(b, a)]);
    }
}
