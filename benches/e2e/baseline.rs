//! The baselines, measured in the same run as iocflow, on the same input:
//!
//! - **(a) same hops**: the Kafka work iocflow does, without its processing. Stage 1 reads the
//!   feed topics and writes the internal topic; stage 2 reads that and writes the output topics
//!   — as many messages per topic as iocflow wrote, of the same sizes (copies of iocflow's own
//!   records, so they compress alike), with iocflow's client settings, delivery mode and
//!   micro-batch closing. No decoding, state, enrichment or routing.
//! - **(b) one-hop copy**: each feed record copied to one topic, same delivery mode.
//!
//! Each stage is a plain loop over rdkafka's base consumer and producer: a micro-batch closes
//! on linger or size; at-least-once flushes the producer and then stores the offsets (committed
//! every second, and at the end); exactly-once puts the outputs and offsets in one transaction.

use crate::harness::measure::{Sample, TopicCensus};
use iocflow::config::{Config, Delivery};
use iocflow::kafka::client_config;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts failed deliveries: a baseline that lost messages would measure nothing.
#[derive(Default, Clone)]
pub struct Failures(Arc<AtomicU64>);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where a stage writes: per output topic, how many messages in all and what to copy.
pub struct Plan {
    pub topic: String,
    pub total: u64,
    /// Explicit partitions (round robin over this many) or `None` for the key's partition.
    pub partitions: Option<i32>,
    pub samples: Vec<Sample>,
}

impl Plan {
    /// Writes as iocflow wrote `census` of one topic, to `topic`.
    pub fn like(topic: String, census: &TopicCensus, explicit_partitions: bool) -> Plan {
        Plan {
            topic,
            total: census.messages,
            partitions: explicit_partitions.then_some(census.partitions),
            samples: census.samples.clone(),
        }
    }
}

/// One stage of a baseline: reads `inputs` messages of `from` and writes `plans` in proportion
/// (and, with `copy_to`, every input message as it is).
pub struct Stage {
    pub config: Arc<Config>,
    pub name: &'static str,
    pub from: Vec<String>,
    pub inputs: u64,
    pub plans: Vec<Plan>,
    pub copy_to: Option<String>,
    /// Inputs per micro-batch at most (it also closes on the linger).
    pub max_batch: usize,
}

/// What a stage did.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageRun {
    pub consumed: u64,
    pub produced: u64,
    pub bytes: u64,
    pub seconds: f64,
}

impl Stage {
    /// Runs until every input is consumed and everything is delivered and committed.
    pub fn run(self) -> StageRun {
        let started = Instant::now();
        let config = &self.config;
        let consumer: BaseConsumer = client_config::consumer(config, self.name).create().expect("a consumer");
        let topics: Vec<&str> = self.from.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).expect("subscribe");
        let failures = Failures::default();
        let eos = config.kafka.delivery == Delivery::ExactlyOnce;
        let settings = match eos {
            true => client_config::transactional_producer(config, self.name),
            false => client_config::producer(config),
        };
        let producer: BaseProducer<Failures> = settings.create_with_context(failures.clone()).expect("a producer");
        let call = Duration::from_secs(30);
        if eos {
            producer.init_transactions(call).expect("init_transactions");
        }
        let linger = config.batch.linger;
        let mut run = StageRun::default();
        let mut produced: Vec<u64> = vec![0; self.plans.len()];
        let mut first_input = None;
        while run.consumed < self.inputs {
            assert!(started.elapsed() < Duration::from_secs(1800), "baseline {}: stuck", self.name);
            let deadline = Instant::now() + linger;
            let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
            let mut batch = 0;
            while batch < self.max_batch && run.consumed + (batch as u64) < self.inputs {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match consumer.poll(left) {
                    None => break,
                    Some(Err(e)) => eprintln!("baseline {}: {e}", self.name),
                    Some(Ok(m)) => {
                        first_input.get_or_insert_with(Instant::now);
                        if batch == 0 && eos {
                            producer.begin_transaction().expect("begin_transaction");
                        }
                        offsets.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
                        batch += 1;
                        if let Some(topic) = &self.copy_to {
                            let mut record = BaseRecord::<[u8], [u8]>::to(topic);
                            if let Some(k) = m.key() {
                                record = record.key(k);
                            }
                            if let Some(p) = m.payload() {
                                record = record.payload(p);
                            }
                            run.bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
                            send(&producer, record);
                            run.produced += 1;
                        }
                    }
                }
            }
            if batch == 0 {
                continue;
            }
            let consumed = run.consumed + batch as u64;
            for (plan, done) in self.plans.iter().zip(produced.iter_mut()).filter(|(p, _)| p.total > 0) {
                // The share of this topic's messages owed once `consumed` inputs are read.
                let owed = (plan.total as u128 * consumed as u128 / self.inputs as u128) as u64;
                while *done < owed {
                    let (key, payload) = &plan.samples[(*done as usize) % plan.samples.len()];
                    let mut record = BaseRecord::<[u8], [u8]>::to(&plan.topic);
                    if let Some(k) = key {
                        record = record.key(k);
                    }
                    if let Some(p) = payload {
                        record = record.payload(p);
                    }
                    if let Some(n) = plan.partitions {
                        record = record.partition((*done % n as u64) as i32);
                    }
                    run.bytes += (key.as_ref().map_or(0, Vec::len) + payload.as_ref().map_or(0, Vec::len)) as u64;
                    send(&producer, record);
                    *done += 1;
                    run.produced += 1;
                }
            }
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), next) in &offsets {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)).expect("an offset");
            }
            // Every delivery report first, polled in 1 ms steps: rdkafka's BaseProducer::flush
            // (which commit_transaction calls) polls in 100 ms slices that do not end at the
            // last report, up to 100 ms per batch. iocflow's sink waits the same way.
            let deadline = Instant::now() + call;
            while producer.in_flight_count() > 0 {
                assert!(Instant::now() < deadline, "baseline {}: deliveries did not complete", self.name);
                producer.poll(Duration::from_millis(1));
            }
            if eos {
                let group = consumer.group_metadata().expect("group metadata");
                producer.send_offsets_to_transaction(&tpl, &group, call).expect("send_offsets_to_transaction");
                producer.commit_transaction(call).expect("commit_transaction");
            } else {
                consumer.store_offsets(&tpl).expect("store offsets");
            }
            run.consumed = consumed;
        }
        if !eos {
            consumer.commit_consumer_state(CommitMode::Sync).expect("the final commit");
        }
        assert_eq!(failures.0.load(Ordering::Relaxed), 0, "baseline {}: deliveries failed", self.name);
        run.seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "baseline {}: {} in, {} out in {:.1} s (first input after {:.1} s)",
            self.name,
            run.consumed,
            run.produced,
            run.seconds,
            first_input.map_or(0.0, |t| t.duration_since(started).as_secs_f64())
        );
        run
    }
}

/// Sends a record, waiting for room in the producer's queue.
pub fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((_, back)) => {
                producer.poll(Duration::from_millis(5));
                record = back;
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// Creates topics (name, partitions) for a baseline.
pub fn create_topics(config: &Config, topics: &[(String, i32)]) {
    let admin: AdminClient<_> = client_config::admin(config).create().expect("an admin client");
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|(name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for result in rt.block_on(admin.create_topics(&new, &AdminOptions::new())).expect("create topics") {
        result.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

/// Runs stages side by side (as iocflow runs its two) and returns them with the wall time of
/// all of them, from cold (clients created inside).
pub fn run_stages(stages: Vec<Stage>) -> (Vec<StageRun>, f64) {
    let started = Instant::now();
    let handles: Vec<_> = stages.into_iter().map(|s| std::thread::spawn(move || s.run())).collect();
    let runs = handles.into_iter().map(|h| h.join().expect("a baseline stage")).collect();
    (runs, started.elapsed().as_secs_f64())
}
