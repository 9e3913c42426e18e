//! Serde through `FromStr`/`Display`: a setting that names one of a few choices is stored as the
//! word a user types, and a wrong word is refused with the parser's own message (which lists the
//! allowed values). Used as `#[serde(with = "crate::as_text")]` by every part's settings.

use std::fmt::Display;
use std::str::FromStr;

use serde::{de::Error, Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer, T: Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    String::deserialize(d)?.parse().map_err(D::Error::custom)
}
