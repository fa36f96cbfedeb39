//! SAML 2.0 sign-in (the HTTP-POST binding's `SAMLResponse`): the response or its
//! assertion must carry an enveloped signature by the identity provider's configured
//! certificate; the assertion must come from the configured issuer, for this service
//! provider, to the configured callback, and be current. Only what was signed is read, so a
//! signature over one part cannot vouch for another (signature wrapping).

mod dsig;
mod xml;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::idp::{IdpProfile, Refused};
use xml::Element;

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// Responses larger than this are refused before parsing.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on the assertion's times.
const SKEW_SECS: i64 = 180;

/// What the configuration says about the identity provider and this service provider.
#[derive(Debug, Clone)]
pub struct SamlConfig {
    pub idp_entity_id: String,
    /// The keys of the certificates the provider signs with.
    pub certificates: Vec<firekeeper_tokens::PublicKey>,
    pub sp_entity_id: String,
    pub callback_uri: String,
}

/// A checked assertion: the profile, its issuer's ID for it, and how long it could be
/// replayed.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub profile: IdpProfile,
    pub id: String,
    pub issuer: String,
    /// Unix seconds after which no check here would accept the assertion (skew included).
    pub replayable_until: i64,
}

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

fn instant(text: &str) -> Result<i64, Refused> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| refused(format!("bad time {text:?}")))
}

/// A certificate as configured: PEM (the first certificate block), or bare base64 DER as
/// the Admin SDKs pass it.
fn certificate_der(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let body: Vec<&str> = match lines
        .iter()
        .position(|l| *l == "-----BEGIN CERTIFICATE-----")
    {
        Some(begin) => lines[begin + 1..]
            .iter()
            .take_while(|l| !l.starts_with("-----END"))
            .copied()
            .collect(),
        None => lines,
    };
    let compact: String = body
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// One DER element: its tag, its content, the whole element, and what follows it.
struct Der<'a> {
    tag: u8,
    whole: &'a [u8],
    rest: &'a [u8],
    content: &'a [u8],
}

fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Der {
        tag,
        whole: &input[..header + len],
        rest: &rest[len..],
        content: &rest[..len],
    })
}

/// The RSA key of an X.509 certificate (any version): its SubjectPublicKeyInfo. Written by
/// hand: six DER elements to step over, where a certificate library would also judge
/// extensions and versions that identity providers' self-signed certificates get wrong.
pub fn certificate_key(text: &str) -> Result<firekeeper_tokens::PublicKey, String> {
    let der = certificate_der(text).ok_or("not a PEM or base64 certificate")?;
    let bad = || "not an X.509 certificate".to_owned();
    let cert = der_element(&der).ok_or_else(bad)?;
    let tbs = der_element(cert.content).ok_or_else(bad)?;
    if cert.tag != 0x30 || tbs.tag != 0x30 {
        return Err(bad());
    }
    let mut rest = tbs.content;
    // [0] version (absent in version 1), serial, signature algorithm, issuer, validity,
    // subject; then the key.
    let first = der_element(rest).ok_or_else(bad)?;
    if first.tag == 0xa0 {
        rest = first.rest;
    }
    for _ in 0..5 {
        rest = der_element(rest).ok_or_else(bad)?.rest;
    }
    let key = der_element(rest).ok_or_else(bad)?;
    if key.tag != 0x30 {
        return Err(bad());
    }
    let spki = key.whole;
    firekeeper_tokens::PublicKey::from_der("saml", spki)
        .map_err(|_| "the certificate's key is not an RSA key of 2048 bits or more".to_owned())
}

/// Every `ID` attribute of the document must be unique: a reference by ID then names one
/// element only.
fn ids_unique(root: &Element) -> bool {
    let mut ids: Vec<&str> = root
        .descendants()
        .into_iter()
        .filter_map(|e| e.attr("ID"))
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    ids.len() == n
}

/// Checks a base64 `SAMLResponse` for `config` at `now_s`.
pub fn check_response(
    saml_response: &str,
    config: &SamlConfig,
    provider_id: &str,
    now_s: i64,
) -> Result<Assertion, Refused> {
    use base64::Engine;
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if compact.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err(refused("response too large"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| refused("SAMLResponse is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| refused("SAMLResponse is not UTF-8"))?;
    let root = xml::parse(&text).map_err(refused)?;
    if !root.is(PROTOCOL, "Response") {
        return Err(refused("not a SAML Response"));
    }
    if !ids_unique(&root) {
        return Err(refused("duplicate IDs"));
    }
    let status = root
        .child(PROTOCOL, "Status")
        .and_then(|s| s.child(PROTOCOL, "StatusCode"))
        .and_then(|c| c.attr("Value"));
    if status != Some(SUCCESS) {
        return Err(refused(format!("status {status:?}")));
    }
    if let Some(dest) = root.attr("Destination") {
        if dest != config.callback_uri {
            return Err(refused("the response is for another destination"));
        }
    }
    if root.child(ASSERTION, "EncryptedAssertion").is_some() {
        return Err(refused("encrypted assertions are not supported"));
    }
    let assertions: Vec<&Element> = root
        .elements()
        .filter(|e| e.is(ASSERTION, "Assertion"))
        .collect();
    let [assertion] = assertions.as_slice() else {
        return Err(refused(format!("{} assertions", assertions.len())));
    };
    // The response's signature covers the assertion inside it; otherwise the assertion
    // must be signed itself. Either way the assertion read is inside what was verified.
    let response_signed = root.child(dsig::DSIG, "Signature").is_some();
    let verified = if response_signed {
        dsig::verify_enveloped(&root, &config.certificates)
    } else {
        dsig::verify_enveloped(assertion, &config.certificates)
    };
    verified.map_err(refused)?;
    let a = *assertion;
    let issuer = a.child(ASSERTION, "Issuer").map(|i| i.text());
    if issuer.as_deref().map(str::trim) != Some(config.idp_entity_id.as_str()) {
        return Err(refused("another issuer"));
    }
    let id = a
        .attr("ID")
        .ok_or_else(|| refused("no assertion ID"))?
        .to_owned();
    let conditions = a
        .child(ASSERTION, "Conditions")
        .ok_or_else(|| refused("no Conditions"))?;
    // The latest time any of the assertion's limits still lets it through.
    let mut latest = i64::MIN;
    if let Some(t) = conditions.attr("NotBefore") {
        if instant(t)? > now_s + SKEW_SECS {
            return Err(refused("not yet valid"));
        }
    }
    if let Some(t) = conditions.attr("NotOnOrAfter") {
        let t = instant(t)?;
        if now_s >= t + SKEW_SECS {
            return Err(refused("expired"));
        }
        latest = t;
    }
    // Several restrictions all hold: each must name this service provider.
    let restrictions: Vec<&Element> = conditions
        .elements()
        .filter(|r| r.is(ASSERTION, "AudienceRestriction"))
        .collect();
    let audience_ok = !restrictions.is_empty()
        && restrictions.iter().all(|r| {
            r.elements()
                .filter(|x| x.is(ASSERTION, "Audience"))
                .any(|x| x.text().trim() == config.sp_entity_id)
        });
    if !audience_ok {
        return Err(refused("not for this service provider"));
    }
    let subject = a
        .child(ASSERTION, "Subject")
        .ok_or_else(|| refused("no Subject"))?;
    let name_id = subject
        .child(ASSERTION, "NameID")
        .ok_or_else(|| refused("no NameID"))?;
    let raw_id = name_id.text().trim().to_owned();
    if raw_id.is_empty() {
        return Err(refused("empty NameID"));
    }
    // Bearer confirmations for this callback (the Web SSO profile requires the
    // recipient) that are still current.
    let confirmations: Vec<i64> = subject
        .elements()
        .filter(|c| c.is(ASSERTION, "SubjectConfirmation") && c.attr("Method") == Some(BEARER))
        .filter_map(|c| {
            let data = c.child(ASSERTION, "SubjectConfirmationData")?;
            let until = instant(data.attr("NotOnOrAfter")?).ok()?;
            (data.attr("Recipient") == Some(config.callback_uri.as_str())
                && now_s < until + SKEW_SECS)
                .then_some(until)
        })
        .collect();
    let Some(confirmed) = confirmations.iter().max().copied() else {
        return Err(refused("no current bearer confirmation for this callback"));
    };
    // Accepted while a confirmation and the conditions both allow it.
    let until = if latest == i64::MIN {
        confirmed
    } else {
        confirmed.min(latest)
    };

    let mut attributes = Map::new();
    for statement in a
        .elements()
        .filter(|s| s.is(ASSERTION, "AttributeStatement"))
    {
        for attr in statement
            .elements()
            .filter(|x| x.is(ASSERTION, "Attribute"))
        {
            let Some(name) = attr.attr("Name") else {
                continue;
            };
            let values: Vec<Value> = attr
                .elements()
                .filter(|v| v.is(ASSERTION, "AttributeValue"))
                .map(|v| Value::from(v.text()))
                .collect();
            let value = match values.len() {
                1 => values.into_iter().next().unwrap_or(Value::Null),
                _ => Value::Array(values),
            };
            attributes.insert(name.to_owned(), value);
        }
    }
    let attribute = |names: &[&str]| {
        names.iter().find_map(|n| {
            attributes.get(*n).and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
        })
    };
    let email = if name_id.attr("Format") == Some(EMAIL_FORMAT) {
        Some(raw_id.clone())
    } else {
        attribute(&[
            "email",
            "mail",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        ])
    };
    let display_name = attribute(&[
        "displayName",
        "name",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    ]);
    Ok(Assertion {
        profile: IdpProfile {
            provider_id: provider_id.to_owned(),
            raw_id,
            email: email.map(|e| crate::validate::canonical_email(&e)),
            // An identity provider's word on an address is not a verification.
            email_verified: false,
            display_name,
            claims: attributes,
            ..Default::default()
        },
        id,
        issuer: config.idp_entity_id.clone(),
        replayable_until: until.saturating_add(SKEW_SECS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_keys_of_any_version() {
        // Version 1, as some identity providers make their signing certificates.
        let v1 = include_str!("testdata/v1-cert.pem");
        assert!(certificate_key(v1).is_ok());
        let v3 = firekeeper_tokens::SigningKey::generate().unwrap();
        let key = certificate_key(v3.cert_pem()).unwrap();
        assert_eq!(key.rsa_der, v3.public_key().rsa_der);
        // Bare base64, indented PEM, a second block after the first.
        let body: String = v3
            .cert_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(certificate_key(&body).is_ok());
        let indented: String = v3.cert_pem().lines().map(|l| format!("  {l}\n")).collect();
        assert!(certificate_key(&format!("{indented}{v1}")).is_ok());
        assert!(certificate_key("-----BEGIN CERTIFICATE-----\nMIIB\n").is_err());
        assert!(certificate_key("").is_err());
    }
}
