//! Helpers shared by the end-to-end and interoperability tests: an HTTP client, whole
//! responses, and reading a child's output.

// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;

/// Every request's own deadline: generous for a loaded 2-core machine.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client with a timeout, connecting directly (no proxy from the environment).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).no_proxy().build().unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub url: reqwest::Url,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}) from {}: {}", self.url, self.body))
    }

    pub(crate) fn challenge(&self) -> &str {
        self.headers.get("www-authenticate").map_or("", |v| v.to_str().unwrap())
    }

    /// Status, `WWW-Authenticate` and the body's `reason`, for one exact comparison.
    pub(crate) fn refusal(&self) -> (StatusCode, String, Value) {
        (self.status, self.challenge().to_owned(), self.json()["reason"].clone())
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let (status, headers, url) = (response.status(), response.headers().clone(), response.url().clone());
    Reply { status, headers, url, body: response.text().await.unwrap() }
}

/// Collects a child's output lines as they come.
pub(crate) fn read_lines(pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    })
}

/// Segment `index` of a JWT, decoded as JSON (for assertions about what an issuer put in
/// it; the service verifies, this only reads).
pub(crate) fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let segment = token.split('.').nth(index).unwrap_or_else(|| panic!("not a JWT: {token}"));
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}
