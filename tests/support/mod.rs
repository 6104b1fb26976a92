//! Shared integration-test support: real brokers, the Event Hubs emulator, the hubmirror binary,
//! and rdkafka helpers. Every test owns its brokers and ports; everything stops on drop.
#![allow(dead_code)]

pub mod emulator;
pub mod hubmirror;
pub mod kafka;
pub mod tansu;
