//! reslab: a training laboratory for one question: why do skip connections and batch
//! normalisation let deep networks train?
//!
//! Layers (the map, with who may import whom, is `docs/ARCHITECTURE.md`; `tests/layers.rs`
//! checks the code against it): [`spec`] (plain serde data), [`data`], [`model`] (burn modules
//! with probes), [`train`] (the loop on a worker thread), [`metrics`] (the run history),
//! [`runfile`], [`experiments`] (reproductions of published figures), [`cli`], [`ui`] (the
//! desktop lab), and the leaves [`numbers`], [`rng`], [`safe_fs`], [`signals`].

#![warn(missing_docs)]
// Errors here carry the node, field and shapes they are about so that messages can name them;
// they travel on cold paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod data;
pub mod experiments;
pub mod figure;
pub mod interop;
pub mod metrics;
pub mod model;
pub mod numbers;
pub mod rng;
pub mod runfile;
pub mod safe_fs;
pub mod signals;
pub mod spec;
pub mod sweep;
pub mod train;
pub mod ui;
pub mod views;
