//! Credentials (from a Flux-style Secret), SSH host-key verification against `known_hosts`,
//! and verification of HTTPS servers against a private CA.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use crate::error::{Error, Result};

/// How to authenticate to the remote.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// Anonymous (public repositories, `git://`, test servers).
    #[default]
    None,
    /// SSH public-key authentication. The server's host key is always verified against
    /// `known_hosts`.
    Ssh {
        /// Private key (OpenSSH or PEM format), Flux key `identity`.
        identity: String,
        /// Passphrase of the private key, Flux key `passphrase`.
        passphrase: Option<String>,
        /// `known_hosts` lines for the server, Flux key `known_hosts` (required).
        known_hosts: String,
    },
    /// HTTP(S) basic authentication, Flux keys `username` and `password`.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// HTTP(S) `Authorization: Bearer <token>`, Flux key `bearerToken`.
    Bearer {
        /// The token.
        token: String,
    },
}

/// Credentials for one repository: how to authenticate, and optionally a private CA for
/// HTTPS. `Debug` never prints secret values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// How to authenticate.
    pub auth: Auth,
    /// PEM certificate(s) of a private certificate authority to trust for HTTPS, Flux key
    /// `ca.crt`. When set, the server certificate must chain to one of them (intermediates
    /// must be included here too); the system trust store is not used.
    pub ca_cert: Option<Vec<u8>>,
}

impl Credentials {
    /// No authentication, system CAs.
    pub fn none() -> Self {
        Self::default()
    }

    /// SSH key authentication.
    pub fn ssh(
        identity: impl Into<String>,
        passphrase: Option<String>,
        known_hosts: impl Into<String>,
    ) -> Self {
        Self {
            auth: Auth::Ssh {
                identity: identity.into(),
                passphrase,
                known_hosts: known_hosts.into(),
            },
            ca_cert: None,
        }
    }

    /// HTTP basic authentication.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            auth: Auth::Basic {
                username: username.into(),
                password: password.into(),
            },
            ca_cert: None,
        }
    }

    /// HTTP bearer token.
    pub fn bearer(token: impl Into<String>) -> Self {
        Self {
            auth: Auth::Bearer {
                token: token.into(),
            },
            ca_cert: None,
        }
    }

    /// Also trust this PEM CA for HTTPS.
    pub fn with_ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert = Some(pem.into());
        self
    }

    /// Reads a Secret's `data` with Flux's key names: `identity` (+ optional `passphrase`)
    /// and `known_hosts` for SSH (`identity.pub` is ignored); `bearerToken`; `username` +
    /// `password`; `ca.crt`. If several kinds are present, SSH wins over a bearer token,
    /// which wins over basic auth. Values must be UTF-8 (except `ca.crt`).
    ///
    /// Errors ([`Error::Auth`], no secret values in messages): `identity` without
    /// `known_hosts`, `username` without `password` (or the reverse), non-UTF-8 values.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let text = |key: &str| -> Result<Option<String>> {
            match data.get(key) {
                None => Ok(None),
                Some(v) => String::from_utf8(v.clone())
                    .map(Some)
                    .map_err(|_| Error::Auth(format!("secret key {key:?} is not UTF-8"))),
            }
        };
        let ca_cert = data.get("ca.crt").filter(|v| !v.is_empty()).cloned();
        let auth = if let Some(identity) = text("identity")?.filter(|s| !s.trim().is_empty()) {
            let known_hosts = text("known_hosts")?
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    Error::Auth(
                        "secret has an SSH identity but no known_hosts; host keys are always verified"
                            .into(),
                    )
                })?;
            Auth::Ssh {
                identity,
                passphrase: text("passphrase")?.filter(|s| !s.is_empty()),
                known_hosts,
            }
        } else if let Some(token) = text("bearerToken")?.filter(|s| !s.is_empty()) {
            Auth::Bearer { token }
        } else {
            match (text("username")?, text("password")?) {
                (Some(username), Some(password)) => Auth::Basic { username, password },
                (None, None) => Auth::None,
                (Some(_), None) => {
                    return Err(Error::Auth("secret has a username but no password".into()));
                }
                (None, Some(_)) => {
                    return Err(Error::Auth("secret has a password but no username".into()));
                }
            }
        };
        Ok(Self { auth, ca_cert })
    }

    /// Every secret string (to scrub from messages).
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        match &self.auth {
            Auth::None => {}
            Auth::Ssh {
                identity,
                passphrase,
                ..
            } => {
                s.extend(
                    identity
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
                        .map(str::to_string),
                );
                s.extend(passphrase.clone());
            }
            Auth::Basic { password, .. } => s.push(password.clone()),
            Auth::Bearer { token } => s.push(token.clone()),
        }
        s.retain(|x| !x.is_empty());
        s
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Ssh {
                passphrase,
                known_hosts,
                ..
            } => f
                .debug_struct("Ssh")
                .field("identity", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .field("known_hosts_lines", &known_hosts.lines().count())
                .finish(),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("auth", &self.auth)
            .field("ca_cert_bytes", &self.ca_cert.as_ref().map(Vec::len))
            .finish()
    }
}

/// Removes secret values, URL passwords and URL query values from a message.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Scrubs the secrets of `credentials` and those written into `url` (its password and
    /// query values, also where a message quotes them without the URL around them).
    pub(crate) fn new(credentials: &Credentials, url: &str) -> Self {
        let mut secrets = credentials.secrets();
        secrets.extend(url_secrets(url));
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub(crate) fn redact(&self, msg: &str) -> String {
        let mut out = redact_url(msg);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// The secret parts written into a URL: the password of its user-info and the values of its
/// query parameters (only those long enough not to match ordinary words of a message).
fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return out;
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        out.push(password.to_string());
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or("");
        for pair in query.split('&') {
            if let Some((_, value)) = pair.split_once('=') {
                out.push(value.to_string());
            }
        }
    }
    out.retain(|s| s.len() >= 4);
    out
}

/// Every URL in `s` with its secrets replaced by `<redacted>`: the password of
/// `scheme://user:password@host` and the value of every query parameter
/// (`?token=abc&x=1` → `?token=<redacted>&x=<redacted>`); a query parameter without `=`
/// is redacted whole.
pub(crate) fn redact_url(s: &str) -> String {
    let ends_url = |c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '<' || c == '>';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let url_end = rest.find(ends_url).unwrap_or(rest.len());
        let url = &rest[..url_end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":<redacted>");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        } else {
            out.push_str(authority);
        }
        let after = &url[authority_end..];
        match after.split_once('?') {
            Some((path, query)) => {
                out.push_str(path);
                out.push('?');
                let (query, fragment) = match query.split_once('#') {
                    Some((q, f)) => (q, Some(f)),
                    None => (query, None),
                };
                let pairs: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((key, _)) => format!("{key}=<redacted>"),
                        None if pair.is_empty() => String::new(),
                        None => "<redacted>".to_string(),
                    })
                    .collect();
                out.push_str(&pairs.join("&"));
                if let Some(f) = fragment {
                    out.push('#');
                    out.push_str(f);
                }
            }
            None => out.push_str(after),
        }
        rest = &rest[url_end..];
    }
    out.push_str(rest);
    out
}

/// The parts of a remote URL the transport checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteUrl {
    /// `ssh`, `http`, `https`, `git`, `file`.
    pub scheme: String,
    /// User name given in the URL, if any.
    pub user: Option<String>,
    /// Host name (brackets of IPv6 literals removed), empty for `file`.
    pub host: String,
    /// Port (default for the scheme if absent).
    pub port: u16,
}

impl RemoteUrl {
    /// Parses `scheme://[user[:pw]@]host[:port]/path` and scp-like `user@host:path`.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Config(format!(
                "invalid repository URL {:?}: {why}",
                redact_url(url)
            ))
        };
        if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if scheme == "file" {
                return Ok(Self {
                    scheme,
                    user: None,
                    host: String::new(),
                    port: 0,
                });
            }
            let default_port = match scheme.as_str() {
                "ssh" | "git+ssh" | "ssh+git" => 22,
                "http" => 80,
                "https" => 443,
                "git" => 9418,
                _ => {
                    return Err(bad(
                        "unsupported scheme (use ssh, https, http, git or file)",
                    ));
                }
            };
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((ui, hp)) => (Some(ui.split(':').next().unwrap_or("").to_string()), hp),
                None => (None, authority),
            };
            let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
                let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                    None => default_port,
                };
                (h.to_string(), port)
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                    None => (hostport.to_string(), default_port),
                }
            };
            if host.is_empty() {
                return Err(bad("no host"));
            }
            let scheme = if scheme.contains("ssh") {
                "ssh".to_string()
            } else {
                scheme
            };
            Ok(Self {
                scheme,
                user,
                host,
                port,
            })
        } else if let Some((userhost, _path)) = url.split_once(':') {
            // scp-like: [user@]host:path
            if userhost.contains('/') || userhost.is_empty() {
                return Err(bad("not a URL"));
            }
            let (user, host) = match userhost.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h.to_string()),
                None => (None, userhost.to_string()),
            };
            Ok(Self {
                scheme: "ssh".into(),
                user,
                host,
                port: 22,
            })
        } else if url.starts_with('/') {
            Ok(Self {
                scheme: "file".into(),
                user: None,
                host: String::new(),
                port: 0,
            })
        } else {
            Err(bad("not a URL"))
        }
    }

    pub(crate) fn is_ssh(&self) -> bool {
        self.scheme == "ssh"
    }

    pub(crate) fn is_http(&self) -> bool {
        self.scheme == "http" || self.scheme == "https"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    Patterns(Vec<String>),
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct KnownHost {
    marker: Marker,
    hosts: Hosts,
    key: Vec<u8>,
}

/// Parsed `known_hosts` (OpenSSH format: plain or hashed host patterns, wildcards,
/// negations, `[host]:port`, `@revoked`; `@cert-authority` lines are ignored).
#[derive(Debug, Clone)]
pub(crate) struct KnownHosts {
    entries: Vec<KnownHost>,
}

impl KnownHosts {
    pub(crate) fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(_key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(key) = base64::engine::general_purpose::STANDARD.decode(key_b64) else {
                continue;
            };
            let hosts = if let Some(h) = first.strip_prefix("|1|") {
                let Some((salt, hash)) = h.split_once('|') else {
                    continue;
                };
                let b64 = base64::engine::general_purpose::STANDARD;
                let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
                    continue;
                };
                Hosts::Hashed { salt, hash }
            } else {
                Hosts::Patterns(first.split(',').map(|p| p.to_ascii_lowercase()).collect())
            };
            entries.push(KnownHost { marker, hosts, key });
        }
        Self { entries }
    }

    /// Whether there is at least one usable entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the raw host key blob the server offered for `host`:`port`.
    pub(crate) fn verify(
        &self,
        host: &str,
        port: u16,
        offered: &[u8],
    ) -> std::result::Result<(), String> {
        let host = host.to_ascii_lowercase();
        let name = if port == 22 {
            host.clone()
        } else {
            format!("[{host}]:{port}")
        };
        let mut host_known = false;
        let mut ok = false;
        for e in &self.entries {
            if !e.matches(&name) {
                continue;
            }
            match e.marker {
                Marker::Revoked if e.key == offered => {
                    return Err(format!("the host key of {name} is marked @revoked"));
                }
                Marker::None => {
                    host_known = true;
                    ok |= e.key == offered;
                }
                _ => {}
            }
        }
        let key_type = key_type_of(offered);
        match (ok, host_known) {
            (true, _) => Ok(()),
            (false, true) => Err(format!(
                "the {key_type} host key offered by {name} does not match known_hosts (add every key type of the host, as ssh-keyscan prints them)"
            )),
            (false, false) => Err(format!(
                "{name} is not in known_hosts (offered a {key_type} key)"
            )),
        }
    }
}

impl KnownHost {
    fn matches(&self, name: &str) -> bool {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for p in patterns {
                    if let Some(neg) = p.strip_prefix('!') {
                        if glob(neg, name) {
                            return false;
                        }
                    } else if glob(p, name) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// `*` and `?` wildcards.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The algorithm name at the start of an SSH public key blob.
fn key_type_of(blob: &[u8]) -> String {
    if blob.len() >= 4 {
        let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if let Some(name) = blob.get(4..4 + n) {
            return String::from_utf8_lossy(name).into_owned();
        }
    }
    "unknown".into()
}

/// Verifies a server certificate (DER) for `host` against the PEM CA bundle.
pub(crate) fn verify_with_ca(
    ca_pem: &[u8],
    cert_der: &[u8],
    host: &str,
) -> std::result::Result<(), String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("ca.crt is not valid PEM: {e}"))?;
    if cas.is_empty() {
        return Err("ca.crt contains no certificate".into());
    }
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let leaf = CertificateDer::from(cert_der.to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| format!("bad server certificate: {e}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &cas,
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("server certificate not trusted by ca.crt: {e}"))?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("bad host name: {e}"))?;
    ee.verify_is_valid_for_subject_name(&name)
        .map_err(|e| format!("server certificate not valid for {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn secret_data_flux_keys() {
        let c = Credentials::from_secret_data(&data(&[
            (
                "identity",
                "-----BEGIN KEY-----\nAAAAsecretkeymaterial\n-----END KEY-----\n",
            ),
            ("identity.pub", "ssh-ed25519 AAAA"),
            ("known_hosts", "github.com ssh-ed25519 AAAA"),
            ("passphrase", "pp-secret"),
        ]))
        .unwrap();
        assert!(matches!(
            c.auth,
            Auth::Ssh {
                passphrase: Some(_),
                ..
            }
        ));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("secretkeymaterial") && !dbg.contains("pp-secret"),
            "{dbg}"
        );
        let r = Redactor::new(&c, "ssh://git@h/r.git");
        assert_eq!(
            r.redact("x AAAAsecretkeymaterial pp-secret"),
            "x <redacted> <redacted>"
        );

        let c = Credentials::from_secret_data(&data(&[
            ("username", "u"),
            ("password", "hunter2"),
            ("ca.crt", "PEM"),
        ]))
        .unwrap();
        assert_eq!(
            c.auth,
            Auth::Basic {
                username: "u".into(),
                password: "hunter2".into()
            }
        );
        assert_eq!(c.ca_cert.as_deref(), Some(&b"PEM"[..]));
        assert!(!format!("{c:?}").contains("hunter2"));

        let c = Credentials::from_secret_data(&data(&[("bearerToken", "tok123")])).unwrap();
        assert!(!format!("{c:?}").contains("tok123"));
        assert_eq!(
            Credentials::from_secret_data(&data(&[])).unwrap().auth,
            Auth::None
        );

        let e = Credentials::from_secret_data(&data(&[("identity", "k")])).unwrap_err();
        assert_eq!(e.category(), "auth");
        let e = Credentials::from_secret_data(&data(&[("username", "u")])).unwrap_err();
        assert_eq!(e.category(), "auth");
    }

    #[test]
    fn url_parsing_and_redaction() {
        let u = RemoteUrl::parse("ssh://git@example.com:2222/org/repo.git").unwrap();
        assert_eq!(
            (
                u.scheme.as_str(),
                u.user.as_deref(),
                u.host.as_str(),
                u.port
            ),
            ("ssh", Some("git"), "example.com", 2222)
        );
        let u = RemoteUrl::parse("git@github.com:org/repo.git").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port),
            ("ssh", "github.com", 22)
        );
        let u = RemoteUrl::parse("https://u:pw@[::1]:8443/r.git").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert!(RemoteUrl::parse("ftp://x/y").is_err());
        assert_eq!(
            redact_url("failed https://u:pw@h/x and ssh://git@h/y"),
            "failed https://u:<redacted>@h/x and ssh://git@h/y"
        );
        assert_eq!(
            redact_url("GET https://h/r.git?private_token=glpat-123&x=1#frag: 401"),
            "GET https://h/r.git?private_token=<redacted>&x=<redacted>#frag: 401"
        );
        assert_eq!(
            redact_url("'https://u:pw@h:8443?tok' and http://h/p?a=b"),
            "'https://u:<redacted>@h:8443?<redacted>' and http://h/p?a=<redacted>"
        );
        // A message quoting the token without its URL is scrubbed too.
        let r = Redactor::new(
            &Credentials::none(),
            "https://u:pw-123@h/r.git?access_token=tok-456",
        );
        assert_eq!(
            r.redact("bad token tok-456 for pw-123"),
            "bad token <redacted> for <redacted>"
        );
    }

    #[test]
    fn known_hosts_matching() {
        let key =
            base64::engine::general_purpose::STANDARD.encode(b"\0\0\0\x0bssh-ed25519keybytes");
        let other = b"\0\0\0\x0bssh-ed25519otherkey";
        let kh = KnownHosts::parse(&format!(
            "# comment\n[127.0.0.1]:2222 ssh-ed25519 {key}\ngithub.com,*.example.org,!bad.example.org ssh-ed25519 {key}\n"
        ));
        let blob = b"\0\0\0\x0bssh-ed25519keybytes";
        assert!(kh.verify("127.0.0.1", 2222, blob).is_ok());
        assert!(
            kh.verify("127.0.0.1", 22, blob)
                .unwrap_err()
                .contains("not in known_hosts")
        );
        assert!(kh.verify("GitHub.com", 22, blob).is_ok());
        assert!(kh.verify("a.example.org", 22, blob).is_ok());
        assert!(kh.verify("bad.example.org", 22, blob).is_err());
        assert!(
            kh.verify("github.com", 22, other)
                .unwrap_err()
                .contains("does not match")
        );
        let revoked = KnownHosts::parse(&format!(
            "@revoked * ssh-ed25519 {key}\ngithub.com ssh-ed25519 {key}\n"
        ));
        assert!(
            revoked
                .verify("github.com", 22, blob)
                .unwrap_err()
                .contains("revoked")
        );
    }

    #[test]
    fn hashed_known_hosts() {
        // `ssh-keygen -H` format: |1|base64(salt)|base64(HMAC-SHA1(salt, name))|
        let salt = b"0123456789abcdefghij";
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let tag = ring::hmac::sign(&k, b"[127.0.0.1]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.encode(b"\0\0\0\x0bssh-ed25519keybytes");
        let kh = KnownHosts::parse(&format!(
            "|1|{}|{} ssh-ed25519 {key}\n",
            b64.encode(salt),
            b64.encode(tag.as_ref())
        ));
        assert!(
            kh.verify("127.0.0.1", 2222, b"\0\0\0\x0bssh-ed25519keybytes")
                .is_ok()
        );
        assert!(
            kh.verify("127.0.0.2", 2222, b"\0\0\0\x0bssh-ed25519keybytes")
                .is_err()
        );
    }
}
