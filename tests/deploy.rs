//! `deploy/k8s` as Kubernetes would read it, without a cluster or a broker.
//!
//! Every resource the kustomization lists is parsed into the Kubernetes API types of
//! `k8s-openapi` (the ServiceMonitor, a CRD, into a strict local struct), and read back: a field
//! the API does not know (a typo that `k8s-openapi` would silently ignore and the API server
//! would reject) fails. Then the objects are checked against each other and against the topology
//! in the ConfigMap (store on the volume claim, metrics port, mounted secret file), and that
//! topology is run through the real `hubmirror validate`.
//!
//! The tests, by concern: `kustomize` (the kustomization and what `kubectl kustomize` renders),
//! `objects` (the StatefulSet, Service and ServiceMonitor), `fleet` (three instances: replicas,
//! instance names, a store per pod, spreading, the disruption budget), `configmap` (the topology and the
//! Secret it reads, through `hubmirror validate`), `image` (the Dockerfile and its build
//! context) and `workload_identity` (the overlay `deploy/k8s-workload-identity`: Entra ID instead
//! of the Secret); `pod` reads the pod template for them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

#[path = "deploy/configmap.rs"]
mod configmap;
#[path = "deploy/fleet.rs"]
mod fleet;
#[path = "deploy/image.rs"]
mod image;
#[path = "deploy/kustomize.rs"]
mod kustomize;
#[path = "deploy/objects.rs"]
mod objects;
#[path = "deploy/pod.rs"]
mod pod;
#[path = "deploy/workload_identity.rs"]
mod workload_identity;

use pod::*;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s")
}

// ---------------------------------------------------------------------------------------------
// YAML → JSON (serde_yaml is deprecated; the project reads YAML with yaml-rust2)
// ---------------------------------------------------------------------------------------------

/// The single YAML document of `text` as a JSON value (`what` names it in messages).
fn yaml_doc(text: &str, what: &str) -> Value {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(docs.len(), 1, "{what}: expected exactly one YAML document");
    yaml_to_json(&docs[0], what)
}

fn yaml_to_json(y: &Yaml, at: &str) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) => {
            let f: f64 = s
                .parse()
                .unwrap_or_else(|_| panic!("{at}: {s:?} is not a finite number"));
            Value::from(f)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{at}[{i}]")))
                .collect(),
        ),
        Yaml::Hash(h) => {
            let mut map = serde_json::Map::new();
            for (k, v) in h {
                let Yaml::String(key) = k else {
                    panic!("{at}: mapping key {k:?} is not a string");
                };
                let value = yaml_to_json(v, &format!("{at}.{key}"));
                map.insert(key.clone(), value);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => panic!("{at}: YAML aliases are not supported"),
    }
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    yaml_doc(&text, &path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// Typed parsing
// ---------------------------------------------------------------------------------------------

/// Deserializes `json` into `T`, then serializes it back and requires every field of the file to
/// survive: `k8s-openapi` ignores unknown fields, the API server (strict field validation) does
/// not.
fn checked<T: DeserializeOwned + Serialize>(file: &str, json: &Value) -> T {
    let t: T = serde_path_to_error::deserialize(json.clone())
        .unwrap_or_else(|e| panic!("{file}: not a valid {}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&t).expect("serialize");
    assert_known_fields(file, "", json, &back);
    t
}

fn assert_known_fields(file: &str, path: &str, written: &Value, read: &Value) {
    match (written, read) {
        (Value::Object(w), Value::Object(r)) => {
            for (k, v) in w {
                let p = format!("{path}.{k}");
                let Some(rv) = r.get(k) else {
                    panic!(
                        "{file}: `{p}` is not a field of this object (misspelled or misplaced?)"
                    );
                };
                assert_known_fields(file, &p, v, rv);
            }
        }
        (Value::Array(w), Value::Array(r)) => {
            assert_eq!(w.len(), r.len(), "{file}: `{path}` changed length");
            for (i, (wv, rv)) in w.iter().zip(r).enumerate() {
                assert_known_fields(file, &format!("{path}[{i}]"), wv, rv);
            }
        }
        _ => assert_eq!(written, read, "{file}: `{path}` reads as a different value"),
    }
}

/// A built-in Kubernetes object: apiVersion and kind must be the type's.
fn typed<T: Resource + DeserializeOwned + Serialize>(file: &str, json: &Value) -> T {
    assert_eq!(json["apiVersion"], T::API_VERSION, "{file}: apiVersion");
    assert_eq!(json["kind"], T::KIND, "{file}: kind");
    checked(file, json)
}

/// The fields of the Prometheus operator's ServiceMonitor that these manifests use; anything
/// else is refused.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<ServiceMonitorEndpoint>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorEndpoint {
    port: String,
    path: String,
    interval: String,
    #[serde(default)]
    honor_labels: bool,
}

/// `kustomization.yaml`, strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: String,
    labels: Vec<KustomizeLabels>,
    resources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KustomizeLabels {
    pairs: BTreeMap<String, String>,
    #[serde(default)]
    include_selectors: bool,
}

/// Everything in `deploy/k8s`, parsed.
struct Deploy {
    kustomization: Kustomization,
    /// Raw JSON of each listed resource, by file name.
    raw: BTreeMap<String, Value>,
    /// Metadata of each listed resource, by file name.
    metadata: BTreeMap<String, ObjectMeta>,
    statefulset: StatefulSet,
    service: Service,
    secret: Secret,
    configmap: ConfigMap,
    servicemonitor: ServiceMonitor,
    pdb: PodDisruptionBudget,
}

fn set_once<T>(slot: &mut Option<T>, value: T, file: &str) {
    assert!(
        slot.replace(value).is_none(),
        "{file}: a second object of this kind"
    );
}

fn load() -> Deploy {
    let dir = k8s_dir();
    let kustomization: Kustomization = checked_kustomization(&dir);
    let mut raw = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let (mut sts, mut svc, mut sec, mut cm, mut sm) = (None, None, None, None, None);
    let mut pdb = None;
    for file in &kustomization.resources {
        let json = read_yaml(&dir.join(file));
        let meta: ObjectMeta = serde_json::from_value(json["metadata"].clone())
            .unwrap_or_else(|e| panic!("{file}: metadata: {e}"));
        match json["kind"].as_str() {
            Some("StatefulSet") => set_once(&mut sts, typed::<StatefulSet>(file, &json), file),
            Some("Service") => set_once(&mut svc, typed::<Service>(file, &json), file),
            Some("Secret") => set_once(&mut sec, typed::<Secret>(file, &json), file),
            Some("ConfigMap") => set_once(&mut cm, typed::<ConfigMap>(file, &json), file),
            Some("PodDisruptionBudget") => {
                set_once(&mut pdb, typed::<PodDisruptionBudget>(file, &json), file)
            }
            Some("ServiceMonitor") => {
                assert_eq!(json["apiVersion"], "monitoring.coreos.com/v1", "{file}");
                set_once(&mut sm, checked::<ServiceMonitor>(file, &json), file)
            }
            other => panic!("{file}: kind {other:?} is not checked by tests/deploy.rs: add it"),
        }
        metadata.insert(file.clone(), meta);
        raw.insert(file.clone(), json);
    }
    Deploy {
        kustomization,
        raw,
        metadata,
        statefulset: sts.expect("the kustomization lists no StatefulSet"),
        service: svc.expect("the kustomization lists no Service"),
        secret: sec.expect("the kustomization lists no Secret"),
        configmap: cm.expect("the kustomization lists no ConfigMap"),
        servicemonitor: sm.expect("the kustomization lists no ServiceMonitor"),
        pdb: pdb.expect("the kustomization lists no PodDisruptionBudget"),
    }
}

fn checked_kustomization(dir: &Path) -> Kustomization {
    let json = read_yaml(&dir.join("kustomization.yaml"));
    serde_path_to_error::deserialize(json).unwrap_or_else(|e| panic!("kustomization.yaml: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The topology in the ConfigMap
// ---------------------------------------------------------------------------------------------

/// What the manifests must agree with, read from the ConfigMap's `topology.yaml`.
struct Topology {
    text: String,
    store_path: String,
    listen: SocketAddr,
    /// `connection_string_file` of the (one) Event Hubs cluster.
    secret_file: String,
    aliases: Vec<String>,
    /// (source, target, topics, groups) of each flow.
    flows: Vec<(String, String, Vec<String>, Vec<String>)>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn topology(d: &Deploy) -> Topology {
    let text = d
        .configmap
        .data
        .as_ref()
        .and_then(|data| data.get("topology.yaml"))
        .expect("ConfigMap has no key topology.yaml")
        .clone();
    let t = yaml_doc(&text, "configmap.yaml: topology.yaml");
    let clusters = t["clusters"].as_object().expect("clusters");
    let secret_files: Vec<&str> = clusters
        .values()
        .filter_map(|c| c["event_hubs"]["connection_string_file"].as_str())
        .collect();
    assert_eq!(
        secret_files.len(),
        1,
        "one Event Hubs cluster reading its connection string from a file"
    );
    let flows = t["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| {
            (
                f["source"].as_str().expect("source").to_string(),
                f["target"].as_str().expect("target").to_string(),
                strings(&f["topics"]),
                strings(&f["groups"]),
            )
        })
        .collect();
    Topology {
        store_path: t["store"]["path"].as_str().expect("store.path").to_string(),
        listen: t["metrics"]["listen"]
            .as_str()
            .expect("metrics.listen")
            .parse()
            .expect("metrics.listen is ip:port"),
        secret_file: secret_files[0].to_string(),
        aliases: clusters.keys().cloned().collect(),
        flows,
        text,
    }
}
