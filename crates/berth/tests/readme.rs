//! The README's first session, replayed: every `$ ` line of the block
//! after `<!-- transcript: first-session -->` runs in a sandbox (with
//! `berth` on PATH), and its stdout must be the lines that follow it.
//! `<...>` in an expected line matches any text.

mod common;

use common::*;
use std::time::Duration;

const README: &str = include_str!("../../../README.md");

/// (command, expected stdout lines) of the transcript.
fn transcript() -> Vec<(String, Vec<String>)> {
    let start = README
        .find("<!-- transcript: first-session -->")
        .expect("the README has the transcript");
    let block = &README[start..];
    let body = block
        .split_once("```console\n")
        .expect("a console block")
        .1
        .split_once("\n```")
        .expect("a closed block")
        .0;
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in body.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => steps
                .last_mut()
                .expect("output after a command")
                .1
                .push(line.to_string()),
        }
    }
    steps
}

/// Whether `actual` is `expected` with each `<...>` standing for any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("<...>").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let Some(mut rest) = actual.strip_prefix(parts[0]) else {
        return false;
    };
    for (i, p) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

fn matches(expected: &[String], actual: &str) -> bool {
    let lines: Vec<&str> = actual.lines().collect();
    lines.len() == expected.len() && expected.iter().zip(&lines).all(|(e, a)| line_matches(e, a))
}

#[test]
fn the_readme_first_session_replays() {
    let d = Daemon::start();
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bin_dir = std::path::Path::new(BERTH).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let steps = transcript();
    assert!(steps.len() >= 7, "{steps:?}");
    for (cmd, expected) in steps {
        let run = || {
            d.command("bash")
                .args(["-c", &cmd])
                .current_dir(&work)
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        // Logs and status show what services did, which takes a moment:
        // those are read again until they match (reads have no effects).
        let read_only = cmd.starts_with("berth project ");
        let mut out = run();
        if read_only {
            wait_for(Duration::from_secs(5), || {
                out = run();
                matches(&expected, &stdout(&out))
            });
        }
        assert!(out.status.success(), "$ {cmd}\n{}", stderr(&out));
        assert!(
            matches(&expected, &stdout(&out)),
            "$ {cmd}\nexpected:\n{}\ngot:\n{}",
            expected.join("\n"),
            stdout(&out)
        );
    }
}

#[test]
fn placeholders_match_any_text_and_nothing_else() {
    assert!(line_matches("a <...> b", "a xyz b"));
    assert!(line_matches(
        "<...> web | hi",
        "2026-01-01T00:00:00Z web | hi"
    ));
    assert!(!line_matches("<...> web | hi", "x web | ho"));
    assert!(line_matches("exact", "exact"));
    assert!(!line_matches("exact", "exactly"));
}
