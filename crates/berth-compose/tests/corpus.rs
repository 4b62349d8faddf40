//! The corpus: one directory per case under `tests/corpus/<case>/`, a
//! Compose project (files, `.env`, included directories) with
//! - `case.json` (optional): the options of `berth config`/`up` —
//!   `files`, `env_files`, `profiles`, `project_name`, `environment`
//!   (the shell's), `runtime` (`docker` or `native`) and `spec` (the
//!   section of the Compose Specification the case checks);
//! - `expected/config.yaml`: the resolved model as `berth config` prints
//!   it, or the resolution error;
//! - `expected/report.txt`: the import report of the same model.
//!
//! Each case is loaded from memory at `/corpus/<case>` (so absolute paths
//! in the output do not depend on the checkout) and compared with the
//! expected files. Regenerate them on purpose with
//! `BERTH_BLESS=1 cargo test -p berth-compose --test corpus`, then review
//! the diff.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_compose::validate::{validate, Runtime, ValidationReport};
use berth_compose::{config, load, MemFiles, Options};

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    env_files: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    project_name: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    runtime: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    spec: String,
}

fn add_tree(files: &mut MemFiles, disk: &Path, mem: &Path) {
    for e in fs::read_dir(disk).unwrap().flatten() {
        let name = e.file_name();
        let (d, m) = (e.path(), mem.join(&name));
        if name == "expected" || name == "case.json" {
            continue;
        }
        if d.is_dir() {
            add_tree(files, &d, &m);
        } else {
            files.insert(&m, fs::read_to_string(&d).unwrap());
        }
    }
}

fn report_text(r: &ValidationReport) -> String {
    let mut out = format!("valid: {}\nservices: {}\n", r.valid, r.services.join(", "));
    for (kind, notes) in [
        ("supported", &r.supported_fields),
        ("transformed", &r.transformed_fields),
        ("rejected", &r.rejected_fields),
        ("warning", &r.warnings),
    ] {
        for n in notes {
            out.push_str(&format!(
                "{kind} {}",
                if n.path.is_empty() { "-" } else { &n.path }
            ));
            if !n.reason.is_empty() {
                out.push_str(&format!(": {}", n.reason));
            }
            out.push('\n');
        }
    }
    out
}

/// The outputs of one case: (config, report).
fn run(dir: &Path, name: &str) -> (String, String) {
    let case: Case = match fs::read_to_string(dir.join("case.json")) {
        Ok(t) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("{name}/case.json: {e}")),
        Err(_) => Case::default(),
    };
    let root = PathBuf::from("/corpus").join(name);
    let mut files = MemFiles::new();
    add_tree(&mut files, dir, &root);
    let opts = Options {
        project_dir: Some(root.clone()),
        files: case.files.iter().map(PathBuf::from).collect(),
        env_files: case.env_files.iter().map(PathBuf::from).collect(),
        profiles: case.profiles.clone(),
        project_name: case.project_name.clone(),
        environment: case.environment.clone(),
        lenient_required: false,
    };
    let runtime = match case.runtime.as_deref() {
        Some("native") => Runtime::Native,
        _ => Runtime::Docker,
    };
    match load(&files, &opts) {
        Ok(project) => {
            let report = report_text(&validate(&project, runtime, None));
            let config = match config::canonical(&project, &files) {
                Ok(tree) => config::to_yaml(&tree),
                Err(e) => format!("error: {e}\n"),
            };
            (config, report)
        }
        Err(e) => {
            let report = report_text(&berth_compose::validate::rejected(&e));
            (format!("error: {e}\n"), report)
        }
    }
}

#[test]
fn corpus_matches_expected() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let bless = std::env::var_os("BERTH_BLESS").is_some_and(|v| v == "1");
    let mut cases: Vec<_> = fs::read_dir(&base)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    cases.sort_by_key(|e| e.file_name());
    assert!(
        !cases.is_empty(),
        "no corpus cases under {}",
        base.display()
    );
    let mut failures = Vec::new();
    for e in cases {
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        let (config, report) = run(&dir, &name);
        let expected = dir.join("expected");
        for (file, got) in [("config.yaml", &config), ("report.txt", &report)] {
            let path = expected.join(file);
            if bless {
                fs::create_dir_all(&expected).unwrap();
                fs::write(&path, got).unwrap();
                continue;
            }
            let want = fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{} is missing: run with BERTH_BLESS=1", path.display())
            });
            if want != *got {
                failures.push(format!(
                    "{name}/{file} differs\n--- expected\n{want}--- got\n{got}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
