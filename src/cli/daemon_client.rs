//! Asking the running `hubmirror run` over its HTTP listener (`metrics.listen`): one blocking
//! `GET` per question, HTTP/1.0 so the daemon closes the connection after the answer.
//!
//! "Nothing listens there" is an answer of its own ([`get`] returns `Ok(None)`): the inspection
//! commands then read the store themselves. Anything else that goes wrong once a connection is
//! made (a timeout, a status other than 200, a body that is not the expected JSON) is a
//! [`DaemonError`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// How long connecting may take (the daemon listens on a local or nearby address).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the daemon may take to answer one request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon's answer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The connection failed after it was made (reset, timed out).
    #[error("hubmirror run at {addr} (metrics.listen): GET {path}: {source}")]
    Io {
        /// The daemon's address.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The daemon answered with a status other than 200, or not with HTTP.
    #[error("hubmirror run at {addr} (metrics.listen): GET {path}: {status}: {body}")]
    Status {
        /// The daemon's address.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// The status line, or what came instead.
        status: String,
        /// The body (the daemon's error message), shortened.
        body: String,
    },
    /// The body is not the JSON expected.
    #[error("hubmirror run at {addr} (metrics.listen): GET {path}: unexpected answer: {source}")]
    Json {
        /// The daemon's address.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

/// `GET path` (with its query string) from the daemon at `addr`: the body of a 200 answer;
/// `Ok(None)` when nothing accepts connections there (the daemon is not running).
pub fn get(addr: SocketAddr, path: &str) -> Result<Option<String>, DaemonError> {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return Ok(None);
    };
    let io = |source| DaemonError::Io {
        addr,
        path: path.to_string(),
        source,
    };
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: hubmirror\r\n\r\n").as_bytes())
        .map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1);
    if !status.starts_with("HTTP/") || code != Some("200") {
        return Err(DaemonError::Status {
            addr,
            path: path.to_string(),
            status: status.chars().take(80).collect(),
            body: body.trim().chars().take(300).collect(),
        });
    }
    Ok(Some(body.to_string()))
}

/// [`get`], decoding the body as JSON.
pub fn get_json<T: DeserializeOwned>(
    addr: SocketAddr,
    path: &str,
) -> Result<Option<T>, DaemonError> {
    let Some(body) = get(addr, path)? else {
        return Ok(None);
    };
    serde_json::from_str(&body)
        .map(Some)
        .map_err(|source| DaemonError::Json {
            addr,
            path: path.to_string(),
            source,
        })
}

/// A query string from `(name, value)` pairs, percent-encoding everything but RFC 3986's
/// unreserved characters (group names may hold anything).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            query(&[("group", "a b+c/é"), ("partition", "3")]),
            "?group=a%20b%2Bc%2F%C3%A9&partition=3"
        );
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn nothing_listening_is_not_an_error() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        // The listener is dropped: nothing accepts on `addr` any more.
        assert!(matches!(get(addr, "/status"), Ok(None)));
    }
}
