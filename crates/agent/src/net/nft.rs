//! nftables tables owned by the agent, applied atomically with the `nft` binary.
//!
//! Each networking part owns whole tables ([`Table`]): applying one sends a single `nft -f -`
//! transaction that creates the table if missing, deletes it and declares its full contents, so
//! the kernel switches from the old rules to the new ones at once and a re-apply repairs any
//! manual change. Nothing outside the agent's own tables is ever touched.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

/// An address family of an nftables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Bridge,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Bridge => "bridge",
        })
    }
}

/// One table's full contents: `body` is what goes between the braces of `table <family> <name>`
/// (sets, maps, chains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub name: String,
    pub body: String,
}

impl Table {
    pub fn new(family: Family, name: impl Into<String>, body: impl Into<String>) -> Self {
        Table {
            family,
            name: name.into(),
            body: body.into(),
        }
    }

    /// The `nft -f` script replacing the table atomically: declare (creating it if missing),
    /// delete, then declare its contents. A delete rather than a flush: `flush table` keeps the
    /// elements of sets and maps, so an element added by hand would survive a re-apply.
    pub fn script(&self) -> String {
        let (f, n) = (self.family, &self.name);
        format!(
            "table {f} {n}\ndelete table {f} {n}\ntable {f} {n} {{\n{}\n}}\n",
            self.body
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nft refused the {family} table {name}: {stderr}")]
    Refused {
        family: Family,
        name: String,
        stderr: String,
    },
}

/// Where the agent's tables are programmed.
#[async_trait]
pub trait Firewall: Send + Sync {
    /// Replace `table` with exactly its contents, atomically.
    async fn apply(&self, table: &Table) -> Result<(), NftError>;
    /// Delete a table (no error when it does not exist).
    async fn remove(&self, family: Family, name: &str) -> Result<(), NftError>;
    /// The table as the kernel has it now (`nft list table`), or `None` when it does not exist:
    /// how a part notices that its rules were changed or removed behind its back.
    async fn list(&self, family: Family, name: &str) -> Result<Option<String>, NftError>;
}

/// The real firewall: the `nft` binary, in the agent's network namespace (or, for tests, in
/// the named one under `/run/netns`).
#[derive(Debug, Clone)]
pub struct NftCli {
    pub bin: PathBuf,
    pub netns: Option<String>,
}

impl Default for NftCli {
    fn default() -> Self {
        NftCli {
            bin: "nft".into(),
            netns: None,
        }
    }
}

impl NftCli {
    fn command(&self) -> tokio::process::Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = tokio::process::Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(&self.bin);
                c
            }
            None => tokio::process::Command::new(&self.bin),
        };
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, script: &str, family: Family, name: &str) -> Result<(), NftError> {
        let spawn = |source| NftError::Spawn {
            bin: self.bin.clone(),
            source,
        };
        let mut child = self.command().args(["-f", "-"]).spawn().map_err(spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(spawn)?;
        }
        let out = child.wait_with_output().await.map_err(spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Refused {
                family,
                name: name.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

#[async_trait]
impl Firewall for NftCli {
    async fn apply(&self, table: &Table) -> Result<(), NftError> {
        self.run(&table.script(), table.family, &table.name).await
    }

    async fn remove(&self, family: Family, name: &str) -> Result<(), NftError> {
        // Declaring it first makes the delete succeed whether or not it existed.
        let script = format!("table {family} {name}\ndelete table {family} {name}\n");
        self.run(&script, family, name).await
    }

    async fn list(&self, family: Family, name: &str) -> Result<Option<String>, NftError> {
        let spawn = |source| NftError::Spawn {
            bin: self.bin.clone(),
            source,
        };
        let mut c = self.command();
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped());
        let out = c
            .args(["list", "table", &family.to_string(), name])
            .output()
            .await
            .map_err(spawn)?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(NftError::Refused {
                family,
                name: name.to_string(),
                stderr,
            })
        }
    }
}

/// A firewall that records what it was asked to program (for unit tests of the parts).
#[derive(Debug, Default)]
pub struct RecordingFirewall {
    pub tables: Mutex<Vec<Table>>,
}

impl RecordingFirewall {
    /// The last applied contents of `family`/`name`, if it is present.
    pub fn table(&self, family: Family, name: &str) -> Option<Table> {
        self.tables
            .lock()
            .ok()?
            .iter()
            .find(|t| t.family == family && t.name == name)
            .cloned()
    }
}

#[async_trait]
impl Firewall for RecordingFirewall {
    async fn apply(&self, table: &Table) -> Result<(), NftError> {
        if let Ok(mut t) = self.tables.lock() {
            t.retain(|x| !(x.family == table.family && x.name == table.name));
            t.push(table.clone());
        }
        Ok(())
    }

    async fn remove(&self, family: Family, name: &str) -> Result<(), NftError> {
        if let Ok(mut t) = self.tables.lock() {
            t.retain(|x| !(x.family == family && x.name == name));
        }
        Ok(())
    }

    async fn list(&self, family: Family, name: &str) -> Result<Option<String>, NftError> {
        Ok(self.table(family, name).map(|t| t.body))
    }
}

/// A network namespace made for one test, with the real `nft` in it; deleted when dropped (also
/// when the test fails). `None` (and a "skipped" line) without root or without `nft`.
#[cfg(test)]
pub(crate) struct ScratchNetns {
    pub name: String,
}

#[cfg(test)]
impl ScratchNetns {
    pub(crate) fn new(tag: &str) -> Option<ScratchNetns> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() == 0 };
        if !root
            || std::process::Command::new("nft")
                .arg("-v")
                .output()
                .is_err()
        {
            eprintln!("skipped: needs root and nft");
            return None;
        }
        let name = format!("daas-{tag}-{}", std::process::id());
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Some(ScratchNetns { name })
    }

    /// The real firewall inside this namespace.
    pub(crate) fn nft(&self) -> NftCli {
        NftCli {
            netns: Some(self.name.clone()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replaces_the_table_in_one_transaction() {
        let t = Table::new(
            Family::Ip,
            "daas-test",
            "chain c { type filter hook input priority 0; }",
        );
        assert_eq!(
            t.script(),
            "table ip daas-test\ndelete table ip daas-test\ntable ip daas-test {\nchain c { type filter hook input priority 0; }\n}\n"
        );
    }

    #[tokio::test]
    async fn recording_firewall_keeps_the_last_contents() {
        let f = RecordingFirewall::default();
        f.apply(&Table::new(Family::Inet, "a", "1")).await.unwrap();
        f.apply(&Table::new(Family::Inet, "a", "2")).await.unwrap();
        assert_eq!(f.table(Family::Inet, "a").unwrap().body, "2");
        f.remove(Family::Inet, "a").await.unwrap();
        assert!(f.table(Family::Inet, "a").is_none());
    }

    /// The real `nft` in a namespace made for the test: apply, repair after tampering, reject
    /// bad input with nft's message, remove.
    #[tokio::test]
    async fn nft_applies_repairs_and_removes_tables_in_a_namespace() {
        let Some(scratch) = ScratchNetns::new("nft") else {
            return;
        };
        let ns = scratch.name.clone();
        let list = || {
            let o = std::process::Command::new("nsenter")
                .arg(format!("--net=/run/netns/{ns}"))
                .args(["--", "nft", "list", "ruleset"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        let nft = scratch.nft();
        let t = Table::new(
            Family::Inet,
            "daas-test",
            "set allowed { type ipv4_addr; elements = { 10.0.0.1 } }\n\
             chain input { type filter hook input priority 0; policy accept; ip saddr @allowed accept; }",
        );
        nft.apply(&t).await.unwrap();
        assert!(list().contains("10.0.0.1"), "{}", list());
        // Tampering: a rule added by hand is gone after the next apply.
        let o = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .args([
                "--",
                "nft",
                "add",
                "rule",
                "inet",
                "daas-test",
                "input",
                "tcp",
                "dport",
                "9999",
                "drop",
            ])
            .status()
            .unwrap();
        assert!(o.success());
        let o = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .args([
                "--",
                "nft",
                "add",
                "element",
                "inet",
                "daas-test",
                "allowed",
                "{",
                "10.9.9.9",
                "}",
            ])
            .status()
            .unwrap();
        assert!(o.success());
        assert!(list().contains("9999") && list().contains("10.9.9.9"));
        assert!(nft
            .list(Family::Inet, "daas-test")
            .await
            .unwrap()
            .is_some_and(|t| t.contains("10.9.9.9")));
        nft.apply(&t).await.unwrap();
        // Both the hand-made rule and the hand-added set element are gone.
        assert!(!list().contains("9999"), "{}", list());
        assert!(!list().contains("10.9.9.9"), "{}", list());
        // Bad input: nft's own message, and the table is left as it was.
        let bad = Table::new(Family::Inet, "daas-test", "chain input { bogus }");
        match nft.apply(&bad).await {
            Err(NftError::Refused { stderr, .. }) => assert!(!stderr.is_empty()),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(list().contains("10.0.0.1"), "{}", list());
        nft.remove(Family::Inet, "daas-test").await.unwrap();
        assert!(!list().contains("daas-test"));
        assert_eq!(nft.list(Family::Inet, "daas-test").await.unwrap(), None);
        nft.remove(Family::Inet, "daas-test").await.unwrap();
    }
}
