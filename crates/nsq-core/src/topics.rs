//! The topic registry (Go's `NSQD.topicMap` with `GetTopic`, `GetExistingTopic`, `DeleteExistingTopic`).
//!
//! The map lock is a short synchronous critical section: it is never held across an `.await`, and topic or
//! channel work (which takes their own locks) happens after it is released.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::backend::Storage;
use crate::channel::Channel;
use crate::config::CoreConfig;
use crate::error::Error;
use crate::events::{Event, EventSink};
use crate::scan::QueueScan;
use crate::shared::Shared;
use crate::topic::Topic;

/// Every topic of the daemon.
#[derive(Debug)]
pub struct Topics {
    shared: Arc<Shared>,
    map: RwLock<HashMap<String, Arc<Topic>>>,
    exiting: AtomicBool,
}

impl Topics {
    /// An empty registry whose channels schedule their timeouts on `scan` and keep overflow in memory.
    pub fn new(cfg: CoreConfig, scan: Arc<QueueScan>) -> Self {
        Self::with_storage(cfg, scan, Storage::Memory, None)
    }

    /// An empty registry storing overflow in `storage` and reporting creations and deletions to `events`.
    pub fn with_storage(
        cfg: CoreConfig,
        scan: Arc<QueueScan>,
        storage: Storage,
        events: Option<EventSink>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                cfg: Arc::new(cfg),
                scan,
                storage,
                events,
            }),
            map: RwLock::new(HashMap::new()),
            exiting: AtomicBool::new(false),
        }
    }

    /// The domain configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.shared.cfg
    }

    /// Where overflow is stored.
    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    /// Returns the topic, creating and starting it if needed (Go `GetTopic`); `true` when it was created.
    pub fn get_topic(&self, name: &str) -> (Arc<Topic>, bool) {
        let (topic, created) = self.get_topic_unstarted(name);
        if created {
            topic.start();
        }
        (topic, created)
    }

    /// Like [`Topics::get_topic`], but a topic created by this call is left unstarted: it keeps what is
    /// published until [`Topic::start`], so the caller can first create the channels it must have (those
    /// recorded in `nsqd.dat`, or those nsqlookupd knows). Every caller that gets `true` must start it.
    pub fn get_topic_unstarted(&self, name: &str) -> (Arc<Topic>, bool) {
        if let Some(t) = self.map.read().get(name) {
            return (Arc::clone(t), false);
        }
        let topic = {
            let mut map = self.map.write();
            if let Some(t) = map.get(name) {
                return (Arc::clone(t), false);
            }
            let topic = Topic::new(name, Arc::clone(&self.shared));
            map.insert(name.to_owned(), Arc::clone(&topic));
            topic
        };
        self.shared.emit(Event::TopicCreated {
            topic: name.to_owned(),
        });
        (topic, true)
    }

    /// Returns the topic if it exists.
    pub fn get_existing_topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.map.read().get(name).cloned()
    }

    /// Deletes a topic with all its channels and messages (Go `DeleteExistingTopic`). The topic is marked
    /// exiting before it leaves the map, so a concurrent publish fails instead of silently recreating it.
    pub fn delete_existing_topic(&self, name: &str) -> Result<(), Error> {
        let topic = self.get_existing_topic(name).ok_or(Error::TopicNotFound)?;
        // Reports the deletion (before the name is free again, so a re-creation is always reported after it).
        topic.delete();
        let mut map = self.map.write();
        if map.get(name).is_some_and(|t| Arc::ptr_eq(t, &topic)) {
            map.remove(name);
        }
        Ok(())
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.map.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        topics
    }

    /// Unsubscribes a consumer and deletes an ephemeral channel it leaves empty, then an ephemeral topic left
    /// without channels (Go's `deleteCallback` chain).
    pub fn remove_consumer(&self, channel: &Arc<Channel>, client_id: u64) {
        if !channel.remove_client(client_id) {
            return;
        }
        let Some(topic) = self.get_existing_topic(channel.topic_name()) else {
            return;
        };
        match topic.get_existing_channel(channel.name()) {
            Some(c) if Arc::ptr_eq(&c, channel) => {}
            _ => return,
        }
        if let Ok(true) = topic.delete_existing_channel(channel.name()) {
            let _ = self.delete_existing_topic(topic.name());
        }
    }

    /// Marks the daemon as exiting and closes every topic: consumers are disconnected, queued messages stay in
    /// their queues for the persistence step that follows.
    pub fn close_all(&self) {
        self.exiting.store(true, Ordering::Release);
        for t in self.topics() {
            t.close();
        }
    }

    /// Whether [`Topics::close_all`] ran.
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }
}
