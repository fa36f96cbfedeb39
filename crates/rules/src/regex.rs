//! Regular-expression literals in rules: Firebase's subset (spec §2.6) is checked here by
//! hand, since no library knows it, then compiled with the `regex` crate (an unanchored
//! search, as `matches` is).

/// Compiled programs above this size are refused: a rule must stay cheap to evaluate.
const SIZE_LIMIT: usize = 1 << 20;

pub fn compile(body: &str, flags: &str) -> Result<regex::Regex, String> {
    if !flags.is_empty() && flags != "i" {
        return Err(format!(
            "unsupported regular expression flags '{flags}' (only 'i' is allowed)"
        ));
    }
    let translated = translate(body)?;
    let pattern = if flags == "i" {
        format!("(?i){translated}")
    } else {
        translated
    };
    regex::RegexBuilder::new(&pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression /{body}/: {e}"))
}

/// Checks the pattern against Firebase's subset and writes it in the `regex` crate's
/// syntax: `\d` and `\w` stay ASCII as in JavaScript, and characters that are syntax only
/// in Rust's classes (`[`, `&&`, `--`, `~~`) are escaped.
fn translate(body: &str) -> Result<String, String> {
    let chars: Vec<char> = body.chars().collect();
    let last = chars.len().saturating_sub(1);
    let bad = |what: &str| Err(format!("invalid regular expression /{body}/: {what}"));
    let mut out = String::with_capacity(body.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return bad("it ends with a lone backslash");
            };
            match e {
                'd' => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
                'D' => out.push_str("[^0-9]"),
                'w' => out.push_str(if in_class {
                    "0-9A-Za-z_"
                } else {
                    "[0-9A-Za-z_]"
                }),
                'W' => out.push_str("[^0-9A-Za-z_]"),
                's' | 'S' | 'n' | 't' | 'r' | 'f' | 'v' | 'x' | 'u' => {
                    out.push('\\');
                    out.push(e);
                }
                'b' | 'B' => return bad("word boundaries are not supported"),
                e if e.is_ascii_digit() => return bad("back-references are not supported"),
                e if e.is_alphanumeric() => return bad(&format!("unsupported escape \\{e}")),
                e => {
                    out.push('\\');
                    out.push(e);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(c);
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => out.push_str("\\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push(c);
                // A leading ']' or '^]' is a literal in JavaScript too; nothing to do.
            }
            '^' if i != 0 => return bad("'^' may only start the pattern"),
            '$' if i != last => return bad("'$' may only end the pattern"),
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    return bad("group modifiers and look-arounds are not supported");
                }
                if chars.get(i + 1) == Some(&')') {
                    return bad("empty group");
                }
                out.push(c);
            }
            '|' => {
                let before = if i == 0 { None } else { Some(chars[i - 1]) };
                let after = chars.get(i + 1).copied();
                if matches!(before, None | Some('(') | Some('|'))
                    || matches!(after, None | Some(')') | Some('|'))
                {
                    return bad("empty alternative");
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return bad("unterminated character class");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::compile;

    #[test]
    fn firebase_subset() {
        for ok in [
            "bar",
            "^foo$",
            "\\{foo}",
            "[a-z]+\\d{2,3}",
            "a|b",
            "(ab)*",
            "\\s\\w",
        ] {
            assert!(compile(ok, "").is_ok(), "{ok}");
        }
        assert!(compile("bar", "i").is_ok());
        for bad in [
            "(^foo$|bar)",
            "^(foo|)$",
            "a$b",
            "x^",
            "(?=a)",
            "()",
            "|a",
            "[ab",
        ] {
            assert!(compile(bad, "").is_err(), "{bad}");
        }
        assert!(compile("bar", "ig").is_err());
        assert!(compile("bar", "g").is_err());
        assert!(compile("BAR", "i").unwrap().is_match("xbarx"));
        assert!(!compile("^foo", "").unwrap().is_match("xfoo"));
        // ASCII classes, as in JavaScript.
        assert!(!compile("^\\d{3}$", "").unwrap().is_match("١٢٣"));
        assert!(compile("^\\d{3}$", "").unwrap().is_match("123"));
        assert!(!compile("^\\w+$", "").unwrap().is_match("é"));
        assert!(compile("^[\\w.-]+$", "").unwrap().is_match("a.b-c_1"));
        assert!(compile("^[^\\d]$", "").unwrap().is_match("x"));
        // Rust-only syntax is refused or taken literally.
        assert!(compile("\\p{L}", "").is_err());
        assert!(compile("[[:alpha:]]", "").unwrap().is_match(":]"));
        assert!(compile("[a&&b]", "").unwrap().is_match("&"));
    }
}
