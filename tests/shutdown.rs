//! Stopping `hubmirror run` with signals while the target is frozen (SIGSTOP), so that records
//! are in flight: the first SIGTERM drains for a bounded time and exits 0 within 10 s; a second
//! signal exits at once.

use hubmirror_test_support as support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::hubmirror::{daemon_status, signal, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

/// A → B running, B frozen with records in flight.
fn frozen_target() -> (Tansu, Tansu, Workdir, Running) {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "orders", 2);
    kafka::create_topic(&kafka::plain(&b.listener()), "a.orders", 2);
    kafka::produce_test_records(&ca, "orders", 2, 0..100, 1_700_000_000_000);
    let work = Workdir::new();
    // Records in flight time out after half the source's session timeout (5 s by default): a
    // 20 s session keeps them waiting past the 7 s drain deadline, which is what is tested here.
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .client("a", "session.timeout.ms", "20000")
        .flow("a", "b", &["orders"])
        .write(&work);
    let run = Running::start(&topo, &[]);
    kafka::read_all(
        &kafka::plain(&b.listener()),
        "a.orders",
        100,
        Duration::from_secs(60),
    );
    signal(b.pid(), Signal::SIGSTOP);
    kafka::produce_test_records(&ca, "orders", 2, 100..1100, 1_700_000_000_000);
    // Wait until hubmirror really holds unacknowledged records.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = daemon_status(&work.metrics_addr());
        let in_flight = status
            .as_ref()
            .and_then(|s| s[0]["records_in_flight"].as_u64())
            .unwrap_or(0);
        if in_flight > 0 {
            println!("{in_flight} records in flight to the frozen target");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no records in flight: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (a, b, work, run)
}

#[test]
fn first_signal_drains_for_a_bounded_time_and_exits_zero() {
    let (_a, b, _work, mut run) = frozen_target();
    let started = Instant::now();
    let status = run.terminate(Duration::from_secs(10));
    signal(b.pid(), Signal::SIGCONT);
    let took = started.elapsed();
    println!("stopped in {took:?} with a frozen target: {status}");
    assert!(status.success(), "{}", run.output());
    // It waited for the in-flight records (the drain timeout), then gave up on them.
    assert!(
        took >= Duration::from_secs(6),
        "did not wait for in-flight records: {took:?}"
    );
    run.wait_for_line(&["not acknowledged within"], Duration::from_secs(1));
}

#[test]
fn second_signal_exits_at_once() {
    let (_a, b, _work, mut run) = frozen_target();
    run.sigterm();
    run.wait_for_line(&["draining"], Duration::from_secs(5));
    let second = Instant::now();
    run.sigterm();
    let status = run.wait(Duration::from_secs(2)).unwrap_or_else(|| {
        panic!(
            "still running 2 s after the second signal\n{}",
            run.output()
        )
    });
    signal(b.pid(), Signal::SIGCONT);
    println!(
        "exited {:?} after the second signal: {status}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130));
}
