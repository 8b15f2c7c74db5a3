//! `/v2/images/{id}/file`: upload (204) and download (200, or 206 for a range),
//! both streamed; `/stage` and `/import` for interactive (glance-direct) import.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use futures::TryStreamExt;

use ferrostack_image::Error;
use ferrostack_image::data::RangeRequest;

use super::ApiResult;
use crate::AppState;
use crate::auth::Caller;

pub async fn upload(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    receive(s, c, id, headers, body, false).await
}

/// `PUT /v2/images/{id}/stage`: interactive import, step 1.
pub async fn stage(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    receive(s, c, id, headers, body, true).await
}

/// `POST /v2/images/{id}/import` with `{"method": {"name": "glance-direct"}}`: 202.
pub async fn import(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    // the request id the response will carry, recorded on the import task
    let request_id = headers
        .get(&crate::layers::REQUEST_ID)
        .and_then(|v| v.to_str().ok());
    s.image
        .import(c.ctx(), &id, &super::json_body(&body)?, request_id)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn receive(
    s: AppState,
    c: Caller,
    id: String,
    headers: HeaderMap,
    body: Body,
    staging: bool,
) -> ApiResult {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    if ct.split(';').next().map(str::trim) != Some("application/octet-stream") {
        return Ok(crate::errors::glance::body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Unsupported Content-Type: {ct}"),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    if staging {
        s.image
            .stage(c.ctx(), &id, Box::pin(stream), declared)
            .await?;
    } else {
        s.image
            .upload(c.ctx(), &id, Box::pin(stream), declared)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `Range: bytes=a-b | a- | -n`; one range only. `None` when absent or not a byte
/// range (ignored, as HTTP allows).
fn parse_range(headers: &HeaderMap) -> Result<Option<RangeRequest>, Error> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    let bad = || Error::RangeNotSatisfiable { size: 0 };
    if spec.contains(',') {
        return Err(Error::Invalid("Multiple ranges are not supported.".into()));
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    if let (Ok(first), Ok(last)) = (a.parse::<u64>(), b.parse::<u64>())
        && last < first
    {
        // syntactically invalid (RFC 9110 14.1.1): the header is ignored
        return Ok(None);
    }
    Ok(Some(if a.is_empty() {
        RangeRequest::Suffix(b.parse().map_err(|_| bad())?)
    } else {
        RangeRequest::From {
            first: a.parse().map_err(|_| bad())?,
            last: if b.is_empty() {
                None
            } else {
                Some(b.parse().map_err(|_| bad())?)
            },
        }
    }))
}

pub async fn download(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let range = parse_range(&headers)?;
    let Some(d) = s.image.download_to_socket(c.ctx(), &id, range).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let (status, len) = match &d.range {
        Some(r) => {
            if let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {}-{}/{}",
                r.start,
                r.end.saturating_sub(1),
                d.size
            )) {
                h.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => {
            if let Some(md5) = d
                .checksum
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                h.insert("content-md5", md5);
            }
            (StatusCode::OK, d.size)
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok((status, h, Body::from_stream(d.stream)).into_response())
}
