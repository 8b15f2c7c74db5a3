//! EC2's error dialect and answer envelope: `<Response><Errors><Error><Code/>
//! <Message/></Error></Errors><RequestID/></Response>` with AWS's status, or for
//! STS `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`; every
//! answer carries a `Date` header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An EC2 error on its way out.
pub struct Ec2Error {
    pub error: ferrostack_ec2::Error,
    pub request_id: String,
    /// Answer in STS's dialect (the request was `GetCallerIdentity`).
    pub sts: bool,
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// `Date: Mon, 07 Dec 2026 13:00:00 GMT` (RFC 7231).
pub fn date_header() -> HeaderValue {
    let now = ferrostack_core::time::now();
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let s = now.format(&fmt).unwrap_or_default();
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    h.insert(header::DATE, date_header());
    r
}

impl IntoResponse for Ec2Error {
    fn into_response(self) -> Response {
        let e = &self.error;
        if let Some(cause) = &e.internal {
            tracing::error!(error = %cause, code = %e.code, "EC2 request failed");
        }
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        if self.sts {
            // STS words authentication failures its own way (awsquery, 403).
            let (status, code) = match e.code.as_ref() {
                "AuthFailure" => (StatusCode::FORBIDDEN, "InvalidClientTokenId".to_string()),
                "UnauthorizedOperation" => (StatusCode::FORBIDDEN, "AccessDenied".to_string()),
                other => (status, other.to_string()),
            };
            let kind = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            return xml(
                status,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    escape(&code),
                    escape(&e.message),
                    escape(&self.request_id)
                ),
            );
        }
        xml(
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                escape(&e.code),
                escape(&e.message),
                escape(&self.request_id)
            ),
        )
    }
}

/// An action's answer: `<{Action}Response xmlns=…><requestId/>…members…</…>`
/// (STS: the members, then `<ResponseMetadata><RequestId/>`).
pub fn xml_response(
    action: &str,
    namespace: &str,
    request_id: &str,
    sts: bool,
    reply: &ferrostack_ec2::Reply,
) -> Result<Response, quick_xml::SeError> {
    // One buffer: the envelope's start, then the members serialized in place
    // (quick-xml wraps them in a root element, replaced here), then its end.
    let mut body = String::with_capacity(16 * 1024);
    body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    body.push_str(action);
    body.push_str("Response xmlns=\"");
    body.push_str(namespace);
    body.push_str("\">");
    if !sts {
        body.push_str("<requestId>");
        body.push_str(&escape(request_id));
        body.push_str("</requestId>");
    }
    let start = body.len();
    quick_xml::se::to_writer_with_root(&mut body, "r", reply)?;
    if body[start..].starts_with("<r/>") {
        body.truncate(start);
    } else {
        body.replace_range(start..start + 3, "");
        let end = body.len() - "</r>".len();
        body.truncate(end);
    }
    if sts {
        body.push_str("<ResponseMetadata><RequestId>");
        body.push_str(&escape(request_id));
        body.push_str("</RequestId></ResponseMetadata>");
    }
    body.push_str("</");
    body.push_str(action);
    body.push_str("Response>");
    Ok(xml(StatusCode::OK, body))
}
