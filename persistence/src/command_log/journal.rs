//! The embedded journal (docs/storage.md#the-command-log): `POST /api/commands` hands its
//! command here; one thread appends whatever has arrived to the command log in one synced
//! transaction (group commit), gives each command the next log sequence (and `srv-N` for
//! those without an id), sends them to the World in that order and only then answers. The
//! World therefore receives commands in log-sequence order, and a 202 always means the
//! command is on disk.

use std::{sync::Arc, thread::JoinHandle};

use components::{
    command::{Command, Inbound, server_command_id},
    durable::{Appended, Journal, JournalError, JournalFuture},
};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::oneshot;
use tracing::error;

use super::CommandLog;

/// Most commands appended in one transaction.
const GROUP: usize = 4_096;

struct Request {
    command: Command,
    reply: oneshot::Sender<Result<Command, String>>,
}

pub struct EmbeddedJournal {
    tx: Sender<Request>,
}

impl Journal for EmbeddedJournal {
    fn append(&self, command: Command) -> JournalFuture<'_> {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.try_send(Request { command, reply });
        Box::pin(async move {
            let unavailable = |m: &str| JournalError::Unavailable(m.into());
            match sent {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    return Err(unavailable("too many commands are waiting to be logged"));
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(unavailable("the server is stopping"));
                }
            }
            match answer.await {
                Ok(Ok(command)) => Ok(Appended::New(command)),
                Ok(Err(e)) => Err(JournalError::Unavailable(e)),
                Err(_) => Err(unavailable("the command log stopped")),
            }
        })
    }
}

/// The journal's thread; stops when every [`EmbeddedJournal`] is dropped.
pub struct JournalThread {
    handle: JoinHandle<()>,
}

impl JournalThread {
    /// Starts the journal over `log`: sequences continue after `max(log, floor)`, and
    /// logged commands go to `world`. At most `capacity` commands wait to be logged.
    pub fn start(
        log: Arc<CommandLog>,
        floor: u64,
        world: Sender<Inbound>,
        capacity: usize,
    ) -> std::io::Result<(EmbeddedJournal, JournalThread)> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(&log, floor, &rx, &world))?;
        Ok((EmbeddedJournal { tx }, JournalThread { handle }))
    }

    /// Waits for the thread to finish what it took (after every journal is dropped).
    pub fn join(self) {
        if self.handle.join().is_err() {
            error!("the journal thread panicked");
        }
    }
}

fn name(command: &mut Command) {
    if command.id.is_empty() {
        command.id = server_command_id(command.log_seq);
    }
}

fn run(log: &CommandLog, floor: u64, rx: &Receiver<Request>, world: &Sender<Inbound>) {
    while let Ok(first) = rx.recv() {
        let mut requests = vec![first];
        while requests.len() < GROUP {
            match rx.try_recv() {
                Ok(request) => requests.push(request),
                Err(_) => break,
            }
        }
        let (commands, replies): (Vec<Command>, Vec<_>) =
            requests.into_iter().map(|r| (r.command, r.reply)).unzip();
        match log.append(commands, floor, name) {
            Ok(logged) => {
                for (command, reply) in logged.into_iter().zip(replies) {
                    // Durable now: if the World has stopped, the next start replays it.
                    let _ = world.send(Inbound::Command(command.clone()));
                    let _ = reply.send(Ok(command));
                }
            }
            Err(e) => {
                error!(error = %e, "commands could not be logged; they were refused");
                for reply in replies {
                    let _ = reply.send(Err("the command log cannot be written".into()));
                }
            }
        }
    }
}
