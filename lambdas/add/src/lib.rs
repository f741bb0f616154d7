//! The add service.
