// Cross-checks transactions and signatures produced by daas-ledger (crates/ledger/src/tx.rs)
// against the official Sui TypeScript SDK.
//
// stdin: JSON array of cases
//   { name, tx_bytes_b64, signature_b64, digest, sender,
//     expect_valid?            (default true: the signature must verify and recover `sender`),
//     personal_message_b64?, personal_signature_b64?,
//     suiprivkey?, seed_hex?   (key encoding check: must decode to seed_hex and derive `sender`),
//     calls?: ["module::function", ...]            (MoveCalls in order),
//     pure?: [{ type: "u8"|"u64"|"address"|"string"|"vector<u8>", value }] (Pure inputs in order) }
// stdout: JSON array of per-case results (see `check` below); exit code 0 unless the input is unusable.

import { readFileSync } from 'node:fs';
import { bcs } from '@mysten/sui/bcs';
import { Transaction } from '@mysten/sui/transactions';
import { TransactionDataBuilder } from '@mysten/sui/transactions';
import { verifyTransactionSignature, verifyPersonalMessageSignature } from '@mysten/sui/verify';
import { decodeSuiPrivateKey } from '@mysten/sui/cryptography';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { fromBase64, toBase64, toHex, normalizeSuiAddress } from '@mysten/sui/utils';

function bytesOf(v) {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return fromBase64(v);
  if (Array.isArray(v)) return Uint8Array.from(v);
  throw new Error(`unexpected bytes value ${JSON.stringify(v)}`);
}

function decodePure(type, bytes) {
  switch (type) {
    case 'u8':
      return String(bcs.u8().parse(bytes));
    case 'u64':
      return String(bcs.u64().parse(bytes));
    case 'address':
      return normalizeSuiAddress(bcs.Address.parse(bytes));
    case 'string':
      return bcs.string().parse(bytes);
    case 'vector<u8>':
      return toHex(Uint8Array.from(bcs.vector(bcs.u8()).parse(bytes)));
    default:
      throw new Error(`unknown pure type ${type}`);
  }
}

async function check(c) {
  const r = { name: c.name, errors: [] };
  const fail = (what, e) => r.errors.push(`${what}: ${e && e.message ? e.message : e}`);
  const expectValid = c.expect_valid !== false;
  let bytes;
  try {
    bytes = fromBase64(c.tx_bytes_b64);
  } catch (e) {
    fail('base64', e);
    return r;
  }

  // 1. Parse with the BCS schema and with Transaction.from.
  let parsed;
  try {
    parsed = bcs.TransactionData.parse(bytes);
    r.parsed = true;
  } catch (e) {
    r.parsed = false;
    fail('bcs.TransactionData.parse', e);
  }
  let tx;
  try {
    tx = Transaction.from(bytes);
  } catch (e) {
    fail('Transaction.from', e);
  }

  // 2. Digest, two ways.
  try {
    r.digest = TransactionDataBuilder.getDigestFromBytes(bytes);
    r.digest_match = r.digest === c.digest;
  } catch (e) {
    fail('getDigestFromBytes', e);
  }
  if (tx) {
    try {
      r.tx_digest = await tx.getDigest();
      r.tx_digest_match = r.tx_digest === c.digest;
    } catch (e) {
      fail('Transaction.getDigest', e);
    }
    // 3. Re-serialize with the SDK: the bytes must be identical.
    try {
      const rebuilt = await tx.build();
      r.rebuilt_bytes_match = toBase64(rebuilt) === c.tx_bytes_b64;
    } catch (e) {
      fail('Transaction.build', e);
    }
  }

  // 4. Sender, MoveCalls and pure arguments as the SDK reads them.
  if (parsed) {
    const v1 = parsed.V1;
    r.parsed_sender = normalizeSuiAddress(v1.sender);
    r.sender_match = r.parsed_sender === normalizeSuiAddress(c.sender);
    r.gas_owner_match = normalizeSuiAddress(v1.gasData.owner) === normalizeSuiAddress(c.sender);
    const ptb = v1.kind.ProgrammableTransaction;
    if (!ptb) {
      fail('kind', 'not a ProgrammableTransaction');
    } else {
      if (c.calls) {
        const calls = ptb.commands.filter((cmd) => cmd.MoveCall).map((cmd) => `${cmd.MoveCall.module}::${cmd.MoveCall.function}`);
        r.calls = calls;
        r.calls_match = JSON.stringify(calls) === JSON.stringify(c.calls);
      }
      if (c.pure) {
        const pures = ptb.inputs.filter((i) => i.Pure).map((i) => bytesOf(i.Pure.bytes));
        r.pure_match = pures.length === c.pure.length;
        r.pure = [];
        for (let k = 0; k < Math.min(pures.length, c.pure.length); k++) {
          try {
            const got = decodePure(c.pure[k].type, pures[k]);
            r.pure.push(got);
            if (got !== String(c.pure[k].value)) r.pure_match = false;
          } catch (e) {
            r.pure_match = false;
            fail(`pure[${k}]`, e);
          }
        }
      }
    }
  }

  // 5. Transaction signature.
  try {
    const pk = await verifyTransactionSignature(bytes, c.signature_b64);
    r.signature_valid = true;
    r.signer = pk.toSuiAddress();
    r.signer_matches_sender = r.signer === normalizeSuiAddress(c.sender);
  } catch (e) {
    r.signature_valid = false;
    if (expectValid) fail('verifyTransactionSignature', e);
  }
  if (expectValid) {
    // The SDK's own address check must also accept it.
    try {
      await verifyTransactionSignature(bytes, c.signature_b64, { address: c.sender });
      r.sdk_address_check = true;
    } catch (e) {
      r.sdk_address_check = false;
      fail('verifyTransactionSignature({address})', e);
    }
  }

  // 6. Personal message signature.
  if (c.personal_message_b64 !== undefined && c.personal_signature_b64 !== undefined) {
    try {
      const pk = await verifyPersonalMessageSignature(fromBase64(c.personal_message_b64), c.personal_signature_b64);
      r.personal_valid = true;
      r.personal_signer = pk.toSuiAddress();
      r.personal_signer_matches_sender = r.personal_signer === normalizeSuiAddress(c.sender);
    } catch (e) {
      r.personal_valid = false;
      if (expectValid) fail('verifyPersonalMessageSignature', e);
    }
  }

  // 7. Key encoding.
  if (c.suiprivkey) {
    try {
      const { schema, secretKey } = decodeSuiPrivateKey(c.suiprivkey);
      r.key_scheme = schema;
      r.key_seed_match = c.seed_hex === undefined || toHex(secretKey) === c.seed_hex;
      const kp = Ed25519Keypair.fromSecretKey(secretKey);
      r.key_address = kp.getPublicKey().toSuiAddress();
      r.key_address_match = r.key_address === normalizeSuiAddress(c.sender);
      r.key_reencode_match = kp.getSecretKey() === c.suiprivkey;
    } catch (e) {
      fail('decodeSuiPrivateKey', e);
    }
  }
  return r;
}

const input = readFileSync(0, 'utf8');
let cases;
try {
  cases = JSON.parse(input);
} catch (e) {
  console.error(`crosscheck: stdin is not JSON: ${e.message}`);
  process.exit(2);
}
if (!Array.isArray(cases)) {
  console.error('crosscheck: stdin must be a JSON array of cases');
  process.exit(2);
}
const results = [];
for (const c of cases) {
  results.push(await check(c));
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
