//! Which instance replicates which partition: [`Owned`], and whether a fleet's partitions are
//! split among the instances it should be.

use std::collections::{BTreeMap, BTreeSet};

/// A source partition of a flow: `(source, target, topic, partition)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owned {
    pub source: String,
    pub target: String,
    pub topic: String,
    pub partition: i32,
}

/// Whether `split` divides `partitions` of each of `flows` among exactly `names`.
pub(super) fn check_split(
    split: &BTreeMap<String, BTreeSet<Owned>>,
    names: &[&str],
    flows: &[(&str, &str)],
    partitions: i32,
) -> Result<(), String> {
    let mut seen: BTreeMap<&Owned, &str> = BTreeMap::new();
    for name in names {
        let owned = split
            .get(*name)
            .ok_or_else(|| format!("{name} does not answer"))?;
        if owned.is_empty() {
            return Err(format!("{name} replicates nothing"));
        }
        for o in owned {
            if let Some(other) = seen.insert(o, name) {
                return Err(format!("{o:?} replicated by {other} and {name}"));
            }
        }
    }
    for (name, owned) in split {
        if !names.contains(&name.as_str()) && !owned.is_empty() {
            return Err(format!("{name} replicates {} partitions", owned.len()));
        }
    }
    if let Some(o) = seen
        .keys()
        .find(|o| !flows.contains(&(&o.source, &o.target)))
    {
        return Err(format!("{o:?} is of another flow"));
    }
    for (source, target) in flows {
        let n = seen
            .keys()
            .filter(|o| o.source == *source && o.target == *target)
            .count();
        if n != partitions as usize {
            return Err(format!(
                "{n} of {partitions} partitions of {source}->{target} replicated"
            ));
        }
    }
    Ok(())
}

/// `name: [partitions]` per instance, for messages.
pub fn describe(split: &BTreeMap<String, BTreeSet<Owned>>) -> String {
    let per: Vec<String> = split
        .iter()
        .map(|(name, owned)| {
            let parts: Vec<String> = owned
                .iter()
                .map(|o| format!("{}->{}/{}", o.source, o.target, o.partition))
                .collect();
            format!("{name}: [{}]", parts.join(" "))
        })
        .collect();
    per.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(partitions: &[i32]) -> BTreeSet<Owned> {
        partitions
            .iter()
            .map(|p| Owned {
                source: "a".into(),
                target: "b".into(),
                topic: "t".into(),
                partition: *p,
            })
            .collect()
    }

    #[test]
    fn a_split_is_disjoint_complete_and_among_the_named() {
        let split = |sets: &[(&str, &[i32])]| -> BTreeMap<String, BTreeSet<Owned>> {
            sets.iter()
                .map(|(n, p)| (n.to_string(), owned(p)))
                .collect()
        };
        let ab = [("a", "b")];
        let ok = split(&[("x", &[0, 1]), ("y", &[2, 3]), ("z", &[])]);
        assert_eq!(check_split(&ok, &["x", "y"], &ab, 4), Ok(()));
        assert!(
            check_split(&ok, &["x", "y", "z"], &ab, 4).is_err(),
            "z has none"
        );
        assert!(check_split(&ok, &["x", "y"], &ab, 5).is_err(), "incomplete");
        let two = [("a", "b"), ("b", "a")];
        assert!(
            check_split(&ok, &["x", "y"], &two, 4).is_err(),
            "b->a missing"
        );
        let overlap = split(&[("x", &[0, 1]), ("y", &[1, 2, 3])]);
        assert!(check_split(&overlap, &["x", "y"], &ab, 4).is_err());
        let stray = split(&[("x", &[0, 1]), ("y", &[2]), ("z", &[3])]);
        assert!(check_split(&stray, &["x", "y"], &ab, 4).is_err());
    }
}
