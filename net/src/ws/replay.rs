//! Resuming (docs/websocket.md#resuming): the events after a client's `since` on its topics,
//! read from the durable log up to the published window and from the window after it, with
//! no gap and no duplicate, or the reason they cannot be sent.

use std::sync::Arc;

use components::{durable::EventLog, events::DomainEvent, read_model::ReadModels};

use super::protocol::{self, RequestId, ServerMessage, Topic};

/// Events one `since` replays at most; further back answers `resync_required`.
pub const MAX_REPLAY: usize = 10_000;
/// Events read from the durable log per request.
const REPLAY_PAGE: usize = 1_000;

/// Whether events up to `since`, seen under the World's incarnation `theirs`, are all events
/// of the world as it is now: under the same incarnation, or under the one before it if they
/// came before the recovery that began this one (docs/websocket.md#resuming). A recovery
/// after a crash renumbers the events that were never made durable; further back than one
/// recovery the server cannot tell, and asks for a resync.
pub(super) fn same_history(
    models: &ReadModels,
    since: u64,
    theirs: u64,
) -> Result<(), ReplayError> {
    let world = &models.world;
    if theirs == world.incarnation
        || (theirs + 1 == world.incarnation && since < world.recovered_seq)
    {
        Ok(())
    } else {
        Err(ReplayError::Resync(
            "the world was recovered since: events after its last durable one may never have happened",
        ))
    }
}

/// The events after `since` on `topics`: from the durable log, then from the published
/// window (docs/websocket.md#resuming).
pub(super) async fn find(
    log: &dyn EventLog,
    models: &ReadModels,
    topics: &[Topic],
    since: u64,
) -> Result<Vec<Arc<DomainEvent>>, ReplayError> {
    let window_first = models.events.front().map(|e| e.seq);
    let newest = models.events.last().map(|e| e.seq);
    if newest.is_some_and(|n| since > n) {
        return Err(ReplayError::Resync(
            "since is past the newest event of this world (events seen live were never made durable)",
        ));
    }
    let wanted = |event: &DomainEvent| topics.iter().any(|t| t.carries(event));
    let mut events: Vec<Arc<DomainEvent>> = Vec::new();
    let from_log = window_first.is_none_or(|first| since + 1 < first);
    if from_log {
        let first = log
            .events(since, 1, None)
            .await
            .map_err(|_| ReplayError::Unavailable)?;
        match (first.first(), window_first) {
            (Some(e), _) if e.seq > since + 1 => {
                return Err(ReplayError::Resync(
                    "since is older than the events the log keeps",
                ));
            }
            (None, Some(_)) => return Err(ReplayError::Unavailable),
            _ => {}
        }
        if let Some(first) = window_first {
            // The log must reach the window, or events between them are not readable yet.
            let before = log
                .events(first.saturating_sub(2), 1, None)
                .await
                .map_err(|_| ReplayError::Unavailable)?;
            if first > 1 && before.first().is_none_or(|e| e.seq != first - 1) {
                return Err(ReplayError::Unavailable);
            }
        }
        let end = window_first.unwrap_or(u64::MAX);
        let aggregates: Vec<Option<String>> = if topics.contains(&Topic::World) {
            vec![None]
        } else {
            topics
                .iter()
                .filter(|t| t.has_events())
                .map(Topic::aggregate)
                .collect()
        };
        for aggregate in aggregates {
            let mut after = since;
            loop {
                let page = log
                    .events(after, REPLAY_PAGE, aggregate.as_deref())
                    .await
                    .map_err(|_| ReplayError::Unavailable)?;
                let full = page.len() == REPLAY_PAGE;
                for event in page {
                    after = event.seq;
                    if event.seq >= end {
                        break;
                    }
                    if events.len() >= MAX_REPLAY {
                        return Err(ReplayError::Resync(
                            "more events to replay than one resume sends",
                        ));
                    }
                    events.push(Arc::new(event));
                }
                if !full || after >= end {
                    break;
                }
            }
        }
        events.sort_by_key(|e| e.seq);
        events.dedup_by_key(|e| e.seq);
    }
    for event in models.events_after(since, usize::MAX, None) {
        if wanted(&event) {
            if events.len() >= MAX_REPLAY {
                return Err(ReplayError::Resync(
                    "more events to replay than one resume sends",
                ));
            }
            events.push(event);
        }
    }
    Ok(events)
}

/// Why events could not be replayed.
pub(super) enum ReplayError {
    /// The client must resynchronise from the read models.
    Resync(&'static str),
    /// The durable log cannot be read now, or does not reach the published window yet.
    Unavailable,
}

impl ReplayError {
    pub(super) fn reply(self, id: Option<RequestId>, newest: u64) -> ServerMessage {
        let mut reply = match self {
            ReplayError::Resync(why) => protocol::error(id, "resync_required", why),
            ReplayError::Unavailable => protocol::error(
                id,
                "unavailable",
                "the event log cannot be read now; try again",
            ),
        };
        reply.seq = Some(newest);
        reply
    }
}
