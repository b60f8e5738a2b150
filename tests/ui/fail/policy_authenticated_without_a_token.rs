// `Policy::authenticated` lists a route as "any valid access token": a handler that takes
// no token does not compile there, so the table never calls an open route protected.
use axum::http::Method;
use scopegate::policy::Policy;

async fn export() -> &'static str {
    "everything"
}

fn main() {
    let _ = Policy::new("https://api.example.test").authenticated(Method::GET, "/export", export);
}
