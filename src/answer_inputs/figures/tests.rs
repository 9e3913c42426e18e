use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A textured PNG whose pixels depend on `seed`.
fn png(path: &Path, seed: u8) {
    let img = image::RgbImage::from_fn(48, 32, |x, y| {
        image::Rgb([
            (x * 5) as u8 ^ seed,
            (y * 7) as u8,
            ((x + y) as u8).wrapping_mul(seed),
        ])
    });
    img.save(path).unwrap();
}

/// Decodes for real, counting the decodes.
fn counting(count: &AtomicUsize) -> impl Fn(&[u8]) -> Option<ImageStats> + Sync + '_ {
    move |bytes| {
        count.fetch_add(1, Ordering::SeqCst);
        decode(bytes)
    }
}

#[test]
fn a_figure_is_decoded_once_then_read_from_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(&dir.path().join("ws")).unwrap();
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    let copy = dir.path().join("copy-of-a.png");
    let broken = dir.path().join("broken.png");
    let missing = dir.path().join("missing.png");
    png(&a, 3);
    png(&b, 11);
    std::fs::copy(&a, &copy).unwrap();
    std::fs::write(&broken, b"not an image").unwrap();
    let paths = vec![
        a.clone(),
        b.clone(),
        copy.clone(),
        broken.clone(),
        missing.clone(),
    ];
    let decodes = AtomicUsize::new(0);

    let first = figure_stats(&ws, &paths, &counting(&decodes)).unwrap();
    // a and its copy share one content: three contents decoded (a, b, broken).
    assert_eq!(decodes.load(Ordering::SeqCst), 3);
    assert_eq!(first[&a], decode(&std::fs::read(&a).unwrap()));
    assert!(first[&a].is_some());
    assert_eq!(first[&copy], first[&a]);
    assert_ne!(first[&b], first[&a]);
    assert_eq!(first[&broken], None);
    assert_eq!(first[&missing], None);

    // Again (the next score, a retrain): nothing is decoded, the same numbers come back.
    let second = figure_stats(&ws, &paths, &counting(&decodes)).unwrap();
    assert_eq!(decodes.load(Ordering::SeqCst), 3);
    assert_eq!(second, first);

    // Files modified moments ago are remembered by content only (hashed again next time);
    // older ones by path too (neither read nor hashed while unchanged).
    assert_eq!(
        ws.figure_file(a.to_str().unwrap(), STATS_VERSION).unwrap(),
        None
    );
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for p in [&a, &b] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    assert_eq!(
        figure_stats(&ws, &paths, &counting(&decodes)).unwrap(),
        first
    );
    let (remembered, stats) = ws
        .figure_file(a.to_str().unwrap(), STATS_VERSION)
        .unwrap()
        .unwrap();
    assert_eq!(remembered.size, std::fs::metadata(&a).unwrap().len());
    assert_eq!(stats.map(to_stats), Some(first[&a]));
    assert_eq!(
        ws.figure_file(copy.to_str().unwrap(), STATS_VERSION)
            .unwrap(),
        None
    );

    // Another workspace handle (another process) sees the stored statistics too.
    let reopened = Workspace::open(&dir.path().join("ws")).unwrap();
    assert_eq!(
        figure_stats(&reopened, &paths, &counting(&decodes)).unwrap(),
        first
    );
    assert_eq!(decodes.load(Ordering::SeqCst), 3);
}

#[test]
fn stored_statistics_are_used_only_while_the_content_matches() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(&dir.path().join("ws")).unwrap();
    let fig = dir.path().join("fig.png");
    let original = dir.path().join("original.png");
    png(&fig, 3);
    std::fs::copy(&fig, &original).unwrap();
    let paths = vec![fig.clone()];
    let decodes = AtomicUsize::new(0);
    let before = figure_stats(&ws, &paths, &counting(&decodes)).unwrap()[&fig];
    assert_eq!(decodes.load(Ordering::SeqCst), 1);

    // The file is replaced by another image: its new content is decoded.
    png(&fig, 200);
    let replaced = figure_stats(&ws, &paths, &counting(&decodes)).unwrap()[&fig];
    assert_eq!(decodes.load(Ordering::SeqCst), 2);
    assert_ne!(replaced, before);
    assert_eq!(replaced, decode(&std::fs::read(&fig).unwrap()));

    // Put back: a content seen before is hashed, not decoded.
    std::fs::copy(&original, &fig).unwrap();
    let restored = figure_stats(&ws, &paths, &counting(&decodes)).unwrap()[&fig];
    assert_eq!(decodes.load(Ordering::SeqCst), 2);
    assert_eq!(restored, before);

    // Replaced by something that does not decode: no statistics, remembered as such.
    std::fs::write(&fig, b"garbage").unwrap();
    assert_eq!(
        figure_stats(&ws, &paths, &counting(&decodes)).unwrap()[&fig],
        None
    );
    assert_eq!(decodes.load(Ordering::SeqCst), 3);
    assert_eq!(
        figure_stats(&ws, &paths, &counting(&decodes)).unwrap()[&fig],
        None
    );
    assert_eq!(decodes.load(Ordering::SeqCst), 3);
}
