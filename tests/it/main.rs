//! The one integration-test binary: runs the real `acrlink` executable (see `support`), one
//! module per area.

mod engine;
mod support;
mod validate;
