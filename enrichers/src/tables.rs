//! The enrichment tables of a deployment, loaded together, and the per-indicator lookups the
//! UDFs run over them.
//!
//! Every table is optional: without an ASN file the `asn` column is empty, without a registry
//! no organisation is known, without warninglists nothing is benign. Loading reads and checks
//! every file before anything is used, so a broken file is an error at start (and, on reload,
//! leaves the tables in use untouched).

use crate::address::Target;
use crate::asn::AsnTable;
use crate::cctld::sector_hint;
use crate::constituency::{Organisation, Registry};
use crate::mmdb::Mmdb;
use crate::warninglist::Warninglists;
use crate::{Error, Result};
use iocflow_model::{Country, IndicatorType};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// How one table loaded: for the `iocflow_enrichment_table_*` metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLoad {
    pub table: &'static str,
    pub entries: usize,
    pub seconds: f64,
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Table {
        table: path.display().to_string(),
        line: 0,
        why: e.to_string(),
    })
}

/// The files of a table: one optional path, or a list of them.
pub trait TablePaths {
    fn paths(&self) -> Vec<&PathBuf>;
}

impl TablePaths for Option<PathBuf> {
    fn paths(&self) -> Vec<&PathBuf> {
        self.iter().collect()
    }
}

impl TablePaths for Vec<PathBuf> {
    fn paths(&self) -> Vec<&PathBuf> {
        self.iter().collect()
    }
}

/// Declares the tables once: the files that hold each ([`TableFiles`], whose fields are the
/// `[enrich]` keys), the loaded table ([`Tables`]), and how it loads (a function of its files to
/// the table and its entry count, `None` when it has no files).
macro_rules! tables {
    ($( $(#[$attr:meta])* $field:ident: $Files:ty => $Table:ty, $load:expr; )*) => {
        /// Where the tables come from (`[enrich]` in the configuration). Every table is optional.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct TableFiles {
            $( $(#[$attr])* #[serde(default)] pub $field: $Files, )*
        }

        impl TableFiles {
            /// Every file of every table.
            pub fn paths(&self) -> Vec<&PathBuf> {
                let mut paths = Vec::new();
                $( paths.extend(TablePaths::paths(&self.$field)); )*
                paths
            }

            /// The same files with each path replaced by what `f` makes of it (given the table's
            /// name): resolved against a folder, or a folder expanded to its files.
            pub fn map_paths<E>(
                &self,
                mut f: impl FnMut(&'static str, &PathBuf) -> std::result::Result<Vec<PathBuf>, E>,
            ) -> std::result::Result<TableFiles, E> {
                let mut each = |table: &'static str, paths: Vec<&PathBuf>| -> std::result::Result<Vec<PathBuf>, E> {
                    let mut out = Vec::new();
                    for p in paths {
                        out.extend(f(table, p)?);
                    }
                    Ok(out)
                };
                Ok(TableFiles {
                    $( $field: FromPaths::from_paths(each(stringify!($field), TablePaths::paths(&self.$field))?), )*
                })
            }
        }

        /// Every table, ready for lookups.
        #[derive(Debug, Default)]
        pub struct Tables {
            $( pub $field: Option<$Table>, )*
        }

        impl Tables {
            /// Reads and indexes every configured table (an error names the file and line).
            pub fn load(files: &TableFiles) -> Result<(Tables, Vec<TableLoad>)> {
                let mut tables = Tables::default();
                let mut loads = Vec::new();
                $(
                    let started = Instant::now();
                    let load: fn(&$Files) -> Result<Option<($Table, usize)>> = $load;
                    if let Some((table, entries)) = load(&files.$field)? {
                        loads.push(TableLoad { table: stringify!($field), entries, seconds: started.elapsed().as_secs_f64() });
                        tables.$field = Some(table);
                    }
                )*
                Ok((tables, loads))
            }
        }
    };
}

/// A table's files rebuilt from a list of paths (see [`TableFiles::map_paths`]).
pub trait FromPaths {
    fn from_paths(paths: Vec<PathBuf>) -> Self;
}

impl FromPaths for Option<PathBuf> {
    fn from_paths(paths: Vec<PathBuf>) -> Self {
        paths.into_iter().next()
    }
}

impl FromPaths for Vec<PathBuf> {
    fn from_paths(paths: Vec<PathBuf>) -> Self {
        paths
    }
}

fn mmdb(path: &Option<PathBuf>) -> Result<Option<(Mmdb, usize)>> {
    let Some(path) = path else { return Ok(None) };
    let db = Mmdb::open(path)?;
    let n = db.len();
    Ok(Some((db, n)))
}

/// A table built from the texts of its files (each named by its path in errors), with its entry
/// count; none when no file is configured.
fn from_texts<T>(
    paths: &[PathBuf],
    build: impl FnOnce(Vec<(&str, &str)>) -> Result<T>,
    entries: fn(&T) -> usize,
) -> Result<Option<(T, usize)>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let texts: Vec<(String, String)> =
        paths.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect::<Result<_>>()?;
    let table = build(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect())?;
    let n = entries(&table);
    Ok(Some((table, n)))
}

tables! {
    /// A MaxMind DB with `country.iso_code`: IP geolocation instead of the built-in RIR data.
    country_mmdb: Option<PathBuf> => Mmdb, mmdb;
    /// A MaxMind DB with `autonomous_system_number` (used where the CSV ranges know nothing).
    asn_mmdb: Option<PathBuf> => Mmdb, mmdb;
    /// `first_ip,last_ip,asn,organisation` CSV files (the key `asn_csv`).
    #[serde(rename = "asn_csv")]
    asn: Vec<PathBuf> => AsnTable, |paths| from_texts(paths, |t| AsnTable::from_sources(t), AsnTable::len);
    /// The constituency registry (TOML).
    constituency: Option<PathBuf> => Registry, |path| {
        let Some(path) = path else { return Ok(None) };
        let registry = Registry::from_toml(&path.display().to_string(), &read(path)?)?;
        let n = registry.len();
        Ok(Some((registry, n)))
    };
    /// MISP warninglist files (JSON), or folders of them.
    warninglists: Vec<PathBuf> => Warninglists, |paths| {
        from_texts(paths, |t| Warninglists::from_sources(t), Warninglists::entries)
    };
}

impl Tables {
    /// The infrastructure country: an address by the configured mmdb, else by the built-in RIR
    /// data; a host name by its ccTLD.
    pub fn country(&self, target: &Target<'_>) -> Option<Country> {
        match (&self.country_mmdb, target.ip) {
            (Some(db), Some(ip)) => db.country(ip),
            _ => crate::country::infra_country(target),
        }
    }

    /// Where [`country`](Tables::country) looks the indicator up: `mmdb` (the configured IP
    /// geolocation), `rir` (the built-in RIR delegations) or `cctld` (a host name's last label);
    /// `None` for a type with neither address nor host (hashes, ASNs).
    pub fn country_source(&self, target: &Target<'_>) -> Option<&'static str> {
        match (&self.country_mmdb, target.ip) {
            (Some(_), Some(_)) => Some("mmdb"),
            (None, Some(_)) => Some("rir"),
            _ => target.host().map(|_| "cctld"),
        }
    }

    /// The AS of an indicator and, for an address, the organisation announcing it: its own
    /// number for an ASN; the CSV ranges first, then the mmdb, for an address.
    pub fn announced(&self, target: &Target<'_>) -> (Option<u32>, Option<&str>) {
        if target.kind == IndicatorType::Asn {
            return (target.value.trim_start_matches("AS").parse().ok(), None);
        }
        let Some(ip) = target.ip else { return (None, None) };
        let (asn, org) = match self.asn.as_ref().and_then(|t| t.lookup(ip)) {
            Some((asn, org)) => (Some(asn), Some(org)),
            None => match &self.asn_mmdb {
                Some(db) => (db.asn(ip), db.as_org(ip)),
                None => (None, None),
            },
        };
        (asn, org.filter(|org| !org.is_empty()))
    }

    /// The constituent organisation an indicator belongs to, given its AS (from
    /// [`announced`](Tables::announced)).
    pub fn organisation(&self, target: &Target<'_>, asn: Option<u32>) -> Option<&Organisation> {
        let registry = self.constituency.as_ref()?;
        if target.kind == IndicatorType::Asn {
            return registry.by_asn(asn?);
        }
        if let Some(ip) = target.ip {
            // The announcing AS only when no prefix of the registry holds the address.
            return registry.by_ip(ip, asn);
        }
        registry.by_domain(target.host()?)
    }

    /// Sectors: the constituent organisation's, else the hint of a `gov`, `edu` … label.
    pub fn sectors<'t>(&'t self, target: &Target<'_>, organisation: Option<&'t Organisation>) -> Vec<&'t str> {
        match organisation {
            Some(org) => org.sectors.iter().map(String::as_str).collect(),
            None => target.host().and_then(sector_hint).into_iter().collect(),
        }
    }

    /// The warninglist that calls the indicator benign.
    pub fn benign(&self, target: &Target<'_>) -> Option<&str> {
        self.warninglists.as_ref()?.benign(target)
    }

    /// Every lookup for one indicator, each table asked once.
    pub fn lookup(&self, target: &Target<'_>) -> Enrichment<'_> {
        let (asn, as_org) = self.announced(target);
        let organisation = self.organisation(target, asn);
        Enrichment {
            country: self.country(target),
            asn,
            as_org,
            org: organisation.map(|o| o.name.as_str()),
            org_country: organisation.map(|o| o.country),
            sectors: self.sectors(target, organisation),
            benign: self.benign(target),
        }
    }
}

/// What the tables say about one indicator: a row of the `enrichment` struct
/// ([`EnrichmentColumns`](crate::udf::EnrichmentColumns) declares its columns), as the tables
/// answer it and as the policy reads it back from a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment<'t> {
    /// Infrastructure country (IP geolocation, ccTLD).
    pub country: Option<Country>,
    pub asn: Option<u32>,
    pub as_org: Option<&'t str>,
    /// The constituent organisation it belongs to, and that organisation's country.
    pub org: Option<&'t str>,
    pub org_country: Option<Country>,
    pub sectors: Vec<&'t str>,
    /// The warninglist that calls the indicator benign.
    pub benign: Option<&'t str>,
}

/// The tables in use, shared by the UDFs, and the next version waiting to be used.
///
/// A reload builds new tables off the hot path and [`stage`](SharedTables::stage)s them; the
/// columnar stage [`promote`](SharedTables::promote)s them between batches, so every batch is
/// enriched by one version of the tables throughout.
#[derive(Debug, Clone, Default)]
pub struct SharedTables {
    current: Arc<RwLock<Arc<Tables>>>,
    next: Arc<Mutex<Option<Tables>>>,
}

impl SharedTables {
    pub fn new(tables: Tables) -> SharedTables {
        SharedTables { current: Arc::new(RwLock::new(Arc::new(tables))), next: Arc::default() }
    }

    /// The tables in use now.
    pub fn snapshot(&self) -> Arc<Tables> {
        self.current.read().expect("not poisoned").clone()
    }

    /// Offers new tables, to be used from the next batch on.
    pub fn stage(&self, tables: Tables) {
        *self.next.lock().expect("not poisoned") = Some(tables);
    }

    /// Puts staged tables in use; true if there were any. Called between batches.
    pub fn promote(&self) -> bool {
        let Some(next) = self.next.lock().expect("not poisoned").take() else { return false };
        *self.current.write().expect("not poisoned") = Arc::new(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;

    /// Each lookup on its own, as the one-column UDFs run them.
    fn country(t: &Tables, kind: T, value: &str) -> Option<&'static str> {
        t.country(&Target::of(kind, value)).map(|c| c.as_str())
    }
    fn asn(t: &Tables, kind: T, value: &str) -> Option<u32> {
        t.announced(&Target::of(kind, value)).0
    }
    fn as_org<'t>(t: &'t Tables, kind: T, value: &str) -> Option<&'t str> {
        t.announced(&Target::of(kind, value)).1
    }
    fn lookup<'t>(t: &'t Tables, kind: T, value: &str) -> Enrichment<'t> {
        t.lookup(&Target::of(kind, value))
    }

    fn tables() -> Tables {
        Tables {
            country_mmdb: None,
            asn_mmdb: None,
            asn: Some(AsnTable::from_csv("asn", "192.0.2.0,192.0.2.255,64500,Example Net\n").unwrap()),
            constituency: Some(
                Registry::from_toml(
                    "reg",
                    "[[organisation]]\nname = \"Example Bank\"\ncountry = \"MY\"\nsectors = [\"finance\"]\n\
                     asns = [64500]\ndomains = [\"bank.example\"]\n",
                )
                .unwrap(),
            ),
            warninglists: None,
        }
    }

    #[test]
    fn mmdb_files_take_over_ip_country_and_fill_asn_gaps() {
        use crate::mmdb::fixture::{Value, ipv4_database};
        let dir = std::env::temp_dir().join(format!("iocflow-tables-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let iso = |cc| Value::Map(vec![("country", Value::Map(vec![("iso_code", Value::Str(cc))]))]);
        std::fs::write(dir.join("c.mmdb"), ipv4_database(&[("8.8.8.0/24", iso("SG"))])).unwrap();
        let as_record = Value::Map(vec![
            ("autonomous_system_number", Value::U32(64999)),
            ("autonomous_system_organization", Value::Str("Mmdb Net")),
        ]);
        std::fs::write(dir.join("a.mmdb"), ipv4_database(&[("198.51.100.0/24", as_record)])).unwrap();
        let files = TableFiles {
            country_mmdb: Some(dir.join("c.mmdb")),
            asn_mmdb: Some(dir.join("a.mmdb")),
            ..TableFiles::default()
        };
        let (t, loads) = Tables::load(&files).unwrap();
        assert_eq!(loads.iter().map(|l| l.table).collect::<Vec<_>>(), ["country_mmdb", "asn_mmdb"]);
        assert_eq!(country(&t, T::Ipv4, "8.8.8.8"), Some("SG"), "the configured file, not the RIR data");
        assert_eq!(country(&t, T::Ipv4, "1.1.1.1"), None, "an address the file does not know");
        assert_eq!(country(&t, T::Url, "http://x.example.my/"), Some("MY"), "host names by ccTLD");
        assert_eq!(
            (asn(&t, T::Ipv4, "198.51.100.3"), as_org(&t, T::Ipv4, "198.51.100.3")),
            (Some(64999), Some("Mmdb Net"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lookups_by_indicator_type() {
        let t = tables();
        assert_eq!(asn(&t, T::Ipv4, "192.0.2.9"), Some(64500));
        assert_eq!(asn(&t, T::Url, "http://192.0.2.9/x"), Some(64500));
        assert_eq!(asn(&t, T::Asn, "AS64501"), Some(64501));
        assert_eq!(as_org(&t, T::Cidr, "192.0.2.0/28"), Some("Example Net"));
        // The address has no prefix in the registry, but its AS belongs to the bank.
        let by_as = lookup(&t, T::Ipv4, "192.0.2.9");
        assert_eq!(by_as.org_country.map(|c| c.as_str()), Some("MY"));
        assert_eq!((by_as.asn, by_as.as_org, by_as.country), (Some(64500), Some("Example Net"), None));
        assert_eq!(lookup(&t, T::Asn, "AS64500").org, Some("Example Bank"));
        assert_eq!(lookup(&t, T::Email, "it@mail.bank.example").sectors, ["finance"]);
        assert_eq!(lookup(&t, T::Domain, "portal.gov.sg").sectors, ["government"], "the hint when no organisation");
        assert!(lookup(&t, T::Md5, "00").sectors.is_empty());
        assert_eq!(lookup(&t, T::Ipv4, "10.0.0.1").benign, None, "no lists loaded");
        assert_eq!(country(&t, T::Ipv4, "8.8.8.8"), Some("US"), "built-in RIR data without an mmdb");
        assert_eq!(country(&t, T::Domain, "x.example.th"), Some("TH"));
        let shared = SharedTables::new(Tables::default());
        assert!(!shared.promote(), "nothing staged");
        shared.stage(t);
        assert!(shared.snapshot().asn.is_none(), "staged tables wait for the next batch");
        assert!(shared.promote());
        assert!(shared.snapshot().asn.is_some());
    }
}
