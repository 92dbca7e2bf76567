//! The clients of `bench ws`, in a process of their own so that the server's memory is its
//! own: `tianxia bench ws-clients` (hidden; `bench ws` starts it). It opens `--clients`
//! WebSocket connections, subscribes each to `--topics`, and talks to the bench over its
//! standard streams, one JSON line each way:
//!
//! 1. it prints `{"connected":N,"failed":F}` once every connection has its `subscribed` reply
//!    (or failed);
//! 2. it reads `stop`: the run ends, the connections close;
//! 3. it reads `{"published":[[first,last,at_us],...]}`, when the World made each range of
//!    events visible, and prints its [`ClientsReport`]: the messages received between 1 and
//!    2, and the latency of each event from its publication to its receipt.
//!
//! Should the bench end first (its end of the pipe closes), the clients close and the process
//! ends without a report.
//!
//! A client reads each message only as far as it must: the topic, then whether an event
//! (and its `seq`) or a frame follows.

use std::{
    collections::BTreeMap,
    io::{BufRead, Write},
    sync::Arc,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::world::{Published, unix_micros};
use crate::{Failure, backends::runtime, bench::Samples, connections, priority};

/// The clients' nice value: the lowest priority.
const CLIENTS_NICE: i32 = 19;
/// Connections being opened at once.
const CONNECTING: usize = 256;
/// How long one connection may take to open and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `bench ws-clients`.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientsOptions {
    /// The server's WebSocket URL.
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub clients: usize,
    /// Topics each client subscribes to, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
}

/// The first line: how many clients are subscribed.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Ready {
    pub(super) connected: usize,
    pub(super) failed: usize,
}

/// The line the bench sends to end the run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Stop {
    pub(super) published: Vec<Published>,
}

/// The last line: what the clients received between ready and stop.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct ClientsReport {
    pub(super) seconds: f64,
    pub(super) events: u64,
    pub(super) frames: u64,
    /// State pushes and anything else.
    pub(super) other: u64,
    /// Events whose publication the bench did not note (published before it looked, or
    /// after it stopped looking).
    pub(super) unmatched: u64,
    /// Events whose latency was measured.
    pub(super) latency_samples: u64,
    pub(super) latency_p50_ms: f64,
    pub(super) latency_p99_ms: f64,
    pub(super) latency_max_ms: f64,
    /// Connections the server closed, by close code.
    pub(super) closed: BTreeMap<u16, u64>,
    /// Connections that ended without a close frame.
    pub(super) dropped: u64,
}

/// What one client received.
#[derive(Default)]
struct Tally {
    /// (seq, µs received) of each event.
    events: Vec<(u64, u64)>,
    /// µs received of each frame.
    frames: Vec<u64>,
    other: Vec<u64>,
    closed: Option<u16>,
    dropped: bool,
}

impl Tally {
    fn take(&mut self, text: &str) {
        let now = unix_micros();
        // `{"topic":"NAME","event":{"seq":N,...}}`, `{"topic":"NAME","frame":...}`, ...
        let rest = text
            .strip_prefix(r#"{"topic":""#)
            .and_then(|rest| rest.find('"').map(|end| &rest[end + 1..]));
        match rest {
            Some(rest) if rest.starts_with(r#","event":{"seq":"#) => {
                let digits = &rest[r#","event":{"seq":"#.len()..];
                let end = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                match digits[..end].parse() {
                    Ok(seq) => self.events.push((seq, now)),
                    Err(_) => self.other.push(now),
                }
            }
            Some(rest) if rest.starts_with(r#","frame":"#) => self.frames.push(now),
            _ => self.other.push(now),
        }
    }
}

/// Runs the clients (`tianxia bench ws-clients`).
pub fn clients(options: &ClientsOptions) -> Result<(), Failure> {
    if options.clients == 0 || options.topics.is_empty() {
        return Err(Failure::Usage(
            "--clients must be positive and --topics name at least one".into(),
        ));
    }
    connections::raise_file_limit(options.clients + 64);
    // The clients stand for machines elsewhere: on a shared machine they take the CPU the
    // server leaves rather than compete with it.
    if !priority::lower_this_thread(CLIENTS_NICE) {
        eprintln!("cannot lower the clients' priority; they compete with the server for the CPU");
    }
    let runtime = runtime(2)?;
    runtime.block_on(run(options)).map_err(Failure::Runtime)
}

async fn run(options: &ClientsOptions) -> anyhow::Result<()> {
    let subscribe = Arc::new(
        serde_json::json!({"op": "subscribe", "id": 1, "topics": options.topics}).to_string(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let tasks: Vec<_> = (0..options.clients)
        .map(|_| {
            tokio::spawn(client(
                options.url.clone(),
                subscribe.clone(),
                gate.clone(),
                ready_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let mut ready = Ready {
        connected: 0,
        failed: 0,
    };
    while ready.connected + ready.failed < options.clients {
        match ready_rx.recv().await {
            Some(true) => ready.connected += 1,
            Some(false) => ready.failed += 1,
            None => break,
        }
    }
    let ready_at = unix_micros();
    say(&ready)?;

    let stop = read_line().await?;
    let stop_at = unix_micros();
    let _ = stop_tx.send(true);
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await?);
    }
    if stop.is_none() {
        // The bench is gone: nobody to report to.
        return Ok(());
    }
    let Some(line) = read_line().await? else {
        return Ok(());
    };
    let stop: Stop = serde_json::from_str(&line)
        .map_err(|e| anyhow::anyhow!("the bench sent no publications ({e}): {line}"))?;
    say(&report(&tallies, stop.published, ready_at, stop_at))
}

/// The next line from the bench; `None` once it has closed its end.
async fn read_line() -> anyhow::Result<Option<String>> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map(|read| (read > 0).then_some(line))
    })
    .await??;
    Ok(line)
}

fn say(line: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(line)?)?;
    out.flush()?;
    Ok(())
}

fn report(tallies: &[Tally], mut published: Vec<Published>, from: u64, to: u64) -> ClientsReport {
    published.sort_unstable();
    let published_at = |seq: u64| {
        let i = published.partition_point(|&(first, _, _)| first <= seq);
        i.checked_sub(1)
            .map(|i| published[i])
            .filter(|&(_, last, _)| seq <= last)
            .map(|(_, _, at)| at)
    };
    let within = |at: u64| (from..=to).contains(&at);
    let mut report = ClientsReport {
        seconds: (to.saturating_sub(from)) as f64 / 1e6,
        ..ClientsReport::default()
    };
    let mut latencies = Vec::new();
    for tally in tallies {
        for &(seq, at) in tally.events.iter().filter(|(_, at)| within(*at)) {
            report.events += 1;
            match published_at(seq) {
                Some(published) => latencies.push(at.saturating_sub(published) as f64 / 1e3),
                None => report.unmatched += 1,
            }
        }
        report.frames += tally.frames.iter().filter(|at| within(**at)).count() as u64;
        report.other += tally.other.iter().filter(|at| within(**at)).count() as u64;
        if let Some(code) = tally.closed {
            *report.closed.entry(code).or_default() += 1;
        }
        report.dropped += u64::from(tally.dropped);
    }
    report.latency_samples = latencies.len() as u64;
    let latencies = Samples::new(latencies);
    report.latency_p50_ms = latencies.p50();
    report.latency_p99_ms = latencies.p99();
    report.latency_max_ms = latencies.max();
    report
}

/// One client: connects, subscribes, tells `ready`, then tallies until `stop`.
async fn client(
    url: String,
    subscribe: Arc<String>,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::default();
    let opened = {
        let _permit = gate.acquire().await;
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.ok()?;
            ws.send(Message::text(subscribe.as_str())).await.ok()?;
            loop {
                match ws.next().await? {
                    Ok(Message::Text(text)) if text.contains(r#""op":"subscribed""#) => {
                        return Some(ws);
                    }
                    Ok(Message::Text(text)) if text.contains(r#""op":"error""#) => return None,
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    };
    let Some(mut ws) = opened else {
        let _ = ready.send(false);
        return tally;
    };
    let _ = ready.send(true);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => tally.take(&text),
                Some(Ok(Message::Close(frame))) => {
                    tally.closed = Some(frame.map_or(1005, |f| f.code.into()));
                    return tally;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    tally.dropped = true;
                    return tally;
                }
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    tally
}
