//! The names the relay routes by: a token's namespace, a machine within
//! it, and one feed of one session.

use std::fmt;

/// The namespace a token admits its links to: the first 16 bytes of
/// SHA-256 over a domain-separated token, in hex (32 characters).
///
/// The hub, and the cluster subjects and messages, carry only this, never
/// the token: a namespace proves nothing, so it can travel over NATS
/// (issue 14: "NATS subjects carry no tokens"), while two relays that
/// accept the same token agree on it without talking.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Namespace(String);

impl Namespace {
    /// The namespace of `token`.
    pub fn of_token(token: &str) -> Self {
        let mut input = b"berth-relay namespace v1\0".to_vec();
        input.extend_from_slice(token.as_bytes());
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        let mut hex = String::with_capacity(32);
        for b in &d.as_ref()[..16] {
            hex.push_str(&format!("{b:02x}"));
        }
        Namespace(hex)
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ns:{}", &self.0[..8.min(self.0.len())])
    }
}

/// One machine: its namespace and the id its agent announced.
#[derive(
    Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct MachineKey {
    /// Namespace of the agent's token.
    pub ns: Namespace,
    /// `machineId` from the agent's `hello`.
    pub machine: String,
}

/// One feed: a session of a machine in one mode (grid or raw bytes).
///
/// The opcode frames carry no session id (§3), so each feed has its own
/// agent link; this key says which.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct RouteKey {
    /// Namespace of the machine's token.
    pub ns: Namespace,
    /// Machine id.
    pub machine: String,
    /// Session id on that machine.
    pub session: String,
    /// GRID_SNAPSHOT / GRID_DIFF (`true`) or PTY_DATA (`false`).
    pub grid: bool,
}

impl RouteKey {
    /// The machine this feed belongs to.
    pub fn machine_key(&self) -> MachineKey {
        MachineKey {
            ns: self.ns.clone(),
            machine: self.machine.clone(),
        }
    }

    /// The session, whatever the mode (first-paint cache key).
    pub fn session_key(&self) -> SessionKey {
        SessionKey {
            ns: self.ns.clone(),
            machine: self.machine.clone(),
            session: self.session.clone(),
        }
    }
}

/// One session of one machine, in either mode.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SessionKey {
    /// Namespace of the machine's token.
    pub ns: Namespace,
    /// Machine id.
    pub machine: String,
    /// Session id.
    pub session: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_stable_digests_that_do_not_show_the_token() {
        let a = Namespace::of_token("secret");
        assert_eq!(a, Namespace::of_token("secret"));
        assert_ne!(a, Namespace::of_token("secret2"));
        assert_eq!(a.as_str().len(), 32);
        assert!(!a.as_str().contains("secret"));
    }
}
