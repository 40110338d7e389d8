//! What every topic and channel of one daemon shares: settings, the timeout scanner, where overflow is stored
//! and who hears about creations and deletions. One `Arc` of it replaces Go's `nsqd *NSQD` back-pointer.

use std::sync::Arc;

use crate::backend::Storage;
use crate::config::CoreConfig;
use crate::events::{Event, EventSink};
use crate::scan::QueueScan;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Arc<CoreConfig>,
    pub(crate) scan: Arc<QueueScan>,
    pub(crate) storage: Storage,
    pub(crate) events: Option<EventSink>,
}

impl Shared {
    pub(crate) fn emit(&self, event: Event) {
        if let Some(sink) = &self.events {
            sink.emit(event);
        }
    }
}
