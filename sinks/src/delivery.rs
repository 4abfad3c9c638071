//! A batch of Kafka sends that is awaited as a whole.
//!
//! Sends are queued without waiting for each acknowledgement (waiting per record would kill
//! librdkafka's batching); [`Deliveries::wait`] then awaits them all. The at-least-once stages
//! store their input offsets only after `wait` succeeds, so a crash or a failed delivery at any
//! point replays the input instead of losing it.

use crate::{Error, Result};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::time::Duration;

/// One record to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone (compacted topics).
    pub payload: Option<&'a [u8]>,
}

impl<'a> Outgoing<'a> {
    /// The librdkafka record for this send.
    pub fn record(&self, headers: Option<OwnedHeaders>) -> FutureRecord<'a, [u8], [u8]> {
        let mut record = FutureRecord::<[u8], [u8]>::to(self.topic);
        if let Some(p) = self.payload {
            record = record.payload(p);
        }
        if let Some(p) = self.partition {
            record = record.partition(p);
        }
        if let Some(k) = self.key {
            record = record.key(k);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        record
    }
}

/// Sends queued on one producer, awaited together. Each send keeps its topic's name borrowed
/// from the record (`'a`) for a failure's message, not a copy per record.
pub struct Deliveries<'p, 'a, C: ClientContext + 'static = DefaultClientContext> {
    producer: &'p FutureProducer<C>,
    pending: Vec<(&'a str, DeliveryFuture)>,
}

impl<'p, 'a, C: ClientContext + 'static> Deliveries<'p, 'a, C> {
    pub fn new(producer: &'p FutureProducer<C>) -> Self {
        Deliveries { producer, pending: Vec::new() }
    }

    /// Queues one record; when librdkafka's queue is full, waits for room rather than failing.
    pub async fn send(&mut self, out: Outgoing<'a>, headers: Option<OwnedHeaders>) -> Result<()> {
        let mut record = out.record(headers);
        loop {
            match self.producer.send_result(record) {
                Ok(future) => {
                    self.pending.push((out.topic, future));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(Error::Delivery { topic: out.topic.to_string(), error }),
            }
        }
    }

    /// How many sends are queued.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Waits until every queued record is acknowledged; the first failure is returned.
    pub async fn wait(self) -> Result<usize> {
        let n = self.pending.len();
        let mut first_error = None;
        for (topic, future) in self.pending {
            let outcome = match future.await {
                Ok(Ok(_)) => continue,
                Ok(Err((error, _))) => error,
                Err(_canceled) => KafkaError::Canceled,
            };
            first_error.get_or_insert_with(|| Error::Delivery { topic: topic.to_string(), error: outcome });
        }
        first_error.map_or(Ok(n), Err)
    }
}
