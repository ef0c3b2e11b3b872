//! A real actix-web server on a free loopback port, on a thread of its own
//! (actix runs its own runtime), stopped when dropped.

use std::net::SocketAddr;
use std::sync::mpsc;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use tracing_osprofiler::actix::{MakeRootSpan, ProfilingMiddleware};

/// A running actix-web server; stopped (not gracefully) on drop.
pub struct ActixServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl ActixServer {
    /// Serves the `routes` behind `middleware` with two workers.
    pub fn start<M, R>(middleware: ProfilingMiddleware<M>, routes: R) -> ActixServer
    where
        M: MakeRootSpan + Clone + Send + 'static,
        R: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(middleware.clone())
                        .configure(routes.clone())
                })
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind a loopback port");
                let addr = server.addrs()[0];
                let server = server.run();
                sender
                    .send((addr, server.handle()))
                    .expect("the test waits");
                let _ = server.await;
            });
        });
        let (addr, handle) = receiver.recv().expect("the server started");
        ActixServer { addr, handle }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ActixServer {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for it.
        drop(self.handle.stop(false));
    }
}
