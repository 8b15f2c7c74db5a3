//! A browser's websocket as a byte stream for the console handshakes: reads
//! exact byte counts across message boundaries (spice-html5 and noVNC frame
//! their messages as they like), writes one binary message per protocol message
//! (tempest's RFB check reads one frame per message).

use axum::extract::ws::{Message, WebSocket};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("the browser closed the console")]
    Closed,
    #[error("websocket: {0}")]
    Ws(#[from] axum::Error),
}

pub struct WsIo {
    ws: WebSocket,
    /// Bytes received and not yet consumed.
    buf: BytesMut,
}

impl WsIo {
    pub fn new(ws: WebSocket) -> WsIo {
        WsIo {
            ws,
            buf: BytesMut::new(),
        }
    }

    /// The next `n` bytes from the browser.
    pub async fn read_exact(&mut self, n: usize) -> Result<Bytes, WsError> {
        while self.buf.len() < n {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Err(WsError::Closed),
                Some(Err(e)) => return Err(WsError::Ws(e)),
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    pub async fn send(&mut self, bytes: impl Into<Bytes>) -> Result<(), WsError> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// The websocket and whatever was read past the handshake (to forward first).
    pub fn into_parts(mut self) -> (WebSocket, Bytes) {
        let rest = self.buf.split().freeze();
        (self.ws, rest)
    }
}
