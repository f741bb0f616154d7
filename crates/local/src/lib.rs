//! The embedded local stack: the ewf services on SQLite, an in-process bus that routes
//! by the template's rules, and an interpreter for the template's state machine.

pub mod asl;
pub mod bus;
mod db;
pub mod functions;
pub mod metering;
pub mod serve;
pub mod stack;

pub use stack::{LocalError, LocalOptions, LocalStack, SeedSummary};
