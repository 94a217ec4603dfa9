//! Dataset descriptors: plain serde data. The `data` module turns them into samples.

use super::strict::no_fields;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use thiserror::Error;

/// Which data a run trains on, and how it is split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Where the samples come from.
    pub source: DataSource,
    /// Fraction of the samples held out for validation (when the source has no test split).
    #[serde(default = "default_validation")]
    pub validation_fraction: f64,
    /// Seed of the generator (synthetic sets) and of the train/validation split.
    #[serde(default)]
    pub seed: u64,
    /// Named sets validated on beside the validation split (other palettes, shifts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval_sets: Vec<super::EvalSet>,
}

fn default_validation() -> f64 {
    0.2
}

/// The source of the samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// Interleaved 2-D spirals, one arm per class.
    Spirals {
        /// Number of samples.
        samples: usize,
        /// Number of arms (classes).
        classes: usize,
        /// Standard deviation of the Gaussian noise added to each point.
        noise: f32,
    },
    /// Two concentric circles.
    Circles {
        /// Number of samples.
        samples: usize,
        /// Noise standard deviation.
        noise: f32,
    },
    /// Two interleaved half moons.
    Moons {
        /// Number of samples.
        samples: usize,
        /// Noise standard deviation.
        noise: f32,
    },
    /// The sign of x·y.
    Xor {
        /// Number of samples.
        samples: usize,
        /// Noise standard deviation.
        noise: f32,
    },
    /// A checkerboard of `tiles × tiles` squares in [-1, 1]², two colours.
    Checkerboard {
        /// Number of samples.
        samples: usize,
        /// Tiles per side.
        tiles: usize,
        /// Noise standard deviation.
        noise: f32,
    },
    /// An n-class mixture of unit Gaussians in d dimensions with random centres.
    Gaussians {
        /// Number of samples.
        samples: usize,
        /// Number of classes.
        classes: usize,
        /// Dimension.
        dim: usize,
        /// Standard deviation of the class centres (larger: easier).
        spread: f32,
    },
    /// 1-D regression: y = sin(3x) + 0.3x + noise on x ∈ [-2, 2].
    Regression1d {
        /// Number of samples.
        samples: usize,
        /// Noise standard deviation.
        noise: f32,
    },
    /// The 10,000 MNIST digits shipped in `assets/mnist10k`.
    #[serde(deserialize_with = "no_fields")]
    Mnist10k,
    /// The shipped MNIST-10k digits tinted with a palette on a dark background (3 channels).
    ColouredMnist {
        /// The shades the digits take.
        #[serde(default)]
        palette: Palette,
    },
    /// Full MNIST in IDX files (`train-images-idx3-ubyte[.gz]`, ...) in a folder.
    MnistDir {
        /// The folder.
        dir: PathBuf,
    },
    /// Fashion-MNIST in IDX files in a folder (same file names as MNIST).
    FashionDir {
        /// The folder.
        dir: PathBuf,
    },
    /// CIFAR-10 binary batches (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`).
    Cifar10Dir {
        /// The folder.
        dir: PathBuf,
    },
}

/// The shades of Coloured MNIST: one colour family per set (red is the training palette of the
/// red-roses experiment), or all of them mixed (one per image).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Palette {
    /// Shades of red.
    #[default]
    Red,
    /// Shades of orange.
    Orange,
    /// Shades of green.
    Green,
    /// Shades of blue.
    Blue,
    /// Shades of grey.
    Grey,
    /// Red digits with every value inverted (light background, dark cyan digits).
    Inverted,
    /// Each image a shade of red, orange, green, blue or grey.
    All,
}

impl Palette {
    /// Every palette, in the order pickers list them.
    pub const ALL: [Palette; 7] = [
        Palette::Red,
        Palette::Orange,
        Palette::Green,
        Palette::Blue,
        Palette::Grey,
        Palette::Inverted,
        Palette::All,
    ];

    /// Its name on the command line and in pickers.
    pub fn name(self) -> &'static str {
        match self {
            Palette::Red => "red",
            Palette::Orange => "orange",
            Palette::Green => "green",
            Palette::Blue => "blue",
            Palette::Grey => "grey",
            Palette::Inverted => "inverted",
            Palette::All => "all",
        }
    }
}

/// Why a dataset name cannot be parsed.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DatasetNameError {
    /// Not a known name.
    #[error(
        "unknown dataset \"{0}\"; use spirals, circles, moons, xor, checkerboard, gaussians, regression, mnist, coloured-mnist[:PALETTE], mnist:DIR, fashion:DIR or cifar10:DIR"
    )]
    Unknown(String),
    /// A Coloured MNIST palette that does not exist.
    #[error(
        "unknown palette \"{0}\" for coloured-mnist; use red, orange, green, blue, grey, inverted or all (e.g. coloured-mnist:green)"
    )]
    UnknownPalette(String),
    /// A folder source without a folder.
    #[error("dataset \"{0}\" needs a folder after the colon, e.g. {0}:/data/{0}")]
    MissingDir(String),
}

impl DatasetSpec {
    /// A descriptor with the default validation fraction and seed 0.
    pub fn new(source: DataSource) -> Self {
        Self {
            source,
            validation_fraction: default_validation(),
            seed: 0,
            eval_sets: Vec::new(),
        }
    }

    /// Parses a CLI name: `spirals`, `circles`, `moons`, `xor`, `checkerboard`, `gaussians`,
    /// `regression`, `mnist` (the shipped 10k), `coloured-mnist[:PALETTE]` (the shipped digits
    /// tinted, red by default), `mnist:DIR`, `fashion:DIR`, `cifar10:DIR`.
    pub fn from_name(name: &str) -> Result<Self, DatasetNameError> {
        let (word, dir) = match name.split_once(':') {
            Some((k, d)) => (k, Some(d)),
            None => (name, None),
        };
        if word == "coloured-mnist" {
            let palette = match dir {
                None => Palette::Red,
                Some(p) => Palette::ALL
                    .into_iter()
                    .find(|q| q.name() == p)
                    .ok_or_else(|| DatasetNameError::UnknownPalette(p.to_string()))?,
            };
            return Ok(Self::new(DataSource::ColouredMnist { palette }));
        }
        // `mnist` alone is the shipped set; with a folder, MNIST from that folder.
        let kind = super::DataKind::ALL
            .into_iter()
            .find(|k| k.name() == word && k.needs_folder() == dir.is_some())
            .or_else(|| {
                super::DataKind::ALL
                    .into_iter()
                    .find(|k| k.name() == word && k.needs_folder())
            })
            .ok_or_else(|| DatasetNameError::Unknown(name.to_string()))?;
        let source = match dir {
            _ if !kind.needs_folder() => kind.default_source(PathBuf::new()),
            Some(d) if !d.is_empty() => kind.default_source(PathBuf::from(d)),
            _ => return Err(DatasetNameError::MissingDir(kind.name().to_string())),
        };
        Ok(Self::new(source))
    }

    /// A short name for tables and titles.
    pub fn label(&self) -> String {
        match &self.source {
            DataSource::Spirals { classes, .. } => format!("spirals ({classes} arms)"),
            DataSource::Circles { .. } => "circles".into(),
            DataSource::Moons { .. } => "moons".into(),
            DataSource::Xor { .. } => "xor".into(),
            DataSource::Checkerboard { tiles, .. } => format!("checkerboard {tiles}×{tiles}"),
            DataSource::Gaussians { classes, dim, .. } => {
                format!("gaussians ({classes} classes, {dim}-D)")
            }
            DataSource::Regression1d { .. } => "1-D regression".into(),
            DataSource::Mnist10k => "MNIST-10k".into(),
            DataSource::ColouredMnist { palette } => {
                format!("Coloured MNIST-10k ({})", palette.name())
            }
            DataSource::MnistDir { dir } => format!("MNIST ({})", dir.display()),
            DataSource::FashionDir { dir } => format!("Fashion-MNIST ({})", dir.display()),
            DataSource::Cifar10Dir { dir } => format!("CIFAR-10 ({})", dir.display()),
        }
    }
}

impl DatasetSpec {
    /// The name of each class, in label order (`None` for a regression set): the digits of
    /// MNIST, the names of Fashion-MNIST's and CIFAR-10's classes, the labels of the synthetic
    /// sets as numbers.
    pub fn class_names(&self) -> Option<Vec<String>> {
        let numbered = |n: usize| Some((0..n).map(|k| k.to_string()).collect());
        let named = |names: &[&str]| Some(names.iter().map(|s| s.to_string()).collect());
        match &self.source {
            DataSource::Spirals { classes, .. } | DataSource::Gaussians { classes, .. } => {
                numbered(*classes)
            }
            DataSource::Circles { .. }
            | DataSource::Moons { .. }
            | DataSource::Xor { .. }
            | DataSource::Checkerboard { .. } => numbered(2),
            DataSource::Regression1d { .. } => None,
            DataSource::Mnist10k
            | DataSource::ColouredMnist { .. }
            | DataSource::MnistDir { .. } => numbered(10),
            DataSource::FashionDir { .. } => named(&[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ]),
            DataSource::Cifar10Dir { .. } => named(&[
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]),
        }
    }

    /// What the loader multiplies the stored values by before normalising (1/255 for the image
    /// files' pixel bytes, 1 otherwise), and the values that gives, in words.
    pub fn raw_values(&self) -> (f64, &'static str) {
        match &self.source {
            DataSource::Mnist10k
            | DataSource::MnistDir { .. }
            | DataSource::FashionDir { .. }
            | DataSource::Cifar10Dir { .. } => (1.0 / 255.0, "pixel bytes / 255: values in [0, 1]"),
            DataSource::ColouredMnist { .. } => (
                1.0,
                "RGB values in [0, 1]: each MNIST digit's grey level (bytes / 255) mixes its \
                 colour with the background",
            ),
            _ => (1.0, "the generated coordinates (or inputs) as they are"),
        }
    }
}

/// The largest synthetic dataset, in samples.
pub const MAX_SAMPLES: usize = 1_000_000;
/// The most values (features over all samples) a dataset may have: 1 GiB as `f32` (full
/// CIFAR-10 is 184 M values, full MNIST 55 M; a synthetic set of 1,000,000 samples may have up
/// to 268 features).
pub const MAX_DATASET_VALUES: u64 = 1 << 28;

impl DatasetSpec {
    /// Checks the descriptor's numbers before anything is generated or loaded: the validation
    /// fraction in (0, 1), and synthetic sizes within the generators' limits (4 to 1,000,000
    /// samples, finite noise, samples × features at most [`MAX_DATASET_VALUES`]). Returns the
    /// field and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let vf = self.validation_fraction;
        if !(vf.is_finite() && vf > 0.0 && vf < 1.0) {
            return Err((
                "validation_fraction".into(),
                format!("{vf} is not between 0 and 1"),
            ));
        }
        super::eval_set::check_sets(&self.eval_sets)?;
        let (samples, noise) = match &self.source {
            DataSource::Spirals { samples, noise, .. }
            | DataSource::Circles { samples, noise }
            | DataSource::Moons { samples, noise }
            | DataSource::Xor { samples, noise }
            | DataSource::Checkerboard { samples, noise, .. }
            | DataSource::Regression1d { samples, noise } => (*samples, *noise),
            DataSource::Gaussians {
                samples, spread, ..
            } => (*samples, *spread),
            _ => return Ok(()),
        };
        if !(4..=MAX_SAMPLES).contains(&samples) {
            return Err((
                "source.samples".into(),
                format!("{samples} is not in 4..=1,000,000"),
            ));
        }
        if !noise.is_finite() {
            return Err(("source.noise".into(), format!("{noise} is not finite")));
        }
        let (_, features) = self.expected_size();
        let values = (samples as u64).saturating_mul(features as u64);
        if values > MAX_DATASET_VALUES {
            return Err((
                "source.samples".into(),
                format!(
                    "{samples} samples of {features} features are {values} values, more than \
                     the {MAX_DATASET_VALUES} a dataset may hold (1 GiB); use fewer samples or \
                     dimensions"
                ),
            ));
        }
        Ok(())
    }

    /// Samples (training and validation together) and features per sample this data set has
    /// in memory; folder sources at their standard sizes (MNIST 70,000 of 784, CIFAR-10 60,000
    /// of 3,072; loading checks the real files against [`MAX_DATASET_VALUES`]).
    pub fn expected_size(&self) -> (usize, usize) {
        let (input, _) = self.expected_io();
        let features = match input {
            super::InputShape::Flat { features } => features,
            super::InputShape::Image {
                channels,
                height,
                width,
            } => channels * height * width,
        };
        let samples = match &self.source {
            DataSource::Spirals { samples, .. }
            | DataSource::Circles { samples, .. }
            | DataSource::Moons { samples, .. }
            | DataSource::Xor { samples, .. }
            | DataSource::Checkerboard { samples, .. }
            | DataSource::Gaussians { samples, .. }
            | DataSource::Regression1d { samples, .. } => *samples,
            DataSource::Mnist10k | DataSource::ColouredMnist { .. } => 10_000,
            DataSource::MnistDir { .. } | DataSource::FashionDir { .. } => 70_000,
            DataSource::Cifar10Dir { .. } => 60_000,
        };
        (samples, features)
    }
}

impl DatasetSpec {
    /// The input shape and output width a network needs for this data, known without loading
    /// it (folder sources assume the standard 28×28 and 32×32 formats; loading checks them).
    pub fn expected_io(&self) -> (super::InputShape, usize) {
        use super::InputShape;
        let flat = |features| InputShape::Flat { features };
        match &self.source {
            DataSource::Spirals { classes, .. } => (flat(2), *classes),
            DataSource::Circles { .. }
            | DataSource::Moons { .. }
            | DataSource::Xor { .. }
            | DataSource::Checkerboard { .. } => (flat(2), 2),
            DataSource::Gaussians { classes, dim, .. } => (flat(*dim), *classes),
            DataSource::Regression1d { .. } => (flat(1), 1),
            DataSource::Mnist10k | DataSource::MnistDir { .. } | DataSource::FashionDir { .. } => (
                InputShape::Image {
                    channels: 1,
                    height: 28,
                    width: 28,
                },
                10,
            ),
            DataSource::ColouredMnist { .. } => (
                InputShape::Image {
                    channels: 3,
                    height: 28,
                    width: 28,
                },
                10,
            ),
            DataSource::Cifar10Dir { .. } => (
                InputShape::Image {
                    channels: 3,
                    height: 32,
                    width: 32,
                },
                10,
            ),
        }
    }
}
