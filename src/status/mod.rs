//! What the running daemon knows about each flow, shared between the flow's tasks (which write
//! it) and the HTTP listener (which serves it as `/status` and judges `/readyz`): each flow's
//! [`FlowStatus`] (`flow`), what `/status` serves of it (`report`), and every flow together, as
//! `/readyz` and `/metrics` read them, in the [`Registry`] (`registry`).

mod flow;
mod registry;
mod report;
mod state;

pub use flow::{now_ms, FlowState, FlowStatus, SOURCE_SILENT_AFTER, STALL_AFTER};
pub use registry::Registry;
pub use report::{FlowReport, PartitionLag, SourcePartition};
