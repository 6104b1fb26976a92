//! The topology in the ConfigMap: the seed scenario, run through the real `hubmirror validate`
//! with the Secret's placeholder where the pod mounts it.

use super::*;

use std::collections::BTreeSet;
use std::process::Command;

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
