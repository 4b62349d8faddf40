//! `berth key generate`, `berth trust add|ls|rm` and `berth pack`: making
//! and signing `.vibeapp` packages (issue 11; `docs/vibeapp-format.md`).
//! They run here, on the user's files: a key pair is two files, the
//! trust store is the directory the daemon's ImportPackage reads (beside
//! the scope's database: `<state dir>/trusted-keys`, or
//! `<state dir>/berth-NAME-trusted-keys` for `--scope NAME`; `--db` names
//! the database of a daemon started with `--db`), and packing is file
//! work; no daemon is needed. `berth import` (ImportPackage) is in `projects`.
//!
//! A secret key is encrypted with `BERTH_KEY_PASSWORD` when that is set
//! (then the `minisign` tool can sign with it too); without it the key is
//! stored unencrypted (mode 0600), readable by berth only.

use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_engine::packages::{keys, pack};
use berth_engine::projects::capabilities;
use berth_engine::projects::manifest::{Manifest, MANIFEST_FILE};
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// The password of secret keys (empty: unencrypted).
const PASSWORD_ENV: &str = "BERTH_KEY_PASSWORD";

/// The packaging commands.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Signing keys for packages (minisign format).
    Key {
        #[command(subcommand)]
        command: KeyCmd,
    },
    /// The keys whose packages import as `trusted`.
    Trust {
        /// The database of a daemon started with `--db` (its trust store
        /// is beside it); default: the scope's.
        #[arg(long, global = true, value_name = "PATH")]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: TrustCmd,
    },
    /// Pack an app directory into a .vibeapp (signed with --sign).
    Pack {
        /// The app directory (its Compose file, and manifest.json if it
        /// has one).
        dir: PathBuf,
        /// The package to write.
        #[arg(short = 'o', long = "output", value_name = "APP.vibeapp")]
        output: PathBuf,
        /// Sign with this secret key (`berth key generate`).
        #[arg(long, value_name = "NAME.key")]
        sign: Option<PathBuf>,
        /// The app id when the directory has no manifest.json (default
        /// `local.<directory name>`).
        #[arg(long)]
        app_id: Option<String>,
        /// The version when the directory has no manifest.json.
        #[arg(long = "app-version", default_value = "0.1.0")]
        app_version: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `berth key ...`.
#[derive(Subcommand)]
pub(crate) enum KeyCmd {
    /// Write NAME.key (secret) and NAME.pub (public).
    Generate {
        /// The files' path without extension.
        name: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `berth trust ...`.
#[derive(Subcommand)]
pub(crate) enum TrustCmd {
    /// Trust the signer of this public key (NAME.pub).
    Add {
        /// The public key file.
        key: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The trusted keys.
    Ls {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a key.
    Rm {
        /// Its id (from `berth trust ls`).
        key_id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The trust store the daemon of `scope` (or of database `db`) reads.
fn trust_dir(scope: Option<&str>, db: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let mut cfg = berth_daemon::config::DaemonConfig::for_scope(scope.map(String::from))
        .map_err(CliError::failed)?;
    if let Some(db) = db {
        cfg.db_path = db;
    }
    Ok(berth_engine::projects::package_roots(&cfg.projects_state_root()).1)
}

fn password() -> String {
    std::env::var(PASSWORD_ENV).unwrap_or_default()
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::failed(e)
}

fn with_ext(name: &Path, ext: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(format!(".{ext}"));
    PathBuf::from(s)
}

fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

impl Command {
    pub(crate) fn run(self, ctx: &mut Ctx) -> CmdResult {
        match self {
            Command::Key {
                command: KeyCmd::Generate { name, force, json },
            } => {
                let (sk, pk) = (with_ext(&name, "key"), with_ext(&name, "pub"));
                for p in [&sk, &pk] {
                    if p.exists() && !force {
                        return Err(fail(format!(
                            "{} exists; use --force to replace it",
                            p.display()
                        )));
                    }
                }
                let kp = keys::generate(&password()).map_err(fail)?;
                write_private(&sk, kp.secret.as_bytes())?;
                std::fs::write(&pk, &kp.public)
                    .map_err(|e| fail(format!("cannot write {}: {e}", pk.display())))?;
                if json {
                    print_json(serde_json::json!({
                        "key_id": kp.key_id, "secret_key": sk, "public_key": pk,
                        "encrypted": !password().is_empty(),
                    }));
                } else {
                    println!(
                        "key {} written: {} (secret{}), {} (public)",
                        kp.key_id,
                        sk.display(),
                        if password().is_empty() {
                            ", unencrypted"
                        } else {
                            ""
                        },
                        pk.display()
                    );
                }
                Ok(0)
            }
            Command::Trust { db, command } => trust(command, &trust_dir(ctx.scope(), db)?),
            Command::Pack {
                dir,
                output,
                sign,
                app_id,
                app_version,
                json,
            } => pack_dir(&dir, &output, sign.as_deref(), app_id, &app_version, json),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
}

fn trust(cmd: TrustCmd, dir: &Path) -> CmdResult {
    match cmd {
        TrustCmd::Add { key, json } => {
            let text = std::fs::read_to_string(&key)
                .map_err(|e| fail(format!("cannot read {}: {e}", key.display())))?;
            let id = keys::trust_add(dir, &text).map_err(fail)?;
            if json {
                print_json(serde_json::json!({ "key_id": id, "trust_dir": dir }));
            } else {
                println!("trusted key {id} (in {})", dir.display());
            }
        }
        TrustCmd::Ls { json } => {
            let list = keys::trust_list(dir);
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(id, p)| serde_json::json!({ "key_id": id, "path": p }))
                    .collect();
                print_json(serde_json::json!({ "keys": v }));
            } else {
                for (id, p) in list {
                    println!("{id}  {}", p.display());
                }
            }
        }
        TrustCmd::Rm { key_id, json } => {
            keys::trust_remove(dir, &key_id).map_err(fail)?;
            if json {
                print_json(
                    serde_json::json!({ "key_id": key_id.trim().to_ascii_uppercase(), "trust_dir": dir }),
                );
            } else {
                println!(
                    "no longer trusted: key {}",
                    key_id.trim().to_ascii_uppercase()
                );
            }
        }
    }
    Ok(0)
}

fn pack_dir(
    dir: &Path,
    output: &Path,
    sign: Option<&Path>,
    app_id: Option<String>,
    version: &str,
    json: bool,
) -> CmdResult {
    if !dir.is_dir() {
        return Err(fail(format!("{} is not a directory", dir.display())));
    }
    // Resolved first: `.` names the directory it is, and the Compose file a
    // manifest names is found relative to the directory once, not twice.
    let dir = &std::fs::canonicalize(dir)
        .map_err(|e| fail(format!("cannot resolve {}: {e}", dir.display())))?;
    let own = dir.join(MANIFEST_FILE);
    let manifest = if own.is_file() {
        let bytes =
            std::fs::read(&own).map_err(|e| fail(format!("cannot read {}: {e}", own.display())))?;
        Manifest::parse(&bytes).map_err(|e| fail(format!("{}: {e}", own.display())))?
    } else {
        let base = std::path::absolute(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "app".into());
        let m = serde_json::json!({
            "app_id": app_id.unwrap_or_else(|| format!("local.{base}")),
            "name": base,
            "version": version,
        });
        Manifest::parse(m.to_string().as_bytes()).map_err(fail)?
    };
    let caps = capabilities::of_app(dir, &manifest).map_err(fail)?;
    let secret = match sign {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| fail(format!("cannot read {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let pw = password();
    let signer = secret.as_deref().map(|s| pack::Signer {
        secret: s,
        password: &pw,
    });
    let packed =
        pack::pack(dir, output, manifest.to_json().as_bytes(), &caps, signer).map_err(fail)?;
    if json {
        print_json(serde_json::json!({
            "package": output, "app_id": manifest.app_id, "name": manifest.name,
            "version": manifest.version, "files": packed.files, "bytes": packed.bytes,
            "signed_by": packed.key_id, "capabilities": caps,
        }));
    } else {
        println!(
            "{} {} ({}): {} files, {} bytes, {}",
            manifest.name,
            manifest.version,
            output.display(),
            packed.files,
            packed.bytes,
            match &packed.key_id {
                Some(k) => format!("signed by {k}"),
                None => "unsigned".into(),
            }
        );
        if !caps.is_empty() {
            println!("capabilities: {}", caps.join(", "));
        }
    }
    Ok(0)
}
