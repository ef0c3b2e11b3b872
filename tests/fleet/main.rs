//! A fleet: Rust and Python services profiled together, their points sent
//! as OTLP spans to one collector (the `otlp` sink), checked as whole
//! traces; and the sink under a collector that is down, slow, failing or
//! answering garbage.
//!
//! | module | what |
//! |---|---|
//! | `otlp` | Rust services to an in-process collector: ids, names, kinds, attributes, parents, times, both sinks at once |
//! | `otlp_python` | the real Python osprofiler with its own `otlp` driver, downstream of a Rust service and calling one |
//! | `otlp_faults` | collector down, 503 then back, slow, garbage, partial success; 10 000 spans through a flapping collector |
//! | `otlp_bounds` | 512 KiB fields to a silent collector: the queue held to its byte limit (process memory measured); field values cut at the layer's cap |
//! | `otlp_retries` | a slow collector gets each batch once (unconfirmed, not failed); retried timeouts back off; retries bounded by time |
//! | `otlp_tls` | https to a collector signed by a fleet's own CA: trusted with `with_ca_file`, refused without it |
//! | `receiver` | `examples/otlp_receiver.rs`, the built binary, fed by the sink (protobuf, gzip) and by hand (JSON): each trace printed as a tree |
//! | `traceparent` | the opt-in W3C `traceparent` header on outgoing calls; an incoming one never starts profiling |
#![cfg(all(feature = "otlp", feature = "tower", feature = "reqwest"))]

#[path = "../support/mod.rs"]
mod support;

mod capture;
mod otlp;
mod otlp_bounds;
mod otlp_faults;
mod otlp_python;
mod otlp_retries;
mod otlp_tls;
mod receiver;
mod traceparent;
