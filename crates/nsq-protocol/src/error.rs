//! Error replies that nsqd sends to a client.
//!
//! Every failed command ends in an error frame whose payload is `"{code} {desc}"`, the same text Go's
//! `protocol.ClientErr` and `protocol.FatalClientErr` produce. Whether an error is fatal decides whether the
//! server closes the connection after writing the frame, so it travels with the error.

use std::fmt;

use bytes::Bytes;

/// NSQ error codes as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A malformed command, a parameter error or a command sent in the wrong state.
    Invalid,
    /// A length-prefixed body (IDENTIFY, AUTH, MPUB) with a bad size or content.
    BadBody,
    /// An invalid topic name.
    BadTopic,
    /// An invalid channel name.
    BadChannel,
    /// A PUB, DPUB or MPUB message with a bad size.
    BadMessage,
    /// The topic refused a PUB.
    PubFailed,
    /// The topic refused an MPUB.
    MpubFailed,
    /// The topic refused a DPUB.
    DpubFailed,
    /// FIN of a message that is not in flight for this client.
    FinFailed,
    /// REQ of a message that is not in flight for this client.
    ReqFailed,
    /// TOUCH of a message that is not in flight for this client.
    TouchFailed,
    /// SUB was refused by the channel (exiting, or too many consumers).
    SubFailed,
    /// IDENTIFY asked for something the server cannot do (both compressions, a failed upgrade).
    IdentifyFailed,
    /// AUTH sent to a server without an auth backend.
    AuthDisabled,
    /// The auth backend refused the secret or could not be asked.
    AuthFailed,
    /// A command that needs authorization came before AUTH.
    AuthFirst,
    /// The stored authorization could not be refreshed.
    AuthError,
    /// The authorization does not cover the topic or channel.
    Unauthorized,
    /// The connection did not start with a known protocol magic.
    BadProtocol,
}

impl ErrorCode {
    /// The code as it appears on the wire, for example `"E_INVALID"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "E_INVALID",
            ErrorCode::BadBody => "E_BAD_BODY",
            ErrorCode::BadTopic => "E_BAD_TOPIC",
            ErrorCode::BadChannel => "E_BAD_CHANNEL",
            ErrorCode::BadMessage => "E_BAD_MESSAGE",
            ErrorCode::PubFailed => "E_PUB_FAILED",
            ErrorCode::MpubFailed => "E_MPUB_FAILED",
            ErrorCode::DpubFailed => "E_DPUB_FAILED",
            ErrorCode::FinFailed => "E_FIN_FAILED",
            ErrorCode::ReqFailed => "E_REQ_FAILED",
            ErrorCode::TouchFailed => "E_TOUCH_FAILED",
            ErrorCode::SubFailed => "E_SUB_FAILED",
            ErrorCode::IdentifyFailed => "E_IDENTIFY_FAILED",
            ErrorCode::AuthDisabled => "E_AUTH_DISABLED",
            ErrorCode::AuthFailed => "E_AUTH_FAILED",
            ErrorCode::AuthFirst => "E_AUTH_FIRST",
            ErrorCode::AuthError => "E_AUTH_ERROR",
            ErrorCode::Unauthorized => "E_UNAUTHORIZED",
            ErrorCode::BadProtocol => "E_BAD_PROTOCOL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error reply. Display is exactly "{code} {desc}" as Go's protocol.ClientErr / FatalClientErr.
///
/// Go formats some descriptions from raw client bytes with `%s`. A description is a Rust `String`, so bytes
/// that are not UTF-8 are replaced with U+FFFD when such an error is built; valid input is kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    code: ErrorCode,
    desc: String,
    fatal: bool,
}

impl ClientError {
    /// An error after which the server closes the connection.
    pub fn fatal(code: ErrorCode, desc: impl Into<String>) -> Self {
        ClientError {
            code,
            desc: desc.into(),
            fatal: true,
        }
    }

    /// An error after which the connection stays open.
    pub fn non_fatal(code: ErrorCode, desc: impl Into<String>) -> Self {
        ClientError {
            code,
            desc: desc.into(),
            fatal: false,
        }
    }

    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable part after the code.
    pub fn desc(&self) -> &str {
        &self.desc
    }

    /// Whether the server must close the connection after sending this error.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// The error frame payload, `"{code} {desc}"`.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.desc)
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_code_space_desc() {
        let err = ClientError::fatal(ErrorCode::BadBody, "IDENTIFY invalid body size 0");
        assert_eq!(err.to_string(), "E_BAD_BODY IDENTIFY invalid body size 0");
        assert_eq!(
            &err.to_bytes()[..],
            b"E_BAD_BODY IDENTIFY invalid body size 0"
        );
        assert!(err.is_fatal());
        assert_eq!(err.code(), ErrorCode::BadBody);
        assert_eq!(err.desc(), "IDENTIFY invalid body size 0");
    }

    #[test]
    fn empty_desc_keeps_the_trailing_space() {
        // Golden empty_line.json: the frame text is "E_INVALID invalid command " with an empty name.
        let err = ClientError::fatal(ErrorCode::Invalid, "invalid command ");
        assert_eq!(err.to_string(), "E_INVALID invalid command ");
    }

    #[test]
    fn non_fatal_errors_are_marked() {
        let err = ClientError::non_fatal(
            ErrorCode::FinFailed,
            "FIN 0000000000000000 failed ID not in flight",
        );
        assert!(!err.is_fatal());
        assert_eq!(
            err.to_string(),
            "E_FIN_FAILED FIN 0000000000000000 failed ID not in flight"
        );
    }

    #[test]
    fn every_code_has_its_wire_text() {
        let all = [
            (ErrorCode::Invalid, "E_INVALID"),
            (ErrorCode::BadBody, "E_BAD_BODY"),
            (ErrorCode::BadTopic, "E_BAD_TOPIC"),
            (ErrorCode::BadChannel, "E_BAD_CHANNEL"),
            (ErrorCode::BadMessage, "E_BAD_MESSAGE"),
            (ErrorCode::PubFailed, "E_PUB_FAILED"),
            (ErrorCode::MpubFailed, "E_MPUB_FAILED"),
            (ErrorCode::DpubFailed, "E_DPUB_FAILED"),
            (ErrorCode::FinFailed, "E_FIN_FAILED"),
            (ErrorCode::ReqFailed, "E_REQ_FAILED"),
            (ErrorCode::TouchFailed, "E_TOUCH_FAILED"),
            (ErrorCode::SubFailed, "E_SUB_FAILED"),
            (ErrorCode::IdentifyFailed, "E_IDENTIFY_FAILED"),
            (ErrorCode::AuthDisabled, "E_AUTH_DISABLED"),
            (ErrorCode::AuthFailed, "E_AUTH_FAILED"),
            (ErrorCode::AuthFirst, "E_AUTH_FIRST"),
            (ErrorCode::AuthError, "E_AUTH_ERROR"),
            (ErrorCode::Unauthorized, "E_UNAUTHORIZED"),
            (ErrorCode::BadProtocol, "E_BAD_PROTOCOL"),
        ];
        for (code, text) in all {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
        }
    }
}
