//! A one-shot value that both blocking threads and async tasks can wait for.
//!
//! The pool threads finish a queue's load or close; the caller may be a plain thread (startup, tests) or an
//! async task (the daemon's shutdown), so neither a `std` channel nor a tokio `oneshot` fits both.

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Latch<T: Clone> {
    value: Mutex<Option<T>>,
    cond: Condvar,
    notify: Notify,
}

impl<T: Clone> Latch<T> {
    pub(crate) fn new() -> Latch<T> {
        Latch {
            value: Mutex::new(None),
            cond: Condvar::new(),
            notify: Notify::new(),
        }
    }

    /// Sets the value (the first one wins) and wakes every waiter.
    pub(crate) fn set(&self, value: T) {
        {
            let mut v = self.value.lock();
            if v.is_none() {
                *v = Some(value);
            }
        }
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    pub(crate) fn get(&self) -> Option<T> {
        self.value.lock().clone()
    }

    /// Blocks the calling thread until the value is set.
    pub(crate) fn wait_blocking(&self) -> T {
        let mut v = self.value.lock();
        loop {
            if let Some(value) = &*v {
                return value.clone();
            }
            self.cond.wait(&mut v);
        }
    }

    /// Waits, without blocking the thread, until the value is set.
    pub(crate) async fn wait(&self) -> T {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a `set` in between is not missed.
            notified.as_mut().enable();
            if let Some(value) = self.get() {
                return value;
            }
            notified.await;
        }
    }
}
