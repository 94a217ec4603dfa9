//! The history side file of version-2 run files: `<name>.<token>.history.bin`, a sequence of
//! chunks, each appended by one save and never rewritten, so that autosaves cost O(run) in
//! total instead of rewriting the whole history every time.
//!
//! # Layout
//!
//! Each chunk is a 44-byte header and a payload (all integers little-endian):
//!
//! ```text
//! magic "RLH1" | payload length u64 | sha256 of the payload [32]
//! payload: entries u32, then per entry:
//!   series index u32 | count u32 | step mode u8
//!   mode 1 (arithmetic): first step u32, stride u32      mode 0: count × step u32
//!   count × value f32 (raw bits: NaN and ±∞ survive exactly)
//! ```
//!
//! The run file's `history` object ([`HistoryIndex`]) names the side file and commits to a
//! prefix of it: its length, the number of chunks and a hash chain over the chunk hashes
//! (`h₀ = 0³², hₖ = sha256(hₖ₋₁ ‖ sha256(payloadₖ))`), and lists every series with its key,
//! its number of points and its last point. Bytes past the committed length (a save killed
//! after appending, before replacing the run file) are ignored, and the next save writes a new
//! side file (they may be another run file's: an older copy put back in place shares this one).

use super::LoadError;
use crate::metrics::{BoundaryRecord, History, ProbeRecord, RunLayout, Series, SeriesKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File-name suffix of history side files.
pub const HISTORY_SUFFIX: &str = ".history.bin";
/// The largest history side file this build reads (about 500 M points).
pub const MAX_HISTORY_BYTES: u64 = 2 << 30;
/// The most series a history may have.
pub const MAX_SERIES: usize = 1_000_000;

const MAGIC: &[u8; 4] = b"RLH1";
const HEADER: usize = 4 + 8 + 32;

/// The side file a run file's history lives in and the prefix of it the run file commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFileRef {
    /// File name beside the run file.
    pub path: String,
    /// Committed length in bytes.
    pub bytes: u64,
    /// Committed chunks.
    pub chunks: u64,
    /// The hash chain over the committed chunks, lower-case hex.
    pub sha256: String,
}

/// One series as the run file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesEntry {
    /// Series name.
    pub name: String,
    /// Layer (or tensor), `""` for whole-run series.
    pub layer: String,
    /// Points stored.
    pub points: u64,
    /// The last point: step and the value's bits (lets the next save check that the history
    /// it is given continues this one).
    #[serde(default)]
    pub last: Option<[u32; 2]>,
}

/// The `history` object of a version-2 run file: everything but the series' points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryIndex {
    /// What the probes report on.
    pub layout: RunLayout,
    /// The most recent probe record in full.
    pub latest_probe: Option<ProbeRecord>,
    /// The last step recorded.
    pub last_step: u64,
    /// The latest decision boundary.
    #[serde(default)]
    pub latest_boundary: Option<BoundaryRecord>,
    /// What the evaluation sets produced at each BatchNorm layer at the latest validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_set_bn: Option<crate::metrics::SetBnRecord>,
    /// The side file.
    pub file: HistoryFileRef,
    /// The series, in the history's order.
    pub series: Vec<SeriesEntry>,
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chain(prev: &[u8; 32], chunk: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(chunk);
    h.finalize().into()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The series table of a history.
pub(super) fn series_table(h: &History) -> Vec<SeriesEntry> {
    h.iter()
        .map(|(k, s)| SeriesEntry {
            name: k.name.clone(),
            layer: k.layer.clone(),
            points: s.len() as u64,
            last: s
                .steps
                .last()
                .zip(s.values.last())
                .map(|(&st, v)| [st, v.to_bits()]),
        })
        .collect()
}

/// Whether `h` continues the committed series table: the same series in the same order first,
/// each at least as long, with the same point where the committed one ended.
pub(super) fn extends(h: &History, committed: &[SeriesEntry]) -> bool {
    if h.series_count() < committed.len() {
        return false;
    }
    h.iter().zip(committed).all(|((k, s), c)| {
        let n = c.points as usize;
        k.name == c.name
            && k.layer == c.layer
            && s.len() >= n
            && match c.last {
                None => n == 0,
                Some([st, bits]) => {
                    n > 0 && s.steps[n - 1] == st && s.values[n - 1].to_bits() == bits
                }
            }
    })
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The payload of a chunk holding each series' points from `start[i]` on (0 for series not
/// in `start`); `None` when there is no new point.
pub(super) fn encode_payload(h: &History, start: &[u64]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 4];
    let mut entries = 0u32;
    for (i, (_, s)) in h.iter().enumerate() {
        let from = start.get(i).copied().unwrap_or(0) as usize;
        if from >= s.len() {
            continue;
        }
        let steps = &s.steps[from..];
        let values = &s.values[from..];
        entries += 1;
        put_u32(&mut out, i as u32);
        put_u32(&mut out, steps.len() as u32);
        let stride = if steps.len() > 1 {
            steps[1].wrapping_sub(steps[0])
        } else {
            0
        };
        let arithmetic = steps
            .windows(2)
            .all(|w| w[1].checked_sub(w[0]) == Some(stride));
        if arithmetic {
            out.push(1);
            put_u32(&mut out, steps[0]);
            put_u32(&mut out, stride);
        } else {
            out.push(0);
            for &st in steps {
                put_u32(&mut out, st);
            }
        }
        for v in values {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    out[..4].copy_from_slice(&entries.to_le_bytes());
    (entries > 0).then_some(out)
}

/// A chunk (header + payload) and the new chain hash after it.
pub(super) fn chunk(payload: &[u8], prev_chain: &str) -> (Vec<u8>, String) {
    let digest: [u8; 32] = Sha256::digest(payload).into();
    let prev = unhex(prev_chain).unwrap_or([0; 32]);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&digest);
    out.extend_from_slice(payload);
    (out, hex(&chain(&prev, &digest)))
}

/// The chain hash of an empty side file.
pub(super) fn empty_chain() -> String {
    hex(&[0; 32])
}

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::Field {
        field: "history (side file)".into(),
        reason: reason.into(),
    }
}

/// A little-endian reader over a byte slice that fails instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LoadError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| bad(format!("a chunk ends early, at byte {}", self.pos)))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, LoadError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Rebuilds a history from its index and the committed bytes of its side file, checking every
/// chunk's hash, the chain, the declared point counts and every bound before allocating.
pub fn read_history(index: &HistoryIndex, bytes: &[u8]) -> Result<History, LoadError> {
    check_bounds(index, bytes)?;
    let mut series: Vec<(SeriesKey, Series)> = index
        .series
        .iter()
        .map(|e| {
            let n = e.points as usize;
            let key = SeriesKey {
                name: e.name.clone(),
                layer: e.layer.clone(),
            };
            let s = Series {
                steps: Vec::with_capacity(n),
                values: Vec::with_capacity(n),
            };
            (key, s)
        })
        .collect();
    read_chunks(index, bytes, &mut series)?;
    for ((key, s), e) in series.iter().zip(&index.series) {
        let last = s
            .steps
            .last()
            .zip(s.values.last())
            .map(|(&st, v)| [st, v.to_bits()]);
        if s.len() as u64 != e.points || last != e.last {
            return Err(bad(format!(
                "series \"{} {}\" has {} points in the side file, the run file says {}",
                key.name,
                key.layer,
                s.len(),
                e.points
            )));
        }
    }
    Ok(History::from_parts(
        index.layout.clone(),
        series,
        index.latest_probe.clone(),
        index.last_step,
        index.latest_boundary.clone(),
        index.latest_set_bn.clone(),
    ))
}

/// What can be checked before anything is allocated: the side file's length, the number of
/// series, and that the declared points fit in the bytes.
fn check_bounds(index: &HistoryIndex, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() as u64 != index.file.bytes {
        return Err(bad(format!(
            "the side file has {} bytes, the run file commits to {}",
            bytes.len(),
            index.file.bytes
        )));
    }
    if index.series.len() > MAX_SERIES {
        return Err(bad(format!(
            "{} series, at most {MAX_SERIES}",
            index.series.len()
        )));
    }
    let declared = index
        .series
        .iter()
        .try_fold(0u64, |a, s| a.checked_add(s.points))
        .unwrap_or(u64::MAX);
    // Every point costs at least its 4-byte value, so the side file's length bounds the points.
    if declared > bytes.len() as u64 / 4 {
        return Err(bad(format!(
            "the run file declares {declared} points, more than {} bytes can hold",
            bytes.len()
        )));
    }
    Ok(())
}

/// Decodes every chunk of the side file into `series`, checking each chunk's sha256 and, at
/// the end, the chain of them against the run file's.
fn read_chunks(
    index: &HistoryIndex,
    bytes: &[u8],
    series: &mut [(SeriesKey, Series)],
) -> Result<(), LoadError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut chain_hash = [0u8; 32];
    let mut chunks = 0u64;
    while r.pos < bytes.len() {
        let start = r.pos;
        let head = r.take(HEADER)?;
        if &head[..4] != MAGIC {
            return Err(bad(format!("no chunk starts at byte {start}")));
        }
        let len = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| bad("a chunk length overflows"))?;
        let payload = r.take(len)?;
        let digest: [u8; 32] = Sha256::digest(payload).into();
        if digest[..] != head[12..44] {
            return Err(bad(format!(
                "the chunk at byte {start} does not match its sha256"
            )));
        }
        chain_hash = chain(&chain_hash, &digest);
        chunks += 1;
        decode_payload(payload, index, series)
            .map_err(|e| bad(format!("the chunk at byte {start}: {e}")))?;
    }
    if chunks != index.file.chunks || hex(&chain_hash) != index.file.sha256 {
        return Err(bad(format!(
            "the chunks ({chunks}) do not match the run file's hash chain ({} chunks)",
            index.file.chunks
        )));
    }
    Ok(())
}

fn decode_payload(
    payload: &[u8],
    index: &HistoryIndex,
    series: &mut [(SeriesKey, Series)],
) -> Result<(), String> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    let err = |e: LoadError| e.to_string();
    let entries = r.u32().map_err(err)?;
    for _ in 0..entries {
        let i = r.u32().map_err(err)? as usize;
        let count = r.u32().map_err(err)? as usize;
        let (Some((_, s)), Some(e)) = (series.get_mut(i), index.series.get(i)) else {
            return Err(format!("series index {i} is not in the run file's table"));
        };
        if (s.len() + count) as u64 > e.points {
            return Err(format!(
                "series {i} gets more points than the {} declared",
                e.points
            ));
        }
        let mode = r.take(1).map_err(err)?[0];
        match mode {
            1 => {
                let first = r.u32().map_err(err)?;
                let stride = r.u32().map_err(err)?;
                let span = (stride as u64) * (count.saturating_sub(1) as u64);
                if first as u64 + span > u32::MAX as u64 {
                    return Err(format!("series {i}: the steps overflow"));
                }
                s.steps
                    .extend((0..count as u32).map(|k| first + k * stride));
            }
            0 => {
                let raw = r.take(count * 4).map_err(err)?;
                s.steps.extend(
                    raw.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            m => return Err(format!("unknown step mode {m}")),
        }
        let raw = r.take(count * 4).map_err(err)?;
        s.values.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        );
    }
    if r.pos != payload.len() {
        return Err(format!(
            "{} bytes after the last entry",
            payload.len() - r.pos
        ));
    }
    Ok(())
}
