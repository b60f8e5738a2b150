//! Handlers and a request helper shared by the router tests of this crate.

use axum::{Router, body::Body, http::Request};
use http_body_util::BodyExt;
use scopegate::AccessToken;
use tower::ServiceExt;

pub(crate) async fn me(token: AccessToken) -> String {
    format!("{} {}", token.subject(), token.scopes().iter().collect::<Vec<_>>().join(","))
}

pub(crate) async fn call(app: &Router, auth: Option<&str>, path: &str) -> (u16, String, String) {
    let mut req = Request::get(path);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}
