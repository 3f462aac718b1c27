//! Kubernetes resource quantities ("500m", "1.5Gi", "2e3", "128974848") as integer milli-units.

/// Parse a quantity into milli-units (1 = 1000, "250m" = 250, "1Ki" = 1_024_000), rounding a
/// sub-milli remainder up like Kubernetes does. Returns None for malformed input.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (num, suffix) = body.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let frac_len = frac_part.len() as i32;

    enum Scale {
        Dec(i32),
        Bin(u32),
    }
    let scale = match suffix {
        "" => Scale::Dec(0),
        "n" => Scale::Dec(-9),
        "u" => Scale::Dec(-6),
        "m" => Scale::Dec(-3),
        "k" => Scale::Dec(3),
        "M" => Scale::Dec(6),
        "G" => Scale::Dec(9),
        "T" => Scale::Dec(12),
        "P" => Scale::Dec(15),
        "E" => Scale::Dec(18),
        "Ki" => Scale::Bin(10),
        "Mi" => Scale::Bin(20),
        "Gi" => Scale::Bin(30),
        "Ti" => Scale::Bin(40),
        "Pi" => Scale::Bin(50),
        "Ei" => Scale::Bin(60),
        other if other.starts_with('e') || other.starts_with('E') => {
            let e: i32 = other[1..].parse().ok()?;
            if !(-40..=40).contains(&e) {
                return None;
            }
            Scale::Dec(e)
        }
        _ => return None,
    };
    let milli = match scale {
        Scale::Dec(e) => {
            let net = e + 3 - frac_len;
            if net >= 0 {
                mantissa.checked_mul(10i128.checked_pow(net as u32)?)?
            } else {
                ceil_div(mantissa, 10i128.checked_pow((-net) as u32)?)
            }
        }
        Scale::Bin(k) => {
            let num = mantissa.checked_mul(1i128 << k)?.checked_mul(1000)?;
            ceil_div(num, 10i128.checked_pow(frac_len as u32)?)
        }
    };
    Some(if neg { -milli } else { milli })
}

/// How a quantity is written, which its canonical form keeps (upstream `resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decimal SI suffixes: m, k, M, G, ...
    DecimalSi,
    /// Binary SI suffixes: Ki, Mi, Gi, ...
    BinarySi,
    /// Decimal exponents: 1e3, 5e-3.
    DecimalExponent,
}

/// The format a written quantity uses (by its suffix); None when it is malformed.
pub fn format_of(s: &str) -> Option<Format> {
    parse_milli(s)?;
    let suffix = s
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || "+-.".contains(c));
    Some(if suffix.ends_with('i') {
        Format::BinarySi
    } else if suffix.starts_with(['e', 'E']) {
        Format::DecimalExponent
    } else {
        Format::DecimalSi
    })
}

/// The canonical text of a milli-value in `format`, as upstream `Quantity.String()` renders it:
/// binary suffixes only for whole values of at least 1024 (else decimal SI), and otherwise the
/// largest power of 1000 that keeps the number whole.
pub fn format_milli(milli: i128, format: Format) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    if format == Format::BinarySi && m.is_multiple_of(1000) && m / 1000 >= 1024 {
        let units = m / 1000;
        let mut shift = 0;
        while shift < 60 && units.is_multiple_of(1u128 << (shift + 10)) {
            shift += 10;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][(shift / 10) as usize];
        return format!("{sign}{}{suffix}", units >> shift);
    }
    if m == 0 {
        return "0".into();
    }
    // m = n * 1000^k * 1e-3; raise k while n stays whole.
    let (mut n, mut k) = (m, 0usize);
    while k < 7 && n.is_multiple_of(1000) {
        n /= 1000;
        k += 1;
    }
    if format == Format::DecimalExponent {
        let e = 3 * k as i32 - 3;
        return if e == 0 {
            format!("{sign}{n}")
        } else {
            format!("{sign}{n}e{e}")
        };
    }
    let suffix = ["m", "", "k", "M", "G", "T", "P", "E"][k];
    format!("{sign}{n}{suffix}")
}

/// The canonical text of a written quantity ("0.5" → "500m", "1024Mi" → "1Gi"); None when it is
/// malformed. Precision below a milli-unit is rounded up, as [`parse_milli`] does.
pub fn canonical(s: &str) -> Option<String> {
    Some(format_milli(parse_milli(s)?, format_of(s)?))
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b == 0 {
        return a;
    }
    // Written without `a + b - 1`, which could overflow for a mantissa near the i128 limit.
    a / b + i128::from(a % b != 0)
}

/// Parse a JSON quantity (string or number) into milli-units.
pub fn value_milli(v: &serde_json::Value) -> Option<i128> {
    match v {
        serde_json::Value::String(s) => parse_milli(s),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i as i128 * 1000)
            } else {
                n.as_f64().map(|f| (f * 1000.0).ceil() as i128)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_forms() {
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("250m"), Some(250));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli(".1"), Some(100));
        assert_eq!(parse_milli("1Ki"), Some(1024 * 1000));
        assert_eq!(parse_milli("1Mi"), Some(1024 * 1024 * 1000));
        assert_eq!(parse_milli("2Gi"), Some(2 * 1024 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1.5Gi"), Some(1536 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1k"), Some(1_000_000));
        assert_eq!(parse_milli("128M"), Some(128_000_000_000));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1E3"), Some(1_000_000));
        assert_eq!(parse_milli("5e-3"), Some(5));
        assert_eq!(parse_milli("1E"), Some(1_000_000_000_000_000_000_000));
        assert_eq!(parse_milli("128974848"), Some(128_974_848_000));
        assert_eq!(parse_milli("100n"), Some(1), "sub-milli rounds up");
        assert_eq!(parse_milli("0"), Some(0));
        assert_eq!(parse_milli("-1"), Some(-1000));
    }

    #[test]
    fn malformed() {
        for s in ["", "abc", "1..2", "1Qi", "m", "1e", "1.2.3", "--1", "1ee3"] {
            assert_eq!(parse_milli(s), None, "{s}");
        }
    }

    #[test]
    fn huge_mantissas_round_without_overflow() {
        let max = i128::MAX.to_string();
        assert_eq!(
            parse_milli(&format!("{max}n")),
            Some(i128::MAX / 1_000_000 + 1)
        );
        assert_eq!(parse_milli(&format!("{max}0")), None);
    }

    #[test]
    fn canonical_forms() {
        for (written, canon) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("100m", "100m"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("1500M", "1500M"),
            ("1000M", "1G"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1Ki", "1Ki"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1000e-3", "1"),
            ("5e-3", "5e-3"),
            ("0", "0"),
            ("-2Gi", "-2Gi"),
        ] {
            assert_eq!(canonical(written).as_deref(), Some(canon), "{written}");
        }
        assert_eq!(canonical("bogus"), None);
        assert_eq!(format_of("64Mi"), Some(Format::BinarySi));
    }

    #[test]
    fn json_values() {
        assert_eq!(value_milli(&serde_json::json!(2)), Some(2000));
        assert_eq!(
            value_milli(&serde_json::json!("64Mi")),
            Some(64 * 1024 * 1024 * 1000)
        );
        assert_eq!(value_milli(&serde_json::json!(null)), None);
    }
}
