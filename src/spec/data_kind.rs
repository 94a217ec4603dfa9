//! The kinds of data source, one table for every place that lists them: the lab's dataset
//! picker, the CLI's names and the default options each kind starts with.

use super::dataset::DataSource;
use std::path::PathBuf;

/// A kind of [`DataSource`], without its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// The shipped MNIST-10k digits.
    Mnist10k,
    /// The shipped digits tinted with a palette.
    ColouredMnist,
    /// Interleaved spirals.
    Spirals,
    /// Two concentric circles.
    Circles,
    /// Two half moons.
    Moons,
    /// The sign of x·y.
    Xor,
    /// A checkerboard.
    Checkerboard,
    /// A mixture of Gaussians.
    Gaussians,
    /// 1-D regression.
    Regression,
    /// MNIST from a folder.
    MnistDir,
    /// Fashion-MNIST from a folder.
    FashionDir,
    /// CIFAR-10 from a folder.
    Cifar10Dir,
}

impl DataKind {
    /// Every kind, in the order pickers list them.
    pub const ALL: [DataKind; 12] = [
        DataKind::Mnist10k,
        DataKind::ColouredMnist,
        DataKind::Spirals,
        DataKind::Circles,
        DataKind::Moons,
        DataKind::Xor,
        DataKind::Checkerboard,
        DataKind::Gaussians,
        DataKind::Regression,
        DataKind::MnistDir,
        DataKind::FashionDir,
        DataKind::Cifar10Dir,
    ];

    /// The name in pickers.
    pub fn label(self) -> &'static str {
        match self {
            DataKind::Mnist10k => "MNIST-10k (shipped)",
            DataKind::ColouredMnist => "Coloured MNIST-10k",
            DataKind::Spirals => "spirals",
            DataKind::Circles => "circles",
            DataKind::Moons => "moons",
            DataKind::Xor => "xor",
            DataKind::Checkerboard => "checkerboard",
            DataKind::Gaussians => "gaussians",
            DataKind::Regression => "1-D regression",
            DataKind::MnistDir => "MNIST folder",
            DataKind::FashionDir => "Fashion-MNIST folder",
            DataKind::Cifar10Dir => "CIFAR-10 folder",
        }
    }

    /// The CLI's name (`--dataset NAME`, folder kinds as `NAME:DIR`).
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Mnist10k | DataKind::MnistDir => "mnist",
            DataKind::ColouredMnist => "coloured-mnist",
            DataKind::Spirals => "spirals",
            DataKind::Circles => "circles",
            DataKind::Moons => "moons",
            DataKind::Xor => "xor",
            DataKind::Checkerboard => "checkerboard",
            DataKind::Gaussians => "gaussians",
            DataKind::Regression => "regression",
            DataKind::FashionDir => "fashion",
            DataKind::Cifar10Dir => "cifar10",
        }
    }

    /// Whether the kind reads a folder.
    pub fn needs_folder(self) -> bool {
        matches!(
            self,
            DataKind::MnistDir | DataKind::FashionDir | DataKind::Cifar10Dir
        )
    }

    /// The kind of a source.
    pub fn of(source: &DataSource) -> DataKind {
        match source {
            DataSource::Mnist10k => DataKind::Mnist10k,
            DataSource::ColouredMnist { .. } => DataKind::ColouredMnist,
            DataSource::Spirals { .. } => DataKind::Spirals,
            DataSource::Circles { .. } => DataKind::Circles,
            DataSource::Moons { .. } => DataKind::Moons,
            DataSource::Xor { .. } => DataKind::Xor,
            DataSource::Checkerboard { .. } => DataKind::Checkerboard,
            DataSource::Gaussians { .. } => DataKind::Gaussians,
            DataSource::Regression1d { .. } => DataKind::Regression,
            DataSource::MnistDir { .. } => DataKind::MnistDir,
            DataSource::FashionDir { .. } => DataKind::FashionDir,
            DataSource::Cifar10Dir { .. } => DataKind::Cifar10Dir,
        }
    }

    /// The source this kind starts with: the default options of a synthetic set, or `dir` for
    /// a folder kind (ignored by the others).
    pub fn default_source(self, dir: PathBuf) -> DataSource {
        match self {
            DataKind::Mnist10k => DataSource::Mnist10k,
            DataKind::ColouredMnist => DataSource::ColouredMnist {
                palette: super::Palette::Red,
            },
            DataKind::Spirals => DataSource::Spirals {
                samples: 2000,
                classes: 2,
                noise: 0.05,
            },
            DataKind::Circles => DataSource::Circles {
                samples: 2000,
                noise: 0.05,
            },
            DataKind::Moons => DataSource::Moons {
                samples: 2000,
                noise: 0.1,
            },
            DataKind::Xor => DataSource::Xor {
                samples: 2000,
                noise: 0.05,
            },
            DataKind::Checkerboard => DataSource::Checkerboard {
                samples: 4000,
                tiles: 4,
                noise: 0.0,
            },
            DataKind::Gaussians => DataSource::Gaussians {
                samples: 4000,
                classes: 5,
                dim: 10,
                spread: 1.5,
            },
            DataKind::Regression => DataSource::Regression1d {
                samples: 1000,
                noise: 0.1,
            },
            DataKind::MnistDir => DataSource::MnistDir { dir },
            DataKind::FashionDir => DataSource::FashionDir { dir },
            DataKind::Cifar10Dir => DataSource::Cifar10Dir { dir },
        }
    }
}

impl DataSource {
    /// The folder a folder source reads, if this is one.
    pub fn folder(&self) -> Option<&PathBuf> {
        match self {
            DataSource::MnistDir { dir }
            | DataSource::FashionDir { dir }
            | DataSource::Cifar10Dir { dir } => Some(dir),
            _ => None,
        }
    }

    /// The folder a folder source reads, to change it.
    pub fn folder_mut(&mut self) -> Option<&mut PathBuf> {
        match self {
            DataSource::MnistDir { dir }
            | DataSource::FashionDir { dir }
            | DataSource::Cifar10Dir { dir } => Some(dir),
            _ => None,
        }
    }
}
