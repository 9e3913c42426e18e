//! The bundled demo: the project's own small dataset (assets/demo), compiled into the binary so
//! `vital demo` works from any directory, offline.

use std::path::Path;

use anyhow::Context;

use crate::import::{import_file, ImportOptions};
use crate::store::Workspace;

/// (relative path, bytes) of every demo file, in import order.
pub const FILES: &[(&str, &[u8])] = &[
    (
        "candidates.jsonl",
        include_bytes!("../../assets/demo/candidates.jsonl"),
    ),
    (
        "pairs.jsonl",
        include_bytes!("../../assets/demo/pairs.jsonl"),
    ),
    ("demos.json", include_bytes!("../../assets/demo/demos.json")),
    (
        "scores.jsonl",
        include_bytes!("../../assets/demo/scores.jsonl"),
    ),
    (
        "images/ct_chest_nodule.png",
        include_bytes!("../../assets/demo/images/ct_chest_nodule.png"),
    ),
    (
        "images/ct_chest_normal.png",
        include_bytes!("../../assets/demo/images/ct_chest_normal.png"),
    ),
    (
        "images/mri_brain_lesion.png",
        include_bytes!("../../assets/demo/images/mri_brain_lesion.png"),
    ),
    (
        "images/cxr_effusion.png",
        include_bytes!("../../assets/demo/images/cxr_effusion.png"),
    ),
    (
        "images/cxr_normal.png",
        include_bytes!("../../assets/demo/images/cxr_normal.png"),
    ),
    (
        "images/histology_atypia.png",
        include_bytes!("../../assets/demo/images/histology_atypia.png"),
    ),
];

/// Opens the demo workspace in `dir`, writing and importing the demo data on first use.
/// Importing is idempotent, so a half-finished earlier set-up is simply completed.
pub fn open(dir: &Path) -> anyhow::Result<Workspace> {
    // Opened first: on a server, the demo files go in its local folder.
    let mut ws = Workspace::open(dir)?;
    let data = ws.dir().join("demo-data");
    for (name, bytes) in FILES {
        let path = data.join(name);
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("demo files live in a folder"))?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    for (name, _) in FILES.iter().filter(|(n, _)| !n.starts_with("images/")) {
        import_file(
            &mut ws,
            &data.join(name),
            &ImportOptions::default(),
            &|_, _| {},
        )?;
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_workspace_has_every_kind_of_data_and_reopens_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let stats = open(dir.path()).unwrap().stats().unwrap();
        assert_eq!(stats.samples, 6 + 4 + 1);
        assert_eq!(stats.demos, 1);
        assert_eq!(stats.human_pairs, 4);
        assert_eq!(stats.model_scores, 36);
        let again = open(dir.path()).unwrap().stats().unwrap();
        assert_eq!(stats, again);
        let ws = open(dir.path()).unwrap();
        assert!(
            ws.resolve_image("cxr_normal.png").is_some(),
            "demo images are found"
        );
    }
}
