//! snakkaz-pay: a self-hosted Bitcoin payment appliance.
pub mod chain;
pub mod clock;
pub mod payments;
pub mod store;
pub mod wallet;
