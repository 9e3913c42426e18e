//! Image URL lists (`PMC_image_urls.jsonl`, LLaVA-Med's `llava_med_image_urls.jsonl`):
//! `{"pair_id": "…", "pmc_tar_url" | "url": "…", "im_path"?: "…"}`.

use serde_json::Value;

use super::{required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{ImageUrlRecord, Record};

pub struct UrlsParser;

impl RecordParser for UrlsParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let url = fields.required_text(&["url", "pmc_tar_url", "image_url"], warnings)?;
        let key = required_id(&fields, &["pair_id", "id", "image", "img"])?;
        let member = fields.text(&["im_path", "member", "path"], warnings);
        Ok(vec![Record::ImageUrl(ImageUrlRecord { key, url, member })])
    }
}
