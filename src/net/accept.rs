//! The accept loop both ports share: one task per connection, tracked so
//! that shutdown waits for them, and an accept error (out of file
//! descriptors, say) never stops the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use replab_api::NodeId;

pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    node: NodeId,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                tracker.spawn(serve(stream, addr));
            }
            // Keep serving the connections we have; try again shortly.
            Err(e) => {
                warn!(node, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
