//! Locally built OCI images (sandbox "pause" image, busybox test image) and image archive import via `ctr`.
//!
//! The archives are OCI image layouts in a tar (`oci-layout`, `index.json`, `blobs/sha256/...`) with one
//! uncompressed layer, built deterministically (fixed mtimes, root ownership) so re-importing is a no-op.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Result, RuntimeError};

/// Sandbox image built from `/bin/busybox` and imported at startup.
pub const PAUSE_IMAGE: &str = "localhost/k3s-daas/pause:3.9";
/// Test image built from `/bin/busybox` with applet symlinks in `/bin`.
pub const BUSYBOX_IMAGE: &str = "localhost/k3s-daas/busybox:latest";
/// Default location of the static busybox binary (Debian `busybox-static`).
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

const MTIME: u64 = 946_684_800; // 2000-01-01T00:00:00Z
const CREATED: &str = "2000-01-01T00:00:00Z";

enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// Builder of a single-layer OCI image archive.
pub struct OciImageBuilder {
    name: String,
    entries: Vec<Entry>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: String,
}

/// OCI architecture name of this machine.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn tar_err(path: &str, e: std::io::Error) -> RuntimeError {
    RuntimeError::io(PathBuf::from(path), e)
}

impl OciImageBuilder {
    /// `name` is the full reference, e.g. `localhost/k3s-daas/pause:3.9`.
    pub fn new(name: impl Into<String>) -> Self {
        OciImageBuilder {
            name: name.into(),
            entries: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
        }
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.entries.push(Entry::Dir {
            path: path.trim_start_matches('/').to_string(),
            mode,
        });
        self
    }

    pub fn file(mut self, path: &str, mode: u32, data: Vec<u8>) -> Self {
        self.entries.push(Entry::File {
            path: path.trim_start_matches('/').to_string(),
            mode,
            data,
        });
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Symlink {
            path: path.trim_start_matches('/').to_string(),
            target: target.to_string(),
        });
        self
    }

    pub fn entrypoint(mut self, v: &[&str]) -> Self {
        self.entrypoint = v.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn cmd(mut self, v: &[&str]) -> Self {
        self.cmd = v.iter().map(|s| s.to_string()).collect();
        self
    }

    fn layer(&self) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let mut h = tar::Header::new_ustar();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(MTIME);
            match e {
                Entry::Dir { path, mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    b.append_data(
                        &mut h,
                        format!("{}/", path.trim_end_matches('/')),
                        std::io::empty(),
                    )
                    .map_err(|e| tar_err(path, e))?;
                }
                Entry::File { path, mode, data } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice())
                        .map_err(|e| tar_err(path, e))?;
                }
                Entry::Symlink { path, target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, path, target)
                        .map_err(|e| tar_err(path, e))?;
                }
            }
        }
        b.into_inner().map_err(|e| tar_err("layer", e))
    }

    /// Builds the OCI image layout archive in memory.
    pub fn build(&self) -> Result<Vec<u8>> {
        let layer = self.layer()?;
        let layer_digest = format!("sha256:{}", sha256_hex(&layer));
        let mut config_obj = serde_json::json!({
            "Env": self.env,
            "WorkingDir": self.working_dir,
        });
        if !self.entrypoint.is_empty() {
            config_obj["Entrypoint"] = serde_json::json!(self.entrypoint);
        }
        if !self.cmd.is_empty() {
            config_obj["Cmd"] = serde_json::json!(self.cmd);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "created": CREATED,
            "architecture": oci_arch(),
            "os": "linux",
            "config": config_obj,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": CREATED, "created_by": "daas-agent OciImageBuilder"}],
        }))
        .map_err(|e| RuntimeError::Containerd(format!("image config json: {e}")))?;
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        }))
        .map_err(|e| RuntimeError::Containerd(format!("image manifest json: {e}")))?;
        let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
        let tag = self
            .name
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'))
            .unwrap_or("latest");
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "platform": {"architecture": oci_arch(), "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": self.name,
                    "org.opencontainers.image.ref.name": tag,
                },
            }],
        }))
        .map_err(|e| RuntimeError::Containerd(format!("image index json: {e}")))?;

        let mut out = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(MTIME);
            h.set_size(data.len() as u64);
            out.append_data(&mut h, path, data)
                .map_err(|e| tar_err(path, e))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &index)?;
        for (digest, data) in [
            (&manifest_digest, &manifest),
            (&config_digest, &config),
            (&layer_digest, &layer),
        ] {
            let hex = digest.trim_start_matches("sha256:");
            add(&format!("blobs/sha256/{hex}"), data)?;
        }
        out.into_inner().map_err(|e| tar_err("archive", e))
    }

    /// Builds the archive and writes it to `path`.
    pub fn write_to(&self, path: &Path) -> Result<()> {
        let data = self.build()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RuntimeError::io(parent, e))?;
        }
        std::fs::write(path, data).map_err(|e| RuntimeError::io(path, e))
    }
}

fn read_busybox(busybox: &Path) -> Result<Vec<u8>> {
    std::fs::read(busybox).map_err(|e| RuntimeError::io(busybox, e))
}

/// The sandbox image: `/bin/busybox` sleeping forever. (Busybox picks its applet from argv[0], so it cannot be
/// renamed to `/pause`; the entrypoint runs it as `busybox sleep`.)
pub fn pause_image(busybox: &Path) -> Result<OciImageBuilder> {
    Ok(OciImageBuilder::new(PAUSE_IMAGE)
        .dir("bin", 0o755)
        .file("bin/busybox", 0o755, read_busybox(busybox)?)
        .entrypoint(&["/bin/busybox", "sleep", "2147483647"]))
}

/// Applets linked into `/bin` of the busybox image when `busybox --list` cannot be run.
const FALLBACK_APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "env", "printenv", "sleep", "ls", "ps", "id", "hostname", "ip",
    "wget", "nc", "true", "false", "grep", "head", "tail", "mkdir", "rm", "date", "kill", "pwd",
    "test", "[", "httpd", "ifconfig", "top",
];

/// A small general purpose image: `/bin/busybox` and a symlink in `/bin` for each applet, `/etc/passwd`, `/tmp`.
pub fn busybox_image(busybox: &Path) -> Result<OciImageBuilder> {
    let data = read_busybox(busybox)?;
    let applets: Vec<String> = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_else(|| FALLBACK_APPLETS.iter().map(|s| s.to_string()).collect());
    let mut b = OciImageBuilder::new(BUSYBOX_IMAGE)
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("tmp", 0o1777)
        .dir("root", 0o700)
        .dir("var", 0o755)
        .dir("proc", 0o555)
        .dir("sys", 0o555)
        .dir("dev", 0o755)
        .file("bin/busybox", 0o755, data)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
        )
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        )
        .cmd(&["sh"]);
    for a in applets {
        if a.is_empty() || a == "busybox" || a.contains('/') {
            continue;
        }
        b = b.symlink(&format!("bin/{a}"), "busybox");
    }
    Ok(b)
}

/// Imports an image archive (OCI layout or `docker save` tar) into containerd's `k8s.io` namespace, where the CRI
/// plugin sees it.
pub async fn import_archive(ctr: &Path, socket: &Path, archive: &Path) -> Result<()> {
    let command = format!(
        "{} -a {} -n k8s.io images import {}",
        ctr.display(),
        socket.display(),
        archive.display()
    );
    tracing::debug!(%command, "importing image archive");
    let out = tokio::process::Command::new(ctr)
        .arg("-a")
        .arg(socket)
        .args(["-n", "k8s.io", "images", "import"])
        .arg(archive)
        .output()
        .await
        .map_err(|e| RuntimeError::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(RuntimeError::Command {
            command,
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// `*.tar` files in `dir` (sorted); an absent directory yields none.
pub fn airgap_archives(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| RuntimeError::io(dir, e))?;
        let p = entry.path();
        if p.extension().is_some_and(|x| x == "tar") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn oci_layout_is_consistent() {
        let img = OciImageBuilder::new("localhost/x/y:1.0")
            .dir("bin", 0o755)
            .file("bin/tool", 0o755, b"#!/bin/sh\n".to_vec())
            .symlink("bin/alias", "tool")
            .entrypoint(&["/bin/tool"]);
        let a = img.build().expect("build");
        assert_eq!(a, img.build().expect("build again"), "deterministic");
        let mut ar = tar::Archive::new(a.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let p = e.path().expect("path").to_string_lossy().to_string();
            let mut d = Vec::new();
            e.read_to_end(&mut d).expect("read");
            files.insert(p, d);
        }
        for (p, d) in &files {
            if let Some(h) = p.strip_prefix("blobs/sha256/") {
                assert_eq!(h, sha256_hex(d), "blob digest of {p}");
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index");
        let m = &index["manifests"][0];
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "localhost/x/y:1.0"
        );
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "1.0");
        let mdig = m["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        let manifest: serde_json::Value =
            serde_json::from_slice(&files[&format!("blobs/sha256/{mdig}")]).expect("m");
        let cdig = manifest["config"]["digest"]
            .as_str()
            .expect("cd")
            .trim_start_matches("sha256:");
        let config: serde_json::Value =
            serde_json::from_slice(&files[&format!("blobs/sha256/{cdig}")]).expect("c");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            manifest["layers"][0]["digest"]
        );
        assert_eq!(config["config"]["Entrypoint"][0], "/bin/tool");
        let ldig = manifest["layers"][0]["digest"]
            .as_str()
            .expect("ld")
            .trim_start_matches("sha256:");
        let mut layer = tar::Archive::new(files[&format!("blobs/sha256/{ldig}")].as_slice());
        let names: Vec<String> = layer
            .entries()
            .expect("layer")
            .map(|e| {
                e.expect("e")
                    .path()
                    .expect("p")
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["bin/", "bin/tool", "bin/alias"]);
    }
}

fn path_component_ok(p: &str) -> bool {
    // alpha-numeric (separator alpha-numeric)*, separator: `.`, `_`, `__` or dashes.
    let b = p.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &p[start..i];
        let sep_ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !sep_ok || i == b.len() || !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            return false;
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

/// Whether `image` is a valid image reference (the distribution reference grammar the kubelet
/// parses before pulling; a bad one is the container's `InvalidImageName`).
pub fn valid_image_reference(image: &str) -> bool {
    if image.is_empty() || image.len() > 255 + 128 + 80 {
        return false;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        let alg_ok = alg.starts_with(|c: char| c.is_ascii_alphabetic())
            && alg
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'.'));
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    // A tag follows the last `:` after the last `/`.
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[slash..].find(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !ok {
            return false;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" || first != first.to_lowercase() {
            if !domain_ok(first) {
                return false;
            }
            parts.remove(0);
        }
    }
    parts.iter().all(|p| path_component_ok(p))
}

#[cfg(test)]
mod reference_tests {
    use super::valid_image_reference;

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "docker.io/library/busybox",
            "localhost/k3s-daas/busybox:latest",
            "localhost:5000/a_b/c__d/e-f--g.h:v1.0-rc_1",
            "registry.k8s.io/pause:3.9",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-tag",
            "bu sy",
            "busybox@sha256:abc",
            "-busybox",
            "a//b",
            "busybox:a:b",
            "example.com:port/x",
            "a/b.",
            "a/b..c",
            "a/b___c",
            ":tag",
            "invalid image!",
        ] {
            assert!(!valid_image_reference(bad), "{bad}");
        }
    }
}
