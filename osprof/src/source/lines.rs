//! Splitting a log into lines in one reused buffer, with lines longer
//! than [`MAX_LINE_LEN`] reported as oversized and never held.

use std::io::{self, Read};

use super::{LineRef, MAX_LINE_LEN};

/// The line splitter's buffer: lines are handed out straight from it, and
/// its reads (at least `BUF_LEN` long) bypass the `BufReader` of a plain
/// file, so the bytes are copied once, by the kernel.
pub(super) const CHUNK_LEN: usize = 1024 * 1024;

pub(super) fn read_lines(
    reader: impl Read,
    source: usize,
    buf: &mut Vec<u8>,
    f: &mut impl FnMut(LineRef<'_>),
) -> io::Result<()> {
    read_lines_until(reader, source, buf, CHUNK_LEN, &mut |line| {
        f(line);
        false
    })
}

/// Splits `reader` into lines, reading `len` bytes at a time at most;
/// stops early when `f` returns true. A line longer than [`MAX_LINE_LEN`]
/// is reported as oversized wherever it falls in the buffer.
pub(super) fn read_lines_until(
    mut reader: impl Read,
    source: usize,
    buf: &mut Vec<u8>,
    len: usize,
    f: &mut impl FnMut(LineRef<'_>) -> bool,
) -> io::Result<()> {
    buf.clear();
    buf.resize(len.max(2 * MAX_LINE_LEN), 0);
    // Bytes [0, filled) hold data; [0, start) of it is consumed.
    let mut filled = 0;
    let mut line_no = 0u64;
    // Inside a line longer than MAX_LINE_LEN, whose rest is being skipped.
    let mut skipping = false;
    loop {
        if filled == buf.len() {
            // No newline in a full buffer: the line is oversized.
            if !skipping {
                line_no += 1;
                let line = LineRef {
                    source,
                    line_no,
                    bytes: &[],
                    oversized: true,
                };
                if f(line) {
                    return Ok(());
                }
            }
            skipping = true;
            filled = 0;
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let eof = n == 0;
        let scan_from = filled;
        filled += n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[scan_from..filled]) {
            let end = scan_from + nl;
            if skipping {
                skipping = false;
            } else {
                line_no += 1;
                let oversized = end - start > MAX_LINE_LEN;
                let line = LineRef {
                    source,
                    line_no,
                    bytes: if oversized { &[] } else { &buf[start..end] },
                    oversized,
                };
                if f(line) {
                    return Ok(());
                }
            }
            start = end + 1;
        }
        if eof {
            if start < filled && !skipping {
                line_no += 1;
                let oversized = filled - start > MAX_LINE_LEN;
                f(LineRef {
                    source,
                    line_no,
                    bytes: if oversized { &[] } else { &buf[start..filled] },
                    oversized,
                });
            }
            return Ok(());
        }
        if start > 0 {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
        if skipping {
            // Nothing of a skipped line is kept.
            filled = 0;
        } else if filled > MAX_LINE_LEN {
            // Oversized: reported at the top of the loop, then skipped.
            filled = buf.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BUF_LEN;
    use super::*;

    fn lines_of(data: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        read_lines(data, 0, &mut buf, &mut |l: LineRef<'_>| {
            out.push((l.line_no, l.bytes.to_vec(), l.oversized))
        })
        .unwrap();
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        let mut data = Vec::new();
        for i in 0..100_000 {
            data.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        data.extend_from_slice(b"last");
        let lines = lines_of(&data);
        assert_eq!(lines.len(), 100_001);
        assert_eq!(lines[77_777].1, b"line 77777\r");
        assert_eq!(lines[100_000], (100_001, b"last".to_vec(), false));
    }

    #[test]
    fn a_long_line_is_oversized_wherever_it_falls() {
        // Short enough to fit whole in the buffer, longer than the limit.
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_LEN + 1));
        data.extend_from_slice(b"\nb\n");
        data.extend(std::iter::repeat_n(b'y', MAX_LINE_LEN + 1));
        let lines = lines_of(&data);
        assert_eq!(
            lines,
            vec![
                (1, b"a".to_vec(), false),
                (2, Vec::new(), true),
                (3, b"b".to_vec(), false),
                (4, Vec::new(), true)
            ]
        );
        let mut data = vec![b'z'; MAX_LINE_LEN];
        data.push(b'\n');
        assert_eq!(lines_of(&data), vec![(1, vec![b'z'; MAX_LINE_LEN], false)]);
    }

    #[test]
    fn skips_oversized_lines_and_keeps_counting() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * BUF_LEN + 17));
        data.extend_from_slice(b"\nb\n");
        let lines = lines_of(&data);
        assert_eq!(
            lines,
            vec![
                (1, b"a".to_vec(), false),
                (2, Vec::new(), true),
                (3, b"b".to_vec(), false)
            ]
        );
    }
}
