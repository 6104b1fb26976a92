//! `deploy/k8s` as Kubernetes would read it, without a cluster or a broker.
//!
//! Every resource the kustomization lists is parsed into the Kubernetes API types of
//! `k8s-openapi` (the ServiceMonitor, a CRD, into a strict local struct), and read back: a field
//! the API does not know (a typo that `k8s-openapi` would silently ignore and the API server
//! would reject) fails. Then the objects are checked against each other and against the topology
//! in the ConfigMap (store on the volume claim, metrics port, mounted secret file), and that
//! topology is run through the real `hubmirror validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret, Service, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

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
    for file in &kustomization.resources {
        let json = read_yaml(&dir.join(file));
        let meta: ObjectMeta = serde_json::from_value(json["metadata"].clone())
            .unwrap_or_else(|e| panic!("{file}: metadata: {e}"));
        match json["kind"].as_str() {
            Some("StatefulSet") => set_once(&mut sts, typed::<StatefulSet>(file, &json), file),
            Some("Service") => set_once(&mut svc, typed::<Service>(file, &json), file),
            Some("Secret") => set_once(&mut sec, typed::<Secret>(file, &json), file),
            Some("ConfigMap") => set_once(&mut cm, typed::<ConfigMap>(file, &json), file),
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

// ---------------------------------------------------------------------------------------------
// Pod helpers
// ---------------------------------------------------------------------------------------------

fn pod(d: &Deploy) -> &PodSpec {
    d.statefulset
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
}

fn container(d: &Deploy) -> &Container {
    let containers = &pod(d).containers;
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn pod_labels(d: &Deploy) -> BTreeMap<String, String> {
    let spec = d.statefulset.spec.as_ref().expect("spec");
    spec.template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// The value following `flag` in the container's args.
fn arg_after<'a>(c: &'a Container, flag: &str) -> &'a str {
    let args = c.args.as_deref().unwrap_or_default();
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("args lack {flag}: {args:?}"));
    args.get(i + 1)
        .unwrap_or_else(|| panic!("{flag} has no value"))
}

/// The mount, volume and key (ConfigMap/Secret entry) that provide the file `path` in the
/// container: the deepest mount covering it, through `subPath` and `items` when present.
fn mounted_file<'a>(d: &'a Deploy, path: &str) -> (bool, &'a Volume, String) {
    let c = container(d);
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    let best = mounts
        .iter()
        .filter_map(|m| {
            let rel = match &m.sub_path {
                Some(sub) if m.mount_path == path => sub.clone(),
                Some(_) => return None,
                None => {
                    let rel = Path::new(path).strip_prefix(&m.mount_path).ok()?;
                    let rel = rel.to_str()?.to_string();
                    (!rel.is_empty()).then_some(rel)?
                }
            };
            Some((m, rel))
        })
        .max_by_key(|(m, _)| m.mount_path.len());
    let (m, rel) = best.unwrap_or_else(|| panic!("no volumeMount provides {path}"));
    let volume = pod(d)
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|v| v.name == m.name)
        .unwrap_or_else(|| panic!("volumeMount {} has no pod volume", m.name));
    let items = volume
        .config_map
        .as_ref()
        .and_then(|v| v.items.as_ref())
        .or_else(|| volume.secret.as_ref().and_then(|v| v.items.as_ref()));
    let key = match items {
        None => rel,
        Some(items) => items
            .iter()
            .find(|i| i.path == rel)
            .map(|i| i.key.clone())
            .unwrap_or_else(|| panic!("volume {} does not project {rel}", volume.name)),
    };
    (m.read_only == Some(true), volume, key)
}

fn secret_value(d: &Deploy, key: &str) -> String {
    d.secret
        .string_data
        .as_ref()
        .and_then(|s| s.get(key))
        .cloned()
        .or_else(|| {
            d.secret
                .data
                .as_ref()
                .and_then(|s| s.get(key))
                .map(|b| String::from_utf8(b.0.clone()).expect("UTF-8 secret"))
        })
        .unwrap_or_else(|| panic!("Secret has no key {key}"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn kustomization_lists_every_manifest_once_with_namespace_and_labels() {
    let d = load();
    let k = &d.kustomization;
    assert_eq!(k.api_version, "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k.kind, "Kustomization");
    assert_eq!(k.namespace, "kafka", "next to Strimzi's my-cluster");

    let listed: BTreeSet<&str> = k.resources.iter().map(String::as_str).collect();
    assert_eq!(listed.len(), k.resources.len(), "a resource listed twice");
    for r in &listed {
        assert!(
            !r.contains('/') && k8s_dir().join(r).is_file(),
            "resource {r} is not a file of deploy/k8s"
        );
    }
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(k8s_dir()).expect("list deploy/k8s") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && name != "kustomization.yaml" {
            on_disk.insert(name);
        }
    }
    let orphans: Vec<&String> = on_disk
        .iter()
        .filter(|f| !listed.contains(f.as_str()))
        .collect();
    assert!(orphans.is_empty(), "not in kustomization.yaml: {orphans:?}");

    let name_label = BTreeMap::from([(
        "app.kubernetes.io/name".to_string(),
        "hubmirror".to_string(),
    )]);
    let mut common = BTreeMap::new();
    for l in &k.labels {
        assert!(
            l.include_selectors,
            "labels must reach the selectors (commonLabels behaviour)"
        );
        common.extend(l.pairs.clone());
    }
    assert!(is_subset(&name_label, &common), "labels: {common:?}");
    // The files carry the common labels themselves, so the selectors checked below are the ones
    // `kubectl apply -k` sends.
    for (file, meta) in &d.metadata {
        let labels = meta.labels.clone().unwrap_or_default();
        assert!(
            is_subset(&common, &labels),
            "{file}: labels {labels:?} lack {common:?}"
        );
        assert!(
            meta.namespace.as_deref().is_none_or(|n| n == k.namespace),
            "{file}: namespace {:?} fights the kustomization's",
            meta.namespace
        );
        assert!(
            meta.name.as_deref().is_some_and(|n| !n.is_empty()),
            "{file}: no name"
        );
    }
}

#[test]
fn statefulset_runs_one_locked_down_pod_matching_the_topology() {
    let d = load();
    let t = topology(&d);
    let spec = d.statefulset.spec.as_ref().expect("spec");
    assert_eq!(
        spec.replicas,
        Some(1),
        "one instance: the store and flows are per process"
    );
    assert_eq!(
        spec.service_name, d.service.metadata.name,
        "governing Service"
    );
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && is_subset(&selector, &pod_labels(&d)),
        "selector {selector:?}"
    );

    let p = pod(&d);
    let grace = p
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > 10,
        "hubmirror needs up to 10 s after SIGTERM; grace is {grace}"
    );

    let c = container(&d);
    assert!(
        c.image
            .as_deref()
            .is_some_and(|i| i.starts_with("hubmirror:")),
        "image {:?}",
        c.image
    );
    let args = c.args.as_deref().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("run"),
        "args {args:?}"
    );
    assert_eq!(arg_after(c, "--log-format"), "json");

    // Metrics port: listening on every interface (kubelet probes and Prometheus come from
    // outside the pod), on the port the container declares.
    assert!(
        t.listen.ip().is_unspecified(),
        "metrics.listen {} is not reachable from outside the pod",
        t.listen
    );
    let ports = c.ports.as_deref().unwrap_or_default();
    let metrics = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .expect("container port named metrics");
    assert_eq!(
        metrics.container_port,
        i32::from(t.listen.port()),
        "metrics port vs metrics.listen"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            IntOrString::String("metrics".into()),
            "{path} port"
        );
    }

    let res = c.resources.as_ref().expect("resources");
    for (what, map) in [("requests", &res.requests), ("limits", &res.limits)] {
        let map = map.as_ref().unwrap_or_else(|| panic!("no {what}"));
        for r in ["cpu", "memory"] {
            assert!(map.contains_key(r), "{what} lack {r}");
        }
    }

    let psc = p.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_group, Some(65532));
    assert_eq!(
        psc.fs_group,
        Some(65532),
        "the volume must be writable by the user"
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let csc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(csc.read_only_root_filesystem, Some(true));
    assert_eq!(csc.allow_privilege_escalation, Some(false));
    let drop = csc
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.clone())
        .unwrap_or_default();
    assert!(
        drop.iter().any(|d| d == "ALL"),
        "capabilities.drop {drop:?}"
    );

    // Every mount has a source: a pod volume or a claim template.
    let volumes = p.volumes.as_deref().unwrap_or_default();
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    let claim_names: Vec<&str> = claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    for m in mounts {
        let in_pod = volumes.iter().any(|v| v.name == m.name);
        let in_claims = claim_names.contains(&m.name.as_str());
        assert!(
            in_pod != in_claims,
            "volumeMount {} needs exactly one source",
            m.name
        );
    }

    // The topology file: the ConfigMap's key, where --config points.
    let (ro, vol, key) = mounted_file(&d, arg_after(c, "--config"));
    assert!(ro, "the topology mount is read-only");
    assert_eq!(
        vol.config_map.as_ref().map(|c| c.name.as_str()),
        d.configmap.metadata.name.as_deref(),
        "--config is not the ConfigMap"
    );
    assert_eq!(key, "topology.yaml");

    // The connection string: the Secret's key, where the topology's file is.
    let (ro, vol, key) = mounted_file(&d, &t.secret_file);
    assert!(ro, "the secret mount is read-only");
    assert_eq!(
        vol.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
        d.secret.metadata.name.as_deref(),
        "{} is not the Secret",
        t.secret_file
    );
    assert_eq!(key, "eventhubspassword");
    secret_value(&d, &key);

    // The store: on the claim template, not the read-only root or an emptyDir.
    let store = mounts
        .iter()
        .find(|m| m.mount_path == t.store_path)
        .unwrap_or_else(|| panic!("no volumeMount at store.path {}", t.store_path));
    assert_ne!(store.read_only, Some(true), "the store must be writable");
    let claim = claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(store.name.as_str()))
        .unwrap_or_else(|| panic!("store mount {} is not a volumeClaimTemplate", store.name));
    let cspec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(
        cspec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    let storage = cspec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    assert!(storage.is_some(), "the claim requests no storage");

    // A writable /tmp next to the read-only root.
    let tmp = mounts
        .iter()
        .find(|m| m.mount_path == "/tmp")
        .expect("a /tmp mount");
    let tmp_vol = volumes
        .iter()
        .find(|v| v.name == tmp.name)
        .expect("/tmp volume");
    assert!(tmp_vol.empty_dir.is_some(), "/tmp is an emptyDir");
}

#[test]
fn service_and_servicemonitor_reach_the_metrics_port() {
    let d = load();
    let t = topology(&d);
    let spec = d.service.spec.as_ref().expect("service spec");
    assert!(
        matches!(spec.type_.as_deref(), None | Some("ClusterIP")),
        "type {:?}",
        spec.type_
    );
    let selector = spec.selector.clone().unwrap_or_default();
    assert!(!selector.is_empty(), "the Service selects nothing");
    assert!(
        is_subset(&selector, &pod_labels(&d)),
        "Service selector {selector:?} does not match the pod labels {:?}",
        pod_labels(&d)
    );
    let ports = spec.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .expect("Service port named metrics");
    assert_eq!(port.port, i32::from(t.listen.port()));
    assert!(
        matches!(&port.target_port, Some(IntOrString::String(s)) if s == "metrics")
            || port.target_port == Some(IntOrString::Int(i32::from(t.listen.port()))),
        "targetPort {:?}",
        port.target_port
    );

    let sm = &d.servicemonitor;
    assert_eq!(sm.kind, "ServiceMonitor");
    assert_eq!(sm.api_version, "monitoring.coreos.com/v1");
    assert!(sm.spec.selector.match_expressions.is_none());
    let sel = sm.spec.selector.match_labels.clone().unwrap_or_default();
    let svc_labels = d.service.metadata.labels.clone().unwrap_or_default();
    assert!(
        !sel.is_empty() && is_subset(&sel, &svc_labels),
        "ServiceMonitor selector {sel:?} vs Service labels {svc_labels:?}"
    );
    assert!(!sm.spec.endpoints.is_empty());
    for e in &sm.spec.endpoints {
        assert_eq!(
            e.port, "metrics",
            "endpoint port is the Service's port name"
        );
        assert_eq!(e.path, "/metrics");
        assert_eq!(e.interval, "30s");
    }
}

fn run_validate(config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubmirror"))
        .arg("validate")
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run hubmirror");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn configmap_topology_validates_with_the_mounted_secret() {
    let d = load();
    let t = topology(&d);

    // The seed scenario: Strimzi's testeh <-> the event hub testeh, both ways.
    let aliases: BTreeSet<&str> = t.aliases.iter().map(String::as_str).collect();
    assert_eq!(aliases, BTreeSet::from(["onprem", "eventhub"]));
    let testeh = vec!["testeh".to_string()];
    assert_eq!(t.flows.len(), 2, "flows {:?}", t.flows);
    assert_eq!(
        (t.flows[0].0.as_str(), t.flows[0].1.as_str()),
        ("onprem", "eventhub")
    );
    assert_eq!(
        (t.flows[1].0.as_str(), t.flows[1].1.as_str()),
        ("eventhub", "onprem")
    );
    assert!(
        t.flows.iter().all(|f| f.2 == testeh),
        "both flows carry testeh"
    );
    assert_eq!(
        t.flows[0].3,
        vec![".*".to_string()],
        "groups of onprem → eventhub"
    );

    // The pod mounts the Secret at a directory (the mount providing `connection_string_file`).
    // Offline there is no such directory, so the test moves that one path prefix — and nothing
    // else in the topology — into a temporary directory holding the Secret's placeholder under
    // the same key: `validate` then reads exactly what the pod would.
    let c = container(&d);
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    let (_, _, key) = mounted_file(&d, &t.secret_file);
    let mount_dir = mounts
        .iter()
        .filter(|m| {
            m.sub_path.is_none() && t.secret_file.starts_with(&format!("{}/", m.mount_path))
        })
        .map(|m| m.mount_path.as_str())
        .max_by_key(|p| p.len())
        .expect("secret mount");
    let prefix = format!("{mount_dir}/");
    assert_eq!(
        t.text.matches(&prefix).count(),
        1,
        "the topology should name the secret mount {prefix} only in connection_string_file"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir(&secrets).expect("mkdir");
    let secret_path = secrets.join(
        t.secret_file
            .strip_prefix(&prefix)
            .expect("under the mount"),
    );
    let text = t.text.replace(&prefix, &format!("{}/", secrets.display()));
    let config = tmp.path().join("topology.yaml");
    std::fs::write(&config, &text).expect("write topology");
    let value = secret_value(&d, &key);
    std::fs::write(&secret_path, format!("{value}\n")).expect("write secret");

    let (code, stdout, stderr) = run_validate(&config);
    assert_eq!(code, 0, "validate failed:\n{stderr}");
    for a in &t.aliases {
        assert!(
            stdout.contains(&format!("\n  {a}:\n")),
            "cluster {a} missing:\n{stdout}"
        );
    }
    for (s, g, topics, _) in &t.flows {
        assert!(
            stdout.contains(&format!("\n  {s} → {g}:\n")),
            "flow {s} → {g} missing:\n{stdout}"
        );
        for topic in topics {
            assert!(
                stdout.contains(&format!("{topic} → {topic}\n")),
                "identity naming:\n{stdout}"
            );
        }
    }
    for want in [
        "bootstrap: my-cluster-kafka-bootstrap:9092".to_string(),
        format!("path: {}\n", t.store_path),
        format!("listen: {}\n", t.listen),
    ] {
        assert!(stdout.contains(&want), "missing {want:?}:\n{stdout}");
    }
    let shared_key = value
        .split(';')
        .find_map(|p| p.strip_prefix("SharedAccessKey="))
        .expect("the placeholder has a SharedAccessKey");
    assert!(
        !stdout.contains(shared_key) && !stderr.contains(shared_key),
        "the key leaked"
    );

    // Without the file, validate must fail: the path is really read.
    std::fs::remove_file(&secret_path).expect("remove secret");
    let (code, stdout, stderr) = run_validate(&config);
    assert_eq!(
        code, 2,
        "validate without the secret file: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&secret_path.display().to_string()),
        "the error names the missing file:\n{stderr}"
    );
}

#[test]
fn dockerfile_agrees_with_the_statefulset() {
    let d = load();
    let t = topology(&d);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("read deploy/Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let last = |instr: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l.starts_with(&format!("{instr} ")))
            .map(|l| l[instr.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("Dockerfile has no {instr}"))
    };
    let psc = pod(&d)
        .security_context
        .as_ref()
        .expect("pod securityContext");
    let user = format!(
        "{}:{}",
        psc.run_as_user.expect("runAsUser"),
        psc.run_as_group.expect("runAsGroup")
    );
    assert_eq!(last("USER"), user, "image user vs pod securityContext");
    assert!(
        last("EXPOSE")
            .split_whitespace()
            .any(|p| p == t.listen.port().to_string()),
        "EXPOSE {} lacks the metrics port",
        last("EXPOSE")
    );
    assert_eq!(last("ENTRYPOINT"), r#"["/usr/local/bin/hubmirror"]"#);
    let cmd: Vec<String> = serde_json::from_str(&last("CMD")).expect("CMD in exec form");
    let pos = cmd
        .iter()
        .position(|a| a == "--config")
        .expect("CMD --config");
    assert_eq!(
        cmd.get(pos + 1).map(String::as_str),
        Some(arg_after(container(&d), "--config"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FROM ") && l.contains("-slim")),
        "a slim runtime stage"
    );
}

/// When kubectl is installed, `kubectl kustomize` must render the directory, and the result must
/// be the files plus the namespace: what the other tests check is what gets applied.
#[test]
fn kubectl_kustomize_renders_the_files_unchanged_but_for_the_namespace() {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(k8s_dir())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: kubectl is not installed ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = load();
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let docs = YamlLoader::load_from_str(&text).expect("rendered YAML");
    assert_eq!(docs.len(), d.raw.len(), "one rendered object per resource");
    let mut seen = BTreeSet::new();
    for doc in &docs {
        let mut rendered = yaml_to_json(doc, "kubectl kustomize");
        let kind = rendered["kind"].as_str().expect("kind").to_string();
        let name = rendered["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        assert_eq!(rendered["metadata"]["namespace"], "kafka", "{kind}/{name}");
        rendered["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("namespace");
        let (file, raw) = d
            .raw
            .iter()
            .find(|(_, v)| v["kind"] == kind.as_str() && v["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{kind}/{name} is in no file"));
        assert_eq!(
            &rendered, raw,
            "{file}: kustomize changes more than the namespace"
        );
        assert!(seen.insert(file.clone()), "{file} rendered twice");
    }
}
