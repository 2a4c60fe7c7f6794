//! The alerts bus in-process: what SNS and Lambda's async invocation do in AWS, minus the
//! network. A publish returns once the message is on disk in the bus log, as SNS accepts a
//! message once it has stored it; each message is then handed to the sms handler on its own task,
//! in an SNS event envelope, and marked done when the handler returns. A stack killed mid-delivery
//! hands every message not marked done to the handler again when it starts (as Lambda retries an
//! invocation that crashed), and the handler's claims, on disk too, keep anyone from being texted
//! twice.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use flightwatch_delivery::Texting;
use flightwatch_domain::ports::{AlertBus, BusError, Claim, SmsClaims};
use flightwatch_domain::AlertMessage;
use serde::{Deserialize, Serialize};

use crate::LOCAL_TOPIC_ARN;

/// One line of the bus log.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Entry {
    Message(AlertMessage),
    Done(uuid::Uuid),
}

pub struct InProcessBus {
    // Set once after construction, when the sms handler's parts are built.
    subscriber: OnceLock<Texting>,
    log: Mutex<std::fs::File>,
    /// Messages found undelivered in the log at start.
    undelivered: Mutex<Vec<AlertMessage>>,
    invocations: Invocations,
}

/// Where the sms handler runs: a thread and runtime of its own, as the sms function is a
/// process of its own in AWS. Its work per message (a claim, an SMS and a record per recipient,
/// then the report) then never queues on the thread answering requests, and yields the CPU to
/// it. Stops, dropping what it was running, when dropped (the bus log hands that out again at
/// the next start).
struct Invocations {
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Invocations {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sms-handler".into())
            .spawn(move || {
                // Behind the requests for the CPU too (nice 19 on Linux): on a small machine the
                // handler's turn otherwise comes between a response and the client reading it.
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!(error = %e, "the sms handler runs at normal priority");
                }
                // Returns once `stop` is dropped; the runtime is dropped here, outside any task.
                drop(runtime.block_on(stopped))
            })?;
        Ok(Self {
            runtime: handle,
            _stop: stop,
        })
    }
}

impl InProcessBus {
    /// Opens the bus log, keeping only the messages not yet delivered (the log is rewritten
    /// with them, so it does not grow without end).
    pub fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        let mut pending: Vec<AlertMessage> = Vec::new();
        let mut done = HashSet::new();
        if let Ok(file) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(file).lines() {
                // A line cut short by a kill is a publish that never returned: not accepted.
                match serde_json::from_str(&line?) {
                    Ok(Entry::Message(m)) => pending.push(m),
                    Ok(Entry::Done(id)) => {
                        done.insert(id);
                    }
                    Err(_) => {}
                }
            }
        }
        pending.retain(|m| !done.contains(&m.handout));
        let mut file = crate::files::open_truncate(path)?;
        for m in &pending {
            crate::files::write_line(&mut file, line(&Entry::Message(m.clone())))?;
        }
        file.flush()?;
        let file = crate::files::open_append(path)?;
        Ok(Arc::new(Self {
            subscriber: OnceLock::new(),
            log: Mutex::new(file),
            undelivered: Mutex::new(pending),
            invocations: Invocations::start()?,
        }))
    }

    /// Subscribes the sms handler, and hands it what the log held undelivered.
    pub fn subscribe(self: &Arc<Self>, texting: Texting) {
        if self.subscriber.set(texting).is_err() {
            tracing::warn!("the local bus already has its subscriber");
            return;
        }
        let undelivered = std::mem::take(&mut *self.lock_undelivered());
        if !undelivered.is_empty() {
            tracing::info!(
                messages = undelivered.len(),
                "delivering again what the bus had not finished delivering"
            );
        }
        for m in undelivered {
            self.deliver(m);
        }
    }

    fn lock_undelivered(&self) -> std::sync::MutexGuard<'_, Vec<AlertMessage>> {
        self.undelivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, entry: &Entry) -> std::io::Result<()> {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::files::write_line(&mut log, line(entry))
    }

    fn deliver(self: &Arc<Self>, message: AlertMessage) {
        let Some(texting) = self.subscriber.get().cloned() else {
            return;
        };
        let bus = self.clone();
        self.invocations.runtime.spawn(async move {
            let handout = message.handout;
            match flightwatch_delivery::sns_event(LOCAL_TOPIC_ARN, &[message]) {
                Ok(event) => {
                    if let Err(e) = flightwatch_delivery::handle(&texting, event).await {
                        tracing::error!(error = %e, "sms invocation failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "not an SNS event"),
            }
            if let Err(e) = bus.append(&Entry::Done(handout)) {
                tracing::error!(error = %e, "the bus log could not be written");
            }
        });
    }
}

fn line(entry: &Entry) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(entry).unwrap_or_default()
}

/// A publish on the bus; the handler's task is spawned, as SNS invokes Lambda asynchronously.
pub struct Publisher(pub Arc<InProcessBus>);

#[async_trait]
impl AlertBus for Publisher {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        if self.0.subscriber.get().is_none() {
            return Err(BusError("the sms function is not subscribed".into()));
        }
        self.0
            .append(&Entry::Message(message.clone()))
            .map_err(|e| BusError(Box::new(e)))?;
        self.0.deliver(message.clone());
        Ok(())
    }
}

/// Claims by hand-out and place in the message, with the message id once sent.
type Claims = HashMap<(uuid::Uuid, usize), Option<String>>;

/// The sms handler's claims in a file, so that they outlive the process as S3's do: a line
/// `<handout> <index>` per recipient claimed, and `<handout> <index> <message id>` once sent.
pub struct FileClaims {
    file: Mutex<(std::fs::File, Claims)>,
}

impl FileClaims {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut taken = Claims::new();
        if let Ok(file) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                let mut words = line.split(' ');
                let (Some(Ok(id)), Some(Ok(index))) = (
                    words.next().map(str::parse),
                    words.next().map(str::parse::<usize>),
                ) else {
                    continue;
                };
                let sent = words.next().map(str::to_owned);
                let entry = taken.entry((id, index)).or_default();
                if sent.is_some() {
                    *entry = sent;
                }
            }
        }
        Ok(Self {
            file: Mutex::new((crate::files::open_append(path)?, taken)),
        })
    }

    fn write(&self, line: String, update: impl FnOnce(&mut Claims)) -> Result<(), BusError> {
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (file, taken) = &mut *guard;
        update(taken);
        crate::files::write_line(file, line).map_err(|e| BusError(Box::new(e)))
    }
}

#[async_trait]
impl SmsClaims for FileClaims {
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<Claim, BusError> {
        let key = (message.handout, index);
        {
            let guard = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(sent) = guard.1.get(&key) {
                return Ok(Claim::Taken(sent.clone()));
            }
        }
        // On disk before the SMS goes: a kill after this line leaves the recipient claimed.
        self.write(format!("{} {index}", message.handout), |taken| {
            taken.insert(key, None);
        })?;
        Ok(Claim::New)
    }

    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError> {
        let line = format!("{} {index} {message_id}", message.handout);
        self.write(line, |taken| {
            taken.insert((message.handout, index), Some(message_id.to_owned()));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The handler's thread runs what it is given, at the lowest priority where the OS allows a
    /// thread its own (Linux), and ends with what it was running once dropped.
    #[test]
    fn the_sms_handler_runs_on_its_own_low_priority_thread_until_dropped() {
        let ours = nice();
        let invocations = Invocations::start().expect("starts");
        let (report, reported) = mpsc::channel();
        let (alive, gone) = mpsc::channel::<()>();
        invocations.runtime.spawn(async move {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = report.send((name, nice()));
            let _alive = alive;
            std::future::pending::<()>().await
        });
        let (name, its) = reported
            .recv_timeout(Duration::from_secs(5))
            .expect("the task ran");
        assert_eq!(name.as_deref(), Some("sms-handler"));
        if cfg!(target_os = "linux") {
            assert_eq!(its, Some(19), "the handler's thread is niced");
            assert_eq!(nice(), ours, "and only that thread");
        }
        drop(invocations);
        assert_eq!(
            gone.recv_timeout(Duration::from_secs(5)),
            Err(mpsc::RecvTimeoutError::Disconnected),
            "the runtime ended and dropped its task"
        );
    }

    /// The calling thread's niceness (Linux: field 19 of `/proc/thread-self/stat`, counted after
    /// the command name, which may hold spaces).
    fn nice() -> Option<i32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after_name = &stat[stat.rfind(')')? + 2..];
        after_name.split(' ').nth(16)?.parse().ok()
    }
}
