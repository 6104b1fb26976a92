//! hubmirror and its health during and after a fault; tallies, reports, topologies.

use super::*;

/// `hubmirror run` on one topology, restartable on the same topology and store.
pub(crate) struct Mirror {
    /// Holds the topology, the store and the logs (removed on drop).
    pub(crate) _work: Workdir,
    pub(crate) topo: PathBuf,
    pub(crate) addr: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) run: Option<Running>,
}

impl Mirror {
    pub(crate) fn start(work: Workdir, topo: PathBuf, env: Vec<(String, String)>) -> Mirror {
        let addr = work.metrics_addr();
        let mut m = Mirror {
            _work: work,
            topo,
            addr,
            env,
            run: None,
        };
        m.restart();
        m
    }

    /// Starts `hubmirror run` (again).
    pub(crate) fn restart(&mut self) {
        assert!(self.run.is_none(), "hubmirror is running");
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.run = Some(Running::start(&self.topo, &env));
    }

    /// SIGKILL, and waits for the process to go.
    pub(crate) fn kill(&mut self) {
        // Dropping a `Running` kills it with SIGKILL and reaps it.
        drop(self.run.take().expect("hubmirror is running"));
    }

    pub(crate) fn run(&mut self) -> &mut Running {
        self.run.as_mut().expect("hubmirror is running")
    }

    /// With `FAULT_DEBUG` set: prints hubmirror's output so far.
    pub(crate) fn debug_log(&mut self, what: &str) {
        if debug() {
            eprintln!("FAULT_DEBUG {what}:\n{}", self.run().output());
        }
    }

    pub(crate) fn readyz(&self) -> Option<(u16, String)> {
        http_status(&self.addr, "/readyz")
    }

    /// Waits until hubmirror is ready and the target shows stream records.
    pub(crate) fn wait_streaming(&mut self, target: &KeyCounter) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.readyz().is_some_and(|r| r.0 == 200) && target.records() >= RATE {
                return;
            }
            if let Some(status) = self.run().wait(Duration::ZERO) {
                panic!("hubmirror exited: {status}\n{}", self.run().output());
            }
            assert!(
                Instant::now() < deadline,
                "not streaming within 90 s: /readyz {:?}, {} records on the target",
                self.readyz(),
                target.records()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Holds a fault for `duration`, checking every 200 ms that hubmirror stays up (process
    /// alive, `/healthz` 200) and noting what `/readyz` says.
    pub(crate) fn hold_fault(&mut self, duration: Duration) -> Held {
        let start = Instant::now();
        let mut held = Held::default();
        loop {
            if let Some(status) = self.run().wait(Duration::ZERO) {
                panic!(
                    "hubmirror exited {:.1?} into the fault: {status}\n{}",
                    start.elapsed(),
                    self.run().output()
                );
            }
            let health = http_status(&self.addr, "/healthz").map(|r| r.0);
            assert_eq!(
                health,
                Some(200),
                "/healthz {:.1?} into the fault",
                start.elapsed()
            );
            match self.readyz() {
                Some((200, _)) => {}
                Some((503, why)) => {
                    held.not_ready_after.get_or_insert(start.elapsed());
                    held.why.get_or_insert(why.trim().replace('\n', " | "));
                }
                other => panic!("/readyz {:.1?} into the fault: {other:?}", start.elapsed()),
            }
            let left = duration.saturating_sub(start.elapsed());
            if left.is_zero() {
                return held;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }

    /// From `since` (the fault's end) until `/readyz` answers 200 and the target shows a stream
    /// record numbered `first_after` or higher (produced after the fault); at most
    /// [`RECOVERY_WAIT`].
    pub(crate) fn recovery(
        &mut self,
        target: &KeyCounter,
        first_after: u64,
        since: Instant,
    ) -> Recovery {
        let mut r = Recovery {
            took: Duration::ZERO,
            first_answer: None,
            first_ready: None,
            not_ready: None,
            last_readyz: None,
        };
        loop {
            let readyz = self.readyz();
            match &readyz {
                Some((200, _)) => {
                    r.first_ready.get_or_insert(since.elapsed());
                }
                Some((_, why)) => {
                    r.not_ready
                        .get_or_insert_with(|| why.trim().replace('\n', " | "));
                }
                None => {}
            }
            if readyz.is_some() {
                r.first_answer.get_or_insert(since.elapsed());
            }
            let ready = readyz.as_ref().is_some_and(|r| r.0 == 200);
            if debug() && since.elapsed().as_millis() % 500 < 100 {
                let status = support::hubmirror::daemon_status(&self.addr);
                let flow = status.as_ref().map(|s| &s[0]);
                let lag: Option<i64> = flow.and_then(|f| {
                    f["lag"]
                        .as_array()
                        .map(|l| l.iter().filter_map(|p| p["lag"].as_i64()).sum())
                });
                eprintln!(
                    "FAULT_DEBUG {:.1?}: /readyz {:?}, target {} records, highest {} \
                     (post-fault from {first_after}); hubmirror: state {}, replicated {}, \
                     in flight {}, lag {lag:?}",
                    since.elapsed(),
                    readyz.as_ref().map(|r| r.0),
                    target.records(),
                    target.state.highest.load(Ordering::SeqCst),
                    flow.map_or("-".into(), |f| f["state"].to_string()),
                    flow.map_or("-".into(), |f| f["records_replicated"].to_string()),
                    flow.map_or("-".into(), |f| f["records_in_flight"].to_string()),
                );
            }
            r.last_readyz = readyz;
            if (ready && target.saw_from(first_after)) || since.elapsed() >= RECOVERY_WAIT {
                r.took = since.elapsed();
                return r;
            }
            if let Some(status) = self.run().wait(Duration::ZERO) {
                panic!(
                    "hubmirror exited after the fault: {status}\n{}",
                    self.run().output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether `FAULT_DEBUG` asks for hubmirror's logs and a recovery timeline.
pub(crate) fn debug() -> bool {
    std::env::var_os("FAULT_DEBUG").is_some()
}

/// What `/readyz` said while a fault was held.
#[derive(Default)]
pub(crate) struct Held {
    /// How far into the fault `/readyz` first answered 503.
    pub(crate) not_ready_after: Option<Duration>,
    /// The first 503's body.
    pub(crate) why: Option<String>,
}

/// How hubmirror came back after a fault (durations from the fault's end).
pub(crate) struct Recovery {
    /// Until `/readyz` answered 200 with a record produced after the fault on the target.
    pub(crate) took: Duration,
    /// Until `/readyz` answered at all (after a restart: the listener is up).
    pub(crate) first_answer: Option<Duration>,
    /// Until `/readyz` first answered 200.
    pub(crate) first_ready: Option<Duration>,
    /// The first 503's reason, if there was one after the fault.
    pub(crate) not_ready: Option<String>,
    pub(crate) last_readyz: Option<(u16, String)>,
}

impl Recovery {
    /// A short account for the report.
    pub(crate) fn describe(&self) -> String {
        let at = |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{d:.1?}"));
        format!(
            "/readyz answered {}, 200 {}, post-fault record on the target and ready {:.1?}{}",
            at(self.first_answer),
            at(self.first_ready),
            self.took,
            self.not_ready
                .as_ref()
                .map_or(String::new(), |w| format!(" (first 503: {w})"))
        )
    }
}

/// Records lost and copied twice, as counted at the end of a test.
pub(crate) struct Tally {
    pub(crate) sent: usize,
    pub(crate) lost: usize,
    pub(crate) duplicated: usize,
    /// Records the source itself holds more than once (the stream's retries).
    pub(crate) source_duplicated: usize,
}

/// Stops the stream, waits for the target to show every acknowledged record, reads the source
/// back, and counts what was lost and what was copied more than once.
pub(crate) fn tally(
    stream: Stream,
    target: &KeyCounter,
    source: &ClientConfig,
    prefix: &str,
) -> Tally {
    let outcome = stream.stop();
    assert_eq!(
        outcome.unacked, 0,
        "the source never acknowledged some records (last error: {:?})",
        outcome.last_error
    );
    if outcome.failures > 0 {
        eprintln!(
            "the stream retried {} failed produce attempts (last: {:?})",
            outcome.failures, outcome.last_error
        );
    }
    let sent: Vec<u64> = {
        let unique: HashSet<u64> = outcome.acked.iter().copied().collect();
        unique.into_iter().collect()
    };
    let on_target = target.wait_for_all(&sent, CATCH_UP);
    let on_source = KeyCounter::start(source, TOPIC, prefix, "source")
        .wait_for_all(&sent, Duration::from_secs(60));
    let lost = sent.iter().filter(|n| !on_target.contains_key(n)).count();
    let duplicated = on_target
        .iter()
        .map(|(n, copies)| copies.saturating_sub(on_source.get(n).copied().unwrap_or(0).max(1)))
        .sum();
    let source_duplicated = on_source.values().map(|c| c - 1).sum();
    Tally {
        sent: sent.len(),
        lost,
        duplicated,
        source_duplicated,
    }
}

/// Prints the test's one-line summary (and the details on the next line).
pub(crate) fn report(name: &str, t: &Tally, recovery: Duration, details: &str) {
    println!(
        "FAULT {name}: sent {}, lost {}, duplicated {}, recovery {:.1}s",
        t.sent,
        t.lost,
        t.duplicated,
        recovery.as_secs_f64()
    );
    println!(
        "  {name}: {details}; records the source holds twice: {}",
        t.source_duplicated
    );
}

/// Resumes a frozen process when dropped (also when the test fails during the freeze).
pub(crate) struct Frozen(u32);

impl Frozen {
    pub(crate) fn freeze(pid: u32) -> Frozen {
        signal(pid, Signal::SIGSTOP);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, Signal::SIGCONT);
    }
}

/// A seeded splitmix64 for the kill test's random moments; `FAULT_SEED` repeats a run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded() -> (Rng, u64) {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos() as u64
            });
        (Rng(seed), seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Topologies.

/// tansu `onprem` → tansu `dr`.
pub(crate) fn tansu_to_tansu(onprem: &Tansu, dr: &Tansu) -> (Workdir, PathBuf) {
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("onprem", onprem)
        .tansu("dr", dr)
        .flow("onprem", "dr", &[TOPIC])
        .replication("refresh_topics_interval", "2s")
        .replication("static_membership", "true")
        .client("onprem", "session.timeout.ms", SESSION_TIMEOUT_MS)
        .write(&work);
    (work, topo)
}

/// tansu `onprem` → the Event Hubs emulator `eventhub` (pass [`eh_env`] to `hubmirror`).
pub(crate) fn tansu_to_event_hubs(onprem: &Tansu, eh: &EventHubsEmulator) -> (Workdir, PathBuf) {
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs("eventhub", eh)
        .flow("onprem", "eventhub", &[TOPIC])
        .replication("refresh_topics_interval", "2s")
        .replication("static_membership", "true")
        .client("onprem", "session.timeout.ms", SESSION_TIMEOUT_MS)
        .write(&work);
    (work, topo)
}

pub(crate) fn eh_env(eh: &EventHubsEmulator) -> Vec<(String, String)> {
    vec![(CONNECTION_STRING_VAR.to_string(), eh.connection_string())]
}
