//! The local stand-in for SNS SMS: JSON lines appended to a file.

use std::path::Path;

use async_trait::async_trait;
use flightwatch_domain::ports::{OutgoingSms, SendError, SmsSender};
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

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
    file: Mutex<File>,
}

impl JsonLinesSender {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(File::from_std(open_append(path)?)),
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
        // The provider's message id, unique as SNS's are.
        Ok(format!("local-{}", uuid::Uuid::now_v7()))
    }
}
