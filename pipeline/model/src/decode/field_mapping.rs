//! The one path of the field-mapped formats: CSV (`delimited.rs`: columns) and vendor JSON
//! (`json_mapping.rs`: JSON pointers) locate the same fields in different records, and read them
//! the same way here.
//!
//! Each format resolves its options once per feed record into a [`FieldMap`] (where each field
//! is) and implements [`MappedRecord`] (how a field's text, time and tags are read from one of its
//! records); [`report`] turns a record into a report. So a value means the same in both: a
//! missing type is detected from the value, a threat falls back to the feed's fixed one, a
//! confidence is read by [`confidence`](super::confidence), a target country is an ISO code.

use super::{FeedDefaults, Reason, report_of};
use crate::time::Millis;
use crate::{Country, IndicatorType, Report};
use std::borrow::Cow;

/// Where a mapped feed's fields are in its records: `F` is a CSV column index or a JSON pointer.
#[derive(Debug, Clone)]
pub(super) struct FieldMap<F> {
    pub value: F,
    /// The type of every value, unless `type_field` gives it per record; detected from the value
    /// when neither does.
    pub kind: Option<IndicatorType>,
    pub type_field: Option<F>,
    pub first_seen: Option<F>,
    pub last_seen: Option<F>,
    pub threat: Option<F>,
    /// The threat of every record whose `threat` field has none.
    pub threat_value: Option<String>,
    pub tags: Vec<F>,
    pub confidence: Option<F>,
    pub target_country: Option<F>,
}

/// One record of a mapped format, read field by field.
pub(super) trait MappedRecord {
    type Field;
    /// The field's text, trimmed; `None` when absent or empty.
    fn text(&self, field: &Self::Field) -> Option<Cow<'_, str>>;
    fn time(&self, field: &Self::Field) -> Option<Millis>;
    fn tags(&self, field: &Self::Field) -> Vec<String>;
    /// Where the field is, for messages (`column 2`, `/ip_address`).
    fn locate(field: &Self::Field) -> String;
}

/// The report of one record.
pub(super) fn report<R: MappedRecord>(
    map: &FieldMap<R::Field>,
    rec: &R,
    defaults: &FeedDefaults,
) -> Result<Report, (Reason, String)> {
    let value = rec.text(&map.value).ok_or((Reason::MissingField, format!("no value at {}", R::locate(&map.value))))?;
    let kind = match (map.type_field.as_ref().and_then(|f| rec.text(f)), map.kind) {
        (Some(t), _) => IndicatorType::parse(&t).map_err(|e| (Reason::UnsupportedType, e.to_string()))?,
        (None, Some(k)) => k,
        (None, None) => crate::indicator::detect_type(&crate::indicator::refang(&value))
            .ok_or((Reason::InvalidValue, format!("cannot tell the type of {value:?}")))?,
    };
    let mut r = report_of(kind, &value, defaults)?;
    r.first_seen = map.first_seen.as_ref().and_then(|f| rec.time(f));
    r.last_seen = map.last_seen.as_ref().and_then(|f| rec.time(f));
    r.threat = map.threat.as_ref().and_then(|f| rec.text(f)).map(Cow::into_owned).or_else(|| map.threat_value.clone());
    r.tags = map.tags.iter().flat_map(|f| rec.tags(f)).collect();
    if let Some(c) = map.confidence.as_ref().and_then(|f| rec.text(f)) {
        r.confidence = Some(super::confidence(&c)?);
    }
    r.target_countries =
        map.target_country.as_ref().and_then(|f| rec.text(f)).and_then(|c| Country::parse(&c)).into_iter().collect();
    Ok(r)
}
