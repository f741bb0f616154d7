//! The order service.
