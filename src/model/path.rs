//! Module visitors and mappers that know where they are.
//!
//! burn's [`ModuleVisitor`] and [`ModuleMapper`] announce each submodule with `enter_module` /
//! `exit_module`; every pass that names tensors (parameter layout, checkpoints, the optimiser,
//! the experiments' host copies) needs the path those calls spell out. [`WithPath`] keeps it
//! once, and the passes implement [`PathVisit`] or [`PathMap`], which receive it.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A read-only pass over a module's float tensors, with burn's path to each.
pub trait PathVisit {
    /// Called for every float tensor; `path` is burn's segments, e.g. `["nodes", "3",
    /// "Linear", "weight"]`.
    fn visit<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>);
}

/// A pass that rebuilds a module's float tensors, with burn's path to each.
pub trait PathMap {
    /// Called for every float tensor; returns its replacement.
    fn map<const D: usize>(&mut self, path: &[String], param: Param<Tensor<D>>)
    -> Param<Tensor<D>>;
}

/// Adapts a [`PathVisit`] or [`PathMap`] to burn's visitor and mapper traits.
pub struct WithPath<T> {
    path: Vec<String>,
    /// The pass.
    pub inner: T,
}

impl<T> WithPath<T> {
    fn new(inner: T) -> Self {
        Self {
            path: Vec::new(),
            inner,
        }
    }
}

impl<T: PathVisit> ModuleVisitor for WithPath<T> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit(&self.path, param);
    }
}

impl<T: PathMap> ModuleMapper for WithPath<T> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map(&self.path, param)
    }
}

/// Runs `pass` over `module` and hands it back.
pub fn visit_with_path<M: Module, T: PathVisit>(module: &M, pass: T) -> T {
    let mut v = WithPath::new(pass);
    module.visit(&mut v);
    v.inner
}

/// Runs `pass` over `module`, returning the rebuilt module and the pass.
pub fn map_with_path<M: Module, T: PathMap>(module: M, pass: T) -> (M, T) {
    let mut m = WithPath::new(pass);
    let module = module.map(&mut m);
    (module, m.inner)
}

/// Whether a path ends at a BatchNorm running statistic: a buffer that mappers and visitors see
/// as a float tensor, but that is neither trained nor a parameter.
pub fn is_buffer(path: &[String]) -> bool {
    path.last()
        .is_some_and(|s| s == "running_mean" || s == "running_var")
}
