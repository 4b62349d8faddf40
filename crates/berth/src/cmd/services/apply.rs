//! `berth svc apply FILE`: services declared in a TOML ecosystem file,
//! applied idempotently. New ones start, changed ones restart, and the
//! ones this file declared before but no longer does stop. Errors point at
//! the file's line, column and key.

use super::ecosystem::{located, parse_file, FileError, APPLY_TAG};
use crate::ctx::Ctx;
use crate::error::{CliError, CmdResult};
use berth_client::ClientError;
use berth_wire::daemon::ServiceState;
use std::collections::HashMap;
use std::path::Path;

/// `berth svc apply FILE`: exit status 2 when the file cannot be read or
/// parsed (nothing changed), 1 when the daemon refuses a service (those
/// before it in the file were applied).
pub(super) fn apply(ctx: &mut Ctx, path: &Path) -> CmdResult {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let declared =
        parse_file(path, &text).map_err(|e| CliError::usage(located(path, &text, &e)))?;
    let c = ctx.client()?;
    let abs = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let current: HashMap<String, ServiceState> = c
        .service_list()?
        .into_iter()
        .map(|(s, _)| (s.name.clone(), s))
        .collect();
    for d in &declared {
        let name = d.config.name.clone();
        let existing = current.get(&name);
        let up = existing.is_some_and(|s| s.status == "online" || s.status == "starting");
        let same = existing.and_then(|s| s.config.as_ref()) == Some(&d.config);
        let what = match (existing, same, up) {
            (Some(_), true, true) => {
                println!("{name}: unchanged");
                continue;
            }
            (Some(_), true, false) => "started",
            (Some(_), false, true) => {
                c.service_stop(&name)?;
                "restarted (changed)"
            }
            (Some(_), false, false) => "started (changed)",
            (None, _, _) => "started",
        };
        match c.service_start(d.config.clone()) {
            Ok(s) => println!("{name}: {what} (id {}, pid {})", s.id, s.pid),
            Err(ClientError::Status { message, .. }) => {
                // Point at the field the daemon names, where the file has it.
                let field = message
                    .strip_prefix("service_start.config.")
                    .and_then(|m| m.split_once(':'))
                    .map(|(f, m)| (f.to_string(), m.trim().to_string()));
                let (key, msg) = field.unwrap_or(("name".into(), message.clone()));
                let base = key.split(['[', '.']).next().unwrap_or("name");
                let span = d
                    .spans
                    .get(base)
                    .or_else(|| d.spans.get("name"))
                    .cloned()
                    .unwrap_or(0..0);
                return Err(CliError::failed(located(
                    path,
                    &text,
                    &FileError {
                        span,
                        key: format!("services.{name}.{key}"),
                        message: msg,
                    },
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (name, s) in &current {
        let owned = s
            .config
            .as_ref()
            .and_then(|c| c.env.get(APPLY_TAG))
            .is_some_and(|f| *f == abs);
        let declared_now = declared.iter().any(|d| &d.config.name == name);
        if owned && !declared_now && (s.status == "online" || s.status == "starting") {
            c.service_stop(name)?;
            println!("{name}: stopped (no longer in {})", path.display());
        }
    }
    Ok(0)
}
