//! SQLite adapters.
