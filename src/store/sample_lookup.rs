//! Small lookups of samples the CLI needs: a sample's source id by row id, and the imported
//! demonstrations.

use anyhow::Context;

use super::db::params;
use super::{StoredSample, Workspace};

impl Workspace {
    /// The id a sample had in its source file, by its row id.
    pub fn sample_ext_id(&self, sample_key: i64) -> anyhow::Result<String> {
        self.db
            .query_value(
                "SELECT ext_id FROM samples WHERE id = ?1",
                params![sample_key],
            )
            .with_context(|| format!("no sample with row id {sample_key}"))
    }

    /// The imported demonstrations (clinician-written examples), in import order.
    pub fn demo_samples(&self) -> anyhow::Result<Vec<StoredSample>> {
        let keys: Vec<i64> = self
            .db
            .query_vec(
                "SELECT id FROM samples WHERE is_demo = 1 ORDER BY id",
                params![],
                |r| r.get(0),
            )
            .context("cannot list the demonstrations")?;
        let mut demos = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(stored) = self.load_sample(key)? {
                demos.push(stored);
            }
        }
        Ok(demos)
    }
}

#[cfg(test)]
mod tests {
    use crate::data::Sample;
    use crate::store::samples::insert_sample;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};
    use crate::store::InsertOutcome;

    fn ext_ids_by_row_id_and_demonstrations_in_import_order(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let mut keys = Vec::new();
        for (id, is_demo) in [("d2", true), ("s", false), ("d1", true)] {
            let sample = Sample {
                id: id.into(),
                is_demo,
                ..Default::default()
            };
            let InsertOutcome::Inserted(key) = insert_sample(&ws.db, &sample, None).unwrap() else {
                panic!("a fresh workspace inserts {id}")
            };
            keys.push(key);
        }
        assert_eq!(ws.sample_ext_id(keys[1]).unwrap(), "s");
        assert!(ws.sample_ext_id(9_999).is_err());
        let demos: Vec<String> = ws
            .demo_samples()
            .unwrap()
            .into_iter()
            .map(|d| d.sample.id)
            .collect();
        assert_eq!(demos, vec!["d2", "d1"]);
    }

    on_both_databases!(ext_ids_by_row_id_and_demonstrations_in_import_order);
}
