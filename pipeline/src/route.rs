//! Routing under the Traffic Light Protocol: which CERT sees which report, and when a CERT gets
//! a record (DESIGN.md, "Route").
//!
//! Every decision is made on a CERT's **view** of an indicator: the contributions that CERT may
//! see. A contribution may be seen by a CERT when its label allows it and the CERT is a
//! recipient for it:
//!
//! | label                         | may be seen by                                              |
//! |-------------------------------|-------------------------------------------------------------|
//! | CLEAR (WHITE), GREEN          | a CERT of an implicated country, or a regional subscriber   |
//! | AMBER                         | a CERT of an implicated country only                        |
//! | AMBER+STRICT, RED, unknown    | no CERT                                                     |
//!
//! A contribution implicates the indicator's infrastructure country and its own feed-given
//! target countries — never another contribution's, so a hidden report cannot route anything.
//! A CERT is considered only when the arriving report is in its view: a hidden report can neither
//! re-send nor change what a CERT sees. Within that, a CERT gets a record when its view is new,
//! gains a source, gains confidence, changes its revocation, or was last sent longer ago than the
//! TTL.

use crate::state::{Contribution, Emission, Entry};
use iocflow_model::time::Millis;
use iocflow_model::{IndicatorId, IndicatorType, Tlp};
use iocflow_sinks::cert_record::{CertRecord, SCHEMA_VERSION, Source};
use iocflow_sinks::withheld::WithheldReason;

/// A CERT as routing sees it.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub country: String,
    pub regional: bool,
}

/// Why no CERT may see this contribution, if none may: its label, or a MISP sharing group
/// (held back until sharing-group membership is configured: fail closed).
pub fn withholds(c: &Contribution) -> Option<WithheldReason> {
    match c.tlp {
        Tlp::AmberStrict => Some(WithheldReason::TlpAmberStrict),
        Tlp::Red => Some(WithheldReason::TlpRed),
        Tlp::Unknown => Some(WithheldReason::UnknownLabel),
        Tlp::Clear | Tlp::Green | Tlp::Amber => c.sharing_group.as_ref().map(|_| WithheldReason::SharingGroup),
    }
}

/// May `cert` see contribution `c` of an indicator whose infrastructure is in `infra`?
pub fn may_see(cert: &Recipient, c: &Contribution, infra: Option<&str>) -> bool {
    if c.sharing_group.is_some() {
        return false;
    }
    let implicated = infra == Some(cert.country.as_str()) || c.target_countries.contains(&cert.country);
    match c.tlp {
        Tlp::Clear | Tlp::Green => implicated || cert.regional,
        Tlp::Amber => implicated,
        Tlp::AmberStrict | Tlp::Red | Tlp::Unknown => false,
    }
}

/// The indicator a report is about, with its enrichment.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: IndicatorId,
    pub kind: IndicatorType,
    pub value: &'a str,
    pub infra_country: Option<&'a str>,
}

/// What became of one arriving report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These CERTs (indexes into the recipients) got a record.
    Emitted(Vec<usize>),
    /// Some CERT may see it, but no CERT's view changed enough to send it again.
    Suppressed,
    /// No CERT may see it.
    Withheld(WithheldReason),
}

/// The routing policy of one deployment.
#[derive(Debug, Clone)]
pub struct Router {
    pub recipients: Vec<Recipient>,
    pub ttl_ms: Millis,
}

impl Router {
    /// Merges the report `new` into `entry` and decides, per CERT, whether it gets a record.
    /// Records go to `emit` as (CERT index, record).
    pub fn apply(
        &self,
        entry: &mut Entry,
        subject: Subject<'_>,
        new: Contribution,
        reported_at: Millis,
        emit: &mut Vec<(usize, CertRecord)>,
    ) -> Outcome {
        let hidden = withholds(&new);
        let arriving = entry.merge(new, reported_at);
        if let Some(reason) = hidden {
            return Outcome::Withheld(reason);
        }
        let mut emitted = Vec::new();
        let mut visible_to_any = false;
        for (k, cert) in self.recipients.iter().enumerate() {
            if !may_see(cert, &entry.contributions[arriving], subject.infra_country) {
                continue;
            }
            visible_to_any = true;
            let view: Vec<&Contribution> =
                entry.contributions.iter().filter(|c| may_see(cert, c, subject.infra_country)).collect();
            let summary = summarise(&view, reported_at);
            if !self.changed(entry.emitted.get(&cert.country), &summary) {
                continue;
            }
            emit.push((k, record(subject, &view)));
            entry.emitted.insert(cert.country.clone(), summary);
            emitted.push(k);
        }
        if !emitted.is_empty() {
            Outcome::Emitted(emitted)
        } else if visible_to_any {
            Outcome::Suppressed
        } else {
            Outcome::Withheld(WithheldReason::NoRecipient)
        }
    }

    /// The emission rule: is `now` worth sending after `last`? A revocation is news only to a
    /// CERT that received the indicator.
    fn changed(&self, last: Option<&Emission>, now: &Emission) -> bool {
        let Some(last) = last else { return !now.revoked };
        now.sources.iter().any(|s| !last.sources.contains(s))
            || now.confidence > last.confidence
            || now.revoked != last.revoked
            || now.at.saturating_sub(last.at) >= self.ttl_ms
    }
}

fn summarise(view: &[&Contribution], at: Millis) -> Emission {
    let mut sources: Vec<String> = view.iter().map(|c| c.feed.clone()).collect();
    sources.sort();
    Emission {
        sources,
        confidence: view.iter().filter_map(|c| c.confidence).max(),
        revoked: view.iter().all(|c| c.revoked),
        at,
    }
}

/// The record a CERT receives: built from its view only.
fn record(subject: Subject<'_>, view: &[&Contribution]) -> CertRecord {
    let mut countries: Vec<String> = subject.infra_country.map(str::to_string).into_iter().collect();
    let mut tags: Vec<String> = Vec::new();
    let mut sources: Vec<Source> = Vec::with_capacity(view.len());
    for c in view {
        countries.extend(c.target_countries.iter().cloned());
        tags.extend(c.tags.iter().cloned());
        sources.push(Source { feed: c.feed.clone(), provider: c.provider.clone() });
    }
    countries.sort();
    countries.dedup();
    tags.sort();
    tags.dedup();
    sources.sort();
    let latest = view.iter().max_by_key(|c| c.last_seen);
    CertRecord {
        schema_version: SCHEMA_VERSION,
        id: subject.id.to_hex(),
        kind: subject.kind.as_str(),
        value: subject.value.to_string(),
        country: subject.infra_country.map(str::to_string),
        countries,
        asn: None,
        as_org: None,
        org: None,
        sectors: Vec::new(),
        tlp: view.iter().map(|c| c.tlp).max().unwrap_or(Tlp::Unknown).as_str(),
        confidence: view.iter().filter_map(|c| c.confidence).max(),
        threat: view.iter().filter(|c| c.threat.is_some()).max_by_key(|c| c.last_seen).and_then(|c| c.threat.clone()),
        tags,
        sources,
        sightings: view.iter().map(|c| c.sightings).sum(),
        first_seen: view.iter().map(|c| c.first_seen).min().unwrap_or_default(),
        last_seen: latest.map_or(0, |c| c.last_seen),
        revoked: view.iter().all(|c| c.revoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SG: usize = 0;
    const MY: usize = 1;
    const REGIONAL_TH: usize = 2;

    fn router() -> Router {
        Router {
            recipients: vec![
                Recipient { country: "SG".into(), regional: false },
                Recipient { country: "MY".into(), regional: false },
                Recipient { country: "TH".into(), regional: true },
            ],
            ttl_ms: 1_000,
        }
    }

    fn report(feed: &str, tlp: Tlp, targets: &[&str], at: Millis) -> Contribution {
        Contribution {
            feed: feed.into(),
            provider: format!("{feed} Inc."),
            tlp,
            confidence: Some(50),
            threat: None,
            tags: vec![],
            first_seen: at,
            last_seen: at,
            target_countries: targets.iter().map(|s| s.to_string()).collect(),
            revoked: false,
            sharing_group: None,
            sightings: 1,
        }
    }

    fn subject(infra: Option<&'static str>) -> Subject<'static> {
        Subject { id: IndicatorId(7), kind: IndicatorType::Domain, value: "x.example.sg", infra_country: infra }
    }

    fn run(entry: &mut Entry, infra: Option<&'static str>, c: Contribution) -> (Outcome, Vec<(usize, CertRecord)>) {
        let mut out = Vec::new();
        let at = c.last_seen;
        let o = router().apply(entry, subject(infra), c, at, &mut out);
        (o, out)
    }

    #[test]
    fn green_goes_to_the_implicated_cert_and_regional_subscribers() {
        let mut e = Entry::default();
        let (o, out) = run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        assert_eq!(o, Outcome::Emitted(vec![SG, REGIONAL_TH]));
        assert_eq!(out[0].1.tlp, "GREEN");
        assert_eq!(out[0].1.countries, ["SG"]);
    }

    #[test]
    fn amber_goes_to_implicated_certs_only() {
        let mut e = Entry::default();
        let (o, _) = run(&mut e, Some("SG"), report("a", Tlp::Amber, &["MY"], 0));
        assert_eq!(o, Outcome::Emitted(vec![SG, MY]));
        let mut e = Entry::default();
        let (o, _) = run(&mut e, None, report("a", Tlp::Amber, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::NoRecipient));
    }

    #[test]
    fn strict_labels_are_withheld_and_never_leak() {
        let mut e = Entry::default();
        let (o, _) = run(&mut e, Some("SG"), report("red", Tlp::Red, &["MY"], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpRed));
        let (o, _) = run(&mut e, Some("SG"), report("as", Tlp::AmberStrict, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpAmberStrict));
        let (o, _) = run(&mut e, Some("SG"), report("u", Tlp::Unknown, &[], 0));
        assert_eq!(o, Outcome::Withheld(WithheldReason::UnknownLabel));
        // A GREEN report of the same indicator: SG sees only the GREEN source; the RED report's
        // target MY does not make MY a recipient.
        let (o, out) = run(&mut e, Some("SG"), report("green", Tlp::Green, &[], 1));
        assert_eq!(o, Outcome::Emitted(vec![SG, REGIONAL_TH]));
        let rec = &out[0].1;
        assert_eq!(rec.sources.len(), 1);
        assert_eq!(rec.sources[0].feed, "green");
        assert_eq!(rec.countries, ["SG"]);
        assert_eq!(rec.sightings, 1);
    }

    #[test]
    fn duplicates_are_suppressed_until_the_view_changes() {
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        let (o, _) = run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 10));
        assert_eq!(o, Outcome::Suppressed);
        // A new source.
        let (o, out) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 20));
        assert_eq!(o, Outcome::Emitted(vec![SG, REGIONAL_TH]));
        assert_eq!(out[0].1.sources.len(), 2);
        assert_eq!(out[0].1.sightings, 3);
        // More confidence.
        let mut c = report("a", Tlp::Green, &[], 30);
        c.confidence = Some(90);
        let (o, _) = run(&mut e, Some("SG"), c);
        assert_eq!(o, Outcome::Emitted(vec![SG, REGIONAL_TH]));
        // Less confidence is no news.
        let (o, _) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 40));
        assert_eq!(o, Outcome::Suppressed);
        // The TTL has passed.
        let (o, _) = run(&mut e, Some("SG"), report("b", Tlp::Green, &[], 2_000));
        assert_eq!(o, Outcome::Emitted(vec![SG, REGIONAL_TH]));
    }

    #[test]
    fn a_hidden_report_does_not_resend_after_the_ttl() {
        let mut e = Entry::default();
        run(&mut e, Some("SG"), report("a", Tlp::Green, &[], 0));
        let (o, out) = run(&mut e, Some("SG"), report("r", Tlp::Red, &[], 5_000));
        assert_eq!(o, Outcome::Withheld(WithheldReason::TlpRed));
        assert!(out.is_empty());
    }

    #[test]
    fn sharing_groups_are_held_back() {
        let mut e = Entry::default();
        let mut c = report("misp", Tlp::Green, &[], 0);
        c.sharing_group = Some("5a1e0000-0000-4000-8000-0000000000aa".into());
        let (o, out) = run(&mut e, Some("SG"), c);
        assert_eq!(o, Outcome::Withheld(WithheldReason::SharingGroup));
        assert!(out.is_empty());
    }

    #[test]
    fn a_revocation_of_something_never_sent_is_not_sent() {
        let mut e = Entry::default();
        let mut c = report("a", Tlp::Green, &[], 0);
        c.revoked = true;
        let (o, out) = run(&mut e, Some("SG"), c);
        assert_eq!(o, Outcome::Suppressed);
        assert!(out.is_empty());
    }

    #[test]
    fn revocation_is_news() {
        let mut e = Entry::default();
        run(&mut e, Some("MY"), report("a", Tlp::Green, &[], 0));
        let mut c = report("a", Tlp::Green, &[], 10);
        c.revoked = true;
        let (o, out) = run(&mut e, Some("MY"), c);
        assert_eq!(o, Outcome::Emitted(vec![MY, REGIONAL_TH]));
        assert!(out[0].1.revoked);
    }
}
