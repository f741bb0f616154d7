//! The customer service.
