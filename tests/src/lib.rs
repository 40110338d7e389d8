//! Support code for the cross-process tests that replay the golden captures of Go NSQ against our
//! `nsqd` binary.
//!
//! The golden data (`shared/golden/`, see its README) records real Go daemons byte for byte. The
//! tests in `tests/` start our binary as a separate process and talk to it over real sockets, so
//! they judge exactly what a Go client would see. This crate provides the pieces they share:
//!
//! - [`daemon`]: start a daemon on free ports with a temporary directory, kill it on drop; nsqd here,
//!   nsqlookupd (and a V1 client) in [`lookupd`];
//! - [`wire`]: a small independent V2 frame reader and command encoder;
//! - [`client`]: bulk publish and drain helpers built on it;
//! - [`diskfiles`]: an independent reader of the diskqueue files nsqd writes;
//! - [`http`]: a raw HTTP/1.1 client that keeps header order and case;
//! - [`golden`]: typed views of the capture files;
//! - [`json_diff`]: order-aware JSON comparison with masking of run-specific values.

pub mod authserver;
pub mod client;
pub mod daemon;
pub mod diskfiles;
pub mod golden;
pub mod http;
pub mod json_diff;
pub mod lookupd;
pub mod negotiation;
pub mod nsqadmin;
pub mod transport;
pub mod wire;

use std::path::PathBuf;

pub use daemon::{nsqd_binary, workspace_dir, Nsqd};

/// The golden data directory: `$NSQ_GOLDEN_DIR`, else `<workspace>/../shared/golden`.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("NSQ_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_dir().join("..").join("shared").join("golden"),
    }
}

#[cfg(test)]
mod tests {
    use super::golden::{render_text, Step, StepKind, Transcript};
    use super::wire::{split_frames, Message};

    /// Every stored nsqd transcript decodes with our frame reader into exactly the frames the
    /// capture tool recorded, so the replay test compares against what the README describes.
    #[test]
    fn golden_transcripts_decode_consistently() {
        let dir = super::golden_dir().join("tcp");
        let transcripts = Transcript::load_dir(&dir).unwrap();
        assert!(
            transcripts.len() >= 100,
            "expected the golden transcripts in {}",
            dir.display()
        );
        let mut checked = 0;
        // Windows after a compression upgrade hold compressed bytes, so those files are left out.
        let plain =
            |t: &&Transcript| t.is_nsqd_v2() && t.steps.iter().all(|s| s.transport.is_none());
        for t in transcripts.iter().filter(plain) {
            for step in t
                .steps
                .iter()
                .filter(|s: &&Step| s.kind() == StepKind::Recv)
            {
                let frames = split_frames(&step.recv_bytes().unwrap()).unwrap();
                let golden = step.recv_frames.as_ref().unwrap();
                assert_eq!(frames.len(), golden.len(), "{}", t.name);
                for (f, g) in frames.iter().zip(golden) {
                    assert_eq!(Some(f.frame_type), g.frame_type, "{}", t.name);
                    assert_eq!(render_text(&f.data), g.data_text, "{}", t.name);
                    if let Some(gm) = &g.message {
                        let m = Message::parse(&f.data).unwrap();
                        assert_eq!(
                            (m.attempts, m.id_text()),
                            (gm.attempts, gm.id.clone()),
                            "{}",
                            t.name
                        );
                        assert_eq!(
                            (m.timestamp_ns, m.body.len()),
                            (gm.timestamp_ns, gm.body_len),
                            "{}",
                            t.name
                        );
                        assert_eq!(render_text(&m.body), gm.body_text, "{}", t.name);
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 200, "only {checked} frames checked");
    }
}
