//! Readers of the configuration's typed values, for `#[serde(deserialize_with)]`.
//!
//! Each reads one key's value and refuses a bad one with a message that says what is allowed;
//! [`Config::parse`](super::Config::parse) puts the key's path in front (`certs[7]
//! (SingCERT).country: …`). What one value can be wrong about is checked here, as it is read;
//! `Config::check` keeps only the rules across keys.

use crate::kafka::client_properties::ClientProperties;
use iocflow_model::{Country, Tlp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

fn refuse<T, E: serde::de::Error>(why: String) -> Result<T, E> {
    Err(E::custom(why))
}

/// Letters, digits, `-`, `_` or `.`: it names topics, groups and transactional ids.
pub fn app_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return refuse(format!("{id:?}: use letters, digits, '-', '_' or '.'"));
    }
    Ok(id)
}

pub fn not_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return refuse("must not be empty".into());
    }
    Ok(s)
}

pub fn at_least_one_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => refuse("must be at least 1".into()),
        n => Ok(n),
    }
}

pub fn optional_at_least_one_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    at_least_one_u32(d).map(Some)
}

pub fn at_least_one_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => refuse("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A decay score: from 0 to 100, below 100.
pub fn score<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match f64::deserialize(d)? {
        s if (0.0..100.0).contains(&s) => Ok(s),
        s => refuse(format!("{s}: must be at least 0 and below 100")),
    }
}

/// A lifetime in days: 0 (no decay) or more.
pub fn optional_days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match f64::deserialize(d)? {
        days if days.is_finite() && days >= 0.0 => Ok(Some(days)),
        days => refuse(format!("{days}: must be 0 (no decay) or a number of days")),
    }
}

/// A decay speed: above 0.
pub fn optional_speed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match f64::deserialize(d)? {
        speed if speed.is_finite() && speed > 0.0 => Ok(Some(speed)),
        speed => refuse(format!("{speed}: must be above 0")),
    }
}

/// A TLP label a feed may default to (TLP 2.0, or TLP 1.0's WHITE).
pub fn label<'de, D: Deserializer<'de>>(d: D) -> Result<Tlp, D::Error> {
    let text = String::deserialize(d)?;
    match Tlp::parse(&text) {
        Tlp::Unknown => refuse(format!("{text:?}: must be CLEAR, WHITE, GREEN, AMBER, AMBER+STRICT or RED")),
        tlp => Ok(tlp),
    }
}

/// A confidence of 0 to 100.
pub fn confidence<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(c) if c > 100 => refuse(format!("{c}: must be within 0–100")),
        c => Ok(c.map(|c| c as u8)),
    }
}

/// An ISO 3166-1 alpha-2 code, upper case as the standard writes it.
pub fn country<'de, D: Deserializer<'de>>(d: D) -> Result<Country, D::Error> {
    let code = String::deserialize(d)?;
    Country::parse_exact(&code)
        .ok_or_else(|| D::Error::custom(format!("{code:?}: must be an upper-case ISO 3166-1 alpha-2 code such as SG")))
}

fn parse_uuid<E: serde::de::Error>(text: &str) -> Result<uuid::Uuid, E> {
    uuid::Uuid::try_parse(text).map_err(|_| E::custom(format!("{text:?} is not a UUID")))
}

pub fn uuid<'de, D: Deserializer<'de>>(d: D) -> Result<uuid::Uuid, D::Error> {
    parse_uuid(&String::deserialize(d)?)
}

pub fn optional_uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<uuid::Uuid>, D::Error> {
    Option::<String>::deserialize(d)?.as_deref().map(parse_uuid).transpose()
}

pub fn uuids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<uuid::Uuid>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|u| parse_uuid(u)).collect()
}

pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

pub fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|h| Duration::from_secs(h * 3600))
}

/// Milliseconds, at least one second (a transaction must have time to commit).
pub fn millis_at_least_a_second<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = millis(d)?;
    if t < Duration::from_secs(1) {
        return refuse("must be at least 1000".into());
    }
    Ok(t)
}

/// librdkafka properties iocflow sets itself: overriding them would break its delivery guarantees.
const REFUSED_CLIENT_KEYS: [&str; 4] = ["enable.auto.commit", "isolation.level", "transactional.id", "acks"];

/// librdkafka sizes iocflow derives from `[limits]`, as it does the topics' `max.message.bytes`.
const SIZED_CLIENT_KEYS: [&str; 3] = ["message.max.bytes", "fetch.max.bytes", "receive.message.max.bytes"];

/// `[kafka.client]`: any librdkafka property but those iocflow's guarantees rest on.
pub fn client_properties<'de, D: Deserializer<'de>>(d: D) -> Result<ClientProperties, D::Error> {
    let props = ClientProperties::deserialize(d)?;
    if let Some(key) = props.keys().find(|k| REFUSED_CLIENT_KEYS.contains(k)) {
        return refuse(format!("\"{key}\" is set by iocflow from kafka.delivery and cannot be overridden"));
    }
    if let Some(key) = props.keys().find(|k| SIZED_CLIENT_KEYS.contains(k)) {
        return refuse(format!(
            "\"{key}\" is set by iocflow from limits.max_record_bytes (and the topics it creates agree with it); \
             set that instead"
        ));
    }
    Ok(props)
}
