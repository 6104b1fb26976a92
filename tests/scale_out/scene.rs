//! A scene: a fleet of instances sharing one flow, a stream into the flow's source topic, a
//! ledger of the copies on the target, and a timeline of what was done to the fleet when (each
//! event with how long the partitions took to move on and how long a partition paused).

use super::*;

/// One thing done to the fleet.
struct Event {
    what: String,
    at: Instant,
    /// From the event until every partition had a copy of a record produced after it.
    moved: Duration,
    /// Anything else worth quoting (how long a stop took, ...).
    note: String,
}

/// A fleet replicating one flow under a steady stream, with its timeline.
pub(crate) struct Scene {
    pub(crate) name: &'static str,
    pub(crate) fleet: Fleet,
    pub(crate) ledger: Ledger,
    stream: Option<Stream>,
    source: (&'static str, &'static str),
    started: Instant,
    events: Vec<Event>,
}

/// Where a scene's records go: the clusters' client settings and aliases.
pub(crate) struct Ends {
    pub(crate) source: ClientConfig,
    pub(crate) target: ClientConfig,
    pub(crate) flow: (&'static str, &'static str),
    /// The copy of [`TOPIC`] on the target.
    pub(crate) remote: &'static str,
}

impl Scene {
    /// Starts instances `first` of `fleet`, a stream of `rate` records/s into [`TOPIC`] and a
    /// ledger of `remote` on the target; returns once every first instance replicates some
    /// partition and every partition has copies on the target.
    pub(crate) fn start(
        name: &'static str,
        mut fleet: Fleet,
        ends: &Ends,
        rate: u64,
        first: &[&str],
    ) -> Scene {
        let started = Instant::now();
        for instance in first {
            fleet.start(instance);
        }
        let stream = Stream::start(&ends.source, TOPIC, &all_partitions(), PREFIX, rate);
        let ledger = Ledger::start(&ends.target, ends.remote);
        let mut scene = Scene {
            name,
            fleet,
            ledger,
            stream: Some(stream),
            source: ends.flow,
            started,
            events: Vec::new(),
        };
        for instance in first {
            scene.fleet.wait_owning(instance, TOPIC, MOVE_LIMIT);
        }
        let marks = scene.marks();
        scene.ledger.wait_past(PREFIX, &marks, MOVE_LIMIT);
        eprintln!(
            "{name}: {first:?} streaming after {:.1?}",
            started.elapsed()
        );
        scene
    }

    /// Lets the stream run for `d` with the fleet as it is (checking it stays up).
    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.fleet.assert_alive();
            std::thread::sleep(Duration::from_millis(200).min(until - Instant::now()));
        }
    }

    /// The stream's marks: every record from there on is produced after now.
    fn marks(&self) -> BTreeMap<i32, u64> {
        self.stream.as_ref().expect("the stream runs").marks()
    }

    /// Does `act` to the fleet (it returns a note for the summary), then waits until every
    /// partition has a copy of a record produced after `act` returned, and notes the event
    /// ("moving after": from the start of `act` until then).
    pub(crate) fn event(&mut self, what: String, act: impl FnOnce(&mut Fleet) -> String) {
        let at = Instant::now();
        let note = act(&mut self.fleet);
        let marks = self.marks();
        let moved = loop {
            self.fleet.assert_alive();
            let behind = self.ledger.behind(PREFIX, &marks);
            if behind.is_empty() {
                break at.elapsed();
            }
            assert!(
                at.elapsed() < MOVE_LIMIT,
                "{}: {what}: partitions without a copy of a record produced after it within \
                 {MOVE_LIMIT:?} (partition → highest seq copied; marks {marks:?}): {behind:?}; \
                 the instances replicate {}",
                self.name,
                describe(&self.fleet.ownership(TOPIC))
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        eprintln!(
            "{}: {what} at {:.1?}: every partition moving again after {moved:.1?} {note}",
            self.name,
            at - self.started
        );
        self.events.push(Event {
            what,
            at,
            moved,
            note,
        });
    }

    /// SIGKILL to instance `name`.
    pub(crate) fn kill(&mut self, name: &str) {
        self.event(format!("kill -9 {name}"), |f| {
            f.kill(name);
            String::new()
        });
    }

    /// A new instance `name`; waits until it replicates some partition.
    pub(crate) fn add(&mut self, names: &[&str]) {
        self.event(format!("add {}", names.join(" ")), |f| {
            for name in names {
                f.start(name);
            }
            let owning: Vec<String> = names
                .iter()
                .map(|n| {
                    format!(
                        "{n} owning after {:.1?}",
                        f.wait_owning(n, TOPIC, MOVE_LIMIT)
                    )
                })
                .collect();
            format!("({})", owning.join(", "))
        });
    }

    /// SIGTERM to instances `names` (each exits 0 within 10 s).
    pub(crate) fn stop(&mut self, names: &[&str]) {
        self.event(format!("stop {}", names.join(" ")), |f| {
            let took: Vec<String> = names
                .iter()
                .map(|n| format!("{n} exited after {:.1?}", f.stop(n)))
                .collect();
            format!("({})", took.join(", "))
        });
    }

    /// SIGTERM to instance `name`, then the same instance (name, store) started again; waits
    /// until it replicates some partition again.
    pub(crate) fn restart(&mut self, name: &str) {
        self.event(format!("restart {name}"), |f| {
            let took = f.stop(name);
            f.start(name);
            let owning = f.wait_owning(name, TOPIC, MOVE_LIMIT);
            format!("(exited after {took:.1?}, owning again after {owning:.1?})")
        });
    }

    /// SIGSTOP to instance `name`: its partitions move on once the session times out.
    pub(crate) fn freeze(&mut self, name: &str) {
        self.event(format!("freeze {name}"), |f| {
            f.freeze(name);
            String::new()
        });
    }

    /// SIGCONT to the frozen instance `name`; waits until it replicates some partition again.
    pub(crate) fn thaw(&mut self, name: &str) {
        self.event(format!("thaw {name}"), |f| {
            f.thaw(name);
            let back = f.wait_owning(name, TOPIC, MOVE_LIMIT);
            format!("(owning again after {back:.1?})")
        });
    }

    /// Stops the stream, counts the copies, prints the scene's summary line and asserts: every
    /// record copied exactly once, in order; the partitions split among exactly `survivors`,
    /// each of which replicated records since it (last) started and is ready. Stops them.
    pub(crate) fn finish(mut self, survivors: &[&str]) {
        let sent = self.stream.take().expect("the stream runs").stop();
        let stopped = Instant::now();
        let tally = self.ledger.tally(&[&sent], CATCH_UP);
        let mut timeline = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            let to = self.events.get(i + 1).map_or(stopped, |n| n.at);
            let (pause, partition) = self.ledger.longest_pause(PREFIX, e.at, to);
            timeline.push(format!(
                "{}: moving after {:.1}s, longest pause {:.1}s (partition {partition}) {}",
                e.what,
                e.moved.as_secs_f64(),
                pause.as_secs_f64(),
                e.note
            ));
        }
        println!(
            "SCALE {}: {tally}; {}",
            self.name,
            if timeline.is_empty() {
                "no event".to_string()
            } else {
                timeline.join("; ")
            }
        );
        tally.assert_exact(self.name);
        let (split, _) =
            self.fleet
                .wait_split(survivors, TOPIC, &[self.source], PARTITIONS, MOVE_LIMIT);
        println!(
            "  {}: partitions at the end: {}",
            self.name,
            describe(&split)
        );
        for name in survivors {
            let instance = self.fleet.get(name);
            let replicated = instance
                .replicated(&[&format!("topic=\"{TOPIC}\"")])
                .unwrap_or(0.0);
            assert!(
                replicated > 0.0,
                "{}: instance {name} replicated nothing since it started",
                self.name
            );
            wait_for(
                &format!("{}: /readyz 200 from {name}", self.name),
                MOVE_LIMIT,
                || (instance.readyz() == Some(200)).then_some(()),
            );
        }
        for name in survivors {
            self.fleet.stop(name);
        }
    }
}

/// Partitions 0 to [`PARTITIONS`] - 1.
pub(crate) fn all_partitions() -> Vec<i32> {
    (0..PARTITIONS).collect()
}
