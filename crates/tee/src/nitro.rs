//! AWS Nitro Enclaves backend (cargo feature `nitro`), talking to the Nitro Secure Module through
//! `/dev/nsm` with the `aws-nitro-enclaves-nsm-api` crate. Only works inside an enclave;
//! [`NitroEnclave::open`] fails elsewhere.
//!
//! Sealing key limits: an enclave has no persistent storage and the NSM exposes no stable
//! per-image secret, so the sealing key here is derived (HKDF-SHA256) from NSM entropy drawn at
//! start together with PCR0..2. It is therefore stable for the lifetime of the enclave only:
//! state sealed by a previous boot cannot be reopened. Persisting state across restarts needs a
//! key released by AWS KMS under an attestation-conditioned key policy, which is out of scope.

use std::sync::Mutex;

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use aws_nitro_enclaves_nsm_api::driver::{nsm_exit, nsm_init, nsm_process_request};
use ed25519_dalek::Signer as _;
use hkdf::Hkdf;
use rand::RngCore;
use serde_bytes::ByteBuf;
use sha2::Sha256;

use crate::doc::{MAX_NONCE_LEN, MAX_USER_DATA_LEN};
use crate::pcrs::{Pcrs, PCR_LEN};
use crate::{Enclave, TeeError};

/// Enclave backed by the Nitro Secure Module.
pub struct NitroEnclave {
    fd: Mutex<i32>,
    pcrs: Pcrs,
    sealing_key: [u8; 32],
    identity: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for NitroEnclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NitroEnclave").finish_non_exhaustive()
    }
}

fn nsm_call(fd: i32, req: Request) -> Result<Response, TeeError> {
    match nsm_process_request(fd, req) {
        Response::Error(code) => Err(TeeError::Nsm(format!("{code:?}"))),
        r => Ok(r),
    }
}

fn nsm_random(fd: i32, want: usize) -> Result<Vec<u8>, TeeError> {
    let mut out = Vec::with_capacity(want);
    // Each GetRandom returns a bounded chunk; a few calls are enough for our 64 bytes.
    for _ in 0..64 {
        if out.len() >= want {
            break;
        }
        match nsm_call(fd, Request::GetRandom)? {
            Response::GetRandom { random } if !random.is_empty() => out.extend(random),
            _ => return Err(TeeError::Nsm("unexpected GetRandom response".into())),
        }
    }
    if out.len() < want {
        return Err(TeeError::Nsm("not enough entropy from GetRandom".into()));
    }
    out.truncate(want);
    Ok(out)
}

impl NitroEnclave {
    /// Open `/dev/nsm`, read the PCRs, derive the sealing key and create the identity key.
    pub fn open() -> Result<Self, TeeError> {
        let fd = nsm_init();
        if fd < 0 {
            return Err(TeeError::Nsm(
                "cannot open /dev/nsm (not inside a Nitro Enclave?)".into(),
            ));
        }
        match Self::init(fd) {
            Ok((pcrs, sealing_key, identity)) => Ok(Self {
                fd: Mutex::new(fd),
                pcrs,
                sealing_key,
                identity,
            }),
            Err(e) => {
                nsm_exit(fd);
                Err(e)
            }
        }
    }

    fn init(fd: i32) -> Result<(Pcrs, [u8; 32], ed25519_dalek::SigningKey), TeeError> {
        let max_pcrs = match nsm_call(fd, Request::DescribeNSM)? {
            Response::DescribeNSM { max_pcrs, .. } => max_pcrs,
            _ => return Err(TeeError::Nsm("unexpected DescribeNSM response".into())),
        };
        let mut pcrs = Pcrs::default();
        for index in 0..max_pcrs.min(32) {
            match nsm_call(fd, Request::DescribePCR { index })? {
                Response::DescribePCR { data, .. } => {
                    let v: [u8; PCR_LEN] = data.as_slice().try_into().map_err(|_| {
                        TeeError::Nsm(format!(
                            "PCR{index} is {} bytes, expected SHA-384",
                            data.len()
                        ))
                    })?;
                    pcrs.insert(index, v);
                }
                _ => return Err(TeeError::Nsm("unexpected DescribePCR response".into())),
            }
        }

        let entropy = nsm_random(fd, 64)?;
        let mut ikm = entropy[..32].to_vec();
        for i in 0..3 {
            if let Some(v) = pcrs.get(i) {
                ikm.extend_from_slice(v);
            }
        }
        let hk = Hkdf::<Sha256>::new(Some(b"k3s-daas/tee/nitro/sealing-key/v1"), &ikm);
        let mut sealing_key = [0u8; 32];
        hk.expand(b"state store", &mut sealing_key)
            .map_err(|_| TeeError::Nsm("hkdf".into()))?;

        // Identity seed: NSM entropy mixed with the kernel RNG.
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        for (s, e) in seed.iter_mut().zip(&entropy[32..]) {
            *s ^= e;
        }
        Ok((
            pcrs,
            sealing_key,
            ed25519_dalek::SigningKey::from_bytes(&seed),
        ))
    }
}

impl Drop for NitroEnclave {
    fn drop(&mut self) {
        if let Ok(fd) = self.fd.lock() {
            nsm_exit(*fd);
        }
    }
}

impl Enclave for NitroEnclave {
    fn sealing_key(&self) -> [u8; 32] {
        self.sealing_key
    }

    fn public_key(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.identity.sign(msg).to_bytes()
    }

    fn attestation(
        &self,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, TeeError> {
        if user_data.is_some_and(|u| u.len() > MAX_USER_DATA_LEN)
            || nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN)
        {
            return Err(TeeError::InvalidRequest(
                "user_data and nonce are limited to 512 bytes".into(),
            ));
        }
        let fd = self
            .fd
            .lock()
            .map_err(|_| TeeError::Nsm("nsm lock poisoned".into()))?;
        let req = Request::Attestation {
            user_data: user_data.map(|u| ByteBuf::from(u.to_vec())),
            nonce: nonce.map(|n| ByteBuf::from(n.to_vec())),
            public_key: Some(ByteBuf::from(self.public_key().to_vec())),
        };
        match nsm_call(*fd, req)? {
            Response::Attestation { document } => Ok(document),
            _ => Err(TeeError::Nsm("unexpected Attestation response".into())),
        }
    }

    fn measurement(&self) -> Pcrs {
        self.pcrs.clone()
    }

    fn measurement_key(&self) -> Result<[u8; 32], TeeError> {
        Err(TeeError::Unsupported {
            backend: "nitro",
            what:
                "a measurement-bound key needs AWS KMS with an attestation-conditioned key policy",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_fails_outside_an_enclave() {
        if std::path::Path::new("/dev/nsm").exists() {
            return;
        }
        assert!(matches!(NitroEnclave::open(), Err(TeeError::Nsm(_))));
    }
}
