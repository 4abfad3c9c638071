//! librdkafka client properties as the operator writes them: `[kafka.client]` in the config, or
//! the admin identity's properties file (`iocflow acls --admin FILE`).
//!
//! Some of them are secrets (a SASL password, a key's passphrase). They must reach librdkafka and
//! nothing else: no log line, error, `check` output or Debug print of a configuration. So every
//! value is a [`PropertyValue`] that knows whether it is secret — a sensitive property, or any
//! value read from `${env:NAME}` or `${file:/path}` — and whose Debug form hides it. The value
//! itself is only handed out by [`PropertyValue::expose`], which the client builders call.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// One property value; Debug prints `"***"` for a secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PropertyValue {
    value: String,
    secret: bool,
}

impl PropertyValue {
    /// The value, for librdkafka.
    pub(crate) fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret { f.write_str("\"***\"") } else { write!(f, "{:?}", self.value) }
    }
}

/// Properties whose values are secrets whatever their source (librdkafka's sensitive ones).
fn is_sensitive(key: &str) -> bool {
    ["password", "secret", "passphrase", "key.pem", "private.key", "sasl.oauthbearer.config", "ssl_key"]
        .iter()
        .any(|s| key.contains(s))
}

/// librdkafka properties by name.
#[derive(Clone, Default, Deserialize)]
#[serde(from = "BTreeMap<String, String>")]
pub struct ClientProperties(BTreeMap<String, PropertyValue>);

impl From<BTreeMap<String, String>> for ClientProperties {
    fn from(map: BTreeMap<String, String>) -> Self {
        ClientProperties(
            map.into_iter()
                .map(|(k, value)| {
                    let secret = is_sensitive(&k);
                    (k, PropertyValue { value, secret })
                })
                .collect(),
        )
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(&self.0).finish()
    }
}

impl ClientProperties {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(PropertyValue::expose)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// (name, value) pairs for librdkafka.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// Every secret value, to search outputs for (tests) or to scrub a message with.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.0.values().filter(|v| v.secret).map(PropertyValue::expose)
    }

    /// Reads a librdkafka properties file: `name=value` lines, `#` comments, values may be
    /// `${env:NAME}` or `${file:/path}`.
    pub fn load(path: &Path) -> Result<ClientProperties> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the properties file {}: {e}", path.display())))?;
        let mut map = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Error::Config(format!("{} line {}: expected name=value", path.display(), i + 1)));
            };
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut props = ClientProperties::from(map);
        props.resolve(&path.display().to_string())?;
        Ok(props)
    }

    /// Replaces `${env:NAME}` and `${file:/path}` values (which become secrets); `what` names
    /// where the properties come from in errors (`kafka.client`, a file's path).
    pub(crate) fn resolve(&mut self, what: &str) -> Result<()> {
        for (key, value) in self.0.iter_mut() {
            let v = &value.value;
            let resolved = if let Some(name) = v.strip_prefix("${env:").and_then(|v| v.strip_suffix('}')) {
                std::env::var(name)
                    .map_err(|_| Error::Config(format!("{what}.\"{key}\": environment variable {name} is not set")))?
            } else if let Some(path) = v.strip_prefix("${file:").and_then(|v| v.strip_suffix('}')) {
                std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("{what}.\"{key}\": cannot read {path}: {e}")))?
                    .trim_end()
                    .to_string()
            } else {
                continue;
            };
            *value = PropertyValue { value: resolved, secret: true };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_resolved_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let props_file = dir.path().join("admin.properties");
        std::fs::write(
            &props_file,
            format!(
                "# the admin\nbootstrap.servers = b:1\nsasl.username=admin\nsasl.password=${{file:{}}}\n\
                 ssl.key.password=inline-secret\n",
                file.display()
            ),
        )
        .unwrap();
        let p = ClientProperties::load(&props_file).unwrap();
        assert_eq!(p.get("sasl.password"), Some("from-a-file"));
        assert_eq!(p.get("bootstrap.servers"), Some("b:1"));
        let shown = format!("{p:?}");
        assert!(!shown.contains("from-a-file") && !shown.contains("inline-secret"), "{shown}");
        assert!(shown.contains("\"sasl.username\": \"admin\""), "{shown}");
        let mut secrets: Vec<&str> = p.secrets().collect();
        secrets.sort();
        assert_eq!(secrets, ["from-a-file", "inline-secret"]);

        std::fs::write(&props_file, "no equals sign\n").unwrap();
        let e = ClientProperties::load(&props_file).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
