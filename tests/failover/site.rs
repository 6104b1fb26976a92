//! The site: brokers a and b, `hubmirror run` with the flow a → b, and the CLI calls the tests
//! make (`checkpoints`, `translate`, `failover`, all `--json`).

use super::*;

/// Hubmirror first, so it is killed before its brokers.
pub(crate) struct Site {
    pub(crate) run: Option<Running>,
    pub(crate) work: Workdir,
    pub(crate) topology: PathBuf,
    /// `orders` on b: the remote name of a's `orders`.
    pub(crate) remote: &'static str,
    pub(crate) ca: ClientConfig,
    pub(crate) cb: ClientConfig,
    pub(crate) a: Option<Tansu>,
    pub(crate) b: Tansu,
}

impl Site {
    /// Brokers a and b, `orders` with `partitions` on a (and on b when `on_b`).
    pub(crate) fn new(policy: &'static str, partitions: i32, on_b: bool) -> Site {
        let (a, b) = (Tansu::start(), Tansu::start());
        let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
        kafka::create_topic(&ca, "orders", partitions);
        if on_b {
            kafka::create_topic(&cb, "orders", partitions);
        }
        let work = Workdir::new();
        let topology = topology(policy, &a, &b, "./store").write(&work);
        let remote = ["a.orders", "orders"][usize::from(policy == "identity")];
        let (run, a) = (None, Some(a));
        Site {
            run,
            work,
            topology,
            remote,
            ca,
            cb,
            a,
            b,
        }
    }

    pub(crate) fn start_run(&mut self) {
        self.run = Some(Running::start(&self.topology, &[]));
    }

    /// Polls `checkpoints --group app --json` until its upstream offsets are `pos`.
    pub(crate) fn checkpoint_at(&self, pos: &Pos) {
        let started = Instant::now();
        let check = || upstream(&json(&self.topology, CHECKPOINTS)) == *pos;
        wait_until(&format!("a checkpoint at {pos:?}"), check);
        eprintln!("checkpoint at {pos:?} after {:?}", started.elapsed());
    }

    /// `failover ... --execute --json`: a committed row per partition of `pos` (the group's
    /// offsets on a), each answered `via`.
    pub(crate) fn failover(&self, via: &str, pos: &Pos) {
        let rows = json(&self.topology, FAILOVER);
        assert_eq!(upstream(&rows), *pos, "{rows:?}");
        for r in &rows {
            assert!(r["committed"] == true && r["via"] == via, "{r}");
            assert_eq!(r["target_topic"], self.remote, "{r}");
        }
    }
}

/// `hubmirror <command> --json -c <topology>`, which must exit 0: its array.
pub(crate) fn json(topology: &Path, command: &str) -> Vec<Value> {
    let c = topology.to_string_lossy().into_owned();
    let args: Vec<&str> = command.split(' ').collect();
    let out = run_to_end(&[&args[..], &["--json", "-c", &c]].concat(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hubmirror {args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// Brokers a and b, the flow a → b of `orders` checkpointing every group each second.
pub(crate) fn topology(policy: &str, a: &Tansu, b: &Tansu, store: &str) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("policy", policy)
        .replication("checkpoints_interval", "1s")
        .replication("refresh_topics_interval", "1s")
        .store(store)
}

/// [`wait_for`] `done` to say yes, at most [`LONG`].
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, LONG, || done().then_some(()));
}

/// partition → upstream_offset of `checkpoints`, `translate` or `failover` rows.
pub(crate) fn upstream(rows: &[Value]) -> Pos {
    let row = |r: &Value| (num(r, "partition") as i32, num(r, "upstream_offset"));
    rows.iter().map(row).collect()
}

/// Field `k` of a JSON row, a number (-1 when it is not).
pub(crate) fn num(r: &Value, k: &str) -> i64 {
    r[k].as_i64().unwrap_or(-1)
}
