//! Master-side SEV-SNP and TDX evidence: [`EvidenceProvider`] and its real implementation
//! [`ConfigfsTsm`] over Linux configfs-tsm, the kernel's common report interface for SEV-SNP
//! (`sev_guest`) and TDX (`tdx_guest`) guests (Documentation/ABI/testing/configfs-tsm).
//!
//! One report: in `<tsm>/report/<entry>/` (created with mkdir, the kernel fills in the
//! attributes) write the 64-byte `inblob` (the report data), read `generation`, read `outblob`
//! (the SNP report / the TDX quote, produced on read), read `auxblob` (SNP: the host's
//! certificate table, if it supplies one), and read `generation` again: a different value means
//! another writer changed the entry in between, and the report is refused
//! ([`TsmError::Raced`]). `provider` must name the platform the master was started for.
//!
//! What the client needs to verify offline travels with the report: SNP: the VCEK from the
//! auxblob's certificate table (GUID 63da758d-e664-4564-adc5-f4b93be8accd), else the operator's
//! `--sev-vcek` file; TDX: the quote (carrying its PCK chain) plus the operator's DCAP collateral
//! (`--tdx-collateral`, signed by Intel). Both come from the untrusted host: the client checks
//! them against the pinned AMD / Intel roots, so a swapped VCEK or collateral is refused there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::platform::{Evidence, Platform};
use crate::tdx::TdxCollateral;

/// Evidence for the master's platform whose report data is what the caller asks for.
pub trait EvidenceProvider: Send + Sync {
    fn platform(&self) -> Platform;
    /// Evidence (report / quote plus what a verifier needs) carrying `report_data`.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TsmError>;
}

/// Errors of [`ConfigfsTsm`].
#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    #[error("configfs-tsm {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "configfs-tsm provides {found:?}, the master was started for {platform} ({expected:?})"
    )]
    Provider {
        platform: Platform,
        expected: &'static str,
        found: String,
    },
    #[error("configfs-tsm generation changed from {before} to {after} while the report was read (another writer): refused")]
    Raced { before: String, after: String },
    #[error("configfs-tsm returned an empty report")]
    EmptyReport,
    #[error("SEV-SNP: no VCEK in the host's certificate table and none given (--sev-vcek)")]
    NoVcek,
    #[error("SEV-SNP certificate table (auxblob) is malformed: {0}")]
    CertTable(&'static str),
    #[error("TDX needs the DCAP collateral (--tdx-collateral)")]
    NoCollateral,
    #[error("configfs-tsm serves SEV-SNP and TDX, not {0}")]
    Platform(Platform),
}

/// The `provider` attribute's value for each platform.
pub fn provider_name(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::SevSnp => Some("sev_guest"),
        Platform::Tdx => Some("tdx_guest"),
        Platform::Nitro => None,
    }
}

/// VCEK entry of the SEV-SNP certificate table (GHCB spec), as RFC 4122 bytes.
const VCEK_GUID: [u8; 16] = [
    0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];

/// The same GUID in the mixed-endian (EFI) byte order some hosts write.
fn vcek_guid_mixed() -> [u8; 16] {
    let g = VCEK_GUID;
    [
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
        g[14], g[15],
    ]
}

/// The VCEK (DER) in an SEV-SNP certificate table: entries of GUID (16 bytes), offset (u32 LE,
/// from the table start), length (u32 LE), closed by an all-zero entry. `Ok(None)`: an empty
/// table or none with the VCEK GUID.
pub fn vcek_from_cert_table(table: &[u8]) -> Result<Option<Vec<u8>>, TsmError> {
    if table.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let mixed = vcek_guid_mixed();
    for entry in table.chunks(24) {
        let entry: &[u8; 24] = entry
            .try_into()
            .map_err(|_| TsmError::CertTable("no terminating entry"))?;
        let (guid, rest) = entry.split_at(16);
        if guid.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        if guid != VCEK_GUID && guid != mixed {
            continue;
        }
        let le = |b: &[u8]| -> usize {
            let mut a = [0u8; 4];
            a.copy_from_slice(b);
            u32::from_le_bytes(a) as usize
        };
        let (offset, len) = (le(&rest[..4]), le(&rest[4..]));
        let cert = offset
            .checked_add(len)
            .and_then(|end| table.get(offset..end))
            .filter(|c| !c.is_empty())
            .ok_or(TsmError::CertTable("VCEK entry outside the table"))?;
        return Ok(Some(cert.to_vec()));
    }
    Err(TsmError::CertTable("no terminating entry"))
}

/// configfs-tsm (real implementation). `root` is the tsm directory
/// (`/sys/kernel/config/tsm`); the report entry `report/<entry>` is created when missing.
pub struct ConfigfsTsm {
    root: PathBuf,
    entry: String,
    platform: Platform,
    vcek: Option<Vec<u8>>,
    collateral: Option<TdxCollateral>,
    /// One report at a time through this entry.
    lock: Mutex<()>,
}

impl ConfigfsTsm {
    /// `vcek`: the operator's VCEK (DER) used when the host supplies no certificate table;
    /// `collateral`: required on TDX.
    pub fn new(
        root: impl Into<PathBuf>,
        platform: Platform,
        vcek: Option<Vec<u8>>,
        collateral: Option<TdxCollateral>,
    ) -> Result<Self, TsmError> {
        provider_name(platform).ok_or(TsmError::Platform(platform))?;
        if platform == Platform::Tdx && collateral.is_none() {
            return Err(TsmError::NoCollateral);
        }
        Ok(ConfigfsTsm {
            root: root.into(),
            entry: "k3s-daas".into(),
            platform,
            vcek,
            collateral,
            lock: Mutex::new(()),
        })
    }

    /// The report entry's directory.
    pub fn entry_dir(&self) -> PathBuf {
        self.root.join("report").join(&self.entry)
    }

    fn read(path: &Path) -> Result<Vec<u8>, TsmError> {
        std::fs::read(path).map_err(|source| TsmError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn read_text(path: &Path) -> Result<String, TsmError> {
        Ok(String::from_utf8_lossy(&Self::read(path)?)
            .trim()
            .to_string())
    }
}

impl EvidenceProvider for ConfigfsTsm {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TsmError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.entry_dir();
        if !dir.is_dir() {
            std::fs::create_dir(&dir).map_err(|source| TsmError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let expected = provider_name(self.platform).ok_or(TsmError::Platform(self.platform))?;
        let found = Self::read_text(&dir.join("provider"))?;
        if found != expected {
            return Err(TsmError::Provider {
                platform: self.platform,
                expected,
                found,
            });
        }
        let inblob = dir.join("inblob");
        std::fs::write(&inblob, report_data).map_err(|source| TsmError::Io {
            path: inblob.display().to_string(),
            source,
        })?;
        let before = Self::read_text(&dir.join("generation"))?;
        let out = Self::read(&dir.join("outblob"))?;
        let aux = match self.platform {
            Platform::SevSnp if dir.join("auxblob").exists() => Self::read(&dir.join("auxblob"))?,
            _ => Vec::new(),
        };
        let after = Self::read_text(&dir.join("generation"))?;
        if before != after {
            return Err(TsmError::Raced { before, after });
        }
        if out.is_empty() {
            return Err(TsmError::EmptyReport);
        }
        match self.platform {
            Platform::SevSnp => {
                let vcek = match vcek_from_cert_table(&aux)? {
                    Some(v) => v,
                    None => self.vcek.clone().ok_or(TsmError::NoVcek)?,
                };
                Ok(Evidence::SevSnp { report: out, vcek })
            }
            Platform::Tdx => Ok(Evidence::Tdx {
                quote: out,
                collateral: Box::new(self.collateral.clone().ok_or(TsmError::NoCollateral)?),
            }),
            Platform::Nitro => Err(TsmError::Platform(Platform::Nitro)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! These tests run [`ConfigfsTsm`] against a TEST DOUBLE of the kernel interface: a temporary
    //! directory laid out like `/sys/kernel/config/tsm/report/<entry>/` whose files the test
    //! writes itself (a real kernel produces `outblob` on read and bumps `generation` on writes).
    use super::*;

    const REPORT: &[u8] = include_bytes!("../tests/fixtures/sev-snp/report_milan.bin");
    const VCEK: &[u8] = include_bytes!("../tests/fixtures/sev-snp/vcek_milan.der");
    const QUOTE: &[u8] = include_bytes!("../tests/fixtures/tdx/tdx_quote.bin");
    const COLLATERAL: &[u8] = include_bytes!("../tests/fixtures/tdx/tdx_quote_collateral.json");

    /// The double: `report/k3s-daas/` with provider, generation, outblob (and auxblob).
    fn kernel_double(provider: &str, outblob: &[u8], auxblob: Option<&[u8]>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let e = t.path().join("report").join("k3s-daas");
        std::fs::create_dir_all(&e).unwrap();
        std::fs::write(e.join("provider"), format!("{provider}\n")).unwrap();
        std::fs::write(e.join("generation"), "1\n").unwrap();
        std::fs::write(e.join("outblob"), outblob).unwrap();
        if let Some(a) = auxblob {
            std::fs::write(e.join("auxblob"), a).unwrap();
        }
        t
    }

    fn cert_table(guid: [u8; 16], cert: &[u8]) -> Vec<u8> {
        let mut t = guid.to_vec();
        t.extend_from_slice(&48u32.to_le_bytes());
        t.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        t.extend_from_slice(&[0u8; 24]);
        t.extend_from_slice(cert);
        t
    }

    #[test]
    fn snp_report_with_the_vcek_from_the_hosts_certificate_table() {
        let table = cert_table(VCEK_GUID, VCEK);
        let t = kernel_double("sev_guest", REPORT, Some(&table));
        let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, None, None).unwrap();
        let rd = [7u8; 64];
        let Evidence::SevSnp { report, vcek } = tsm.evidence(&rd).unwrap() else {
            panic!("not SNP evidence")
        };
        assert_eq!((report.as_slice(), vcek.as_slice()), (REPORT, VCEK));
        // The report data was written to inblob.
        assert_eq!(std::fs::read(tsm.entry_dir().join("inblob")).unwrap(), rd);
        // The mixed-endian GUID spelling is found too.
        let t = kernel_double(
            "sev_guest",
            REPORT,
            Some(&cert_table(vcek_guid_mixed(), VCEK)),
        );
        let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, None, None).unwrap();
        assert!(matches!(tsm.evidence(&rd), Ok(Evidence::SevSnp { vcek, .. }) if vcek == VCEK));
    }

    #[test]
    fn snp_falls_back_to_the_operators_vcek_and_needs_one() {
        // No auxblob, then an empty (all-zero) one: the operator's --sev-vcek.
        for aux in [None, Some(&[0u8; 24][..])] {
            let t = kernel_double("sev_guest", REPORT, aux);
            let tsm =
                ConfigfsTsm::new(t.path(), Platform::SevSnp, Some(VCEK.to_vec()), None).unwrap();
            assert!(
                matches!(tsm.evidence(&[0; 64]), Ok(Evidence::SevSnp { vcek, .. }) if vcek == VCEK)
            );
            let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, None, None).unwrap();
            assert!(matches!(tsm.evidence(&[0; 64]), Err(TsmError::NoVcek)));
        }
    }

    #[test]
    fn tdx_quote_with_the_operators_collateral() {
        let t = kernel_double("tdx_guest", QUOTE, None);
        let c = TdxCollateral::from_json(COLLATERAL).unwrap();
        assert!(matches!(
            ConfigfsTsm::new(t.path(), Platform::Tdx, None, None),
            Err(TsmError::NoCollateral)
        ));
        let tsm = ConfigfsTsm::new(t.path(), Platform::Tdx, None, Some(c.clone())).unwrap();
        let Evidence::Tdx { quote, collateral } = tsm.evidence(&[1; 64]).unwrap() else {
            panic!("not TDX evidence")
        };
        assert_eq!(quote, QUOTE);
        assert_eq!(*collateral, c);
    }

    #[test]
    fn another_provider_an_empty_report_and_nitro_are_refused() {
        let t = kernel_double("tdx_guest", QUOTE, None);
        let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, Some(VCEK.to_vec()), None).unwrap();
        assert!(matches!(
            tsm.evidence(&[0; 64]),
            Err(TsmError::Provider { found, .. }) if found == "tdx_guest"
        ));
        let t = kernel_double("sev_guest", b"", None);
        let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, Some(VCEK.to_vec()), None).unwrap();
        assert!(matches!(tsm.evidence(&[0; 64]), Err(TsmError::EmptyReport)));
        assert!(matches!(
            ConfigfsTsm::new(t.path(), Platform::Nitro, None, None),
            Err(TsmError::Platform(Platform::Nitro))
        ));
    }

    #[test]
    fn missing_configfs_is_an_io_error() {
        let t = tempfile::tempdir().unwrap();
        // No report/ directory: the entry cannot be created (as without configfs-tsm).
        let tsm = ConfigfsTsm::new(t.path(), Platform::SevSnp, None, None).unwrap();
        assert!(matches!(tsm.evidence(&[0; 64]), Err(TsmError::Io { .. })));
    }

    #[test]
    fn malformed_certificate_tables_are_refused() {
        assert_eq!(vcek_from_cert_table(&[]).unwrap(), None);
        let mut t = cert_table(VCEK_GUID, VCEK);
        // Offset past the end.
        t[16..20].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(
            vcek_from_cert_table(&t),
            Err(TsmError::CertTable(_))
        ));
        // No terminator.
        let mut other = [0x11u8; 16].to_vec();
        other.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            vcek_from_cert_table(&other),
            Err(TsmError::CertTable(_))
        ));
        // Only other certificates: none.
        let t = cert_table([0x22; 16], b"ask");
        assert_eq!(vcek_from_cert_table(&t).unwrap(), None);
    }
}
