//! A small XML tree for signature checking: elements keep the prefixes they were written
//! with and the namespace declarations they made, which canonicalization needs and
//! general-purpose trees drop. Built on quick-xml's tokenizer; documents with a DOCTYPE
//! (entity expansion) are refused.

use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Elements nested deeper than this are refused (a SAML response is a few levels deep).
const MAX_DEPTH: usize = 64;
/// More nodes than this are refused.
const MAX_NODES: usize = 20_000;
/// More namespace declarations in a document, or attributes on an element, are refused.
const MAX_DECLS: usize = 256;
const MAX_ATTRS: usize = 64;

/// The namespaces in scope: an element's declarations over its parent's, shared (an
/// element that declares nothing holds its parent's scope), so memory grows with the
/// declarations, not with the elements.
#[derive(Debug, PartialEq, Eq)]
pub struct NsScope {
    decls: Vec<(String, String)>,
    parent: Option<Rc<NsScope>>,
}

impl NsScope {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        let mut at = Some(self);
        while let Some(s) = at {
            if let Some((_, uri)) = s.decls.iter().rev().find(|(p, _)| p == prefix) {
                return Some(uri);
            }
            at = s.parent.as_deref();
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub prefix: String,
    pub local: String,
    /// Empty for attributes without a prefix.
    pub ns: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    /// A processing instruction, as written (`target data`).
    Pi(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub prefix: String,
    pub local: String,
    pub ns: String,
    pub attrs: Vec<Attr>,
    /// Declarations made on this element (`xmlns`, `xmlns:p`): prefix ("" for the
    /// default) and URI.
    pub decls: Vec<(String, String)>,
    /// Every namespace in scope here.
    pub scope: Rc<NsScope>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn qname(&self) -> String {
        if self.prefix.is_empty() {
            self.local.clone()
        } else {
            format!("{}:{}", self.prefix, self.local)
        }
    }

    /// The URI a prefix is bound to here ("" when unbound).
    pub fn lookup(&self, prefix: &str) -> &str {
        self.scope.lookup(prefix).unwrap_or("")
    }

    /// Whether a prefix ("" for the default namespace) is declared in scope here.
    pub fn binds(&self, prefix: &str) -> bool {
        self.scope.lookup(prefix).is_some()
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.local == local)
            .map(|a| a.value.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// The element's text (its text children joined).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// This element and every element below it, depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let e = out[i];
            out.extend(e.elements());
            i += 1;
        }
        out
    }
}

fn split(qname: &str) -> (&str, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    }
}

/// XML's line-end normalisation: CR LF and lone CR become LF.
fn normalize_lines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Resolves the five predefined entities and character references.
fn unescape(s: &str) -> Result<String, String> {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .map_err(|e| e.to_string())
}

fn open(
    start: &BytesStart<'_>,
    parent_scope: Option<&Rc<NsScope>>,
    decl_count: &mut usize,
) -> Result<Element, String> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_owned();
    let mut decls = Vec::new();
    let mut raw_attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|e| e.to_string())?
            .to_owned();
        let raw = std::str::from_utf8(&a.value).map_err(|e| e.to_string())?;
        // Attribute-value normalisation: literal white space becomes a space; characters
        // written as references stay.
        let spaced = normalize_lines(raw).replace(['\n', '\t'], " ");
        let value = unescape(&spaced)?;
        if key == "xmlns" {
            decls.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            if p.is_empty() || value.is_empty() {
                return Err("a prefix bound to nothing".into());
            }
            decls.push((p.to_owned(), value));
        } else {
            raw_attrs.push((key, value));
        }
    }
    *decl_count += decls.len();
    if *decl_count > MAX_DECLS || raw_attrs.len() > MAX_ATTRS {
        return Err("too many namespace declarations or attributes".into());
    }
    let scope = match (parent_scope, decls.is_empty()) {
        (Some(parent), true) => parent.clone(),
        (parent, _) => Rc::new(NsScope {
            decls: decls.clone(),
            parent: parent.cloned(),
        }),
    };
    let (prefix, local) = split(&name);
    let mut e = Element {
        prefix: prefix.to_owned(),
        local: local.to_owned(),
        ns: String::new(),
        attrs: Vec::new(),
        decls,
        scope,
        children: Vec::new(),
    };
    e.ns = e.lookup(prefix).to_owned();
    if !prefix.is_empty() && e.ns.is_empty() && prefix != "xml" {
        return Err(format!("unbound prefix {prefix}"));
    }
    for (key, value) in raw_attrs {
        let (p, l) = split(&key);
        let ns = match p {
            "" => String::new(),
            "xml" => "http://www.w3.org/XML/1998/namespace".to_owned(),
            _ => {
                let u = e.lookup(p);
                if u.is_empty() {
                    return Err(format!("unbound prefix {p}"));
                }
                u.to_owned()
            }
        };
        if e.attrs.iter().any(|a| a.ns == ns && a.local == l) {
            return Err(format!("attribute {key} given twice"));
        }
        e.attrs.push(Attr {
            prefix: p.to_owned(),
            local: l.to_owned(),
            ns,
            value,
        });
    }
    Ok(e)
}

fn append_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(t)) = parent.children.last_mut() {
        t.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_owned()));
    }
}

/// Parses a whole document into its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes = 0usize;
    let mut decls = 0usize;
    let attach =
        |stack: &mut Vec<Element>, root: &mut Option<Element>, node: Node| match stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => {
                if let Node::Element(e) = node {
                    *root = Some(e);
                }
            }
        };
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        nodes += 1;
        if nodes > MAX_NODES {
            return Err("too many nodes".into());
        }
        match event {
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Start(s) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err("nested too deeply".into());
                }
                let scope = stack.last().map(|p| p.scope.clone());
                stack.push(open(&s, scope.as_ref(), &mut decls)?);
            }
            Event::Empty(s) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                let scope = stack.last().map(|p| p.scope.clone());
                let e = open(&s, scope.as_ref(), &mut decls)?;
                attach(&mut stack, &mut root, Node::Element(e));
            }
            Event::End(_) => {
                let e = stack.pop().ok_or("unbalanced end tag")?;
                attach(&mut stack, &mut root, Node::Element(e));
            }
            // Text arrives in pieces (references are events of their own); adjacent pieces
            // make one text node.
            Event::Text(t) => {
                let raw = std::str::from_utf8(t.as_ref()).map_err(|e| e.to_string())?;
                let Some(parent) = stack.last_mut() else {
                    if !raw.trim().is_empty() {
                        return Err("text outside the root element".into());
                    }
                    continue;
                };
                append_text(parent, &normalize_lines(raw));
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = std::str::from_utf8(r.as_ref()).map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                let parent = stack
                    .last_mut()
                    .ok_or("a reference outside the root element")?;
                append_text(parent, &resolved);
            }
            Event::CData(c) => {
                let raw = std::str::from_utf8(c.as_ref()).map_err(|e| e.to_string())?;
                if let Some(parent) = stack.last_mut() {
                    append_text(parent, &normalize_lines(raw));
                }
            }
            Event::PI(p) if !stack.is_empty() => {
                let raw = std::str::from_utf8(p.as_ref()).map_err(|e| e.to_string())?;
                attach(&mut stack, &mut root, Node::Pi(normalize_lines(raw)));
            }
            Event::PI(_) | Event::Comment(_) | Event::Decl(_) => {}
            Event::Eof => break,
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_documents_are_refused() {
        for bad in [
            "<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>",
            "<r>&unknown;</r>",
            "<p:r/>",
            "<r></s>",
            "<r/><r/>",
            "<r>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let declarations: String = (0..=MAX_DECLS)
            .map(|i| format!(" xmlns:p{i}=\"u\""))
            .collect();
        assert!(parse(&format!("<r{declarations}/>")).is_err());
        assert!(parse("<r xmlns:a=\"u\" xmlns:b=\"u\" a:x=\"1\" b:x=\"2\"/>").is_err());
        let ok = parse("<?xml version=\"1.0\"?><r a=\"1\">x&amp;y&#65;</r>").unwrap();
        assert_eq!(ok.text(), "x&yA");
        assert_eq!(ok.attr("a"), Some("1"));
    }
}
