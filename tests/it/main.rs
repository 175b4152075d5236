//! The one integration-test binary (one link, shared helpers). Each module covers one part.

mod answers;
mod capture_paths;
mod chroot_live;
mod diskfull;
mod fixtures;
mod fleet;
mod fuzz;
mod hardening;
mod helpers;
mod history;
mod kernels_loader;
mod layers;
mod lineage;
mod manpages;
mod nobody;
mod outage;
mod outputs;
mod readme;
mod record;
mod recorder;
mod rules;
mod service;
mod store;
mod tamper;
mod tamper_forge;
