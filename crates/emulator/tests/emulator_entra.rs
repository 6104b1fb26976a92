//! The emulator playing Microsoft Entra ID, against a real tansu broker: the token endpoints
//! over HTTP (`emulator_entra/endpoints.rs`), and SASL OAUTHBEARER on the Kafka listener with
//! session lifetimes, expiry and re-authentication, spoken raw and by librdkafka
//! (`emulator_entra/kafka.rs`).

use hubmirror_test_support as support;

#[path = "emulator_entra/endpoints.rs"]
mod endpoints;
#[path = "emulator_entra/kafka.rs"]
mod kafka;

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use support::emulator::{EntraOptions, EventHubsEmulator};

fn init_logs() {
    support::init_logs();
}

/// A namespace with Entra ID and tokens valid for `lifetime`.
fn start(lifetime: Duration, local_auth: bool) -> EventHubsEmulator {
    EventHubsEmulator::start_entra(EntraOptions {
        token_lifetime: lifetime,
        local_auth,
        ..EntraOptions::default()
    })
}

/// A JWT's claims, decoded without verification.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
