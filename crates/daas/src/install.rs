//! `daas install master|agent` and `daas uninstall`: systemd units, a config file and an
//! environment file, like K3s' installer. Installing writes files only (it starts nothing); it
//! records what it wrote in a manifest so that uninstalling removes exactly those files. `--root`
//! installs under another directory (tests, image builds).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

/// Where the units go (below the root).
pub const UNIT_DIR: &str = "etc/systemd/system";
/// Where the binary is copied unless `--bin` names one (below the root).
pub const BIN_PATH: &str = "usr/local/bin/daas";
/// The list of files an install wrote (below the root), one relative path a line.
pub const MANIFEST: &str = "etc/k3s-daas/install-manifest";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "installing an agent needs --config staker-config.json (the staker host's configuration)"
    )]
    AgentNeedsConfig,
    #[error("{path} is not a usable staker config: {reason}")]
    BadAgentConfig { path: PathBuf, reason: String },
    #[error("{path} is not a usable master config: {reason}")]
    BadMasterConfig { path: PathBuf, reason: String },
    #[error("--bin {0} must be an absolute path")]
    RelativeBin(PathBuf),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The control plane (`daas master`).
    Master,
    /// A staker host (`daas agent`).
    Agent,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Agent => "agent",
        }
    }
    pub fn unit(self) -> String {
        format!("k3s-daas-{}.service", self.name())
    }
    /// The config file the unit passes with `--config` (absolute, as on the target system).
    pub fn config_file(self) -> &'static str {
        match self {
            Role::Master => "/etc/k3s-daas/master.yaml",
            Role::Agent => "/etc/k3s-daas/staker-config.json",
        }
    }
    pub fn env_file(self) -> String {
        format!("/etc/k3s-daas/{}.env", self.name())
    }
}

#[derive(Args, Clone, Debug)]
pub struct InstallArgs {
    /// What to install: the control plane or a staker host.
    pub role: Role,
    /// Directory standing for `/` (the files go below it).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Config file to install: for `master` a YAML/JSON map of `daas master` flags (default:
    /// listen on 0.0.0.0:6443, state in /var/lib/k3s-daas/master); for `agent` the
    /// staker-config.json (required).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The daas binary the units run, as an absolute path on the target system (default: this
    /// binary is copied to /usr/local/bin/daas).
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
pub struct UninstallArgs {
    /// Directory standing for `/` (as given to `daas install`).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

/// Below `root`: `rel` is relative (no leading `/`).
fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

pub fn master_unit(bin: &Path) -> String {
    format!(
        "[Unit]
Description=K3s-DaaS master (API server, scheduler, controllers in the enclave)
Documentation=https://github.com/k3s-daas/k3s-daas
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-{env}
ExecStart={bin} master --config {config}
KillMode=mixed
Restart=always
RestartSec=5s
TimeoutStopSec=60s
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
",
        env = Role::Master.env_file(),
        bin = bin.display(),
        config = Role::Master.config_file(),
    )
}

pub fn agent_unit(bin: &Path) -> String {
    format!(
        "[Unit]
Description=K3s-DaaS staker host agent (stake, attested join, pods through containerd)
Documentation=https://github.com/k3s-daas/k3s-daas
Wants=network-online.target
After=network-online.target containerd.service

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-{env}
ExecStart={bin} agent --config {config}
# Containers live on under their shims when the agent restarts.
KillMode=process
Delegate=yes
Restart=always
RestartSec=5s
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
",
        env = Role::Agent.env_file(),
        bin = bin.display(),
        config = Role::Agent.config_file(),
    )
}

const MASTER_CONFIG: &str =
    "# daas master settings: keys are `daas master` flags (see `daas master --help`);
# a flag given on the command line wins over this file.
data-dir: /var/lib/k3s-daas/master
listen: 0.0.0.0:6443
";

fn env_file(role: Role) -> String {
    let extra = match role {
        Role::Master => "",
        Role::Agent => {
            "# SUI_RPC_ENDPOINT, NAUTILUS_ENDPOINT and MIN_STAKE_AMOUNT override staker-config.json.\n"
        }
    };
    format!(
        "# Environment of {unit} (KEY=value lines).\nRUST_LOG=info\n{extra}",
        unit = role.unit()
    )
}

/// Staker config with its relative paths made absolute (against the file's directory), so that
/// it means the same from /etc/k3s-daas; the data dir defaults to /var/lib/k3s-daas/agent.
fn agent_config(path: &Path) -> Result<Vec<u8>, InstallError> {
    let bad = |reason: String| InstallError::BadAgentConfig {
        path: path.to_path_buf(),
        reason,
    };
    daas_agent::config::AgentConfig::load(path, &|_| None).map_err(|e| bad(e.to_string()))?;
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let base = std::fs::canonicalize(path)
        .map_err(io("resolving", path))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let obj = v
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    for key in ["sui_key_file", "data_dir", "trust_root", "images_dir"] {
        if let Some(serde_json::Value::String(p)) = obj.get(key) {
            if Path::new(p).is_relative() {
                let abs = base.join(p).display().to_string();
                obj.insert(key.into(), abs.into());
            }
        }
    }
    if let Some(serde_json::Value::String(rt)) = obj.get("container_runtime") {
        if rt != "containerd" && Path::new(rt).is_relative() {
            let abs = base.join(rt).display().to_string();
            obj.insert("container_runtime".into(), abs.into());
        }
    }
    obj.entry("data_dir")
        .or_insert_with(|| "/var/lib/k3s-daas/agent".into());
    let mut out = serde_json::to_vec_pretty(&v).map_err(|e| bad(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

fn master_config(path: &Path) -> Result<Vec<u8>, InstallError> {
    let args = crate::config_file::args_from_file(path, "master").map_err(|e| {
        InstallError::BadMasterConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let mut argv = vec!["daas".into(), "master".into()];
    argv.extend(args);
    use clap::Parser;
    crate::Cli::try_parse_from(argv).map_err(|e| InstallError::BadMasterConfig {
        path: path.to_path_buf(),
        reason: crate::report::usage_line(&e),
    })?;
    std::fs::read(path).map_err(io("reading", path))
}

fn read_manifest(root: &Path) -> Result<Vec<String>, InstallError> {
    let path = under(root, MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(InstallError::Io {
            what: "reading",
            path,
            source: e,
        }),
    }
}

fn write_file(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt;
    let path = under(root, rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let tmp = path.with_extension("daas-tmp");
    std::fs::write(&tmp, data).map_err(io("writing", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(io("setting the mode of", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("writing", &path))
}

/// What an install did, for the message printed afterwards.
#[derive(Debug)]
pub struct Installed {
    pub written: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
    pub unit: String,
}

pub fn install(a: &InstallArgs, this_exe: &Path) -> Result<Installed, InstallError> {
    let role = a.role;
    let root = a.root.as_path();
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let mut kept = Vec::new();
    let bin = match &a.bin {
        Some(b) if b.is_relative() => return Err(InstallError::RelativeBin(b.clone())),
        Some(b) => b.clone(),
        None => {
            let data = std::fs::read(this_exe).map_err(io("reading", this_exe))?;
            files.push((BIN_PATH.to_string(), data, 0o755));
            PathBuf::from("/").join(BIN_PATH)
        }
    };
    let unit = match role {
        Role::Master => master_unit(&bin),
        Role::Agent => agent_unit(&bin),
    };
    files.push((
        format!("{UNIT_DIR}/{}", role.unit()),
        unit.into_bytes(),
        0o644,
    ));
    let config_rel = role.config_file().trim_start_matches('/').to_string();
    match (role, &a.config) {
        (Role::Agent, None) => return Err(InstallError::AgentNeedsConfig),
        (Role::Agent, Some(p)) => files.push((config_rel, agent_config(p)?, 0o600)),
        (Role::Master, Some(p)) => files.push((config_rel, master_config(p)?, 0o600)),
        (Role::Master, None) => {
            if under(root, &config_rel).exists() {
                kept.push(under(root, &config_rel));
            } else {
                files.push((config_rel, MASTER_CONFIG.as_bytes().to_vec(), 0o600));
            }
        }
    }
    let env_rel = role.env_file().trim_start_matches('/').to_string();
    if under(root, &env_rel).exists() {
        kept.push(under(root, &env_rel));
    } else {
        files.push((env_rel, env_file(role).into_bytes(), 0o600));
    }
    let mut manifest = read_manifest(root)?;
    let mut written = Vec::new();
    for (rel, data, mode) in &files {
        write_file(root, rel, data, *mode)?;
        written.push(under(root, rel));
        if !manifest.contains(rel) {
            manifest.push(rel.clone());
        }
    }
    let mut text = manifest.join("\n");
    text.push('\n');
    write_file(root, MANIFEST, text.as_bytes(), 0o600)?;
    Ok(Installed {
        written,
        kept,
        unit: role.unit(),
    })
}

/// Removes the files in the manifest (and the manifest), then the directories they leave empty.
/// Returns the removed files. Nothing is stopped: the units were never started by `install`.
pub fn uninstall(a: &UninstallArgs) -> Result<Vec<PathBuf>, InstallError> {
    let root = a.root.as_path();
    let mut removed = Vec::new();
    let mut rels = read_manifest(root)?;
    rels.push(MANIFEST.to_string());
    for rel in &rels {
        // The manifest only names paths below the root that install wrote.
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            continue;
        }
        let path = under(root, rel);
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(InstallError::Io {
                    what: "removing",
                    path,
                    source: e,
                })
            }
        }
    }
    // Directories left empty, deepest first, never the root itself.
    let mut dirs: Vec<PathBuf> = rels
        .iter()
        .flat_map(|rel| {
            Path::new(rel)
                .ancestors()
                .skip(1)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| root.join(p))
                .collect::<Vec<_>>()
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        if std::fs::read_dir(&d).is_ok_and(|mut it| it.next().is_none()) {
            let _ = std::fs::remove_dir(&d);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_unit_keeps_containers_across_restarts() {
        let u = agent_unit(Path::new("/usr/local/bin/daas"));
        assert!(u.contains("KillMode=process\n"));
        assert!(u.contains("Delegate=yes\n"));
        assert!(u.contains("After=network-online.target containerd.service\n"));
        assert!(u.contains(
            "ExecStart=/usr/local/bin/daas agent --config /etc/k3s-daas/staker-config.json\n"
        ));
        let m = master_unit(Path::new("/opt/daas"));
        assert!(m.contains("ExecStart=/opt/daas master --config /etc/k3s-daas/master.yaml\n"));
        assert!(m.contains("Restart=always\n"));
    }

    #[test]
    fn default_master_config_parses_as_master_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, MASTER_CONFIG).expect("write");
        master_config(&p).expect("default master config is valid");
        std::fs::write(&p, "listen: not-an-address\n").expect("write");
        assert!(matches!(
            master_config(&p),
            Err(InstallError::BadMasterConfig { .. })
        ));
    }

    #[test]
    fn a_manifest_cannot_reach_outside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("precious");
        std::fs::write(&outside, "x").expect("write");
        std::fs::create_dir_all(root.join("etc/k3s-daas")).expect("mkdir");
        std::fs::write(root.join(MANIFEST), "../precious\n/../precious\n").expect("write");
        uninstall(&UninstallArgs { root: root.clone() }).expect("uninstall");
        assert!(outside.exists());
        assert!(!root.join(MANIFEST).exists());
    }
}
