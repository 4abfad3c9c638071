//! The first contact with the broker, and the error that names why it failed.
//!
//! librdkafka reports a refused password, an unknown CA or a closed port as log lines and error
//! events, and delivers those only when the client is polled; a metadata request on its own
//! just times out with "BrokerTransportFailure". So every command that talks to Kafka (`run`,
//! `check`, `topics --create`, `acls`) starts with [`connect`]: a client whose context keeps
//! the most telling failure librdkafka reported, polled while it asks for metadata. A failed
//! authentication or TLS handshake ends the wait at once (retrying cannot fix it: `Error::Connect`);
//! an unreachable broker is retried until the patience runs out (`Error::NoBroker`, which
//! `iocflow run` waits out). The error says which it was, for which user and address, with
//! librdkafka's own words.

use crate::error::{Error, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a client could not talk to the broker, from the most to the least telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    /// SASL authentication failed: a wrong password, an unknown user, a mechanism the broker
    /// does not offer.
    Authentication,
    /// The TLS handshake failed: an unknown CA, a wrong host name, a refused client certificate.
    Tls,
    /// No connection: a closed port, an unknown host, a broker that does not answer.
    Transport,
}

impl Cause {
    /// Reads the cause from librdkafka's error code or, for log lines, its message.
    fn of(code: Option<RDKafkaErrorCode>, message: &str) -> Option<Cause> {
        match code {
            Some(RDKafkaErrorCode::Authentication) => return Some(Cause::Authentication),
            Some(RDKafkaErrorCode::SSL) => return Some(Cause::Tls),
            Some(
                RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::Resolve,
            ) => return Some(Cause::Transport),
            _ => {}
        }
        if message.contains("SASL authentication error") || message.contains("Authentication failed") {
            Some(Cause::Authentication)
        } else if ["SSL handshake failed", "certificate verify failed", "SSL routines", "SSL alert"]
            .iter()
            .any(|m| message.contains(m))
        {
            Some(Cause::Tls)
        } else if message.contains("Connect to ") || message.contains("Failed to resolve") {
            Some(Cause::Transport)
        } else {
            None
        }
    }
}

/// A client context that forwards librdkafka's logs and errors to the log and keeps the most
/// telling connection failure among them.
#[derive(Default)]
pub struct Diagnosis {
    worst: Mutex<Option<(Cause, String)>>,
}

impl Diagnosis {
    fn note(&self, code: Option<RDKafkaErrorCode>, message: &str) {
        let Some(cause) = Cause::of(code, message) else { return };
        let mut worst = self.worst.lock().expect("not poisoned");
        // A more telling cause wins; within one, the latest, except that "1/1 brokers are down"
        // (a summary) does not replace the reason it summarises ("Connection refused").
        let summary = |m: &str| m.contains("brokers are down");
        let replace = match worst.as_ref() {
            None => true,
            Some((w, m)) => cause < *w || (cause == *w && (summary(m) || !summary(message))),
        };
        if replace {
            *worst = Some((cause, message.to_string()));
        }
    }

    /// The most telling failure reported so far.
    pub(crate) fn failure(&self) -> Option<(Cause, String)> {
        self.worst.lock().expect("not poisoned").clone()
    }
}

impl ClientContext for Diagnosis {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.note(None, message);
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{fac} {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac} {message}"),
        }
    }

    /// Error events repeat what the log lines said (and rust-rdkafka's `BaseProducer` hands each
    /// one over twice): noted, logged at debug level only.
    fn error(&self, error: KafkaError, reason: &str) {
        self.note(error.rdkafka_error_code(), reason);
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ProducerContext for Diagnosis {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// A connected client: for metadata and the admin calls of `acl_admin`.
pub type Connected = BaseProducer<Diagnosis>;

/// Connects with `settings` and waits until a broker answers metadata, for at most `patience`
/// (an authentication or TLS failure ends the wait at once). Blocking: run it off the executor.
pub fn connect(settings: &ClientConfig, patience: Duration) -> Result<Connected> {
    let client: Connected = settings.create_with_context(Diagnosis::default())?;
    let deadline = Instant::now() + patience;
    loop {
        let answer = client.client().fetch_metadata(None, Duration::from_millis(500));
        // Serves the log lines and error events queued meanwhile, into the context.
        client.poll(Duration::ZERO);
        if answer.is_ok() {
            return Ok(client);
        }
        let failure = client.context().failure();
        let fatal = matches!(failure, Some((Cause::Authentication | Cause::Tls, _)));
        if fatal {
            return Err(Error::Connect(explain(settings, failure, patience)));
        }
        if Instant::now() >= deadline {
            return Err(Error::NoBroker(explain(settings, failure, patience)));
        }
    }
}

/// The message for a failure: what failed, for which user or address, librdkafka's words.
fn explain(settings: &ClientConfig, failure: Option<(Cause, String)>, patience: Duration) -> String {
    let bootstrap = settings.get("bootstrap.servers").unwrap_or("?");
    match failure {
        Some((Cause::Authentication, why)) => format!(
            "SASL authentication failed for user {:?} ({}) at {bootstrap}: {why}",
            settings.get("sasl.username").unwrap_or(""),
            settings.get("sasl.mechanism").unwrap_or("GSSAPI")
        ),
        Some((Cause::Tls, why)) if why.contains("certificate verify failed") => format!(
            "TLS certificate verification failed: the broker at {bootstrap} presented a certificate that no CA \
             of ssl.ca.location ({}) signed, or not for its address: {why}",
            settings.get("ssl.ca.location").unwrap_or("the system's CAs")
        ),
        Some((Cause::Tls, why)) if why.contains("bad certificate") || why.contains("certificate required") => format!(
            "the broker at {bootstrap} refused this client's TLS certificate (none is set, or no CA the broker \
             trusts signed it: ssl.certificate.location, ssl.key.location): {why}"
        ),
        Some((Cause::Tls, why)) => format!("the TLS handshake with the broker at {bootstrap} failed: {why}"),
        Some((Cause::Transport, why)) => {
            format!("no Kafka broker answered at {bootstrap} within {} s: {why}", patience.as_secs())
        }
        None => format!("no Kafka broker answered metadata at {bootstrap} within {} s", patience.as_secs()),
    }
}

/// Whether an error is the cluster being away for a while (a broker down or restarting, a leader
/// or coordinator moving, a request timing out): librdkafka reconnects and retries by itself, so
/// a reader waits it out instead of failing.
pub(crate) fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    error.rdkafka_error_code().is_some_and(|code| {
        matches!(
            code,
            AllBrokersDown
                | BrokerTransportFailure
                | Resolve
                | OperationTimedOut
                | RequestTimedOut
                | NetworkException
                | LeaderNotAvailable
                | NotLeaderForPartition
                | NotCoordinator
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_telling_cause_is_kept() {
        let d = Diagnosis::default();
        d.note(None, "b:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused");
        assert_eq!(d.failure().unwrap().0, Cause::Transport);
        d.note(Some(RDKafkaErrorCode::Authentication), "SASL authentication error: Authentication failed");
        d.note(None, "b:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused");
        d.note(None, "Partition EOF");
        assert_eq!(d.failure().unwrap().0, Cause::Authentication);
    }

    #[test]
    fn an_unreachable_broker_is_named_by_its_address() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut settings = ClientConfig::new();
        settings.set("bootstrap.servers", format!("127.0.0.1:{port}"));
        let started = Instant::now();
        let e = connect(&settings, Duration::from_secs(2)).err().unwrap().to_string();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(e.contains(&format!("no Kafka broker answered at 127.0.0.1:{port} within 2 s")), "{e}");
        assert!(e.contains("Connection refused"), "{e}");
    }
}
