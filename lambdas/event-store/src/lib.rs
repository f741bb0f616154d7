//! The event-store service.
