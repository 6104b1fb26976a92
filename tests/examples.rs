//! Every `examples/*.yaml` passes `hubmirror validate` on a fresh checkout: no file outside the
//! repository, no environment but the one variable an example documents
//! (`EVENTHUB_CONNECTION_STRING`), any working directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A recognisable fake shared access key: must never appear in any output.
const FAKE_KEY: &str = "FAKEexampleKEY0123456789abcdefghijklmnopqrs=";

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_topology_validates_on_a_fresh_checkout() {
    let files = examples();
    assert!(
        files.len() >= 3,
        "examples/ should hold the example topologies the README lists: {files:?}"
    );
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for file in files {
        let out = Command::new(env!("CARGO_BIN_EXE_hubmirror"))
            .arg("validate")
            .arg("-c")
            .arg(&file)
            .current_dir(elsewhere.path())
            .env_clear()
            .env(
                "EVENTHUB_CONNECTION_STRING",
                format!(
                    "Endpoint=sb://example.servicebus.windows.net/;\
                     SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={FAKE_KEY}"
                ),
            )
            .output()
            .expect("run hubmirror validate");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "{} does not validate ({}):\n{stderr}",
            file.display(),
            out.status
        );
        assert!(
            stdout.starts_with(&format!("{}: OK", file.display())),
            "{}: {stdout}",
            file.display()
        );
        assert!(
            !stdout.contains(FAKE_KEY) && !stderr.contains(FAKE_KEY),
            "{}: the key leaked",
            file.display()
        );
    }
}
