//! The least-privilege ACL plan of a deployment (`iocflow acls`), and how the ACLs a broker holds
//! compare with it.
//!
//! A national CERT shares with the region only if no other member can read what was meant for
//! it. Inside iocflow the TLP policy decides who is sent what; at the Kafka boundary the
//! isolation rests on these bindings, so they are derived from the configuration alone (the same
//! names `iocflow topics` creates and `iocflow run` uses), applied by iocflow itself with an
//! admin identity (`acl_admin.rs`), and checked against the broker afterwards:
//!
//! - each feed's producer: WRITE on its own feed topic;
//! - each CERT: READ on its own topic, and on the consumer groups under its prefix (`cert-sg-`);
//! - iocflow: READ on the feeds, READ and WRITE on its internal topics, WRITE on the dead letters,
//!   the withheld audit and the CERT topics, CREATE and DESCRIBE_CONFIGS on each of its topics
//!   (`iocflow topics --create` runs as iocflow and names a topic whose settings are wrong), READ
//!   on its own three groups by their exact names, WRITE on its transactional ids (`<app>-ingest-`,
//!   `<app>-columnar-`);
//! - the auditors: READ on the dead letters, the withheld audit and the state changelog (which
//!   `iocflow explain` reads), in groups `<app>-audit-…`.
//!
//! Every prefix ends with a separator, so no prefix covers another principal's or another
//! deployment's names (`iocflow` would cover `iocflow2`'s groups; `cert-sg` a group `cert-sgx`).
//! The verification reports the plan's bindings that are missing and, beyond the plan, every
//! ALLOW binding that gives a principal of the config (or `User:*`) access to one of the
//! config's topics, groups or transactional ids, or to the cluster.

use crate::config::{Config, STAGES};
use crate::kafka::topics;
use std::collections::BTreeSet;
use std::fmt;

/// The kind of resource a binding is on (`CLUSTER` is librdkafka's `BROKER` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Topic,
    Group,
    TransactionalId,
    Cluster,
}

/// How a binding's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    Literal,
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    /// Whether a binding for `self` also allows `other` (Kafka's implied operations).
    pub fn implies(self, other: Operation) -> bool {
        use Operation::*;
        self == other
            || self == All
            || (other == Describe && matches!(self, Read | Write | Delete | Alter))
            || (other == DescribeConfigs && self == AlterConfigs)
    }

    /// The name `kafka-acls.sh --operation` takes.
    fn kafka_acls_name(self) -> &'static str {
        use Operation::*;
        match self {
            All => "All",
            Read => "Read",
            Write => "Write",
            Create => "Create",
            Delete => "Delete",
            Alter => "Alter",
            Describe => "Describe",
            ClusterAction => "ClusterAction",
            DescribeConfigs => "DescribeConfigs",
            AlterConfigs => "AlterConfigs",
            IdempotentWrite => "IdempotentWrite",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Allow,
    Deny,
}

/// One ACL binding: a principal may (or may not) do an operation on resources, from a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub principal: String,
    pub permission: Permission,
    pub operation: Operation,
    pub resource: Resource,
    pub name: String,
    pub pattern: Pattern,
    pub host: String,
}

impl AclBinding {
    fn allow(principal: &str, operation: Operation, resource: Resource, name: &str, pattern: Pattern) -> AclBinding {
        AclBinding {
            principal: principal.to_string(),
            permission: Permission::Allow,
            operation,
            resource,
            name: name.to_string(),
            pattern,
            host: "*".into(),
        }
    }

    /// Whether this binding allows at least everything `other` allows (both ALLOW).
    fn covers(&self, other: &AclBinding) -> bool {
        self.permission == Permission::Allow
            && other.permission == Permission::Allow
            && self.principal == other.principal
            && self.resource == other.resource
            && (self.host == "*" || self.host == other.host)
            && self.operation.implies(other.operation)
            && match (self.pattern, other.pattern) {
                (Pattern::Literal, Pattern::Literal) => self.name == other.name,
                (Pattern::Prefixed, _) => other.name.starts_with(&self.name),
                (Pattern::Literal, Pattern::Prefixed) => false,
            }
    }

    /// This binding as a `kafka-acls.sh` command line (for operators who apply it elsewhere).
    pub fn kafka_acls_line(&self, bootstrap: &str) -> String {
        let resource = match self.resource {
            Resource::Topic => format!("--topic {}", self.name),
            Resource::Group => format!("--group {}", self.name),
            Resource::TransactionalId => format!("--transactional-id {}", self.name),
            Resource::Cluster => "--cluster".to_string(),
        };
        let (who, host) = match self.permission {
            Permission::Allow => ("--allow-principal", "--allow-host"),
            Permission::Deny => ("--deny-principal", "--deny-host"),
        };
        let pattern = match self.pattern {
            Pattern::Literal => "literal",
            Pattern::Prefixed => "prefixed",
        };
        format!(
            "kafka-acls.sh --bootstrap-server {bootstrap} --command-config admin.properties --add {who} {} {host} '{}' \
             --operation {} {resource} --resource-pattern-type {pattern}",
            self.principal,
            self.host,
            self.operation.kafka_acls_name()
        )
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let permission = match self.permission {
            Permission::Allow => "ALLOW",
            Permission::Deny => "DENY",
        };
        let resource = match self.resource {
            Resource::Topic => "TOPIC",
            Resource::Group => "GROUP",
            Resource::TransactionalId => "TRANSACTIONAL_ID",
            Resource::Cluster => "CLUSTER",
        };
        let operation = format!("{:?}", self.operation).to_uppercase();
        let pattern = match self.pattern {
            Pattern::Literal => "literal",
            Pattern::Prefixed => "prefixed",
        };
        write!(f, "{permission} {} {operation} {resource} {} ({pattern})", self.principal, self.name)?;
        if self.host != "*" {
            write!(f, " from {}", self.host)?;
        }
        Ok(())
    }
}

/// The bindings of a deployment, by principal: feeds, CERTs, iocflow, auditors.
pub fn plan(config: &Config) -> Vec<AclBinding> {
    use Operation::*;
    use Pattern::*;
    use Resource::*;
    let mut acls = Vec::new();
    let mut allow = |principal: &str, op, resource, name: &str, pattern| {
        acls.push(AclBinding::allow(principal, op, resource, name, pattern));
    };
    for f in &config.feeds {
        allow(&f.principal(), Write, Topic, &f.topic, Literal);
    }
    for c in &config.certs {
        allow(&c.principal(), Read, Topic, &c.topic(), Literal);
        allow(&c.principal(), Read, Group, &c.group_prefix(), Prefixed);
        allow(&c.principal(), Write, Topic, &c.sightings_topic(), Literal);
    }
    let me = config.access.principal.as_str();
    for t in topics::plan(config) {
        let ops: &[Operation] = match t.role {
            topics::Role::Feed | topics::Role::Sightings => &[Read],
            topics::Role::Indicators | topics::Role::State => &[Read, Write],
            topics::Role::DeadLetters | topics::Role::Withheld | topics::Role::Cert => &[Write],
        };
        for op in ops.iter().chain(&[Create, DescribeConfigs]) {
            allow(me, *op, Topic, &t.name, Literal);
        }
    }
    for group in config.own_groups() {
        allow(me, Read, Group, &group, Literal);
    }
    for stage in STAGES {
        allow(me, Write, TransactionalId, &config.transactional_id_prefix(stage), Prefixed);
    }
    for auditor in &config.access.auditors {
        for topic in [config.dlq_topic(), config.withheld_topic(), config.state_topic()] {
            allow(auditor, Read, Topic, &topic, Literal);
        }
        allow(auditor, Read, Group, &config.audit_group_prefix(), Prefixed);
    }
    acls
}

/// How the broker's bindings compare with the plan.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Bindings of the plan the broker does not hold.
    pub missing: Vec<AclBinding>,
    /// Bindings the plan does not cover that give a principal of the config, or `User:*`, access
    /// to one of the config's topics, groups or transactional ids, or to the cluster.
    pub beyond: Vec<AclBinding>,
}

impl Comparison {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.beyond.is_empty()
    }
}

/// The names a deployment owns, with how they are granted (a CERT's groups by prefix).
fn namespace(config: &Config) -> Vec<(Resource, String, Pattern)> {
    let mut names: Vec<(Resource, String, Pattern)> =
        topics::plan(config).into_iter().map(|t| (Resource::Topic, t.name, Pattern::Literal)).collect();
    names.extend(config.own_groups().into_iter().map(|g| (Resource::Group, g, Pattern::Literal)));
    names.extend(config.certs.iter().map(|c| (Resource::Group, c.group_prefix(), Pattern::Prefixed)));
    names.push((Resource::Group, config.audit_group_prefix(), Pattern::Prefixed));
    for stage in STAGES {
        names.push((Resource::TransactionalId, config.transactional_id_prefix(stage), Pattern::Prefixed));
    }
    names
}

/// Whether `binding` reaches any name of the namespace.
fn reaches(binding: &AclBinding, names: &[(Resource, String, Pattern)]) -> bool {
    if binding.resource == Resource::Cluster {
        return true;
    }
    names.iter().filter(|(r, _, _)| *r == binding.resource).any(|(_, name, pattern)| {
        let b = binding.name.as_str();
        match (binding.pattern, pattern) {
            (Pattern::Literal, _) if b == "*" => true,
            (Pattern::Literal, Pattern::Literal) => b == name,
            (Pattern::Literal, Pattern::Prefixed) => b.starts_with(name.as_str()),
            (Pattern::Prefixed, Pattern::Literal) => name.starts_with(b),
            (Pattern::Prefixed, Pattern::Prefixed) => name.starts_with(b) || b.starts_with(name.as_str()),
        }
    })
}

/// The principals the config names, and `User:*`.
pub fn principals(config: &Config) -> BTreeSet<String> {
    let mut p: BTreeSet<String> = config.feeds.iter().map(|f| f.principal()).collect();
    p.extend(config.certs.iter().map(|c| c.principal()));
    p.insert(config.access.principal.clone());
    p.extend(config.access.auditors.iter().cloned());
    p.insert("User:*".into());
    p
}

/// Compares the broker's bindings (`actual`) with the plan.
pub fn compare(config: &Config, actual: &[AclBinding]) -> Comparison {
    let planned = plan(config);
    let held: BTreeSet<&AclBinding> = actual.iter().collect();
    let missing = planned.iter().filter(|b| !held.contains(b)).cloned().collect();
    let principals = principals(config);
    let names = namespace(config);
    let mut beyond: Vec<AclBinding> = actual
        .iter()
        .filter(|b| b.permission == Permission::Allow && principals.contains(&b.principal))
        .filter(|b| reaches(b, &names))
        .filter(|b| !planned.iter().any(|p| p.covers(b)))
        .cloned()
        .collect();
    beyond.sort();
    Comparison { missing, beyond }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(crate::config::SAMPLE).unwrap()
    }

    fn lines(acls: &[AclBinding]) -> Vec<String> {
        acls.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_plan_is_least_privilege() {
        let c = config();
        let acls = plan(&c);
        let of =
            |principal: &str| lines(&acls.iter().filter(|b| b.principal == principal).cloned().collect::<Vec<_>>());
        // A producer writes its own feed topic and nothing else.
        assert_eq!(of("User:vendor"), ["ALLOW User:vendor WRITE TOPIC feeds.industry (literal)"]);
        assert_eq!(of("User:feed-member"), ["ALLOW User:feed-member WRITE TOPIC feeds.member (literal)"]);
        // A CERT reads its own topic, in groups under its prefix, which ends with a separator,
        // and writes its own sightings topic.
        assert_eq!(
            of("User:cert-my"),
            [
                "ALLOW User:cert-my READ TOPIC cert.my.indicators (literal)",
                "ALLOW User:cert-my READ GROUP cert-my- (prefixed)",
                "ALLOW User:cert-my WRITE TOPIC cert.my.sightings (literal)"
            ]
        );
        // The auditors read the dead letters, the withheld audit and the state (for `explain`) only.
        assert_eq!(
            of("User:soc-audit"),
            [
                "ALLOW User:soc-audit READ TOPIC t1.dlq (literal)",
                "ALLOW User:soc-audit READ TOPIC t1.withheld (literal)",
                "ALLOW User:soc-audit READ TOPIC t1.state (literal)",
                "ALLOW User:soc-audit READ GROUP t1-audit- (prefixed)"
            ]
        );
        // iocflow: its groups by their exact names, its transactional ids by a prefix that ends
        // with a separator, nothing on the cluster, and no read of what it only writes.
        let me = of("User:pipeline");
        for line in [
            "ALLOW User:pipeline READ TOPIC feeds.industry (literal)",
            "ALLOW User:pipeline WRITE TOPIC t1.state (literal)",
            "ALLOW User:pipeline WRITE TOPIC cert.sg.indicators (literal)",
            "ALLOW User:pipeline CREATE TOPIC cert.sg.indicators (literal)",
            "ALLOW User:pipeline DESCRIBECONFIGS TOPIC t1.dlq (literal)",
            "ALLOW User:pipeline READ GROUP t1-ingest (literal)",
            "ALLOW User:pipeline READ GROUP t1-restore (literal)",
            "ALLOW User:pipeline WRITE TRANSACTIONAL_ID t1-columnar- (prefixed)",
        ] {
            assert!(me.contains(&line.to_string()), "{line} not in {me:#?}");
        }
        // It reads the CERTs' sightings topics and no CERT's indicators.
        assert!(me.contains(&"ALLOW User:pipeline READ TOPIC cert.sg.sightings (literal)".to_string()), "{me:#?}");
        assert!(!me.iter().any(|l| l.contains("WRITE TOPIC cert.sg.sightings")), "{me:#?}");
        assert!(
            !me.iter()
                .any(|l| (l.contains("READ TOPIC cert.") && l.contains(".indicators"))
                    || l.contains("READ TOPIC t1.dlq")),
            "{me:#?}"
        );
        assert!(!acls.iter().any(|b| b.resource == Resource::Cluster || b.operation == Operation::All));
        assert!(acls.iter().all(|b| b.pattern == Pattern::Literal || b.name.ends_with('-')));
        // Nobody but iocflow touches the internal topics; the auditors only read the state.
        assert!(acls.iter().filter(|b| b.name.starts_with("t1.")).all(|b| b.principal == "User:pipeline"
            || (b.principal == "User:soc-audit" && b.operation == Operation::Read && b.name != "t1.indicators")));
    }

    #[test]
    fn the_applied_plan_compares_clean_and_broader_bindings_are_named() {
        let c = config();
        let mut held = plan(&c);
        assert!(compare(&c, &held).is_clean());
        // Bindings within the plan's grants, for other principals, on other names, or denials:
        // none is beyond the plan.
        let extra = [
            AclBinding::allow(
                "User:cert-my",
                Operation::Describe,
                Resource::Topic,
                "cert.my.indicators",
                Pattern::Literal,
            ),
            AclBinding::allow("User:cert-my", Operation::Read, Resource::Group, "cert-my-team", Pattern::Literal),
            AclBinding::allow(
                "User:someone-else",
                Operation::Read,
                Resource::Topic,
                "cert.sg.indicators",
                Pattern::Literal,
            ),
            AclBinding::allow("User:cert-my", Operation::Read, Resource::Topic, "other-app.topic", Pattern::Literal),
            AclBinding {
                permission: Permission::Deny,
                ..AclBinding::allow("User:*", Operation::All, Resource::Topic, "*", Pattern::Literal)
            },
        ];
        held.extend(extra.iter().cloned());
        assert!(compare(&c, &held).is_clean(), "{:#?}", compare(&c, &held));
        // A CERT reading another CERT's topic, anyone reading a CERT topic, a CERT in iocflow's
        // or another CERT's groups (by a prefix without separator), a wildcard, the cluster.
        let broad = [
            AclBinding::allow("User:cert-my", Operation::Read, Resource::Topic, "cert.sg.indicators", Pattern::Literal),
            AclBinding::allow("User:*", Operation::Read, Resource::Topic, "cert.my.indicators", Pattern::Literal),
            AclBinding::allow("User:cert-sg", Operation::Read, Resource::Group, "cert-m", Pattern::Prefixed),
            AclBinding::allow("User:cert-sg", Operation::Read, Resource::Group, "t1-ingest", Pattern::Literal),
            AclBinding::allow("User:vendor", Operation::Write, Resource::Topic, "*", Pattern::Literal),
            AclBinding::allow("User:vendor", Operation::Write, Resource::Topic, "feeds.", Pattern::Prefixed),
            AclBinding::allow("User:cert-sg", Operation::Alter, Resource::Cluster, "kafka-cluster", Pattern::Literal),
            AclBinding::allow("User:cert-sg", Operation::Write, Resource::TransactionalId, "t1-", Pattern::Prefixed),
        ];
        held.extend(broad.iter().cloned());
        held.retain(|b| b.to_string() != "ALLOW User:cert-my READ GROUP cert-my- (prefixed)");
        let found = compare(&c, &held);
        let mut expected = broad.to_vec();
        expected.sort();
        assert_eq!(found.beyond, expected);
        assert_eq!(lines(&found.missing), ["ALLOW User:cert-my READ GROUP cert-my- (prefixed)"]);
    }

    #[test]
    fn kafka_acls_lines() {
        let b = AclBinding::allow("User:cert-sg", Operation::Read, Resource::Group, "cert-sg-", Pattern::Prefixed);
        assert_eq!(
            b.kafka_acls_line("k:9093"),
            "kafka-acls.sh --bootstrap-server k:9093 --command-config admin.properties --add --allow-principal \
             User:cert-sg --allow-host '*' --operation Read --group cert-sg- --resource-pattern-type prefixed"
        );
        let t =
            AclBinding::allow("User:i", Operation::Write, Resource::TransactionalId, "a-ingest-", Pattern::Prefixed);
        assert!(
            t.kafka_acls_line("k")
                .contains("--operation Write --transactional-id a-ingest- --resource-pattern-type prefixed")
        );
    }
}
