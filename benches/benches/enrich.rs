//! Enrichment at a real batch size (4,096 rows of mixed indicators): the `enrichment` UDF the
//! stage runs (every lookup of a row at once), each enricher's own UDF over
//! the batch, and the whole columnar stage (state + enrich + route) with every table loaded,
//! against building the same batch as the baseline measured in the same run.
//!
//! Tables: 65,536 ASN ranges (every IPv4 /16), a constituency registry of 2,000 organisations
//! (a /24 and a domain each), and the shipped warninglists.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;
use iocflow::columnar::ColumnarCore;
use iocflow::config::Config;
use iocflow::indicator_batch;
use iocflow_benches::{asean_config_text, columnar_input, time_batches};
use iocflow_enrichers::tables::{SharedTables, TableFiles, Tables};
use std::path::Path;

fn write_tables(dir: &Path) {
    let mut asn = String::new();
    for j in 0..65_536u32 {
        let first = std::net::Ipv4Addr::from(j << 16);
        let last = std::net::Ipv4Addr::from((j << 16) | 0xffff);
        asn += &format!("{first},{last},{},Network {}\n", 64_512 + j % 1_000, j % 1_000);
    }
    std::fs::write(dir.join("asn.csv"), asn).unwrap();
    let tlds = ["sg", "my", "th", "vn", "ph", "id"];
    let mut registry = String::new();
    for k in 0..2_000u32 {
        registry += &format!(
            "[[organisation]]\nname = \"Org {k}\"\ncountry = \"{}\"\nsectors = [\"finance\"]\n\
             cidrs = [\"203.{}.{}.0/24\"]\ndomains = [\"host{}.example.{}\"]\n",
            tlds[k as usize % tlds.len()].to_uppercase(),
            116 + k / 256,
            k % 256,
            k * 7,
            tlds[(k * 7) as usize % tlds.len()]
        );
    }
    std::fs::write(dir.join("constituency.toml"), registry).unwrap();
}

fn enrich(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path());
    // Cargo's manifest folder at run time: the build may have been compiled in another clone.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let lists = Path::new(&manifest).join("../data/warninglists");
    let files = TableFiles {
        asn: vec![dir.path().join("asn.csv")],
        constituency: Some(dir.path().join("constituency.toml")),
        warninglists: std::fs::read_dir(&lists)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        ..TableFiles::default()
    };
    let (tables, _) = Tables::load(&files).unwrap();
    let tables = SharedTables::new(tables);

    let (reports, build) = columnar_input();
    let batch = build();

    let mut g = c.benchmark_group("enrich");
    g.throughput(Throughput::Elements(reports.len() as u64));
    g.bench_function("build_batch/4096 (baseline)", |b| b.iter(&build));
    let ctx = SessionContext::new();
    for udf in iocflow_enrichers::udf::all(&tables) {
        ctx.register_udf(udf);
    }
    let schema = DFSchema::try_from(indicator_batch::schema().as_ref().clone()).unwrap();
    for f in ["enrichment", "infra_country", "asn", "as_org", "constituency_org", "sectors", "benign"] {
        // The stage's UDF also takes the address the decoder parsed; the others read the value.
        let args = if f == "enrichment" { r#""type", "value", "address""# } else { r#""type", "value""# };
        let expr = ctx.parse_sql_expr(&format!("{f}({args})"), &schema).unwrap();
        let expr = ctx.create_physical_expr(expr, &schema).unwrap();
        g.bench_function(format!("udf/{f}/4096"), |b| b.iter(|| expr.evaluate(&batch).unwrap()));
    }

    let config_path = dir.path().join("iocflow.toml");
    let enrich = format!(
        "[enrich]\nasn_csv = [\"asn.csv\"]\nconstituency = \"constituency.toml\"\nwarninglists = [{:?}]\n",
        lists.display().to_string()
    );
    std::fs::write(&config_path, asean_config_text(&enrich)).unwrap();
    let config = Config::load(&config_path).unwrap();
    let mut core = ColumnarCore::new(&config).unwrap();
    g.bench_function("columnar_process/4096 (fresh state, all tables)", |b| {
        b.iter_custom(|iters| time_batches(&mut core, &build, |core| core.drop_partition(0), iters))
    });
    g.finish();
}

criterion_group!(benches, enrich);
criterion_main!(benches);
