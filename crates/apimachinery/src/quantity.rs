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
    fn json_values() {
        assert_eq!(value_milli(&serde_json::json!(2)), Some(2000));
        assert_eq!(
            value_milli(&serde_json::json!("64Mi")),
            Some(64 * 1024 * 1024 * 1000)
        );
        assert_eq!(value_milli(&serde_json::json!(null)), None);
    }
}
