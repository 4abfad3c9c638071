//! The secured broker of `dev/kafka start --secure`: SASL_SSL with SCRAM-SHA-512, mutual TLS,
//! the StandardAuthorizer with no access unless an ACL grants it. A client as any of its users,
//! the admin's properties, and the passwords it generated (for tests that search outputs for
//! them).

use super::repo;
use rdkafka::config::ClientConfig;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The running secured broker.
pub struct SecureBroker {
    /// SASL_SSL listener.
    pub bootstrap: String,
    /// Mutual-TLS listener.
    pub mtls: String,
    /// Its folder: `tls/`, `users/<name>.password`, `admin.properties`.
    pub dir: PathBuf,
}

/// Starts the secured broker on first use (a running one is found again).
pub fn secure_broker() -> &'static SecureBroker {
    static BROKER: OnceLock<SecureBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let out = Command::new(repo().join("dev/kafka"))
            .args(["start", "--secure"])
            .stderr(Stdio::inherit())
            .output()
            .expect("run dev/kafka start --secure");
        assert!(out.status.success(), "dev/kafka start --secure failed");
        let bootstrap = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_string();
        let port: u16 = bootstrap.rsplit(':').next().unwrap().parse().unwrap();
        let dir = std::env::var_os("IOCFLOW_KAFKA_SECURE_DIR").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/iocflow/kafka-secure"),
            PathBuf::from,
        );
        SecureBroker { mtls: format!("127.0.0.1:{}", port + 2), bootstrap, dir }
    })
}

impl SecureBroker {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    pub fn password_file(&self, user: &str) -> PathBuf {
        self.dir.join(format!("users/{user}.password"))
    }

    pub fn password(&self, user: &str) -> String {
        std::fs::read_to_string(self.password_file(user)).unwrap().trim().to_string()
    }

    /// Every password the broker's users have.
    pub fn passwords(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("users"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap().trim().to_string())
            .collect()
    }

    /// The admin's librdkafka properties file (`iocflow acls --admin`).
    pub fn admin_properties(&self) -> PathBuf {
        self.dir.join("admin.properties")
    }

    /// Client settings as `user` (SASL_SSL, SCRAM-SHA-512).
    pub fn client_as(&self, user: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", user)
            .set("sasl.password", self.password(user))
            .set("ssl.ca.location", self.ca().to_str().unwrap());
        c
    }

    /// The `[kafka.client]` entries of an iocflow config as `user`, its password read from its file.
    pub fn kafka_client_entries(&self, user: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_SSL".into()),
            ("sasl.mechanism", "SCRAM-SHA-512".into()),
            ("sasl.username", user.into()),
            ("sasl.password", format!("${{file:{}}}", self.password_file(user).display())),
            ("ssl.ca.location", self.ca().display().to_string()),
        ]
    }
}
