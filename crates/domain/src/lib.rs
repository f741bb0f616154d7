//! The shared language of the ewf services: identifiers, records, events, the
//! EventBridge routing table, the ports every adapter implements, and the one place
//! where a function's input (HTTP request, EventBridge event, direct invocation) is
//! decoded and its reply encoded.

/// A fieldless enum that travels as a fixed string (statuses, event names).
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|candidate| candidate.as_str().eq_ignore_ascii_case(value))
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("expected one of {}", names.join(", "))
                    })
            }
        }
    };
}

pub mod entry;
pub mod error;
pub mod events;
pub mod ids;
pub mod logs;
pub mod model;
pub mod ports;
pub mod saga;
pub mod sample;
pub mod settings;
pub mod step;
pub mod system;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod work;
pub mod workflow_errors;

pub use error::{RecordedError, ServiceError, StoreError, WriteError};
pub use ids::{Address, CustomerId, ItemId, OrderId, PaymentId};
pub use model::*;
pub use rust_decimal::Decimal as Money;
