//! Each Entra ID namespace's current token, where librdkafka's clients find it.
//!
//! A librdkafka client only carries strings, so every client of such a cluster gets
//! `sasl.oauthbearer.config` = [`config_key`]`(alias)`; the client contexts' token callback
//! ([`oauth_token`]) looks the cell up by that key. The token source writes the cell and pushes
//! each new token to the clients that registered with [`TokenCell::on_new_token`] (clients
//! nobody polls, such as admin clients).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;

use crate::topology::Secret;

/// The prefix of the `sasl.oauthbearer.config` hubmirror gives the clients of an Entra cluster.
const CONFIG_PREFIX: &str = "hubmirror-entra-token=";

/// The `sasl.oauthbearer.config` of cluster `alias`'s clients.
pub fn config_key(alias: &str) -> String {
    format!("{CONFIG_PREFIX}{alias}")
}

type Pusher = Box<dyn Fn(&OAuthToken) -> bool + Send + Sync>;

/// The current token of one namespace, its health, and the clients to hand new tokens to.
pub struct TokenCell {
    alias: String,
    /// librdkafka's principal name for the token (the client id, or `hubmirror`).
    principal: String,
    state: RwLock<State>,
    pushers: Mutex<Vec<Pusher>>,
}

#[derive(Default)]
struct State {
    token: Option<(Secret, SystemTime)>,
    /// Why the last attempt failed, while the authority cannot be reached.
    unavailable: Option<String>,
    refreshed: u64,
    failed: u64,
}

/// A snapshot of a cell for `/readyz`, `/metrics` and tests.
#[derive(Debug, Clone)]
pub struct CellStatus {
    pub alias: String,
    /// When the current token expires.
    pub expires_at: Option<SystemTime>,
    /// The last failure while the authority is unreachable.
    pub unavailable: Option<String>,
    /// Tokens fetched (the first one included).
    pub refreshed: u64,
    /// Attempts that failed.
    pub failed: u64,
}

static CELLS: Mutex<BTreeMap<String, Arc<TokenCell>>> = Mutex::new(BTreeMap::new());

/// The cell of cluster `alias`, created on first use.
pub fn cell(alias: &str, principal: &str) -> Arc<TokenCell> {
    let mut cells = CELLS.lock().unwrap_or_else(PoisonError::into_inner);
    cells
        .entry(config_key(alias))
        .or_insert_with(|| {
            Arc::new(TokenCell {
                alias: alias.to_string(),
                principal: principal.to_string(),
                state: RwLock::new(State::default()),
                pushers: Mutex::new(Vec::new()),
            })
        })
        .clone()
}

/// The cell a client with `sasl.oauthbearer.config` = `config` reads, if it is hubmirror's.
pub fn by_config(config: Option<&str>) -> Option<Arc<TokenCell>> {
    let key = config?;
    if !key.starts_with(CONFIG_PREFIX) {
        return None;
    }
    CELLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// The cell of cluster `alias`, if it signs in with Entra ID (its token source exists).
pub fn of_cluster(alias: &str) -> Option<Arc<TokenCell>> {
    by_config(Some(&config_key(alias)))
}

/// Every cell's status, in alias order.
pub fn statuses() -> Vec<CellStatus> {
    let cells: Vec<Arc<TokenCell>> = CELLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect();
    cells.iter().map(|c| c.status()).collect()
}

/// The token callback of every hubmirror client context: the current token of the cell that
/// `config` names. An error makes librdkafka retry the callback later.
pub fn oauth_token(config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let cell = by_config(config).ok_or("this client has no Entra ID token source")?;
    cell.oauth_token().ok_or_else(|| {
        format!(
            "no Entra ID token for cluster '{}' yet (see the token source's log lines)",
            cell.alias
        )
        .into()
    })
}

impl TokenCell {
    /// The cluster's alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The current token as librdkafka takes it, if there is one.
    pub fn oauth_token(&self) -> Option<OAuthToken> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let (token, expires) = state.token.as_ref()?;
        Some(OAuthToken {
            token: token.expose().to_string(),
            principal_name: self.principal.clone(),
            lifetime_ms: millis_since_epoch(*expires),
        })
    }

    /// Stores a new token and hands it to every registered client.
    pub fn set(&self, token: Secret, expires_at: SystemTime) {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            state.token = Some((token, expires_at));
            state.unavailable = None;
            state.refreshed += 1;
        }
        if let Some(t) = self.oauth_token() {
            let mut pushers = self.pushers.lock().unwrap_or_else(PoisonError::into_inner);
            pushers.retain(|push| push(&t));
        }
    }

    /// Notes a failed attempt; `unavailable` while the authority cannot be reached.
    pub fn failed(&self, unavailable: Option<String>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.failed += 1;
        if unavailable.is_some() {
            state.unavailable = unavailable;
        }
    }

    /// Calls `push` with every new token until it returns `false` (its client is gone).
    pub fn on_new_token(&self, push: impl Fn(&OAuthToken) -> bool + Send + Sync + 'static) {
        self.pushers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(push));
    }

    /// How long the current token is still valid (zero when expired or absent).
    pub fn remaining(&self) -> Duration {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .token
            .as_ref()
            .and_then(|(_, e)| e.duration_since(SystemTime::now()).ok())
            .unwrap_or_default()
    }

    /// Whether the token expired while the authority cannot be reached: the namespace refusing
    /// it then is an outage the token source is retrying, not a wrong credential.
    pub fn expired_while_unreachable(&self) -> bool {
        self.remaining().is_zero()
            && self
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .unavailable
                .is_some()
    }

    /// A snapshot.
    pub fn status(&self) -> CellStatus {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        CellStatus {
            alias: self.alias.clone(),
            expires_at: state.token.as_ref().map(|(_, e)| *e),
            unavailable: state.unavailable.clone(),
            refreshed: state.refreshed,
            failed: state.failed,
        }
    }
}

fn millis_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn clients_find_the_token_by_their_config_key_and_pushers_get_new_ones() {
        let c = cell("cell-test", "cid");
        assert!(
            oauth_token(Some(&config_key("cell-test"))).is_err(),
            "no token yet"
        );
        assert!(oauth_token(Some("other")).is_err());
        let pushed = Arc::new(AtomicUsize::new(0));
        let p = pushed.clone();
        c.on_new_token(move |t| {
            assert_eq!(t.token, "tok");
            p.fetch_add(1, Ordering::SeqCst) == 0
        });
        let exp = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        c.set(Secret::new("tok"), exp);
        let t = oauth_token(Some(&config_key("cell-test"))).expect("a token");
        assert_eq!(t.token, "tok");
        assert_eq!(t.principal_name, "cid");
        assert_eq!(t.lifetime_ms, 4_000_000_000_000);
        c.set(Secret::new("tok"), exp);
        c.set(Secret::new("tok"), exp);
        assert_eq!(
            pushed.load(Ordering::SeqCst),
            2,
            "a pusher that said false is dropped"
        );
        assert_eq!(c.status().refreshed, 3);
    }
}
