//! What a run is made of, as plain serde data: the network ([`NetSpec`]), the training
//! configuration ([`TrainConfig`]) and the dataset ([`DatasetSpec`]); presets; validation with
//! shape inference. This module imports neither burn nor egui.

pub mod blocks;
mod config;
mod data_kind;
mod dataset;
mod device;
pub mod edit;
mod eval_set;
mod net;
mod norm;
mod op;
mod presets;
mod resources;
mod shift;
mod strict;
mod tensors;
mod validate;
mod vit;

pub use config::{
    ConfigError, DeviceChoice, Duration, MAX_STEPS, OptimizerSpec, Schedule, TrainConfig,
};
pub use data_kind::DataKind;
pub use dataset::{
    DataSource, DatasetNameError, DatasetSpec, MAX_DATASET_VALUES, MAX_SAMPLES, Palette,
};
pub use device::{Endpoint, MAX_ENDPOINT, TOKEN_VAR};
pub use eval_set::{EvalSet, MAX_EVAL_SET_NAME, MAX_EVAL_SETS};
pub use net::{
    Activation, BranchScale, INPUT_NODE, Init, InputShape, LayerOp, LayerSpec, NetSpec, Shortcut,
    SkipSpec,
};
pub use norm::Norm;
pub use op::{OpFacts, OpTensor, describe, layer_output};
pub use presets::{PRESET_EXAMPLES, PresetError, PresetOptions, cifar, mlp, preact, preset};
pub use resources::{EVAL_CHUNK, MemoryEstimate, estimate_memory, format_bytes};
pub use shift::{Shift, ShiftClass, ShiftKind};
pub use tensors::{ProbeNames, TensorEntry, TensorOwner, expected_tensors, probe_names};
pub use validate::{
    Diagnosis, LayerFacts, LayerInfo, MAX_NAME_LEN, MAX_PARAMETERS, RESERVED_PREFIX, Shape,
    SkipInfo, SpecError, ValidSpec, check_skip, diagnose, validate,
};
pub use vit::{TransformerBlock, VitLayout, transformer_block, vit};
