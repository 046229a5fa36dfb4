//! OpenSSH's `sshd` (Debian package `openssh-server`) on a loopback port, serving the bare
//! repository over `ssh://` with public-key authentication only. Included by
//! [`crate::git_server`].

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    BareRepo, ServerProcess, free_port, kill_child, read_log, run, spawn_in_group, wait_for_port,
};

/// Path of the sshd binary (`/usr/sbin/sshd`, from Debian's `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// An SSH key pair generated with `ssh-keygen` (no passphrase unless one was given).
#[derive(Clone)]
pub struct SshKeyPair {
    /// Private key in OpenSSH format (what Flux stores under `identity`).
    pub private_key: String,
    /// Public key line (`ssh-ed25519 AAAA… comment`, Flux's `identity.pub`).
    pub public_key: String,
}

impl std::fmt::Debug for SshKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl SshKeyPair {
    /// Generates a key pair of `key_type` (`ed25519`, `ecdsa`, `rsa`) in `dir` under `name`,
    /// protected by `passphrase` (empty: none). `rsa` keys are written in PEM format.
    pub fn generate(dir: &Path, name: &str, key_type: &str, passphrase: &str) -> Self {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("pub"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", key_type, "-N", passphrase, "-C", name, "-f"])
            .arg(&path)
            .stdin(Stdio::null());
        if key_type == "rsa" {
            cmd.args(["-b", "3072", "-m", "PEM"]);
        }
        run(&mut cmd);
        Self {
            private_key: std::fs::read_to_string(&path).expect("read private key"),
            public_key: std::fs::read_to_string(format!("{}.pub", path.display()))
                .expect("read public key")
                .trim()
                .to_string(),
        }
    }
}

/// `sshd` on `127.0.0.1:PORT` with a generated ed25519 host key; accepts the generated client
/// key (and any added with [`GitSshServer::authorize`]) for the current user. Killed on drop.
///
/// Runs as the current user (root in CI; then `/run/sshd`, sshd's privilege-separation
/// directory, is created if missing).
pub struct GitSshServer {
    repo: BareRepo,
    port: u16,
    user: String,
    host_key: SshKeyPair,
    client_key: SshKeyPair,
    authorized_keys: PathBuf,
    child: Option<ServerProcess>,
}

impl std::fmt::Debug for GitSshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSshServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl GitSshServer {
    /// Whether this machine can run the server (`/usr/sbin/sshd` and `ssh-keygen` exist).
    pub fn available() -> bool {
        Path::new(SSHD).exists()
            && Command::new("ssh-keygen")
                .arg("-?")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
    }

    /// Generates keys, writes an sshd config and starts sshd on a free loopback port.
    /// Panics (with sshd's log) if it does not come up; panics with an install hint if
    /// `openssh-server` is missing.
    pub fn start() -> Self {
        assert!(
            Self::available(),
            "{SSHD} not found: install the Debian package openssh-server"
        );
        let repo = BareRepo::new();
        let dir = repo.scratch_dir().join("ssh");
        std::fs::create_dir_all(&dir).expect("create ssh dir");
        let host_key = SshKeyPair::generate(&dir, "host_ed25519", "ed25519", "");
        let client_key = SshKeyPair::generate(&dir, "client_ed25519", "ed25519", "");
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{}\n", client_key.public_key))
            .expect("write authorized_keys");
        let user = current_user();
        if is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {host}\n\
                     PidFile {pid}\n\
                     AuthorizedKeysFile {ak}\n\
                     AuthenticationMethods publickey\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     PermitRootLogin prohibit-password\n\
                     AllowUsers {user}\n\
                     PrintMotd no\n\
                     UseDNS no\n\
                     LogLevel VERBOSE\n",
                    host = dir.join("host_ed25519").display(),
                    pid = dir.join("sshd.pid").display(),
                    ak = authorized_keys.display(),
                ),
            )
            .expect("write sshd_config");
            let log = dir.join("sshd.log");
            let stderr = std::fs::File::create(&log).expect("create sshd log");
            let mut cmd = Command::new(SSHD);
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr);
            let mut child = match spawn_in_group(&mut cmd) {
                Ok(c) => c,
                Err(e) => panic!("cannot spawn {SSHD}: {e}"),
            };
            match wait_for_port(&mut child, port, Duration::from_secs(10)) {
                Ok(()) => {
                    return Self {
                        repo,
                        port,
                        user,
                        host_key,
                        client_key,
                        authorized_keys,
                        child: Some(child),
                    };
                }
                Err(e) => {
                    kill_child(&mut child);
                    last_err = format!("{e}; log:\n{}", read_log(&log));
                }
            }
        }
        panic!("sshd did not start: {last_err}");
    }

    /// `ssh://USER@127.0.0.1:PORT/<absolute path of the bare repository>`.
    pub fn url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.repo.path().display()
        )
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user the server accepts (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The authorized client key pair (ed25519, no passphrase).
    pub fn client_key(&self) -> &SshKeyPair {
        &self.client_key
    }

    /// The server's host key pair.
    pub fn host_key(&self) -> &SshKeyPair {
        &self.host_key
    }

    /// A `known_hosts` line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn known_hosts(&self) -> String {
        let mut fields = self.host_key.public_key.split_whitespace();
        let key_type = fields.next().unwrap_or_default();
        let key = fields.next().unwrap_or_default();
        format!("[127.0.0.1]:{} {key_type} {key}\n", self.port)
    }

    /// The same entry as [`GitSshServer::known_hosts`], hashed (`|1|salt|hash`) by
    /// `ssh-keygen -H`.
    pub fn known_hosts_hashed(&self) -> String {
        let path = self
            .repo
            .scratch_dir()
            .join("ssh")
            .join("known_hosts_hashed");
        std::fs::write(&path, self.known_hosts()).expect("write known_hosts");
        run(Command::new("ssh-keygen")
            .arg("-q")
            .arg("-H")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stdin(Stdio::null()));
        let _ = std::fs::remove_file(format!("{}.old", path.display()));
        std::fs::read_to_string(&path).expect("read hashed known_hosts")
    }

    /// Also accept this public key line from now on.
    pub fn authorize(&self, public_key: &str) {
        let mut keys = std::fs::read_to_string(&self.authorized_keys).unwrap_or_default();
        keys.push_str(public_key.trim());
        keys.push('\n');
        std::fs::write(&self.authorized_keys, keys).expect("write authorized_keys");
    }

    /// Generates a new key pair in this server's scratch directory (not authorized).
    pub fn generate_key(&self, name: &str, key_type: &str, passphrase: &str) -> SshKeyPair {
        SshKeyPair::generate(
            &self.repo.scratch_dir().join("ssh"),
            name,
            key_type,
            passphrase,
        )
    }

    /// sshd's log so far (useful in assertion messages).
    pub fn log(&self) -> String {
        read_log(&self.repo.scratch_dir().join("ssh").join("sshd.log"))
    }
}

impl Deref for GitSshServer {
    type Target = BareRepo;
    fn deref(&self) -> &BareRepo {
        &self.repo
    }
}

impl Drop for GitSshServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
