//! Reading the generation input: fig-caption records (`{pair_id, fig_caption, fig_label,
//! in_text_mention, domain, image?}`), streamed, and finding each figure's image file.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::data::fields::Fields;
use crate::data::formats::{figure_fields, id_text, Format};
use crate::data::json_stream::JsonSource;
use crate::data::warnings::Warnings;
use crate::data::{Record, Sample};
use crate::image_files::{ImageRoots, Lookup};

/// Image file extensions tried after a figure's id when the record names no image.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif"];

/// Reads every fig-caption record of `path` (JSON array or JSON Lines), in file order.
/// Records without an id or a caption are skipped with a warning.
pub fn read_figures(path: &Path, warnings: &mut Warnings) -> anyhow::Result<Vec<Sample>> {
    let mut figures = Vec::new();
    for_each_figure(path, warnings, &mut |figure, _| figures.push(figure))?;
    Ok(figures)
}

/// [`read_figures`], each figure with its record as read (to write it back unchanged).
pub fn read_figure_records(
    path: &Path,
    warnings: &mut Warnings,
) -> anyhow::Result<Vec<(Sample, serde_json::Value)>> {
    let mut figures = Vec::new();
    for_each_figure(path, warnings, &mut |figure, value| {
        figures.push((figure, value.clone()))
    })?;
    Ok(figures)
}

fn for_each_figure(
    path: &Path,
    warnings: &mut Warnings,
    each: &mut dyn FnMut(Sample, &serde_json::Value),
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let source =
        JsonSource::new(file).with_context(|| format!("cannot read {}", path.display()))?;
    source
        .for_each(|loc, value| {
            let fields = Fields::new(&value, loc)?;
            let Some(id) = id_text(&fields, &["pair_id", "id", "image", "img"]) else {
                warnings.add("record without `pair_id` skipped", loc.to_string());
                return Ok(());
            };
            let figure = figure_fields(&fields, id, warnings);
            if figure.caption.trim().is_empty() {
                warnings.add(
                    "record without caption skipped",
                    format!("{loc}: {}", figure.id),
                );
                return Ok(());
            }
            each(figure, &value);
            Ok(())
        })
        .with_context(|| format!("cannot read fig-caption records from {}", path.display()))?;
    Ok(())
}

/// Reads demonstrations from a `clinician_demos.json`-shaped file.
pub fn read_demos(path: &Path, warnings: &mut Warnings) -> anyhow::Result<Vec<Sample>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let source =
        JsonSource::new(file).with_context(|| format!("cannot read {}", path.display()))?;
    let mut parser = Format::Demos.parser();
    let mut demos = Vec::new();
    source
        .for_each(|loc, value| {
            for record in parser.parse(&value, loc, warnings)? {
                if let Record::Sample { sample, .. } = record {
                    if sample.rounds.iter().any(|r| !r.answers.is_empty()) {
                        demos.push(sample);
                    } else {
                        warnings.add("demonstration without answers skipped", sample.id);
                    }
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot read demonstrations from {}", path.display()))?;
    Ok(demos)
}

/// Finds a figure's image: the record's image reference, then `<id>.<ext>`, inside the folders
/// (never outside them; see [`crate::image_files`]).
pub fn find_image(figure: &Sample, roots: &ImageRoots) -> Lookup {
    let mut names: Vec<PathBuf> = Vec::new();
    let mut absolute = None;
    if let Some(image) = &figure.image {
        let given = Path::new(image);
        if given.is_absolute() {
            absolute = Some(given.to_path_buf());
        } else {
            names.push(given.to_path_buf());
        }
        if let Some(name) = given.file_name() {
            names.push(PathBuf::from(name));
        }
    }
    for ext in IMAGE_EXTENSIONS {
        names.push(PathBuf::from(format!("{}.{ext}", figure.id)));
    }
    roots.lookup_names(absolute, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fig_caption_records_with_token_mentions_and_domain_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figs.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"pair_id": "PMC1_F1", "fig_caption": "CT of the chest.", "fig_label": "Figure 1", "#,
                r#""in_text_mention": [{"tokens": "As shown in Fig. 1 .", "entities": []}], "#,
                r#""domain": {"ct_scan": true, "mri": false}}"#,
                "\n",
                r#"{"pair_id": "PMC1_F2", "fig_caption": ""}"#,
                "\n",
                r#"{"pair_id": 7, "fig_caption": "MRI.", "in_text_mention": null, "image": "sub/7.png"}"#,
                "\n"
            ),
        )
        .unwrap();
        let mut w = Warnings::default();
        let figs = read_figures(&path, &mut w).unwrap();
        assert_eq!(figs.len(), 2);
        assert_eq!(figs[0].id, "PMC1_F1");
        assert_eq!(figs[0].mentions, vec!["As shown in Fig. 1 ."]);
        assert_eq!(figs[0].domains, vec!["ct_scan"]);
        assert_eq!(figs[1].id, "7");
        assert_eq!(w.count("record without caption skipped"), 1);

        std::fs::write(dir.path().join("PMC1_F1.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("7.png"), b"x").unwrap();
        let dirs = ImageRoots::new([dir.path().to_path_buf()]);
        let base = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            find_image(&figs[0], &dirs).found(),
            Some(base.join("PMC1_F1.jpg"))
        );
        assert_eq!(
            find_image(&figs[1], &dirs).found(),
            Some(base.join("7.png")),
            "by file name"
        );
        assert_eq!(find_image(&figs[0], &ImageRoots::default()).found(), None);
    }
}
