//! Running the real `hubmirror` binary: a topology file in a temp dir, output captured to files,
//! SIGTERM to stop, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `hubmirror` binary under test: `$HUBMIRROR_BIN`, else the one cargo built beside the
/// running test (test executables live in `target/<profile>/deps/`, binaries one level up;
/// cargo builds a package's binaries before running its integration tests).
pub fn bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HUBMIRROR_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("hubmirror"))
        .expect("the test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} not found: run the tests with cargo (or set HUBMIRROR_BIN)",
        bin.display()
    );
    bin
}

/// A temp dir holding a topology file (and the store, certificates, logs).
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `topology.yaml` with `text` and returns its path. A topology without a `metrics:`
    /// section gets one on a free port (see [`Workdir::metrics_addr`]), so tests never collide on
    /// the default 127.0.0.1:9464.
    pub fn topology(&self, text: &str) -> PathBuf {
        let p = self.dir.path().join("topology.yaml");
        let mut text = text.to_string();
        if !text.lines().any(|l| l.starts_with("metrics:")) {
            let port = crate::tansu::free_port();
            text.push_str(&format!("\nmetrics:\n  listen: 127.0.0.1:{port}\n"));
            std::fs::write(
                self.dir.path().join("metrics-addr"),
                format!("127.0.0.1:{port}"),
            )
            .expect("write");
        }
        std::fs::write(&p, text).expect("write topology");
        p
    }

    /// The metrics/status address the last [`Workdir::topology`] chose.
    pub fn metrics_addr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("metrics-addr"))
            .expect("topology() chose a metrics address")
    }
}

/// Runs `hubmirror <args...>` to completion with extra environment variables.
pub fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hubmirror")
}

/// A running `hubmirror run`.
pub struct Running {
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Set by [`Running::quiet`]: no output printed when dropped during a panic.
    quiet: bool,
}

impl Running {
    /// Starts `hubmirror run -c <topology>`, output to files beside the topology.
    pub fn start(topology: &Path, env: &[(&str, &str)]) -> Running {
        Self::start_with_args(topology, &[], env)
    }

    /// Starts `hubmirror run -c <topology> <args...>`, output to files beside the topology.
    pub fn start_with_args(topology: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let dir = topology.parent().expect("topology dir");
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stdout = dir.join(format!("run-{n}.stdout"));
        let stderr = dir.join(format!("run-{n}.stderr"));
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg("-c")
            .arg(topology)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn hubmirror run");
        Running {
            child,
            stdout,
            stderr,
            quiet: false,
        }
    }

    /// The process id (to freeze it with SIGSTOP or kill it with SIGKILL).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Does not print the output when dropped during a panic (its owner prints it).
    pub fn quiet(&mut self) {
        self.quiet = true;
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends SIGTERM and waits for the exit, at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.sigterm();
        self.wait(timeout).unwrap_or_else(|| {
            panic!(
                "hubmirror did not exit within {timeout:?} of SIGTERM\n{}",
                self.output()
            )
        })
    }

    /// The contract's clean stop: SIGTERM, then exit 0 within 10 s (panics with the output
    /// otherwise).
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate(Duration::from_secs(10));
        assert!(
            status.success(),
            "exit after SIGTERM: {status}\n{}",
            self.output()
        );
    }

    /// Waits for the process to exit by itself, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the output until a line contains every one of `needles`; returns that line.
    pub fn wait_for_line(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.output();
            if let Some(line) = out.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needles:?} within {timeout:?}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything the process wrote so far, stdout then stderr.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("--- stdout\n{out}--- stderr\n{err}")
    }
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("kill");
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() && !self.quiet {
            eprintln!("hubmirror output:\n{}", self.output());
        }
    }
}

/// GET `path` from the daemon's HTTP listener at `addr` (`host:port`); the body, or `None`.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    http_status(addr, path).map(|(_, body)| body)
}

/// GET `path` at `addr`: the HTTP status code and the body, or `None` when nothing answers.
pub fn http_status(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    Some((code, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// The running daemon's `/status` at `addr` (`host:port`), or `None` when it does not answer.
pub fn daemon_status(addr: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_get(addr, "/status")?).ok()
}

/// The sum of every sample of metric `name` whose labels contain all of `labels` (`k="v"`).
pub fn metric_sum(metrics_text: &str, name: &str, labels: &[&str]) -> f64 {
    metrics_text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
