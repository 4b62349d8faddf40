//! The CLI's words for the daemon's refusals. The APIs name their own
//! request fields and methods (`service_stop.target`, `EnsureProject`,
//! `pass force`), which is precise for an API client and foreign to a
//! user of `berth`; here those names become the commands and flags that
//! do the same thing. The machine-readable code is kept apart (shown with
//! `-v` or `--json`, see `error.rs`).

/// Rewrites of project API phrases (engine messages, seed 000 names) into
/// the CLI's commands and flags. Each pair is (API phrase, CLI phrase).
const PROJECT_PHRASES: &[(&str, &str)] = &[
    (
        " (EnsureProject registers one)",
        "; `berth projects` lists them, `berth up DIR` registers one",
    ),
    (
        "; StartProject starts it, DeleteProjectRuntime closes it",
        "; `berth up` starts it",
    ),
    (
        ": call OpenProject first",
        ": `berth up` opens and starts it",
    ),
    (
        "; StopProject first to restart it",
        "; `berth project restart` restarts it",
    ),
    (
        " (pass them in `secrets`)",
        " (pass each as --secret NAME=VALUE)",
    ),
    (
        ": stop it first, or pass force",
        ": stop it first (`berth down --keep`), or pass --force",
    ),
    (
        " (allow_version_mismatch restores it anyway)",
        " (`berth snapshot restore --allow-version-mismatch` restores it anyway)",
    ),
    ("filter_status ", "--status "),
    ("tail_lines: ", "--tail: "),
    ("timeout_seconds: ", "--timeout: "),
    ("package_path ", ""),
    ("in the request ", "given "),
];

/// A project API message in the CLI's words.
pub(crate) fn project_message(message: &str) -> String {
    let mut m = message.to_string();
    for (api, cli) in PROJECT_PHRASES {
        m = m.replace(api, cli);
    }
    m
}

/// A process API message in the CLI's words: the request field path that
/// leads it (`service_stop.target "x": ...`) is dropped or said as the
/// thing it names.
pub(crate) fn process_message(message: &str) -> String {
    let (field, rest) = leading_field(message);
    let Some(field) = field else {
        return message.to_string();
    };
    let last = field.rsplit('.').next().unwrap_or(field);
    // `target "x": no service has that name or id`
    if let Some((value, why)) = rest.strip_prefix(' ').and_then(|r| r.split_once(": ")) {
        if last == "target" && why == "no service has that name or id" {
            return format!("no service is named {value} (`berth svc ls` lists them)");
        }
        if matches!(last, "target" | "id" | "session_id" | "pid") {
            return format!("{value}: {why}");
        }
    }
    format!("{last}{rest}")
}

/// Splits `a_b.c.d REST` into (`a_b.c.d`, ` REST`) when the message starts
/// with a dotted snake_case request path; else (None, message).
fn leading_field(message: &str) -> (Option<&str>, &str) {
    let end = message
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(message.len());
    let field = &message[..end];
    let first = field.split('.').next().unwrap_or("");
    if field.contains('.') && first.contains('_') && !field.ends_with('.') {
        (Some(field), &message[end..])
    } else {
        (None, message)
    }
}

/// `STATUS_CODE_NOT_FOUND` as `NOT_FOUND`.
pub(crate) fn short_code(name: &str) -> &str {
    name.strip_prefix("STATUS_CODE_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_api_field_paths_become_words() {
        assert_eq!(
            process_message("target \"x\": no service has that name or id"),
            "target \"x\": no service has that name or id"
        );
        assert_eq!(
            process_message("service_stop.target \"nosuch\": no service has that name or id"),
            "no service is named \"nosuch\" (`berth svc ls` lists them)"
        );
        assert_eq!(
            process_message("get_process_tree.pid 4000000: no such process"),
            "4000000: no such process"
        );
        assert_eq!(
            process_message("service_start.config.cmd: is empty"),
            "cmd: is empty"
        );
        assert_eq!(process_message("plain words."), "plain words.");
    }

    #[test]
    fn project_api_names_become_commands() {
        // Issue 11: the engine's SNAPSHOT_MISMATCH names the request
        // field; the CLI names its flag.
        assert_eq!(
            project_message("snapshot s is of version \"1.0\"; project \"p\" is at \"2.0\" (allow_version_mismatch restores it anyway)"),
            "snapshot s is of version \"1.0\"; project \"p\" is at \"2.0\" (`berth snapshot restore --allow-version-mismatch` restores it anyway)"
        );
        assert_eq!(
            project_message("no project has the id \"nosuch\" (EnsureProject registers one)"),
            "no project has the id \"nosuch\"; `berth projects` lists them, `berth up DIR` registers one"
        );
        assert_eq!(
            project_message("project \"n\" still runs web: stop it first, or pass force"),
            "project \"n\" still runs web: stop it first (`berth down --keep`), or pass --force"
        );
        for (api, _) in PROJECT_PHRASES {
            assert!(!project_message(api).contains("Project"));
        }
    }
}
