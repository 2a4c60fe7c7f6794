//! Local stand-ins for SNS SMS and the dead-letter destination: JSON lines appended to files.

use std::path::Path;

use async_trait::async_trait;
use flightwatch_domain::ports::{AlertBus, BusError, OutgoingSms, SendError, SmsSender};
use flightwatch_domain::AlertMessage;
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// One line per SMS: `{"to": ..., "body": ..., "alertId": ...}`.
pub struct JsonLinesSender {
    file: Mutex<File>,
    lines: std::sync::atomic::AtomicU64,
}

impl JsonLinesSender {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(File::from_std(open_append(path)?)),
            lines: std::sync::atomic::AtomicU64::new(0),
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
        let mut file = self.file.lock().await;
        file.write_all(line.as_bytes())
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        file.flush()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        // The provider's message id: here, the line's number since the file was opened.
        let line = self
            .lines
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Ok(format!("local-{line}"))
    }
}

/// One line per message of recipients given up on.
pub struct JsonLinesDeadLetters {
    file: Mutex<File>,
}

impl JsonLinesDeadLetters {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(File::from_std(open_append(path)?)),
        })
    }
}

#[async_trait]
impl AlertBus for JsonLinesDeadLetters {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        let mut line = message.to_json();
        line.push('\n');
        let mut file = self.file.lock().await;
        file.write_all(line.as_bytes())
            .await
            .map_err(|e| BusError(Box::new(e)))?;
        file.flush().await.map_err(|e| BusError(Box::new(e)))
    }
}
