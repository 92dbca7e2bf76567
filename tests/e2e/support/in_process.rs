//! The HTTP API served in this process from a World's read handle.

/// The HTTP API served in this process from a World's read handle, on a free port, for tests
/// that drive the World with a manual clock.
pub struct InProcess {
    base: String,
    runtime: Option<tokio::runtime::Runtime>,
    _stop_pump: tokio::sync::watch::Sender<bool>,
}

impl InProcess {
    /// Serves `read` with a command bus nobody reads (a World without players).
    pub fn serve(read: components::read_model::ReadHandle) -> InProcess {
        let (tx, _) = crossbeam_channel::bounded(1);
        Self::serve_with_bus(read, tx)
    }

    pub fn serve_with_bus(
        read: components::read_model::ReadHandle,
        bus: crossbeam_channel::Sender<components::command::Inbound>,
    ) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let journal = std::sync::Arc::new(ChannelJournal {
            tx: bus.clone(),
            log_seq: std::sync::atomic::AtomicU64::new(0),
        });
        let events = std::sync::Arc::new(WindowEvents(read.clone()));
        let ws = net::Hub::new(read.clone(), net::WsConfig::default());
        let (stop_pump, stopped) = tokio::sync::watch::channel(false);
        runtime.spawn(ws.clone().pump(stopped));
        let state = net::AppState {
            ws,
            read,
            metrics,
            backends: std::sync::Arc::new(net::Backends::none()),
            accounts: net::Accounts::memory(),
            bus: std::sync::Arc::new(net::CommandBus::new(journal, bus)),
            limits: std::sync::Arc::new(net::RateLimits::default()),
            events,
            persist: std::sync::Arc::new(components::durable::PersistStatus::new("none")),
            read_source: net::ReadSource::World,
            cors: net::CorsOrigins::None,
            sandbox: false,
            admin: None,
        };
        runtime.spawn(async move {
            let _ = axum::serve(listener, net::router(state)).await;
        });
        InProcess {
            base,
            runtime: Some(runtime),
            _stop_pump: stop_pump,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A journal of the in-process tests' own: numbers commands and hands them to the World,
/// without a log (these Worlds are never recovered).
struct ChannelJournal {
    tx: crossbeam_channel::Sender<components::command::Inbound>,
    log_seq: std::sync::atomic::AtomicU64,
}

impl components::durable::Journal for ChannelJournal {
    fn append(
        &self,
        mut command: components::command::Command,
    ) -> components::durable::JournalFuture<'_> {
        command.log_seq = self
            .log_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if command.id.is_empty() {
            command.id = components::command::server_command_id(command.log_seq);
        }
        let sent = self
            .tx
            .try_send(components::command::Inbound::Command(command.clone()))
            .map(|()| components::durable::Appended::New(command))
            .map_err(|e| components::durable::JournalError::Unavailable(e.to_string()));
        Box::pin(async move { sent })
    }
}

/// The in-process tests' event log: the published window.
struct WindowEvents(components::read_model::ReadHandle);

impl components::durable::EventLog for WindowEvents {
    fn events<'a>(
        &'a self,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> components::durable::DurableFuture<'a, Vec<components::events::DomainEvent>> {
        let events = self.0.load_full().map_or_else(Vec::new, |m| {
            m.events_after(after, limit, aggregate)
                .into_iter()
                .map(|e| (*e).clone())
                .collect()
        });
        Box::pin(async move { Ok(events) })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
