//! MQTT 5 enhanced authentication: the driver answers the session's AUTH events through the
//! application's [`Authenticator`](crate::auth::Authenticator).

use std::sync::Arc;

use tern_proto::session::DisconnectReason;
use tern_proto::{AuthProperties, AuthReasonCode, DisconnectReasonCode, DisconnectV5};

use super::{Driver, Link, now};
use crate::auth::AuthError;

impl Driver {
    /// Runs `f` on the authenticator, if there is one.
    fn with_auth<T>(
        &self,
        f: impl FnOnce(&mut dyn crate::auth::Authenticator) -> Result<T, AuthError>,
    ) -> Option<Result<T, AuthError>> {
        let auth = self.options.v5.authenticator.as_ref()?;
        let mut guard = match auth.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(f(&mut *guard))
    }

    /// Before each CONNECT: a fresh exchange, its first data in CONNECT.
    pub(super) fn auth_start(&mut self) -> Result<(), AuthError> {
        if !self.session.config().level.is_v5() {
            return Ok(());
        }
        if let Some(data) = self.with_auth(|a| a.start()) {
            self.session.set_authentication_data(data?);
        }
        Ok(())
    }

    /// CONNACK accepted: the authenticator verifies the broker's final data; false when it
    /// refuses it (the connection is then ending).
    pub(super) fn auth_connected(&mut self, link: &mut Link<'_>) -> bool {
        let data = self
            .session
            .server_capabilities()
            .and_then(|c| c.authentication_data.clone());
        match self.with_auth(|a| a.finish(data.as_deref())) {
            Some(Err(e)) => {
                self.auth_failed(link, e);
                false
            }
            _ => true,
        }
    }

    /// The broker's AUTH: answer a Continue, verify a re-authentication's Success.
    pub(super) fn on_auth(
        &mut self,
        link: &mut Link<'_>,
        reason: AuthReasonCode,
        properties: &AuthProperties,
    ) {
        let data = properties.authentication_data.as_deref();
        let result = match reason {
            AuthReasonCode::ContinueAuthentication => match self.with_auth(|a| a.step(data)) {
                Some(Ok(answer)) => self
                    .session
                    .auth_continue(now(), answer)
                    .map_err(|e| AuthError::Failed(e.to_string())),
                Some(Err(e)) => Err(e),
                None => Err(AuthError::Failed(
                    "the broker sent AUTH but no authenticator is configured".into(),
                )),
            },
            _ => self.with_auth(|a| a.finish(data)).unwrap_or(Ok(())),
        };
        if let Err(e) = result {
            self.auth_failed(link, e);
        }
    }

    /// `Client::reauthenticate`: AUTH 0x19 with the authenticator's first data.
    pub(super) fn reauthenticate(
        &mut self,
        now: std::time::Instant,
    ) -> Result<(), crate::ClientError> {
        let data = match self.with_auth(|a| a.start()) {
            None => {
                return Err(crate::ClientError::Misuse(tern_proto::ApiMisuse::NoAuth(
                    "configured (no authenticator in the options)",
                )));
            }
            Some(Err(e)) => return Err(crate::ClientError::Auth(Arc::new(e))),
            Some(Ok(data)) => data,
        };
        self.session.reauthenticate(now, data)?;
        Ok(())
    }

    /// Our side of the exchange failed: the connection ends with `e` (DISCONNECT 0x87 Not
    /// authorized when connected).
    fn auth_failed(&mut self, link: &mut Link<'_>, e: AuthError) {
        tracing::debug!(target: super::TARGET, error = %e, "enhanced authentication failed");
        self.v5.get_or_insert_default().auth_error = Some(Arc::new(e));
        let mut d = DisconnectV5::new(DisconnectReasonCode::NotAuthorized);
        d.properties.reason_string = tern_proto::MqttString::new("authentication failed").ok();
        if self
            .session
            .disconnect_v5(now(), d.reason, d.properties)
            .is_err()
        {
            link.ended.get_or_insert(DisconnectReason::Local);
        }
    }
}
