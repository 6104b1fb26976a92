//! Picking the mirror resource (`KafkaMirrorMaker` or `KafkaMirrorMaker2`) out of a
//! multi-document Strimzi file, with the Secrets beside it, and handing it to its importer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::model::Imported;
use super::strimzi::{kafka_mirror_maker, Ctx};
use super::yaml::Doc;
use super::{strimzi_mm2, unsupported, ImportError, Options};

/// The two kinds read.
const KINDS: [&str; 2] = ["KafkaMirrorMaker", "KafkaMirrorMaker2"];

/// Imports the one `KafkaMirrorMaker` or `KafkaMirrorMaker2` of `docs`.
pub(crate) fn import(
    file: &Path,
    docs: &[Doc],
    options: &Options,
) -> Result<Imported, ImportError> {
    let mirrors: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind().is_some_and(|k| KINDS.contains(&k)))
        .collect();
    let Some(doc) = mirrors.first() else {
        let kinds: BTreeSet<&str> = docs.iter().filter_map(Doc::kind).collect();
        let kinds: Vec<&str> = kinds.into_iter().collect();
        return Err(unsupported(
            file,
            &format!("no mirror resource: found kind {}", kinds.join(", ")),
        ));
    };
    if let Some(second) = mirrors.get(1) {
        return Err(second.root().require("kind", "")?.error(format!(
            "a second mirror resource ({}); import one at a time: split the file",
            second.name().unwrap_or("unnamed")
        )));
    }
    let root = doc.root();
    let api = root.req_str("apiVersion", "set it to kafka.strimzi.io/v1beta2")?;
    if !api.starts_with("kafka.strimzi.io/") {
        return Err(root.require("apiVersion", "")?.error(format!(
            "`{api}` is not a Strimzi API; {}",
            super::SUPPORTED
        )));
    }
    let mut secrets = BTreeMap::new();
    for d in docs.iter().filter(|d| d.kind() == Some("Secret")) {
        let mut keys = BTreeSet::new();
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = d.value.get(field) {
                keys.extend(m.keys().cloned());
            }
        }
        secrets.insert(d.name().unwrap_or("").to_string(), keys);
    }
    let ctx = Ctx {
        dir: options.secrets_dir.clone(),
        secrets,
    };
    let name = doc.name().unwrap_or("unnamed");
    let spec = root.require("spec", "the resource has no spec")?;
    match doc.kind() {
        Some("KafkaMirrorMaker2") => strimzi_mm2::import(&ctx, &spec, name),
        _ => kafka_mirror_maker(&ctx, &spec, name),
    }
}
