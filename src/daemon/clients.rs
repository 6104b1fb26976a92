//! The clients the daemon shares per cluster, created on first use.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::admin::AdminClient;
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;

use super::RunError;
use crate::cluster::{clients, oauth, ClusterContext, FatalClusterError};
use crate::topology::Topology;

/// Per cluster: one producer and one admin client, shared by every task writing to it (flows
/// into it, heartbeats and checkpoints on it).
#[derive(Clone)]
pub(super) struct ClusterClients {
    pub producer: FutureProducer<ClusterContext>,
    pub admin: Arc<AdminClient<ClusterContext>>,
}

/// Creates [`ClusterClients`] lazily, once per cluster.
pub(super) struct Clients<'t> {
    topology: &'t Topology,
    /// Where every client reports an error no retry can fix.
    fatal: mpsc::UnboundedSender<FatalClusterError>,
    by_alias: HashMap<String, ClusterClients>,
}

impl<'t> Clients<'t> {
    pub fn new(topology: &'t Topology, fatal: mpsc::UnboundedSender<FatalClusterError>) -> Self {
        Clients {
            topology,
            fatal,
            by_alias: HashMap::new(),
        }
    }

    /// The clients of cluster `alias`, created on the first call.
    pub fn get(&mut self, alias: &str) -> Result<ClusterClients, RunError> {
        if let Some(c) = self.by_alias.get(alias) {
            return Ok(c.clone());
        }
        let cluster = &self.topology.clusters[alias];
        let ctx = || clients::context(cluster, self.fatal.clone());
        let producer =
            clients::producer(cluster, ctx()).map_err(RunError::client(alias, "producer"))?;
        let admin =
            clients::admin(cluster, ctx()).map_err(RunError::client(alias, "admin client"))?;
        let admin = Arc::new(admin);
        // Nobody polls an admin client: it gets each new Entra ID token pushed.
        oauth::keep_fresh(alias, &admin);
        let c = ClusterClients { producer, admin };
        self.by_alias.insert(alias.to_string(), c.clone());
        Ok(c)
    }

    /// Drops every client on a thread of its own: destroying a producer waits on its brokers
    /// (for ever if one is frozen), and everything acknowledged is committed by the time this
    /// is called, so the process may exit without waiting for that.
    pub fn close_in_background(self) {
        let by_alias = self.by_alias;
        std::thread::spawn(move || drop(by_alias));
    }
}
