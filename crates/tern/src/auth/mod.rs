//! MQTT 5 enhanced authentication (AUTH packets): the [`Authenticator`] a
//! [`ConnectOptions`](crate::ConnectOptions) carries, answered by the driver.

/// One side of an MQTT 5 enhanced authentication exchange (AUTH packets), e.g. SCRAM.
pub trait Authenticator: Send + 'static {
    /// The Authentication Method sent in CONNECT (e.g. "SCRAM-SHA-256").
    fn method(&self) -> &str;
    /// The Authentication Data of CONNECT (or of the first AUTH of a re-authentication).
    fn start(&mut self) -> Result<Option<bytes::Bytes>, AuthError>;
    /// The broker's AUTH (reason 0x18 Continue) data; returns the data of our answer.
    fn step(&mut self, data: Option<&[u8]>) -> Result<Option<bytes::Bytes>, AuthError>;
    /// The broker's final data (CONNACK success or AUTH 0x00): verify it (e.g. the SCRAM
    /// server signature); an error ends the connection.
    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError>;
}

/// Why an authentication step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The broker's data is malformed or fails verification.
    #[error("authentication failed: {0}")]
    Failed(String),
}

pub mod scram;
pub use scram::{Scram, ScramError};
