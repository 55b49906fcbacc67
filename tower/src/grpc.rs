//! The gRPC status codes the layers answer with, and the answers themselves: a gRPC request is
//! refused with a "trailers-only" response (HTTP 200, `grpc-status` and `grpc-message` in the
//! headers, no body), any other request with a bare HTTP status.

use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

/// The gRPC status codes this crate answers with (the numbers are gRPC's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 1: the caller's context was canceled (Go's `context.Canceled`).
    Cancelled,
    /// 4: the deadline passed (Go's `context.DeadlineExceeded`).
    DeadlineExceeded,
    /// 8: no arena slot is free for the request's context.
    ResourceExhausted,
    /// 13: the `grpc-timeout` header is malformed (the code Go's gRPC server answers with).
    Internal,
    /// 14: the server is shutting down (its root context is canceled or released).
    Unavailable,
}

impl Code {
    /// The number gRPC gives the code (`tonic::Code::from(code.as_i32())` in tonic).
    pub const fn as_i32(self) -> i32 {
        match self {
            Code::Cancelled => 1,
            Code::DeadlineExceeded => 4,
            Code::ResourceExhausted => 8,
            Code::Internal => 13,
            Code::Unavailable => 14,
        }
    }

    const fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Code::Cancelled => "1",
            Code::DeadlineExceeded => "4",
            Code::ResourceExhausted => "8",
            Code::Internal => "13",
            Code::Unavailable => "14",
        })
    }
}

/// The gRPC code for the reason a context is done, for a handler that gives up because of it:
/// `DeadlineExceeded` for a deadline, `ResourceExhausted` for a full arena, `Cancelled` for the
/// rest (canceled, released).
///
/// ```
/// use stopwire_tower::{code_of, Code};
/// assert_eq!(code_of(stopwire::Error::DeadlineExceeded), Code::DeadlineExceeded);
/// assert_eq!(code_of(stopwire::Error::Canceled).as_i32(), 1);
/// ```
pub fn code_of(why: stopwire::Error) -> Code {
    match why {
        stopwire::Error::DeadlineExceeded => Code::DeadlineExceeded,
        stopwire::Error::Full => Code::ResourceExhausted,
        _ => Code::Cancelled,
    }
}

/// Why a request is answered without reaching the service (or why a call ended early).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refusal {
    pub(crate) code: Code,
    pub(crate) http: StatusCode,
    /// Printable ASCII without `%`: sent as `grpc-message` with no percent-encoding needed.
    pub(crate) message: &'static str,
}

impl Refusal {
    pub(crate) const FULL: Refusal = Refusal {
        code: Code::ResourceExhausted,
        http: StatusCode::SERVICE_UNAVAILABLE,
        message: "stopwire arena full: no context for this request",
    };
    pub(crate) const BAD_TIMEOUT: Refusal = Refusal {
        code: Code::Internal,
        http: StatusCode::BAD_REQUEST,
        message: "malformed grpc-timeout",
    };
    pub(crate) const SHUTTING_DOWN: Refusal = Refusal {
        code: Code::Unavailable,
        http: StatusCode::SERVICE_UNAVAILABLE,
        message: "server shutting down",
    };
    pub(crate) const EXPIRED: Refusal = Refusal {
        code: Code::DeadlineExceeded,
        http: StatusCode::GATEWAY_TIMEOUT,
        message: "deadline exceeded",
    };
    pub(crate) const CANCELLED: Refusal = Refusal {
        code: Code::Cancelled,
        http: StatusCode::SERVICE_UNAVAILABLE,
        message: "context canceled",
    };

    /// The refusal for a call made under a context that is done for `why`.
    pub(crate) fn of(why: stopwire::Error) -> Refusal {
        match why {
            stopwire::Error::DeadlineExceeded => Refusal::EXPIRED,
            _ => Refusal::CANCELLED,
        }
    }

    /// `grpc-status` and `grpc-message`, for headers or trailers.
    pub(crate) fn status_headers(self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(3);
        h.insert("grpc-status", self.code.header_value());
        h.insert("grpc-message", HeaderValue::from_static(self.message));
        h
    }

    /// The answer to a request: trailers-only for gRPC, the bare HTTP status otherwise.
    pub(crate) fn response<B>(self, grpc: bool, body: B) -> Response<B> {
        let mut res = Response::new(body);
        if grpc {
            let mut h = self.status_headers();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            *res.headers_mut() = h;
        } else {
            *res.status_mut() = self.http;
        }
        res
    }
}

/// True for a gRPC request (`content-type: application/grpc`, with or without a `+format`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_only_for_grpc_bare_status_otherwise() {
        let res = Refusal::FULL.response(true, ());
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "8");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/grpc");
        let res = Refusal::FULL.response(false, ());
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().get("grpc-status").is_none());
    }

    #[test]
    fn codes() {
        for (c, n) in [
            (Code::Cancelled, 1),
            (Code::DeadlineExceeded, 4),
            (Code::ResourceExhausted, 8),
            (Code::Internal, 13),
            (Code::Unavailable, 14),
        ] {
            assert_eq!(c.as_i32(), n);
            assert_eq!(c.header_value(), n.to_string().as_str());
        }
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
    }
}
