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
    check_subset(body)?;
    let pattern = if flags == "i" {
        format!("(?i){body}")
    } else {
        body.to_owned()
    };
    regex::RegexBuilder::new(&pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression /{body}/: {e}"))
}

fn check_subset(body: &str) -> Result<(), String> {
    let chars: Vec<char> = body.chars().collect();
    let last = chars.len().saturating_sub(1);
    let bad = |what: &str| Err(format!("invalid regular expression /{body}/: {what}"));
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            if i + 1 >= chars.len() {
                return bad("it ends with a lone backslash");
            }
            let e = chars[i + 1];
            if e.is_ascii_digit() && e != '0' {
                return bad("back-references are not supported");
            }
            if matches!(e, 'b' | 'B') && !in_class {
                return bad("word boundaries are not supported");
            }
            i += 2;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            i += 1;
            continue;
        }
        match c {
            '[' => in_class = true,
            '^' if i != 0 => return bad("'^' may only start the pattern"),
            '$' if i != last => return bad("'$' may only end the pattern"),
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    return bad("group modifiers and look-arounds are not supported");
                }
                if chars.get(i + 1) == Some(&')') {
                    return bad("empty group");
                }
            }
            '|' => {
                let before = if i == 0 { None } else { Some(chars[i - 1]) };
                let after = chars.get(i + 1).copied();
                if matches!(before, None | Some('(') | Some('|'))
                    || matches!(after, None | Some(')') | Some('|'))
                {
                    return bad("empty alternative");
                }
            }
            _ => {}
        }
        i += 1;
    }
    if in_class {
        return bad("unterminated character class");
    }
    Ok(())
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
    }
}
