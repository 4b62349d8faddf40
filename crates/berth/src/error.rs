//! The one error type of `berth` commands: what to tell the user, and the
//! exit status. Every command returns `Result<i32, CliError>`; `Ok` carries
//! the status of a command that did its work (non-zero when that work found
//! a problem, e.g. `validate` on an invalid file), `Err` one that could not.

use berth_client::ClientError;
use berth_wire::daemon::StatusCode;
use std::fmt;

/// A command that could not do its work.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    status: i32,
    /// The daemon's machine-readable code (`NOT_FOUND`, `STILL_RUNNING`),
    /// shown only with `-v` or `--json`.
    code: Option<String>,
}

/// What a command's `run` returns: its exit status, or why it failed.
pub(crate) type CmdResult = Result<i32, CliError>;

impl CliError {
    /// The work failed (the daemon refused, a file could not be read, the
    /// connection broke): exit status 1.
    pub(crate) fn failed(message: impl fmt::Display) -> Self {
        Self::with_status(1, message)
    }

    /// The input cannot be used as given (a malformed flag value, a file
    /// that does not parse): exit status 2, as for clap's own usage errors.
    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Self::with_status(2, message)
    }

    /// A flag value that a session request would be refused for, reported
    /// as the daemon's refusal would be (code INVALID_ARGUMENT, exit
    /// status 1).
    pub(crate) fn invalid_argument(message: impl fmt::Display) -> Self {
        Self::from(ClientError::Status {
            code: StatusCode::InvalidArgument,
            message: message.to_string(),
        })
    }

    /// The same error, marked with the daemon's code.
    fn coded(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// A failure with its own exit status (e.g. 3: `remote attach --until`
    /// timed out).
    pub(crate) fn with_status(status: i32, message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            status,
            code: None,
        }
    }

    /// Prints the error on stderr and returns the exit status: `berth:
    /// MESSAGE` (one style for every command); with `verbose`, the
    /// daemon's code follows in brackets (`berth: MESSAGE [NOT_FOUND]`);
    /// with `json`, one JSON object `{"error": MESSAGE, "code": CODE,
    /// "status": N}` instead.
    pub(crate) fn report(self, verbose: bool, json: bool) -> i32 {
        if json {
            let v = serde_json::json!({
                "error": self.message, "code": self.code, "status": self.status,
            });
            eprintln!("{v}");
        } else {
            match (&self.code, verbose) {
                (Some(code), true) => eprintln!("berth: {} [{code}]", self.message),
                _ => eprintln!("berth: {}", self.message),
            }
        }
        self.status
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A process API refusal in the CLI's words (`words`), its status code
/// kept apart.
impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status { code, message } => {
                Self::failed(crate::words::process_message(&message))
                    .coded(crate::words::short_code(code.as_str_name()))
            }
            e => Self::failed(e),
        }
    }
}

/// A refusal of the project API: its message in the CLI's words, and the
/// failing service's last log lines when the daemon sent them (see
/// docs/project-api.md, error details); its berth error code kept apart.
impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        use berth_client::project;
        let mut msg = crate::words::project_message(s.message());
        if let Some(lines) = project::error_detail(&s, "last_log_lines").filter(|l| !l.is_empty()) {
            msg.push_str("\nlast log lines:\n");
            for l in lines.lines() {
                msg.push_str("  ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        let code = project::error_code(&s)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", s.code()).to_uppercase());
        Self::failed(msg.trim_end()).coded(&code)
    }
}
