//! The creations and deletions the domain reports (what nsqd turns into `nsqd.dat` rewrites and lookupd
//! REGISTER/UNREGISTER lines), in the order Go's `Notify` calls come.

use std::sync::Arc;

use nsq_core::{CoreConfig, Event, EventSink, QueueScan, Storage, Topics};
use parking_lot::Mutex;

fn recording_registry() -> (Topics, Arc<Mutex<Vec<Event>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        EventSink::new(move |e| seen.lock().push(e))
    };
    let topics = Topics::with_storage(
        CoreConfig::default(),
        QueueScan::new(),
        Storage::Memory,
        Some(sink),
    );
    (topics, seen)
}

fn topic(t: &str) -> String {
    t.to_owned()
}

#[test]
fn a_deleted_topic_reports_itself_then_each_channel() {
    let (topics, seen) = recording_registry();
    let (t, _) = topics.get_topic("t");
    for c in ["b", "a", "x"] {
        t.get_channel(c);
    }
    t.delete_existing_channel("x").unwrap();
    topics.delete_existing_topic("t").unwrap();
    let ch = |c: &str| Event::ChannelCreated {
        topic: topic("t"),
        channel: c.to_owned(),
    };
    let gone = |c: &str| Event::ChannelDeleted {
        topic: topic("t"),
        channel: c.to_owned(),
    };
    assert_eq!(
        *seen.lock(),
        [
            Event::TopicCreated { topic: topic("t") },
            ch("b"),
            ch("a"),
            ch("x"),
            gone("x"),
            Event::TopicDeleted { topic: topic("t") },
            gone("a"),
            gone("b"),
        ]
    );
    // Deleting again finds nothing and reports nothing; a recreated topic starts without channels.
    assert!(topics.delete_existing_topic("t").is_err());
    seen.lock().clear();
    topics.get_topic("t");
    topics.delete_existing_topic("t").unwrap();
    assert_eq!(
        *seen.lock(),
        [
            Event::TopicCreated { topic: topic("t") },
            Event::TopicDeleted { topic: topic("t") },
        ]
    );
}
