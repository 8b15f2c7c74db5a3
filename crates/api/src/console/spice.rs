//! SPICE's link handshake, for the proxy's security step when the guest's owner
//! set no console password: each channel's client sends `SpiceLinkMess`, the
//! server answers with its RSA key, the client sends its ticket (the password
//! encrypted with RSA-OAEP/SHA-1). The proxy relays both messages and replaces
//! the client's ticket with one it made from the guest's random password.
//! spice-html5 opens one websocket per channel, so this runs once per channel.

use bytes::Bytes;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wsio::{WsError, WsIo};

const MAGIC: &[u8; 4] = b"REDQ";
/// The DER public key in `SpiceLinkReply` (1024-bit RSA).
const PUBKEY_BYTES: usize = 162;
const CAP_AUTH_SELECTION: u32 = 1 << 0;
/// The largest link message a client or server sends (caps only).
const MAX_LINK_BODY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SpiceError {
    #[error("SPICE: {0}")]
    Protocol(String),
    #[error("SPICE server i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ws(#[from] WsError),
}

/// A link message's header and body (`SpiceLinkHeader` + body).
fn parse_header(h: &[u8]) -> Result<usize, SpiceError> {
    if &h[..4] != MAGIC {
        return Err(SpiceError::Protocol("not a SPICE link message".into()));
    }
    let size = u32::from_le_bytes(h[12..16].try_into().unwrap_or_default()) as usize;
    if size > MAX_LINK_BODY {
        return Err(SpiceError::Protocol(format!(
            "link message of {size} bytes"
        )));
    }
    Ok(size)
}

/// The first common-caps word of a link message body whose caps start at
/// `caps_at` (relative to the body) after the count fields at `counts_at`.
fn common_caps(body: &[u8], counts_at: usize) -> u32 {
    let word = |at: usize| {
        body.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let (Some(n), Some(offset)) = (word(counts_at), word(counts_at + 8)) else {
        return 0;
    };
    if n == 0 {
        return 0;
    }
    word(offset as usize).unwrap_or(0)
}

/// Relays one channel's link handshake between the browser and the SPICE server,
/// putting `password`'s ticket in place of the browser's. Returns once the
/// server has the ticket (its verdict is relayed with the rest of the stream).
pub async fn link_with_password<S>(
    ws: &mut WsIo,
    server: &mut S,
    password: &str,
) -> Result<(), SpiceError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // client -> server: SpiceLinkMess
    let header = ws.read_exact(16).await?;
    let body = ws.read_exact(parse_header(&header)?).await?;
    // connection_id u32, channel_type u8, channel_id u8, then the caps counts
    let client_caps = common_caps(&body, 6);
    server.write_all(&header).await?;
    server.write_all(&body).await?;
    // server -> client: SpiceLinkReply
    let mut rh = [0u8; 16];
    server.read_exact(&mut rh).await?;
    let mut reply = vec![0u8; parse_header(&rh)?];
    server.read_exact(&mut reply).await?;
    ws.send(Bytes::copy_from_slice(&rh)).await?;
    ws.send(Bytes::copy_from_slice(&reply)).await?;
    let error = reply
        .get(..4)
        .map_or(1, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    if error != 0 || reply.len() < 4 + PUBKEY_BYTES {
        return Err(SpiceError::Protocol(format!(
            "link refused (error {error})"
        )));
    }
    let key = RsaPublicKey::from_public_key_der(&reply[4..4 + PUBKEY_BYTES])
        .map_err(|e| SpiceError::Protocol(format!("server key: {e}")))?;
    let server_caps = common_caps(&reply, 4 + PUBKEY_BYTES);
    // client -> server: [auth mechanism], ticket
    if client_caps & server_caps & CAP_AUTH_SELECTION != 0 {
        let mechanism = ws.read_exact(4).await?;
        server.write_all(&mechanism).await?;
    }
    let _browser_ticket = ws.read_exact(key_len(&key)).await?;
    let mut secret = password.as_bytes().to_vec();
    secret.push(0);
    let ticket = key
        .encrypt(&mut rand::thread_rng(), Oaep::new::<sha1::Sha1>(), &secret)
        .map_err(|e| SpiceError::Protocol(format!("ticket: {e}")))?;
    server.write_all(&ticket).await?;
    Ok(())
}

fn key_len(key: &RsaPublicKey) -> usize {
    use rsa::traits::PublicKeyParts;
    key.size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_read_where_the_counts_say() {
        // body: conn id, type, id, n_common=1, n_channel=0, caps_offset=18, caps
        let mut body = vec![0u8; 6];
        body.extend(1u32.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        body.extend(18u32.to_le_bytes());
        body.extend(0b1001u32.to_le_bytes());
        assert_eq!(common_caps(&body, 6), 0b1001);
        assert_eq!(common_caps(&body[..10], 6), 0);
    }

    #[test]
    fn headers_are_checked() {
        let mut h = b"REDQ".to_vec();
        h.extend(2u32.to_le_bytes());
        h.extend(2u32.to_le_bytes());
        h.extend(26u32.to_le_bytes());
        assert_eq!(parse_header(&h).unwrap(), 26);
        h[0] = b'X';
        assert!(parse_header(&h).is_err());
    }
}
