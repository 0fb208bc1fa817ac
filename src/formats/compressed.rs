//! Compressed deliveries: a `.gz` file holding one bank file, or a `.zip` holding one or more.
//! Recognized by their magic bytes, not their names. The members are read through the same
//! readers as plain files and form one stream of events (one `File` event, then every
//! member's statements), so a delivery is still ingested in one transaction.
//!
//! Bounded: a gzip stream is decompressed as it is read and may not exceed
//! [`MAX_UNCOMPRESSED`]; a zip member is read into memory, at most [`MAX_MEMBER`] bytes, one at
//! a time; at most [`MAX_MEMBERS`] members.

use super::{open_with, Event, EventReader, Format, ParseError};
use crate::config::TextLayout;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

/// A decompressed gzip stream may not be larger than this (a "zip bomb" is refused).
pub const MAX_UNCOMPRESSED: u64 = 4 << 30;
/// A zip member may not be larger than this, uncompressed.
pub const MAX_MEMBER: u64 = 512 << 20;
/// At most this many members in a zip.
pub const MAX_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zip,
}

/// What the first bytes say.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Compression::Zip
    } else {
        Compression::None
    }
}

/// Opens a delivered file, plain or compressed. `name` names it in errors (a zip member is
/// named `name/member`).
pub fn open_file(
    format: Option<Format>,
    layout: Option<Arc<TextLayout>>,
    path: &Path,
    name: &str,
) -> Result<EventReader<'static>, ParseError> {
    let f = std::fs::File::open(path).map_err(|e| ParseError::io(name, &e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, f);
    let head = reader.fill_buf().map_err(|e| ParseError::io(name, &e))?;
    match detect(head) {
        Compression::None => open_with(format, layout.as_deref(), reader, name),
        Compression::Gzip => {
            let gz = flate2::read::MultiGzDecoder::new(reader);
            let limited = Limit {
                inner: gz,
                left: MAX_UNCOMPRESSED,
            };
            let inner = BufReader::with_capacity(256 * 1024, limited);
            open_with(format, layout.as_deref(), inner, name)
        }
        Compression::Zip => {
            drop(reader);
            let f = std::fs::File::open(path).map_err(|e| ParseError::io(name, &e))?;
            let archive = zip::ZipArchive::new(f).map_err(|e| {
                ParseError::new(
                    name,
                    "zip directory",
                    format!("not a readable zip file: {e}"),
                )
            })?;
            if archive.len() > MAX_MEMBERS {
                return Err(ParseError::new(
                    name,
                    "zip directory",
                    format!(
                        "{} members; at most {MAX_MEMBERS} are accepted",
                        archive.len()
                    ),
                ));
            }
            Ok(Box::new(ZipEvents {
                archive,
                next_member: 0,
                current: None,
                format,
                layout,
                name: name.to_string(),
                seen_file: false,
                members_read: 0,
                done: false,
            }))
        }
    }
}

/// Fails with an I/O error once more than `left` bytes have been read.
struct Limit<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "more than {MAX_UNCOMPRESSED} bytes once decompressed"
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct ZipEvents {
    archive: zip::ZipArchive<std::fs::File>,
    next_member: usize,
    current: Option<EventReader<'static>>,
    format: Option<Format>,
    layout: Option<Arc<TextLayout>>,
    name: String,
    seen_file: bool,
    members_read: usize,
    done: bool,
}

impl ZipEvents {
    /// Opens the next member that is a file (not a folder, not hidden, not macOS metadata).
    fn open_next(&mut self) -> Option<Result<EventReader<'static>, ParseError>> {
        while self.next_member < self.archive.len() {
            let i = self.next_member;
            self.next_member += 1;
            let mut member = match self.archive.by_index(i) {
                Ok(m) => m,
                Err(e) => {
                    return Some(Err(ParseError::new(
                        &self.name,
                        format!("zip member {}", i + 1),
                        format!("cannot read: {e}"),
                    )))
                }
            };
            let member_name = member.name().to_string();
            let base = member_name.rsplit('/').next().unwrap_or("");
            if member.is_dir()
                || base.is_empty()
                || base.starts_with('.')
                || member_name.starts_with("__MACOSX/")
            {
                continue;
            }
            let label = format!("{}/{member_name}", self.name);
            if member.size() > MAX_MEMBER {
                return Some(Err(ParseError::new(
                    &label,
                    "zip member",
                    format!(
                        "{} bytes uncompressed; at most {MAX_MEMBER} are accepted",
                        member.size()
                    ),
                )));
            }
            let mut bytes = Vec::with_capacity(member.size().min(MAX_MEMBER) as usize);
            let read = (&mut member).take(MAX_MEMBER + 1).read_to_end(&mut bytes);
            if let Err(e) = read {
                return Some(Err(ParseError::new(
                    &label,
                    "zip member",
                    format!("cannot decompress: {e}"),
                )));
            }
            if bytes.len() as u64 > MAX_MEMBER {
                return Some(Err(ParseError::new(
                    &label,
                    "zip member",
                    format!("more than {MAX_MEMBER} bytes uncompressed"),
                )));
            }
            self.members_read += 1;
            return Some(open_with(
                self.format,
                self.layout.as_deref(),
                std::io::Cursor::new(bytes),
                &label,
            ));
        }
        None
    }
}

impl Iterator for ZipEvents {
    type Item = Result<Event, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            if let Some(cur) = self.current.as_mut() {
                match cur.next() {
                    // one File event for the whole delivery
                    Some(Ok(Event::File(..))) if self.seen_file => continue,
                    Some(Ok(ev @ Event::File(..))) => {
                        self.seen_file = true;
                        return Some(Ok(ev));
                    }
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Some(ev) => return Some(ev),
                    None => self.current = None,
                }
            }
            match self.open_next() {
                Some(Ok(r)) => self.current = Some(r),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    if self.members_read == 0 {
                        return Some(Err(ParseError::new(
                            &self.name,
                            "zip directory",
                            "the zip holds no file",
                        )));
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel)
    }

    fn collect(r: EventReader<'_>) -> Result<Vec<Event>, ParseError> {
        r.collect()
    }

    fn count(events: &[Event]) -> (usize, usize, usize) {
        let files = events
            .iter()
            .filter(|e| matches!(e, Event::File(..)))
            .count();
        let stmts = events
            .iter()
            .filter(|e| matches!(e, Event::Statement(..)))
            .count();
        let entries = events
            .iter()
            .filter(|e| matches!(e, Event::Entry(..)))
            .count();
        (files, stmts, entries)
    }

    #[test]
    fn a_gzip_file_reads_like_the_file_inside() {
        let plain = fixture("banks/icbc/ICBC_20261112_camt054.xml");
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("ICBC.xml.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        enc.finish().unwrap();
        let a = collect(open_file(None, None, &plain, "plain").unwrap()).unwrap();
        let b = collect(open_file(None, None, &gz, "ICBC.xml.gz").unwrap()).unwrap();
        assert_eq!(a, b);
        assert!(count(&a).2 > 0);
    }

    #[test]
    fn a_zip_of_several_files_is_one_stream_with_one_file_event() {
        let dir = tempfile::tempdir().unwrap();
        let zp = dir.path().join("day.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.add_directory("statements/", opts).unwrap();
        let mut expect = (0, 0);
        for f in [
            "banks/icbc/ICBC_20261112_camt054.xml",
            "banks/cmb/CMB_20261112_camt053.xml",
        ] {
            let bytes = std::fs::read(fixture(f)).unwrap();
            let (_, s, e) =
                count(&collect(open_file(None, None, &fixture(f), f).unwrap()).unwrap());
            expect = (expect.0 + s, expect.1 + e);
            z.start_file(
                format!("statements/{}", f.rsplit('/').next().unwrap()),
                opts,
            )
            .unwrap();
            z.write_all(&bytes).unwrap();
        }
        z.start_file("__MACOSX/._junk", opts).unwrap();
        z.write_all(b"junk").unwrap();
        z.finish().unwrap();
        let events = collect(open_file(None, None, &zp, "day.zip").unwrap()).unwrap();
        assert_eq!(count(&events), (1, expect.0, expect.1));
    }

    #[test]
    fn a_broken_member_names_the_zip_and_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let zp = dir.path().join("bad.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        let text =
            std::fs::read_to_string(fixture("banks/icbc/ICBC_20261112_camt054.xml")).unwrap();
        z.start_file("ok.xml", opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
        z.start_file("cut.xml", opts).unwrap();
        z.write_all(&text.as_bytes()[..text.len() / 2]).unwrap();
        z.finish().unwrap();
        let err = collect(open_file(None, None, &zp, "bad.zip").unwrap()).unwrap_err();
        assert_eq!(err.file, "bad.zip/cut.xml");
        let empty = dir.path().join("empty.zip");
        zip::ZipWriter::new(std::fs::File::create(&empty).unwrap())
            .finish()
            .unwrap();
        let err = collect(open_file(None, None, &empty, "empty.zip").unwrap()).unwrap_err();
        assert!(err.reason.contains("no file"), "{err}");
    }

    #[test]
    fn a_corrupt_gzip_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        std::fs::write(&p, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        let res = open_file(None, None, &p, "x.gz").and_then(collect);
        assert!(res.is_err());
    }
}
