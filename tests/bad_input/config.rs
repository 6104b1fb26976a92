//! Errors found offline, before anything connects: the file's syntax and types, unknown keys and
//! aliases, a missing variable, an unreadable secret file, a malformed connection string. Each is
//! one line at `file:line:col` and exit 2, from `validate` and `run` alike; the topologies are
//! written by hand, since the positions point into their text.

use super::*;

use std::path::Path;

use crate::support::hubmirror::run_to_end;

/// Clusters for errors found before anything connects (nothing listens on ports 1 and 2).
const AB: &str =
    "clusters:\n  a:\n    bootstrap_servers: localhost:1\n  b:\n    bootstrap_servers: localhost:2\n";
const FLOW: &str = "flows:\n  - source: a\n    target: b\n    topics: [t]\n";

/// `hubmirror <cmd> -c <file>`: the exit code and stderr, which must be one line.
fn one_line(cmd: &str, file: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let env = [env, &[("RUST_LOG", "info")][..]].concat();
    let out = run_to_end(&[cmd, "-c", &file.display().to_string()], &env);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "{cmd}: one line:\n{stderr}");
    assert!(out.stdout.is_empty(), "{cmd}: nothing on stdout");
    (out.status.code(), stderr)
}

/// Asserts that `validate` and `run` refuse `file` with exit 2 and the same line
/// `<file>:<line>:<col>: ...` holding every needle; returns that line.
fn refused_file(file: &Path, env: &[(&str, &str)], at: (usize, usize), needles: &[&str]) -> String {
    let prefix = format!("{}:{}:{}: ", file.display(), at.0, at.1);
    let (code, validate) = one_line("validate", file, env);
    assert_eq!(code, Some(2), "validate: {validate}");
    let (code, run) = one_line("run", file, env);
    assert_eq!(
        (code, &run),
        (Some(2), &validate),
        "run: exit 2, the same line"
    );
    assert!(run.starts_with(&prefix), "starts with {prefix:?}: {run}");
    for n in needles {
        assert!(run.contains(n), "lacks {n:?}: {run}");
    }
    println!("{run}");
    run
}

/// [`refused_file`] for a topology `text`, with `env`.
fn refused_env(text: &str, env: &[(&str, &str)], at: (usize, usize), needles: &[&str]) -> String {
    let work = Workdir::new();
    let file = work.path().join("topology.yaml");
    std::fs::write(&file, text).expect("write topology");
    refused_file(&file, env, at, needles)
}

fn refused(text: &str, at: (usize, usize), needles: &[&str]) {
    refused_env(text, &[], at, needles);
}

#[test]
fn malformed_yaml_exits_2_at_the_spot() {
    let tab = format!("{AB}flows:\n\t- source: a\n");
    refused(&tab, (7, 2), &["YAML syntax error", "tabs disallowed"]);
    let colon = format!("{AB}flows:\n  - source: a\n    target: b: c\n");
    refused(
        &colon,
        (8, 14),
        &["YAML syntax error", "mapping values are not allowed"],
    );
}

#[test]
fn wrong_types_exit_2_naming_the_key_and_what_it_takes() {
    let cases = [
        (
            "replication:\n  create_topics: maybe",
            (11, 18),
            "create_topics must be `true` or `false`",
        ),
        (
            "replication:\n  heartbeats_interval: 10",
            (11, 24),
            "`10` is not a duration",
        ),
        (
            "metrics:\n  listen: 9464",
            (11, 11),
            "listen `9464` is not an IP address and port",
        ),
        (
            "replication:\n  policy: [x]",
            (11, 11),
            "`replication.policy` must be a single value",
        ),
        (
            "store: ./data",
            (10, 8),
            "`store` must be a mapping, found a single value",
        ),
    ];
    for (tail, at, needle) in cases {
        refused(&format!("{AB}{FLOW}{tail}\n"), at, &[needle]);
    }
}

#[test]
fn unknown_keys_exit_2_naming_the_key_and_the_allowed_ones() {
    let typo = format!("{AB}{FLOW}replication:\n  create_topic: false\n");
    refused(
        &typo,
        (11, 3),
        &["unknown key `create_topic` in replication", "create_topics"],
    );
    let flow = format!("{AB}flows:\n  - source: a\n    target: b\n    topic: [t]\n");
    refused(
        &flow,
        (9, 5),
        &["unknown key `topic` in flows[0]", "topics"],
    );
}

#[test]
fn a_missing_variable_exits_2_naming_it_and_where_it_is_used() {
    let eh = "  eh:\n    event_hubs:\n      connection_string: ${HM_BAD_INPUT_UNSET}\n";
    let needle = "variable HM_BAD_INPUT_UNSET is not set (used in clusters.eh.event_hubs";
    refused(&format!("{AB}{eh}{FLOW}"), (8, 26), &[needle]);
}

#[test]
fn an_unreadable_secret_file_exits_2_naming_the_file_and_the_key() {
    // A directory, and a missing file (mode 000 would not do: tests may run as root).
    let work = Workdir::new();
    std::fs::create_dir(work.path().join("secrets")).expect("mkdir");
    let file = work.path().join("topology.yaml");
    let eh = "  eh:\n    event_hubs:\n      connection_string_file: secrets\n";
    std::fs::write(&file, format!("{AB}{eh}{FLOW}")).expect("write");
    let dir = format!("`{}`", work.path().join("secrets").display());
    let from = "(from clusters.eh.event_hubs.connection_string_file)";
    refused_file(&file, &[], (8, 7), &[&dir, from, "Is a directory"]);
    let sasl = "    sasl: {username: app, password_file: secrets/pw}\n  b:";
    std::fs::write(&file, format!("{}{FLOW}", AB.replacen("  b:", sasl, 1))).expect("write");
    let from = "secrets/pw` (from clusters.a.sasl.password_file)";
    refused_file(&file, &[], (4, 27), &[from, "No such file"]);
}

#[test]
fn a_malformed_connection_string_exits_2_without_echoing_it() {
    let key = "SharedAccessKey=S3cretKeyThatMustNotBePrinted=";
    let eh = "  eh:\n    event_hubs:\n      connection_string: ${CS}\n";
    for (cs, needle) in [
        (
            format!("Endpoint=https://ns/;SharedAccessKeyName=k;{key}"),
            "must start with `sb://`",
        ),
        (
            format!("Endpoint=sb://ns/;{key}"),
            "no `SharedAccessKeyName=<policy name>` part",
        ),
        (
            format!("S3cret=;{key}"),
            "no `Endpoint=sb://<namespace>.servicebus.windows.net/` part",
        ),
    ] {
        let at = (8, 26);
        let what = "clusters.eh.event_hubs.connection_string is not valid";
        let line = refused_env(
            &format!("{AB}{eh}{FLOW}"),
            &[("CS", &cs)],
            at,
            &[what, needle],
        );
        assert!(!line.contains("S3cret"), "the key leaked: {line}");
    }
}

#[test]
fn an_unknown_cluster_alias_exits_2_listing_the_known_ones() {
    let text = format!("{AB}flows:\n  - source: a\n    target: c\n    topics: [t]\n");
    refused(
        &text,
        (8, 13),
        &["flows[0].target: unknown cluster `c`; the clusters are: a, b"],
    );
}

#[test]
fn a_bad_start_from_exits_2_naming_the_key_and_the_accepted_forms() {
    let forms = "use `earliest` (the default), `latest` or an RFC 3339 time";
    for (value, why) in [
        ("yesterday", "flows[0].start_from `yesterday` is not known"),
        (
            "2026-03-01T00:00:00",
            "flows[0].start_from `2026-03-01T00:00:00` is not a valid RFC 3339 time (no time \
             zone: end it with `Z` or `±HH:MM`)",
        ),
        (
            "2026-02-30T00:00:00Z",
            "flows[0].start_from `2026-02-30T00:00:00Z` is not a valid RFC 3339 time",
        ),
    ] {
        let text = format!("{AB}{FLOW}    start_from: {value}\n");
        refused(&text, (10, 17), &[why, forms]);
    }
}
