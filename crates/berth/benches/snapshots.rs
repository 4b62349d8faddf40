//! Snapshot benchmark (issue 11): berth's snapshot store against restic
//! (Debian's `restic`), side by side in one run on the same data.
//!
//! A state tree of mixed files (many small, some medium, a few large;
//! half random and half text-like bytes) of `BERTH_BENCH_MB` MiB (default
//! 1024) is snapshotted, then 1% of it is changed (a few files rewritten
//! in part, a few added) and snapshotted again, then restored. For each
//! tool: time of each step and bytes added to its store/repository.
//!
//! `cargo bench -p berth --bench snapshots`. Needs `restic` on PATH (a
//! missing restic is reported and its rows skipped). Each timed step
//! starts after a `sync`; `BERTH_BENCH_TRACE=1` prints the phases of each
//! berth save (debug log of the store).

use berth_engine::snapshots::{SnapshotMeta, SnapshotStore};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// xorshift bytes.
fn noise(buf: &mut Vec<u8>, n: usize, seed: &mut u64) {
    while buf.len() < n {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        buf.extend_from_slice(&seed.to_le_bytes());
    }
    buf.truncate(n);
}

/// Half random, half repetitive text: compresses about 2:1.
fn content(n: usize, seed: &mut u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    noise(&mut v, n / 2, seed);
    let line = format!("row {seed} status=ok value=42 note=lorem ipsum dolor sit amet\n");
    while v.len() < n {
        v.extend_from_slice(line.as_bytes());
    }
    v.truncate(n);
    v
}

/// Writes the tree; returns the file paths.
fn make_tree(root: &Path, total: u64) -> Vec<PathBuf> {
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut files = Vec::new();
    let mut written = 0u64;
    let mut i = 0u64;
    while written < total {
        // 70% of files small (4-64 KiB), 25% medium (1 MiB), 5% large (32 MiB).
        let size = match i % 20 {
            0 => 32 << 20,
            1..=5 => 1 << 20,
            _ => 4096 + (i * 7919 % 61) * 1024,
        } as usize;
        let size = size.min((total - written) as usize).max(1);
        let dir = root.join(format!("d{}", i % 37));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("f{i}.dat"));
        std::fs::write(&p, content(size, &mut seed)).unwrap();
        written += size as u64;
        files.push(p);
        i += 1;
    }
    files
}

/// Changes about 1% of the bytes: rewrites 64 KiB in the middle of files
/// and adds a few new files.
fn change_one_percent(root: &Path, files: &[PathBuf], total: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let budget = total / 100;
    let mut done = 0u64;
    let mut seed = 0xfeed_beef_u64;
    for (k, p) in files.iter().enumerate().step_by(7) {
        if done >= budget / 2 {
            break;
        }
        let len = std::fs::metadata(p).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        let n = len.min(64 << 10);
        f.seek(SeekFrom::Start((len - n) / 2)).unwrap();
        f.write_all(&content(n as usize, &mut seed)).unwrap();
        done += n;
        let _ = k;
    }
    let mut j = 0;
    while done < budget {
        let n = (256u64 << 10).min(budget - done);
        std::fs::write(
            root.join(format!("new{j}.dat")),
            content(n as usize, &mut seed),
        )
        .unwrap();
        done += n;
        j += 1;
    }
}

fn du(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    n
}

/// Flushes every dirty page to disk (`sync`) before a timed step, so a
/// tool's time never includes writing back what the other tool or the
/// data generator left in the page cache (berth's save ends with a
/// `syncfs`, which would pay for them).
fn settle() {
    let _ = Command::new("sync").status();
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    settle();
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn restic(repo: &Path, args: &[&str]) -> Duration {
    let (out, took) = timed(|| {
        Command::new("restic")
            .env("RESTIC_PASSWORD", "bench")
            .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
            .arg("--repo")
            .arg(repo)
            .arg("--quiet")
            .args(args)
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // BERTH_BENCH_TRACE=1: the store's phase timings of each save.
    if std::env::var_os("BERTH_BENCH_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let total_mb: u64 = std::env::var("BERTH_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = total_mb << 20;
    let dir = tempfile::Builder::new()
        .prefix("berth-snapbench")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("state");
    let files = make_tree(&data, total);
    println!("state: {} files, {} MiB", files.len(), total_mb);

    // berth
    let store_dir = dir.path().join("berth-store");
    let store = SnapshotStore::open(&store_dir).unwrap();
    let meta = || SnapshotMeta {
        project_id: "bench".into(),
        app_id: "bench".into(),
        app_version: "1".into(),
        reason: "manual".into(),
        ..Default::default()
    };
    let (s1, b_first) = timed(|| store.save(&data, meta()).unwrap());
    let b_bytes1 = du(&store_dir);

    let have_restic = Command::new("restic").arg("version").output().is_ok();
    let repo = dir.path().join("restic-repo");
    let (mut r_first, mut r_bytes1) = (None, 0);
    if have_restic {
        restic(&repo, &["init"]);
        let before = du(&repo);
        r_first = Some(restic(&repo, &["backup", data.to_str().unwrap()]));
        r_bytes1 = du(&repo) - before;
    } else {
        println!("restic: not on PATH (apt install restic); its rows are skipped");
    }

    // The files changed now are older than the index's racy window only
    // if time passes; wait it out so both tools see an ordinary change.
    std::thread::sleep(Duration::from_secs(3));
    change_one_percent(&data, &files, total);
    std::thread::sleep(Duration::from_secs(3));

    let (s2, b_second) = timed(|| store.save(&data, meta()).unwrap());
    let b_bytes2 = du(&store_dir) - b_bytes1;
    let (mut r_second, mut r_bytes2) = (None, 0);
    if have_restic {
        let before = du(&repo);
        r_second = Some(restic(&repo, &["backup", data.to_str().unwrap()]));
        r_bytes2 = du(&repo) - before;
    }

    let out_b = dir.path().join("restore-berth");
    let ((), b_restore) = timed(|| store.materialize("bench", &s2.snapshot_id, &out_b).unwrap());
    let mut r_restore = None;
    if have_restic {
        let out_r = dir.path().join("restore-restic");
        r_restore = Some(restic(
            &repo,
            &["restore", "latest", "--target", out_r.to_str().unwrap()],
        ));
    }

    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let opt = |d: Option<Duration>| d.map(secs).unwrap_or_else(|| "-".into());
    println!(
        "berth second save read {} of {} files",
        s2.files_read,
        files.len()
    );
    let _ = s1;
    println!("{:<28} {:>12} {:>12} {:>8}", "", "berth", "restic", "ratio");
    let ratio = |b: f64, r: Option<f64>| r.map(|r| format!("{:.2}x", r / b)).unwrap_or_default();
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "first snapshot time",
        secs(b_first),
        opt(r_first),
        ratio(b_first.as_secs_f64(), r_first.map(|d| d.as_secs_f64()))
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "first snapshot bytes",
        mb(b_bytes1),
        if have_restic {
            mb(r_bytes1)
        } else {
            "-".into()
        },
        ratio(b_bytes1 as f64, have_restic.then_some(r_bytes1 as f64))
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "second snapshot time (1%)",
        secs(b_second),
        opt(r_second),
        ratio(b_second.as_secs_f64(), r_second.map(|d| d.as_secs_f64()))
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "second snapshot bytes added",
        mb(b_bytes2),
        if have_restic {
            mb(r_bytes2)
        } else {
            "-".into()
        },
        ratio(b_bytes2 as f64, have_restic.then_some(r_bytes2 as f64))
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "restore time",
        secs(b_restore),
        opt(r_restore),
        ratio(b_restore.as_secs_f64(), r_restore.map(|d| d.as_secs_f64()))
    );
    println!("(ratio = restic / berth: above 1 means berth is faster or smaller)");
}
