//! The container image: the Dockerfile agreeing with the StatefulSet, and its build context
//! holding what cargo needs.

use super::*;

#[test]
fn dockerfile_agrees_with_the_statefulset() {
    let d = load();
    let t = topology(&d);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("read deploy/Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let last = |instr: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l.starts_with(&format!("{instr} ")))
            .map(|l| l[instr.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("Dockerfile has no {instr}"))
    };
    let psc = pod(&d)
        .security_context
        .as_ref()
        .expect("pod securityContext");
    let user = format!(
        "{}:{}",
        psc.run_as_user.expect("runAsUser"),
        psc.run_as_group.expect("runAsGroup")
    );
    assert_eq!(last("USER"), user, "image user vs pod securityContext");
    assert!(
        last("EXPOSE")
            .split_whitespace()
            .any(|p| p == t.listen.port().to_string()),
        "EXPOSE {} lacks the metrics port",
        last("EXPOSE")
    );
    assert_eq!(last("ENTRYPOINT"), r#"["/usr/local/bin/hubmirror"]"#);
    let cmd: Vec<String> = serde_json::from_str(&last("CMD")).expect("CMD in exec form");
    let pos = cmd
        .iter()
        .position(|a| a == "--config")
        .expect("CMD --config");
    assert_eq!(
        cmd.get(pos + 1).map(String::as_str),
        Some(arg_after(container(&d), "--config"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FROM ") && l.contains("-slim")),
        "a slim runtime stage"
    );
}

/// Every member of the workspace must be in the image's build context, at its own path: cargo
/// reads every member's manifest even to build one binary (`cargo build --bin hubmirror`), so a
/// member the Dockerfile does not `COPY`, or that `.dockerignore` leaves out, breaks
/// `docker build`.
#[test]
fn the_build_context_holds_every_workspace_member() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let members = workspace_members(&root.join("Cargo.toml"));
    assert!(
        !members.is_empty(),
        "Cargo.toml: [workspace] lists no members"
    );

    // `./a/b/` → `a/b`, `.` → `` (the whole context).
    let norm = |p: &str| {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        if p == "." {
            String::new()
        } else {
            p.to_string()
        }
    };
    // Whether the path `outer` (normalized) is `member` or a directory above it.
    let covers = |outer: &str, member: &str| {
        outer.is_empty() || member == outer || member.starts_with(&format!("{outer}/"))
    };

    // The builder's `COPY <src>... <dest>` lines (not `COPY --from=`), as (sources, dest).
    let dockerfile =
        std::fs::read_to_string(root.join("deploy/Dockerfile")).expect("read deploy/Dockerfile");
    let copies: Vec<(Vec<String>, String)> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|args| !args.contains("--from="))
        .filter_map(|args| {
            let mut words: Vec<String> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .map(norm)
                .collect();
            let dest = words.pop()?;
            Some((words, dest))
        })
        .collect();

    // `.dockerignore`: the last pattern that matches a path decides (`!` re-includes it).
    let dockerignore =
        std::fs::read_to_string(root.join(".dockerignore")).expect("read .dockerignore");
    let patterns: Vec<(bool, String)> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(p) => (true, p.trim().to_string()),
            None => (false, l.to_string()),
        })
        .collect();

    for member in &members {
        let member = norm(member);
        // A directory source's contents land in dest: the member keeps its path only when dest
        // is the source's own path.
        assert!(
            copies
                .iter()
                .any(|(srcs, dest)| srcs.iter().any(|s| covers(s, &member) && dest == s)),
            "workspace member {member} is not copied to its own path by a COPY of \
             deploy/Dockerfile (today `COPY crates ./crates`): {copies:?}"
        );
        let included = patterns
            .iter()
            .rev()
            .find(|(_, p)| p == "*" || p == "**" || covers(&norm(p), &member))
            .is_none_or(|(reincluded, _)| *reincluded);
        assert!(
            included,
            "workspace member {member} is left out of the build context by .dockerignore: add \
             `!{member}/` (or a parent) after `*`"
        );
    }
}

/// The quoted paths of `members = [...]` in the `[workspace]` table of the manifest `path` (on one
/// line or several).
fn workspace_members(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut table = "";
    let mut list: Option<String> = None;
    for line in text.lines() {
        // Workspace paths hold no `#`: anything after one is a comment.
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(list) = list.as_mut() {
            list.push_str(line);
        } else if line.starts_with('[') {
            table = line;
        } else if table == "[workspace]" {
            let value = line
                .strip_prefix("members")
                .and_then(|rest| rest.trim_start().strip_prefix('='));
            list = value.map(|v| v.trim().to_string());
        }
        if list.as_ref().is_some_and(|l| l.contains(']')) {
            break;
        }
    }
    let list = list.expect("Cargo.toml: no `members = [...]` in [workspace]");
    let inner = list
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("Cargo.toml: members = {list} is not a list"));
    // Between the quotes: every other piece.
    inner
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}
