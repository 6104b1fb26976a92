//! Handing Entra ID tokens to librdkafka clients (SASL OAUTHBEARER).
//!
//! librdkafka asks for a token through an event on the client's main queue; rust-rdkafka serves
//! it ([`ClientContext::generate_oauth_token`]) only while the client is polled, and never for an
//! admin client (rust-rdkafka issue 757). So every client of an Entra cluster is created through
//! [`create`], which sets the current token at once (a client that nobody polls connects all the
//! same); polled clients pick up each new token when librdkafka asks, and long-lived admin
//! clients get every new token pushed ([`keep_fresh`]).
//!
//! [`ClientContext::generate_oauth_token`]: rdkafka::client::ClientContext::generate_oauth_token

// The one place hubmirror calls librdkafka directly: rust-rdkafka has no safe wrapper for
// `rd_kafka_oauthbearer_set_token` outside its own event handling.
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};
use std::sync::{Arc, Weak};

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rdsys;
use rdkafka::client::{ClientContext, NativeClient, OAuthToken};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseProducer, FutureProducer, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientConfig;

use crate::entra::cell;

/// The two `ClientContext` items of every hubmirror client context: librdkafka's token requests
/// are answered from the token cell the client's `sasl.oauthbearer.config` names (an error for a
/// cluster without Entra ID, which never asks).
macro_rules! entra_token_callback {
    () => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            oauthbearer_config: Option<&str>,
        ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
            crate::entra::oauth_token(oauthbearer_config)
        }
    };
}
pub(crate) use entra_token_callback;

/// A librdkafka client hubmirror creates.
pub trait Native {
    /// The underlying librdkafka handle.
    fn native(&self) -> &NativeClient;
}

impl<C: ConsumerContext> Native for BaseConsumer<C> {
    fn native(&self) -> &NativeClient {
        self.client().native_client()
    }
}

impl<C: ConsumerContext + 'static> Native for StreamConsumer<C> {
    fn native(&self) -> &NativeClient {
        self.client().native_client()
    }
}

impl<C: ProducerContext> Native for ThreadedProducer<C> {
    fn native(&self) -> &NativeClient {
        self.client().native_client()
    }
}

impl<C: ProducerContext> Native for BaseProducer<C> {
    fn native(&self) -> &NativeClient {
        self.client().native_client()
    }
}

impl<C: ClientContext + 'static> Native for FutureProducer<C> {
    fn native(&self) -> &NativeClient {
        self.client().native_client()
    }
}

impl<C: ClientContext> Native for AdminClient<C> {
    fn native(&self) -> &NativeClient {
        self.inner().native_client()
    }
}

/// Creates a client from `cfg`; when `cfg` is an Entra cluster's, sets its current token first.
pub fn create<T, C>(cfg: &ClientConfig, ctx: C) -> Result<T, KafkaError>
where
    C: ClientContext,
    T: FromClientConfigAndContext<C> + Native,
{
    let client: T = cfg.create_with_context(ctx)?;
    if let Some(cell) = cell::by_config(cfg.get("sasl.oauthbearer.config")) {
        let token = cell.oauth_token().ok_or_else(|| {
            KafkaError::ClientCreation(format!(
                "no Entra ID token for cluster '{}' yet",
                cell.alias()
            ))
        })?;
        set_token(client.native(), &token).map_err(KafkaError::ClientCreation)?;
    }
    Ok(client)
}

/// Pushes every new token of cluster `alias` (if it signs in with Entra ID) to `client` while it
/// lives: for long-lived clients that are polled only now and then or never (admin clients, a
/// flow's tail reader), whose connections librdkafka re-authenticates with the token it holds.
pub fn keep_fresh<T: Native + Send + Sync + 'static>(alias: &str, client: &Arc<T>) {
    let Some(cell) = cell::of_cluster(alias) else {
        return;
    };
    let weak: Weak<T> = Arc::downgrade(client);
    let alias = alias.to_string();
    cell.on_new_token(move |token| match weak.upgrade() {
        Some(client) => {
            if let Err(e) = set_token(client.native(), token) {
                tracing::warn!(cluster = %alias, "cannot hand the new Entra ID token to a client: {e}");
            }
            true
        }
        None => false,
    });
}

/// Sets `token` on `client` (librdkafka copies it; any thread may call this).
fn set_token(client: &NativeClient, token: &OAuthToken) -> Result<(), String> {
    let value = CString::new(token.token.as_str()).map_err(|_| "the token has a NUL byte")?;
    let principal =
        CString::new(token.principal_name.as_str()).map_err(|_| "the principal has a NUL byte")?;
    let mut err = [0 as c_char; 512];
    // SAFETY: `client.ptr()` is a live handle for the borrow of `client`; both strings are
    // NUL-terminated and outlive the call (librdkafka copies them); no extensions are passed
    // (null with size 0 is allowed); `err` is writable for its whole length.
    let code = unsafe {
        rdsys::rd_kafka_oauthbearer_set_token(
            client.ptr(),
            value.as_ptr(),
            token.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if code == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    // SAFETY: librdkafka writes a NUL-terminated message into `err` (it was zeroed, and the
    // last byte is never written).
    let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
    Err(format!(
        "librdkafka refused the token: {}",
        msg.to_string_lossy()
    ))
}
