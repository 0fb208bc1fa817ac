//! The archive: every bank file received, byte for byte, addressed by its SHA-256, written
//! before the file is parsed so any stored result can be traced back to the bytes.
//!
//! Layout: `DATA_DIR/archive/ab/abcdef…` (first two hex digits as a fan-out folder).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A file safely in the archive.
#[derive(Debug, Clone)]
pub struct Archived {
    pub sha256: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Copies `src` into the archive under `data_dir`, hashing as it goes, then renames it into
/// place (atomic; an existing copy with the same digest is kept). Blocking: call from
/// `spawn_blocking`.
pub fn archive_file(data_dir: &Path, src: &Path) -> std::io::Result<Archived> {
    let dir = data_dir.join("archive");
    with_temp(&dir, |tmp| {
        let mut input = std::fs::File::open(src).map_err(|e| {
            std::io::Error::new(e.kind(), format!("reading {}: {e}", src.display()))
        })?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            size += n as u64;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((hex::encode(hasher.finalize()), size))
    })
}

/// Archives bytes already in memory (downloads).
pub fn archive_bytes(data_dir: &Path, bytes: &[u8]) -> std::io::Result<Archived> {
    let dir = data_dir.join("archive");
    with_temp(&dir, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok((hex::encode(Sha256::digest(bytes)), bytes.len() as u64))
    })
}

/// Writes a temporary file in `dir` with `write` (which returns the digest and size), then
/// puts it in place. On any failure (a full disk, a read-only one) the temporary file is
/// removed, and the error names the archive folder: nothing half-written stays behind.
fn with_temp(
    dir: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<(String, u64)>,
) -> std::io::Result<Archived> {
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("archiving into {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(named)?;
    let tmp = tempfile_in(dir)?;
    let placed = write(&tmp).and_then(|(sha256, size)| place(dir, tmp.clone(), sha256, size));
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed.map_err(named)
}

fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(dir.join(format!(".incoming-{}-{nanos}", std::process::id())))
}

fn place(dir: &Path, tmp: PathBuf, sha256: String, size: u64) -> std::io::Result<Archived> {
    let fan = dir.join(&sha256[..2]);
    std::fs::create_dir_all(&fan)?;
    let path = fan.join(&sha256);
    if path.exists() {
        std::fs::remove_file(&tmp)?;
    } else {
        std::fs::rename(&tmp, &path)?;
    }
    Ok(Archived { sha256, path, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_by_digest_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.xml");
        std::fs::write(&src, b"hello").unwrap();
        let a = archive_file(dir.path(), &src).unwrap();
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(&a.path).unwrap(), b"hello");
        // the same bytes again: same place, no error, no leftover temp file
        let b = archive_bytes(dir.path(), b"hello").unwrap();
        assert_eq!(a.path, b.path);
        let leftovers = std::fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".incoming")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
