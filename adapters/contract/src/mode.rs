//! Whether the gateway talks to a federal service or to its emulator.

/// Whether a federal service is the in-process emulator or a real remote one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMode {
    /// `"sandbox"`: the emulator, started in-process on loopback (the default).
    Sandbox,
    /// `"remote"`: the real service, usually through the GOST TLS sidecar.
    Remote,
}
