//! The embedded local stack.
