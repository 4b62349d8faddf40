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
    /// exactly as the daemon's refusal would be (`MESSAGE
    /// (STATUS_CODE_INVALID_ARGUMENT)`, exit status 1).
    pub(crate) fn invalid_argument(message: impl fmt::Display) -> Self {
        Self::from(ClientError::Status {
            code: StatusCode::InvalidArgument,
            message: message.to_string(),
        })
    }

    /// A failure with its own exit status (e.g. 3: `remote attach --until`
    /// timed out).
    pub(crate) fn with_status(status: i32, message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            status,
        }
    }

    /// Prints `berth: MESSAGE` on stderr and returns the exit status.
    pub(crate) fn report(self) -> i32 {
        eprintln!("berth: {}", self.message);
        self.status
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        Self::failed(e)
    }
}

/// A refusal of the project API: its message, its berth error code in
/// brackets, and the failing service's last log lines when the daemon sent
/// them (see docs/project-api.md, error details).
impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        use berth_client::project;
        let mut msg = s.message().to_string();
        if let Some(code) = project::error_code(&s) {
            msg.push_str(&format!(" [{code}]"));
        }
        if let Some(lines) = project::error_detail(&s, "last_log_lines").filter(|l| !l.is_empty()) {
            msg.push_str("\nlast log lines:\n");
            for l in lines.lines() {
                msg.push_str("  ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        Self::failed(msg)
    }
}
