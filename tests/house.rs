//! The README's picture of the house stays true: its "How it is built" table names every
//! workspace crate, and the vgrad crates each may depend on are exactly those its
//! `Cargo.toml` depends on.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The workspace's root folder.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
}

/// The table of `readme`'s "How it is built": crate folder -> the vgrad crates it may
/// depend on (`None`: any).
fn pictured(readme: &str) -> BTreeMap<String, Option<BTreeSet<String>>> {
    let section = readme
        .split("## How it is built")
        .nth(1)
        .expect("the README has a section \"How it is built\"");
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // `| `crates/x` | what it holds | deps |` splits into 5 cells, the outer empty.
            let folder = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let deps = cells.get(cells.len().checked_sub(2)?)?;
            let allowed = match *deps {
                "any" => None,
                "none" => Some(BTreeSet::new()),
                list => Some(
                    without_remarks(list)
                        .split(',')
                        .filter_map(|d| d.split_whitespace().next())
                        .map(|d| format!("vgrad-{d}"))
                        .collect(),
                ),
            };
            Some((folder.to_string(), allowed))
        })
        .collect()
}

/// `text` without its parenthesised remarks, which may hold commas of their own.
fn without_remarks(text: &str) -> String {
    let mut depth = 0usize;
    text.chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect()
}

/// The vgrad crates a member's `Cargo.toml` lists under `[dependencies]`.
fn depends_on(member: &str) -> BTreeSet<String> {
    let path = root().join(member).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("a member's Cargo.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("Cargo.toml parses");
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| {
            deps.keys()
                .filter(|k| k.starts_with("vgrad-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_readme_pictures_every_crate_and_its_dependencies() {
    let workspace: toml::Table = toml::from_str(
        &std::fs::read_to_string(root().join("Cargo.toml")).expect("the workspace's Cargo.toml"),
    )
    .expect("Cargo.toml parses");
    let members: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .filter_map(|m| m.as_str().map(String::from))
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let pictured = pictured(&readme);
    let listed: BTreeSet<&String> = pictured.keys().collect();
    let real: BTreeSet<&String> = members.iter().collect();
    assert_eq!(
        listed, real,
        "the README's \"How it is built\" lists other crates than the workspace has"
    );
    for member in &members {
        if let Some(Some(allowed)) = pictured.get(member) {
            assert_eq!(
                &depends_on(member),
                allowed,
                "{member}: its Cargo.toml's vgrad dependencies, against the README's"
            );
        }
    }
}

#[test]
fn a_table_reads_as_folders_and_their_dependencies() {
    // The parser on a hand-made table of the README's shapes, so that a misread row
    // cannot pass unseen.
    let readme = "# x\n\n## How it is built\n\n| crate | holds | may depend on |\n| --- | --- | --- |\n\
        | `crates/a` | one thing | none |\n\
        | `crates/b` | another | a, kernels (its `platform` module only, without candle) |\n\
        | `tests` | tests | any |\n\n## Next\n\n| `crates/c` | not in the section | a |\n";
    let set = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
    let want = BTreeMap::from([
        ("crates/a".to_string(), set(&[])),
        ("crates/b".to_string(), set(&["vgrad-a", "vgrad-kernels"])),
        ("tests".to_string(), None),
    ]);
    assert_eq!(pictured(readme), want);
}
