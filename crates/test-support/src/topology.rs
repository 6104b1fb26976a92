//! One way for every test to write a `topology.yaml`: [`TopologyBuilder`], key by key.
//!
//! Values given as `yaml` are written as they are (flow style, e.g. `1s`, `true`, `[".*"]`);
//! names and strings the builder takes as `&str` are quoted for you. Tests about the file's
//! syntax itself (bad YAML, unknown keys, `${VAR}`) keep writing their text by hand.
//!
//! ```ignore
//! let topology = TopologyBuilder::new()
//!     .tansu("a", &a)
//!     .tansu("b", &b)
//!     .flow("a", "b", &["orders"])
//!     .flow_set("groups", r#"[".*"]"#)
//!     .replication("checkpoints_interval", "1s")
//!     .write(&work);
//! ```

use std::path::{Path, PathBuf};

use crate::emulator::EventHubsEmulator;

/// The environment variable [`TopologyBuilder::event_hubs`] reads the connection string from.
pub const CONNECTION_STRING_VAR: &str = "EVENTHUB_CONNECTION_STRING";
use crate::hubmirror::Workdir;
use crate::tansu::Tansu;

/// A topology under construction. The store defaults to `./data` (beside the file).
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    clusters: Vec<Cluster>,
    flows: Vec<Vec<(String, String)>>,
    replication: Vec<(String, String)>,
    store: String,
    metrics: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Clone)]
struct Cluster {
    alias: String,
    keys: Vec<(String, String)>,
    client: Vec<(String, String)>,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TopologyBuilder {
    /// No clusters, no flows, the store at `./data`.
    pub fn new() -> Self {
        TopologyBuilder {
            clusters: Vec::new(),
            flows: Vec::new(),
            replication: Vec::new(),
            store: "./data".into(),
            metrics: None,
            name: None,
        }
    }

    /// A plain Kafka cluster at `bootstrap`.
    pub fn cluster(mut self, alias: &str, bootstrap: &str) -> Self {
        self.clusters.push(Cluster {
            alias: alias.into(),
            keys: vec![("bootstrap_servers".into(), quoted(bootstrap))],
            client: Vec::new(),
        });
        self
    }

    /// A plain cluster: the tansu broker `t`.
    pub fn tansu(self, alias: &str, t: &Tansu) -> Self {
        self.cluster(alias, &t.listener())
    }

    /// An Event Hubs namespace: the emulator `eh`, its CA trusted. The connection string is read
    /// from `${EVENTHUB_CONNECTION_STRING}` ([`CONNECTION_STRING_VAR`]), as users write it: pass
    /// that variable to `hubmirror` (`Running::start(&topology, &[(CONNECTION_STRING_VAR,
    /// &eh.connection_string())])`).
    pub fn event_hubs(self, alias: &str, eh: &EventHubsEmulator) -> Self {
        self.event_hubs_trusting(alias, &eh.ca_file())
    }

    /// [`TopologyBuilder::event_hubs`] for a namespace whose certificate `ca_file` signs.
    pub fn event_hubs_trusting(mut self, alias: &str, ca_file: &Path) -> Self {
        self.clusters.push(Cluster {
            alias: alias.into(),
            keys: vec![
                (
                    "event_hubs".into(),
                    format!("{{connection_string: \"${{{CONNECTION_STRING_VAR}}}\"}}"),
                ),
                (
                    "tls".into(),
                    format!("{{ca_file: {}}}", quoted(&ca_file.to_string_lossy())),
                ),
            ],
            client: Vec::new(),
        });
        self
    }

    /// An Event Hubs namespace signed in with Entra ID: the emulator `eh` (its bootstrap, its CA
    /// trusted), namespace `namespace`, and `entra` (a YAML flow mapping, e.g.
    /// `{managed_identity: true, identity_endpoint: "http://127.0.0.1:1"}`).
    pub fn event_hubs_entra(
        mut self,
        alias: &str,
        eh: &EventHubsEmulator,
        namespace: &str,
        entra: &str,
    ) -> Self {
        self.clusters.push(Cluster {
            alias: alias.into(),
            keys: vec![
                ("bootstrap_servers".into(), quoted(&eh.bootstrap())),
                (
                    "event_hubs".into(),
                    format!("{{namespace: {}, entra: {entra}}}", quoted(namespace)),
                ),
                (
                    "tls".into(),
                    format!("{{ca_file: {}}}", quoted(&eh.ca_file().to_string_lossy())),
                ),
            ],
            client: Vec::new(),
        });
        self
    }

    /// Sets `key` of cluster `alias` to `yaml` (e.g. `heartbeats`, `false`).
    pub fn set(mut self, alias: &str, key: &str, yaml: &str) -> Self {
        self.cluster_mut(alias).keys.push((key.into(), yaml.into()));
        self
    }

    /// Adds the librdkafka setting `key: "value"` to cluster `alias`'s `client:` map.
    pub fn client(mut self, alias: &str, key: &str, value: &str) -> Self {
        self.cluster_mut(alias)
            .client
            .push((key.into(), quoted(value)));
        self
    }

    /// A flow `source → target` over `topics` (anchored regexes).
    pub fn flow(mut self, source: &str, target: &str, topics: &[&str]) -> Self {
        self.flows.push(vec![
            ("source".into(), source.into()),
            ("target".into(), target.into()),
            ("topics".into(), list(topics)),
        ]);
        self
    }

    /// Sets `key` of the flow added last to `yaml` (e.g. `groups`, `[".*"]`).
    pub fn flow_set(mut self, key: &str, yaml: &str) -> Self {
        self.flows
            .last_mut()
            .expect("flow_set after flow")
            .push((key.into(), yaml.into()));
        self
    }

    /// Sets `replication.<key>` to `yaml` (e.g. `policy`, `identity`).
    pub fn replication(mut self, key: &str, yaml: &str) -> Self {
        self.replication.push((key.into(), yaml.into()));
        self
    }

    /// Sets the deployment's `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets `store.path` (relative paths are relative to the file).
    pub fn store(mut self, path: &str) -> Self {
        self.store = path.into();
        self
    }

    /// Sets `metrics.listen` (by default [`Workdir::topology`] picks a free port).
    pub fn metrics(mut self, listen: &str) -> Self {
        self.metrics = Some(listen.into());
        self
    }

    /// The file's text. Without [`TopologyBuilder::metrics`]: [`Workdir::topology`] adds a
    /// `metrics:` section on a free port.
    pub fn yaml(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.name {
            out.push_str(&format!("name: {}\n", quoted(name)));
        }
        out.push_str("clusters:\n");
        for c in &self.clusters {
            let mut keys = c.keys.clone();
            if !c.client.is_empty() {
                keys.push(("client".into(), map(&c.client)));
            }
            out.push_str(&format!("  {}: {}\n", c.alias, map(&keys)));
        }
        out.push_str("flows:\n");
        if self.flows.is_empty() {
            out.push_str("  []\n");
        }
        for f in &self.flows {
            out.push_str(&format!("  - {}\n", map(f)));
        }
        if !self.replication.is_empty() {
            out.push_str(&format!("replication: {}\n", map(&self.replication)));
        }
        out.push_str(&format!("store: {{path: {}}}\n", quoted(&self.store)));
        if let Some(listen) = &self.metrics {
            out.push_str(&format!("metrics: {{listen: {}}}\n", quoted(listen)));
        }
        out
    }

    /// Writes the file into `work` (see [`Workdir::topology`]) and returns its path.
    pub fn write(&self, work: &Workdir) -> PathBuf {
        work.topology(&self.yaml())
    }

    fn cluster_mut(&mut self, alias: &str) -> &mut Cluster {
        self.clusters
            .iter_mut()
            .find(|c| c.alias == alias)
            .unwrap_or_else(|| panic!("no cluster '{alias}' in the builder yet"))
    }
}

/// `"s"`, escaped for a YAML double-quoted string.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `["a", "b"]`.
pub fn list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", items.join(", "))
}

/// `{k: v, ...}` (values as given).
fn map(pairs: &[(String, String)]) -> String {
    let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_hubs_reads_the_connection_string_from_the_environment() {
        let yaml = TopologyBuilder::new()
            .cluster("onprem", "127.0.0.1:1")
            .event_hubs_trusting("eventhub", Path::new("/certs/ca.pem"))
            .flow("onprem", "eventhub", &["t"])
            .yaml();
        let doc = &yaml_rust2::YamlLoader::load_from_str(&yaml).expect("valid YAML")[0];
        let eh = &doc["clusters"]["eventhub"];
        assert_eq!(
            eh["event_hubs"]["connection_string"].as_str(),
            Some("${EVENTHUB_CONNECTION_STRING}"),
            "{yaml}"
        );
        assert_eq!(eh["tls"]["ca_file"].as_str(), Some("/certs/ca.pem"));
    }

    #[test]
    fn writes_flow_style_yaml() {
        let yaml = TopologyBuilder::new()
            .cluster("a", "127.0.0.1:1")
            .cluster("b", "127.0.0.1:2")
            .set("b", "checkpoints", "false")
            .client("b", "linger.ms", "20")
            .flow("a", "b", &["orders", "x\\..*"])
            .flow_set("groups", "[\".*\"]")
            .replication("policy", "identity")
            .store("./s")
            .yaml();
        assert_eq!(
            yaml,
            "clusters:\n  a: {bootstrap_servers: \"127.0.0.1:1\"}\n  b: {bootstrap_servers: \
             \"127.0.0.1:2\", checkpoints: false, client: {linger.ms: \"20\"}}\nflows:\n  - \
             {source: a, target: b, topics: [\"orders\", \"x\\\\..*\"], groups: [\".*\"]}\n\
             replication: {policy: identity}\nstore: {path: \"./s\"}\n"
        );
    }
}
