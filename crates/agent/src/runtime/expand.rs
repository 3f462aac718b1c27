//! `$(VAR)` references in container `command`, `args` and `env[].value`, with the kubelet's rules
//! (upstream's forked `expansion` package): `$(NAME)` is replaced by the variable's value when it
//! is defined and left as written when not; `$$` is an escaped `$`; a `$` followed by anything
//! else, an unterminated `$(`, or a trailing `$` stay as they are.

/// Expand `input`, looking names up with `lookup`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.chars().next() {
            // `$$`: an escaped dollar.
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(end) => {
                    let name = &after[1..1 + end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 2..];
                }
                // Unterminated: the rest is literal text.
                None => {
                    out.push('$');
                    out.push_str(after);
                    rest = "";
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;
    use std::collections::BTreeMap;

    fn run(input: &str) -> String {
        let vars: BTreeMap<&str, &str> = [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ]
        .into_iter()
        .collect();
        expand(input, &|n| vars.get(n).map(|v| v.to_string()))
    }

    #[test]
    fn upstream_expansion_rules() {
        for (input, want) in [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
            // Values are not expanded again.
            ("$(VAR_REF)", "$(VAR_A)"),
            ("$(VAR_EMPTY)", ""),
            // Unknown names stay as written.
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$(VAR_A)$(UNKNOWN)", "A$(UNKNOWN)"),
            ("$()", "$()"),
            // `$$` escapes.
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$$", "$"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            // Anything else is literal.
            ("$VAR_A", "$VAR_A"),
            ("${VAR_A}", "${VAR_A}"),
            ("$", "$"),
            ("foo$", "foo$"),
            ("$(VAR_A", "$(VAR_A"),
            ("$(VAR_A)$(", "A$("),
            ("é$ü$(VAR_B)", "é$üB"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(run(input), want, "{input:?}");
        }
    }
}
