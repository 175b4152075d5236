//! The one integration-test binary (one link, shared helpers). Each module covers one part.

mod fixtures;
mod fleet;
mod fuzz;
mod hardening;
mod helpers;
mod lineage;
mod record;
mod rules;
mod store;
