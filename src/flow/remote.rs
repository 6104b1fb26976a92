//! The target side of topic discovery: whether a remote topic can take its source topic's
//! partitions, and what discovery does when it cannot — create it, add the partitions it lacks
//! (MirrorMaker 2 matches partition counts on every refresh and never reduces them), or report
//! it and let the partitions it has flow.
//!
//! [`plan`] decides; [`Remote`] carries the decision out on the target.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::types::RDKafkaErrorCode;

use super::topic_configs::{self, ConfigSync};
use crate::cluster::ClusterContext;

/// How long one CreatePartitions request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What discovery does about one remote topic on this refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// It exists with at least the source's partitions (never reduced): every partition flows.
    Ready,
    /// It is missing: create it with the source's partition count.
    Create,
    /// It is missing and `create_topics` is off: nothing of the topic flows.
    Missing,
    /// It has `have` partitions, fewer than the source: add the difference.
    Grow {
        /// The remote topic's partition count now.
        have: i32,
    },
    /// It has `have` partitions, fewer than the source, and this instance does not add them now:
    /// partitions below `have` flow, the others wait.
    Short {
        /// The remote topic's partition count now.
        have: i32,
        /// Whether `create_topics` is off (the operator must add them: say so).
        by_hand: bool,
    },
}

/// What to do about a remote topic that has `have` partitions (`None`: missing) when its source
/// topic has `want`. `grows`: whether this instance adds missing partitions now (see
/// [`may_grow`]).
pub fn plan(have: Option<i32>, want: i32, create_topics: bool, grows: bool) -> Plan {
    match have {
        None if create_topics => Plan::Create,
        None => Plan::Missing,
        Some(have) if have >= want => Plan::Ready,
        Some(have) if !create_topics => Plan::Short {
            have,
            by_hand: true,
        },
        Some(have) if grows => Plan::Grow { have },
        Some(have) => Plan::Short {
            have,
            by_hand: false,
        },
    }
}

/// Whether this instance adds partitions to a source topic's remote topic: the one that owns
/// partition 0 of the source topic in the flow's group does, so that with several instances it
/// is asked once; a topic this run has not routed yet is owned by nobody, and every instance
/// that sees it first asks (the target grows it once and tells the others it already has them).
pub fn may_grow(routed_before: bool, owns_partition_0: bool) -> bool {
    !routed_before || owns_partition_0
}

/// How many partitions of a source topic flow after a refresh, or why none do.
pub type Outcome = Result<Served, String>;

/// The partitions of a source topic its remote topic can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Source partitions `0..writable` flow; the others wait for the remote topic to grow.
    pub writable: i32,
    /// Why the others wait (a complete sentence naming topic, cluster and fix), when some do.
    pub short: Option<Shortfall>,
}

/// Why some partitions of a topic wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The sentence to log.
    pub reason: String,
    /// Whether it is worth an error line (`false`: another instance is adding them).
    pub loud: bool,
}

/// Carries plans out on the target cluster.
pub struct Remote<'a> {
    /// The target's admin client.
    pub admin: &'a Arc<AdminClient<ClusterContext>>,
    /// The target cluster's alias.
    pub target: &'a str,
    /// The flow's name, for log lines.
    pub flow: &'a str,
    /// Topic config sync (a created topic gets its source's configs), when on.
    pub configs: Option<&'a ConfigSync>,
}

impl Remote<'_> {
    /// Carries `plan` out for `remote`, whose source topic `topic` has `want` partitions.
    pub async fn apply(&self, plan: Plan, (topic, remote): (&str, &str), want: i32) -> Outcome {
        let target = self.target;
        let all = Served {
            writable: want,
            short: None,
        };
        match plan {
            Plan::Ready => Ok(all),
            Plan::Missing => Err(format!(
                "target topic '{remote}' is missing on cluster '{target}' and \
                 replication.create_topics is false: create it with {want} partitions"
            )),
            Plan::Create => {
                let (admin, target) = (&**self.admin, self.target);
                topic_configs::create(admin, self.configs, (topic, remote), want, target)
                    .await
                    .map(|()| all)
            }
            Plan::Short { have, by_hand } => Ok(short(remote, target, (have, want), by_hand)),
            Plan::Grow { have } => match self.grow_checked(remote, want).await {
                Ok(()) => Ok(all),
                Err(why) => Ok(Served {
                    writable: have,
                    short: Some(Shortfall {
                        reason: format!(
                            "target topic '{remote}' on cluster '{target}' has {have} of the \
                             source's {want} partitions and the target refused to add {} ({why}): \
                             source partitions {have}..{} wait while the others flow; add the \
                             partitions to '{remote}' on '{target}' (on Event Hubs: Premium or \
                             Dedicated tier, or create the event hub with {want} partitions)",
                            want - have,
                            want - 1
                        ),
                        loud: true,
                    }),
                }),
            },
        }
    }

    /// [`Self::grow`], with "it has that many already" checked on the target: true when
    /// another instance was first, a refusal otherwise.
    async fn grow_checked(&self, remote: &str, want: i32) -> Result<(), String> {
        match self.grow(remote, want).await {
            Ok(()) => {
                tracing::info!(flow = %self.flow, topic = remote, cluster = %self.target, partitions = want, "added partitions to the target topic");
                Ok(())
            }
            Err(Refusal::AlreadyGrown) if self.partitions(remote).await >= Some(want) => {
                tracing::info!(flow = %self.flow, topic = remote, cluster = %self.target, "another instance added the target topic's partitions");
                Ok(())
            }
            Err(Refusal::AlreadyGrown) => Err(refusal_text(RDKafkaErrorCode::InvalidPartitions)),
            Err(Refusal::Refused(why)) => Err(why),
        }
    }

    /// The partition count of `remote` on the target, if it can be read (it exists: naming it
    /// cannot create it).
    async fn partitions(&self, remote: &str) -> Option<i32> {
        let admin = self.admin.clone();
        let topic = remote.to_string();
        tokio::task::spawn_blocking(move || {
            let md = admin
                .inner()
                .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
                .ok()?;
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())?;
            Some(t.partitions().len() as i32)
        })
        .await
        .ok()
        .flatten()
    }

    /// Asks the target to give `remote` `partitions` partitions in all.
    async fn grow(&self, remote: &str, partitions: i32) -> Result<(), Refusal> {
        let new = NewPartitions::new(remote, partitions as usize);
        let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_partitions([&new], &opts)
            .await
            .map_err(|e| match e {
                rdkafka::error::KafkaError::AdminOp(code) => Refusal::Refused(refusal_text(code)),
                e => Refusal::Refused(e.to_string()),
            })?;
        for result in results {
            match result {
                Ok(_) => {}
                // Kafka's answer when the topic has that many already.
                Err((_, RDKafkaErrorCode::InvalidPartitions)) => return Err(Refusal::AlreadyGrown),
                Err((_, code)) => return Err(Refusal::Refused(refusal_text(code))),
            }
        }
        Ok(())
    }
}

/// Why a CreatePartitions request did not add partitions.
enum Refusal {
    /// The topic has at least that many already (another instance was first).
    AlreadyGrown,
    /// The target refused or cannot: its words.
    Refused(String),
}

/// The target's refusal in words a user acts on.
fn refusal_text(code: RDKafkaErrorCode) -> String {
    match code {
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion => {
            "it does not support CreatePartitions".into()
        }
        code => code.to_string(),
    }
}

/// The shortfall of a remote topic this instance does not grow now.
fn short(remote: &str, target: &str, (have, want): (i32, i32), by_hand: bool) -> Served {
    let reason = if by_hand {
        format!(
            "target topic '{remote}' on cluster '{target}' has {have} of the source's {want} \
             partitions and replication.create_topics is false: source partitions {have}..{} \
             wait while the others flow; add {} partitions to '{remote}' on '{target}'",
            want - 1,
            want - have
        )
    } else {
        format!(
            "target topic '{remote}' on cluster '{target}' has {have} of the source's {want} \
             partitions: the instance that owns partition 0 of the source topic adds them"
        )
    };
    Served {
        writable: have,
        short: Some(Shortfall {
            reason,
            loud: by_hand,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_topic_is_created_only_when_allowed() {
        assert_eq!(plan(None, 4, true, false), Plan::Create);
        assert_eq!(plan(None, 4, false, true), Plan::Missing);
    }

    #[test]
    fn a_topic_with_enough_partitions_is_never_reduced() {
        assert_eq!(plan(Some(4), 4, true, true), Plan::Ready);
        assert_eq!(plan(Some(10), 4, true, true), Plan::Ready);
        assert_eq!(plan(Some(10), 4, false, false), Plan::Ready);
    }

    #[test]
    fn a_short_topic_grows_only_with_create_topics_and_by_its_grower() {
        assert_eq!(plan(Some(4), 10, true, true), Plan::Grow { have: 4 });
        assert_eq!(
            plan(Some(4), 10, true, false),
            Plan::Short {
                have: 4,
                by_hand: false
            }
        );
        assert_eq!(
            plan(Some(4), 10, false, true),
            Plan::Short {
                have: 4,
                by_hand: true
            }
        );
    }

    #[test]
    fn the_owner_of_partition_0_grows_a_routed_topic_and_anyone_a_new_one() {
        assert!(may_grow(false, false));
        assert!(may_grow(true, true));
        assert!(!may_grow(true, false));
    }

    #[test]
    fn a_topic_left_short_by_hand_names_counts_and_fix() {
        let s = short("backup.t", "b", (4, 10), true);
        assert_eq!(s.writable, 4);
        let why = s.short.expect("short");
        assert!(why.loud);
        assert!(why.reason.contains("has 4 of the source's 10 partitions"));
        assert!(why.reason.contains("source partitions 4..9 wait"));
        assert!(why.reason.contains("add 6 partitions to 'backup.t' on 'b'"));
        let quiet = short("backup.t", "b", (4, 10), false).short.expect("short");
        assert!(!quiet.loud, "another instance grows it: no error line");
    }

    #[test]
    fn an_unsupported_create_partitions_is_said_plainly() {
        assert_eq!(
            refusal_text(RDKafkaErrorCode::UnsupportedFeature),
            "it does not support CreatePartitions"
        );
    }
}
