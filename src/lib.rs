//! snakkaz-pay: a self-hosted Bitcoin payment appliance.
