//! Tokens of 20 s during a 90 s stream: refreshed ahead of expiry, connections re-authenticated,
//! nothing lost, duplicated or reordered, no flow restart; an authority that stops answering for
//! a while shows on `/readyz` and the metrics, and costs nothing while the token lasts.

use std::time::Instant;

use super::*;

use support::hubmirror::{http_status, metric_sum, Running};
use support::kafka::{self, Ledger, Stream};
use support::tansu::Tansu;
use support::wait_for;

const LIFETIME: Duration = Duration::from_secs(20);
const STREAM_FOR: Duration = Duration::from_secs(90);
const RATE: u64 = 400;

#[test]
fn short_lived_tokens_under_a_stream_lose_nothing_and_restart_nothing() {
    let onprem = Tansu::start();
    let eh = emulator(LIFETIME);
    let work = Workdir::new();
    let (entra, env) = entra_for(Mode::ClientSecret, &eh, &work);
    let (src, ehc, topo, addr) = streaming(&onprem, &eh, &entra, &work);
    let mut env = env_refs(&env);
    env.push(("RUST_LOG", "debug"));
    let mut run = Running::start(&topo, &env);

    let ledger = Ledger::start(&ehc, "onprem.orders");
    let stream = Stream::start(&src, "orders", &[0, 1], "s", RATE);
    let started = Instant::now();

    // A third of the way in, the authority stops answering until /readyz says so.
    std::thread::sleep(STREAM_FOR / 3);
    eh.set_entra_available(false);
    let line = wait_for(
        "/readyz to name the unreachable authority",
        LIFETIME,
        || {
            let (code, body) = http_status(&addr, "/readyz")?;
            (code == 503 && body.contains("cannot refresh its Entra ID token")).then_some(body)
        },
    );
    assert!(line.contains("cluster 'eventhub'"), "{line}");
    let page = http_status(&addr, "/metrics").expect("metrics").1;
    assert_eq!(
        metric_sum(
            &page,
            "hubmirror_entra_authority_up",
            &["cluster=\"eventhub\""]
        ),
        0.0
    );
    eh.set_entra_available(true);
    wait_for("/readyz ready again", LIFETIME, || {
        let (code, _) = http_status(&addr, "/readyz")?;
        (code == 200).then_some(())
    });

    let left = STREAM_FOR.saturating_sub(started.elapsed());
    std::thread::sleep(left);
    let sent = stream.stop();
    let ended = Instant::now();
    let tally = ledger.tally(&[&sent], Duration::from_secs(60));
    let (gap, partition) = ledger.longest_pause("s", started, ended);
    let page = http_status(&addr, "/metrics").expect("metrics").1;
    let fetched = metric_sum(
        &page,
        "hubmirror_entra_tokens_fetched",
        &["cluster=\"eventhub\""],
    );
    let restarts = metric_sum(&page, "hubmirror_flow_restarts_total", &[]);
    let stats = eh.entra_stats();
    eprintln!(
        "20 s tokens, {} s stream: {tally:?}; tokens fetched {fetched}; emulator {stats:?}; \
         largest gap between records {gap:?} (partition {partition}); flow restarts {restarts}",
        STREAM_FOR.as_secs()
    );
    assert_eq!(
        (tally.lost, tally.duplicated, tally.out_of_order),
        (0, 0, 0),
        "{tally:?}"
    );
    assert!(tally.sent > RATE * 60, "the stream ran: {tally:?}");
    assert_eq!(restarts, 0.0, "no flow restarted");
    // One token at start, then one every ~10 s (half the lifetime).
    assert!(fetched >= 6.0, "tokens fetched: {fetched}");
    assert!(
        stats.reauthentications > 0,
        "connections re-authenticated: {stats:?}"
    );
    assert_eq!(
        stats.sessions_expired, 0,
        "no connection outlived its token: {stats:?}"
    );
    assert!(gap < Duration::from_secs(5), "largest gap {gap:?}");
    run.stop_cleanly();
    assert_no_secret(&run.output(), &[SECRET], "20 s tokens");
}

/// Workload identity: the kubelet rotates the federated token file; hubmirror reads it again for
/// every token, so it keeps getting tokens after the first federated token expired.
#[test]
fn workload_identity_reads_the_rotated_token_file_for_every_token() {
    const FEDERATED: Duration = Duration::from_secs(15);
    const RUN: Duration = Duration::from_secs(50);
    let onprem = Tansu::start();
    let eh = emulator(LIFETIME);
    let work = Workdir::new();
    let (entra, env) = entra_for(Mode::WorkloadIdentity, &eh, &work);
    let file = work.path().join("azure-identity-token");
    std::fs::write(&file, eh.federated_token(SUBJECT, FEDERATED)).expect("token file");
    let (src, ehc, topo, addr) = streaming(&onprem, &eh, &entra, &work);
    let mut run = Running::start(&topo, &env_refs(&env));

    let ledger = Ledger::start(&ehc, "onprem.orders");
    let stream = Stream::start(&src, "orders", &[0, 1], "w", RATE / 2);
    let started = Instant::now();
    // The kubelet's rotation, faster: a new federated token every 5 s, each valid 15 s.
    while started.elapsed() < RUN {
        std::thread::sleep(Duration::from_secs(5));
        let next = file.with_extension("new");
        std::fs::write(&next, eh.federated_token(SUBJECT, FEDERATED)).expect("token file");
        std::fs::rename(&next, &file).expect("rotate");
    }
    let sent = stream.stop();
    let tally = ledger.tally(&[&sent], Duration::from_secs(60));
    let page = http_status(&addr, "/metrics").expect("metrics").1;
    let fetched = metric_sum(
        &page,
        "hubmirror_entra_tokens_fetched",
        &["cluster=\"eventhub\""],
    );
    let restarts = metric_sum(&page, "hubmirror_flow_restarts_total", &[]);
    let stats = eh.entra_stats();
    eprintln!(
        "workload identity, rotated file: {tally:?}; tokens fetched {fetched}; emulator {stats:?}"
    );
    assert_eq!(
        (stats.sessions_expired, stats.oauthbearer_refused),
        (0, 0),
        "every connection re-authenticated with a fresh token: {stats:?}"
    );
    assert_eq!(
        (tally.lost, tally.duplicated, tally.out_of_order),
        (0, 0, 0),
        "{tally:?}"
    );
    assert_eq!(restarts, 0.0, "no flow restarted");
    // Refreshes every ~10 s for 50 s, the later ones with federated tokens the first file never
    // held (it expired after 15 s).
    assert!(fetched >= 4.0, "tokens fetched: {fetched}");
    assert!(
        run.wait(Duration::ZERO).is_none(),
        "still running:\n{}",
        run.output()
    );
    run.stop_cleanly();
    assert_no_secret(&run.output(), &[SECRET], "workload identity");
}

/// An authority that does not answer when hubmirror starts: it waits (retrying), `/healthz`
/// answers and `/readyz` says what it waits for; once the authority answers, it replicates.
#[test]
fn an_authority_down_at_start_is_waited_for_with_health_served() {
    let onprem = Tansu::start();
    let eh = emulator(Duration::from_secs(3600));
    eh.set_entra_available(false);
    let work = Workdir::new();
    let (entra, env) = entra_for(Mode::ManagedIdentity, &eh, &work);
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "orders", 1);
    kafka::produce_test_records(&src, "orders", 1, 0..100, 1_700_000_000_000);
    let topo = write(&one_way(&onprem, &eh, &entra), &work);
    let addr = work.metrics_addr();
    let mut run = Running::start(&topo, &env_refs(&env));
    let body = wait_for(
        "/readyz to name the awaited token",
        Duration::from_secs(30),
        || {
            let (code, body) = http_status(&addr, "/readyz")?;
            (code == 503 && body.contains("HTTP 503")).then_some(body)
        },
    );
    assert!(
        body.contains("cluster 'eventhub': waiting for its first Entra ID token"),
        "{body}"
    );
    assert_eq!(http_status(&addr, "/healthz").map(|r| r.0), Some(200));
    assert!(run.wait(Duration::ZERO).is_none(), "{}", run.output());
    eh.set_entra_available(true);
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.orders",
        100,
        Duration::from_secs(90),
    );
    assert_eq!(
        copies.len(),
        100,
        "every record copied once the authority answered"
    );
    run.stop_cleanly();
    assert!(
        run.output().contains("cannot get an Entra ID token yet"),
        "{}",
        run.output()
    );
}
