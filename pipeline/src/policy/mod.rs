//! The sharing policy: which CERT may see which report, and when a CERT is sent a record.
//!
//! [`route`] builds each CERT's view of an indicator under TLP and MISP sharing groups and
//! applies the emission rule; [`cert_view`] evaluates the CERTs' SQL filters over those views.
//! Pure decisions over the state: nothing here touches Kafka or an async runtime (no rdkafka,
//! no tokio), so the policy can be tested, and explained, on its own.

pub mod cert_view;
pub mod decay;
pub mod route;

#[cfg(test)]
mod tests {
    /// The rule of this folder, checked as a grep would: no Kafka client, no async runtime.
    #[test]
    fn the_policy_uses_neither_rdkafka_nor_tokio() {
        // Cargo's manifest folder at run time: the build may have been compiled in another clone.
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let folder = std::path::Path::new(&manifest).join("src/policy");
        let mut files = 0;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // A path into either crate (`use`, a type, `#[tokio::test]`) is what depending on it takes.
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")) {
                for word in ["rdkafka", "tokio"] {
                    assert!(!line.contains(&format!("{word}::")), "{}:{}: {line}", path.display(), n + 1);
                }
            }
            files += 1;
        }
        assert!(files >= 3, "read {files} files of {}", folder.display());
    }
}
