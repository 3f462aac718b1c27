use std::collections::BTreeMap;

/// Length of a PCR value with the SHA-384 PCR bank used by Nitro Enclaves.
pub const PCR_LEN: usize = 48;

/// Platform configuration registers of an enclave: index -> 48-byte SHA-384 value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pcrs(pub BTreeMap<u16, [u8; PCR_LEN]>);

impl Pcrs {
    pub fn get(&self, index: u16) -> Option<&[u8; PCR_LEN]> {
        self.0.get(&index)
    }

    pub fn insert(&mut self, index: u16, value: [u8; PCR_LEN]) {
        self.0.insert(index, value);
    }

    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8; PCR_LEN])> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Expect the values of these indices (e.g. `[0, 1, 2]`: image, kernel, application).
    /// Indices missing here are simply not expected.
    pub fn expect(&self, indices: &[u16]) -> ExpectedPcrs {
        let mut e = ExpectedPcrs::default();
        for i in indices {
            if let Some(v) = self.0.get(i) {
                e.0.insert(*i, *v);
            }
        }
        e
    }
}

/// PCR values a verifier requires; only the indices present are compared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedPcrs(pub BTreeMap<u16, [u8; PCR_LEN]>);

impl ExpectedPcrs {
    /// Expect nothing (chain and signature are still verified).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn with(mut self, index: u16, value: [u8; PCR_LEN]) -> Self {
        self.0.insert(index, value);
        self
    }

    /// Parse a hex value (96 hex digits) for `index`.
    pub fn with_hex(self, index: u16, value_hex: &str) -> Result<Self, hex::FromHexError> {
        let mut v = [0u8; PCR_LEN];
        hex::decode_to_slice(value_hex.trim(), &mut v)?;
        Ok(self.with(index, v))
    }
}
