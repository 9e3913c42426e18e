//! Choosing the demonstrations a generation prompt carries (GUIDE step 2): by default one per
//! domain; with `--per-prompt K`, K spread over the domains, each domain's share picked for
//! diversity by k-means over TF-IDF-weighted hashed bag-of-words features of the demo's caption,
//! mentions and conversation (the member nearest each centroid). Deterministic: the same pool
//! gives the same choice, so requests (and their resume keys) are stable between runs.
//!
//! [`draw_per_request`] is the method's draw instead: one demonstration per modality, drawn
//! afresh for every request (seeded by the run's seed and the figure's id, so a rerun sends the
//! same requests and resumes).

use std::collections::BTreeMap;

use crate::data::Sample;
use crate::stable::fnv1a_lower;

const DIM: usize = 1024;

/// Picks `k` demonstrations (default: one per domain) from `pool`, in a stable order.
pub fn choose(pool: &[Sample], k: Option<usize>) -> Vec<Sample> {
    if pool.is_empty() {
        return Vec::new();
    }
    let mut by_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in pool.iter().enumerate() {
        let domain = s.domains.first().cloned().unwrap_or_else(|| "other".into());
        by_domain.entry(domain).or_default().push(i);
    }
    let k = k.unwrap_or(by_domain.len()).min(pool.len());
    let features = tfidf(pool);
    // Slots per domain: one each for the largest domains first, the rest by size.
    let mut domains: Vec<(&String, &Vec<usize>)> = by_domain.iter().collect();
    domains.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut slots = vec![0usize; domains.len()];
    let mut left = k;
    for (i, (_, members)) in domains.iter().enumerate() {
        if left == 0 {
            break;
        }
        if !members.is_empty() {
            slots[i] = 1;
            left -= 1;
        }
    }
    while left > 0 {
        // The domain with the most members per slot gets the next one.
        let best = (0..domains.len())
            .filter(|&i| slots[i] < domains[i].1.len())
            .max_by(|&a, &b| {
                let ra = domains[a].1.len() as f64 / (slots[a] + 1) as f64;
                let rb = domains[b].1.len() as f64 / (slots[b] + 1) as f64;
                ra.partial_cmp(&rb)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b.cmp(&a))
            });
        let Some(best) = best else { break };
        slots[best] += 1;
        left -= 1;
    }
    let mut chosen = Vec::new();
    for (i, (_, members)) in domains.iter().enumerate() {
        if slots[i] == 0 {
            continue;
        }
        let points: Vec<&[f32]> = members.iter().map(|&m| features[m].as_slice()).collect();
        for p in kmeans_medoids(&points, slots[i]) {
            chosen.push(members[p]);
        }
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| pool[i].clone()).collect()
}

/// The modalities a demonstration counts for: each of its domain flags, else `other`.
fn modalities(s: &Sample) -> Vec<String> {
    if s.domains.is_empty() {
        vec!["other".to_string()]
    } else {
        s.domains.clone()
    }
}

/// How many demonstrations of `pool` each modality can draw from (a demonstration with several
/// modality flags counts for each).
pub fn modality_pools(pool: &[Sample]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in pool {
        for m in modalities(s) {
            *counts.entry(m).or_insert(0) += 1;
        }
    }
    counts
}

/// One demonstration per modality, drawn uniformly from the demonstrations flagged with it,
/// for the request about `figure_id`; the same (pool, seed, figure) always gives the same draw.
/// A demonstration drawn for two modalities is sent once. Modalities in name order.
pub fn draw_per_request(pool: &[Sample], seed: u64, figure_id: &str) -> Vec<Sample> {
    let mut by_modality: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in pool.iter().enumerate() {
        for m in modalities(s) {
            by_modality.entry(m).or_default().push(i);
        }
    }
    let mut rng = crate::stable::SplitMix64::new(
        crate::stable::mix(seed) ^ crate::stable::fnv1a_lower(figure_id.as_bytes()),
    );
    let mut chosen: Vec<usize> = Vec::new();
    for members in by_modality.values() {
        let pick = members[rng.below(members.len())];
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }
    chosen.into_iter().map(|i| pool[i].clone()).collect()
}

fn demo_text(s: &Sample) -> String {
    let mut text = format!("{} {}", s.caption, s.mentions.join(" "));
    for r in &s.rounds {
        text.push(' ');
        text.push_str(&r.question);
        for a in &r.answers {
            text.push(' ');
            text.push_str(a);
        }
    }
    text
}

fn words(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(|w| (fnv1a_lower(w.as_bytes()) % DIM as u64) as usize)
}

/// L2-normalised TF-IDF vectors over hashed words.
fn tfidf(pool: &[Sample]) -> Vec<Vec<f32>> {
    let counts: Vec<Vec<f32>> = pool
        .iter()
        .map(|s| {
            let mut v = vec![0f32; DIM];
            for w in words(&demo_text(s)) {
                v[w] += 1.0;
            }
            v
        })
        .collect();
    let n = pool.len() as f32;
    let mut df = vec![0f32; DIM];
    for v in &counts {
        for (d, &c) in df.iter_mut().zip(v) {
            if c > 0.0 {
                *d += 1.0;
            }
        }
    }
    counts
        .into_iter()
        .map(|mut v| {
            for (x, d) in v.iter_mut().zip(&df) {
                *x = if *x > 0.0 {
                    (1.0 + x.ln()) * ((1.0 + n) / (1.0 + d)).ln() + 1.0
                } else {
                    0.0
                };
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means (deterministic farthest-point start, Lloyd iterations); returns, for each cluster, the
/// index of the point nearest its centroid.
pub fn kmeans_medoids(points: &[&[f32]], k: usize) -> Vec<usize> {
    let n = points.len();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let dim = points[0].len();
    let mean = |members: &[usize]| {
        let mut c = vec![0f32; dim];
        for &m in members {
            for (x, y) in c.iter_mut().zip(points[m]) {
                *x += y;
            }
        }
        c.iter_mut().for_each(|x| *x /= members.len().max(1) as f32);
        c
    };
    // Start: the point nearest the overall mean, then repeatedly the farthest from those chosen.
    let all: Vec<usize> = (0..n).collect();
    let overall = mean(&all);
    let first = nearest(points, &overall, &[]);
    let mut centroids: Vec<Vec<f32>> = vec![points[first].to_vec()];
    while centroids.len() < k {
        let far = (0..n)
            .max_by(|&a, &b| {
                let da = centroids
                    .iter()
                    .map(|c| dist2(points[a], c))
                    .fold(f32::MAX, f32::min);
                let db = centroids
                    .iter()
                    .map(|c| dist2(points[b], c))
                    .fold(f32::MAX, f32::min);
                da.partial_cmp(&db)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b.cmp(&a))
            })
            .expect("n > 0");
        centroids.push(points[far].to_vec());
    }
    let mut assign = vec![usize::MAX; n];
    for _ in 0..50 {
        let mut changed = false;
        for (i, p) in points.iter().enumerate() {
            let c = nearest_centroid(p, &centroids);
            if assign[i] != c {
                assign[i] = c;
                changed = true;
            }
        }
        for (c, centroid) in centroids.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| assign[i] == c).collect();
            if !members.is_empty() {
                *centroid = mean(&members);
            }
        }
        if !changed {
            break;
        }
    }
    let mut taken: Vec<usize> = Vec::new();
    for c in &centroids {
        let m = nearest(points, c, &taken);
        taken.push(m);
    }
    taken
}

fn nearest_centroid(p: &[f32], centroids: &[Vec<f32>]) -> usize {
    (0..centroids.len())
        .min_by(|&a, &b| {
            dist2(p, &centroids[a])
                .partial_cmp(&dist2(p, &centroids[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .expect("k > 0")
}

fn nearest(points: &[&[f32]], target: &[f32], except: &[usize]) -> usize {
    (0..points.len())
        .filter(|i| !except.contains(i))
        .min_by(|&a, &b| {
            dist2(points[a], target)
                .partial_cmp(&dist2(points[b], target))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Round;

    fn demo(id: &str, domain: &str, text: &str) -> Sample {
        Sample {
            id: id.into(),
            caption: text.into(),
            domains: vec![domain.into()],
            rounds: vec![Round {
                question: "What is shown?".into(),
                answers: vec![text.into()],
            }],
            is_demo: true,
            ..Default::default()
        }
    }

    fn pool() -> Vec<Sample> {
        vec![
            demo("c1", "ct_scan", "axial ct liver lesion hypodense"),
            demo("c2", "ct_scan", "axial ct liver lesion hypodense enhancing"),
            demo("c3", "ct_scan", "coronal ct kidney stone calculus"),
            demo(
                "c4",
                "ct_scan",
                "coronal ct kidney stone calculus obstruction",
            ),
            demo("m1", "mri", "sagittal mri knee ligament tear"),
            demo("m2", "mri", "axial mri brain glioma edema"),
            demo("x1", "chest_xray", "frontal chest radiograph effusion"),
        ]
    }

    #[test]
    fn per_request_draws_one_per_modality_afresh_for_each_figure_and_repeats_with_the_seed() {
        let mut pool = pool();
        // A demonstration flagged CT and MRI counts for both modalities.
        pool.push(Sample {
            domains: vec!["ct_scan".into(), "mri".into()],
            ..demo("cm", "ct_scan", "ct and mri of the spine")
        });
        assert_eq!(
            modality_pools(&pool).into_iter().collect::<Vec<_>>(),
            vec![
                ("chest_xray".to_string(), 1),
                ("ct_scan".to_string(), 5),
                ("mri".to_string(), 3)
            ]
        );
        let ids = |draw: Vec<Sample>| draw.into_iter().map(|s| s.id).collect::<Vec<_>>();
        let first = ids(draw_per_request(&pool, 42, "PMC1_F1"));
        assert!((2..=3).contains(&first.len()), "{first:?}");
        assert_eq!(first, ids(draw_per_request(&pool, 42, "PMC1_F1")));
        assert!(first.contains(&"x1".to_string()), "the only chest X-ray");
        // Over many figures every CT demonstration is drawn, the two-flag one included, and
        // the draws differ between figures.
        let mut seen = std::collections::BTreeSet::new();
        let mut distinct = std::collections::BTreeSet::new();
        for k in 0..200 {
            let draw = ids(draw_per_request(&pool, 42, &format!("fig{k}")));
            distinct.insert(draw.clone());
            seen.extend(draw);
        }
        for id in ["c1", "c2", "c3", "c4", "cm", "m1", "m2", "x1"] {
            assert!(seen.contains(id), "{id} never drawn");
        }
        assert!(distinct.len() > 10);
        assert_ne!(
            (0..20)
                .map(|k| ids(draw_per_request(&pool, 1, &format!("fig{k}"))))
                .collect::<Vec<_>>(),
            (0..20)
                .map(|k| ids(draw_per_request(&pool, 2, &format!("fig{k}"))))
                .collect::<Vec<_>>(),
            "the seed changes the draws"
        );
        assert!(draw_per_request(&[], 1, "f").is_empty());
    }

    #[test]
    fn default_is_one_per_domain() {
        let chosen = choose(&pool(), None);
        let mut domains: Vec<String> = chosen.iter().map(|s| s.domains[0].clone()).collect();
        domains.sort();
        assert_eq!(domains, vec!["chest_xray", "ct_scan", "mri"]);
    }

    #[test]
    fn extra_slots_go_to_big_domains_and_pick_different_clusters() {
        let chosen = choose(&pool(), Some(4));
        let ids: Vec<&str> = chosen.iter().map(|s| s.id.as_str()).collect();
        let ct: Vec<&&str> = ids.iter().filter(|i| i.starts_with('c')).collect();
        assert_eq!(ct.len(), 2, "{ids:?}");
        let liver = ct.iter().filter(|i| ***i == "c1" || ***i == "c2").count();
        assert_eq!(liver, 1, "one liver and one kidney demo: {ids:?}");
        assert_eq!(choose(&pool(), Some(4)), chosen, "deterministic");
    }

    #[test]
    fn fewer_slots_than_domains_and_empty_pool() {
        assert_eq!(choose(&pool(), Some(1)).len(), 1);
        assert!(choose(&[], None).is_empty());
        assert_eq!(choose(&pool(), Some(100)).len(), pool().len());
    }
}
