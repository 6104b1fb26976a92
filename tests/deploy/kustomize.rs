//! The kustomization: every manifest listed once, with the namespace and common labels, and
//! `kubectl kustomize` changing nothing else.

use super::*;

use std::collections::BTreeSet;
use std::process::Command;

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
