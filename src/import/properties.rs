//! A Java `.properties` reader that keeps each key's line: `key=value`, `key: value` and
//! `key value`; `#` and `!` comment lines; a line ending in an odd number of `\` continues on
//! the next (its leading blanks dropped); `\t`, `\n`, `\uXXXX` and `\<char>` escapes.

use std::collections::BTreeMap;

/// One property: its value and the (1-based) line its key is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prop {
    /// The value, escapes resolved.
    pub value: String,
    /// The line of the key.
    pub line: usize,
}

/// Every property of a file; a key given twice keeps the last value (as Java does).
pub(crate) type Props = BTreeMap<String, Prop>;

/// Parses `text`. Never fails: like Java, anything that is not a comment is a property.
pub(crate) fn parse(text: &str) -> Props {
    let mut props = Props::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, first)) = lines.next() {
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut part = trimmed;
        loop {
            if continues(part) {
                logical.push_str(&part[..part.len() - 1]);
                match lines.next() {
                    Some((_, next)) => part = next.trim_start(),
                    None => break,
                }
            } else {
                logical.push_str(part);
                break;
            }
        }
        let (key, value) = split(&logical);
        props.insert(
            unescape(&key),
            Prop {
                value: unescape(&value),
                line: i + 1,
            },
        );
    }
    props
}

/// Whether `line` ends in an odd number of backslashes (a continuation).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or blank (blanks around it dropped).
fn split(line: &str) -> (String, String) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                let key = line[..i].to_string();
                let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
                if c.is_whitespace() || c == '\x0c' {
                    if let Some(r) = rest.strip_prefix(['=', ':']) {
                        rest = r;
                    }
                } else {
                    rest = &rest[1..];
                }
                return (
                    key,
                    rest.trim_start_matches([' ', '\t', '\x0c']).to_string(),
                );
            }
            _ => {}
        }
    }
    (line.to_string(), String::new())
}

/// Resolves `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<char>` (the char itself).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(u) if hex.len() == 4 => {
                        out.push(u);
                        chars.nth(3);
                    }
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(p: &Props, k: &str) -> String {
        p.get(k).map(|p| p.value.clone()).expect(k)
    }

    #[test]
    fn separators_comments_and_lines() {
        let p = parse("# c\n! c2\n\na=1\nb : 2\nc 3\n  d=\ne\n");
        assert_eq!(value(&p, "a"), "1");
        assert_eq!(value(&p, "b"), "2");
        assert_eq!(value(&p, "c"), "3");
        assert_eq!(value(&p, "d"), "");
        assert_eq!(value(&p, "e"), "");
        assert_eq!(p["a"].line, 4);
        assert_eq!(p["e"].line, 8);
    }

    #[test]
    fn arrows_and_continuations() {
        let p = parse("A->B.topics = x, \\\n    y\nk=a\\\\\nz=\\u0041\\:b\n");
        assert_eq!(value(&p, "A->B.topics"), "x, y");
        assert_eq!(value(&p, "k"), "a\\");
        assert_eq!(value(&p, "z"), "A:b");
        assert_eq!(p["z"].line, 4);
    }

    #[test]
    fn jaas_values_keep_their_quotes_and_equals() {
        let p = parse(
            "A.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p=1\";\n",
        );
        assert!(value(&p, "A.sasl.jaas.config").ends_with("username=\"u\" password=\"p=1\";"));
    }
}
