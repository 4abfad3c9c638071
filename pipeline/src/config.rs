//! The iocflow configuration: one TOML file, read and checked once at start.
//!
//! Every table is a struct with `deny_unknown_fields`, so a misspelt key is an error that names
//! it instead of a silently ignored setting. [`Config::load`] then checks what the types cannot
//! (country codes, unique topics, refused Kafka overrides, secrets) and names the key or CERT at
//! fault. Nothing downstream re-validates: a loaded `Config` is a valid one.

use crate::error::{Error, Result};
use crate::kafka::client_properties::ClientProperties;
use iocflow_enrichers::tables::TableFiles;
use iocflow_model::Tlp;
use iocflow_model::decode::delimited::CsvOptions;
use iocflow_model::decode::json_mapping::JsonMapping;
use iocflow_model::decode::lines::LinesOptions;
use iocflow_model::decode::misp::MispOptions;
use iocflow_model::decode::text::TextOptions;
use iocflow_model::decode::{Decoder, FeedDefaults, Format, Limits};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Names the internal topics, consumer groups and transactional ids of this deployment.
    #[serde(default = "default_app_id")]
    pub app_id: String,
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    #[serde(default)]
    pub dedupe: DedupeConfig,
    #[serde(default)]
    pub enrich: EnrichConfig,
    #[serde(default)]
    pub certs: Vec<CertConfig>,
    /// MISP sharing groups and their member organisations (distribution 4).
    #[serde(default)]
    pub sharing_groups: Vec<SharingGroupConfig>,
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The folder of the config file: relative data-file paths are relative to it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_app_id() -> String {
    "iocflow".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    AtLeastOnce,
    ExactlyOnce,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    #[serde(default = "default_delivery")]
    pub delivery: Delivery,
    /// Partitions of `<app>.indicators` (and later `<app>.state`): the unit of parallelism.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Partitions of the feed and CERT topics that `iocflow topics --create` makes.
    #[serde(default = "default_topic_partitions")]
    pub topic_partitions: u32,
    #[serde(default = "default_replication")]
    pub replication_factor: i16,
    /// Consumer session timeout: how fast a dead replica's partitions move to a live one.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// The replica's ordinal, for `transactional.id = <app_id>-<stage>-<ordinal>`: stable across
    /// restarts so a restarted replica fences its dead predecessor at once. When absent: the
    /// environment variable `IOCFLOW_INSTANCE`, else the number ending `HOSTNAME` (a
    /// StatefulSet pod `iocflow-2` is 2), else 0.
    pub instance: Option<u32>,
    /// Transactions not committed within this are aborted by the broker (exactly-once).
    #[serde(default = "default_transaction_timeout_ms")]
    pub transaction_timeout_ms: u32,
    /// librdkafka properties for every client (security, SASL, TLS …). Values may be
    /// `${env:NAME}` or `${file:/path}` to keep secrets out of the file; secrets never print.
    #[serde(default)]
    pub client: ClientProperties,
}

fn default_delivery() -> Delivery {
    Delivery::AtLeastOnce
}
fn default_partitions() -> u32 {
    6
}
fn default_topic_partitions() -> u32 {
    3
}
fn default_replication() -> i16 {
    1
}
fn default_session_timeout_ms() -> u32 {
    10_000
}
fn default_transaction_timeout_ms() -> u32 {
    60_000
}

/// How micro-batches close: on rows, bytes or linger, whichever comes first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
}

fn default_max_rows() -> usize {
    4096
}
fn default_max_bytes() -> usize {
    4 << 20
}
fn default_linger_ms() -> u64 {
    100
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_rows: default_max_rows(), max_bytes: default_max_bytes(), linger_ms: default_linger_ms() }
    }
}

/// Limits on feed records; each refusal is a dead letter with its own reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    #[serde(default = "default_max_indicators")]
    pub max_indicators_per_record: usize,
    /// Dead letters keep at most this many bytes of the original record.
    #[serde(default = "default_dead_letter_bytes")]
    pub dead_letter_max_bytes: usize,
}

fn default_max_record_bytes() -> usize {
    Limits::default().max_record_bytes
}
fn default_max_depth() -> usize {
    Limits::default().max_depth
}
fn default_max_indicators() -> usize {
    Limits::default().max_indicators
}
fn default_dead_letter_bytes() -> usize {
    256 << 10
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_record_bytes: default_max_record_bytes(),
            max_depth: default_max_depth(),
            max_indicators_per_record: default_max_indicators(),
            dead_letter_max_bytes: default_dead_letter_bytes(),
        }
    }
}

impl LimitsConfig {
    pub(crate) fn decode_limits(&self) -> Limits {
        Limits {
            max_record_bytes: self.max_record_bytes,
            max_depth: self.max_depth,
            max_indicators: self.max_indicators_per_record,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub name: String,
    /// The feed's topic; it identifies the provider, whose principal alone may write to it.
    pub topic: String,
    pub format: Format,
    pub provider: String,
    /// The label of reports that carry none; a report's own label can only make it stricter.
    pub tlp: String,
    pub confidence: Option<u8>,
    /// The Kafka principal of the producer, for the ACL plan (`iocflow acls`).
    pub principal: Option<String>,
    /// `format = "json"`: a field mapping for vendor JSON (absent: canonical indicator JSON).
    pub json: Option<JsonMapping>,
    /// `format = "csv"`: columns, delimiter, comments (required).
    pub csv: Option<CsvOptions>,
    /// `format = "lines"`: type, comment prefixes.
    pub lines: Option<LinesOptions>,
    /// `format = "text"`: file extensions that are not domains.
    pub text: Option<TextOptions>,
    /// `format = "misp"`: whether non-`to_ids` attributes are indicators.
    pub misp: Option<MispOptions>,
}

impl FeedConfig {
    /// The decoder of this feed's format with its options.
    pub fn decoder(&self) -> Decoder {
        match self.format {
            Format::Json => Decoder::Json(self.json.clone()),
            Format::Intelmq => Decoder::Intelmq,
            Format::Stix2 => Decoder::Stix2,
            Format::Misp => Decoder::Misp(self.misp.clone().unwrap_or_default()),
            Format::Csv => Decoder::Csv(self.csv.clone().expect("checked at load: csv feeds have [feeds.csv]")),
            Format::Lines => Decoder::Lines(self.lines.clone().unwrap_or_default()),
            Format::Text => Decoder::Text(self.text.clone().unwrap_or_default()),
        }
    }

    /// Format option tables present, by name.
    fn option_tables(&self) -> Vec<(&'static str, Format)> {
        let mut t = Vec::new();
        if self.json.is_some() {
            t.push(("json", Format::Json));
        }
        if self.csv.is_some() {
            t.push(("csv", Format::Csv));
        }
        if self.lines.is_some() {
            t.push(("lines", Format::Lines));
        }
        if self.text.is_some() {
            t.push(("text", Format::Text));
        }
        if self.misp.is_some() {
            t.push(("misp", Format::Misp));
        }
        t
    }

    /// The Kafka principal of the feed's producer; defaults to `User:feed-<name>`.
    pub fn principal(&self) -> String {
        self.principal.clone().unwrap_or_else(|| format!("User:feed-{}", self.name))
    }

    pub fn defaults(&self) -> FeedDefaults {
        FeedDefaults { tlp: Tlp::parse(&self.tlp), confidence: self.confidence }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// A CERT gets an unchanged view again once its last emission is older than this.
    #[serde(default = "default_ttl_hours")]
    pub ttl_hours: u64,
    /// Indicators kept per replica; beyond it the least recently seen are forgotten.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Estimated memory the state may hold per replica.
    #[serde(default = "default_max_bytes_state")]
    pub max_bytes: usize,
}

fn default_max_bytes_state() -> usize {
    2 << 30
}

fn default_ttl_hours() -> u64 {
    24 * 7
}
fn default_max_entries() -> usize {
    2_000_000
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            ttl_hours: default_ttl_hours(),
            max_entries: default_max_entries(),
            max_bytes: default_max_bytes_state(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The canonical record (`schemas/cert-record.schema.json`).
    Json,
    /// A STIX 2.1 indicator per record.
    Stix,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// ISO 3166-1 alpha-2 code of the CERT's country.
    pub country: String,
    pub name: String,
    /// Defaults to `cert.<cc>.indicators`.
    pub topic: Option<String>,
    /// Defaults to `User:cert-<cc>`.
    pub principal: Option<String>,
    /// The prefix of the consumer group ids the CERT may use; defaults to `cert-<cc>-`. It ends
    /// with a separator, so it covers no other CERT's groups (`cert-sg` would cover `cert-sgx…`).
    pub group_prefix: Option<String>,
    /// The CERT's organisation in MISP: it sees a sharing group's reports when it is a member.
    pub misp_org_uuid: Option<String>,
    /// An SQL expression over the CERT's view (`cert_view.rs`), e.g.
    /// `confidence >= 60 AND array_has(sectors, 'finance')`: only views it accepts are sent.
    pub filter: Option<String>,
    #[serde(default = "default_output_format")]
    pub format: OutputFormat,
    /// Receives every CLEAR or GREEN indicator, whatever its country.
    #[serde(default)]
    pub regional: bool,
}

fn default_output_format() -> OutputFormat {
    OutputFormat::Json
}

impl CertConfig {
    pub fn topic(&self) -> String {
        self.topic.clone().unwrap_or_else(|| format!("cert.{}.indicators", self.country.to_ascii_lowercase()))
    }
    pub fn principal(&self) -> String {
        self.principal.clone().unwrap_or_else(|| format!("User:cert-{}", self.country.to_ascii_lowercase()))
    }
    pub fn group_prefix(&self) -> String {
        self.group_prefix.clone().unwrap_or_else(|| format!("cert-{}-", self.country.to_ascii_lowercase()))
    }
}

/// What to do with an indicator a warninglist calls benign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenignAction {
    /// Deliver it with a `warninglist:<list name>` tag.
    #[default]
    Tag,
    /// Deliver it to no CERT; it goes to the withheld topic with reason `benign`.
    Drop,
}

/// Enrichment data files (`enrichers`): every one optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// A MaxMind DB (`country.iso_code`) for IP geolocation instead of the built-in RIR data.
    pub country_mmdb: Option<PathBuf>,
    /// IP → ASN ranges, `first_ip,last_ip,asn,organisation` CSV files.
    #[serde(default)]
    pub asn_csv: Vec<PathBuf>,
    /// A MaxMind DB (`autonomous_system_number`, `autonomous_system_organization`) for the
    /// addresses the CSV ranges do not cover.
    pub asn_mmdb: Option<PathBuf>,
    /// The constituency registry (TOML).
    pub constituency: Option<PathBuf>,
    /// MISP warninglist files, or folders whose `*.json` files are warninglists.
    #[serde(default)]
    pub warninglists: Vec<PathBuf>,
    #[serde(default)]
    pub benign: BenignAction,
    /// How often the files are checked for changes (SIGHUP reloads at once).
    #[serde(default = "default_reload_seconds")]
    pub reload_seconds: u64,
}

fn default_reload_seconds() -> u64 {
    30
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            country_mmdb: None,
            asn_csv: Vec::new(),
            asn_mmdb: None,
            constituency: None,
            warninglists: Vec::new(),
            benign: BenignAction::Tag,
            reload_seconds: default_reload_seconds(),
        }
    }
}

/// A MISP sharing group: the organisations (MISP uuids) whose CERTs may see its reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingGroupConfig {
    pub uuid: String,
    pub name: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Principals of the ACL plan (`iocflow acls`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// iocflow's own principal.
    #[serde(default = "default_principal")]
    pub principal: String,
    /// Who may read the dead letters and the withheld audit topic besides iocflow (in consumer
    /// groups `<app_id>-audit-…`).
    #[serde(default)]
    pub auditors: Vec<String>,
}

fn default_principal() -> String {
    "User:iocflow".into()
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig { principal: default_principal(), auditors: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of `/metrics`, `/healthz` and `/readyz`; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: default_listen() }
    }
}

/// The stages of a replica: each has its consumer group and, in exactly-once mode, its
/// transactional producer (`<app>-<stage>-<ordinal>`).
pub(crate) const STAGES: [&str; 2] = ["ingest", "columnar"];

/// What a consumer-group prefix must end with, so that it covers no longer name of someone else
/// (`cert-sg` would also cover `cert-sgx…`).
const GROUP_SEPARATORS: [char; 3] = ['-', '.', '_'];

/// librdkafka properties iocflow sets itself: overriding them would break its delivery guarantees.
const REFUSED_CLIENT_KEYS: [&str; 4] = ["enable.auto.commit", "isolation.level", "transactional.id", "acks"];

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok()
}

impl Config {
    /// The sharing groups (lower-case uuids) whose member list names `org`.
    pub(crate) fn sharing_groups_of(&self, org: Option<&str>) -> HashSet<String> {
        let Some(org) = org else { return HashSet::new() };
        self.sharing_groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(org)))
            .map(|g| g.uuid.to_ascii_lowercase())
            .collect()
    }

    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config = Config::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// The enrichment data files, relative paths resolved against the config file's folder and
    /// warninglist folders expanded to their `*.json` files (sorted).
    pub(crate) fn table_files(&self) -> Result<TableFiles> {
        let resolve = |p: &PathBuf| if p.is_absolute() { p.clone() } else { self.base_dir.join(p) };
        let mut warninglists = Vec::new();
        for (i, entry) in self.enrich.warninglists.iter().enumerate() {
            let path = resolve(entry);
            if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map_err(|e| Error::Config(format!("enrich.warninglists[{i}]: {}: {e}", path.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                warninglists.extend(files);
            } else {
                warninglists.push(path);
            }
        }
        Ok(TableFiles {
            country_mmdb: self.enrich.country_mmdb.as_ref().map(resolve),
            asn: self.enrich.asn_csv.iter().map(resolve).collect(),
            asn_mmdb: self.enrich.asn_mmdb.as_ref().map(resolve),
            constituency: self.enrich.constituency.as_ref().map(resolve),
            warninglists,
        })
    }

    /// Parses and checks a configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.check()?;
        config.resolve_secrets()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let bad = |key: String, why: &str| Err(Error::Config(format!("{key}: {why}")));
        if self.app_id.is_empty() || !self.app_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return bad("app_id".into(), "use letters, digits, '-', '_' or '.'");
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return bad("kafka.bootstrap_servers".into(), "must not be empty");
        }
        if self.kafka.partitions == 0 || self.kafka.topic_partitions == 0 {
            return bad("kafka.partitions".into(), "must be at least 1");
        }
        for key in self.kafka.client.keys() {
            if REFUSED_CLIENT_KEYS.contains(&key) {
                return bad(
                    format!("kafka.client.\"{key}\""),
                    "is set by iocflow from kafka.delivery and cannot be overridden",
                );
            }
        }
        if self.kafka.transaction_timeout_ms < 1_000 {
            return bad("kafka.transaction_timeout_ms".into(), "must be at least 1000");
        }
        if self.batch.max_rows == 0 || self.batch.max_bytes == 0 {
            return bad("batch.max_rows".into(), "must be at least 1");
        }
        if self.feeds.is_empty() {
            return bad("feeds".into(), "declare at least one [[feeds]]");
        }
        let mut names = HashSet::new();
        let mut topics: HashSet<String> = HashSet::new();
        for (i, f) in self.feeds.iter().enumerate() {
            let key = |k: &str| format!("feeds[{i}] ({}).{k}", f.name);
            if f.name.is_empty() || !names.insert(f.name.as_str()) {
                return bad(key("name"), "must be non-empty and unique");
            }
            if !topics.insert(f.topic.clone()) {
                return bad(key("topic"), "another feed reads this topic: a topic identifies one provider");
            }
            if f.topic.starts_with(&format!("{}.", self.app_id)) {
                return bad(key("topic"), "is an internal topic of this app_id");
            }
            if Tlp::parse(&f.tlp) == Tlp::Unknown {
                return bad(key("tlp"), "must be CLEAR, WHITE, GREEN, AMBER, AMBER+STRICT or RED");
            }
            if f.confidence.is_some_and(|c| c > 100) {
                return bad(key("confidence"), "must be within 0–100");
            }
            for (table, format) in f.option_tables() {
                if format != f.format {
                    return bad(
                        key(table),
                        &format!("is for format = \"{table}\", but this feed's format is {:?}", f.format.as_str()),
                    );
                }
            }
            if f.format == Format::Csv && f.csv.is_none() {
                return bad(key("csv"), "format = \"csv\" needs a [feeds.csv] table naming at least the value column");
            }
        }
        if self.certs.is_empty() {
            return bad("certs".into(), "declare at least one [[certs]]");
        }
        if self.certs.len() > crate::policy::route::MAX_CERTS {
            return bad("certs".into(), &format!("declare at most {} [[certs]]", crate::policy::route::MAX_CERTS));
        }
        let mut countries = HashSet::new();
        for (i, c) in self.certs.iter().enumerate() {
            let key = |k: &str| format!("certs[{i}] ({}).{k}", c.name);
            if iocflow_model::report::country_code(&c.country).as_deref() != Some(c.country.as_str()) {
                return bad(key("country"), "must be an upper-case ISO 3166-1 alpha-2 code such as SG");
            }
            if !countries.insert(c.country.as_str()) {
                return bad(key("country"), "another CERT has this country");
            }
            if !topics.insert(c.topic()) {
                return bad(key("topic"), "is already used by a feed or another CERT");
            }
            if let Some(filter) = &c.filter
                && let Err(e) = crate::policy::cert_view::CertFilter::compile(filter)
            {
                return bad(key("filter"), &format!("{filter:?} does not compile: {e}"));
            }
            if let Some(org) = &c.misp_org_uuid
                && !is_uuid(org)
            {
                return bad(key("misp_org_uuid"), &format!("{org:?} is not a UUID"));
            }
            self.check_group_prefix(i)?;
        }
        let mut groups = HashSet::new();
        for (i, g) in self.sharing_groups.iter().enumerate() {
            let key = |k: &str| format!("sharing_groups[{i}].{k}");
            if !is_uuid(&g.uuid) {
                return bad(key("uuid"), &format!("{:?} is not a UUID", g.uuid));
            }
            if !groups.insert(g.uuid.to_ascii_lowercase()) {
                return bad(key("uuid"), "another sharing group has this uuid");
            }
            if let Some(m) = g.members.iter().find(|m| !is_uuid(m)) {
                return bad(key("members"), &format!("{m:?} is not a UUID (MISP organisation uuids)"));
            }
        }
        Ok(())
    }

    /// A CERT's group prefix ends with a separator and covers no group id of another CERT, of
    /// iocflow or of the auditors (nor do theirs cover it): the ACL plan grants it by prefix.
    fn check_group_prefix(&self, i: usize) -> Result<()> {
        let c = &self.certs[i];
        let key = format!("certs[{i}] ({}).group_prefix", c.name);
        let prefix = c.group_prefix();
        if !prefix.ends_with(GROUP_SEPARATORS) {
            return Err(Error::Config(format!(
                "{key}: {prefix:?} must end with '-', '.' or '_', so that it covers no other CERT's group ids \
                 (e.g. \"{prefix}-\")"
            )));
        }
        let overlap = |other: &str| prefix.starts_with(other) || other.starts_with(&prefix);
        let clash = self
            .certs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| (o.group_prefix(), format!("CERT {}'s group prefix", o.name)))
            .chain(std::iter::once((self.audit_group_prefix(), "the auditors' group prefix".to_string())))
            .find(|(other, _)| overlap(other))
            .or_else(|| {
                let own = self.own_groups().into_iter().find(|g| g.starts_with(&prefix))?;
                Some((own, "iocflow's own group".to_string()))
            });
        match clash {
            Some((other, whose)) => Err(Error::Config(format!("{key}: {prefix:?} overlaps {whose} {other:?}"))),
            None => Ok(()),
        }
    }

    /// Replaces `${env:NAME}` and `${file:/path}` values in `[kafka.client]`.
    fn resolve_secrets(&mut self) -> Result<()> {
        self.kafka.client.resolve("kafka.client")
    }

    /// `<app>.indicators`: the internal topic between the two stages.
    pub(crate) fn indicators_topic(&self) -> String {
        format!("{}.indicators", self.app_id)
    }
    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.app_id)
    }
    /// `<app>.state`: the changelog of the dedupe state.
    pub(crate) fn state_topic(&self) -> String {
        format!("{}.state", self.app_id)
    }
    /// This replica's ordinal (see `kafka.instance`).
    pub fn instance(&self) -> u32 {
        self.kafka.instance.unwrap_or_else(|| {
            let from_env = |name: &str| std::env::var(name).ok();
            from_env("IOCFLOW_INSTANCE")
                .and_then(|v| v.trim().parse().ok())
                .or_else(|| from_env("HOSTNAME").and_then(|h| h.rsplit('-').next()?.parse().ok()))
                .unwrap_or(0)
        })
    }
    /// `<app>-<stage>-<ordinal>`: the transactional id of a stage of this replica.
    pub(crate) fn transactional_id(&self, stage: &str) -> String {
        format!("{}-{stage}-{}", self.app_id, self.instance())
    }
    pub fn withheld_topic(&self) -> String {
        format!("{}.withheld", self.app_id)
    }
    /// `<app>-<stage>`: the consumer group of a stage (`ingest`, `columnar`).
    pub fn group(&self, stage: &str) -> String {
        format!("{}-{stage}", self.app_id)
    }
    /// `<app>-restore`: the group id of the reader that restores a partition's state (it assigns
    /// partitions itself and commits nothing).
    pub(crate) fn restore_group(&self) -> String {
        self.group("restore")
    }
    /// `<app>-<stage>-`: what every transactional id of a stage starts with, whatever the ordinal.
    pub(crate) fn transactional_id_prefix(&self, stage: &str) -> String {
        format!("{}-{stage}-", self.app_id)
    }
    /// `<app>-audit-`: the prefix of the consumer group ids the auditors may use.
    pub(crate) fn audit_group_prefix(&self) -> String {
        format!("{}-audit-", self.app_id)
    }
    /// The consumer groups iocflow itself uses: each stage's and the restore reader's.
    pub(crate) fn own_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = STAGES.iter().map(|s| self.group(s)).collect();
        groups.push(self.restore_group());
        groups
    }
}

/// A small deployment for unit tests: two feeds (one with its own principal), two CERTs, an
/// auditor, iocflow under another principal.
#[cfg(test)]
pub(crate) const SAMPLE: &str = r#"
    app_id = "t1"
    [kafka]
    bootstrap_servers = "x:1"
    partitions = 4
    [[feeds]]
    name = "industry"
    topic = "feeds.industry"
    format = "json"
    provider = "V"
    tlp = "green"
    principal = "User:vendor"
    [[feeds]]
    name = "member"
    topic = "feeds.member"
    format = "json"
    provider = "M"
    tlp = "amber"
    [[certs]]
    country = "MY"
    name = "MyCERT"
    [[certs]]
    country = "SG"
    name = "SingCERT"
    [access]
    principal = "User:pipeline"
    auditors = ["User:soc-audit"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [kafka]
        bootstrap_servers = "127.0.0.1:9092"
        [[feeds]]
        name = "industry"
        topic = "feeds.industry"
        format = "json"
        provider = "Vendor"
        tlp = "green"
        [[certs]]
        country = "SG"
        name = "SingCERT"
    "#;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.app_id, "iocflow");
        assert_eq!(c.kafka.delivery, Delivery::AtLeastOnce);
        assert_eq!(c.certs[0].topic(), "cert.sg.indicators");
        assert_eq!(c.certs[0].principal(), "User:cert-sg");
        assert_eq!(c.indicators_topic(), "iocflow.indicators");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(&MINIMAL.replace("name = \"SingCERT\"", "name = \"SingCERT\"\ncontry = \"SG\""));
        assert!(e.contains("contry"), "{e}");
        let e = err(&format!("{MINIMAL}\n[dedupe]\nttl = 3\n"));
        assert!(e.contains("ttl"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = err(&MINIMAL.replace("tlp = \"green\"", "tlp = \"purple\""));
        assert!(e.contains("feeds[0] (industry).tlp"), "{e}");
        let e = err(&MINIMAL.replace("country = \"SG\"", "country = \"sg\""));
        assert!(e.contains("certs[0] (SingCERT).country"), "{e}");
        let e = err(&MINIMAL.replace("format = \"json\"", "format = \"yaml\""));
        assert!(e.contains("yaml"), "{e}");
        let e = err(&MINIMAL.replace("format = \"json\"", "format = \"csv\""));
        assert!(e.contains("feeds[0] (industry).csv"), "{e}");
        let e = err(&MINIMAL.replace("[[certs]]", "[feeds.csv]\nvalue = 0\n[[certs]]"));
        assert!(e.contains("feeds[0] (industry).csv: is for format = \"csv\""), "{e}");
        let e = err(&MINIMAL
            .replace("format = \"json\"", "format = \"csv\"")
            .replace("[[certs]]", "[feeds.csv]\nvalue = 0\ncolumn = 1\n[[certs]]"));
        assert!(e.contains("column"), "{e}");
        let e = err(&MINIMAL.replace("[[feeds]]", "[kafka.client]\n\"enable.auto.commit\" = \"true\"\n[[feeds]]"));
        assert!(e.contains("kafka.client.\"enable.auto.commit\""), "{e}");
    }

    #[test]
    fn filters_and_sharing_groups_are_checked_naming_the_cert() {
        let with = |extra: &str| format!("{MINIMAL}\n{extra}");
        let cert = |line: &str| MINIMAL.replace("country = \"SG\"", &format!("country = \"SG\"\n{line}"));
        let e = err(&cert("filter = \"confidence >= \""));
        assert!(e.contains("certs[0] (SingCERT).filter"), "{e}");
        let e = err(&cert("filter = \"confidnce >= 60\""));
        assert!(e.contains("certs[0] (SingCERT).filter") && e.contains("confidnce"), "{e}");
        let e = err(&cert("filter = \"sectors\""));
        assert!(e.contains("not a boolean"), "{e}");
        let ok = Config::parse(&cert("filter = \"confidence >= 60 AND array_has(sectors, 'finance')\"")).unwrap();
        assert!(ok.certs[0].filter.is_some());
        let e = err(&cert("misp_org_uuid = \"SingCERT\""));
        assert!(e.contains("certs[0] (SingCERT).misp_org_uuid"), "{e}");
        // Routing holds a set of CERTs in one 64-bit word.
        let certs = |n: usize| {
            let codes =
                (0..n).map(|i| format!("{}{}", (b'A' + (i / 26) as u8) as char, (b'A' + (i % 26) as u8) as char));
            let certs: String =
                codes.map(|cc| format!("[[certs]]\ncountry = \"{cc}\"\nname = \"CERT {cc}\"\n")).collect();
            MINIMAL.replace("[[certs]]\n        country = \"SG\"\n        name = \"SingCERT\"", &certs)
        };
        assert!(Config::parse(&certs(64)).is_ok());
        let e = err(&certs(65));
        assert!(e.contains("certs") && e.contains("at most 64"), "{e}");
        let e = err(&with("[[sharing_groups]]\nuuid = \"x\""));
        assert!(e.contains("sharing_groups[0].uuid"), "{e}");
        let org = "b0e2c1d4-0000-4000-8000-000000000001";
        let group =
            format!("[[sharing_groups]]\nuuid = \"5A1E0000-0000-4000-8000-0000000000AA\"\nmembers = [\"{org}\"]");
        let c = Config::parse(
            &with(&group).replace("country = \"SG\"", &format!("country = \"SG\"\nmisp_org_uuid = \"{org}\"")),
        )
        .unwrap();
        assert_eq!(
            c.sharing_groups_of(Some(org)).into_iter().collect::<Vec<_>>(),
            ["5a1e0000-0000-4000-8000-0000000000aa"]
        );
        assert!(c.sharing_groups_of(None).is_empty());
        let e = err(&with(&format!("{group}\n{group}")));
        assert!(e.contains("sharing_groups[1].uuid"), "{e}");
    }

    #[test]
    fn group_prefixes_end_with_a_separator_and_overlap_nothing() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.certs[0].group_prefix(), "cert-sg-");
        assert_eq!(c.own_groups(), ["iocflow-ingest", "iocflow-columnar", "iocflow-restore"]);
        let cert = |line: &str| MINIMAL.replace("country = \"SG\"", &format!("country = \"SG\"\n{line}"));
        let e = err(&cert("group_prefix = \"cert-sg\""));
        assert!(e.contains("certs[0] (SingCERT).group_prefix") && e.contains("\"cert-sg-\""), "{e}");
        assert!(Config::parse(&cert("group_prefix = \"singcert.\"")).is_ok());
        // A prefix that covers iocflow's groups or the auditors', or another CERT's.
        let e = err(&cert("group_prefix = \"iocflow-\""));
        assert!(e.contains("group_prefix") && e.contains("iocflow"), "{e}");
        let e = err(&cert("group_prefix = \"iocflow-audit-x-\""));
        assert!(e.contains("auditors"), "{e}");
        let two = format!("{MINIMAL}\n[[certs]]\ncountry = \"MY\"\nname = \"MyCERT\"\ngroup_prefix = \"cert-\"\n");
        let e = err(&two);
        assert!(e.contains("certs[0] (SingCERT).group_prefix") && e.contains("MyCERT"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_files() {
        let dir = std::env::temp_dir().join(format!("iocflow-secret-{}", std::process::id()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        let text = MINIMAL.replace(
            "[[feeds]]",
            &format!("[kafka.client]\n\"sasl.password\" = \"${{file:{}}}\"\n[[feeds]]", dir.display()),
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.kafka.client.get("sasl.password"), Some("s3cret"));
        // Neither a resolved secret nor a literal sensitive value is in the Debug form.
        let literal = MINIMAL.replace("[[feeds]]", "[kafka.client]\n\"ssl.key.password\" = \"lit3ral\"\n[[feeds]]");
        let shown = format!("{c:?} {:?}", Config::parse(&literal).unwrap());
        assert!(!shown.contains("s3cret") && !shown.contains("lit3ral"), "{shown}");
        assert!(shown.contains("\"sasl.password\": \"***\""), "{shown}");
        let text = MINIMAL.replace(
            "[[feeds]]",
            "[kafka.client]\n\"sasl.password\" = \"${env:IOCFLOW_TEST_UNSET_SECRET}\"\n[[feeds]]",
        );
        assert!(err(&text).contains("IOCFLOW_TEST_UNSET_SECRET"));
        std::fs::remove_file(dir).ok();
    }
}
