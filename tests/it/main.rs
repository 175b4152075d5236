//! The one integration-test binary (one link, shared helpers). Each module covers one part.

mod capture_paths;
mod fixtures;
mod fleet;
mod fuzz;
mod hardening;
mod helpers;
mod history;
mod kernels_loader;
mod lineage;
mod outputs;
mod record;
mod rules;
mod service;
mod store;
