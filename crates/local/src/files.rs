//! The local stand-in for SNS SMS: JSON lines appended to a file; and the line files the local
//! stack appends to (the SMS outbox, the bus log, the sms handler's claims).

use std::io::{Read, Seek, SeekFrom, Write};
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

/// Opens `path` to append lines to, ending first a last line a kill cut short, so that the next
/// line does not run into it.
pub(crate) fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    create_dir(path)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    if file.metadata()?.len() > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last != *b"\n" {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

pub(crate) fn open_truncate(path: &Path) -> std::io::Result<std::fs::File> {
    create_dir(path)?;
    std::fs::File::create(path)
}

/// Appends `line` and its newline in one `write`. `writeln!` on a file writes them apart: two
/// system calls per line, and a kill between them leaves a line without its end, which the next
/// line appended after a restart would then run into (both unreadable).
pub(crate) fn write_line(file: &mut std::fs::File, mut line: String) -> std::io::Result<()> {
    line.push('\n');
    file.write_all(line.as_bytes())
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
        let line = serde_json::json!({
            "to": sms.to.expose(),
            "body": sms.body,
            "alertId": sms.alert_id.to_string(),
        })
        .to_string();
        // One write per line under the lock: concurrent sends never interleave.
        write_line(
            &mut self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            line,
        )
        .map_err(|e| SendError::Transient(e.to_string()))?;
        // The provider's message id, unique as SNS's are.
        Ok(format!("local-{}", uuid::Uuid::now_v7()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line a kill cut short stays a line of its own: the next one starts on a line of its own.
    #[test]
    fn a_line_cut_short_is_ended_before_the_next_is_appended() {
        let dir = std::env::temp_dir().join(format!("flightwatch-lines-{}", std::process::id()));
        let path = dir.join("claims.txt");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(&path, "first\ncut sh").expect("writes");
        write_line(&mut open_append(&path).expect("opens"), "next".into()).expect("appends");
        write_line(&mut open_append(&path).expect("opens"), "last".into()).expect("appends");
        let text = std::fs::read_to_string(&path).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, "first\ncut sh\nnext\nlast\n");
    }
}
