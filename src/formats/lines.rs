//! A `BufRead` wrapper that counts the lines consumed, so streaming parsers can say
//! "line N" in their errors without holding the file.

use std::io::{BufRead, Read, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts newlines in the bytes the parser has consumed. `line()` is 1-based. The counter is
/// shared so the parser can read it while the reader is owned by the XML tokenizer.
pub struct LineCountingReader<R> {
    inner: R,
    newlines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

/// A handle to read the position of a [`LineCountingReader`].
#[derive(Clone, Default)]
pub struct Position {
    newlines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Position {
    pub fn line(&self) -> u64 {
        self.newlines.load(Ordering::Relaxed) + 1
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl<R: BufRead> LineCountingReader<R> {
    pub fn new(inner: R) -> (Self, Position) {
        let pos = Position::default();
        (
            LineCountingReader {
                inner,
                newlines: pos.newlines.clone(),
                bytes: pos.bytes.clone(),
            },
            pos,
        )
    }
}

impl<R: BufRead> Read for LineCountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read(buf)?;
        let nl = memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        self.newlines.fetch_add(nl, Ordering::Relaxed);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCountingReader<R> {
    fn fill_buf(&mut self) -> Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let amt = amt.min(buf.len());
            let nl = memchr::memchr_iter(b'\n', &buf[..amt]).count() as u64;
            self.newlines.fetch_add(nl, Ordering::Relaxed);
            self.bytes.fetch_add(amt as u64, Ordering::Relaxed);
        }
        self.inner.consume(amt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_as_bytes_are_consumed() {
        let data = b"a\nb\nc\n";
        let (mut r, pos) = LineCountingReader::new(&data[..]);
        assert_eq!(pos.line(), 1);
        let mut s = String::new();
        r.read_line(&mut s).unwrap();
        assert_eq!(pos.line(), 2);
        r.read_line(&mut s).unwrap();
        r.read_line(&mut s).unwrap();
        assert_eq!(pos.line(), 4);
        assert_eq!(pos.bytes(), 6);
    }
}
