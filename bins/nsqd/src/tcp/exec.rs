//! The one place where domain errors become wire errors (Go builds these inline in `protocol_v2.go`).
//!
//! Only FIN, REQ and TOUCH failures are non-fatal; every other error closes the connection after it is sent.

use nsq_core::Error;
use nsq_protocol::{ClientError, ErrorCode, MessageId};

/// The command whose domain call failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failed<'a> {
    Pub,
    Mpub,
    Dpub,
    Sub,
    Fin(&'a MessageId),
    Req(&'a MessageId),
    Touch(&'a MessageId),
}

/// Maps a domain error to the frame Go sends for it.
pub(crate) fn wire_error(cmd: Failed<'_>, err: &Error) -> ClientError {
    match cmd {
        Failed::Pub => ClientError::fatal(ErrorCode::PubFailed, format!("PUB failed {err}")),
        Failed::Mpub => ClientError::fatal(ErrorCode::MpubFailed, format!("MPUB failed {err}")),
        Failed::Dpub => ClientError::fatal(ErrorCode::DpubFailed, format!("DPUB failed {err}")),
        Failed::Sub => ClientError::fatal(ErrorCode::SubFailed, format!("SUB failed {err}")),
        Failed::Fin(id) => {
            ClientError::non_fatal(ErrorCode::FinFailed, format!("FIN {id} failed {err}"))
        }
        Failed::Req(id) => {
            ClientError::non_fatal(ErrorCode::ReqFailed, format!("REQ {id} failed {err}"))
        }
        Failed::Touch(id) => {
            ClientError::non_fatal(ErrorCode::TouchFailed, format!("TOUCH {id} failed {err}"))
        }
    }
}

/// Go's "cannot X in current state" error.
pub(crate) fn bad_state(cmd: &str) -> ClientError {
    ClientError::fatal(ErrorCode::Invalid, format!("cannot {cmd} in current state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fin_of_unknown_id_is_non_fatal_with_go_text() {
        let id = MessageId(*b"0000000000000000");
        let e = wire_error(Failed::Fin(&id), &Error::NotInFlight);
        assert!(!e.is_fatal());
        assert_eq!(
            e.to_string(),
            "E_FIN_FAILED FIN 0000000000000000 failed ID not in flight"
        );
    }

    #[test]
    fn sub_over_consumer_limit_is_fatal_with_go_text() {
        let err = Error::TooManyConsumers {
            topic: "golden_mcc".into(),
            channel: "ch".into(),
            limit: 1,
        };
        let e = wire_error(Failed::Sub, &err);
        assert!(e.is_fatal());
        assert_eq!(
            e.to_string(),
            "E_SUB_FAILED SUB failed consumers for golden_mcc:ch exceeds limit of 1"
        );
    }
}
