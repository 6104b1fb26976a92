//! Reading the pod template of the StatefulSet: its spec, container, labels and args, the files
//! its mounts provide, and the Secret's values.

use super::*;

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

pub(crate) fn pod(d: &Deploy) -> &PodSpec {
    d.statefulset
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
}

pub(crate) fn container(d: &Deploy) -> &Container {
    let containers = &pod(d).containers;
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

pub(crate) fn pod_labels(d: &Deploy) -> BTreeMap<String, String> {
    let spec = d.statefulset.spec.as_ref().expect("spec");
    spec.template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

pub(crate) fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// The value following `flag` in the container's args.
pub(crate) fn arg_after<'a>(c: &'a Container, flag: &str) -> &'a str {
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
pub(crate) fn mounted_file<'a>(d: &'a Deploy, path: &str) -> (bool, &'a Volume, String) {
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

pub(crate) fn secret_value(d: &Deploy, key: &str) -> String {
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
