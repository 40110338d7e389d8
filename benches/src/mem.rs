//! Samples another process's memory from `/proc/<pid>/status` while a benchmark runs.
//!
//! NSQ's memory figure for a backlog is the daemon's resident set size, so `--mem-pid` polls
//! `VmRSS` (current) and `VmHWM` (the kernel's own peak) and reports the highest values seen.

use std::io;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the sampler reads `/proc/<pid>/status`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One reading of a process's memory, in KiB as `/proc` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemSample {
    /// Resident set size now.
    pub rss_kb: u64,
    /// Peak resident set size since the process started.
    pub hwm_kb: u64,
}

/// The peak memory seen over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemPeak {
    /// The process sampled.
    pub pid: u32,
    /// Highest `VmRSS` among the samples, in KiB.
    pub peak_rss_kb: u64,
    /// `VmHWM` at the last sample, in KiB; it also covers spikes between samples.
    pub vm_hwm_kb: u64,
    /// Number of successful samples.
    pub samples: u64,
}

impl std::fmt::Display for MemPeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // KiB to MiB for people; the JSON keeps the exact KiB.
        #[allow(clippy::cast_precision_loss)]
        let mib = |kb: u64| kb as f64 / 1024.0;
        write!(
            f,
            "pid {}: peak RSS {:.1} MiB - VmHWM {:.1} MiB ({} samples)",
            self.pid,
            mib(self.peak_rss_kb),
            mib(self.vm_hwm_kb),
            self.samples
        )
    }
}

/// Extracts `VmRSS` and `VmHWM` from the text of a `/proc/<pid>/status` file.
pub fn parse_status(text: &str) -> Option<MemSample> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(MemSample {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// Reads one sample of process `pid`.
pub fn read_status(pid: u32) -> io::Result<MemSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no VmRSS/VmHWM in /proc/{pid}/status"),
        )
    })
}

/// A background task sampling one process until [`MemSampler::finish`].
#[derive(Debug)]
pub struct MemSampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<MemPeak>,
}

impl MemSampler {
    /// Starts sampling `pid` every [`SAMPLE_EVERY`]. Fails at once if the process cannot be read.
    pub fn start(pid: u32) -> io::Result<Self> {
        let first = read_status(pid)?;
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak = MemPeak {
                pid,
                peak_rss_kb: first.rss_kb,
                vm_hwm_kb: first.hwm_kb,
                samples: 1,
            };
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = stop_rx.wait_for(|s| *s) => break,
                    _ = ticker.tick() => {}
                }
                // The process may exit mid-run; keep what was seen so far.
                let Ok(s) = read_status(pid) else { break };
                peak.peak_rss_kb = peak.peak_rss_kb.max(s.rss_kb);
                peak.vm_hwm_kb = peak.vm_hwm_kb.max(s.hwm_kb);
                peak.samples += 1;
            }
            peak
        });
        Ok(Self { stop, task })
    }

    /// Takes a last sample, stops the task and returns the peaks.
    pub async fn finish(self) -> io::Result<MemPeak> {
        self.stop.send_replace(true);
        let mut peak = self.task.await.map_err(io::Error::other)?;
        if let Ok(s) = read_status(peak.pid) {
            peak.peak_rss_kb = peak.peak_rss_kb.max(s.rss_kb);
            peak.vm_hwm_kb = peak.vm_hwm_kb.max(s.hwm_kb);
            peak.samples += 1;
        }
        Ok(peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_fields() {
        let text =
            "Name:\tnsqd\nVmPeak:\t  999 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads: 4\n";
        assert_eq!(
            parse_status(text),
            Some(MemSample {
                rss_kb: 1024,
                hwm_kb: 2048
            })
        );
        assert_eq!(parse_status("Name:\tkthreadd\n"), None);
    }

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = MemSampler::start(std::process::id()).unwrap();
        tokio::time::sleep(SAMPLE_EVERY * 2).await;
        let peak = sampler.finish().await.unwrap();
        assert!(peak.peak_rss_kb > 0);
        assert!(peak.vm_hwm_kb >= peak.peak_rss_kb);
        assert!(peak.samples >= 3, "{peak:?}");
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(MemSampler::start(u32::MAX).is_err());
    }
}
