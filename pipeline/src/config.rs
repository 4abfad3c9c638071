//! The iocflow configuration: one TOML file, read and checked once at start.
//!
//! Every table is a struct with `deny_unknown_fields`, so a misspelt key is an error that names
//! it instead of a silently ignored setting. Values are typed (labels, countries, UUIDs,
//! durations) and read by `field`'s readers, which refuse a bad one as it is read; an error names
//! the key's path and, in `[[feeds]]` and `[[certs]]`, the feed's or CERT's name
//! (`certs[7] (SingCERT).country: …`). [`Config::check`] then applies the rules across keys
//! (unique names and topics, group prefixes that overlap nothing, filters that compile).
//! Nothing downstream re-validates: a loaded `Config` is a valid one.

mod field;

use crate::error::{Error, Result};
use crate::kafka::client_properties::ClientProperties;
use iocflow_enrichers::tables::TableFiles;
use iocflow_model::decode::delimited::CsvOptions;
use iocflow_model::decode::json_mapping::JsonMapping;
use iocflow_model::decode::lines::LinesOptions;
use iocflow_model::decode::misp::MispOptions;
use iocflow_model::decode::text::TextOptions;
use iocflow_model::decode::{Decoder, FeedDefaults, Format, Limits};
use iocflow_model::sighting::SightingKind;
use iocflow_model::{Country, IndicatorType, Tlp};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Names the internal topics, consumer groups and transactional ids of this deployment.
    #[serde(default = "default_app_id", deserialize_with = "field::app_id")]
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
    /// What the CERTs' sightings do (`cert.<cc>.sightings`).
    #[serde(default)]
    pub feedback: FeedbackConfig,
    /// How views lose their freshness and expire (absent: they do not).
    #[serde(default)]
    pub decay: Option<DecayConfig>,
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
    #[serde(deserialize_with = "field::not_empty")]
    pub bootstrap_servers: String,
    #[serde(default = "default_delivery")]
    pub delivery: Delivery,
    /// Partitions of `<app>.indicators` (and later `<app>.state`): the unit of parallelism.
    #[serde(default = "default_partitions", deserialize_with = "field::at_least_one_u32")]
    pub partitions: u32,
    /// Partitions of the feed and CERT topics that `iocflow topics --create` makes.
    #[serde(default = "default_topic_partitions", deserialize_with = "field::at_least_one_u32")]
    pub topic_partitions: u32,
    #[serde(default = "default_replication")]
    pub replication_factor: i16,
    /// Consumer session timeout: how fast a dead replica's partitions move to a live one
    /// (`session_timeout_ms`).
    #[serde(rename = "session_timeout_ms", default = "default_session_timeout", deserialize_with = "field::millis")]
    pub session_timeout: Duration,
    /// The replica's ordinal, for `transactional.id = <app_id>-<stage>-<ordinal>`: stable across
    /// restarts so a restarted replica fences its dead predecessor at once. When absent: the
    /// environment variable `IOCFLOW_INSTANCE`, else the number ending `HOSTNAME` (a
    /// StatefulSet pod `iocflow-2` is 2), else 0.
    pub instance: Option<u32>,
    /// Transactions not committed within this are aborted by the broker, exactly-once
    /// (`transaction_timeout_ms`, at least 1000).
    #[serde(
        rename = "transaction_timeout_ms",
        default = "default_transaction_timeout",
        deserialize_with = "field::millis_at_least_a_second"
    )]
    pub transaction_timeout: Duration,
    /// librdkafka properties for every client (security, SASL, TLS …), except those iocflow's
    /// guarantees rest on. Values may be `${env:NAME}` or `${file:/path}` to keep secrets out of
    /// the file; secrets never print.
    #[serde(default, deserialize_with = "field::client_properties")]
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
fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_transaction_timeout() -> Duration {
    Duration::from_secs(60)
}

/// How micro-batches close: on rows, bytes or linger, whichever comes first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_max_rows", deserialize_with = "field::at_least_one_usize")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes", deserialize_with = "field::at_least_one_usize")]
    pub max_bytes: usize,
    /// How long a stage waits for a fuller batch (`linger_ms`).
    #[serde(rename = "linger_ms", default = "default_linger", deserialize_with = "field::millis")]
    pub linger: Duration,
}

fn default_max_rows() -> usize {
    4096
}
fn default_max_bytes() -> usize {
    4 << 20
}
fn default_linger() -> Duration {
    Duration::from_millis(100)
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_rows: default_max_rows(), max_bytes: default_max_bytes(), linger: default_linger() }
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

/// Room for what Kafka adds around a record's value: the record batch's header, the key, the
/// headers of a dead letter (its reason and origin), a compression frame.
pub const MESSAGE_OVERHEAD: usize = 64 << 10;

impl LimitsConfig {
    /// The largest value iocflow reads or writes in one Kafka message: a feed record of
    /// `max_record_bytes`, a dead letter of `dead_letter_max_bytes`, and an indicator batch
    /// message, which ingest splits to fit (at least 1 MiB, Kafka's own default).
    pub fn max_value_bytes(&self) -> usize {
        self.max_record_bytes.max(self.dead_letter_max_bytes).max(1 << 20)
    }

    /// `max.message.bytes` of every topic iocflow creates, and `message.max.bytes` of its
    /// clients: the largest value with room for Kafka's framing.
    pub fn max_message_bytes(&self) -> usize {
        self.max_value_bytes() + MESSAGE_OVERHEAD
    }

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
    #[serde(deserialize_with = "field::label")]
    pub tlp: Tlp,
    /// The confidence of reports that carry none (0–100).
    #[serde(default, deserialize_with = "field::confidence")]
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
        FeedDefaults { tlp: self.tlp, confidence: self.confidence }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// A CERT gets an unchanged view again once its last emission is older than this
    /// (`ttl_hours`).
    #[serde(rename = "ttl_hours", default = "default_ttl", deserialize_with = "field::hours")]
    pub ttl: Duration,
    /// Indicators kept per replica; beyond it the least recently seen are forgotten.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Estimated memory the state may hold per replica.
    #[serde(default = "default_max_bytes_state")]
    pub max_bytes: usize,
    /// How changelog entries are written (`binary`, the default, or `json`); both are read.
    #[serde(default)]
    pub changelog_format: ChangelogFormat,
}

/// The format of the changelog entries iocflow writes (`state/changelog.rs`). Both are read
/// whatever this says, so a deployment can change it at any time; `json` is what versions before
/// the binary entries read, for a rollback to them (README, "Upgrade").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangelogFormat {
    #[default]
    Binary,
    Json,
}

fn default_max_bytes_state() -> usize {
    2 << 30
}

fn default_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_max_entries() -> usize {
    2_000_000
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            ttl: default_ttl(),
            max_entries: default_max_entries(),
            max_bytes: default_max_bytes_state(),
            changelog_format: ChangelogFormat::default(),
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
    /// ISO 3166-1 alpha-2 code of the CERT's country (upper case).
    #[serde(deserialize_with = "field::country")]
    pub country: Country,
    pub name: String,
    /// Defaults to `cert.<cc>.indicators`.
    pub topic: Option<String>,
    /// Defaults to `User:cert-<cc>`.
    pub principal: Option<String>,
    /// The prefix of the consumer group ids the CERT may use; defaults to `cert-<cc>-`. It ends
    /// with a separator, so it covers no other CERT's groups (`cert-sg` would cover `cert-sgx…`).
    pub group_prefix: Option<String>,
    /// The CERT's organisation in MISP: it sees a sharing group's reports when it is a member.
    #[serde(default, deserialize_with = "field::optional_uuid")]
    pub misp_org_uuid: Option<uuid::Uuid>,
    /// An SQL expression over the CERT's view (`policy/cert_view.rs`), e.g.
    /// `confidence >= 60 AND array_has(sectors, 'finance')`: only views it accepts are sent.
    pub filter: Option<String>,
    #[serde(default = "default_output_format")]
    pub format: OutputFormat,
    /// Receives every CLEAR or GREEN indicator, whatever its country.
    #[serde(default)]
    pub regional: bool,
    /// The topic the CERT writes its sightings and false positives to; defaults to
    /// `cert.<cc>.sightings`.
    pub sightings_topic: Option<String>,
}

/// `[feedback]`: what the CERTs' sightings decide beyond the views they count in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// When this many distinct CERTs have reported an indicator a false positive under GREEN or
    /// CLEAR, it is revoked for every CERT that received it (absent: never).
    #[serde(default, deserialize_with = "field::optional_at_least_one_u32")]
    pub false_positive_revoke_after: Option<u32>,
}

/// `[decay]`: the threshold under which a CERT's view expires, and per indicator type its
/// lifetime and speed (`[decay.types.<type>]`; `policy/decay.rs` has the model).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayConfig {
    /// The score (0–100) at which a view expires.
    #[serde(default = "default_decay_threshold", deserialize_with = "field::score")]
    pub threshold: f64,
    /// Per type, what differs from the defaults ([`DecayConfig::DEFAULTS`]).
    #[serde(default)]
    pub types: BTreeMap<String, DecayCurveConfig>,
}

/// `[decay.types.<type>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayCurveConfig {
    /// τ, in days; 0: the type does not decay.
    #[serde(default, deserialize_with = "field::optional_days")]
    pub lifetime_days: Option<f64>,
    /// δ, above 0.
    #[serde(default, deserialize_with = "field::optional_speed")]
    pub speed: Option<f64>,
}

fn default_decay_threshold() -> f64 {
    DecayConfig::DEFAULT_THRESHOLD
}

impl DecayConfig {
    pub const DEFAULT_THRESHOLD: f64 = 20.0;
    pub const DEFAULT_SPEED: f64 = 0.3;
    /// Lifetimes in days by type; the types not listed (hashes, ASNs) do not decay.
    pub const DEFAULTS: [(IndicatorType, f64); 6] = [
        (IndicatorType::Ipv4, 30.0),
        (IndicatorType::Ipv6, 30.0),
        (IndicatorType::Cidr, 30.0),
        (IndicatorType::Url, 60.0),
        (IndicatorType::Domain, 90.0),
        (IndicatorType::Email, 90.0),
    ];

    /// The lifetime (days, 0 for none) and speed of `kind`.
    pub fn curve(&self, kind: IndicatorType) -> (f64, f64) {
        let default = Self::DEFAULTS.iter().find(|(k, _)| *k == kind).map_or(0.0, |(_, days)| *days);
        let given = self.types.get(kind.as_str()).cloned().unwrap_or_default();
        (given.lifetime_days.unwrap_or(default), given.speed.unwrap_or(Self::DEFAULT_SPEED))
    }
}

fn default_output_format() -> OutputFormat {
    OutputFormat::Json
}

impl CertConfig {
    pub fn topic(&self) -> String {
        self.topic.clone().unwrap_or_else(|| format!("cert.{}.indicators", self.country.lower()))
    }
    pub fn principal(&self) -> String {
        self.principal.clone().unwrap_or_else(|| format!("User:cert-{}", self.country.lower()))
    }
    pub fn group_prefix(&self) -> String {
        self.group_prefix.clone().unwrap_or_else(|| format!("cert-{}-", self.country.lower()))
    }
    pub fn sightings_topic(&self) -> String {
        self.sightings_topic.clone().unwrap_or_else(|| format!("cert.{}.sightings", self.country.lower()))
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

/// Enrichment: the data files (`enrichers`; every one optional, paths relative to the config
/// file), what to do with benign indicators, how often to look for changed files.
#[derive(Debug, Clone)]
pub struct EnrichConfig {
    /// `country_mmdb`, `asn_csv`, `asn_mmdb`, `constituency`, `warninglists` (files or folders
    /// of `*.json` files): the tables' own keys ([`TableFiles`]).
    pub files: TableFiles,
    pub benign: BenignAction,
    /// How often the files are checked for changes, SIGHUP reloads at once (`reload_seconds`).
    pub reload: Duration,
}

/// `[enrich]`: its own two keys, and the tables' keys, which [`TableFiles`] reads and whose
/// unknown ones it refuses (serde's `flatten` would let a misspelt table key pass unnoticed).
impl<'de> Deserialize<'de> for EnrichConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut keys = toml::Table::deserialize(d)?;
        let benign = keys.remove("benign").map(|v| v.try_into()).transpose().map_err(D::Error::custom)?;
        let reload = keys.remove("reload_seconds").map(|v| v.try_into()).transpose().map_err(D::Error::custom)?;
        Ok(EnrichConfig {
            files: TableFiles::deserialize(toml::Value::Table(keys)).map_err(D::Error::custom)?,
            benign: benign.unwrap_or_default(),
            reload: reload.map_or_else(default_reload, Duration::from_secs),
        })
    }
}

fn default_reload() -> Duration {
    Duration::from_secs(30)
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig { files: TableFiles::default(), benign: BenignAction::Tag, reload: default_reload() }
    }
}

/// A MISP sharing group: the organisations (MISP uuids) whose CERTs may see its reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingGroupConfig {
    #[serde(deserialize_with = "field::uuid")]
    pub uuid: uuid::Uuid,
    pub name: Option<String>,
    /// MISP organisation uuids.
    #[serde(default, deserialize_with = "field::uuids")]
    pub members: Vec<uuid::Uuid>,
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

impl Config {
    /// The sharing groups (as lower-case uuids, as MISP writes them) whose member list names `org`.
    pub(crate) fn sharing_groups_of(&self, org: Option<uuid::Uuid>) -> HashSet<String> {
        let Some(org) = org else { return HashSet::new() };
        self.sharing_groups.iter().filter(|g| g.members.contains(&org)).map(|g| g.uuid.to_string()).collect()
    }

    /// Reads, parses and checks a configuration file: TOML, or JSON when it ends in `.json` (the
    /// Helm chart renders its values so).
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let parsed = match path.extension() {
            Some(x) if x == "json" => Config::parse_json(&text),
            _ => Config::parse(&text),
        };
        let mut config = parsed.map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// The enrichment data files, relative paths resolved against the config file's folder and
    /// warninglist folders expanded to their `*.json` files (sorted).
    pub(crate) fn table_files(&self) -> Result<TableFiles> {
        self.enrich.files.map_paths(|table, p| {
            let path = if p.is_absolute() { p.clone() } else { self.base_dir.join(p) };
            if table != "warninglists" || !path.is_dir() {
                return Ok(vec![path]);
            }
            let entries = std::fs::read_dir(&path)
                .map_err(|e| Error::Config(format!("enrich.warninglists: {}: {e}", path.display())))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            Ok(files)
        })
    }

    /// Parses and checks a configuration text (TOML).
    pub fn parse(text: &str) -> Result<Config> {
        let document = toml::de::Deserializer::parse(text).map_err(|e| Error::Config(e.to_string()))?;
        let config = serde_path_to_error::deserialize(document).map_err(|e| {
            let inner = e.inner();
            let line = inner.span().map(|s| text[..s.start].matches('\n').count() + 1);
            Error::Config(explain(
                e.path(),
                inner.message(),
                line,
                text.parse::<toml::Table>().ok().map(toml::Value::Table),
            ))
        })?;
        Config::checked(config)
    }

    /// Parses and checks a configuration text (JSON).
    pub fn parse_json(text: &str) -> Result<Config> {
        let mut document = serde_json::Deserializer::from_str(text);
        let config = serde_path_to_error::deserialize(&mut document).map_err(|e| {
            let inner = e.inner();
            // serde_json's message ends "at line L column C": said once, as TOML's is.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            let names = serde_json::from_str::<serde_json::Value>(text).ok();
            Error::Config(explain(e.path(), message, Some(inner.line()), names))
        })?;
        Config::checked(config)
    }

    /// The rules across keys, and the secrets resolved.
    fn checked(mut config: Config) -> Result<Config> {
        config.check()?;
        config.resolve_secrets()?;
        Ok(config)
    }

    /// The rules across keys (each key's own value was checked as it was read).
    fn check(&self) -> Result<()> {
        let bad = |key: String, why: &str| Err(Error::Config(format!("{key}: {why}")));
        if self.feeds.is_empty() {
            return bad("feeds".into(), "declare at least one [[feeds]]");
        }
        // The state names what a CERT was sent as a 64-bit set of an indicator's contributions:
        // one per feed, and one per CERT and kind of sighting.
        let max = crate::state::Sources::MAX;
        if self.feeds.len() > max {
            return bad("feeds".into(), &format!("at most {max} feeds, not {}", self.feeds.len()));
        }
        let contributions = self.feeds.len() + SightingKind::ALL.len() * self.certs.len();
        if contributions > max {
            return bad(
                "certs".into(),
                &format!(
                    "{} feeds and {} CERTs make {contributions} contributions to an indicator (one per feed, {} per \
                     CERT for its sightings, false positives and expirations): at most {max}",
                    self.feeds.len(),
                    self.certs.len(),
                    SightingKind::ALL.len()
                ),
            );
        }
        let mut names = HashSet::new();
        let mut topics: HashSet<String> = HashSet::new();
        for (i, f) in self.feeds.iter().enumerate() {
            let key = |k: &str| format!("feeds[{i}] ({}).{k}", f.name);
            if f.name.is_empty() || !names.insert(f.name.as_str()) {
                return bad(key("name"), "must be non-empty and unique");
            }
            if iocflow_model::sighting::is_reserved(&f.name) {
                return bad(
                    key("name"),
                    "begins like the CERTs' sightings (`sighting:`, `false_positive:`, `expiration:`)",
                );
            }
            if !topics.insert(f.topic.clone()) {
                return bad(key("topic"), "another feed reads this topic: a topic identifies one provider");
            }
            if f.topic.starts_with(&format!("{}.", self.app_id)) {
                return bad(key("topic"), "is an internal topic of this app_id");
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
        if let Some(decay) = &self.decay
            && let Some(kind) = decay.types.keys().find(|k| IndicatorType::ALL.iter().all(|t| t.as_str() != *k))
        {
            let known: Vec<&str> = IndicatorType::ALL.iter().map(|k| k.as_str()).collect();
            return bad(format!("decay.types.{kind}"), &format!("not an indicator type ({})", known.join(", ")));
        }
        if self.certs.len() > crate::policy::route::MAX_CERTS {
            return bad("certs".into(), &format!("declare at most {} [[certs]]", crate::policy::route::MAX_CERTS));
        }
        let mut countries = HashSet::new();
        for (i, c) in self.certs.iter().enumerate() {
            let key = |k: &str| format!("certs[{i}] ({}).{k}", c.name);
            if !countries.insert(c.country) {
                return bad(key("country"), "another CERT has this country");
            }
            if !topics.insert(c.topic()) {
                return bad(key("topic"), "is already used by a feed or another CERT");
            }
            if !topics.insert(c.sightings_topic()) {
                return bad(key("sightings_topic"), "is already used by a feed or another CERT");
            }
            if let Some(filter) = &c.filter
                && let Err(e) = crate::policy::cert_view::CertFilter::compile(filter)
            {
                return bad(key("filter"), &format!("{filter:?} does not compile: {e}"));
            }
            self.check_group_prefix(i)?;
        }
        let mut groups = HashSet::new();
        for (i, g) in self.sharing_groups.iter().enumerate() {
            if !groups.insert(g.uuid) {
                return bad(format!("sharing_groups[{i}].uuid"), "another sharing group has this uuid");
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

/// A value error as the operator reads it: the key's path, with the feed's or CERT's name for an
/// entry of `[[feeds]]` or `[[certs]]` (`certs[7] (SingCERT).country`), what is wrong, and the
/// line.
fn explain<V: NamedEntries>(
    path: &serde_path_to_error::Path,
    message: &str,
    line: Option<usize>,
    document: Option<V>,
) -> String {
    let mut path = path.to_string();
    if let Some((list, rest)) = path.split_once('[')
        && let Some((index, after)) = rest.split_once(']')
        && let Ok(i) = index.parse::<usize>()
        && let Some(name) = document.and_then(|d| d.entry_name(list, i))
    {
        path = format!("{list}[{i}] ({name}){after}");
    }
    let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
    if path == "." { format!("{message}{at}") } else { format!("{path}: {message}{at}") }
}

/// A parsed document, asked for the `name` of entry `i` of list `list` (`certs`, `feeds`).
trait NamedEntries {
    fn entry_name(&self, list: &str, i: usize) -> Option<String>;
}

impl NamedEntries for toml::Value {
    fn entry_name(&self, list: &str, i: usize) -> Option<String> {
        Some(self.get(list)?.get(i)?.get("name")?.as_str()?.to_string())
    }
}

impl NamedEntries for serde_json::Value {
    fn entry_name(&self, list: &str, i: usize) -> Option<String> {
        Some(self.get(list)?.get(i)?.get("name")?.as_str()?.to_string())
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
    fn decay_reads_its_types_and_refuses_bad_values_naming_the_key() {
        let c = Config::parse(&format!(
            "{MINIMAL}\n[decay]\nthreshold = 30\n[decay.types.md5]\nlifetime_days = 365\n[decay.types.ipv4]\nspeed = 2\n\
             [decay.types.url]\nlifetime_days = 0\n"
        ))
        .unwrap();
        let decay = c.decay.unwrap();
        assert_eq!(decay.threshold, 30.0);
        assert_eq!(decay.curve(IndicatorType::Md5), (365.0, DecayConfig::DEFAULT_SPEED));
        assert_eq!(decay.curve(IndicatorType::Ipv4), (30.0, 2.0));
        assert_eq!(decay.curve(IndicatorType::Url), (0.0, DecayConfig::DEFAULT_SPEED), "0: no decay");
        assert_eq!(decay.curve(IndicatorType::Domain), (90.0, DecayConfig::DEFAULT_SPEED));
        assert_eq!(decay.curve(IndicatorType::Sha256).0, 0.0, "hashes do not decay by default");
        assert!(Config::parse(MINIMAL).unwrap().decay.is_none());
        for (bad, key) in [
            ("[decay]\nthreshold = 100", "decay.threshold"),
            ("[decay]\nthreshold = -1", "decay.threshold"),
            ("[decay.types.ipv4]\nspeed = 0", "decay.types.ipv4.speed"),
            ("[decay.types.ipv4]\nlifetime_days = -3", "decay.types.ipv4.lifetime_days"),
            ("[decay.types.ipv4]\nhalf_life = 3", "decay.types.ipv4"),
            ("[decay.types.hostname]\nlifetime_days = 3", "decay.types.hostname"),
        ] {
            let e = err(&format!("{MINIMAL}\n{bad}\n"));
            assert!(e.contains(key), "{bad}: {e}");
        }
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
        let e = err(&format!("{MINIMAL}\n[enrich]\nconstituncy = \"r.toml\"\n"));
        assert!(e.contains("enrich") && e.contains("constituncy"), "{e}");
        let c = Config::parse(&format!("{MINIMAL}\n[enrich]\nasn_csv = [\"a.csv\"]\nbenign = \"drop\"\n")).unwrap();
        assert_eq!((c.enrich.files.asn.len(), c.enrich.benign), (1, BenignAction::Drop));
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
        let many: String = (0..64)
            .map(|i| {
                format!("[[feeds]]\nname = \"f{i}\"\ntopic = \"feeds.f{i}\"\nformat = \"json\"\nprovider = \"V\"\ntlp = \"green\"\n")
            })
            .collect();
        let e = err(&MINIMAL.replace("[[certs]]", &format!("{many}[[certs]]")));
        assert!(e.contains("feeds: at most 64 feeds, not 65"), "{e}");
        let e = err(&MINIMAL.replace("[[feeds]]", "[kafka.client]\n\"enable.auto.commit\" = \"true\"\n[[feeds]]"));
        assert!(e.contains("kafka.client: \"enable.auto.commit\" is set by iocflow"), "{e}");
        let e = err(&MINIMAL.replace("[[feeds]]", "[kafka.client]\n\"message.max.bytes\" = \"2000000\"\n[[feeds]]"));
        assert!(
            e.contains("kafka.client: \"message.max.bytes\" is set by iocflow from limits.max_record_bytes"),
            "{e}"
        );
    }

    /// Each value's own error names its key's path (two used to name a neighbour's), and the line.
    #[test]
    fn typed_values_name_their_own_key() {
        let kafka = |line: &str| MINIMAL.replace("[[feeds]]", &format!("{line}\n[[feeds]]"));
        let e = err(&MINIMAL
            .replace("bootstrap_servers = \"127.0.0.1:9092\"", "bootstrap_servers = \"x:1\"\ntopic_partitions = 0"));
        assert!(e.contains("kafka.topic_partitions: must be at least 1"), "{e}");
        let e = err(&kafka("[batch]\nmax_bytes = 0"));
        assert!(e.contains("batch.max_bytes: must be at least 1"), "{e}");
        let e = err(&MINIMAL.replace("country = \"SG\"", "country = \"sg\""));
        assert!(
            e.contains("certs[0] (SingCERT).country: \"sg\": must be an upper-case") && e.contains("(line 11)"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("name = \"SingCERT\"", "name = \"SingCERT\"\nmisp_org_uuid = \"not-one\""));
        assert!(e.contains("certs[0] (SingCERT).misp_org_uuid: \"not-one\" is not a UUID"), "{e}");
        let e = err(&MINIMAL.replace("tlp = \"green\"", "tlp = \"green\"\nconfidence = 101"));
        assert!(e.contains("feeds[0] (industry).confidence: 101: must be within 0–100"), "{e}");
        let e = err(&MINIMAL.replace(
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "bootstrap_servers = \"x:1\"\ntransaction_timeout_ms = 999",
        ));
        assert!(e.contains("kafka.transaction_timeout_ms: must be at least 1000"), "{e}");
        // Durations are read in the unit their key names.
        let c = Config::parse(&kafka("[batch]\nlinger_ms = 50\n[dedupe]\nttl_hours = 2\n[enrich]\nreload_seconds = 5"))
            .unwrap();
        assert_eq!(c.batch.linger, std::time::Duration::from_millis(50));
        assert_eq!(c.dedupe.ttl, std::time::Duration::from_secs(7200));
        assert_eq!(c.enrich.reload, std::time::Duration::from_secs(5));
    }

    /// The same configuration as JSON (what the Helm chart renders) reads the same, and its
    /// errors name the key as TOML's do.
    #[test]
    fn json_reads_as_toml_does() {
        let json = r#"{"kafka": {"bootstrap_servers": "127.0.0.1:9092", "partitions": 4},
            "feeds": [{"name": "industry", "topic": "feeds.industry", "format": "json", "provider": "Vendor",
                       "tlp": "green", "confidence": 60}],
            "certs": [{"country": "SG", "name": "SingCERT"}],
            "enrich": {"benign": "drop", "reload_seconds": 5}}"#;
        let c = Config::parse_json(json).unwrap();
        let t = Config::parse(&MINIMAL.replace("[[feeds]]", "[[feeds]]\nconfidence = 60")).unwrap();
        assert_eq!(
            (c.app_id, c.feeds[0].tlp, c.feeds[0].confidence),
            (t.app_id, t.feeds[0].tlp, t.feeds[0].confidence)
        );
        assert_eq!((c.kafka.partitions, c.certs[0].topic()), (4, t.certs[0].topic()));
        assert_eq!((c.enrich.benign, c.enrich.reload), (BenignAction::Drop, std::time::Duration::from_secs(5)));
        let e = Config::parse_json(&json.replace(r#""country": "SG""#, r#""country": "sg""#)).unwrap_err().to_string();
        assert!(
            e.contains("certs[0] (SingCERT).country: \"sg\": must be an upper-case") && e.contains("(line 4)"),
            "{e}"
        );
        let e = Config::parse_json(&json.replace(r#""name": "SingCERT""#, r#""name": "SingCERT", "region": 1"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("certs[0] (SingCERT)") && e.contains("region"), "{e}");
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
        // One feed and 21 CERTs make 64 contributions: a feed's, and 3 kinds of sightings a CERT.
        assert!(Config::parse(&certs(21)).is_ok());
        let e = err(&certs(22));
        assert!(e.contains("certs: 1 feeds and 22 CERTs make 67 contributions") && e.contains("at most 64"), "{e}");
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
            c.sharing_groups_of(uuid::Uuid::try_parse(org).ok()).into_iter().collect::<Vec<_>>(),
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
