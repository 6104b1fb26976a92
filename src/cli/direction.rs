//! Which flows link the two clusters of `translate`/`failover --from A --to B`, and how each
//! topic the group reads on A moves to B.

use super::error::CommandError;
use super::opt::Move;
use crate::naming::Naming;
use crate::topology::{Flow, Topology};

/// The flows between `from` and `to` (at least one of them exists).
#[derive(Debug, Clone, Copy)]
pub struct Direction<'t> {
    /// The flow `from → to`: failing over.
    pub forward: Option<&'t Flow>,
    /// The flow `to → from`: failing back.
    pub backward: Option<&'t Flow>,
}

/// How a topic on `from` moves to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// The forward flow replicates it (to its remote name).
    Forward {
        /// Set when the reverse flow also writes into the topic (identity both ways): the name
        /// of the topic on the other side.
        back: Option<String>,
    },
    /// It is the backward flow's copy of this topic on `to`.
    Backward(String),
}

impl<'t> Direction<'t> {
    /// Checks both aliases (exit 2 for an unknown one, or the same one twice) and finds the
    /// flows; exit 2, listing the flows there are, when no flow links the two clusters.
    pub fn resolve(t: &'t Topology, mv: &Move) -> Result<Direction<'t>, CommandError> {
        for alias in [&mv.from, &mv.to] {
            if !t.clusters.contains_key(alias) {
                let known: Vec<&str> = t.clusters.keys().map(String::as_str).collect();
                return Err(CommandError::Usage(format!(
                    "unknown cluster alias '{alias}' (the topology has: {})",
                    known.join(", ")
                )));
            }
        }
        if mv.from == mv.to {
            return Err(CommandError::Usage(format!(
                "--from and --to are both '{}': they must be different clusters",
                mv.from
            )));
        }
        let find = |s: &str, d: &str| t.flows.iter().find(|f| f.source == s && f.target == d);
        let dir = Direction {
            forward: find(&mv.from, &mv.to),
            backward: find(&mv.to, &mv.from),
        };
        if dir.forward.is_none() && dir.backward.is_none() {
            let have: Vec<String> = t
                .flows
                .iter()
                .map(|f| format!("{} -> {}", f.source, f.target))
                .collect();
            let (a, b) = (&mv.from, &mv.to);
            return Err(CommandError::Usage(format!(
                "no flow links '{a}' and '{b}': moving a group needs a flow {a} -> {b} (failover) \
                 or {b} -> {a} (failback); the flows are: {}",
                have.join(", ")
            )));
        }
        Ok(dir)
    }

    /// How `topic` on `from` moves: forward when the flow `from → to` replicates it; backward
    /// when it is the remote topic the flow `to → from` writes for a topic it replicates
    /// (`b.orders` → `orders` under the default policy, `orders` → `orders` under identity);
    /// `None` when neither flow concerns it. When both do (identity both ways) it is forward,
    /// carrying the backward name: the topic holds both sides' records.
    pub fn way(&self, naming: &Naming, topic: &str) -> Option<Way> {
        let back = self.backward.and_then(|back| {
            let original = naming.upstream_topic(topic)?;
            let written_by_back = naming.remote_topic(&back.source, original) == topic;
            (written_by_back && naming.flow_replicates(back, original))
                .then(|| original.to_string())
        });
        if self
            .forward
            .is_some_and(|f| naming.flow_replicates(f, topic))
        {
            return Some(Way::Forward { back });
        }
        back.map(Way::Backward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology;

    fn topology(policy: &str, flows: &str) -> Topology {
        let text = format!(
            "clusters:\n  a: {{bootstrap_servers: 'x:1'}}\n  b: {{bootstrap_servers: 'y:1'}}\n  \
             c: {{bootstrap_servers: 'z:1'}}\nflows:\n{flows}replication: {{policy: {policy}}}\n"
        );
        topology::parse(std::path::Path::new("t.yaml"), &text).expect("valid")
    }

    fn mv(from: &str, to: &str) -> Move {
        Move {
            group: "g".into(),
            from: from.into(),
            to: to.into(),
            json: false,
        }
    }

    #[test]
    fn aliases_and_flows_are_checked() {
        let t = topology("default", "  - {source: a, target: b, topics: [orders]}\n");
        let usage = |from, to| match Direction::resolve(&t, &mv(from, to)) {
            Err(CommandError::Usage(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(usage("x", "b").contains("unknown cluster alias 'x'"));
        assert!(usage("a", "a").contains("both 'a'"));
        let none = usage("a", "c");
        assert!(
            none.contains("'a' and 'c'") && none.contains("the flows are: a -> b"),
            "{none}"
        );
        let d = Direction::resolve(&t, &mv("b", "a")).expect("failback");
        assert!(d.forward.is_none() && d.backward.is_some());
    }

    #[test]
    fn topics_move_forward_or_back() {
        let both = "  - {source: a, target: b, topics: [orders]}\n  \
                    - {source: b, target: a, topics: [orders]}\n";
        let t = topology("default", both);
        let n = Naming::from_replication(&t.replication);
        let d = Direction::resolve(&t, &mv("a", "b")).expect("linked");
        assert_eq!(d.way(&n, "orders"), Some(Way::Forward { back: None }));
        assert_eq!(d.way(&n, "b.orders"), Some(Way::Backward("orders".into())));
        assert_eq!(d.way(&n, "c.orders"), None);
        assert_eq!(d.way(&n, "b.payments"), None, "not replicated by b -> a");
        assert_eq!(d.way(&n, "a.orders"), None, "never copied back to a");

        let t = topology("identity", both);
        let n = Naming::from_replication(&t.replication);
        let d = Direction::resolve(&t, &mv("a", "b")).expect("linked");
        assert_eq!(
            d.way(&n, "orders"),
            Some(Way::Forward {
                back: Some("orders".into())
            }),
            "both ways"
        );
        let t = topology("identity", "  - {source: b, target: a, topics: [orders]}\n");
        let n = Naming::from_replication(&t.replication);
        let d = Direction::resolve(&t, &mv("a", "b")).expect("failback");
        assert_eq!(d.way(&n, "orders"), Some(Way::Backward("orders".into())));
        assert_eq!(d.way(&n, "other"), None);
    }
}
