//! Enveloped XML signatures as SAML identity providers make them: exclusive
//! canonicalization (without comments), SHA-256 digests, RSA-SHA256 signatures. Anything
//! else is refused. Written by hand over the tree in `xml.rs`: the Rust XML-security crates
//! are early pre-releases, and this one profile is small enough to check line by line.

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use firekeeper_tokens::PublicKey;

use super::xml::{Element, Node};

pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

/// Exclusive XML canonicalization 1.0 without comments of `e`'s subtree, leaving out the
/// element `skip` points at (the enveloped signature). `inclusive` is the
/// `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
pub fn exc_c14n(e: &Element, skip: Option<*const Element>, inclusive: &[String]) -> String {
    let mut out = String::new();
    let mut rendered = Vec::new();
    render(e, skip, inclusive, &mut rendered, &mut out);
    out
}

fn render(
    e: &Element,
    skip: Option<*const Element>,
    inclusive: &[String],
    rendered: &mut Vec<(String, String)>,
    out: &mut String,
) {
    // Namespaces this element utilizes visibly, and the inclusive ones in scope.
    let mut wanted: Vec<String> = vec![e.prefix.clone()];
    for a in &e.attrs {
        if !a.prefix.is_empty() && a.prefix != "xml" {
            wanted.push(a.prefix.clone());
        }
    }
    for p in inclusive {
        let p = if p == "#default" { "" } else { p.as_str() };
        if e.binds(p) {
            wanted.push(p.to_owned());
        }
    }
    wanted.sort();
    wanted.dedup();
    let in_output = |p: &str| {
        rendered
            .iter()
            .rev()
            .find(|(q, _)| q == p)
            .map(|(_, u)| u.as_str())
    };
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in wanted {
        let uri = e.lookup(&p).to_owned();
        let before = in_output(&p);
        let needed = if p.is_empty() {
            // The empty default is written only to undo a non-empty one above.
            match before {
                Some(b) => b != uri,
                None => !uri.is_empty(),
            }
        } else {
            before != Some(uri.as_str())
        };
        if needed {
            decls.push((p, uri));
        }
    }
    out.push('<');
    out.push_str(&e.qname());
    for (p, uri) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    let mut attrs: Vec<_> = e.attrs.iter().collect();
    attrs.sort_by(|a, b| (&a.ns, &a.local).cmp(&(&b.ns, &b.local)));
    for a in attrs {
        out.push(' ');
        if !a.prefix.is_empty() {
            out.push_str(&a.prefix);
            out.push(':');
        }
        out.push_str(&a.local);
        out.push_str("=\"");
        escape_attr(&a.value, out);
        out.push('"');
    }
    out.push('>');
    // What this element declared holds for its children, and ends with it.
    let depth = rendered.len();
    rendered.extend(decls);
    for child in &e.children {
        match child {
            Node::Element(c) => {
                if skip != Some(c as *const Element) {
                    render(c, skip, inclusive, rendered, out);
                }
            }
            Node::Text(t) => escape_text(t, out),
            Node::Pi(p) => {
                // The target, then one space and the data when there is any.
                let (target, data) = p.split_once(char::is_whitespace).unwrap_or((p, ""));
                let data = data.trim_start();
                out.push_str("<?");
                out.push_str(target);
                if !data.is_empty() {
                    out.push(' ');
                    out.push_str(data);
                }
                out.push_str("?>");
            }
        }
    }
    rendered.truncate(depth);
    out.push_str("</");
    out.push_str(&e.qname());
    out.push('>');
}

/// Most prefixes an `InclusiveNamespaces` list may name (real ones name a few).
const MAX_INCLUSIVE: usize = 32;

/// The `PrefixList` of an `InclusiveNamespaces` child of a transform or method element:
/// distinct, well-formed prefixes (or `#default`), a few at most.
fn prefix_list(method: &Element) -> Result<Vec<String>, String> {
    let Some(list) = method
        .child(EXC_C14N, "InclusiveNamespaces")
        .and_then(|i| i.attr("PrefixList"))
    else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for p in list.split_whitespace() {
        let well_formed = p == "#default"
            || p.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !well_formed {
            return Err(format!("bad prefix {p:?} in PrefixList"));
        }
        if !out.iter().any(|q| q == p) {
            out.push(p.to_owned());
        }
        if out.len() > MAX_INCLUSIVE {
            return Err("PrefixList too long".into());
        }
    }
    Ok(out)
}

fn b64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| "bad base64".to_owned())
}

/// Checks the enveloped signature that is a direct child of `signed`: its one reference
/// must name `signed` itself by its `ID` (which the caller has checked to be unique in the
/// document), the digest must match, and the signature must verify with one of `certs`
/// (their RSA keys). Returns `Ok` only when all of that holds.
pub fn verify_enveloped(signed: &Element, certs: &[PublicKey]) -> Result<(), String> {
    let sigs: Vec<&Element> = signed
        .elements()
        .filter(|c| c.is(DSIG, "Signature"))
        .collect();
    let [sig] = sigs.as_slice() else {
        return Err(format!("{} signatures on the element", sigs.len()));
    };
    let info = sig.child(DSIG, "SignedInfo").ok_or("no SignedInfo")?;
    let c14n = info
        .child(DSIG, "CanonicalizationMethod")
        .ok_or("no CanonicalizationMethod")?;
    if c14n.attr("Algorithm") != Some(EXC_C14N) {
        return Err("only exclusive canonicalization is accepted".into());
    }
    let method = info
        .child(DSIG, "SignatureMethod")
        .and_then(|m| m.attr("Algorithm"));
    if method != Some(RSA_SHA256) {
        return Err(format!("signature method {method:?} is not accepted"));
    }
    let refs: Vec<&Element> = info
        .elements()
        .filter(|c| c.is(DSIG, "Reference"))
        .collect();
    let [reference] = refs.as_slice() else {
        return Err("exactly one Reference is accepted".into());
    };
    let id = signed.attr("ID").ok_or("the signed element has no ID")?;
    if reference.attr("URI") != Some(format!("#{id}").as_str()) {
        return Err("the reference does not name the signed element".into());
    }
    // Exactly the enveloped-signature transform, then exclusive canonicalization.
    let transforms: Vec<&Element> = reference
        .child(DSIG, "Transforms")
        .map(|t| t.elements().collect())
        .unwrap_or_default();
    let inclusive = match transforms.as_slice() {
        [first, second]
            if first.attr("Algorithm") == Some(ENVELOPED)
                && second.attr("Algorithm") == Some(EXC_C14N) =>
        {
            prefix_list(second)?
        }
        _ => return Err("the transforms must be enveloped-signature, then exc-c14n".into()),
    };
    let digest_method = reference
        .child(DSIG, "DigestMethod")
        .and_then(|d| d.attr("Algorithm"));
    if digest_method != Some(SHA256) {
        return Err(format!("digest {digest_method:?} is not accepted"));
    }
    let expected = b64(&reference
        .child(DSIG, "DigestValue")
        .ok_or("no DigestValue")?
        .text())?;
    let canonical = exc_c14n(signed, Some(*sig as *const Element), &inclusive);
    let actual = digest::digest(&digest::SHA256, canonical.as_bytes());
    if aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), &expected).is_err() {
        return Err("digest mismatch".into());
    }
    let signed_info = exc_c14n(info, None, &prefix_list(c14n)?);
    let value = b64(&sig
        .child(DSIG, "SignatureValue")
        .ok_or("no SignatureValue")?
        .text())?;
    for key in certs {
        if key.verify(signed_info.as_bytes(), &value).is_ok() {
            return Ok(());
        }
    }
    Err("the signature does not verify with the configured certificates".into())
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse;
    use super::*;

    #[test]
    fn canonical_form_follows_exclusive_c14n() {
        let doc = parse(
            "<a:r xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" xmlns=\"urn:d\" z=\"1\" b:y=\"&lt;2&#xA;\"\r\n   x='3'>\
             <c>t&amp;&gt;\r\n<![CDATA[<x>]]></c><b:e/><!-- gone --><a:f xmlns:a=\"urn:a\"/></a:r>",
        )
        .unwrap();
        assert_eq!(
            exc_c14n(&doc, None, &[]),
            "<a:r xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" x=\"3\" z=\"1\" b:y=\"&lt;2&#xA;\">\
             <c xmlns=\"urn:d\">t&amp;&gt;\n&lt;x&gt;</c><b:e></b:e><a:f></a:f></a:r>"
        );
        // An inclusive prefix is written where it is in scope and not yet written.
        let inner = doc.elements().next().unwrap();
        assert_eq!(
            exc_c14n(inner, None, &["#default".into(), "b".into()]),
            "<c xmlns=\"urn:d\" xmlns:b=\"urn:b\">t&amp;&gt;\n&lt;x&gt;</c>"
        );
    }
}
