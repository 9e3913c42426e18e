//! Downloading figure images: direct image URLs, or PMC open-access `.tar.gz` packages from which
//! the figure is extracted (the member named by `im_path`, else the file named like the figure).
//!
//! Safety: the target is always `DIR/<key>.<ext>` with the key checked to be a plain file name;
//! paths from the data or from a package never become paths on disk. Members with `..` or an
//! absolute path, and links, are refused. Files are written to a temporary name and renamed, so a
//! file present under its final name is complete, and a rerun skips it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::atomic_write::AtomicFile;

mod tar_guard;
use crate::retry::{retry, retry_after, Backoff, Step, Stop};

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff"];

/// One figure to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The figure's key (pair id or image file name); the file is saved as `<key>.<ext>`.
    pub key: String,
    pub url: String,
    /// Path of the figure inside the package, when the URL is a `.tar.gz`.
    pub member: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub dir: PathBuf,
    pub concurrency: usize,
    pub timeout: Duration,
    pub max_image_bytes: u64,
    pub max_package_bytes: u64,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `llm.max_retry_wait_s`: a server asking to wait longer stops that download.
    pub max_retry_wait: Duration,
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Downloaded(PathBuf),
    /// Already there from an earlier run.
    Present(PathBuf),
    Failed(String),
}

/// Fetches every item, `concurrency` URLs at a time (items sharing a package URL download it
/// once). `on_done` is called for each item as it finishes.
pub async fn fetch_all(
    items: Vec<Item>,
    settings: FetchSettings,
    mut on_done: impl FnMut(&Item, &Outcome),
) -> anyhow::Result<Vec<(Item, Outcome)>> {
    std::fs::create_dir_all(&settings.dir)?;
    let http = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
        .user_agent(concat!("vital/", env!("CARGO_PKG_VERSION")))
        .build()?;
    // Group by URL, keeping first-seen order.
    let mut groups: Vec<(String, Vec<Item>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for item in items {
        match index.get(&item.url) {
            Some(&g) => groups[g].1.push(item),
            None => {
                index.insert(item.url.clone(), groups.len());
                groups.push((item.url.clone(), vec![item]));
            }
        }
    }
    let settings = Arc::new(settings);
    let semaphore = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (url, items) in groups {
        let (http, settings, semaphore) = (http.clone(), settings.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("never closed");
            let outcomes = fetch_group(&http, &settings, &url, &items).await;
            items.into_iter().zip(outcomes).collect::<Vec<_>>()
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        for (item, outcome) in done? {
            on_done(&item, &outcome);
            all.push((item, outcome));
        }
    }
    Ok(all)
}

/// Where an item's file goes, or why the data is refused.
pub fn target_path(dir: &Path, item: &Item) -> Result<PathBuf, String> {
    let key = item.key.trim();
    if key.is_empty()
        || key.starts_with('.')
        || key.contains(['/', '\\', '\0'])
        || key.contains(':')
    {
        return Err(format!("key `{key}` is not a plain file name; refused"));
    }
    if let Some(member) = &item.member {
        check_member(member)?;
    }
    let ext_of = |p: &str| {
        let name = p.rsplit(['/', '\\']).next().unwrap_or(p);
        let name = name.split(['?', '#']).next().unwrap_or(name);
        name.rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
    };
    let name = if ext_of(key).is_some() {
        key.to_string()
    } else {
        let ext = item
            .member
            .as_deref()
            .and_then(ext_of)
            .or_else(|| ext_of(&item.url))
            .unwrap_or_else(|| "jpg".into());
        format!("{key}.{ext}")
    };
    Ok(dir.join(name))
}

/// A member path from the data or a package must stay inside the package.
fn check_member(member: &str) -> Result<(), String> {
    if member_is_unsafe(member) {
        return Err(format!(
            "member path `{member}` leaves the package; refused"
        ));
    }
    Ok(())
}

fn member_is_unsafe(path: &str) -> bool {
    path.starts_with(['/', '\\'])
        || path.get(1..2) == Some(":")
        || path.split(['/', '\\']).any(|c| c == "..")
}

fn is_package(item: &Item) -> bool {
    let path = item
        .url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    item.member.is_some()
        || path.ends_with(".tar.gz")
        || path.ends_with(".tgz")
        || path.ends_with(".tar")
}

async fn fetch_group(
    http: &reqwest::Client,
    settings: &FetchSettings,
    url: &str,
    items: &[Item],
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut targets: Vec<Option<PathBuf>> = vec![None; items.len()];
    for (i, item) in items.iter().enumerate() {
        match target_path(&settings.dir, item) {
            Err(e) => outcomes[i] = Some(Outcome::Failed(e)),
            Ok(t) if t.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) => {
                outcomes[i] = Some(Outcome::Present(t))
            }
            Ok(t) => targets[i] = Some(t),
        }
    }
    let wanted: Vec<usize> = (0..items.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    if !wanted.is_empty() {
        let package = is_package(&items[wanted[0]]);
        let limit = if package {
            settings.max_package_bytes
        } else {
            settings.max_image_bytes
        };
        // A temporary file of its own: two downloads of one URL or key at once (two screens,
        // a screen and `fetch-images`) never share one.
        let temp_file = match tempfile::Builder::new()
            .prefix(&format!(".vital-{}-", short_hash(url)))
            .suffix(".part")
            .tempfile_in(&settings.dir)
        {
            Ok(t) => t,
            Err(e) => {
                let e = format!(
                    "cannot create a temporary file in {}: {e}",
                    settings.dir.display()
                );
                for &i in &wanted {
                    outcomes[i] = Some(Outcome::Failed(e.clone()));
                }
                return outcomes.into_iter().map(|o| o.expect("decided")).collect();
            }
        };
        let temp = temp_file.path().to_path_buf();
        let results: Vec<Result<PathBuf, String>> =
            match download(http, settings, url, &temp_file, limit, package).await {
                Err(e) => wanted.iter().map(|_| Err(e.clone())).collect(),
                Ok(()) if package => {
                    let jobs: Vec<(Item, PathBuf)> = wanted
                        .iter()
                        .map(|&i| (items[i].clone(), targets[i].clone().expect("set above")))
                        .collect();
                    let (temp2, max_image) = (temp.clone(), settings.max_image_bytes);
                    match tokio::task::spawn_blocking(move || extract(&temp2, &jobs, max_image))
                        .await
                    {
                        Ok(r) => r,
                        Err(e) => wanted
                            .iter()
                            .map(|_| Err(format!("extraction failed: {e}")))
                            .collect(),
                    }
                }
                Ok(()) => wanted
                    .iter()
                    .map(|&i| copy_file(&temp, targets[i].as_ref().expect("set above")))
                    .collect(),
            };
        drop(temp_file);
        for (&i, r) in wanted.iter().zip(results) {
            outcomes[i] = Some(match r {
                Ok(p) => Outcome::Downloaded(p),
                Err(e) => Outcome::Failed(e),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every item decided"))
        .collect()
}

/// Downloads `url` to `temp`, retrying 429/5xx/timeouts, within `limit` bytes; checks the type.
async fn download(
    http: &reqwest::Client,
    s: &FetchSettings,
    url: &str,
    temp: &tempfile::NamedTempFile,
    limit: u64,
    package: bool,
) -> Result<(), String> {
    let backoff = Backoff {
        base: s.retry_base,
        max: s.retry_max,
        max_retries: s.max_retries,
    };
    let outcome = retry(
        backoff,
        |_, _, _| {},
        |_| async {
            match download_once(http, url, temp, limit, package).await {
                Ok(()) => Step::Done(()),
                Err(Failure::Final(e)) => Step::Fail(e),
                // A server asking for longer than the cap is not waited for (an hour per
                // retry, in silence, was possible).
                Err(Failure::Retry(problem, Some(asked))) if asked > s.max_retry_wait => {
                    Step::Fail(format!(
                        "{problem}: the server asked to wait {} s, more than llm.max_retry_wait_s = {}: stopped",
                        asked.as_secs(),
                        s.max_retry_wait.as_secs()
                    ))
                }
                Err(Failure::Retry(problem, asked)) => Step::Retry { problem, asked },
            }
        },
    )
    .await;
    match outcome {
        Ok(((), _)) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::GaveUp { attempts, last }) => {
            Err(format!("gave up after {attempts} attempts: {last}"))
        }
    }
}

enum Failure {
    Retry(String, Option<Duration>),
    Final(String),
}

async fn download_once(
    http: &reqwest::Client,
    url: &str,
    temp: &tempfile::NamedTempFile,
    limit: u64,
    package: bool,
) -> Result<(), Failure> {
    let retryable = |e: reqwest::Error| Failure::Retry(format!("{url}: {e}"), None);
    let mut response = http.get(url).send().await.map_err(retryable)?;
    let status = response.status();
    if !status.is_success() {
        let asked = retry_after(response.headers());
        let message = format!("{url}: HTTP {status}");
        return Err(
            if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                Failure::Retry(message, asked)
            } else {
                Failure::Final(message)
            },
        );
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let type_ok = if package {
        !content_type.starts_with("text/") && !content_type.starts_with("image/")
    } else {
        content_type.is_empty()
            || content_type.starts_with("image/")
            || content_type.starts_with("application/octet-stream")
    };
    if !type_ok {
        return Err(Failure::Final(format!(
            "{url}: content type `{content_type}` is not {}",
            if package { "a package" } else { "an image" }
        )));
    }
    if let Some(len) = response.content_length() {
        if len > limit {
            return Err(Failure::Final(format!(
                "{url}: {len} bytes is over the limit of {limit}"
            )));
        }
    }
    let io =
        |e: std::io::Error| Failure::Final(format!("cannot write {}: {e}", temp.path().display()));
    // The file this download created (never a path that could be a planted link), emptied for
    // each attempt.
    let std_file = temp.as_file().try_clone().map_err(io)?;
    std_file.set_len(0).map_err(io)?;
    let mut file = tokio::fs::File::from_std(std_file);
    file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
    let mut written = 0u64;
    let mut head = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(retryable)? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(Failure::Final(format!(
                "{url}: more than the limit of {limit} bytes"
            )));
        }
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len())]);
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    let looks_right = if package {
        head.starts_with(&[0x1f, 0x8b]) || written > 262 // gzip, or a plain tar (checked when read)
    } else {
        image::guess_format(&head).is_ok()
    };
    if !looks_right {
        return Err(Failure::Final(format!(
            "{url}: the content is not {}",
            if package {
                "a .tar.gz package"
            } else {
                "an image"
            }
        )));
    }
    Ok(())
}

/// Extracts each job's figure from the package at `package` to its target. Never writes a path
/// taken from the package. A member the data names is looked for by its path first; a file of the
/// same name elsewhere in the package is taken only when no member has that path.
fn extract(
    package: &Path,
    jobs: &[(Item, PathBuf)],
    max_image: u64,
) -> Vec<Result<PathBuf, String>> {
    let mut results: Vec<Option<Result<PathBuf, String>>> = vec![None; jobs.len()];
    let mut refusals: Vec<Option<String>> = vec![None; jobs.len()];
    let mut outcome = extract_pass(
        package,
        jobs,
        max_image,
        Match::Path,
        &mut results,
        &mut refusals,
    );
    let by_name_left = jobs.iter().enumerate().any(|(j, (item, _))| {
        item.member.is_some() && results[j].is_none() && refusals[j].is_none()
    });
    if outcome.is_ok() && by_name_left {
        outcome = extract_pass(
            package,
            jobs,
            max_image,
            Match::Name,
            &mut results,
            &mut refusals,
        );
    }
    results
        .into_iter()
        .zip(refusals)
        .zip(jobs)
        .map(|((r, refusal), (item, _))| match (r, &outcome) {
            (Some(r), _) => r,
            (None, Err(e)) => Err(format!("cannot read the package: {e}")),
            (None, Ok(())) => Err(refusal.unwrap_or_else(|| {
                format!(
                    "no member {} in the package",
                    item.member.as_deref().map_or_else(
                        || format!("named like `{}`", item.key),
                        |m| format!("`{m}`")
                    )
                )
            })),
        })
        .collect()
}

/// One read of the package, extracting the members that match their job as `wanted`. In the
/// name pass, jobs the path pass refused, and jobs that name no member, are left alone.
fn extract_pass(
    package: &Path,
    jobs: &[(Item, PathBuf)],
    max_image: u64,
    wanted: Match,
    results: &mut [Option<Result<PathBuf, String>>],
    refusals: &mut [Option<String>],
) -> std::io::Result<()> {
    let skip: Vec<bool> = (0..jobs.len())
        .map(|j| wanted == Match::Name && (refusals[j].is_some() || jobs[j].0.member.is_none()))
        .collect();
    let mut file = std::fs::File::open(package)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let file = std::fs::File::open(package)?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(tar_guard::TarGuard::new(reader));
    let left =
        |j: usize, results: &[Option<Result<PathBuf, String>>]| results[j].is_none() && !skip[j];
    for entry in archive.entries()? {
        if !(0..jobs.len()).any(|j| left(j, results)) {
            break;
        }
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = raw.trim_start_matches("./").to_string();
        for (j, (item, target)) in jobs.iter().enumerate() {
            if !left(j, results) || member_match(&path, item) != Some(wanted) {
                continue;
            }
            if member_is_unsafe(&path) {
                refusals[j] = Some(format!(
                    "package member `{raw}` leaves the package; refused"
                ));
                continue;
            }
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                refusals[j] = Some(format!(
                    "package member `{raw}` is not a regular file (a link?); refused"
                ));
                continue;
            }
            if entry.size() > max_image {
                results[j] = Some(Err(format!(
                    "package member `{raw}` has {} bytes, over the limit of {max_image}",
                    entry.size()
                )));
                continue;
            }
            results[j] = Some(write_member(&mut entry, target));
            // The entry's bytes are consumed: other jobs wanting the same member copy the file.
            if let Some(Ok(written)) = &results[j] {
                let written = written.clone();
                for (k, (other, other_target)) in jobs.iter().enumerate() {
                    if left(k, results) && member_match(&path, other) == Some(wanted) {
                        results[k] = Some(copy_file(&written, other_target));
                    }
                }
            }
            break;
        }
    }
    Ok(())
}

/// How a package member matches a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// The path the data names (exactly, or under a top folder); without a named member, the
    /// file named like the figure's key.
    Path,
    /// Only the file name of the member the data names, in another folder.
    Name,
}

/// How `path` matches the member the data names (exact path, or the same path under a top
/// folder, or the same file name), or without a name, the file named like the figure's key.
fn member_match(path: &str, item: &Item) -> Option<Match> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.is_empty() {
        return None;
    }
    match &item.member {
        Some(m) => {
            let m = m.trim_start_matches("./");
            let m_name = m.rsplit('/').next().unwrap_or(m);
            if path == m || path.ends_with(&format!("/{m}")) {
                Some(Match::Path)
            } else if name == m_name {
                Some(Match::Name)
            } else {
                None
            }
        }
        None => {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            let key_stem = item
                .key
                .rsplit_once('.')
                .map_or(item.key.as_str(), |(s, _)| s);
            (name == item.key || stem == key_stem).then_some(Match::Path)
        }
    }
}

/// Copies `from` to `target` through a temporary file and a rename, so a link at `target` is
/// replaced rather than followed.
fn copy_file(from: &Path, target: &Path) -> Result<PathBuf, String> {
    let mut source =
        std::fs::File::open(from).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    write_member(&mut source, target)
}

/// Writes `entry` to `target` through a temporary file in the same folder and a rename.
fn write_member(entry: &mut impl Read, target: &Path) -> Result<PathBuf, String> {
    let mut write = || -> anyhow::Result<()> {
        let mut out = AtomicFile::create(target)?;
        std::io::copy(entry, &mut out)?;
        out.commit()?;
        Ok(())
    };
    write()
        .map(|()| target.to_path_buf())
        .map_err(|e| format!("cannot write {}: {e:#}", target.display()))
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, url: &str, member: Option<&str>) -> Item {
        Item {
            key: key.into(),
            url: url.into(),
            member: member.map(Into::into),
        }
    }

    #[test]
    fn targets_are_plain_names_inside_the_dir() {
        let dir = Path::new("/d");
        assert_eq!(
            target_path(
                dir,
                &item("PMC1_F1", "http://h/a.tar.gz", Some("p/fig1.png"))
            )
            .unwrap(),
            dir.join("PMC1_F1.png")
        );
        assert_eq!(
            target_path(dir, &item("x.jpg", "http://h/x.jpg", None)).unwrap(),
            dir.join("x.jpg")
        );
        assert_eq!(
            target_path(dir, &item("k", "http://h/img?x=1", None)).unwrap(),
            dir.join("k.jpg")
        );
        for bad in ["../up", "a/b", "..", "/abs", "C:x", ""] {
            assert!(
                target_path(dir, &item(bad, "http://h/x.jpg", None)).is_err(),
                "{bad}"
            );
        }
        for bad in ["../escape.jpg", "/etc/passwd", "a/../../b.jpg", "C:\\x.jpg"] {
            let err = target_path(dir, &item("k", "http://h/p.tar.gz", Some(bad))).unwrap_err();
            assert!(err.contains("leaves the package"), "{bad}: {err}");
        }
    }

    #[test]
    fn members_match_by_path_suffix_or_name() {
        let it = item("PMC1_F1", "u", Some("PMC1/fig1.jpg"));
        assert_eq!(member_match("PMC1/fig1.jpg", &it), Some(Match::Path));
        assert_eq!(member_match("top/PMC1/fig1.jpg", &it), Some(Match::Path));
        assert_eq!(member_match("other/fig1.jpg", &it), Some(Match::Name));
        assert_eq!(member_match("PMC1/fig2.jpg", &it), None);
        assert_eq!(member_match("PMC1/", &it), None);
        let it = item("PMC1_F1", "u", None);
        assert_eq!(member_match("PMC1/PMC1_F1.png", &it), Some(Match::Path));
        assert_eq!(member_match("PMC1/F1.png", &it), None);
    }

    /// Writes a `.tar.gz` at `path` holding `members`, in that order.
    fn package(path: &Path, members: &[(&str, tar::EntryType, &[u8])]) {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, kind, data) in members {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn the_named_path_wins_over_a_file_of_the_same_name_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("p.tar.gz");
        let file = tar::EntryType::Regular;
        package(
            &pkg,
            &[
                ("PMC1/supp/fig1.jpg", file, b"supplement"),
                ("PMC1/fig1.jpg", file, b"figure"),
                ("PMC1/other/fig2.jpg", file, b"only by name"),
            ],
        );
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let jobs = vec![
            (item("a", "u", Some("PMC1/fig1.jpg")), out.join("a.jpg")),
            (item("b", "u", Some("fig1.jpg")), out.join("b.jpg")),
            (
                item("c", "u", Some("PMC1/supp/fig1.jpg")),
                out.join("c.jpg"),
            ),
            (item("d", "u", Some("PMC1/fig2.jpg")), out.join("d.jpg")),
            (item("e", "u", Some("PMC1/fig1.jpg")), out.join("e.jpg")),
        ];
        let r = extract(&pkg, &jobs, 1000);
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        let read = |n: &str| std::fs::read(out.join(n)).unwrap();
        assert_eq!(read("a.jpg"), b"figure");
        // `fig1.jpg` names a path under a top folder: the first one in the package.
        assert_eq!(read("b.jpg"), b"supplement");
        assert_eq!(read("c.jpg"), b"supplement");
        // No `PMC1/fig2.jpg`: the file of that name elsewhere.
        assert_eq!(read("d.jpg"), b"only by name");
        assert_eq!(read("e.jpg"), b"figure");
    }

    #[cfg(unix)]
    #[test]
    fn writing_a_figure_replaces_a_link_at_the_target_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"keep").unwrap();
        let target = dir.path().join("k.jpg");
        std::os::unix::fs::symlink(&outside, &target).unwrap();
        let source = dir.path().join("download.part");
        std::fs::write(&source, b"image").unwrap();
        assert_eq!(copy_file(&source, &target).unwrap(), target);
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert!(!target.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"image");
    }

    #[test]
    fn extraction_refuses_links_and_escaping_members_and_takes_the_right_file() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("p.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&package).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let mut add = |name: &str, kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, data).unwrap();
        };
        add("../evil.png", tar::EntryType::Regular, b"evil");
        add("PMC1/link.png", tar::EntryType::Symlink, b"");
        add("PMC1/fig1.png", tar::EntryType::Regular, b"good");
        b.into_inner().unwrap().finish().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let jobs = vec![
            (item("a", "u", Some("PMC1/fig1.png")), out.join("a.png")),
            (item("b", "u", Some("evil.png")), out.join("b.png")),
            (item("c", "u", Some("PMC1/link.png")), out.join("c.png")),
            (item("d", "u", Some("PMC1/none.png")), out.join("d.png")),
        ];
        let r = extract(&package, &jobs, 1000);
        assert_eq!(r[0].as_ref().unwrap(), &out.join("a.png"));
        assert_eq!(std::fs::read(out.join("a.png")).unwrap(), b"good");
        assert!(
            r[1].as_ref().unwrap_err().contains("leaves the package"),
            "{:?}",
            r[1]
        );
        assert!(
            r[2].as_ref().unwrap_err().contains("not a regular file"),
            "{:?}",
            r[2]
        );
        assert!(
            r[3].as_ref().unwrap_err().contains("no member"),
            "{:?}",
            r[3]
        );
        assert!(!dir.path().join("evil.png").exists());
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp files left: {names:?}");
    }

    /// Settings for the download tests: 1 MiB bounds, 10 ms backoff, a 120 s retry-wait cap.
    fn test_settings(dir: &Path, concurrency: usize, max_retries: u32) -> FetchSettings {
        FetchSettings {
            dir: dir.to_path_buf(),
            concurrency,
            timeout: Duration::from_secs(10),
            max_image_bytes: 1 << 20,
            max_package_bytes: 1 << 20,
            max_retries,
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(10),
            max_retry_wait: Duration::from_secs(120),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_after_beyond_the_cap_stops_the_download_at_once_with_the_servers_ask() {
        use crate::llm::test_server::{response, TestServer};
        let server =
            TestServer::start(|_, _| response(429, &[("retry-after", "999999")], "slow down"));
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(dir.path(), 1, 5);
        let started = std::time::Instant::now();
        let done = fetch_all(
            vec![item("k", &format!("{}/k.gif", server.url), None)],
            settings,
            |_, _| {},
        )
        .await
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        match &done[0].1 {
            Outcome::Failed(why) => {
                assert!(
                    why.contains("asked to wait 3600 s") || why.contains("asked to wait 999999 s"),
                    "{why}"
                );
                assert!(why.contains("llm.max_retry_wait_s = 120"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_downloads_of_one_key_at_once_both_succeed() {
        use crate::llm::test_server::{response, TestServer};
        const BODY: &str = "GIF89a-an-image-body-long-enough-to-take-a-few-writes";
        let server = TestServer::start(|_, _| {
            // Both requests are in flight before either reply starts.
            std::thread::sleep(Duration::from_millis(200));
            response(200, &[("content-type", "image/gif")], BODY)
        });
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(dir.path(), 2, 0);
        for round in 0..4 {
            let one = item(&format!("k{round}"), &format!("{}/k.gif", server.url), None);
            let fetch = |item: Item| {
                let settings = settings.clone();
                tokio::spawn(async move { fetch_all(vec![item], settings, |_, _| {}).await })
            };
            let (a, b) = (fetch(one.clone()), fetch(one.clone()));
            for done in [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()] {
                assert!(
                    matches!(done[0].1, Outcome::Downloaded(_) | Outcome::Present(_)),
                    "round {round}: {:?}",
                    done[0].1
                );
            }
            let target = dir.path().join(format!("k{round}.gif"));
            assert_eq!(std::fs::read_to_string(&target).unwrap(), BODY);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// A long-name header far over the limit (a real attack declares gigabytes of gzip'd zeros) is
    /// refused while the package is read, not held in memory.
    #[test]
    fn a_package_with_an_oversized_long_name_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("p.tar.gz");
        let mut name = b"PMC1/fig1.jpg".to_vec();
        name.resize(200 * 1024, 0);
        package(
            &pkg,
            &[
                ("././@LongLink", tar::EntryType::GNULongName, &name[..]),
                ("ignored", tar::EntryType::Regular, b"figure"),
            ],
        );
        let out = dir.path().join("a.jpg");
        let jobs = vec![(item("a", "u", Some("PMC1/fig1.jpg")), out.clone())];
        let r = extract(&pkg, &jobs, 1000);
        let err = r[0].as_ref().unwrap_err();
        assert!(err.contains("over the limit of 65536"), "{err}");
        assert!(!out.exists());
    }
}
