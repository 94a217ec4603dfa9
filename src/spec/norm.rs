//! The normalisation a preset puts in its blocks: none, BatchNorm, LayerNorm or GroupNorm. One
//! choice, read by the presets, the block templates, the Lab's settings and `reslab train
//! --norm`.

use super::net::LayerSpec;
use serde::{Deserialize, Serialize};

/// Which normalisation layer a preset's blocks get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// No normalisation.
    None,
    /// BatchNorm (the presets' default, as in the papers).
    #[default]
    Batch,
    /// LayerNorm: each sample over all its features.
    Layer,
    /// GroupNorm with this many groups (it must divide every normalised layer's channels).
    Group {
        /// Groups.
        groups: usize,
    },
}

impl Norm {
    /// The choices pickers offer, GroupNorm with 8 groups (16, 32 and 64 channels all divide).
    pub const CHOICES: [Norm; 4] = [
        Norm::None,
        Norm::Batch,
        Norm::Layer,
        Norm::Group { groups: 8 },
    ];

    /// The layer-name suffix of its layers: `bn`, `ln`, `gn` (`""` for none).
    pub fn suffix(self) -> &'static str {
        match self {
            Norm::None => "",
            Norm::Batch => "bn",
            Norm::Layer => "ln",
            Norm::Group { .. } => "gn",
        }
    }

    /// The layer called `<prefix>.<suffix><k>` (`k` may be empty), or `None` without
    /// normalisation.
    pub fn layer(self, prefix: &str, k: &str) -> Option<LayerSpec> {
        let name = format!("{prefix}.{}{k}", self.suffix());
        match self {
            Norm::None => None,
            Norm::Batch => Some(LayerSpec::batch_norm(name)),
            Norm::Layer => Some(LayerSpec::layer_norm(name)),
            Norm::Group { groups } => Some(LayerSpec::group_norm(name, groups)),
        }
    }

    /// The name on the command line and in pickers: `none`, `batch`, `layer`, `group:G`.
    pub fn name(self) -> String {
        match self {
            Norm::None => "none".into(),
            Norm::Batch => "batch".into(),
            Norm::Layer => "layer".into(),
            Norm::Group { groups } => format!("group:{groups}"),
        }
    }

    /// Parses [`Norm::name`]'s form; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Norm, String> {
        match text {
            "none" => Ok(Norm::None),
            "batch" | "bn" => Ok(Norm::Batch),
            "layer" | "ln" => Ok(Norm::Layer),
            _ => {
                let groups = text
                    .strip_prefix("group:")
                    .ok_or_else(|| {
                        format!(
                            "unknown normalisation \"{text}\"; use none, batch, layer or group:G"
                        )
                    })?
                    .parse::<usize>()
                    .ok()
                    .filter(|g| *g >= 1)
                    .ok_or_else(|| format!("\"{text}\": groups must be a whole number ≥ 1"))?;
                Ok(Norm::Group { groups })
            }
        }
    }
}
