//! Prototype: kubevents' OTLP encode stage (`sinks/otlp_encode.py`,
//! `encode_logs_bytes`) as a compiled extension, to measure what a native
//! stage would gain. Not used by kubevents; `bench/prototypes/README.md` says
//! how it is built and measured.
//!
//! It writes the same bytes as `encode_logs_bytes`: one `ResourceLogs` per
//! namespace in first-seen order, one `ScopeLogs` each, fields in field-number
//! order, proto3 defaults left out. Values it cannot write (an int outside
//! int64, a type other than str/int/bool/float/list of str, a string with a
//! lone surrogate) raise `ValueError`, where the Python code falls back to
//! protobuf's builder.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited field whose payload `body` writes.
fn field(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>) -> PyResult<()>) -> PyResult<()> {
    out.push(tag);
    // Reserve one length byte; move the payload if it needs more.
    let at = out.len();
    out.push(0);
    body(out)?;
    let n = out.len() - at - 1;
    if n < 0x80 {
        out[at] = n as u8;
    } else {
        let mut len = Vec::with_capacity(4);
        varint(&mut len, n as u64);
        out.splice(at..at + 1, len);
    }
    Ok(())
}

fn bytes_field(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    s.to_str().map_err(|_| PyValueError::new_err("a string is not encodable as UTF-8"))
}

fn any_value(out: &mut Vec<u8>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    // Exact types first, as the Python encoder: bool is a subclass of int.
    if let Ok(s) = value.downcast_exact::<PyString>() {
        bytes_field(out, 0x0a, utf8(s)?.as_bytes());
    } else if value.is_exact_instance_of::<PyBool>() {
        out.extend_from_slice(if value.is_truthy()? { b"\x10\x01" } else { b"\x10\x00" });
    } else if value.is_exact_instance_of::<PyInt>() {
        let n: i64 = value.extract().map_err(|_| PyValueError::new_err("int outside int64"))?;
        out.push(0x18);
        varint(out, n as u64);
    } else if let Ok(f) = value.downcast_exact::<PyFloat>() {
        out.push(0x21);
        out.extend_from_slice(&f.value().to_le_bytes());
    } else if let Ok(list) = value.downcast_exact::<PyList>() {
        field(out, 0x2a, |out| {
            for item in list.iter() {
                let s = item
                    .downcast_exact::<PyString>()
                    .map_err(|_| PyValueError::new_err("a list of something else than str"))?;
                let data = utf8(s)?.as_bytes();
                field(out, 0x0a, |out| {
                    bytes_field(out, 0x0a, data);
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    } else {
        return Err(PyValueError::new_err("unsupported attribute value"));
    }
    Ok(())
}

fn attributes(out: &mut Vec<u8>, tag: u8, attrs: &Bound<'_, PyDict>) -> PyResult<()> {
    for (key, value) in attrs.iter() {
        let key = key.downcast_into::<PyString>()?;
        let key = utf8(&key)?.as_bytes();
        field(out, tag, |out| {
            if !key.is_empty() {
                bytes_field(out, 0x0a, key);
            }
            field(out, 0x12, |out| any_value(out, &value))
        })?;
    }
    Ok(())
}

struct Names {
    timestamp_ns: Py<PyString>,
    observed_ns: Py<PyString>,
    severity_number: Py<PyString>,
    severity_text: Py<PyString>,
    event_name: Py<PyString>,
    body: Py<PyString>,
    namespace: Py<PyString>,
    attributes: Py<PyString>,
}

fn log_record(out: &mut Vec<u8>, record: &Bound<'_, PyAny>, n: &Names) -> PyResult<()> {
    let py = record.py();
    let time: u64 = record.getattr(n.timestamp_ns.bind(py))?.extract()?;
    let observed: u64 = record.getattr(n.observed_ns.bind(py))?.extract()?;
    let severity: i64 = record.getattr(n.severity_number.bind(py))?.extract()?;
    let severity_text = record.getattr(n.severity_text.bind(py))?;
    let event_name = record.getattr(n.event_name.bind(py))?;
    let body = record.getattr(n.body.bind(py))?;
    let attrs = record.getattr(n.attributes.bind(py))?;
    field(out, 0x12, |out| {
        if time != 0 {
            out.push(0x09);
            out.extend_from_slice(&time.to_le_bytes());
        }
        if severity != 0 {
            if severity < 0 {
                return Err(PyValueError::new_err("negative severity"));
            }
            out.push(0x10);
            varint(out, severity as u64);
        }
        let text = utf8(severity_text.downcast::<PyString>()?)?;
        if !text.is_empty() {
            bytes_field(out, 0x1a, text.as_bytes());
        }
        let body = utf8(body.downcast::<PyString>()?)?.as_bytes();
        field(out, 0x2a, |out| {
            bytes_field(out, 0x0a, body);
            Ok(())
        })?;
        attributes(out, 0x32, attrs.downcast::<PyDict>()?)?;
        if observed != 0 {
            out.push(0x59);
            out.extend_from_slice(&observed.to_le_bytes());
        }
        let name = utf8(event_name.downcast::<PyString>()?)?;
        if !name.is_empty() {
            bytes_field(out, 0x62, name.as_bytes());
        }
        Ok(())
    })
}

/// encode_logs_bytes(records, resource_attributes, scope_name, scope_version) -> bytes
///
/// `resource_attributes(namespace)` is `ResourceInfo.attributes`.
#[pyfunction]
fn encode_logs_bytes<'py>(
    py: Python<'py>,
    records: &Bound<'py, PyAny>,
    resource_attributes: &Bound<'py, PyAny>,
    scope_name: &str,
    scope_version: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let n = Names {
        timestamp_ns: PyString::intern(py, "timestamp_ns").unbind(),
        observed_ns: PyString::intern(py, "observed_ns").unbind(),
        severity_number: PyString::intern(py, "severity_number").unbind(),
        severity_text: PyString::intern(py, "severity_text").unbind(),
        event_name: PyString::intern(py, "event_name").unbind(),
        body: PyString::intern(py, "body").unbind(),
        namespace: PyString::intern(py, "namespace").unbind(),
        attributes: PyString::intern(py, "attributes").unbind(),
    };
    // Namespaces in first-seen order, records in export order.
    let mut order: Vec<String> = Vec::new();
    let mut groups: std::collections::HashMap<String, Vec<Bound<'py, PyAny>>> = Default::default();
    for record in records.try_iter()? {
        let record = record?;
        let ns: String = record.getattr(n.namespace.bind(py))?.extract()?;
        groups
            .entry(ns.clone())
            .or_insert_with(|| {
                order.push(ns);
                Vec::new()
            })
            .push(record);
    }
    let mut scope = Vec::new();
    field(&mut scope, 0x0a, |out| {
        bytes_field(out, 0x0a, scope_name.as_bytes());
        if !scope_version.is_empty() {
            bytes_field(out, 0x12, scope_version.as_bytes());
        }
        Ok(())
    })?;
    let mut out = Vec::with_capacity(1024);
    for ns in &order {
        let attrs = resource_attributes.call1((ns.as_str(),))?;
        let attrs = attrs.downcast::<PyDict>()?;
        field(&mut out, 0x0a, |out| {
            field(out, 0x0a, |out| attributes(out, 0x0a, attrs))?;
            field(out, 0x12, |out| {
                out.extend_from_slice(&scope);
                for record in &groups[ns] {
                    log_record(out, record, &n)?;
                }
                Ok(())
            })
        })?;
    }
    Ok(PyBytes::new(py, &out))
}

#[pymodule]
fn kubevents_encode_proto(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_logs_bytes, m)?)
}
