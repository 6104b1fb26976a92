//! [`CutProxy`]: a TCP relay in front of a broker that can cut *one process* off it, as a network
//! partition between one instance and the source cluster would, while everything else (other
//! instances, producers, readers) goes on.
//!
//! Start the broker advertising the proxy (`Tansu::start_on(port, &proxy_addr)`, see
//! [`CutProxy::in_front_of_tansu`]): clients bootstrap anywhere and then connect through the
//! proxy. [`CutProxy::cut_process`] black-holes every connection of that process (bytes read
//! either way are dropped, so its requests go unanswered and time out, as across a partition)
//! and every new one it opens; [`CutProxy::restore`] closes those connections so that it
//! reconnects. A connection's process is found from `/proc` (Linux): the inode of the
//! client's socket in `/proc/net/tcp`, among the process's open descriptors.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::tansu::{free_port, Tansu};

/// One relayed connection: the client's side, and whether it is black-holed.
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    /// The client's port (its socket's local port).
    peer_port: u16,
    cut: Arc<AtomicBool>,
}

/// What the accept thread and the test share.
#[derive(Default)]
struct Shared {
    conns: Mutex<BTreeMap<u64, Conn>>,
    /// The process cut off (0: none).
    cut_pid: AtomicU32,
    stop: AtomicBool,
}

/// A relay on a free loopback port to `upstream`; stopped (every connection closed) on drop.
pub struct CutProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl CutProxy {
    /// A relay to `upstream` (`host:port`) on the free port `port`.
    pub fn start(port: u16, upstream: &str) -> CutProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy");
        let shared = Arc::new(Shared::default());
        let (s, upstream) = (shared.clone(), upstream.to_string());
        std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || accept(listener, &upstream, port, &s))
            .expect("proxy thread");
        CutProxy { port, shared }
    }

    /// A tansu broker advertising a proxy in front of it: every client connects through the
    /// proxy after its bootstrap.
    pub fn in_front_of_tansu() -> (Tansu, CutProxy) {
        let (broker_port, proxy_port) = (free_port(), free_port());
        let proxy = CutProxy::start(proxy_port, &format!("127.0.0.1:{broker_port}"));
        let tansu = Tansu::start_on(broker_port, &proxy.addr());
        (tansu, proxy)
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Black-holes every connection of process `pid`, now and until [`CutProxy::restore`].
    /// Returns how many open connections that cut.
    pub fn cut_process(&self, pid: u32) -> usize {
        self.shared.cut_pid.store(pid, Ordering::SeqCst);
        let conns = self.shared.conns.lock().expect("conns");
        let mut n = 0;
        for conn in conns.values() {
            if owned_by(pid, conn.peer_port, self.port) {
                conn.cut.store(true, Ordering::SeqCst);
                n += 1;
            }
        }
        n
    }

    /// Ends the cut: the black-holed connections are closed (the process reconnects).
    pub fn restore(&self) {
        self.shared.cut_pid.store(0, Ordering::SeqCst);
        let mut conns = self.shared.conns.lock().expect("conns");
        conns.retain(|_, c| {
            if c.cut.load(Ordering::SeqCst) {
                let _ = c.client.shutdown(Shutdown::Both);
                let _ = c.upstream.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.shared.conns.lock().expect("conns").values() {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.upstream.shutdown(Shutdown::Both);
        }
    }
}

fn accept(listener: TcpListener, upstream: &str, port: u16, shared: &Arc<Shared>) {
    let mut id = 0u64;
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(upstream) else {
            continue;
        };
        let peer_port = client.peer_addr().map(|a| a.port()).unwrap_or(0);
        let pid = shared.cut_pid.load(Ordering::SeqCst);
        let cut = Arc::new(AtomicBool::new(pid != 0 && owned_by(pid, peer_port, port)));
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        for (from, to) in [(client.try_clone(), s2), (server.try_clone(), c2)] {
            let (Ok(from), cut) = (from, cut.clone()) else {
                continue;
            };
            std::thread::spawn(move || relay(from, to, &cut));
        }
        id += 1;
        shared.conns.lock().expect("conns").insert(
            id,
            Conn {
                client,
                upstream: server,
                peer_port,
                cut,
            },
        );
    }
}

/// Copies `from` to `to` until either closes; while `cut`, drops what it reads.
fn relay(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !cut.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Whether the client socket `127.0.0.1:<peer_port>` → `127.0.0.1:<proxy_port>` belongs to
/// process `pid`.
fn owned_by(pid: u32, peer_port: u16, proxy_port: u16) -> bool {
    let Some(inode) = socket_inode(peer_port, proxy_port) else {
        return false;
    };
    let link = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == link.as_str()))
}

/// The inode of the TCP socket with local port `local` and remote port `remote`, from
/// `/proc/net/tcp` (lines: `sl local rem st queues tr retrnsmt uid timeout inode ...`).
fn socket_inode(local: u16, remote: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
        (port(l)? == local && port(r)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn finds_the_process_of_a_loopback_connection_and_black_holes_it() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let echo_addr = echo.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            for s in echo.incoming().flatten() {
                let mut r = s.try_clone().expect("clone");
                let mut w = s;
                std::thread::spawn(move || std::io::copy(&mut r, &mut w));
            }
        });
        let proxy = CutProxy::start(free_port(), &echo_addr);
        let mut c = TcpStream::connect(proxy.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut buf = [0u8; 4];
        c.write_all(b"ping").expect("write");
        c.read_exact(&mut buf).expect("echo");
        assert_eq!(&buf, b"ping");
        // This very process owns the connection: cut it.
        assert_eq!(proxy.cut_process(std::process::id()), 1);
        c.write_all(b"lost").expect("write");
        assert!(
            c.read_exact(&mut buf).is_err(),
            "nothing comes back while cut"
        );
        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).expect("reconnect");
        again
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        again.write_all(b"back").expect("write");
        again.read_exact(&mut buf).expect("echo after restore");
        assert_eq!(&buf, b"back");
    }
}
