//! The source layout's one rule that a compiler does not check: dependencies between the top-level
//! parts of `src/` (a folder, or a single file such as `stable.rs`) point one way. A part that
//! uses another (`crate::other…`, outside its tests) may not be used by it, directly or through
//! others; this test fails naming the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level part of `src/` and its `.rs` files.
fn parts(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut parts = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            collect(&path, &mut files);
            parts.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            parts.insert(name, vec![path]);
        }
    }
    parts
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Whether a file is test code only (a `tests.rs`, a `*_tests.rs`, or under a `tests/` folder).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_str().unwrap();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The text without comments and without `#[cfg(test)]` modules (test code may use anything).
fn production_code(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item_end = after.find(['{', ';']).unwrap_or(after.len());
        if !after[..item_end].contains("mod ") || after[item_end..].starts_with(';') {
            // Not an inline module: drop the attribute's item up to its end.
            rest = &after[(item_end + 1).min(after.len())..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[item_end..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = item_end + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The parts named after `crate::` in `code` (`crate::store::…` and `crate::{store, data}`).
fn used_parts(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            group
                .split(',')
                .map(|n| n.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![after
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")]
        };
        used.extend(
            names
                .into_iter()
                .filter(|n| known.contains(*n))
                .map(String::from),
        );
    }
    used
}

/// Which parts each part uses.
fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let parts = parts(src);
    let known: BTreeSet<String> = parts.keys().cloned().collect();
    parts
        .iter()
        .map(|(name, files)| {
            let mut used = BTreeSet::new();
            for file in files.iter().filter(|f| !is_test_file(f)) {
                let code = production_code(&std::fs::read_to_string(file).unwrap());
                used.extend(used_parts(&code, &known));
            }
            used.remove(name);
            (name.clone(), used)
        })
        .collect()
}

/// A circle through `from` (a path from one of its uses back to it), if there is one.
fn circle_through(deps: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack: Vec<(String, Vec<String>)> = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in deps.get(&at).into_iter().flatten() {
            if next == from {
                let mut circle = path.clone();
                circle.push(from.to_string());
                return Some(circle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_part_of_src_uses_a_part_that_uses_it_back() {
    let src = crate::common::repo_root().join("src");
    let deps = dependencies(&src);
    assert!(
        deps.len() > 10,
        "found the parts of {}: {deps:?}",
        src.display()
    );
    assert!(deps["cli"].contains("store") && deps["store"].contains("data"));
    let circles: Vec<String> = deps
        .keys()
        .filter_map(|part| circle_through(&deps, part))
        .map(|circle| circle.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "dependencies must point one way; these go round:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_circle_check_sees_uses_and_ignores_tests_and_comments() {
    let known: BTreeSet<String> = ["store", "data", "llm"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let code = production_code(
        "use crate::{store::Workspace, data};\n// crate::llm in a comment\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::llm::X;\n    fn g() { if true { } }\n}\nfn h() { crate::data::x(); }\n",
    );
    assert_eq!(
        used_parts(&code, &known),
        ["data", "store"].iter().map(|s| s.to_string()).collect()
    );
    let deps: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        circle_through(&deps, "a").unwrap(),
        vec!["a", "b", "c", "a"]
    );
    assert_eq!(circle_through(&deps, "d"), None);
}
