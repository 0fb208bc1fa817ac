//! Security headers on every response (tower-http's `SetResponseHeader`):
//!
//! | header | value | why |
//! |---|---|---|
//! | `Content-Security-Policy` | the workbench pages (`/ui`): [`UI_CSP`]; everything else, HTML reports included: [`STRICT_CSP`] | nothing is loaded from elsewhere, no form posts elsewhere, no framing; reports run no script at all |
//! | `X-Frame-Options` | `DENY` | no framing (clickjacking), for browsers without `frame-ancestors` |
//! | `X-Content-Type-Options` | `nosniff` | a CSV or JSON answer is never run as HTML or script |
//! | `Referrer-Policy` | `same-origin` | exception ids and filters in URLs never go to another site (not `no-referrer`: with it browsers send `Origin: null` on the pages' own form posts, which the cross-site check refuses) |
//! | `Cache-Control` | `no-store` (unless a handler set its own) | customer data is not kept in browser or proxy caches |
//!
//! The workbench pages carry their few lines of JavaScript inline (and one inline `onsubmit`),
//! so [`UI_CSP`] allows inline script; minijinja's auto-escaping is what keeps data out of it.

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The workbench pages: their own inline script and style, images from the page itself or
/// `data:`, forms only to the daemon, never framed.
pub const UI_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Everything else (JSON, CSV, the HTML reports): no script, no outside resources, inline
/// style and `data:` images only (a report's inline SVG chart), never framed.
pub const STRICT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The web pages' policy on `router`'s routes (a handler's own policy stays).
pub fn ui<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CSP),
    ))
}

/// The headers of the table above on every route of `router` (values set closer to the
/// handler, such as the workbench pages' policy, stay).
pub fn all<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(STRICT_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
