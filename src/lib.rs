//! hubmirror — an active-active replicator between Apache Kafka clusters and Azure Event Hubs
//! namespaces (through their Kafka endpoint), modelled on MirrorMaker 2.
//!
//! # Layout
//!
//! Data moves one way: source → [`flow`] → target.
//!
//! - [`topology`]: `topology.yaml` — the model, loading with `file:line:col` errors, `${VAR}`,
//!   secrets that never print, Event Hubs connection strings.
//! - [`cluster`]: librdkafka client settings and clients per cluster, built from the model.
//! - [`naming`]: remote topic names (default / identity policies), internal topics, source chains.
//! - [`headers`]: the `hubmirror.*` origin headers and the loop rule.
//! - [`instance`]: which instance of the topology this process is (static group membership).
//! - [`mm2`]: MirrorMaker 2's wire encoding of heartbeats and checkpoints (strict decoding).
//! - [`heartbeat`]: MM2-format heartbeats: emitting, reading, upstream clusters and hops.
//! - [`checkpoint`]: MM2-format checkpoints; consumer groups: listing, committed offsets, commits.
//! - [`flow`]: one direction source → target: discover topics, consume, produce, ack, commit.
//! - [`store`]: the sled offset-translation store: exact upstream → downstream segments, checkpoints.
//! - [`segments`]: every instance's segments shared through a topic on the target, so each
//!   store translates what any instance replicated.
//! - [`metrics`]: Prometheus counters shared by every flow.
//! - [`status`]: what the running daemon knows of each flow (state, rates, heartbeat latency).
//! - [`server`]: the HTTP listener: `/metrics`, `/healthz`, `/readyz`, `/status`.
//! - [`shutdown`]: the one cancellation token every task watches.
//! - [`daemon`]: `hubmirror run` as a library call: every flow, heartbeats, checkpoints, the
//!   HTTP listener, supervised until the shutdown token is cancelled.
//! - [`import`]: `hubmirror import`: Strimzi MirrorMaker resources and MirrorMaker 2 properties
//!   → `topology.yaml`.
//! - [`cli`]: the `hubmirror` command line.

pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod entra;
pub mod flow;
pub mod headers;
pub mod heartbeat;
pub mod import;
pub mod instance;
pub mod metrics;
pub mod mm2;
pub mod naming;
pub mod segments;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod topology;
