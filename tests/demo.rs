//! `scripts/demo.sh`'s promises that a test can hold it to without the full demo (CI runs that):
//! it refuses to start while one of its ports is taken, naming the port and leaving whatever
//! listens there alone; and when hubmirror dies it says so, with hubmirror's exit status and
//! last line, instead of waiting for records that will never come.

use hubmirror_test_support as support;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use support::tansu::{free_port, tansu_bin};

/// The demo's port variables, in the order the script names them.
const PORT_VARS: [&str; 4] = [
    "DEMO_ONPREM_PORT",
    "DEMO_EVENTHUB_PORT",
    "DEMO_EVENTHUB_BROKER_PORT",
    "DEMO_METRICS_PORT",
];

/// The demo script, run in its own process group; the group is killed if the test ends first.
struct Demo {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Demo {
    fn start(dir: &Path, env: &[(&str, String)]) -> Demo {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (stdout, stderr) = (dir.join("demo.stdout"), dir.join("demo.stderr"));
        let mut cmd = Command::new(repo.join("scripts/demo.sh"));
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr file"))
            .env_remove("DEMO_TOPOLOGY")
            .env_remove("DEMO_BIN_DIR");
        for var in PORT_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Demo {
            child: cmd.spawn().expect("run scripts/demo.sh"),
            stdout,
            stderr,
        }
    }

    /// Waits for the demo to end (at most `timeout`): its exit code, stdout and stderr.
    fn finish(mut self, timeout: Duration) -> (i32, String, String) {
        let status = support::wait_for("scripts/demo.sh to exit", timeout, || {
            self.child.try_wait().expect("try_wait")
        });
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (
            status.code().unwrap_or(-1),
            read(&self.stdout),
            read(&self.stderr),
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// Four ports that were free a moment ago, one per demo variable.
fn free_ports() -> Vec<(&'static str, String)> {
    PORT_VARS
        .iter()
        .map(|v| (*v, free_port().to_string()))
        .collect()
}

#[test]
fn demo_refuses_to_start_while_a_port_is_taken_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let demo_dir = dir.path().join("demo");
    let mut env = free_ports();
    env[0].1 = port.to_string(); // DEMO_ONPREM_PORT: where "someone's broker" listens
    env.push(("DEMO_DIR", demo_dir.display().to_string()));
    // Should the check let it through, nothing can start: no broker, no binaries, no build.
    env.push(("TANSU_BIN", "/nonexistent/tansu".to_string()));
    env.push(("DEMO_BIN_DIR", "/nonexistent".to_string()));

    let (code, stdout, stderr) = Demo::start(dir.path(), &env).finish(Duration::from_secs(60));

    assert_eq!(code, 1, "exit code\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("port {port} (the on-prem broker) is in use"))
            && stderr.contains("DEMO_ONPREM_PORT=<free port>"),
        "the demo should name the taken port and the variable that moves it:\n{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "nothing should have been started:\n{stdout}"
    );
    assert!(
        !demo_dir.exists(),
        "the demo directory was created: the demo went on after the port check"
    );
    taken.set_nonblocking(true).expect("nonblocking");
    assert!(
        taken.accept().is_err(),
        "the demo connected to a port it did not open"
    );
}

#[test]
fn demo_reports_that_hubmirror_died_with_its_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_hubmirror"))
        .parent()
        .expect("binary directory")
        .to_path_buf();
    assert!(
        bin_dir.join("hubmirror-emulator").is_file(),
        "{} has no hubmirror-emulator: build it first (cargo build --workspace --bins; \
         scripts/test.sh builds it)",
        bin_dir.display()
    );
    // A topology that reads the demo's brokers but whose store is a plain file: hubmirror run
    // stops at startup, after the demo started it.
    let not_a_store = dir.path().join("not-a-store");
    std::fs::write(&not_a_store, "not a hubmirror store\n").expect("write file");
    let topology = dir.path().join("topology.yaml");
    std::fs::write(
        &topology,
        format!(
            "clusters:
  onprem:
    bootstrap_servers: \"localhost:${{DEMO_ONPREM_PORT}}\"
  eventhub:
    event_hubs:
      connection_string: ${{EVENTHUB_CONNECTION_STRING}}
    tls:
      ca_file: ${{DEMO_DIR}}/certs/ca.pem
flows:
  - source: onprem
    target: eventhub
    topics: [\"testeh\"]
replication:
  policy: identity
store:
  path: {}
metrics:
  listen: \"127.0.0.1:${{DEMO_METRICS_PORT}}\"
",
            not_a_store.display()
        ),
    )
    .expect("write topology");
    let mut env = free_ports();
    env.push(("DEMO_DIR", dir.path().join("demo").display().to_string()));
    env.push(("DEMO_TOPOLOGY", topology.display().to_string()));
    env.push(("DEMO_BIN_DIR", bin_dir.display().to_string()));
    env.push(("TANSU_BIN", tansu_bin().display().to_string()));

    // Far less than the 60 s the reader would wait for records before giving up.
    let (code, stdout, stderr) = Demo::start(dir.path(), &env).finish(Duration::from_secs(45));

    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, 1, "exit code\n{all}");
    let at = stderr
        .find("demo: hubmirror exited with status ")
        .unwrap_or_else(|| panic!("no word that hubmirror exited\n{all}"));
    let last_line = stderr[at..].lines().nth(1).unwrap_or_default();
    assert!(
        last_line.contains("not-a-store"),
        "the report should quote hubmirror's last line, which names the store:\n{all}"
    );
    assert!(!stderr.contains("records within"), "{all}");
}
