//! How `iocflow run` is asked to stop: a [`Shutdown`] handed to everything that runs until then.
//!
//! The stages finish their micro-batch, deliver and commit it, and return; the metrics endpoint
//! and the table reloader stop. `main` triggers it on SIGTERM or Ctrl-C; tests trigger it
//! directly, so they can drive [`run`](crate::run::run) in-process.

use tokio::sync::watch;

/// A request to stop, handed to whatever runs until shutdown: the stages finish their micro-batch,
/// deliver and commit it, and return. `main` triggers it on SIGTERM or Ctrl-C; tests trigger it
/// directly.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The side that asks for a [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A trigger and the shutdown it asks for.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until shutdown is asked for (or its trigger is gone).
    pub async fn wait(&mut self) {
        while !self.requested() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}
