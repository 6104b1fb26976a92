//! The README stands alone and can be navigated: nothing in it points outside the repository,
//! every relative link and every repository path it names exists, every `#anchor` is a heading,
//! the table of contents lists exactly the headings, and "How a flow works" is one numbered list
//! with each step once.

use std::collections::HashMap;
use std::path::Path;

const README: &str = include_str!("../README.md");

/// The README's lines outside fenced code blocks, with their 1-based numbers.
fn prose() -> Vec<(usize, &'static str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in README.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lowercase; letters, digits, `-`, `_` and spaces kept
/// (spaces become `-`), everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// `(level, text, anchor)` of every heading, anchors made unique as GitHub does (`-1`, `-2`).
fn headings() -> Vec<(usize, String, String)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    prose()
        .into_iter()
        .filter_map(|(_, line)| {
            let level = line.chars().take_while(|c| *c == '#').count();
            let text = line.get(level..)?.strip_prefix(' ')?.trim().to_string();
            (level > 0).then_some((level, text))
        })
        .map(|(level, text)| {
            let base = slug(&text);
            let n = seen.entry(base.clone()).or_insert(0);
            let anchor = if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            *n += 1;
            (level, text, anchor)
        })
        .collect()
}

/// `(line, text, target)` of every inline link `[text](target)` outside code.
fn links() -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (n, line) in prose() {
        let mut rest = line;
        while let Some(close) = rest.find("](") {
            let text_start = rest[..close].rfind('[').map_or(0, |i| i + 1);
            let after = &rest[close + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((
                n,
                rest[text_start..close].to_string(),
                after[..end].to_string(),
            ));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn readme_never_points_outside_the_repository() {
    for (n, line) in README.lines().enumerate() {
        assert!(
            !line.contains("../") && !line.contains("/work/"),
            "README.md:{}: points outside the repository: {line}",
            n + 1
        );
    }
    for (n, _, target) in links() {
        assert!(
            !target.starts_with('/') && !target.starts_with("file:"),
            "README.md:{n}: an absolute local link: {target}"
        );
    }
}

#[test]
fn readme_links_and_paths_resolve() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let anchors: Vec<String> = headings().into_iter().map(|(_, _, a)| a).collect();
    let mut checked = 0;
    for (n, _, target) in links() {
        if target.starts_with("https://") || target.starts_with("http://") {
            continue;
        }
        checked += 1;
        if let Some(anchor) = target.strip_prefix('#') {
            assert!(
                anchors.iter().any(|a| a == anchor),
                "README.md:{n}: no heading has the anchor #{anchor}"
            );
            continue;
        }
        let path = target.split('#').next().unwrap_or_default();
        assert!(
            repo.join(path).exists(),
            "README.md:{n}: the link {target} points at nothing in the repository"
        );
    }
    assert!(checked > 10, "only {checked} relative links found");
    // Repository paths named in inline code (`scripts/test.sh`, `src/topology/`) exist too;
    // patterns (`examples/*.yaml`) and generated output (`bench/out/`) are not paths.
    let roots = [
        "src/",
        "tests/",
        "crates/",
        "scripts/",
        "deploy/",
        "bench/",
        "examples/",
        ".ci/",
    ];
    for (n, line) in prose() {
        for (i, span) in line.split('`').enumerate() {
            let path = span.split(':').next().unwrap_or_default();
            if i % 2 == 1
                && !path.contains([' ', '*', '<', '{'])
                && roots.iter().any(|r| path.starts_with(r))
                && !path.starts_with("bench/out/")
            {
                assert!(
                    repo.join(path).exists(),
                    "README.md:{n}: `{span}` names a path that does not exist"
                );
            }
        }
    }
}

#[test]
fn readme_contents_list_every_heading() {
    let lines = prose();
    let start = lines
        .iter()
        .position(|(_, l)| *l == "## Contents")
        .expect("the README has a `## Contents` section");
    // The list right under `## Contents`: `- [Heading](#anchor)`, indented two spaces per level
    // below `##`.
    let toc: Vec<(usize, String, String)> = lines[start + 1..]
        .iter()
        .map(|(_, l)| *l)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with("- ["))
        .map(|l| {
            let indent = l.len() - l.trim_start().len();
            let item = l.trim_start().trim_start_matches("- [");
            let (text, target) = item.split_once("](#").expect("a TOC entry links an anchor");
            (
                2 + indent / 2,
                text.to_string(),
                target.trim_end_matches(')').to_string(),
            )
        })
        .collect();
    let expected: Vec<(usize, String, String)> = headings()
        .into_iter()
        .filter(|(level, text, _)| (2..=3).contains(level) && text != "Contents")
        .collect();
    assert_eq!(
        toc, expected,
        "the table of contents must list every `##` and `###` heading, in order"
    );
}

#[test]
fn how_a_flow_works_is_one_list_with_each_step_once() {
    let lines = prose();
    let start = lines
        .iter()
        .position(|(_, l)| *l == "## How a flow works")
        .expect("a `## How a flow works` section");
    let section: Vec<&str> = lines[start + 1..]
        .iter()
        .map(|(_, l)| *l)
        .take_while(|l| !l.starts_with('#'))
        .collect();
    let first = section
        .iter()
        .position(|l| l.starts_with("1. "))
        .expect("a numbered list");
    let mut steps = Vec::new();
    let mut open = true;
    for line in &section[first..] {
        let number = line
            .split_once(". ")
            .and_then(|(n, _)| n.parse::<usize>().ok());
        match number {
            Some(n) => {
                assert!(open, "step {n} comes after the list ended: {line}");
                assert_eq!(n, steps.len() + 1, "steps are numbered 1, 2, 3 ...: {line}");
                let title = line
                    .split("**")
                    .nth(1)
                    .unwrap_or_else(|| panic!("step {n} has a **title**: {line}"));
                steps.push(title.trim_end_matches('.').to_lowercase());
            }
            // Inside the list: its items' continuation lines (indented). A blank line, then
            // anything at the margin, ends it.
            None if line.starts_with(' ') => {}
            None if line.trim().is_empty() => {}
            None => open = false,
        }
    }
    assert!(steps.len() >= 4, "steps: {steps:?}");
    for (i, s) in steps.iter().enumerate() {
        assert!(
            !steps[..i].contains(s),
            "the step {s:?} appears twice: {steps:?}"
        );
    }
    let commits = steps.iter().filter(|s| s.contains("commit")).count();
    assert_eq!(
        commits, 1,
        "committing source offsets is one step, described once: {steps:?}"
    );
}

/// The rows of the README's tables whose first cell is inline code: `(line, first cell)`.
fn table_keys() -> Vec<(usize, &'static str, &'static str)> {
    prose()
        .into_iter()
        .filter_map(|(n, line)| {
            let cell = line.strip_prefix("| `")?;
            let end = cell.find('`')?;
            Some((n, &cell[..end], line))
        })
        .collect()
}

#[test]
fn readme_lists_every_metric() {
    let source = include_str!("../src/metrics.rs");
    let names: Vec<&str> = source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("hubmirror_")
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert!(names.len() >= 20, "metric names found: {names:?}");
    assert!(names.contains(&"hubmirror_entra_authority_up"), "{names:?}");
    let rows = table_keys();
    for name in names {
        assert!(
            rows.iter()
                .any(|(_, key, _)| key.split('{').next() == Some(name)),
            "the metrics table has no row for {name}"
        );
    }
}

/// The fields of `struct <name>` in src/topology/raw.rs (the keys a topology may hold there).
fn raw_fields(name: &str) -> Vec<&'static str> {
    let source = include_str!("../src/topology/raw.rs");
    let start = source
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name} in raw.rs"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").expect("the struct's end")];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split_once(':').map(|(f, _)| f.trim()))
        .collect()
}

#[test]
fn readme_documents_every_event_hubs_and_entra_key() {
    let rows = table_keys();
    for (section, prefix) in [
        ("RawEventHubs", "clusters.<alias>.event_hubs."),
        ("RawEntra", "clusters.<alias>.event_hubs.entra."),
    ] {
        let fields = raw_fields(section);
        assert!(fields.len() >= 4, "{section}: {fields:?}");
        for f in fields {
            // A row of its own, or a row of the same prefix naming it as an alternative
            // (`connection_string` / `connection_string_file`).
            let documented = rows.iter().any(|(_, key, line)| {
                *key == format!("{prefix}{f}")
                    || (key.starts_with(prefix)
                        && !key[prefix.len()..].contains('.')
                        && line
                            .split('|')
                            .nth(1)
                            .is_some_and(|cell| cell.contains(&format!("`{f}`"))))
            });
            assert!(
                documented,
                "the configuration table has no row for {prefix}{f}"
            );
        }
    }
}
