//! The local stand-in for SNS SMS: JSON lines appended to a file.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use flightwatch_domain::ports::{OutgoingSms, SendError, SmsSender};

fn create_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

pub(crate) fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    create_dir(path)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

pub(crate) fn open_truncate(path: &Path) -> std::io::Result<std::fs::File> {
    create_dir(path)?;
    std::fs::File::create(path)
}

/// One line per SMS: `{"to": ..., "body": ..., "alertId": ...}`.
pub struct JsonLinesSender {
    // A plain file and lock: one small append is a few microseconds, where `tokio::fs` would
    // hand each line to the blocking pool and back (two thread switches per SMS, which on the
    // local stack slowed the requests running beside the sms handler).
    file: Mutex<std::fs::File>,
}

impl JsonLinesSender {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(open_append(path)?),
        })
    }
}

#[async_trait]
impl SmsSender for JsonLinesSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        let mut line = serde_json::json!({
            "to": sms.to.expose(),
            "body": sms.body,
            "alertId": sms.alert_id.to_string(),
        })
        .to_string();
        line.push('\n');
        // One write per line under the lock: concurrent sends never interleave.
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write_all(line.as_bytes())
            .map_err(|e| SendError::Transient(e.to_string()))?;
        // The provider's message id, unique as SNS's are.
        Ok(format!("local-{}", uuid::Uuid::now_v7()))
    }
}
