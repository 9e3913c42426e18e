//! The imported list of where figure images can be downloaded from (`image_urls`).

use anyhow::Context;

use super::db::params;
use super::Workspace;

/// Where one figure's image can be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUrl {
    /// The figure's key (pair id or image file name).
    pub key: String,
    pub url: String,
    /// Path of the figure inside the package, when the URL is a `.tar.gz`.
    pub member: Option<String>,
}

impl Workspace {
    /// Every imported image URL, in import order.
    pub fn image_urls(&self) -> anyhow::Result<Vec<ImageUrl>> {
        self.db
            .query_vec(
                "SELECT key, url, member FROM image_urls ORDER BY rowid",
                params![],
                |r| {
                    Ok(ImageUrl {
                        key: r.get(0)?,
                        url: r.get(1)?,
                        member: r.get(2)?,
                    })
                },
            )
            .context("cannot read the image URL list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn urls_come_back_in_import_order(db: TestDb) {
        let ws = TestWorkspace::new(db);
        ws.db
            .execute_batch(
                "INSERT INTO image_urls (key, url, member) VALUES ('b', 'http://x/b.png', NULL);
                 INSERT INTO image_urls (key, url, member) VALUES ('a', 'http://x/p.tar.gz', 'fig/a.jpg');",
            )
            .unwrap();
        let urls = ws.image_urls().unwrap();
        assert_eq!(
            urls,
            vec![
                ImageUrl {
                    key: "b".into(),
                    url: "http://x/b.png".into(),
                    member: None,
                },
                ImageUrl {
                    key: "a".into(),
                    url: "http://x/p.tar.gz".into(),
                    member: Some("fig/a.jpg".into()),
                },
            ]
        );
    }

    on_both_databases!(urls_come_back_in_import_order);
}
