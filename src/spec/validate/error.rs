//! Why a spec is not a valid network: one error per problem, each naming the node, field or
//! skip it is about and, where one helps, what to do instead.

use super::{MAX_LAYERS, MAX_PARAMETERS, Shape};
use thiserror::Error;

/// Why a [`NetSpec`] is not a valid network. Every variant names the node it is about.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SpecError {
    /// The network has no layer.
    #[error("the network is empty: add at least one layer")]
    Empty,
    /// More layers than `MAX_LAYERS` (10,000).
    #[error("the network has {count} layers; at most {MAX_LAYERS} are allowed")]
    TooManyLayers {
        /// Number of layers.
        count: usize,
    },
    /// A layer without a name.
    #[error("layer #{index} has an empty name")]
    EmptyName {
        /// Position in the chain.
        index: usize,
    },
    /// A layer named `input`.
    #[error("layer #{index} is named \"input\", which is reserved for the network input")]
    ReservedName {
        /// Position in the chain.
        index: usize,
    },
    /// A layer name starting with the optimiser's prefix (`optim.`).
    #[error(
        "layer #{index} is named \"{name}\"; names starting with \"optim.\" are reserved for the optimiser's state in weight files"
    )]
    ReservedPrefix {
        /// Position in the chain.
        index: usize,
        /// The name.
        name: String,
    },
    /// Two layers with one name.
    #[error("two layers are named \"{name}\" (#{first} and #{second}); names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
        /// First position.
        first: usize,
        /// Second position.
        second: usize,
    },
    /// Two parts of the network that would store a tensor under one name.
    #[error("{first} and {second} both make a tensor named \"{tensor}\"; rename one of the layers")]
    TensorNameClash {
        /// The tensor name.
        tensor: String,
        /// The first part, in words (`layer "b.shortcut"`).
        first: String,
        /// The second part, in words (`the shortcut of skip #0 into "b"`).
        second: String,
        /// The layer of the second part (a skip's target).
        node: String,
    },
    /// A size that must be positive is zero.
    #[error("{node}: {field} must be at least 1")]
    ZeroSize {
        /// The node (or `input`).
        node: String,
        /// The field.
        field: &'static str,
    },
    /// A size beyond the lab's limits.
    #[error("{node}: {field} = {value} is too large (at most {max})")]
    TooLarge {
        /// The node (or `input`).
        node: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// A numeric field that is out of its range.
    #[error("{node}: {field} = {value} is invalid ({reason})")]
    BadValue {
        /// The node.
        node: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What is expected.
        reason: &'static str,
    },
    /// An op applied to a tensor of the wrong kind, e.g. a Linear on an image.
    #[error("{node}: {op} needs {expected} input but gets {got}{hint}")]
    WrongInput {
        /// The node.
        node: String,
        /// The op.
        op: String,
        /// What it needs.
        expected: &'static str,
        /// The shape it gets.
        got: Shape,
        /// A suggestion, starting with "; ".
        hint: &'static str,
    },
    /// A GroupNorm whose groups do not divide its input's channels.
    #[error(
        "{node}: {groups} groups do not divide the {channels} channels of its input; use a divisor of {channels} (1 is LayerNorm)"
    )]
    GroupsDoNotDivide {
        /// The node.
        node: String,
        /// Groups asked for.
        groups: usize,
        /// Channels of the input.
        channels: usize,
    },
    /// A patch size that does not divide the image, or heads that do not divide the tokens'
    /// features.
    #[error("{node}: {field} = {value} does not divide the {size} {what} of its input{hint}")]
    DoesNotDivide {
        /// The node.
        node: String,
        /// The field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What it must divide (`pixels of height and width`, `features of each token`).
        what: &'static str,
        /// The size it does not divide.
        size: usize,
        /// A suggestion, starting with "; ".
        hint: &'static str,
    },
    /// A convolution whose output would be empty.
    #[error(
        "{node}: a {kernel}×{kernel} kernel with padding {padding} does not fit the {got} input"
    )]
    KernelTooLarge {
        /// The node.
        node: String,
        /// Kernel size.
        kernel: usize,
        /// Padding.
        padding: usize,
        /// The input shape.
        got: Shape,
    },
    /// The network output is not a flat vector.
    #[error(
        "{node}: the network must end with a flat output (add a pooling or flatten layer and a head); it ends with {got}"
    )]
    OutputNotFlat {
        /// The last node.
        node: String,
        /// Its shape.
        got: Shape,
    },
    /// More parameters than [`MAX_PARAMETERS`].
    #[error(
        "the network has {total} parameters, more than the lab's limit of {MAX_PARAMETERS}; the largest layer is {largest} ({largest_params})"
    )]
    TooManyParameters {
        /// Total parameters.
        total: u64,
        /// The layer with the most parameters.
        largest: String,
        /// Its parameters.
        largest_params: u64,
    },
    /// A skip endpoint that names no node.
    #[error("skip #{index}: there is no node named \"{name}\"")]
    UnknownSkipNode {
        /// Skip position.
        index: usize,
        /// The unknown name.
        name: String,
    },
    /// A skip from a node to itself.
    #[error("skip #{index}: an edge from \"{node}\" onto itself")]
    SkipOntoItself {
        /// Skip position.
        index: usize,
        /// The node.
        node: String,
    },
    /// A skip that goes backward.
    #[error(
        "skip #{index}: the edge from \"{from}\" to \"{to}\" goes backward; a skip must go to a later node"
    )]
    SkipBackward {
        /// Skip position.
        index: usize,
        /// Source.
        from: String,
        /// Target.
        to: String,
    },
    /// Two skips into one node.
    #[error("skip #{index}: \"{to}\" already receives a skip (#{other}); one skip per target node")]
    DuplicateSkipTarget {
        /// Skip position.
        index: usize,
        /// Target node.
        to: String,
        /// The other skip.
        other: usize,
    },
    /// Shapes differ and the shortcut cannot bridge them.
    #[error(
        "skip #{index} into \"{to}\": {from} has shape {from_shape} but {to} has {to_shape}; {reason}"
    )]
    SkipShapeMismatch {
        /// Skip position.
        index: usize,
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// Source shape.
        from_shape: Shape,
        /// Target shape.
        to_shape: Shape,
        /// Why and what to do.
        reason: &'static str,
    },
    /// A branch scale that is not finite.
    #[error("skip #{index} into \"{to}\": the branch scale α = {value} is not a finite number")]
    BadScale {
        /// Skip position.
        index: usize,
        /// Target.
        to: String,
        /// The value.
        value: f32,
    },
}

impl SpecError {
    /// The layer this error is about, if it names one (skip errors name their target).
    pub fn node(&self) -> Option<&str> {
        match self {
            SpecError::ZeroSize { node, .. }
            | SpecError::TooLarge { node, .. }
            | SpecError::BadValue { node, .. }
            | SpecError::WrongInput { node, .. }
            | SpecError::KernelTooLarge { node, .. }
            | SpecError::GroupsDoNotDivide { node, .. }
            | SpecError::DoesNotDivide { node, .. }
            | SpecError::OutputNotFlat { node, .. }
            | SpecError::TensorNameClash { node, .. } => Some(node),
            SpecError::TooManyParameters { largest, .. } => Some(largest),
            SpecError::SkipOntoItself { node, .. } => Some(node),
            SpecError::SkipBackward { to, .. }
            | SpecError::DuplicateSkipTarget { to, .. }
            | SpecError::SkipShapeMismatch { to, .. }
            | SpecError::BadScale { to, .. } => Some(to),
            SpecError::Empty
            | SpecError::TooManyLayers { .. }
            | SpecError::EmptyName { .. }
            | SpecError::ReservedName { .. }
            | SpecError::ReservedPrefix { .. }
            | SpecError::DuplicateName { .. }
            | SpecError::UnknownSkipNode { .. } => None,
        }
    }

    /// The index of the skip this error is about, if it is a skip error.
    pub fn skip_index(&self) -> Option<usize> {
        match self {
            SpecError::UnknownSkipNode { index, .. }
            | SpecError::SkipOntoItself { index, .. }
            | SpecError::SkipBackward { index, .. }
            | SpecError::DuplicateSkipTarget { index, .. }
            | SpecError::SkipShapeMismatch { index, .. }
            | SpecError::BadScale { index, .. } => Some(*index),
            _ => None,
        }
    }
}
