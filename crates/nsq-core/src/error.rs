//! Domain errors. Their `Display` texts are Go's, because nsqd appends them to wire errors
//! (`E_FIN_FAILED FIN <id> failed ID not in flight`); the mapping to wire codes lives in the daemon.

/// What can go wrong inside a topic or channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The topic or channel is being deleted or the daemon is shutting down.
    #[error("exiting")]
    Exiting,
    /// FIN/REQ/TOUCH of an id that is not in flight on this channel.
    #[error("ID not in flight")]
    NotInFlight,
    /// FIN/REQ/TOUCH by a client that was not given the message.
    #[error("client does not own message")]
    NotOwned,
    /// `--max-channel-consumers` would be exceeded.
    #[error("consumers for {topic}:{channel} exceeds limit of {limit}")]
    TooManyConsumers {
        /// Topic name.
        topic: String,
        /// Channel name.
        channel: String,
        /// The configured limit.
        limit: i64,
    },
    /// The named topic does not exist.
    #[error("topic does not exist")]
    TopicNotFound,
    /// The named channel does not exist.
    #[error("channel does not exist")]
    ChannelNotFound,
}
