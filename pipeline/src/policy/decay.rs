//! Decay (`[decay]`): how fresh a CERT's view of an indicator still is, and when it expires.
//!
//! In the spirit of MISP's polynomial decaying model, a view's score falls from its base (the
//! view's confidence, 50 when no report in it gives one) to zero over the indicator type's
//! lifetime τ, at speed δ:
//!
//! ```text
//! score(t) = base × (1 − (t/τ)^(1/δ))      t: time since the view's latest report or sighting
//! ```
//!
//! The view expires when its score falls to the threshold, at
//! `valid_until = last + τ × (1 − threshold/base)^δ` (at once when the base is not above it).
//! Time is record time: `t` is measured on the partition's clock (its latest report time), never
//! the wall clock, so a replay decides the same. Hashes (and ASNs) do not decay unless the
//! configuration gives them a lifetime.
//!
//! The view's time and base are read from its contributions here; who sees which contribution
//! is the router's (`route.rs`), and when a due expiry is looked for is the columnar stage's.

use crate::config::DecayConfig;
use crate::state::{Contribution, Sources};
use iocflow_model::IndicatorType;
use iocflow_model::sighting::SightingKind;
use iocflow_model::time::Millis;

/// The base of a view no report of which gives a confidence.
pub const DEFAULT_BASE: u8 = 50;

/// How one indicator type decays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curve {
    /// τ, in milliseconds.
    pub lifetime_ms: f64,
    /// δ: below 1 the score stays high for long and falls late; above 1 it falls early.
    pub speed: f64,
}

impl Curve {
    /// The score of a view of `base` confidence, `t` ms after its latest report or sighting.
    pub fn score(&self, base: f64, t: Millis) -> f64 {
        let t = t.max(0) as f64;
        if t >= self.lifetime_ms {
            return 0.0;
        }
        base * (1.0 - (t / self.lifetime_ms).powf(1.0 / self.speed))
    }

    /// When a view of `base` confidence last reported or sighted at `last` falls to `threshold`.
    pub fn valid_until(&self, base: f64, threshold: f64, last: Millis) -> Millis {
        if base <= threshold {
            return last;
        }
        last.saturating_add((self.lifetime_ms * (1.0 - threshold / base).powf(self.speed)) as Millis)
    }
}

/// The decay of one deployment: the threshold and each type's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Decay {
    pub threshold: f64,
    /// By [`IndicatorType::ALL`]'s order; `None`: the type does not decay.
    curves: [Option<Curve>; IndicatorType::ALL.len()],
}

/// How fresh a CERT's view is at some record time: what its record says of decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    /// The score, rounded to two decimals.
    pub score: f64,
    /// When the view expires (`None`: its type does not decay).
    pub valid_until: Option<Millis>,
    /// The view's score has fallen to the threshold.
    pub expired: bool,
}

impl Decay {
    pub fn of(config: &DecayConfig) -> Decay {
        let day = 24.0 * 3600.0 * 1000.0;
        Decay {
            threshold: config.threshold,
            curves: IndicatorType::ALL.map(|kind| {
                let (lifetime_days, speed) = config.curve(kind);
                (lifetime_days > 0.0).then_some(Curve { lifetime_ms: lifetime_days * day, speed })
            }),
        }
    }

    pub fn curve(&self, kind: IndicatorType) -> Option<Curve> {
        IndicatorType::ALL.iter().position(|k| *k == kind).and_then(|i| self.curves[i])
    }

    /// The freshness at record time `now` of the view made of the contributions at `sources`
    /// (reports and the sightings the CERT may see) of an indicator of type `kind`.
    pub fn freshness(&self, kind: IndicatorType, of: &[Contribution], sources: Sources, now: Millis) -> Freshness {
        let (base, last) = base_and_last(of, sources);
        let Some(curve) = self.curve(kind) else {
            return Freshness { score: base, valid_until: None, expired: false };
        };
        let valid_until = curve.valid_until(base, self.threshold, last);
        Freshness {
            score: rounded(curve.score(base, now - last)),
            valid_until: Some(valid_until),
            expired: now >= valid_until,
        }
    }

    /// The earliest any view of an entry's `contributions` can expire, whoever may see what: the
    /// oldest contribution and the lowest confidence decide. A restored partition schedules its
    /// entries here, before it knows their enrichment (which decides who sees what).
    pub fn earliest_expiry(&self, kind: IndicatorType, contributions: &[Contribution]) -> Option<Millis> {
        let curve = self.curve(kind)?;
        let oldest = contributions.iter().map(|c| c.last_seen).min()?;
        let lowest = contributions
            .iter()
            .filter(|c| c.sighting.is_none())
            .map(|c| c.confidence.unwrap_or(DEFAULT_BASE))
            .min()
            .unwrap_or(DEFAULT_BASE);
        Some(curve.valid_until(f64::from(lowest), self.threshold, oldest))
    }
}

/// A view's base (the highest confidence of its reports, [`DEFAULT_BASE`] if none gives one) and
/// its time (its latest report or sighting).
fn base_and_last(of: &[Contribution], sources: Sources) -> (f64, Millis) {
    let view = || sources.places().map(|i| &of[i]);
    let base = view().filter(|c| c.sighting.is_none()).filter_map(|c| c.confidence).max().unwrap_or(DEFAULT_BASE);
    let last = view()
        .filter(|c| matches!(c.sighting, None | Some((SightingKind::Seen, _))))
        .map(|c| c.last_seen)
        .max()
        .unwrap_or_default();
    (f64::from(base), last)
}

fn rounded(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 24 * 3600 * 1000;

    #[test]
    fn the_score_falls_from_the_base_to_the_threshold_at_valid_until() {
        let curve = Curve { lifetime_ms: (30 * DAY) as f64, speed: 0.3 };
        assert_eq!(curve.score(80.0, 0), 80.0);
        assert_eq!(curve.score(80.0, 30 * DAY), 0.0);
        assert_eq!(curve.score(80.0, 31 * DAY), 0.0);
        // δ < 1: slow at first.
        assert!(curve.score(80.0, 10 * DAY) > 75.0);
        let until = curve.valid_until(80.0, 20.0, 1_000);
        assert!((curve.score(80.0, until - 1_000) - 20.0).abs() < 0.01);
        // A view not above the threshold is expired as soon as it is seen.
        assert_eq!(curve.valid_until(20.0, 20.0, 1_000), 1_000);
        // Linear with δ = 1: half the base halfway.
        let linear = Curve { lifetime_ms: 100.0, speed: 1.0 };
        assert_eq!(linear.score(60.0, 50), 30.0);
        assert_eq!(linear.valid_until(60.0, 30.0, 0), 50);
    }
}
