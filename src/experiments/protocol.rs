//! An experiment's protocol (seeds, statistic, thresholds, controls), its fingerprint, and the
//! registry of fingerprints in `docs/PROTOCOLS.md`: a protocol cannot change without its
//! fingerprint changing, and a test fails until the new fingerprint is registered with its
//! date, its reason and the held-out runs made under it.

use super::Control;
use sha2::{Digest, Sha256};

/// The registry, compiled in so that `reslab experiment --list` can say whether a protocol is
/// registered.
const REGISTRY: &str = include_str!("../../docs/PROTOCOLS.md");

/// How an experiment aggregates its repetitions and what its criteria compare, fixed in
/// advance: the criteria read exactly this statistic and these thresholds, and a change is
/// registered with its reason before new held-out runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Protocol {
    /// Repetitions (seeds `seed`, `seed + 1`, ...) at the quick scale.
    pub quick_seeds: usize,
    /// Repetitions at the full scale.
    pub full_seeds: usize,
    /// The statistic over repetitions that the criteria read, and their rules, in words.
    pub statistic: &'static str,
    /// Every number the criteria compare against, by name. The criteria read these constants
    /// (each experiment names them once), so editing one changes the fingerprint.
    pub thresholds: &'static [(&'static str, f64)],
    /// Why this rule, what it was decided on, and every change after a failure.
    pub reason: &'static str,
}

impl Protocol {
    /// The number of repetitions at a scale.
    pub fn seeds(&self, quick: bool) -> usize {
        if quick {
            self.quick_seeds
        } else {
            self.full_seeds
        }
    }

    /// The threshold called `name`. Panics when there is none: a criterion reading an
    /// unregistered number is a bug that every criteria test finds at once.
    pub fn threshold(&self, name: &str) -> f64 {
        self.thresholds
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("no threshold \"{name}\" in the protocol"))
    }

    /// The rule in one paragraph, for notes and `--list`.
    pub fn describe(&self) -> String {
        format!(
            "Protocol: {} seed(s) quick, {} full; {} Why: {}",
            self.quick_seeds, self.full_seeds, self.statistic, self.reason
        )
    }

    /// The text the fingerprint is taken of: everything that decides a verdict (the
    /// experiment's name, seeds, statistic, thresholds and controls), one item per line. The
    /// reason is left out: it explains the protocol and may be corrected without changing it.
    pub fn canonical(&self, experiment: &str, controls: &[Control]) -> String {
        let mut s = format!(
            "experiment {experiment}\nquick seeds {}\nfull seeds {}\nstatistic {}\n",
            self.quick_seeds, self.full_seeds, self.statistic
        );
        for (name, value) in self.thresholds {
            s.push_str(&format!("threshold {name} = {value:?}\n"));
        }
        for c in controls {
            s.push_str(&format!(
                "control {}: {} | rejected by: {}\n",
                c.name, c.runs, c.rejected_by
            ));
        }
        s
    }

    /// The first 12 hex digits of the SHA-256 of [`Protocol::canonical`].
    pub fn fingerprint(&self, experiment: &str, controls: &[Control]) -> String {
        let digest = Sha256::digest(self.canonical(experiment, controls).as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

/// One registered protocol: a row of the registry table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// The experiment.
    pub experiment: String,
    /// The fingerprint.
    pub fingerprint: String,
    /// When it was registered (YYYY-MM-DD).
    pub date: String,
    /// What changed and why.
    pub change: String,
    /// The held-out runs made under it.
    pub held_out: String,
}

/// The rows of a registry text: table rows whose first two cells are a backticked experiment
/// name and a backticked fingerprint.
pub fn parse_registry(text: &str) -> Vec<Registered> {
    let unquote = |s: &str| {
        let s = s.trim();
        (s.len() >= 2 && s.starts_with('`') && s.ends_with('`')).then(|| s[1..s.len() - 1].into())
    };
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            if cells.len() < 5 {
                return None;
            }
            Some(Registered {
                experiment: unquote(cells[0])?,
                fingerprint: unquote(cells[1])?,
                date: cells[2].trim().into(),
                change: cells[3].trim().into(),
                held_out: cells[4].trim().into(),
            })
        })
        .collect()
}

/// The registry's entry for this experiment and fingerprint, if registered.
pub fn registered(experiment: &str, fingerprint: &str) -> Option<Registered> {
    parse_registry(REGISTRY)
        .into_iter()
        .find(|r| r.experiment == experiment && r.fingerprint == fingerprint)
}
