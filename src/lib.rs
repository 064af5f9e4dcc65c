//! snakkaz-pay: a self-hosted Bitcoin payment appliance.
pub mod payments;
