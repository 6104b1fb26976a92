//! `checkpoints`, `translate` and `failover` on real tansu brokers through the real binary:
//! translation through the daemon and through the store gives the same rows, pointing at the
//! copies of the next unread records; failover resumes a group on the target exactly (0 lost,
//! 0 duplicates), is refused (exit 3) while the group is active there and changes nothing as a
//! dry run; failing back resumes it on the source with nothing lost; with the store deleted and
//! the source broker gone, the checkpoints topic on the target answers.
//!
//! Source records are produced batched, and hubmirror batches its copies, so the group resumes
//! from offsets in the middle of record batches on both sides. The scene (two brokers, a flow,
//! a group that read part of the topic) and its helpers are in `cli_offsets/site.rs`.

use hubmirror_test_support as support;

#[path = "cli_offsets/site.rs"]
mod site;

use std::collections::BTreeSet;

use hubmirror::checkpoint::Checkpoint;
use rdkafka::consumer::{CommitMode, Consumer};
use support::hubmirror::{run_to_end, Workdir};
use support::kafka;
use support::topology::TopologyBuilder;

use site::{
    assert_next_unread, committed, execute, keys, mv, resume, rows, setup, wait_active, BACKWARD,
    FORWARD, GROUP, LONG, READ_ON_A, RECORDS,
};

#[test]
fn translate_then_failover_and_failback_resume_exactly() {
    let mut site = setup();
    // (a) While `run` runs: through the daemon, once the store has caught up.
    let live = site.translated("daemon");
    assert_next_unread(&site, &live);
    let out = site.expect(&mv("translate", "a", "b"), 0);
    assert!(out.starts_with("via: daemon") && out.contains("DOWNSTREAM-OFFSET"));
    assert!(
        site.json(&["checkpoints"]).is_empty(),
        "no flow checkpoints groups here"
    );

    // (e) A dry run prints the plan and commits nothing on b.
    let out = site.expect(&mv("failover", "a", "b"), 0);
    assert!(
        out.contains("NEW-OFFSET") && out.contains("dry run"),
        "{out}"
    );
    let plan = site.json(&mv("failover", "a", "b"));
    assert!(plan
        .iter()
        .all(|e| e["current_offset"].is_null() && e["committed"] == false));
    assert!(
        committed(&site.cfg_b).is_empty(),
        "the dry run committed nothing"
    );

    // (d) Refused while the group is active on b; b's offsets stay as its member left them.
    let active = kafka::group_consumer(&site.cfg_b, GROUP, &["a.orders"]);
    kafka::poll_records(&active, 5, LONG);
    active.commit_consumer_state(CommitMode::Sync).unwrap();
    wait_active(&site.cfg_b, true);
    let before = committed(&site.cfg_b);
    assert!(site.expect(&execute("a", "b"), 3).contains("active member"));
    assert_eq!(committed(&site.cfg_b), before, "nothing changed on b");
    drop(active);

    // (b) After `run` stopped: through the store, the same rows.
    site.stop_run();
    assert_eq!(
        site.translated("store"),
        live,
        "the store and the daemon agree"
    );

    // (c) Failover: the group on b reads exactly what it had not read on a.
    wait_active(&site.cfg_b, false);
    let done = site.json(&execute("a", "b"));
    assert!(done.iter().all(|e| e["committed"] == true));
    assert!(
        done.iter().any(|e| e["current_offset"].is_i64()),
        "(d)'s offsets were there"
    );
    let (n, lost, dups) = resume(&site.cfg_b, "a.orders", &site.read_on_a);
    eprintln!("failover a -> b: {n} records read on b, {lost} lost, {dups} duplicates");
    assert_eq!((n, lost, dups), (RECORDS - READ_ON_A, 0, 0));

    // (g) 100 more on b (committed), then fail back: a consumer on a reads the rest, 0 lost.
    wait_active(&site.cfg_b, false);
    let on_b = kafka::group_consumer(&site.cfg_b, GROUP, &["a.orders"]);
    let more = keys(&kafka::poll_records(&on_b, 100, LONG));
    on_b.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(on_b);
    assert!(more.is_disjoint(&site.read_on_a));
    wait_active(&site.cfg_b, false);
    let back = rows(&site.json(&execute("b", "a")), "store", BACKWARD);
    assert!(
        !back.is_empty() && back.values().all(|(_, d)| d.is_some()),
        "{back:?}"
    );
    let read: BTreeSet<String> = site.read_on_a.union(&more).cloned().collect();
    let (n, lost, dups) = resume(&site.cfg_a, "orders", &read);
    eprintln!("failback b -> a: {n} records read on a, {lost} lost, {dups} duplicates");
    assert_eq!(lost, 0);
}

#[test]
fn without_store_and_source_the_checkpoints_topic_answers() {
    let mut site = setup();
    site.translated("daemon");
    site.stop_run();
    let exact = site.translated("store");
    assert_next_unread(&site, &exact);

    // What `run` writes when it checkpoints `app`: an older checkpoint, then the latest.
    let topic = "a.checkpoints.internal";
    if !kafka::topic_names(&site.cfg_b).iter().any(|t| t == topic) {
        kafka::create_topic(&site.cfg_b, topic, 1);
    }
    let mut records = Vec::new();
    for back in [7, 0] {
        for (p, (u, d)) in &exact {
            let back = back.min(*u);
            let cp = Checkpoint {
                group: GROUP.into(),
                topic: "a.orders".into(),
                partition: *p as i32,
                upstream_offset: u - back,
                downstream_offset: d.unwrap() - back,
                metadata: String::new(),
            };
            records.push((0, cp.encode_key().unwrap(), cp.encode_value().unwrap()));
        }
    }
    kafka::produce_batched(&site.cfg_b, topic, &records);

    // The site is lost: its store and its broker.
    let store = site.work.path().join("store");
    std::fs::remove_dir_all(&store).expect("delete the store");
    drop(site.a.take());

    let out = site.expect(&mv("translate", "a", "b"), 0);
    assert!(out.starts_with("via: checkpoints-topic"), "{out}");
    let fallback = site.json(&mv("translate", "a", "b"));
    let fallback = rows(&fallback, "checkpoints-topic", FORWARD);
    assert_eq!(
        fallback, exact,
        "the latest checkpoints give the same answer"
    );
    let cps = site.json(&["checkpoints", "--group", GROUP]);
    assert_eq!(cps.len(), exact.len());
    for c in &cps {
        let (u, d) = exact[&c["partition"].as_i64().unwrap()];
        let want = serde_json::json!({"source": "a", "target": "b", "source_topic": "orders",
            "upstream_offset": u, "target_topic": "a.orders", "downstream_offset": d,
            "via": "checkpoints-topic"});
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&c[k], v, "{k} of {c}");
        }
        assert!(c["age_ms"].as_i64().is_some(), "{c}");
    }

    // Failover from the checkpoints: the group on b reads exactly what it had not read.
    let done = site.json(&execute("a", "b"));
    assert!(done.iter().all(|e| e["committed"] == true));
    let (n, lost, dups) = resume(&site.cfg_b, "a.orders", &site.read_on_a);
    eprintln!("failover from checkpoints: {n} records read on b, {lost} lost, {dups} duplicates");
    assert_eq!((n, lost, dups), (RECORDS - READ_ON_A, 0, 0));
    assert!(
        !store.exists(),
        "the inspection commands never create the store"
    );
}

#[test]
fn usage_errors_exit_2_and_unreachable_clusters_exit_1_naming_them() {
    let work = Workdir::new();
    let (pa, pb) = (support::tansu::free_port(), support::tansu::free_port());
    let topology = TopologyBuilder::new()
        .cluster("a", &format!("127.0.0.1:{pa}"))
        .cluster("b", &format!("127.0.0.1:{pb}"))
        .set(
            "b",
            "sasl",
            "{mechanism: PLAIN, username: u, password: s3cr3t-pw}",
        )
        .cluster("c", &format!("127.0.0.1:{pa}"))
        .flow("a", "b", &["orders"])
        .store("./store")
        .write(&work);
    let c = topology.to_string_lossy().into_owned();
    let cli = |args: &[&str]| {
        let out = run_to_end(&[args, &["-c", &c]].concat(), &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let all = err.clone() + &String::from_utf8_lossy(&out.stdout);
        eprintln!("$ hubmirror {}\n{all}", args.join(" "));
        assert!(!all.contains("s3cr3t-pw"), "a secret was printed");
        (out.status.code(), err)
    };
    let (code, err) = cli(&mv("translate", "a", "c"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("'a' and 'c'") && err.contains("a -> b"),
        "{err}"
    );
    let (code, err) = cli(&mv("translate", "x", "b"));
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown cluster alias 'x'"), "{err}");
    // a is down, so the checkpoints on b are needed; b is down too. Failing back needs b;
    // `checkpoints` without a store needs b.
    for args in [
        mv("translate", "a", "b"),
        mv("failover", "b", "a"),
        vec!["checkpoints"],
    ] {
        let (code, err) = cli(&args);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        let refused = format!("hubmirror: cluster 'b' (127.0.0.1:{pb}): connection refused");
        assert!(err.starts_with(&refused), "{err}");
    }
    std::fs::write(&topology, "clusters: [").unwrap();
    assert_eq!(cli(&["checkpoints"]).0, Some(2));
    assert!(!work.path().join("store").exists(), "never created");
}
