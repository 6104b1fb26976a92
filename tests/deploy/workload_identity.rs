//! `deploy/k8s-workload-identity`: the overlay for an Event Hubs namespace with local
//! authentication disabled. It is rendered offline the way kustomize applies its kinds of patch
//! (and, when kubectl is installed, compared with `kubectl kustomize`), every object is parsed into
//! the Kubernetes API types, the four intended changes are checked — and that nothing else
//! changes — and the topology is validated under the variables the workload identity webhook
//! sets.

use super::*;

use std::collections::BTreeSet;
use std::process::Command;

use hubmirror::topology::entra::EntraCredential;
use k8s_openapi::api::core::v1::ServiceAccount;

const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
const USE_LABEL: &str = "azure.workload.identity/use";
/// The base's Secret volume (and mount) that the overlay removes.
const SECRET_VOLUME: &str = "eventhubs";

fn overlay_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s-workload-identity")
}

/// The overlay's `kustomization.yaml`, strictly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Overlay {
    api_version: String,
    kind: String,
    namespace: String,
    resources: Vec<String>,
    patches: Vec<OverlayPatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayPatch {
    path: String,
    target: Option<PatchTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTarget {
    group: String,
    version: String,
    kind: String,
    name: String,
}

fn has_array(v: &Value) -> bool {
    match v {
        Value::Array(_) => true,
        Value::Object(m) => m.values().any(has_array),
        _ => false,
    }
}

fn same_object(v: &Value, kind: &str, name: &str) -> bool {
    v["kind"] == kind && v["metadata"]["name"] == name
}

/// The base objects (in the base's order) with the overlay applied: JSON 6902 patches on their
/// target, `$patch: delete` removing its object, other strategic-merge patches merged (they hold
/// no list, so a JSON merge patch is what kustomize does), then the overlay's own resources.
fn render(base: &Deploy) -> (Overlay, Vec<Value>) {
    let dir = overlay_dir();
    let json = read_yaml(&dir.join("kustomization.yaml"));
    let overlay: Overlay = serde_path_to_error::deserialize(json)
        .unwrap_or_else(|e| panic!("k8s-workload-identity/kustomization.yaml: {e}"));
    let mut objects: Vec<Value> = base
        .kustomization
        .resources
        .iter()
        .map(|f| base.raw[f].clone())
        .collect();
    for p in &overlay.patches {
        let file = format!("k8s-workload-identity/{}", p.path);
        let text =
            std::fs::read_to_string(dir.join(&p.path)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(docs.len(), 1, "{file}: one YAML document");
        let patch = yaml_to_json(&docs[0], &file);
        match &p.target {
            Some(t) => {
                let ops: json_patch::Patch = serde_json::from_value(patch)
                    .unwrap_or_else(|e| panic!("{file}: not a JSON patch: {e}"));
                let matching: Vec<&mut Value> = objects
                    .iter_mut()
                    .filter(|o| {
                        o["apiVersion"] == format!("{}/{}", t.group, t.version).as_str()
                            && same_object(o, &t.kind, &t.name)
                    })
                    .collect();
                assert_eq!(matching.len(), 1, "{file}: target {t:?}");
                for o in matching {
                    json_patch::patch(o, &ops).unwrap_or_else(|e| panic!("{file}: {e}"));
                }
            }
            None => {
                let kind = patch["kind"].as_str().expect("kind").to_string();
                let name = patch["metadata"]["name"]
                    .as_str()
                    .expect("name")
                    .to_string();
                let before = objects.len();
                if patch.get("$patch").is_some() {
                    assert_eq!(patch["$patch"], "delete", "{file}");
                    objects.retain(|o| !same_object(o, &kind, &name));
                    assert_eq!(objects.len(), before - 1, "{file}: deletes one object");
                } else {
                    assert!(
                        !has_array(&patch),
                        "{file}: lists merge by key in a strategic merge patch; this test \
                         merges maps only"
                    );
                    let target = objects
                        .iter_mut()
                        .find(|o| same_object(o, &kind, &name))
                        .unwrap_or_else(|| panic!("{file}: no {kind}/{name} in the base"));
                    json_patch::merge(target, &patch);
                }
            }
        }
    }
    for r in overlay.resources.iter().filter(|r| !r.starts_with("..")) {
        objects.push(read_yaml(&dir.join(r)));
    }
    (overlay, objects)
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = find(objects, kind);
    assert_eq!(found.len(), 1, "one {kind} in the overlay");
    found[0]
}

#[test]
fn overlay_lists_the_base_and_its_own_files() {
    let base = load();
    let (o, _) = render(&base);
    assert_eq!(o.api_version, "kustomize.config.k8s.io/v1beta1");
    assert_eq!(o.kind, "Kustomization");
    assert_eq!(o.namespace, base.kustomization.namespace);
    assert_eq!(o.resources[0], "../k8s", "the overlay builds on deploy/k8s");
    let mut own: BTreeSet<String> = o.resources[1..].iter().cloned().collect();
    own.extend(o.patches.iter().map(|p| p.path.clone()));
    assert_eq!(
        own.len(),
        o.resources.len() - 1 + o.patches.len(),
        "a file used twice"
    );
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(overlay_dir()).expect("list the overlay") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            on_disk.insert(name);
        }
    }
    assert_eq!(
        own, on_disk,
        "every file of the overlay is used, and exists"
    );
}

#[test]
fn overlay_adds_the_service_account_and_label_and_drops_the_secret_only() {
    let base = load();
    let (_, objects) = render(&base);
    // Every object parses into its API type with no unknown field.
    let sa: ServiceAccount = typed("serviceaccount.yaml", one(&objects, "ServiceAccount"));
    let sts: StatefulSet = typed("statefulset (patched)", one(&objects, "StatefulSet"));
    let _: ConfigMap = typed("configmap (patched)", one(&objects, "ConfigMap"));
    let _: Service = typed("service", one(&objects, "Service"));
    let _: PodDisruptionBudget = typed("pdb", one(&objects, "PodDisruptionBudget"));
    let _: ServiceMonitor = checked("servicemonitor", one(&objects, "ServiceMonitor"));
    assert!(
        find(&objects, "Secret").is_empty(),
        "no Secret: no connection string"
    );

    // The ServiceAccount names an identity and carries the common labels.
    let sa_meta = &sa.metadata;
    let client_id = sa_meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLIENT_ID_ANNOTATION))
        .expect("the ServiceAccount's client-id annotation");
    assert_eq!(client_id.len(), 36, "a GUID: {client_id}");
    let common: BTreeMap<String, String> = base
        .kustomization
        .labels
        .iter()
        .flat_map(|l| l.pairs.clone())
        .collect();
    assert!(is_subset(
        &common,
        &sa_meta.labels.clone().unwrap_or_default()
    ));

    // The pods run as it, with the webhook's label, and reference no Secret.
    let spec = sts.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), sa_meta.name.as_deref());
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(labels.get(USE_LABEL).map(String::as_str), Some("true"));
    assert!(is_subset(&common, &labels), "pod labels {labels:?}");
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(
        !selector.contains_key(USE_LABEL),
        "the selector is unchanged"
    );
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    assert!(
        volumes.iter().all(|v| v.secret.is_none()),
        "a Secret volume"
    );
    let c = &pod.containers[0];
    assert!(c
        .volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .all(|m| m.name != SECRET_VOLUME));
    let env = c.env.as_deref().unwrap_or_default();
    assert!(env.iter().all(|e| e
        .value_from
        .as_ref()
        .is_none_or(|f| f.secret_key_ref.is_none())));
    assert!(c.env_from.is_none());

    // Nothing else changes: undo the intended changes and find the base again.
    let mut rendered = serde_json::to_value(&sts).expect("json");
    rendered["spec"]["template"]["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove(USE_LABEL);
    rendered["spec"]["template"]["spec"]
        .as_object_mut()
        .expect("pod")
        .remove("serviceAccountName");
    let mut want = serde_json::to_value(&base.statefulset).expect("json");
    let pod_json = &mut want["spec"]["template"]["spec"];
    pod_json["volumes"]
        .as_array_mut()
        .expect("volumes")
        .retain(|v| v["name"] != SECRET_VOLUME);
    pod_json["containers"][0]["volumeMounts"]
        .as_array_mut()
        .expect("mounts")
        .retain(|m| m["name"] != SECRET_VOLUME);
    assert_eq!(rendered, want, "the StatefulSet changes only as intended");
    for o in &objects {
        let kind = o["kind"].as_str().expect("kind");
        let name = o["metadata"]["name"].as_str().expect("name");
        if matches!(kind, "StatefulSet" | "ServiceAccount") {
            continue;
        }
        let (file, b) = base
            .raw
            .iter()
            .find(|(_, b)| same_object(b, kind, name))
            .unwrap_or_else(|| panic!("{kind}/{name} is not in the base"));
        if kind == "ConfigMap" {
            let mut a = o.clone();
            let mut b = b.clone();
            a["data"] = Value::Null;
            b["data"] = Value::Null;
            assert_eq!(a, b, "{file}: only the topology changes");
            continue;
        }
        assert_eq!(o, b, "{file}: changed by the overlay");
    }
}

fn overlay_topology(objects: &[Value]) -> String {
    one(objects, "ConfigMap")["data"]["topology.yaml"]
        .as_str()
        .expect("topology.yaml")
        .to_string()
}

#[test]
fn overlay_topology_signs_in_with_workload_identity_and_changes_nothing_else() {
    let base = load();
    let (_, objects) = render(&base);
    let text = overlay_topology(&objects);
    let sa: ServiceAccount = typed("serviceaccount.yaml", one(&objects, "ServiceAccount"));
    let client_id =
        sa.metadata.annotations.as_ref().expect("annotations")[CLIENT_ID_ANNOTATION].clone();

    // The YAML is the base's but for the Event Hubs cluster's credentials.
    let mut mine = yaml_doc(&text, "overlay topology.yaml");
    let mut theirs = yaml_doc(&topology(&base).text, "base topology.yaml");
    let eh = mine["clusters"]["eventhub"]["event_hubs"].take();
    theirs["clusters"]["eventhub"]["event_hubs"].take();
    assert_eq!(mine, theirs, "the topology changes only event_hubs");
    assert_eq!(eh["entra"]["workload_identity"], true, "{eh}");
    assert!(
        !text.contains("/etc/hubmirror/secrets"),
        "the topology still names the Secret mount"
    );
    let namespace = eh["namespace"].as_str().expect("event_hubs.namespace");

    // Parsed as the pod would, with the webhook's variables.
    let tmp = tempfile::tempdir().expect("tempdir");
    let token_file = tmp.path().join("azure-identity-token");
    std::fs::write(&token_file, "eyJfederated.token.value").expect("token");
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("AZURE_TENANT_ID", tenant.to_string()),
        ("AZURE_CLIENT_ID", client_id.clone()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AZURE_AUTHORITY_HOST",
            "https://login.microsoftonline.com/".to_string(),
        ),
    ]);
    let config = tmp.path().join("topology.yaml");
    std::fs::write(&config, &text).expect("write topology");
    let t = hubmirror::topology::parse_with_env(&config, &text, &|k| vars.get(k).cloned())
        .unwrap_or_else(|e| panic!("the overlay's topology: {e}"));
    let cluster = &t.clusters["eventhub"];
    let hubs = cluster.event_hubs.as_ref().expect("event_hubs");
    assert_eq!(hubs.namespace_host, namespace);
    assert_eq!(cluster.bootstrap_servers, format!("{namespace}:9093"));
    let entra = hubs.entra().expect("entra");
    assert_eq!(entra.authority_host, "https://login.microsoftonline.com");
    match &entra.credential {
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id: c,
            token_file: f,
        } => {
            assert_eq!(tenant_id, tenant);
            assert_eq!(c, &client_id, "the ServiceAccount's client id");
            assert_eq!(f, &token_file);
        }
        other => panic!("not workload identity: {other:?}"),
    }
    assert!(t.clusters["onprem"].event_hubs.is_none());

    // The real `hubmirror validate`, with the same variables.
    let validate = |with_token: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubmirror"));
        cmd.arg("validate").arg("--config").arg(&config);
        cmd.env_remove("RUST_LOG");
        for (k, v) in &vars {
            if with_token || *k != "AZURE_FEDERATED_TOKEN_FILE" {
                cmd.env(k, v);
            } else {
                cmd.env_remove(k);
            }
        }
        let out = cmd.output().expect("run hubmirror");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = validate(true);
    assert_eq!(code, 0, "validate failed:\n{stderr}");
    for want in [
        "auth: SASL OAUTHBEARER, Entra ID workload identity".to_string(),
        format!("application {client_id} in tenant {tenant}"),
        format!("federated token from {}", token_file.display()),
        format!("scope https://{namespace}/.default"),
        format!("bootstrap: {namespace}:9093"),
        "security.protocol: SASL_SSL".to_string(),
    ] {
        assert!(stdout.contains(&want), "missing {want:?}:\n{stdout}");
    }
    assert!(
        !stdout.contains("federated.token") && !stderr.contains("federated.token"),
        "the federated token leaked"
    );
    // Outside a pod the webhook's file is missing: validate says where it should come from.
    let (code, stdout, stderr) = validate(false);
    assert_eq!(
        code, 2,
        "without AZURE_FEDERATED_TOKEN_FILE:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("AZURE_FEDERATED_TOKEN_FILE"), "{stderr}");
}

/// When kubectl is installed, `kubectl kustomize` renders the overlay exactly as [`render`] does,
/// plus the namespace.
#[test]
fn kubectl_kustomize_renders_the_overlay_as_tested() {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay_dir())
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
    let base = load();
    let (o, objects) = render(&base);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let docs = YamlLoader::load_from_str(&text).expect("rendered YAML");
    assert_eq!(docs.len(), objects.len(), "one rendered object per object");
    for doc in &docs {
        let mut rendered = yaml_to_json(doc, "kubectl kustomize");
        let kind = rendered["kind"].as_str().expect("kind").to_string();
        let name = rendered["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        assert_eq!(
            rendered["metadata"]["namespace"],
            o.namespace.as_str(),
            "{kind}/{name}"
        );
        rendered["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("namespace");
        let want = objects
            .iter()
            .find(|v| same_object(v, &kind, &name))
            .unwrap_or_else(|| panic!("{kind}/{name} is not in the offline rendering"));
        assert_eq!(
            &rendered, want,
            "{kind}/{name}: kustomize renders it differently"
        );
    }
}
