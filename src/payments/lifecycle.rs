//! The pure payment state machine (to be written).
