//! ACL bindings on the broker, through librdkafka's Admin API: create, describe, delete.
//!
//! rust-rdkafka 0.39 has no ACL calls, so this module calls librdkafka's `rd_kafka_CreateAcls`,
//! `rd_kafka_DescribeAcls` and `rd_kafka_DeleteAcls` through its re-exported bindings. It is the
//! only module of the crate with `unsafe` code, kept to the calls and to the guards that free
//! what librdkafka allocated; every request is synchronous (a private queue polled until its one
//! result arrives), so run it off the async executor.

#![allow(unsafe_code)]

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kafka::acls::{self, AclBinding, Comparison, Operation, Pattern, Permission, Resource};
use crate::kafka::client_config;
use crate::kafka::client_properties::ClientProperties;
use crate::kafka::connection::{self, Connected};
use crate::kafka::topics::CONNECT_PATIENCE;
use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use std::ffi::{CStr, CString, c_char};
use std::time::{Duration, Instant};

/// How long one ACL request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long bindings just created may take to show in a broker's answers.
const PROPAGATION: Duration = Duration::from_secs(15);

/// What `iocflow acls --apply` did.
#[derive(Debug)]
pub struct Applied {
    /// Bindings of the plan that were missing and are now created.
    pub created: Vec<AclBinding>,
    /// The broker's bindings compared with the plan afterwards.
    pub comparison: Comparison,
}

/// Connects as the admin identity (`--admin FILE`).
fn connect_as_admin(config: &Config, admin: &ClientProperties) -> Result<Connected> {
    connection::connect(&client_config::admin_identity(config, admin), CONNECT_PATIENCE)
}

/// Creates the plan's bindings that the broker does not hold yet, as the admin identity, and
/// compares again. Idempotent. Blocking.
pub fn apply(config: &Config, admin: &ClientProperties) -> Result<Applied> {
    let client = connect_as_admin(config, admin)?;
    let missing = acls::compare(config, &describe(client.client(), REQUEST_TIMEOUT)?).missing;
    create(client.client(), &missing, REQUEST_TIMEOUT)?;
    // The controller has committed them; a broker's answer may lag its metadata a moment.
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let comparison = acls::compare(config, &describe(client.client(), REQUEST_TIMEOUT)?);
        if comparison.missing.is_empty() {
            return Ok(Applied { created: missing, comparison });
        }
        if Instant::now() >= deadline {
            let still: Vec<String> = comparison.missing.iter().map(ToString::to_string).collect();
            return Err(Error::Acls(format!(
                "the broker accepted, yet {PROPAGATION:?} later does not hold: {}",
                still.join("; ")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Compares the broker's bindings with the plan, as the admin identity. Blocking.
pub fn check(config: &Config, admin: &ClientProperties) -> Result<Comparison> {
    let client = connect_as_admin(config, admin)?;
    Ok(acls::compare(config, &describe(client.client(), REQUEST_TIMEOUT)?))
}

/// Creates the bindings (creating one that exists already is not an error: Kafka keeps one).
pub fn create<C: ClientContext>(client: &Client<C>, bindings: &[AclBinding], timeout: Duration) -> Result<()> {
    if bindings.is_empty() {
        return Ok(());
    }
    let mut native = NativeBindings::new(bindings, false)?;
    let event = request(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS, timeout, |rk, opts, q| {
        // SAFETY: the bindings, options and queue are live; librdkafka copies the bindings.
        unsafe { rd::rd_kafka_CreateAcls(rk, native.0.as_mut_ptr(), native.0.len(), opts, q) }
    })?;
    // SAFETY: the event is a CreateAcls result (the request above); the results live as long as it.
    let results = unsafe {
        let result = rd::rd_kafka_event_CreateAcls_result(event.0);
        let mut n = 0;
        let array = rd::rd_kafka_CreateAcls_result_acls(result, &mut n);
        slice(array, n).iter().map(|r| error_of(rd::rd_kafka_acl_result_error(*r))).collect::<Vec<_>>()
    };
    let failed: Vec<String> =
        bindings.iter().zip(results).filter_map(|(b, r)| r.map(|(code, why)| format!("{b}: {code} ({why})"))).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Acls(format!("the broker refused {} binding(s): {}", failed.len(), failed.join("; "))))
    }
}

/// Every binding the broker holds (any principal, resource, operation or permission).
pub fn describe<C: ClientContext>(client: &Client<C>, timeout: Duration) -> Result<Vec<AclBinding>> {
    let filter = NativeBindings::any()?;
    let event = request(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS, timeout, |rk, opts, q| {
        // SAFETY: the filter, options and queue are live; librdkafka copies the filter.
        unsafe { rd::rd_kafka_DescribeAcls(rk, filter.0[0], opts, q) }
    })?;
    // SAFETY: the event is a DescribeAcls result; its bindings live as long as it.
    unsafe {
        let result = rd::rd_kafka_event_DescribeAcls_result(event.0);
        let mut n = 0;
        let array = rd::rd_kafka_DescribeAcls_result_acls(result, &mut n);
        Ok(slice(array, n).iter().filter_map(|b| binding_of(*b)).collect())
    }
}

/// Deletes exactly these bindings; returns how many the broker held and deleted.
pub fn delete<C: ClientContext>(client: &Client<C>, bindings: &[AclBinding], timeout: Duration) -> Result<usize> {
    if bindings.is_empty() {
        return Ok(0);
    }
    let mut filters = NativeBindings::new(bindings, true)?;
    let event = request(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS, timeout, |rk, opts, q| {
        // SAFETY: the filters, options and queue are live; librdkafka copies the filters.
        unsafe { rd::rd_kafka_DeleteAcls(rk, filters.0.as_mut_ptr(), filters.0.len(), opts, q) }
    })?;
    // SAFETY: the event is a DeleteAcls result; its responses live as long as it.
    unsafe {
        let result = rd::rd_kafka_event_DeleteAcls_result(event.0);
        let mut n = 0;
        let responses = rd::rd_kafka_DeleteAcls_result_responses(result, &mut n);
        let mut deleted = 0;
        for r in slice(responses, n) {
            if let Some((code, why)) = error_of(rd::rd_kafka_DeleteAcls_result_response_error(*r)) {
                return Err(Error::Acls(format!("deleting bindings: {code} ({why})")));
            }
            let mut matched = 0;
            rd::rd_kafka_DeleteAcls_result_response_matching_acls(*r, &mut matched);
            deleted += matched;
        }
        Ok(deleted)
    }
}

/// An admin request on a private queue: sends it, waits for its one result event, and turns a
/// request-level error into an [`Error`].
fn request<C: ClientContext>(
    client: &Client<C>,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    send: impl FnOnce(*mut rd::rd_kafka_t, *const rd::rd_kafka_AdminOptions_t, *mut rd::rd_kafka_queue_t),
) -> Result<Event> {
    let rk = client.native_ptr();
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `rk` is the live client handle; each object is freed by its guard.
    unsafe {
        let queue = Queue(rd::rd_kafka_queue_new(rk));
        let options = Options(rd::rd_kafka_AdminOptions_new(rk, op));
        let mut err = [0 as c_char; 512];
        let code = rd::rd_kafka_AdminOptions_set_request_timeout(options.0, ms, err.as_mut_ptr(), err.len());
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(Error::Acls(CStr::from_ptr(err.as_ptr()).to_string_lossy().into_owned()));
        }
        send(rk, options.0, queue.0);
        let event = rd::rd_kafka_queue_poll(queue.0, ms.saturating_add(5_000));
        if event.is_null() {
            return Err(Error::Acls(format!("the broker did not answer an ACL request within {timeout:?}")));
        }
        let event = Event(event);
        let code = rd::rd_kafka_event_error(event.0);
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let why = CStr::from_ptr(rd::rd_kafka_event_error_string(event.0)).to_string_lossy();
            return Err(Error::Acls(format!("{}: {why}", RDKafkaErrorCode::from(code))));
        }
        Ok(event)
    }
}

/// A librdkafka array of `n` items as a slice (empty when null).
///
/// # Safety
/// `array` must point to `n` items that outlive the slice.
unsafe fn slice<'a, T>(array: *mut T, n: usize) -> &'a [T] {
    if array.is_null() || n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(array, n) } }
}

/// The code and message of a librdkafka error object, `None` for no error.
///
/// # Safety
/// `error` must be null or a live error object.
unsafe fn error_of(error: *const rd::rd_kafka_error_t) -> Option<(RDKafkaErrorCode, String)> {
    if error.is_null() {
        return None;
    }
    unsafe {
        let code = RDKafkaErrorCode::from(rd::rd_kafka_error_code(error));
        Some((code, CStr::from_ptr(rd::rd_kafka_error_string(error)).to_string_lossy().into_owned()))
    }
}

/// A binding read back from librdkafka; `None` for kinds iocflow does not plan (delegation
/// tokens, users), which no principal of a config can use to reach its topics.
///
/// # Safety
/// `b` must be a live binding.
unsafe fn binding_of(b: *const rd::rd_kafka_AclBinding_t) -> Option<AclBinding> {
    use rd::rd_kafka_AclOperation_t as Op;
    use rd::rd_kafka_ResourcePatternType_t as Pt;
    use rd::rd_kafka_ResourceType_t as Rt;
    let text = |p: *const c_char| {
        if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() }
    };
    unsafe {
        let resource = match rd::rd_kafka_AclBinding_restype(b) {
            Rt::RD_KAFKA_RESOURCE_TOPIC => Resource::Topic,
            Rt::RD_KAFKA_RESOURCE_GROUP => Resource::Group,
            Rt::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID => Resource::TransactionalId,
            Rt::RD_KAFKA_RESOURCE_BROKER => Resource::Cluster,
            _ => return None,
        };
        let pattern = match rd::rd_kafka_AclBinding_resource_pattern_type(b) {
            Pt::RD_KAFKA_RESOURCE_PATTERN_LITERAL => Pattern::Literal,
            Pt::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => Pattern::Prefixed,
            _ => return None,
        };
        let operation = match rd::rd_kafka_AclBinding_operation(b) {
            Op::RD_KAFKA_ACL_OPERATION_ALL => Operation::All,
            Op::RD_KAFKA_ACL_OPERATION_READ => Operation::Read,
            Op::RD_KAFKA_ACL_OPERATION_WRITE => Operation::Write,
            Op::RD_KAFKA_ACL_OPERATION_CREATE => Operation::Create,
            Op::RD_KAFKA_ACL_OPERATION_DELETE => Operation::Delete,
            Op::RD_KAFKA_ACL_OPERATION_ALTER => Operation::Alter,
            Op::RD_KAFKA_ACL_OPERATION_DESCRIBE => Operation::Describe,
            Op::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION => Operation::ClusterAction,
            Op::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS => Operation::DescribeConfigs,
            Op::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS => Operation::AlterConfigs,
            Op::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE => Operation::IdempotentWrite,
            _ => return None,
        };
        let permission = match rd::rd_kafka_AclBinding_permission_type(b) {
            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => Permission::Allow,
            rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => Permission::Deny,
            _ => return None,
        };
        Some(AclBinding {
            principal: text(rd::rd_kafka_AclBinding_principal(b)),
            permission,
            operation,
            resource,
            name: text(rd::rd_kafka_AclBinding_name(b)),
            pattern,
            host: text(rd::rd_kafka_AclBinding_host(b)),
        })
    }
}

/// Bindings (or binding filters) built by librdkafka, destroyed on drop.
struct NativeBindings(Vec<*mut rd::rd_kafka_AclBinding_t>);

impl NativeBindings {
    /// `bindings` as librdkafka bindings, or as filters that match exactly them (`as_filters`).
    fn new(bindings: &[AclBinding], as_filters: bool) -> Result<NativeBindings> {
        let mut out = NativeBindings(Vec::with_capacity(bindings.len()));
        for b in bindings {
            let c = |s: &str| CString::new(s).map_err(|_| Error::Acls(format!("{b}: a name holds a NUL byte")));
            let (name, principal, host) = (c(&b.name)?, c(&b.principal)?, c(&b.host)?);
            let (restype, pattern, operation, permission) = native_kinds(b);
            let mut err = [0 as c_char; 512];
            // SAFETY: every string is a live NUL-terminated copy; `err` is writable.
            let ptr = unsafe {
                let new = if as_filters { rd::rd_kafka_AclBindingFilter_new } else { rd::rd_kafka_AclBinding_new };
                new(
                    restype,
                    name.as_ptr(),
                    pattern,
                    principal.as_ptr(),
                    host.as_ptr(),
                    operation,
                    permission,
                    err.as_mut_ptr(),
                    err.len(),
                )
            };
            if ptr.is_null() {
                // SAFETY: librdkafka wrote a NUL-terminated message into `err`.
                let why = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
                return Err(Error::Acls(format!("{b}: {why}")));
            }
            out.0.push(ptr);
        }
        Ok(out)
    }

    /// A filter that matches every binding.
    fn any() -> Result<NativeBindings> {
        let mut err = [0 as c_char; 512];
        // SAFETY: null names match any; `err` is writable.
        let ptr = unsafe {
            rd::rd_kafka_AclBindingFilter_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY,
                std::ptr::null(),
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
                std::ptr::null(),
                std::ptr::null(),
                rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if ptr.is_null() {
            // SAFETY: librdkafka wrote a NUL-terminated message into `err`.
            let why = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
            return Err(Error::Acls(why));
        }
        Ok(NativeBindings(vec![ptr]))
    }
}

impl Drop for NativeBindings {
    fn drop(&mut self) {
        for b in &self.0 {
            // SAFETY: each pointer came from librdkafka's constructor and is freed once.
            unsafe { rd::rd_kafka_AclBinding_destroy(*b) };
        }
    }
}

fn native_kinds(
    b: &AclBinding,
) -> (
    rd::rd_kafka_ResourceType_t,
    rd::rd_kafka_ResourcePatternType_t,
    rd::rd_kafka_AclOperation_t,
    rd::rd_kafka_AclPermissionType_t,
) {
    use rd::rd_kafka_AclOperation_t as Op;
    let restype = match b.resource {
        Resource::Topic => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
        Resource::Group => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
        Resource::TransactionalId => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
        Resource::Cluster => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
    };
    let pattern = match b.pattern {
        Pattern::Literal => rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        Pattern::Prefixed => rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
    };
    let operation = match b.operation {
        Operation::All => Op::RD_KAFKA_ACL_OPERATION_ALL,
        Operation::Read => Op::RD_KAFKA_ACL_OPERATION_READ,
        Operation::Write => Op::RD_KAFKA_ACL_OPERATION_WRITE,
        Operation::Create => Op::RD_KAFKA_ACL_OPERATION_CREATE,
        Operation::Delete => Op::RD_KAFKA_ACL_OPERATION_DELETE,
        Operation::Alter => Op::RD_KAFKA_ACL_OPERATION_ALTER,
        Operation::Describe => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE,
        Operation::ClusterAction => Op::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        Operation::DescribeConfigs => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        Operation::AlterConfigs => Op::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        Operation::IdempotentWrite => Op::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
    };
    let permission = match b.permission {
        Permission::Allow => rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        Permission::Deny => rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
    };
    (restype, pattern, operation, permission)
}

struct Queue(*mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, freed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new, freed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: returned by rd_kafka_queue_poll, freed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}
