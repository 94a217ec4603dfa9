//! Named evaluation sets: what a run validates on beside its own validation split, e.g. the
//! same digits in another colour, or shifted. Plain data; `data::load` builds them.

use super::dataset::{DataSource, DatasetSpec};
use super::shift::Shift;
use serde::{Deserialize, Serialize};

/// The most evaluation sets a run may have.
pub const MAX_EVAL_SETS: usize = 8;
/// The longest name of an evaluation set.
pub const MAX_EVAL_SET_NAME: usize = 40;

/// An evaluation set: the validation split of the run's own source, or of another source with
/// the same samples (another palette of Coloured MNIST), after test-time shifts. It is
/// normalised with the run's training statistics, as the network sees its training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    /// Its name in panels and histories (letters, digits, `-`, `_`, `.`, `:`, `+`).
    pub name: String,
    /// Another source to take the validation split from (the run's own when absent); it is
    /// split with the run's seed and fraction, so it holds the same samples in another guise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DataSource>,
    /// Shifts applied in order to the raw samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shifts: Vec<Shift>,
}

impl EvalSet {
    /// Parses `NAME=ITEM[,ITEM…]`, each item a shift `KIND:STRENGTH` or a dataset name (at most
    /// one), e.g. `green=coloured-mnist:green`, `dim=scale:0.4`,
    /// `green-turned=coloured-mnist:green,rotate:25`.
    pub fn parse(text: &str) -> Result<EvalSet, String> {
        let (name, items) = text.split_once('=').ok_or_else(|| {
            format!("\"{text}\": an evaluation set is NAME=DATASET or NAME=SHIFT[,SHIFT…], e.g. green=coloured-mnist:green")
        })?;
        check_name(name)?;
        let mut set = EvalSet {
            name: name.to_string(),
            source: None,
            shifts: Vec::new(),
        };
        for item in items.split(',').filter(|i| !i.is_empty()) {
            if let Ok(shift) = Shift::parse(item) {
                set.shifts.push(shift);
                continue;
            }
            let spec = DatasetSpec::from_name(item).map_err(|e| {
                format!("{name}: \"{item}\" is neither a shift (KIND:STRENGTH) nor a dataset ({e})")
            })?;
            if set.source.replace(spec.source).is_some() {
                return Err(format!("{name}: more than one dataset"));
            }
        }
        if set.source.is_none() && set.shifts.is_empty() {
            return Err(format!("{name}: names neither a dataset nor a shift"));
        }
        Ok(set)
    }

    /// What it is, in words: the source's label (if another) and the shifts.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .source
            .iter()
            .map(|s| DatasetSpec::new(s.clone()).label())
            .collect();
        parts.extend(self.shifts.iter().map(Shift::label));
        parts.join(", ")
    }
}

/// Checks a set's name: 1 to [`MAX_EVAL_SET_NAME`] characters from letters, digits and
/// `-_.:+`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.:+".contains(c);
    if name.is_empty() || name.len() > MAX_EVAL_SET_NAME || !name.chars().all(ok) {
        return Err(format!(
            "\"{}\": a set's name is 1 to {MAX_EVAL_SET_NAME} letters, digits or -_.:+",
            name.chars().take(60).collect::<String>()
        ));
    }
    Ok(())
}

/// Checks a run's evaluation sets: at most [`MAX_EVAL_SETS`], names valid and unique. Returns
/// the field and the reason.
pub fn check_sets(sets: &[EvalSet]) -> Result<(), (String, String)> {
    if sets.len() > MAX_EVAL_SETS {
        return Err((
            "eval_sets".into(),
            format!("{} sets; at most {MAX_EVAL_SETS}", sets.len()),
        ));
    }
    for (k, s) in sets.iter().enumerate() {
        check_name(&s.name).map_err(|e| (format!("eval_sets[{k}].name"), e))?;
        if sets[..k].iter().any(|t| t.name == s.name) {
            return Err((
                format!("eval_sets[{k}].name"),
                format!("\"{}\" appears twice", s.name),
            ));
        }
    }
    Ok(())
}
