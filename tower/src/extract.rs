//! The axum extractor of the request's context (feature `axum`).

use core::fmt;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use stopwire::Ctx;

/// The request's context in an axum handler, put there by [`crate::ServerLayer`].
///
/// ```
/// use stopwire_tower::ReqCtx;
///
/// async fn handler(ReqCtx(ctx): ReqCtx) -> String {
///     match stopwire_tower::run_until_done(ctx, async { "done in time" }).await {
///         Ok(text) => text.to_string(),
///         Err(why) => why.to_string(),
///     }
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReqCtx(pub Ctx<'static>);

/// The rejection when a handler asks for [`ReqCtx`] on a route the server layer does not
/// wrap: a programming error, answered with 500.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingCtx;

impl fmt::Display for MissingCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no request context: the route is not wrapped by stopwire_tower::ServerLayer")
    }
}

impl core::error::Error for MissingCtx {}

impl IntoResponse for MissingCtx {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqCtx {
    type Rejection = MissingCtx;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MissingCtx> {
        parts
            .extensions
            .get::<Ctx<'static>>()
            .copied()
            .map(ReqCtx)
            .ok_or(MissingCtx)
    }
}
