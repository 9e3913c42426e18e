//! Picking diverse figures to generate for (GUIDE section 1, step 1): each figure is a vector of
//! its caption and first inline mention (hashed TF-IDF words, or a sentence encoder's vector),
//! the vectors are clustered by k-means (k-means++ seeding, seeded), and figures are drawn
//! across the clusters in turn. Pure: no files, no store; the CLI reads and writes.

use crate::stable::{fnv1a_lower, SplitMix64};

/// Width of the hashed text features.
pub const HASHED_DIM: usize = 2048;

/// The text a figure is clustered on: its caption and its first inline mention.
pub fn figure_text(caption: &str, mentions: &[String]) -> String {
    match mentions.iter().map(|m| m.trim()).find(|m| !m.is_empty()) {
        Some(first) => format!("{} {first}", caption.trim()),
        None => caption.trim().to_string(),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(str::to_lowercase)
        .collect()
}

/// TF-IDF of hashed words and word pairs, L2-normalised, one row per text.
pub fn hashed_features(texts: &[String]) -> Vec<Vec<f32>> {
    let bags: Vec<Vec<usize>> = texts
        .iter()
        .map(|t| {
            let w = words(t);
            let mut bag: Vec<usize> = w
                .iter()
                .map(|x| fnv1a_lower(x.as_bytes()) as usize % HASHED_DIM)
                .collect();
            bag.extend(w.windows(2).map(|p| {
                fnv1a_lower(format!("{} {}", p[0], p[1]).as_bytes()) as usize % HASHED_DIM
            }));
            bag
        })
        .collect();
    let mut df = vec![0f32; HASHED_DIM];
    for bag in &bags {
        let mut seen = bag.clone();
        seen.sort_unstable();
        seen.dedup();
        for i in seen {
            df[i] += 1.0;
        }
    }
    let n = texts.len().max(1) as f32;
    bags.iter()
        .map(|bag| {
            let mut v = vec![0f32; HASHED_DIM];
            for &i in bag {
                v[i] += 1.0;
            }
            for (i, x) in v.iter_mut().enumerate() {
                if *x > 0.0 {
                    *x *= ((1.0 + n) / (1.0 + df[i])).ln() + 1.0;
                }
            }
            normalise(&mut v);
            v
        })
        .collect()
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means with k-means++ seeding: the cluster of each point (`min(k, n)` clusters, numbered
/// from 0). Deterministic for a given seed.
pub fn kmeans(points: &[Vec<f32>], k: usize, seed: u64, iterations: usize) -> Vec<usize> {
    let n = points.len();
    let k = k.min(n);
    if k == 0 {
        return vec![0; n];
    }
    let mut rng = SplitMix64::new(seed ^ 0x6b6d);
    // k-means++: the first centre uniformly, each next one with probability ∝ D².
    let mut centroids: Vec<Vec<f32>> = vec![points[rng.below(n)].clone()];
    let mut nearest: Vec<f32> = points.iter().map(|p| dist2(p, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = nearest.iter().map(|&d| d as f64).sum();
        let pick = if total <= 0.0 {
            // Every point sits on a centre already: any point not chosen yet.
            rng.below(n)
        } else {
            let mut target = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                target -= d as f64;
                if target < 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        };
        let centre = points[pick].clone();
        for (d, p) in nearest.iter_mut().zip(points) {
            *d = d.min(dist2(p, &centre));
        }
        centroids.push(centre);
    }
    let assign_all = |centroids: &[Vec<f32>]| -> Vec<usize> {
        points
            .iter()
            .map(|p| {
                (0..centroids.len())
                    .min_by(|&a, &b| dist2(p, &centroids[a]).total_cmp(&dist2(p, &centroids[b])))
                    .unwrap_or(0)
            })
            .collect()
    };
    let mut assign = assign_all(&centroids);
    let dim = points[0].len();
    for _ in 0..iterations {
        for (c, centroid) in centroids.iter_mut().enumerate() {
            let mut sum = vec![0f32; dim];
            let mut count = 0usize;
            for (p, _) in points.iter().zip(&assign).filter(|(_, &a)| a == c) {
                sum.iter_mut().zip(p).for_each(|(s, x)| *s += x);
                count += 1;
            }
            // An empty cluster keeps its centre.
            if count > 0 {
                *centroid = sum.into_iter().map(|s| s / count as f32).collect();
            }
        }
        let next = assign_all(&centroids);
        if next == assign {
            break;
        }
        assign = next;
    }
    assign
}

/// Draws `n` point indices across clusters: each cluster's members shuffled (seeded), then one
/// from each cluster in turn (clusters in order of their smallest member) until `n` are drawn or
/// none is left. Returned in ascending index order (the input's order).
pub fn draw_across(clusters: &[usize], n: usize, seed: u64) -> Vec<usize> {
    let k = clusters.iter().copied().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &c) in clusters.iter().enumerate() {
        members[c].push(i);
    }
    members.retain(|m| !m.is_empty());
    let mut rng = SplitMix64::new(seed ^ 0xd4a3);
    for m in &mut members {
        rng.shuffle(m);
    }
    let mut drawn = Vec::with_capacity(n.min(clusters.len()));
    let mut round = 0;
    while drawn.len() < n && members.iter().any(|m| m.len() > round) {
        for m in &members {
            if drawn.len() == n {
                break;
            }
            if let Some(&i) = m.get(round) {
                drawn.push(i);
            }
        }
        round += 1;
    }
    drawn.sort_unstable();
    drawn
}

/// Domains left out of clustering by default, as the authors did.
pub const LEFT_OUT_DOMAINS: &[&str] = &["gross", "histology"];

/// Whether a figure with these domain flags is left out by default.
pub fn left_out(domains: &[String]) -> bool {
    domains
        .iter()
        .any(|d| LEFT_OUT_DOMAINS.contains(&d.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_caption_and_the_first_nonempty_mention() {
        assert_eq!(
            figure_text(
                " CT. ",
                &[" ".into(), "Fig 1 shows it.".into(), "later".into()]
            ),
            "CT. Fig 1 shows it."
        );
        assert_eq!(figure_text("CT.", &[]), "CT.");
    }

    #[test]
    fn kmeans_finds_separate_topics_and_repeats_with_the_seed() {
        let texts: Vec<String> = (0..30)
            .map(|i| match i % 3 {
                0 => format!("axial ct liver lesion hypodense case {i}"),
                1 => format!("sagittal mri knee ligament tear case {i}"),
                _ => format!("frontal chest radiograph pleural effusion case {i}"),
            })
            .collect();
        let points = hashed_features(&texts);
        let clusters = kmeans(&points, 3, 7, 50);
        assert_eq!(clusters, kmeans(&points, 3, 7, 50));
        for topic in 0..3 {
            let labels: std::collections::BTreeSet<usize> = (0..30)
                .filter(|i| i % 3 == topic)
                .map(|i| clusters[i])
                .collect();
            assert_eq!(labels.len(), 1, "topic {topic} split: {clusters:?}");
        }
        let distinct: std::collections::BTreeSet<usize> = clusters.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!(kmeans(&points, 100, 1, 5).len(), 30, "k above n");
        assert!(kmeans(&[], 3, 1, 5).is_empty());
    }

    #[test]
    fn draws_take_one_per_cluster_in_turn() {
        // Cluster 0 holds 8 points, clusters 1 and 2 one each.
        let clusters = [0, 0, 0, 1, 0, 0, 2, 0, 0, 0];
        let drawn = draw_across(&clusters, 3, 5);
        assert_eq!(drawn.len(), 3);
        assert!(drawn.contains(&3) && drawn.contains(&6), "{drawn:?}");
        assert_eq!(draw_across(&clusters, 3, 5), drawn, "seeded");
        assert_eq!(draw_across(&clusters, 50, 5), (0..10).collect::<Vec<_>>());
        let mut is_sorted = draw_across(&clusters, 6, 9);
        let copy = is_sorted.clone();
        is_sorted.sort_unstable();
        assert_eq!(is_sorted, copy);
    }

    #[test]
    fn gross_and_histology_are_left_out() {
        assert!(left_out(&["histology".into()]));
        assert!(left_out(&["ct_scan".into(), "Gross".into()]));
        assert!(!left_out(&["mri".into()]));
        assert!(!left_out(&[]));
    }
}
