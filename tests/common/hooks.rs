//! Push webhook helpers shared by the end-to-end suites: fixtures, signatures, raw requests.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use hmac::{Hmac, Mac};

/// A ConfigMap manifest labelled `origin: git`, with `data.value`.
pub fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: git\ndata:\n  value: {value}\n"
    )
}

/// GitRepository `repo` (spec lines in `extra`) with a rule from Git (`origin=git`) and one
/// to Git (`origin=cluster`), for ConfigMaps in `ns`.
pub fn repository_and_rules(url: &str, ns: &str, interval: &str, extra: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: {interval}\n{extra}---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: from-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: to-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n"
    )
}

/// `data.value` of a ConfigMap, if it exists.
pub async fn value_of(api: &Api<ConfigMap>, name: &str) -> Option<String> {
    api.get_opt(name).await.ok()??.data?.get("value").cloned()
}

/// A blocking `POST` on a new connection; returns the status code (0 when there was none).
pub fn post(port: u16, path: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server that refuses the request early (413 for a body over the limit) may close the
    // connection before the whole body is written; its answer is still there to read.
    let _ = stream.write_all(body);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// GitHub's `X-Hub-Signature-256` value for `body` signed with `token`.
pub fn github_signature(token: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(token).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
