//! snakkaz-pay: a self-hosted Bitcoin payment appliance.
pub mod alerts;
pub mod app;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod metrics;
pub mod monitoring;
pub mod net;
pub mod payments;
pub mod secret;
pub mod sink;
pub mod store;
pub mod systemd;
pub mod wallet;
pub mod web;
