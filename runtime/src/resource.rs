//! The URL forms of an RFC 9728 resource identifier: where its metadata document is
//! served (§3.1). Below the builder (which forms `resource_metadata` from it) and the
//! policy (which serves the document); public as `scopegate::policy::metadata_url`.

/// The path of the RFC 9728 metadata document (§3), before any path of the resource.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata URL of a resource identifier (RFC 9728 §3.1): the well-known path inserted
/// between the host and the path, any query kept and no trailing slash of an empty path.
///
/// `None` when `resource` is not an `https` or `http` URL with a host, or has a fragment.
///
/// ```
/// use scopegate::policy::metadata_url;
///
/// assert_eq!(
///     metadata_url("https://api.example.test").as_deref(),
///     Some("https://api.example.test/.well-known/oauth-protected-resource")
/// );
/// assert_eq!(
///     metadata_url("https://example.test/tenant/api").as_deref(),
///     Some("https://example.test/.well-known/oauth-protected-resource/tenant/api")
/// );
/// assert_eq!(metadata_url("api://appointments"), None);
/// ```
#[must_use]
pub fn metadata_url(resource: &str) -> Option<String> {
    let (origin, path) = split_resource(resource)?;
    Some(format!("{origin}{WELL_KNOWN_PATH}{path}"))
}

/// `scheme://authority` and the rest (path and query, without a lone `/`).
pub(crate) fn split_resource(resource: &str) -> Option<(&str, &str)> {
    let rest = resource.strip_prefix("https://").or_else(|| resource.strip_prefix("http://"))?;
    if resource.contains('#') || !resource.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if host_end == 0 {
        return None;
    }
    let split = resource.len() - rest.len() + host_end;
    let (origin, path) = resource.split_at(split);
    Some((origin, if path == "/" { "" } else { path }))
}
