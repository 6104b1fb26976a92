//! Fault tests against real brokers (issue 6): hubmirror killed with SIGKILL mid-stream, the
//! source or the target frozen (SIGSTOP), every connection to the Event Hubs emulator cut, and
//! the emulator restarted — each while a background thread streams records into the source,
//! batched as applications produce them (so hubmirror resumes inside record batches).
//!
//! Each test asserts that no acknowledged source record is missing on the target, that hubmirror
//! stayed up (process alive, `/healthz` 200) and said not-ready (`/readyz` 503) during the fault,
//! and that it recovered within 10 s of the fault's end: `/readyz` 200 again AND a record
//! produced after the fault visible on the target. Each prints one line (run with
//! `--nocapture`, or `scripts/test-faults.sh`):
//!
//! `FAULT <name>: sent N, lost L, duplicated D, recovery Xs`
//!
//! "sent" is the set of records the source acknowledged (the stream retries a failed produce
//! until it is acknowledged); "duplicated" counts copies on the target beyond the records on
//! the source (read back from the source, so a record the source itself holds twice is not
//! blamed on hubmirror). `FAULT_SEED=<n>` repeats the kill test's random kill moments;
//! `FAULT_DEBUG=1` prints hubmirror's log after each recovery.

use hubmirror_test_support as support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use support::emulator::EventHubsEmulator;
use support::hubmirror::{http_status, signal, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

/// The source topic every test streams into.
const TOPIC: &str = "orders";
/// Its copy on the target (default policy, source alias `onprem`).
const REMOTE: &str = "onprem.orders";
const PARTITIONS: i32 = 4;
/// Records per second of the background stream.
const RATE: u64 = 2_000;
/// The longest a recovery may take after the fault ends.
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// How long a recovery is measured before giving up (the test then fails on RECOVERY_LIMIT).
const RECOVERY_WAIT: Duration = Duration::from_secs(60);
/// The source consumer's session timeout in these tests (hubmirror's default is 10 s), with
/// static membership: a single instance restarting after a crash takes its partitions back as
/// the same member instead of waiting for its dead self's session to time out (see the
/// README's "Scaling out"; `scale_out.rs` covers partitions moving between instances).
const SESSION_TIMEOUT_MS: &str = "6000";
/// How long, at most, the target may take to show every acknowledged record after the stream.
const CATCH_UP: Duration = Duration::from_secs(90);

#[path = "faults/count.rs"]
mod count;
#[path = "faults/mirror.rs"]
mod mirror;
#[path = "faults/stream.rs"]
mod stream;

use count::*;
use mirror::*;
use stream::*;

// ---------------------------------------------------------------------------------------------
// One fault held for a while, against a running stream.

/// Streams into `onprem`'s [`TOPIC`] through `mirror` to `target`, applies a fault with
/// `fault` (which returns what ends it), holds it for `hold`, ends it, and checks and reports
/// the outcome.
fn held_fault<E: FnOnce()>(
    name: &str,
    source: &ClientConfig,
    mut mirror: Mirror,
    target: KeyCounter,
    hold: Duration,
    fault: impl FnOnce() -> E,
) {
    let stream = Stream::start(source, name, RATE, None);
    mirror.wait_streaming(&target);
    let end_fault = fault();
    let held = mirror.hold_fault(hold);
    end_fault();
    let ended = Instant::now();
    let first_after = stream.next_number();
    let recovery = mirror.recovery(&target, first_after, ended);
    mirror.debug_log(name);
    let t = tally(stream, &target, source, name);
    report(
        name,
        &t,
        recovery.took,
        &format!(
            "/readyz 503 {} into the {hold:?} fault ({}); after it: {}",
            held.not_ready_after
                .map_or("never".to_string(), |d| format!("{d:.1?}")),
            held.why.as_deref().unwrap_or("-"),
            recovery.describe()
        ),
    );
    assert_eq!(
        t.lost, 0,
        "{name}: acknowledged records missing on the target"
    );
    assert!(
        held.not_ready_after.is_some(),
        "{name}: /readyz never answered 503 during the {hold:?} fault"
    );
    assert!(
        recovery.took <= RECOVERY_LIMIT,
        "{name}: recovered in {:.1?} (limit {RECOVERY_LIMIT:?}); last /readyz {:?}",
        recovery.took,
        recovery.last_readyz
    );
    mirror.run().stop_cleanly();
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
#[ignore = "fault suite: run by scripts/test-faults.sh"]
fn kill_9_three_times_during_a_100k_stream() {
    const NAME: &str = "kill_9_three_times_during_a_100k_stream";
    const RECORDS: u64 = 100_000;
    const KILL_RATE: u64 = 2_000;
    let (mut rng, seed) = Rng::seeded();
    println!("{NAME}: seed {seed} (FAULT_SEED={seed} repeats the kill moments)");
    let (onprem, dr) = (Tansu::start(), Tansu::start());
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let (work, topo) = tansu_to_tansu(&onprem, &dr);
    let mut mirror = Mirror::start(work, topo, Vec::new());
    let target = KeyCounter::start(&kafka::plain(&dr.listener()), REMOTE, "kill", "target");
    let stream = Stream::start(&source, "kill", KILL_RATE, Some(RECORDS));
    mirror.wait_streaming(&target);

    let mut problems = Vec::new();
    let mut details = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut resumed_past_commit = 0;
    for kill in 1..=3u64 {
        // A random point of the k-th quarter of the stream, past its first 10,000 records
        // (records 10k-20k, 35k-45k, 60k-70k), and at least a second after the last recovery.
        let at = RECORDS / 4 * (kill - 1) + 10_000 + rng.below(10_000);
        std::thread::sleep(Duration::from_secs(1));
        wait_for(
            &format!("kill {kill}: {at} records acknowledged"),
            Duration::from_secs(120),
            || (stream.acked() >= at).then_some(()),
        );
        if stream.finished() {
            // A kill after the stream would measure no recovery (nothing is produced after it).
            problems.push(format!(
                "kill {kill}: the stream had ended before it (earlier recoveries too slow)"
            ));
            break;
        }
        let acked = stream.acked();
        mirror.kill();
        let down = Duration::from_millis(rng.below(1_000));
        std::thread::sleep(down);
        let restarted = Instant::now();
        let first_after = stream.next_number();
        mirror.restart();
        let recovery = mirror.recovery(&target, first_after, restarted);
        slowest = slowest.max(recovery.took);
        mirror.debug_log(&format!("{NAME}, kill {kill}"));
        // Written before the kill but not committed: found in the target's tail, not rewritten.
        let skipped = not_written_again(&mirror.run().output());
        resumed_past_commit += skipped;
        details.push(format!(
            "kill {kill} at {acked} acknowledged, down {down:.1?}, {skipped} records past the \
             committed offsets found on the target, after the restart: {}",
            recovery.describe()
        ));
        match recovery.first_ready {
            Some(ready) if ready <= RECOVERY_LIMIT => {}
            other => problems.push(format!(
                "kill {kill}: /readyz 200 {other:.1?} after the restart (limit {RECOVERY_LIMIT:?})"
            )),
        }
        if recovery.took > RECOVERY_LIMIT {
            problems.push(format!(
                "kill {kill}: recovered {:.1?} after the restart (limit {RECOVERY_LIMIT:?}); \
                 last /readyz {:?}",
                recovery.took, recovery.last_readyz
            ));
        }
    }
    stream.wait_finished(Duration::from_secs(120));
    let t = tally(stream, &target, &source, "kill");
    report(NAME, &t, slowest, &details.join("; "));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        t.sent as u64, RECORDS,
        "every record acknowledged by the source"
    );
    assert_eq!(t.lost, 0, "records lost");
    assert_eq!(t.duplicated, 0, "records copied more than once");
    assert!(
        resumed_past_commit > 0,
        "no kill left copies past the committed offsets: the resume from the target's tail was \
         not exercised"
    );
    mirror.run().stop_cleanly();
}

/// The records hubmirror's resume lines say it did not write again
/// (`... resuming at N (K records not written again)`), summed.
fn not_written_again(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| {
            l.split(" records not written again")
                .next()
                .filter(|h| h.len() < l.len())
        })
        .filter_map(|head| head.rsplit('(').next()?.trim().parse::<u64>().ok())
        .sum()
}

#[test]
#[ignore = "fault suite: run by scripts/test-faults.sh"]
fn source_frozen_20s() {
    let (onprem, dr) = (Tansu::start(), Tansu::start());
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let (work, topo) = tansu_to_tansu(&onprem, &dr);
    let mirror = Mirror::start(work, topo, Vec::new());
    let target = KeyCounter::start(
        &kafka::plain(&dr.listener()),
        REMOTE,
        "source_frozen_20s",
        "target",
    );
    frozen_for_20s("source_frozen_20s", &source, mirror, target, onprem.pid());
}

#[test]
#[ignore = "fault suite: run by scripts/test-faults.sh"]
fn target_frozen_20s() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let (work, topo) = tansu_to_event_hubs(&onprem, &eh);
    let mirror = Mirror::start(work, topo, eh_env(&eh));
    let target = KeyCounter::start(&eh.client_config(), REMOTE, "target_frozen_20s", "target");
    frozen_for_20s("target_frozen_20s", &source, mirror, target, eh.tansu.pid());
}

/// The held fault of the freeze tests: broker process `pid` stopped (SIGSTOP) for 20 s.
fn frozen_for_20s(name: &str, source: &ClientConfig, mirror: Mirror, target: KeyCounter, pid: u32) {
    held_fault(
        name,
        source,
        mirror,
        target,
        Duration::from_secs(20),
        || {
            let frozen = Frozen::freeze(pid);
            move || drop(frozen)
        },
    );
}

#[test]
#[ignore = "fault suite: run by scripts/test-faults.sh"]
fn tcp_cut_to_target() {
    const NAME: &str = "tcp_cut_to_target";
    const CUT: Duration = Duration::from_secs(10);
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let (work, topo) = tansu_to_event_hubs(&onprem, &eh);
    let mirror = Mirror::start(work, topo, eh_env(&eh));
    let target = KeyCounter::start(&eh.client_config(), REMOTE, NAME, "target");
    held_fault(NAME, &source, mirror, target, CUT, || {
        // The window starts now; holding it for CUT ends with it.
        eh.cut_connections_for(CUT);
        || {}
    });
}

#[test]
#[ignore = "fault suite: run by scripts/test-faults.sh"]
fn emulator_restarted_mid_stream() {
    const NAME: &str = "emulator_restarted_mid_stream";
    // Longer than the 5 s after which records in flight without an acknowledgement make
    // /readyz answer 503.
    const DOWN: Duration = Duration::from_secs(8);
    let onprem = Tansu::start();
    let mut eh = EventHubsEmulator::start();
    let source = kafka::plain(&onprem.listener());
    kafka::create_topic(&source, TOPIC, PARTITIONS);
    let (work, topo) = tansu_to_event_hubs(&onprem, &eh);
    let mirror = Mirror::start(work, topo, eh_env(&eh));
    let target = KeyCounter::start(&eh.client_config(), REMOTE, NAME, "target");
    let eh = &mut eh;
    held_fault(NAME, &source, mirror, target, DOWN, move || {
        eh.stop_emulator();
        move || eh.start_emulator_again()
    });
}
