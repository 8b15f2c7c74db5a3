//! VNC's RFB handshake, for the proxy's security step: ferrostack answers QEMU's
//! VNC authentication with the guest's console password and offers the browser
//! security type None (Nova's RFB security proxy does the same with VeNCrypt),
//! so a guest whose owner set no password is still never open to whoever
//! reaches its socket.

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wsio::{WsError, WsIo};

const VERSION_38: &[u8; 12] = b"RFB 003.008\n";
const SEC_NONE: u8 = 1;
const SEC_VNC: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RfbError {
    #[error("the VNC server: {0}")]
    Server(String),
    #[error("the VNC client: {0}")]
    Client(String),
    #[error("VNC server i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ws(#[from] WsError),
}

/// VNC authentication's response: the challenge DES-encrypted with the password
/// (its first 8 bytes, zero padded) as the key, each key byte's bits reversed.
pub fn vnc_auth_response(password: &str, challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.bytes()) {
        *k = b.reverse_bits();
    }
    let cipher = Des::new(GenericArray::from_slice(&key));
    let mut out = *challenge;
    for chunk in out.chunks_exact_mut(8) {
        cipher.encrypt_block(GenericArray::from_mut_slice(chunk));
    }
    out
}

/// Logs in to the VNC server (QEMU) with `password`, up to the point where the
/// server waits for ClientInit.
pub async fn login_server<S>(server: &mut S, password: &str) -> Result<(), RfbError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut version = [0u8; 12];
    server.read_exact(&mut version).await?;
    if !version.starts_with(b"RFB 003.") {
        return Err(RfbError::Server("not an RFB server".into()));
    }
    server.write_all(VERSION_38).await?;
    let n = server.read_u8().await?;
    if n == 0 {
        return Err(RfbError::Server(read_reason(server).await));
    }
    let mut types = vec![0u8; usize::from(n)];
    server.read_exact(&mut types).await?;
    if types.contains(&SEC_VNC) {
        server.write_u8(SEC_VNC).await?;
        let mut challenge = [0u8; 16];
        server.read_exact(&mut challenge).await?;
        server
            .write_all(&vnc_auth_response(password, &challenge))
            .await?;
    } else if types.contains(&SEC_NONE) {
        // a console with no password at all: refuse rather than relay it
        return Err(RfbError::Server(
            "the console asks for no password; refused".into(),
        ));
    } else {
        return Err(RfbError::Server(format!(
            "no security type ferrostack speaks in {types:?}"
        )));
    }
    if server.read_u32().await? != 0 {
        return Err(RfbError::Server(format!(
            "authentication failed: {}",
            read_reason(server).await
        )));
    }
    Ok(())
}

/// The browser's side: security type None (RFB 3.3, 3.7 and 3.8 clients).
pub async fn greet_client(ws: &mut WsIo) -> Result<(), RfbError> {
    ws.send(&VERSION_38[..]).await?;
    let v = ws.read_exact(12).await?;
    let minor: u32 = std::str::from_utf8(&v[8..11])
        .ok()
        .and_then(|m| m.parse().ok())
        .filter(|_| v.starts_with(b"RFB 003."))
        .ok_or_else(|| RfbError::Client("not an RFB client".into()))?;
    if minor < 7 {
        // 3.3: the server decides the type
        ws.send(1u32.to_be_bytes().to_vec()).await?;
        return Ok(());
    }
    ws.send(vec![1u8, SEC_NONE]).await?;
    let choice = ws.read_exact(1).await?;
    if choice[0] != SEC_NONE {
        return Err(RfbError::Client(format!(
            "chose security type {}",
            choice[0]
        )));
    }
    if minor >= 8 {
        ws.send(0u32.to_be_bytes().to_vec()).await?;
    }
    Ok(())
}

async fn read_reason<S: AsyncRead + Unpin>(server: &mut S) -> String {
    let Ok(n) = server.read_u32().await else {
        return "(no reason given)".into();
    };
    let mut buf = vec![0u8; n.min(1024) as usize];
    if server.read_exact(&mut buf).await.is_err() {
        return "(no reason given)".into();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_response_matches_openssl() {
        // openssl enc -des-ecb -K 0e86ceceeef64e26 (= "password", each byte's
        // bits reversed) -nopad of the bytes 00..0f
        let challenge: [u8; 16] = std::array::from_fn(|i| i as u8);
        let want = [
            0xb8, 0x66, 0x92, 0x41, 0x25, 0xc8, 0xee, 0xbb, 0x9d, 0xeb, 0xc1, 0xdb, 0x61, 0xc5,
            0x38, 0xe2,
        ];
        assert_eq!(vnc_auth_response("password", &challenge), want);
        // VNC uses only the first 8 bytes of a password
        assert_eq!(vnc_auth_response("passwordXYZ", &challenge), want);
        assert_ne!(vnc_auth_response("passwore", &challenge), want);
    }
}
