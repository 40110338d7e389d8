//! Reads the files of one diskqueue straight from the format description (go-diskqueue v1.1.0), without
//! nsqd's own code, so a test can judge what nsqd wrote: `<name>.diskqueue.%06d.dat` files of
//! `[int32 BE length][payload]` records and the `<name>.diskqueue.meta.dat` text
//! `depth\nreadFileNum,readPos\nwriteFileNum,writePos\n`.

use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use crate::wire::Message;

/// The metadata file's five numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Records written and not yet read.
    pub depth: i64,
    /// The file being read.
    pub read_file_num: i64,
    /// The offset of the next record to read in it.
    pub read_pos: i64,
    /// The file being written.
    pub write_file_num: i64,
    /// The offset of the next record to write in it.
    pub write_pos: i64,
}

/// Parses the metadata text exactly: three lines, each ending in `\n`.
pub fn parse_meta(text: &str) -> Result<Meta> {
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    ensure!(
        lines.len() == 3 && text.ends_with('\n'),
        "meta text {text:?} is not three lines"
    );
    let pair = |line: &str| -> Result<(i64, i64)> {
        let (a, b) = line.split_once(',').context("no comma")?;
        Ok((a.parse()?, b.parse()?))
    };
    let (read_file_num, read_pos) = pair(lines[1])?;
    let (write_file_num, write_pos) = pair(lines[2])?;
    Ok(Meta {
        depth: lines[0].parse()?,
        read_file_num,
        read_pos,
        write_file_num,
        write_pos,
    })
}

/// Reads `<dir>/<name>.diskqueue.meta.dat`.
pub fn read_meta(dir: &Path, name: &str) -> Result<Meta> {
    let path = dir.join(format!("{name}.diskqueue.meta.dat"));
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_meta(&text)
}

/// The data file `num` of queue `name`.
pub fn data_file(dir: &Path, name: &str, num: i64) -> std::path::PathBuf {
    dir.join(format!("{name}.diskqueue.{num:06}.dat"))
}

/// The records of one data file, each with its offset, failing on a partial record.
pub fn read_records(path: &Path) -> Result<Vec<(u64, Vec<u8>)>> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        ensure!(pos + 4 <= data.len(), "partial length at {pos}");
        let len = i32::from_be_bytes(data[pos..pos + 4].try_into()?);
        ensure!(len >= 0, "negative length at {pos}");
        let len = len as usize;
        ensure!(pos + 4 + len <= data.len(), "partial record at {pos}");
        out.push((pos as u64, data[pos + 4..pos + 4 + len].to_vec()));
        pos += 4 + len;
    }
    Ok(out)
}

/// Every unread record of queue `name` from the meta's read position to its write position, decoded as
/// messages (the on-disk payload has the same layout as a message frame's data).
pub fn unread_messages(dir: &Path, name: &str) -> Result<Vec<Message>> {
    let meta = read_meta(dir, name)?;
    let mut out = Vec::new();
    for num in meta.read_file_num..=meta.write_file_num {
        let path = data_file(dir, name, num);
        if !path.exists() {
            if num == meta.write_file_num && meta.write_pos == 0 {
                continue;
            }
            bail!("{} is missing", path.display());
        }
        for (offset, payload) in read_records(&path)? {
            if num == meta.read_file_num && (offset as i64) < meta.read_pos {
                continue;
            }
            if num == meta.write_file_num && offset as i64 >= meta.write_pos {
                break;
            }
            out.push(Message::parse(&payload).context("record shorter than a message header")?);
        }
    }
    Ok(out)
}
