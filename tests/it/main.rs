//! The one integration-test binary (one link, shared helpers). Each module covers one part.

mod helpers;
mod record;
mod rules;
mod store;
