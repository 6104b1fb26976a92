//! [`Fleet`]: several `hubmirror run` instances of one topology, as a StatefulSet runs them:
//! each with its own work directory (its copy of the topology, its store, its logs), its own
//! metrics port and `--instance NAME`. Instances are started, stopped (SIGTERM), killed
//! (SIGKILL), frozen (SIGSTOP/SIGCONT) and started again under the same name, store and port.
//! Every process is killed when the fleet is dropped (also when a test fails; their output is
//! printed then).

mod instance;
mod split;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::hubmirror::{signal, Running, Workdir};
use crate::topology::TopologyBuilder;
use split::check_split;

pub use instance::Instance;
pub use split::{describe, Owned};

/// How long a SIGTERM'd instance may take to exit (the contract's clean stop).
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// Lines of each log printed when a test fails (`FLEET_LOG_LINES` to change).
const LOG_TAIL: usize = 300;

/// Instances of one topology, by name.
pub struct Fleet {
    topology: TopologyBuilder,
    env: Vec<(String, String)>,
    instances: BTreeMap<String, Instance>,
}

impl Fleet {
    /// A fleet of `topology` (without `metrics:` or `store:` set: each instance gets its own),
    /// every process started with the environment `env`.
    pub fn new(topology: TopologyBuilder, env: &[(&str, &str)]) -> Fleet {
        Fleet {
            topology,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instances: BTreeMap::new(),
        }
    }

    /// Starts instance `name`: a new one in a new directory, or, when it ran before (stopped
    /// or killed), the same again with its store and metrics port.
    pub fn start(&mut self, name: &str) -> &mut Instance {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let instance = self.instances.entry(name.to_string()).or_insert_with(|| {
            let work = Workdir::new();
            let topology = self.topology.write(&work);
            let addr = work.metrics_addr();
            Instance {
                name: name.to_string(),
                work,
                topology,
                addr,
                run: None,
                frozen: false,
                started: None,
            }
        });
        assert!(instance.run.is_none(), "instance {name} is running already");
        instance.run = Some(Running::start_with_args(
            &instance.topology,
            &["--instance", name],
            &env,
        ));
        instance.started = Some(Instant::now());
        instance
    }

    /// Instance `name` (panics when there is none).
    pub fn get(&self, name: &str) -> &Instance {
        self.instances
            .get(name)
            .unwrap_or_else(|| panic!("no instance {name} in the fleet"))
    }

    fn get_mut(&mut self, name: &str) -> &mut Instance {
        self.instances
            .get_mut(name)
            .unwrap_or_else(|| panic!("no instance {name} in the fleet"))
    }

    /// Every instance ever started, by name.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// The names of the instances with a process (frozen or not).
    pub fn running(&self) -> Vec<String> {
        self.instances
            .values()
            .filter(|i| i.is_running())
            .map(|i| i.name.clone())
            .collect()
    }

    /// The contract's clean stop: SIGTERM, exit 0 within 10 s (panics with its output
    /// otherwise). Returns how long the exit took.
    pub fn stop(&mut self, name: &str) -> Duration {
        let instance = self.get_mut(name);
        assert!(!instance.frozen, "instance {name} is frozen");
        let started = Instant::now();
        let mut run = instance
            .run
            .take()
            .unwrap_or_else(|| panic!("{name} is not running"));
        let status = run.terminate(STOP_WITHIN);
        assert!(
            status.success(),
            "instance {name}: exit after SIGTERM: {status}\n{}",
            run.output()
        );
        started.elapsed()
    }

    /// SIGKILL (also when frozen); waits for the process to go.
    pub fn kill(&mut self, name: &str) {
        let instance = self.get_mut(name);
        // Dropping a `Running` kills it with SIGKILL and reaps it.
        drop(instance.run.take());
        instance.frozen = false;
    }

    /// SIGSTOP.
    pub fn freeze(&mut self, name: &str) {
        let instance = self.get_mut(name);
        assert!(!instance.frozen, "instance {name} is frozen already");
        signal(instance.process().pid(), Signal::SIGSTOP);
        instance.frozen = true;
    }

    /// SIGCONT.
    pub fn thaw(&mut self, name: &str) {
        let instance = self.get_mut(name);
        assert!(instance.frozen, "instance {name} is not frozen");
        signal(instance.process().pid(), Signal::SIGCONT);
        instance.frozen = false;
    }

    /// Panics (with its output) when a process of the fleet exited by itself.
    pub fn assert_alive(&mut self) {
        for instance in self.instances.values_mut() {
            let name = instance.name.clone();
            if let Some(run) = instance.run.as_mut() {
                if let Some(status) = run.wait(Duration::ZERO) {
                    panic!("instance {name} exited: {status}\n{}", run.output());
                }
            }
        }
    }

    /// The partitions of `topic` each running, unfrozen instance replicates now (instances
    /// that do not answer are left out).
    pub fn ownership(&self, topic: &str) -> BTreeMap<String, BTreeSet<Owned>> {
        self.instances
            .values()
            .filter_map(|i| Some((i.name.clone(), i.owned(topic)?)))
            .collect()
    }

    /// Waits (at most `timeout`) until instance `name` replicates at least one partition of
    /// `topic`; returns how long that took. Panics with what it replicates.
    pub fn wait_owning(&mut self, name: &str, topic: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            self.assert_alive();
            let owned = self.get(name).owned(topic);
            if owned.as_ref().is_some_and(|o| !o.is_empty()) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "instance {name} replicates no partition of {topic} within {timeout:?} \
                 (/status: {:?})",
                self.get(name).status()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (at most `timeout`) until the partitions of `topic` are split among exactly the
    /// instances `names`: each replicates at least one, none replicates one another does, and
    /// together they replicate `partitions` of each of `flows` (`(source, target)`). Returns
    /// the split and how long the wait took; panics with the last split seen.
    pub fn wait_split(
        &mut self,
        names: &[&str],
        topic: &str,
        flows: &[(&str, &str)],
        partitions: i32,
        timeout: Duration,
    ) -> (BTreeMap<String, BTreeSet<Owned>>, Duration) {
        let started = Instant::now();
        loop {
            self.assert_alive();
            let split = self.ownership(topic);
            match check_split(&split, names, flows, partitions) {
                Ok(()) => return (split, started.elapsed()),
                Err(why) => assert!(
                    started.elapsed() < timeout,
                    "the partitions of {topic} not split among {names:?} within {timeout:?}: \
                     {why}; last seen: {}",
                    describe(&split)
                ),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Fleet {
    /// Kills every process; when a test failed, prints the end of every instance's logs.
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let tail = std::env::var("FLEET_LOG_LINES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(LOG_TAIL);
        for instance in self.instances.values_mut() {
            if let Some(mut run) = instance.run.take() {
                run.quiet();
                drop(run);
            }
            if panicking {
                instance.print_logs(tail);
            }
        }
    }
}
