use super::*;
use std::path::PathBuf;
use std::process::Command;

struct Pkg {
    files: Vec<(String, Vec<u8>)>,
    links: Vec<(String, String)>,
}

fn sha(d: &[u8]) -> String {
    hex(&Sha256::digest(d))
}

fn app() -> Pkg {
    Pkg {
        files: vec![
            (
                "manifest.json".into(),
                br#"{"app_id":"dev.test.notes","name":"Notes","version":"1.2.0","secrets":["TOKEN"]}"#.to_vec(),
            ),
            ("capabilities.json".into(), br#"["host-port:8080"]"#.to_vec()),
            ("compose.yaml".into(), b"services:\n  web:\n    command: [\"sleep\", \"9\"]\n".to_vec()),
            ("www/index.html".into(), b"<h1>hi</h1>".to_vec()),
        ],
        links: vec![("www/home.html".into(), "index.html".into())],
    }
}

impl Pkg {
    fn sums(&self) -> String {
        let mut s = String::new();
        for (n, d) in &self.files {
            s += &format!("{}  {n}\n", sha(d));
        }
        for (n, t) in &self.links {
            s += &format!("{}  {n}\n", sha(format!("symlink:{t}").as_bytes()));
        }
        s
    }

    /// The archive, zstd-compressed, with `extra` raw entries appended.
    fn build(&self, dir: &Path, extra: &[(String, Vec<u8>)]) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        let mut all = self.files.clone();
        all.extend(extra.iter().cloned());
        for (n, d) in &all {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, n, d.as_slice()).unwrap();
        }
        for (n, t) in &self.links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, n, t).unwrap();
        }
        let raw = b.into_inner().unwrap();
        let path = dir.join("app.vibeapp");
        std::fs::write(&path, zstd::encode_all(raw.as_slice(), 3).unwrap()).unwrap();
        path
    }
}

fn env() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let pk = d.path().join("packages");
    let trust = d.path().join("trust");
    std::fs::create_dir_all(&trust).unwrap();
    (d, pk, trust)
}

/// A stand-in for the project engine's manifest parser.
fn facts(b: &[u8]) -> Result<ManifestFacts, String> {
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    let s = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no {k}"));
    Ok(ManifestFacts {
        app_id: s("app_id")?,
        name: s("name")?,
        version: s("version")?,
        secrets: v["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
    })
}

fn import(a: &Path, b: &Path, c: &Path, v: bool) -> Result<Imported, PackageError> {
    super::import(a, b, c, v, &facts)
}

fn err(r: Result<Imported, PackageError>) -> PackageError {
    r.expect_err("the import should be refused")
}

#[test]
fn an_unsigned_package_imports_only_without_verification() {
    let (d, pk, trust) = env();
    let mut p = app();
    let sums = p.sums();
    p.files.push((SUMS_FILE.into(), sums.into_bytes()));
    let path = p.build(d.path(), &[]);
    let e = err(import(&path, &pk, &trust, true));
    assert!(matches!(e, PackageError::SignatureInvalid(_)), "{e}");
    assert!(!pk.join("dev.test.notes/1.2.0").exists());
    let ok = import(&path, &pk, &trust, false).unwrap();
    assert_eq!(ok.trust_status, "unsigned");
    assert_eq!(ok.app_id, "dev.test.notes");
    assert_eq!(ok.version, "1.2.0");
    assert_eq!(ok.capabilities, vec!["host-port:8080", "secret:TOKEN"]);
    assert_eq!(
        std::fs::read(ok.package_path.join("www/home.html")).unwrap(),
        b"<h1>hi</h1>"
    );
}

#[test]
fn tampered_packages_name_the_file() {
    let (d, pk, trust) = env();
    let p = app();
    let sums = p.sums();
    // A file changed after listing.
    let mut changed = app();
    changed.files[3].1 = b"<h1>evil</h1>".to_vec();
    changed
        .files
        .push((SUMS_FILE.into(), sums.clone().into_bytes()));
    let e = err(import(&changed.build(d.path(), &[]), &pk, &trust, false));
    assert!(
        matches!(&e, PackageError::Tampered(m) if m.contains("www/index.html")),
        "{e}"
    );
    // A file added.
    let mut added = app();
    added
        .files
        .push((SUMS_FILE.into(), sums.clone().into_bytes()));
    let path = added.build(d.path(), &[("extra.sh".into(), b"rm -rf /".to_vec())]);
    let e = err(import(&path, &pk, &trust, false));
    assert!(
        matches!(&e, PackageError::Tampered(m) if m.contains("extra.sh")),
        "{e}"
    );
    // A file missing.
    let mut missing = app();
    missing.files.remove(3);
    missing.files.push((SUMS_FILE.into(), sums.into_bytes()));
    let e = err(import(&missing.build(d.path(), &[]), &pk, &trust, false));
    assert!(
        matches!(&e, PackageError::Tampered(m) if m.contains("www/index.html")),
        "{e}"
    );
    assert!(
        !pk.join("dev.test.notes").join("1.2.0").exists(),
        "nothing is left"
    );
}

#[test]
fn malformed_archives_are_invalid_packages() {
    let (d, pk, trust) = env();
    let cases: Vec<(&str, Vec<u8>)> = {
        let mut v = Vec::new();
        // `..` and absolute names: written as raw headers, since the tar
        // crate's builder refuses them.
        for bad in ["../escape", "/etc/evil"] {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..bad.len()].copy_from_slice(bad.as_bytes());
            h.set_size(1);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            let mut raw = h.as_bytes().to_vec();
            raw.extend_from_slice(b"x");
            raw.resize(1024, 0);
            raw.extend_from_slice(&[0u8; 1024]);
            v.push((bad, raw));
        }
        let link = |name: &str, target: &str, kind: tar::EntryType| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
            b.into_inner().unwrap()
        };
        v.push((
            "symlink out",
            link("out", "../../etc", tar::EntryType::Symlink),
        ));
        // Through another link: `d -> .` makes `d/..` the package's
        // parent, though `d/../ESC` reads as `ESC` (either order).
        for links in [
            [("d", "."), ("q", "d/../ESC")],
            [("q", "d/../ESC"), ("d", ".")],
        ] {
            let mut b = tar::Builder::new(Vec::new());
            for (name, target) in links {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
            v.push(("symlink through a symlink", b.into_inner().unwrap()));
        }
        v.push((
            "hard link",
            link("hard", "manifest.json", tar::EntryType::Link),
        ));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        b.append_data(&mut h, "dev", std::io::empty()).unwrap();
        v.push(("device", b.into_inner().unwrap()));
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..2 {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, "twice", &b"x"[..]).unwrap();
        }
        v.push(("duplicate", b.into_inner().unwrap()));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "compose.yaml", &b"{}"[..]).unwrap();
        v.push(("no manifest", b.into_inner().unwrap()));
        v
    };
    for (what, raw) in cases {
        let path = d.path().join("bad.vibeapp");
        std::fs::write(&path, raw).unwrap();
        let e = err(import(&path, &pk, &trust, false));
        assert!(matches!(e, PackageError::InvalidPackage(_)), "{what}: {e}");
        if what.starts_with("symlink through") {
            // Refused for the link, not for the missing manifest.
            assert!(
                e.to_string().contains("passes through another symlink"),
                "{e}"
            );
        }
    }
    // Not a regular file: a device never ends, a FIFO blocks.
    for special in [std::path::PathBuf::from("/dev/zero"), {
        let f = d.path().join("fifo.vibeapp");
        assert!(std::process::Command::new("mkfifo")
            .arg(&f)
            .status()
            .unwrap()
            .success());
        f
    }] {
        let e = err(import(&special, &pk, &trust, false));
        assert!(
            matches!(&e, PackageError::InvalidPackage(m) if m.contains("not a regular file")),
            "{}: {e}",
            special.display()
        );
    }
    assert!(!d.path().join("escape").exists());
    let e = err(import(&d.path().join("nope.vibeapp"), &pk, &trust, false));
    assert!(matches!(e, PackageError::PathNotFound(_)), "{e}");
    // Nothing was unpacked by any refused import.
    assert!(pk
        .read_dir()
        .map(|r| r
            .flatten()
            .all(|a| a.path().read_dir().unwrap().next().is_none()))
        .unwrap_or(true));
}

#[test]
fn a_decompression_bomb_is_refused_while_read() {
    let (d, pk, trust) = env();
    // 600 MiB of zeros in one entry compress to well under a megabyte.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let size = 600u64 << 20;
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "zeros", std::io::repeat(0).take(size))
        .unwrap();
    let raw = b.into_inner().unwrap();
    let path = d.path().join("bomb.vibeapp");
    std::fs::write(&path, zstd::encode_all(raw.as_slice(), 1).unwrap()).unwrap();
    let e = err(import(&path, &pk, &trust, false));
    assert!(matches!(e, PackageError::InvalidPackage(_)), "{e}");
}

use std::io::Read;

fn minisign(dir: &Path, args: &[&str]) {
    let out = Command::new("minisign")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the minisign tool (apt install minisign)");
    assert!(
        out.status.success(),
        "minisign {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs the minisign tool: see README"]
fn signed_packages_are_trusted_untrusted_or_invalid() {
    let (d, pk, trust) = env();
    let keys = d.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    minisign(&keys, &["-G", "-W", "-p", "dev.pub", "-s", "dev.key"]);
    let mut p = app();
    let sums = p.sums();
    std::fs::write(keys.join(SUMS_FILE), &sums).unwrap();
    minisign(&keys, &["-S", "-s", "dev.key", "-m", SUMS_FILE]);
    let sig = std::fs::read(keys.join(format!("{SUMS_FILE}.minisig"))).unwrap();
    let public = std::fs::read(keys.join("dev.pub")).unwrap();
    p.files.push((SUMS_FILE.into(), sums.clone().into_bytes()));
    p.files.push((SIG_FILE.into(), sig));
    p.files.push((SIGNER_FILE.into(), public.clone()));
    let path = p.build(d.path(), &[]);
    assert_eq!(
        import(&path, &pk, &trust, true).unwrap().trust_status,
        "untrusted"
    );
    std::fs::write(trust.join("dev.pub"), &public).unwrap();
    assert_eq!(
        import(&path, &pk, &trust, true).unwrap().trust_status,
        "trusted"
    );

    // The list changed after signing.
    let mut forged = app();
    forged.files[3].1 = b"<h1>evil</h1>".to_vec();
    let forged_sums = forged.sums();
    forged
        .files
        .push((SUMS_FILE.into(), forged_sums.into_bytes()));
    forged.files.push((
        SIG_FILE.into(),
        std::fs::read(keys.join(format!("{SUMS_FILE}.minisig"))).unwrap(),
    ));
    forged.files.push((SIGNER_FILE.into(), public));
    let e = err(import(&forged.build(d.path(), &[]), &pk, &trust, true));
    assert!(matches!(e, PackageError::SignatureInvalid(_)), "{e}");
}

/// `berth pack` refuses what import would: a link that climbs out
/// through another link of the directory.
#[test]
fn pack_refuses_a_symlink_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    let app = d.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("compose.yaml"), "services: {}\n").unwrap();
    std::os::unix::fs::symlink(".", app.join("dd")).unwrap();
    std::os::unix::fs::symlink("dd/../ESC", app.join("q2")).unwrap();
    let e = super::pack::pack(&app, &d.path().join("a.vibeapp"), b"{}", &[], None).unwrap_err();
    assert!(
        matches!(&e, PackageError::InvalidPackage(m) if m.contains("q2")),
        "{e}"
    );
    // Without the link it goes through, the link to `.` alone is fine.
    std::fs::remove_file(app.join("q2")).unwrap();
    super::pack::pack(&app, &d.path().join("a.vibeapp"), b"{}", &[], None).unwrap();
}
