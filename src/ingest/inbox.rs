//! Directory inbox: a folder the bank's SFTP drop fills.
//!
//! A file is taken when it looks complete: not hidden, not a temporary name (`.tmp`, `.part`,
//! `.filepart`), and its size and modification time unchanged since the previous scan (the
//! first scan only notes it), or, with `done_marker = true`, once `FILE.done` exists (the
//! bank writes the marker after the file). After ingest it leaves the inbox (`after_ingest = "move"`, the
//! bytes are in the archive) or stays (`keep`, re-reads are recognized by digest).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Remembers what was seen in an inbox between scans.
#[derive(Default, Debug)]
pub struct InboxState {
    /// path -> (size, mtime) at the previous scan.
    last_seen: HashMap<PathBuf, (u64, Option<SystemTime>)>,
    /// Files already handled in `keep` mode, with the (size, mtime) they had.
    handled: HashMap<PathBuf, (u64, Option<SystemTime>)>,
}

fn is_candidate(name: &str) -> bool {
    !(name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with(".filepart")
        || name.ends_with(".done"))
}

impl InboxState {
    /// Files that are ready to ingest now, in name order (banks number their files).
    /// `settle` false takes every file at once (a manual run over a folder at rest);
    /// `done_marker` takes only files whose `FILE.done` marker exists.
    pub fn ready(
        &mut self,
        dir: &Path,
        settle: bool,
        done_marker: bool,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut now_seen = HashMap::new();
        let mut ready = Vec::new();
        if !dir.exists() {
            return Ok(ready);
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata()?;
            if !meta.is_file() || !is_candidate(&name) {
                continue;
            }
            let sig = (meta.len(), meta.modified().ok());
            let path = entry.path();
            now_seen.insert(path.clone(), sig);
            if self.handled.get(&path) == Some(&sig) {
                continue;
            }
            let complete = if done_marker {
                marker(&path).exists()
            } else {
                !settle || self.last_seen.get(&path) == Some(&sig)
            };
            if complete {
                ready.push(path);
            }
        }
        self.last_seen = now_seen;
        self.handled.retain(|p, _| self.last_seen.contains_key(p));
        ready.sort();
        Ok(ready)
    }

    /// Notes a file handled in `keep` mode so it is not read again until it changes.
    pub fn mark_handled(&mut self, path: &Path) {
        if let Some(sig) = self.last_seen.get(path) {
            self.handled.insert(path.to_path_buf(), *sig);
        }
    }
}

/// The `.done` marker of a file.
pub fn marker(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".done");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_ready_once_it_stops_changing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.xml");
        std::fs::write(&f, b"part").unwrap();
        std::fs::write(dir.path().join("a.xml.part"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let mut st = InboxState::default();
        assert!(
            st.ready(dir.path(), true, false).unwrap().is_empty(),
            "first sight only notes"
        );
        assert_eq!(st.ready(dir.path(), true, false).unwrap(), vec![f.clone()]);
        st.mark_handled(&f);
        assert!(
            st.ready(dir.path(), true, false).unwrap().is_empty(),
            "handled, unchanged"
        );
        assert_eq!(
            st.ready(dir.path(), false, false).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn with_a_done_marker_a_file_waits_for_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.xml");
        std::fs::write(&f, b"whole file").unwrap();
        let mut st = InboxState::default();
        assert!(st.ready(dir.path(), false, true).unwrap().is_empty());
        assert!(st.ready(dir.path(), true, true).unwrap().is_empty());
        std::fs::write(marker(&f), b"").unwrap();
        assert_eq!(st.ready(dir.path(), true, true).unwrap(), vec![f.clone()]);
    }
}
