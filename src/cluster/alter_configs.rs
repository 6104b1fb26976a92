//! IncrementalAlterConfigs (KIP-339) on one topic. rust-rdkafka 0.39 wraps only AlterConfigs,
//! which replaces a topic's whole configuration (every config not named goes back to its
//! default); IncrementalAlterConfigs sets or deletes just the named configs, which is what a
//! mirror that must not clobber the target's other settings needs.
//!
//! The request goes out on a private librdkafka queue of the admin client and the call blocks
//! until its answer (run it on a blocking thread).

// The second place hubmirror calls librdkafka directly (after `oauth`): rust-rdkafka has no
// wrapper for `rd_kafka_IncrementalAlterConfigs`.
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr, CString};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::types::RDKafkaErrorCode;

/// One change to a topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set `name` to `value`.
    Set(String, String),
    /// Delete the topic-level value of `name` (back to the broker's default).
    Delete(String),
}

impl ConfigOp {
    /// The config's name.
    pub fn name(&self) -> &str {
        match self {
            ConfigOp::Set(n, _) | ConfigOp::Delete(n) => n,
        }
    }
}

/// Why a topic's configs were not altered.
#[derive(Debug, thiserror::Error)]
#[error("{code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct AlterConfigsError {
    /// librdkafka's or the broker's error code (`UnsupportedFeature` when the broker does not
    /// offer IncrementalAlterConfigs at all).
    pub code: RDKafkaErrorCode,
    /// The broker's or librdkafka's message, if any.
    pub message: Option<String>,
}

impl AlterConfigsError {
    fn new(code: RDKafkaErrorCode, message: Option<String>) -> Self {
        AlterConfigsError { code, message }
    }
}

/// Applies `ops` to `topic` in one IncrementalAlterConfigs request; blocks for at most about
/// `timeout`.
pub fn incremental_alter_topic<C: ClientContext>(
    admin: &AdminClient<C>,
    topic: &str,
    ops: &[ConfigOp],
    timeout: Duration,
) -> Result<(), AlterConfigsError> {
    let invalid = |what: &str| {
        AlterConfigsError::new(
            RDKafkaErrorCode::InvalidArgument,
            Some(format!("{what} contains a NUL byte")),
        )
    };
    let name = CString::new(topic).map_err(|_| invalid("the topic name"))?;
    let ops: Vec<(
        CString,
        Option<CString>,
        rdsys::rd_kafka_AlterConfigOpType_t,
    )> = ops
        .iter()
        .map(|op| {
            let n = CString::new(op.name()).map_err(|_| invalid("a config name"))?;
            Ok(match op {
                ConfigOp::Set(_, v) => (
                    n,
                    Some(CString::new(v.as_str()).map_err(|_| invalid("a config value"))?),
                    rdsys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                ),
                ConfigOp::Delete(_) => (
                    n,
                    None,
                    rdsys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                ),
            })
        })
        .collect::<Result<_, AlterConfigsError>>()?;
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = admin.inner().native_ptr();

    // SAFETY: `rk` is the live client of `admin`, borrowed for the whole call. Every object
    // created here is owned by exactly one guard below, which destroys it once (queue, options,
    // resource, event); librdkafka copies the resource and options when the request is
    // enqueued, so destroying them after the call is allowed. Strings handed to librdkafka are
    // NUL-terminated `CString`s that outlive the calls reading them, and strings it returns
    // are read (copied) before the object owning them is destroyed.
    unsafe {
        let queue = Guard(rdsys::rd_kafka_queue_new(rk), |p| {
            rdsys::rd_kafka_queue_destroy(p)
        });
        let resource = Guard(
            rdsys::rd_kafka_ConfigResource_new(
                rdsys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            ),
            |p| rdsys::rd_kafka_ConfigResource_destroy(p),
        );
        if queue.0.is_null() || resource.0.is_null() {
            return Err(AlterConfigsError::new(RDKafkaErrorCode::Fail, None));
        }
        for (n, v, op) in &ops {
            let value = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
            let err = rdsys::rd_kafka_ConfigResource_add_incremental_config(
                resource.0,
                n.as_ptr(),
                *op,
                value,
            );
            if !err.is_null() {
                let code = RDKafkaErrorCode::from(rdsys::rd_kafka_error_code(err));
                let message = text(rdsys::rd_kafka_error_string(err));
                rdsys::rd_kafka_error_destroy(err);
                return Err(AlterConfigsError::new(code, message));
            }
        }
        let options = Guard(
            rdsys::rd_kafka_AdminOptions_new(
                rk,
                rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            ),
            |p| rdsys::rd_kafka_AdminOptions_destroy(p),
        );
        if options.0.is_null() {
            return Err(AlterConfigsError::new(RDKafkaErrorCode::Fail, None));
        }
        let mut errstr = [0 as c_char; 256];
        rdsys::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let mut resources = [resource.0];
        rdsys::rd_kafka_IncrementalAlterConfigs(rk, resources.as_mut_ptr(), 1, options.0, queue.0);
        // A little longer than the request's own timeout, which answers with an error event.
        let event = Guard(
            rdsys::rd_kafka_queue_poll(queue.0, timeout_ms.saturating_add(5_000)),
            |p| rdsys::rd_kafka_event_destroy(p),
        );
        if event.0.is_null() {
            return Err(AlterConfigsError::new(
                RDKafkaErrorCode::RequestTimedOut,
                None,
            ));
        }
        let err = rdsys::rd_kafka_event_error(event.0);
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = text(rdsys::rd_kafka_event_error_string(event.0));
            return Err(AlterConfigsError::new(RDKafkaErrorCode::from(err), message));
        }
        let result = rdsys::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
        if result.is_null() {
            return Err(AlterConfigsError::new(RDKafkaErrorCode::Fail, None));
        }
        let mut count = 0usize;
        let answered = rdsys::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *answered.add(i);
            let err = rdsys::rd_kafka_ConfigResource_error(r);
            if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let message = text(rdsys::rd_kafka_ConfigResource_error_string(r));
                return Err(AlterConfigsError::new(RDKafkaErrorCode::from(err), message));
            }
        }
        Ok(())
    }
}

/// Destroys a librdkafka object when dropped (a null pointer is left alone).
struct Guard<T>(*mut T, unsafe fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching librdkafka constructor, is owned by
            // this guard alone and is destroyed only here.
            unsafe { (self.1)(self.0) }
        }
    }
}

/// Copies a C string librdkafka returned (null or empty → `None`).
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for the duration of the call.
unsafe fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    (!s.is_empty()).then_some(s)
}
