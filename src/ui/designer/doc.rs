//! The designer's document: the spec being designed with its undo and redo stacks. No egui:
//! the spec-editing operations are [`crate::spec::edit`]'s plain functions, and this keeps the
//! history of what they did.

use crate::spec::NetSpec;
use std::time::{Duration, Instant};

/// The most edits undo remembers.
pub const UNDO_LIMIT: usize = 200;

/// Edits of one field within this time make one undo step (dragging a number, typing a name).
pub const COALESCE: Duration = Duration::from_millis(800);

/// A spec with its edit history.
#[derive(Clone, Debug)]
pub struct DesignerDoc {
    spec: NetSpec,
    undo: Vec<NetSpec>,
    redo: Vec<NetSpec>,
    /// Counts changes, so that views of the spec know when to rebuild.
    revision: u64,
    /// Changed since [`DesignerDoc::take_changed`] was last called.
    changed: bool,
    /// The key and time of the last coalescing edit.
    coalesce: Option<(String, Instant)>,
}

impl DesignerDoc {
    /// A document holding `spec`, with an empty history.
    pub fn new(spec: NetSpec) -> Self {
        Self {
            spec,
            undo: Vec::new(),
            redo: Vec::new(),
            revision: 0,
            changed: false,
            coalesce: None,
        }
    }

    /// The spec.
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Counts the changes so far.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether the spec changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Applies an edit; a change becomes one undo step.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut NetSpec) -> R) -> R {
        let before = self.spec.clone();
        let r = f(&mut self.spec);
        if self.spec != before {
            self.push_undo(before);
            self.coalesce = None;
        }
        r
    }

    /// Like [`DesignerDoc::edit`], but edits of the same `key` within [`COALESCE`] of each
    /// other make one undo step.
    pub fn edit_coalesced(&mut self, key: &str, f: impl FnOnce(&mut NetSpec)) {
        self.edit_coalesced_at(key, Instant::now(), f);
    }

    /// [`DesignerDoc::edit_coalesced`] at a given time.
    pub fn edit_coalesced_at(&mut self, key: &str, now: Instant, f: impl FnOnce(&mut NetSpec)) {
        let before = self.spec.clone();
        f(&mut self.spec);
        if self.spec == before {
            return;
        }
        let merge = self
            .coalesce
            .as_ref()
            .is_some_and(|(k, t)| k == key && now.saturating_duration_since(*t) < COALESCE);
        if merge {
            self.redo.clear();
            self.touch();
        } else {
            self.push_undo(before);
        }
        self.coalesce = Some((key.to_string(), now));
    }

    fn push_undo(&mut self, before: NetSpec) {
        self.undo.push(before);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.touch();
    }

    fn touch(&mut self) {
        self.revision += 1;
        self.changed = true;
    }

    /// Whether there is an edit to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is an undone edit to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Undoes the last edit.
    pub fn undo(&mut self) {
        if let Some(prev) = self.undo.pop() {
            let now = std::mem::replace(&mut self.spec, prev);
            self.redo.push(now);
            self.coalesce = None;
            self.touch();
        }
    }

    /// Re-applies the last undone edit.
    pub fn redo(&mut self) {
        if let Some(next) = self.redo.pop() {
            let now = std::mem::replace(&mut self.spec, next);
            self.undo.push(now);
            self.coalesce = None;
            self.touch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PresetOptions, preset};

    fn doc() -> DesignerDoc {
        DesignerDoc::new(preset("mlp-res-2", &PresetOptions::default()).unwrap())
    }

    #[test]
    fn an_edit_is_one_undo_step_and_redo_reapplies_it() {
        let mut d = doc();
        let before = d.spec().clone();
        assert!(!d.can_undo());
        d.edit(|s| s.name = "x".into());
        assert!(d.take_changed());
        assert!(!d.take_changed());
        assert!(d.can_undo() && !d.can_redo());
        d.undo();
        assert_eq!(d.spec(), &before);
        assert!(d.can_redo());
        d.redo();
        assert_eq!(d.spec().name, "x");
        // A new edit drops what could be redone.
        d.undo();
        d.edit(|s| s.name = "y".into());
        assert!(!d.can_redo());
    }

    #[test]
    fn an_edit_that_changes_nothing_is_not_an_undo_step() {
        let mut d = doc();
        let r = d.revision();
        d.edit(|s| s.name = s.name.clone());
        assert!(!d.can_undo());
        assert_eq!(d.revision(), r);
        assert!(!d.take_changed());
    }

    #[test]
    fn edits_of_one_key_in_quick_succession_make_one_step() {
        let mut d = doc();
        let before = d.spec().clone();
        let t = Instant::now();
        d.edit_coalesced_at("name", t, |s| s.name = "a".into());
        d.edit_coalesced_at("name", t + Duration::from_millis(300), |s| {
            s.name = "ab".into()
        });
        // Another key, or the same one after a pause, is a new step.
        d.edit_coalesced_at("other", t + Duration::from_millis(400), |s| {
            s.layers.pop().map(|_| ()).unwrap_or(())
        });
        d.edit_coalesced_at("name", t + Duration::from_secs(5), |s| {
            s.name = "abc".into()
        });
        d.undo();
        assert_eq!(d.spec().name, "ab");
        d.undo();
        d.undo();
        assert_eq!(d.spec(), &before);
        assert!(!d.can_undo());
    }

    #[test]
    fn undo_remembers_at_most_the_limit() {
        let mut d = doc();
        for k in 0..UNDO_LIMIT + 10 {
            d.edit(|s| s.name = format!("n{k}"));
        }
        let mut steps = 0;
        while d.can_undo() {
            d.undo();
            steps += 1;
        }
        assert_eq!(steps, UNDO_LIMIT);
        assert_eq!(d.spec().name, "n9");
    }
}
