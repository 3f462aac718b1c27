//! `--config FILE` for `daas master` / `daas up` (like K3s' `/etc/rancher/k3s/config.yaml`): a
//! YAML or JSON mapping whose keys are the command's long flag names and whose values are the
//! flag values (a list for repeatable flags such as `tls-san`). The settings become command-line
//! arguments; a flag given on the command line replaces the file's setting of it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML or JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("config file {path} must be a mapping of flag names to values")]
    NotMapping { path: PathBuf },
    #[error("config file {path}: unknown setting {key:?} for `daas {command}` (known: {known})")]
    UnknownKey {
        path: PathBuf,
        key: String,
        command: String,
        known: String,
    },
    #[error(
        "config file {path}: setting {key:?} must be a string, number, boolean or a list of them"
    )]
    BadValue { path: PathBuf, key: String },
}

/// Long flag names `command` accepts (without `--`), except `config` itself and help/version.
fn known_flags(command: &str) -> Vec<String> {
    let cli = crate::Cli::command();
    let Some(sub) = cli.find_subcommand(command) else {
        return Vec::new();
    };
    sub.get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !matches!(*l, "config" | "help" | "version"))
        .map(str::to_string)
        .collect()
}

fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The arguments a config file stands for, for the subcommand `command` (`master`, `up`).
pub fn args_from_file(path: &Path, command: &str) -> Result<Vec<OsString>, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    args_from_str(&text, path, command)
}

pub(crate) fn args_from_str(
    text: &str,
    path: &Path,
    command: &str,
) -> Result<Vec<OsString>, ConfigFileError> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|source| ConfigFileError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let map = match value {
        serde_yaml::Value::Mapping(m) => m,
        // An empty file is an empty configuration.
        serde_yaml::Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(ConfigFileError::NotMapping {
                path: path.to_path_buf(),
            })
        }
    };
    let known = known_flags(command);
    let mut args = Vec::new();
    for (k, v) in map {
        let key = scalar(&k).unwrap_or_default();
        if !known.contains(&key) {
            return Err(ConfigFileError::UnknownKey {
                path: path.to_path_buf(),
                key,
                command: command.to_string(),
                known: known.join(", "),
            });
        }
        let bad = || ConfigFileError::BadValue {
            path: path.to_path_buf(),
            key: key.clone(),
        };
        match v {
            serde_yaml::Value::Sequence(items) => {
                for item in items {
                    let s = scalar(&item).ok_or_else(bad)?;
                    args.push(OsString::from(format!("--{key}={s}")));
                }
            }
            serde_yaml::Value::Null => {}
            other => {
                let s = scalar(&other).ok_or_else(bad)?;
                args.push(OsString::from(format!("--{key}={s}")));
            }
        }
    }
    Ok(args)
}

/// Index of the subcommand in `args` (the first argument after the program name that is not a
/// flag; the global flags take no values).
pub fn subcommand_index(args: &[OsString]) -> Option<usize> {
    args.iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| !a.to_string_lossy().starts_with('-'))
        .map(|(i, _)| i)
}

/// The flag name of a `--name` or `--name=value` argument.
fn flag_name(arg: &OsString) -> Option<String> {
    let s = arg.to_string_lossy();
    let rest = s.strip_prefix("--")?;
    Some(rest.split('=').next().unwrap_or(rest).to_string())
}

/// `args` with the config file's arguments inserted right after the subcommand, except those
/// for flags that are typed on the command line.
pub fn merge(args: &[OsString], file_args: Vec<OsString>) -> Vec<OsString> {
    match subcommand_index(args) {
        Some(i) => {
            let typed: Vec<String> = args[i + 1..].iter().filter_map(flag_name).collect();
            let mut out = args[..=i].to_vec();
            out.extend(
                file_args
                    .into_iter()
                    .filter(|a| flag_name(a).is_none_or(|n| !typed.contains(&n))),
            );
            out.extend_from_slice(&args[i + 1..]);
            out
        }
        None => args.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_settings_become_flags_and_the_command_line_wins() {
        let file = args_from_str(
            "listen: 0.0.0.0:7443\ntls-san: [a.example, 10.0.0.1]\nnode-grace-seconds: 60\ndata-dir: /var/lib/x\nbookmark-seconds: 7\n",
            Path::new("c.yaml"),
            "master",
        )
        .expect("valid config");
        let typed = os(&[
            "daas",
            "-v",
            "master",
            "--listen",
            "127.0.0.1:9443",
            "--bookmark-seconds=9",
        ]);
        let merged = merge(&typed, file);
        let cli = crate::Cli::try_parse_from(merged).expect("parses");
        assert!(cli.verbose);
        let crate::Cmd::Master(m) = cli.cmd else {
            panic!("not master")
        };
        assert_eq!(m.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(m.tls_san, vec!["a.example", "10.0.0.1"]);
        assert_eq!(m.node_grace_seconds, 60);
        assert_eq!(m.data_dir, Some(PathBuf::from("/var/lib/x")));
        assert_eq!(m.bookmark_seconds, 9);
        // A typed list flag replaces the file's list.
        let file = args_from_str("tls-san: [a, b]\n", Path::new("c.yaml"), "master").expect("ok");
        let merged = merge(&os(&["daas", "master", "--tls-san", "c"]), file);
        let crate::Cmd::Master(m) = crate::Cli::try_parse_from(merged).expect("parses").cmd else {
            panic!("not master")
        };
        assert_eq!(m.tls_san, vec!["c"]);
    }

    #[test]
    fn joining_settings_come_from_the_file() {
        let file = args_from_str(
            "server: https://10.0.0.1:6443\nenclave-dev-root: /var/lib/platform\n",
            Path::new("c.yaml"),
            "master",
        )
        .expect("ok");
        let merged = merge(&os(&["daas", "master"]), file);
        let crate::Cmd::Master(m) = crate::Cli::try_parse_from(merged).expect("parses").cmd else {
            panic!("not master")
        };
        assert_eq!(m.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(m.enclave_dev_root, Some(PathBuf::from("/var/lib/platform")));
    }

    #[test]
    fn json_is_accepted_too() {
        let file = args_from_str(r#"{"listen": "0.0.0.0:6443"}"#, Path::new("c.json"), "up")
            .expect("json config");
        assert_eq!(file, os(&["--listen=0.0.0.0:6443"]));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = args_from_str("lisen: x\n", Path::new("c.yaml"), "master").unwrap_err();
        assert!(matches!(e, ConfigFileError::UnknownKey { ref key, .. } if key == "lisen"));
        assert!(e.to_string().contains("listen"), "{e}");
        let e = args_from_str("config: other.yaml\n", Path::new("c.yaml"), "master").unwrap_err();
        assert!(matches!(e, ConfigFileError::UnknownKey { .. }));
        let e = args_from_str("listen: {a: 1}\n", Path::new("c.yaml"), "master").unwrap_err();
        assert!(matches!(e, ConfigFileError::BadValue { .. }));
        let e = args_from_str("- listen\n", Path::new("c.yaml"), "master").unwrap_err();
        assert!(matches!(e, ConfigFileError::NotMapping { .. }));
        let e = args_from_str("listen: [\n", Path::new("c.yaml"), "master").unwrap_err();
        assert!(matches!(e, ConfigFileError::Parse { .. }));
        assert!(args_from_str("", Path::new("c.yaml"), "master")
            .expect("empty file")
            .is_empty());
    }

    #[test]
    fn subcommand_is_the_first_non_flag() {
        assert_eq!(
            subcommand_index(&os(&["daas", "--verbose", "master", "x"])),
            Some(2)
        );
        assert_eq!(subcommand_index(&os(&["daas", "-v"])), None);
    }
}
