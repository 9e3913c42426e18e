//! One shard of N: the share of a collection one machine of a job array takes, chosen by
//! content (a text's or image's hash) or by sample id, so every machine computes the same split
//! with no coordinator. Shards count from 0, as a Slurm array `--array=0-(N-1)` numbers its tasks.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context as _};

use crate::store::TextHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// 0 ≤ index < count.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Everything: the one shard of one.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> anyhow::Result<Self> {
        if count == 0 {
            bail!("shard {index}/{count}: the number of shards must be at least 1");
        }
        if index >= count {
            bail!(
                "shard {index}/{count}: shards count from 0 to {} (a Slurm array: --array=0-{})",
                count - 1,
                count - 1
            );
        }
        Ok(Shard { index, count })
    }

    pub fn is_all(self) -> bool {
        self.count == 1
    }

    /// Whether the text or image with this content hash is this shard's. The first 8 bytes of a
    /// SHA-256 are uniform, so shards are the same size within a fraction of a percent.
    pub fn has_hash(self, hash: &TextHash) -> bool {
        let mut lead = [0u8; 8];
        lead.copy_from_slice(&hash.0[..8]);
        u64::from_be_bytes(lead) % u64::from(self.count) == u64::from(self.index)
    }

    /// Whether the sample with this row id is this shard's (samples K, K+N, K+2N, …: a sample
    /// is scored whole, since its score aggregates its answers').
    pub fn has_sample(self, sample_id: i64) -> bool {
        sample_id.rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }

    /// For file names: `2of10`.
    pub fn file_tag(self) -> String {
        format!("{}of{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (k, n) = s
            .split_once('/')
            .with_context(|| format!("shard `{s}`: expected K/N, e.g. 0/4"))?;
        let index = k
            .trim()
            .parse()
            .with_context(|| format!("shard `{s}`: K must be a whole number"))?;
        let count = n
            .trim()
            .parse()
            .with_context(|| format!("shard `{s}`: N must be a whole number"))?;
        Shard::new(index, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_explains_what_is_wrong() {
        assert_eq!("2/10".parse::<Shard>().unwrap(), Shard::new(2, 10).unwrap());
        assert_eq!(Shard::new(2, 10).unwrap().to_string(), "2/10");
        let err = "10/10".parse::<Shard>().unwrap_err().to_string();
        assert!(
            err.contains("from 0 to 9") && err.contains("--array=0-9"),
            "{err}"
        );
        assert!("0/0"
            .parse::<Shard>()
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!("3"
            .parse::<Shard>()
            .unwrap_err()
            .to_string()
            .contains("K/N"));
        assert!("a/3".parse::<Shard>().is_err());
    }

    #[test]
    fn every_item_falls_in_exactly_one_shard_and_shards_are_even() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard::new(k, 3).unwrap()).collect();
        let mut sizes = [0usize; 3];
        for i in 0..3000 {
            let hash = TextHash::of(&format!("text {i}"));
            let owners: Vec<usize> = (0..3).filter(|&k| shards[k].has_hash(&hash)).collect();
            assert_eq!(owners.len(), 1);
            sizes[owners[0]] += 1;
            let sample = (0..3).filter(|&k| shards[k].has_sample(i)).count();
            assert_eq!(sample, 1);
        }
        assert!(sizes.iter().all(|&n| (900..1100).contains(&n)), "{sizes:?}");
        assert!(Shard::ALL.has_hash(&TextHash::of("x")) && Shard::ALL.has_sample(7));
    }
}
