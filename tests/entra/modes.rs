//! Each mode replicates both ways exactly, over SASL OAUTHBEARER.

use super::*;

use support::hubmirror::Running;
use support::kafka;
use support::tansu::Tansu;

const N: usize = 1_000;

fn replicates_both_ways(mode: Mode) {
    let onprem = Tansu::start();
    let eh = emulator(Duration::from_secs(3600));
    let work = Workdir::new();
    let (entra, env) = entra_for(mode, &eh, &work);
    let src = kafka::plain(&onprem.listener());
    let ehc = eh.client_config();
    kafka::create_topic(&src, "orders", 2);
    kafka::create_topic(&ehc, "events", 2);
    kafka::produce_test_records(&src, "orders", 2, 0..N, 1_700_000_000_000);
    kafka::produce_test_records(&ehc, "events", 2, 0..N, 1_700_000_000_000);

    let topo = write(
        &both_ways(&onprem, &eh, &entra, ("orders", "events")),
        &work,
    );
    let mut env = env_refs(&env);
    env.push(("RUST_LOG", "debug"));
    let mut run = Running::start(&topo, &env);
    let to_eh = kafka::read_all(&ehc, "onprem.orders", N, Duration::from_secs(90));
    exactly_once(&to_eh, &format!("{mode:?}: onprem → eventhub"));
    let to_onprem = kafka::read_all(&src, "eventhub.events", N, Duration::from_secs(90));
    exactly_once(&to_onprem, &format!("{mode:?}: eventhub → onprem"));
    let stats = eh.entra_stats();
    eprintln!("{mode:?}: emulator {stats:?}");
    assert!(
        stats.oauthbearer_authentications > 0,
        "{mode:?}: hubmirror signed in with OAUTHBEARER"
    );
    // The inspection commands get their own tokens (a thread keeps them fresh while they run).
    let topo_arg = topo.to_string_lossy().to_string();
    for args in [
        vec!["topics", "-c", topo_arg.as_str()],
        vec!["status", "-c", topo_arg.as_str()],
    ] {
        let out = support::hubmirror::run_to_end(&args, &env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{mode:?}: {args:?}:\n{text}");
        let shown = match args[0] {
            // The remote topic, with its partitions, found on the Entra cluster.
            "topics" => text.contains("onprem.orders"),
            // The Entra cluster reachable in the cluster table.
            _ => text.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() == 4 && cols[0] == "eventhub" && cols[1] == "yes"
            }),
        };
        assert!(shown, "{mode:?}: {args:?}:\n{text}");
        assert_no_secret(&text, &[SECRET], &format!("{mode:?}: {}", args[0]));
    }
    run.stop_cleanly();
    let out = run.output();
    assert!(out.contains("Entra ID token obtained"), "{out}");
    assert_no_secret(&out, &[SECRET], &format!("{mode:?}"));
}

/// Asserts `recs` are the test records `k0`..`k<N-1>`, each once.
fn exactly_once(recs: &[kafka::Rec], what: &str) {
    let counts = kafka::count_by_key(recs);
    let missing = (0..N)
        .filter(|i| !counts.contains_key(format!("k{i}").as_bytes()))
        .count();
    let dup: usize = counts.values().map(|c| c - 1).sum();
    assert_eq!(
        (missing, dup, recs.len()),
        (0, 0, N),
        "{what}: lost, duplicated, read"
    );
    eprintln!("{what}: {N} records, each exactly once");
}

#[test]
fn client_secret_replicates_both_ways() {
    replicates_both_ways(Mode::ClientSecret);
}

#[test]
fn workload_identity_replicates_both_ways() {
    replicates_both_ways(Mode::WorkloadIdentity);
}

#[test]
fn managed_identity_replicates_both_ways() {
    replicates_both_ways(Mode::ManagedIdentity);
}

/// An `https://` authority whose certificate only the cluster's `tls.ca_file` vouches for (a
/// private CA): the token requests trust it too.
#[test]
fn an_https_authority_signed_by_the_clusters_ca_is_trusted() {
    let onprem = Tansu::start();
    let eh = emulator(Duration::from_secs(3600));
    let certs = eh.ca_file();
    let front = support::tls_front::TlsFront::start(
        eh.authority_host().trim_start_matches("http://"),
        &certs.with_file_name("server.pem"),
        &certs.with_file_name("server.key.pem"),
    );
    let work = Workdir::new();
    let file = work.path().join("client-secret");
    std::fs::write(&file, SECRET).expect("secret file");
    let entra = format!(
        "{{tenant_id: {}, client_id: {APP}, client_secret_file: {}, authority_host: {}}}",
        quoted(&eh.tenant_id()),
        quoted(&file.to_string_lossy()),
        quoted(&front.url())
    );
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "orders", 2);
    kafka::produce_test_records(&src, "orders", 2, 0..N, 1_700_000_000_000);
    let topo = write(&one_way(&onprem, &eh, &entra), &work);
    let mut run = Running::start(&topo, &[]);
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.orders",
        N,
        Duration::from_secs(90),
    );
    exactly_once(&copies, "https authority: onprem → eventhub");
    assert_eq!(eh.entra_stats().tokens_issued_token_endpoint, 1);
    run.stop_cleanly();
}
