//! The metrics endpoint of `replab node`: Prometheus text over plain HTTP
//! on a loopback address (`node.metrics_addr`).
//!
//! HTTP/1.x, one request per connection: `GET /metrics` (or `/`) answers
//! 200 with the exposition, any other path 404, any other method 405, a
//! request that is too long or too slow is dropped. The endpoint has no
//! authentication, which is why the configuration accepts only loopback
//! addresses. A scrape asks the node's loop for its status with a
//! deadline, so a loop that is busy or stuck still gets its atomics
//! scraped (`replab_node_status_ok 0` says the rest is missing).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::NodeProbe;
use super::metrics::render;

/// A request head longer than this is not a scraper's.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the node's status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Parses and checks `node.metrics_addr`: `None` when empty (off).
pub fn parse_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr =
        text.trim().parse().map_err(|_| format!("{text:?} is not an IP:port address (e.g. \"127.0.0.1:9101\")"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address (127.0.0.0/8 or [::1]): the endpoint has no authentication"
        ));
    }
    Ok(Some(addr))
}

/// Serves scrapes until `cancel`.
pub async fn serve(listener: TcpListener, probe: NodeProbe, cancel: CancellationToken) {
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, from) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let probe = probe.clone();
        tracker.spawn(async move {
            if let Err(why) = answer(stream, &probe).await {
                debug!(%from, "metrics endpoint: {why}");
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn answer(mut stream: TcpStream, probe: &NodeProbe) -> Result<(), String> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| "the request head took too long".to_string())??;
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/metrics" | "/") => {
            let status = tokio::time::timeout(STATUS_TIMEOUT, probe.status()).await.ok().flatten();
            ("200 OK", render(probe.metrics(), status.as_ref(), &probe.network_stats()))
        }
        ("GET", _) => ("404 Not Found", "only /metrics is served here\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET is served here\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await.map_err(|e| e.to_string())?;
    stream.shutdown().await.map_err(|e| e.to_string())
}

/// The request line and headers, up to the blank line.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before the request ended".into());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > MAX_REQUEST_BYTES {
            return Err(format!("a request head above {MAX_REQUEST_BYTES} bytes"));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_must_be_empty_or_a_loopback_ip_and_port() {
        assert_eq!(parse_addr("").unwrap(), None);
        assert_eq!(parse_addr("127.0.0.1:9101").unwrap(), Some("127.0.0.1:9101".parse().unwrap()));
        assert!(parse_addr("[::1]:9101").unwrap().is_some());
        assert!(parse_addr("127.0.0.1").unwrap_err().contains("IP:port"));
        assert!(parse_addr("localhost:9101").unwrap_err().contains("IP:port"));
        assert!(parse_addr("0.0.0.0:9101").unwrap_err().contains("loopback"));
        assert!(parse_addr("10.1.2.3:9101").unwrap_err().contains("loopback"));
    }
}
