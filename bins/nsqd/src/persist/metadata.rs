//! `nsqd.dat`: which topics and channels exist and which are paused, so they come back after a restart (Go
//! `NSQD.LoadMetadata` / `PersistMetadata`).
//!
//! The file is JSON in Go's shape and key order (`{"topics":[{"name","paused","channels":[{"name","paused"}]}],
//! "version"}`, with `"channels":null` for a topic without channels), so Go nsqd and this one can take over each
//! other's data directory. Ephemeral topics and channels are never written. Writes go to a temporary file that
//! is fsynced and renamed over the old one, so a crash leaves either the old or the new file, never half of one.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use nsq_core::Topics;
use serde::{Deserialize, Serialize};

use crate::NSQ_VERSION;

/// The file name inside `--data-path`.
pub const METADATA_FILE: &str = "nsqd.dat";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Every non-ephemeral topic.
    pub topics: Vec<TopicMetadata>,
    /// The version of the nsqd that wrote the file.
    pub version: String,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// The topic name.
    pub name: String,
    /// Whether fan-out is paused.
    pub paused: bool,
    /// Its non-ephemeral channels; Go writes `null` when there are none.
    pub channels: Option<Vec<ChannelMetadata>>,
}

/// One channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMetadata {
    /// The channel name.
    pub name: String,
    /// Whether delivery is paused.
    pub paused: bool,
}

impl Metadata {
    /// What `topics` holds now.
    pub fn snapshot(topics: &Topics) -> Self {
        let topics = topics
            .topics()
            .into_iter()
            .filter(|t| !t.is_ephemeral())
            .map(|t| {
                let channels: Vec<_> = t
                    .channels()
                    .into_iter()
                    .filter(|c| !c.is_ephemeral())
                    .map(|c| ChannelMetadata {
                        name: c.name().to_owned(),
                        paused: c.is_paused(),
                    })
                    .collect();
                TopicMetadata {
                    name: t.name().to_owned(),
                    paused: t.is_paused(),
                    channels: (!channels.is_empty()).then_some(channels),
                }
            })
            .collect();
        Self {
            topics,
            version: NSQ_VERSION.to_owned(),
        }
    }

    /// Reads `<data_path>/nsqd.dat`; `Ok(None)` when there is none yet (a fresh directory).
    pub fn load(data_path: &Path) -> io::Result<Option<Self>> {
        let path = data_path.join(METADATA_FILE);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&data).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("failed to parse metadata in {} - {e}", path.display()),
            )
        })
    }

    /// Writes `<data_path>/nsqd.dat` atomically: temporary file, fsync, rename. Blocking; run it off the async
    /// workers.
    pub fn write(&self, data_path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        let path = data_path.join(METADATA_FILE);
        let tmp = temp_name(&path);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// `nsqd.dat.<random>.tmp`, as Go names it.
fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", rand::random::<u32>()));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_nsqd_dat_round_trips_byte_for_byte() {
        let golden =
            fs::read_to_string("../../../shared/golden/datadir/nsqd.dat").unwrap_or_else(|_| {
                fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../../shared/golden/datadir/nsqd.dat"
                ))
                .unwrap()
            });
        let parsed: Metadata = serde_json::from_str(&golden).unwrap();
        assert_eq!(parsed.topics.len(), 3);
        assert_eq!(parsed.topics[1].channels, None);
        assert!(parsed.topics[2].channels.as_ref().unwrap()[1].paused);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), golden);
    }

    #[test]
    fn write_then_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Metadata::load(dir.path()).unwrap(), None);
        let md = Metadata {
            topics: vec![TopicMetadata {
                name: "t".into(),
                paused: true,
                channels: Some(vec![ChannelMetadata {
                    name: "c".into(),
                    paused: false,
                }]),
            }],
            version: NSQ_VERSION.into(),
        };
        md.write(dir.path()).unwrap();
        assert_eq!(Metadata::load(dir.path()).unwrap(), Some(md));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![METADATA_FILE], "no temporary file is left");
    }

    #[test]
    fn bad_json_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(METADATA_FILE), b"{not json").unwrap();
        let err = Metadata::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("nsqd.dat"), "{err}");
    }
}
