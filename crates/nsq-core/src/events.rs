//! What the domain tells the daemon about topics and channels coming and going (Go's `NSQD.Notify`).
//!
//! The daemon reacts to these by rewriting `nsqd.dat` and by registering or unregistering with nsqlookupd. The
//! domain only reports; it never waits for the reaction, so a slow disk or a dead lookupd cannot stall a
//! publish.

use std::fmt;
use std::sync::Arc;

/// A topic or channel was created or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A topic was created.
    TopicCreated {
        /// Its name.
        topic: String,
    },
    /// A topic was deleted (by an operator, or because an ephemeral topic lost its last channel).
    TopicDeleted {
        /// Its name.
        topic: String,
    },
    /// A channel was created.
    ChannelCreated {
        /// The topic's name.
        topic: String,
        /// The channel's name.
        channel: String,
    },
    /// A channel was deleted.
    ChannelDeleted {
        /// The topic's name.
        topic: String,
        /// The channel's name.
        channel: String,
    },
}

impl Event {
    /// Whether the event concerns something that `nsqd.dat` records (neither topic nor channel ephemeral).
    pub fn is_persistent(&self) -> bool {
        match self {
            Event::TopicCreated { topic } | Event::TopicDeleted { topic } => {
                !nsq_protocol::is_ephemeral(topic)
            }
            Event::ChannelCreated { topic, channel } | Event::ChannelDeleted { topic, channel } => {
                !nsq_protocol::is_ephemeral(topic) && !nsq_protocol::is_ephemeral(channel)
            }
        }
    }
}

/// Receives [`Event`]s. It is called with no domain lock held, from whichever task or thread made the change,
/// and must return quickly (queue the work, do not do it).
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    /// Wraps a callback.
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn emit(&self, event: Event) {
        (self.0)(event);
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}
