//! The tower middleware on a tonic gRPC server over loopback: the token
//! travels as gRPC metadata (HTTP/2 headers), the call is profiled, and a
//! call without it writes nothing. No protobuf: the messages are empty and
//! the codec is written here.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http as http_support;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_support::{global, new_token, only, tree, KEY};
use tonic::body::BoxBody;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::HmacKeys;

/// Encodes and decodes the empty message.
#[derive(Default)]
struct EmptyCodec;

impl Codec for EmptyCodec {
    type Encode = ();
    type Decode = ();
    type Encoder = EmptyCodec;
    type Decoder = EmptyCodec;

    fn encoder(&mut self) -> EmptyCodec {
        EmptyCodec
    }

    fn decoder(&mut self) -> EmptyCodec {
        EmptyCodec
    }
}

impl Encoder for EmptyCodec {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, (): (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for EmptyCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, _: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        Ok(Some(()))
    }
}

#[tracing::instrument]
async fn grpc_work() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

struct PingMethod;

impl UnaryService<()> for PingMethod {
    type Response = ();
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<()>, Status>> + Send>>;

    fn call(&mut self, _request: tonic::Request<()>) -> Self::Future {
        Box::pin(async {
            grpc_work().await;
            Ok(tonic::Response::new(()))
        })
    }
}

/// A hand-written gRPC service `test.Ping` with one unary method.
#[derive(Clone)]
struct Ping;

impl NamedService for Ping {
    const NAME: &'static str = "test.Ping";
}

impl tower::Service<http::Request<BoxBody>> for Ping {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
        Box::pin(async move { Ok(Grpc::new(EmptyCodec).unary(PingMethod, request).await) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_server_profiles_a_call_with_token_metadata() {
    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY));
    let stats = layer.stats();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
        .expect("incoming");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(Ping)
            .serve_with_incoming(incoming),
    );

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = tonic::client::Grpc::new(channel);
    let (base, token) = new_token();
    for profiled in [true, false] {
        let mut request = tonic::Request::new(());
        if profiled {
            for (name, value) in token.iter() {
                let key: MetadataKey<_> = name.to_ascii_lowercase().parse().expect("key");
                let value: MetadataValue<_> = value.parse().expect("value");
                request.metadata_mut().insert(key, value);
            }
        }
        client.ready().await.expect("ready");
        client
            .unary(
                request,
                "/test.Ping/Ping".parse().expect("path"),
                EmptyCodec,
            )
            .await
            .expect("the call succeeds either way");
    }
    drop(client);
    server.abort();

    let all = lines.lines();
    let points = tree(&all, base, base);
    let root = only(&points, "wsgi");
    assert_eq!(only(&points, "grpc_work").parent_id, root.trace_id);
    assert_eq!(
        all.len(),
        4,
        "the call without metadata wrote nothing: {all:#?}"
    );
    assert_eq!(
        (stats.requests_profiled(), stats.requests_without_token()),
        (1, 1)
    );
}
