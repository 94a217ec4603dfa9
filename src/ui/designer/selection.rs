//! What is selected in the designer: up to two nodes (by position, 0 being the input; most
//! recent last) and a skip. No egui.

use crate::spec::NetSpec;

/// The selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    nodes: Vec<usize>,
    skip: Option<usize>,
}

impl Selection {
    /// The selected nodes, most recent last (at most two).
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }

    /// The most recently selected node.
    pub fn last_node(&self) -> Option<usize> {
        self.nodes.last().copied()
    }

    /// The selected skip.
    pub fn skip(&self) -> Option<usize> {
        self.skip
    }

    /// A click on a node: with `add` (Shift or Ctrl) it joins the selection (the oldest of
    /// three drops out); without, it becomes the selection, or clears it when it was the only
    /// one. Either way the skip is deselected.
    pub fn click(&mut self, node: usize, add: bool) {
        self.skip = None;
        if add {
            self.nodes.retain(|&p| p != node);
            self.nodes.push(node);
            if self.nodes.len() > 2 {
                self.nodes.remove(0);
            }
        } else if self.nodes == [node] {
            self.nodes.clear();
        } else {
            self.nodes = vec![node];
        }
    }

    /// Selects exactly these nodes.
    pub fn set_nodes(&mut self, nodes: Vec<usize>) {
        self.nodes = nodes;
    }

    /// Selects a skip (or none).
    pub fn set_skip(&mut self, skip: Option<usize>) {
        self.skip = skip;
    }

    /// Deselects everything.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.skip = None;
    }

    /// Drops what an edit left pointing past the end of `spec`.
    pub fn clamp(&mut self, spec: &NetSpec) {
        let nodes = spec.layers.len() + 1;
        self.nodes.retain(|&p| p < nodes);
        if self.skip.is_some_and(|k| k >= spec.skips.len()) {
            self.skip = None;
        }
    }

    /// The layer range a block operation works on: the two selected nodes' layers, or the
    /// layers sharing the selected layer's name prefix (`stage1.block2.*`).
    pub fn block_range(&self, spec: &NetSpec) -> Option<(usize, usize)> {
        match self.nodes.as_slice() {
            [a, b] => {
                let (lo, hi) = ((*a).min(*b), (*a).max(*b));
                (lo >= 1).then(|| (lo - 1, hi - 1))
            }
            [p] if *p >= 1 => {
                let i = p - 1;
                let name = &spec.layers.get(i)?.name;
                let Some((prefix, _)) = name.rsplit_once('.') else {
                    return Some((i, i));
                };
                let dotted = format!("{prefix}.");
                let inside = |j: usize| spec.layers[j].name.starts_with(&dotted);
                let mut lo = i;
                while lo > 0 && inside(lo - 1) {
                    lo -= 1;
                }
                let mut hi = i;
                while hi + 1 < spec.layers.len() && inside(hi + 1) {
                    hi += 1;
                }
                Some((lo, hi))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PresetOptions, preset};

    #[test]
    fn clicks_select_one_node_shift_clicks_two() {
        let mut s = Selection::default();
        s.set_skip(Some(0));
        s.click(3, false);
        assert_eq!((s.nodes(), s.skip()), (&[3][..], None));
        s.click(5, true);
        s.click(7, true);
        assert_eq!(s.nodes(), &[5, 7]);
        s.click(7, false);
        assert_eq!(s.nodes(), &[7]);
        s.click(7, false);
        assert!(s.nodes().is_empty());
    }

    #[test]
    fn a_block_is_the_layers_sharing_a_prefix_or_the_range_between_two_nodes() {
        let spec = preset("cifar-resnet-8", &PresetOptions::default()).unwrap();
        let conv1 = spec.index_of("stage1.block1.conv1").unwrap();
        let act2 = spec.index_of("stage1.block1.act2").unwrap();
        let mut s = Selection::default();
        s.click(conv1 + 2, false);
        assert_eq!(s.block_range(&spec), Some((conv1, act2)));
        s.set_nodes(vec![act2 + 1, conv1 + 1]);
        assert_eq!(s.block_range(&spec), Some((conv1, act2)));
        s.set_nodes(vec![0]);
        assert_eq!(s.block_range(&spec), None);
        // An edit that shortens the spec drops the nodes past its end.
        s.set_nodes(vec![1, spec.layers.len() + 5]);
        s.clamp(&spec);
        assert_eq!(s.nodes(), &[1]);
    }
}
