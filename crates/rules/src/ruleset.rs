//! A loaded rules document and the cascade (spec §3): the first `.read` or `.write` that is
//! true on the way from the root grants; every applicable `.validate` must then hold.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::check::{self, Kind, Scope};
use crate::eval::{self, Env};
use crate::expr::{self, Node};
use crate::source::{self, Json, Pos, Spanned};
use crate::{tree, LoadError, Query};

#[derive(Debug, Clone)]
enum Rule {
    Const(bool),
    Expr(Box<Node>),
}

#[derive(Debug, Clone, Default)]
struct RuleNode {
    read: Option<Rule>,
    write: Option<Rule>,
    validate: Option<Rule>,
    index_on: Vec<String>,
    children: BTreeMap<String, RuleNode>,
    wildcard: Option<(String, Box<RuleNode>)>,
}

impl RuleNode {
    fn rule(&self, kind: Kind) -> Option<&Rule> {
        match kind {
            Kind::Read => self.read.as_ref(),
            Kind::Write => self.write.as_ref(),
            Kind::Validate => self.validate.as_ref(),
        }
    }

    /// The child node for a key: a literal child wins over the wildcard (spec §3.1).
    fn child<'r>(&'r self, key: &str) -> Option<(&'r RuleNode, Option<&'r str>)> {
        match self.children.get(key) {
            Some(c) => Some((c, None)),
            None => self
                .wildcard
                .as_ref()
                .map(|(name, c)| (c.as_ref(), Some(name.as_str()))),
        }
    }
}

/// Firebase's limit on a rules file.
pub const MAX_RULES_BYTES: usize = 256 * 1024;

/// The rules document, checked.
#[derive(Debug, Clone)]
pub struct Ruleset {
    root: RuleNode,
}

/// Who asks, and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The rules' `auth`: null when signed out.
    pub auth: &'a Value,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    True,
    False,
    /// A runtime error: the rule counts as false.
    Error(String),
}

/// One rule evaluated on the way to a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub path: String,
    pub rule: &'static str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Every rule evaluated, in order.
    pub steps: Vec<Step>,
}

fn display(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

impl Ruleset {
    /// Loads a rules document (`{"rules": {…}}`, comments allowed).
    pub fn parse(text: &str) -> Result<Self, LoadError> {
        if text.len() > MAX_RULES_BYTES {
            return Err(LoadError {
                line: 1,
                column: 1,
                message: format!("the rules are larger than {MAX_RULES_BYTES} bytes"),
            });
        }
        let doc = source::parse(text)?;
        let Json::Obj(members) = &doc.value else {
            return Err(LoadError::at(doc.at, "the rules file must be an object"));
        };
        let mut rules = None;
        for (key, at, value) in members {
            if key != "rules" {
                return Err(LoadError::at(
                    *at,
                    &format!("unknown top-level key '{key}' (only 'rules' is allowed)"),
                ));
            }
            rules = Some(value);
        }
        let Some(rules) = rules else {
            return Err(LoadError::at(
                doc.at,
                "the rules file has no 'rules' object",
            ));
        };
        Ok(Self {
            root: build(rules, &mut Vec::new())?,
        })
    }

    /// Nobody but an admin reads or writes: the default until rules are loaded.
    pub fn locked() -> Self {
        Self {
            root: RuleNode::default(),
        }
    }

    /// The `.indexOn` entries of the rule node at `path`.
    pub fn index_on(&self, path: &[String]) -> &[String] {
        let mut node = &self.root;
        for seg in path {
            match node.child(seg) {
                Some((c, _)) => node = c,
                None => return &[],
            }
        }
        &node.index_on
    }

    /// May `ctx` read `path` (with `query`) from `root`? Rules deeper than the path are
    /// never consulted: rules are not filters.
    pub fn read(&self, root: &Value, path: &[String], query: &Query, ctx: &Context) -> Decision {
        let mut steps = Vec::new();
        let allowed = self.grant(Kind::Read, root, None, path, query, ctx, &mut steps);
        Decision { allowed, steps }
    }

    /// May `ctx` change `old_root` into `new_root` by writing at each of `paths` (one path
    /// for a set, several for a multi-path update)? All or nothing.
    pub fn write(
        &self,
        old_root: &Value,
        new_root: &Value,
        paths: &[Vec<String>],
        ctx: &Context,
    ) -> Decision {
        let mut steps = Vec::new();
        let query = Query::default();
        for path in paths {
            if !self.grant(
                Kind::Write,
                old_root,
                Some(new_root),
                path,
                &query,
                ctx,
                &mut steps,
            ) {
                return Decision {
                    allowed: false,
                    steps,
                };
            }
        }
        for path in paths {
            if !self.validate(old_root, new_root, path, ctx, &mut steps) {
                return Decision {
                    allowed: false,
                    steps,
                };
            }
        }
        Decision {
            allowed: true,
            steps,
        }
    }

    /// Walks root → `path`; the first rule of `kind` that is true grants.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &self,
        kind: Kind,
        root: &Value,
        new_root: Option<&Value>,
        path: &[String],
        query: &Query,
        ctx: &Context,
        steps: &mut Vec<Step>,
    ) -> bool {
        let mut node = &self.root;
        let mut wildcards: Vec<(String, String)> = Vec::new();
        for depth in 0..=path.len() {
            if let Some(rule) = node.rule(kind) {
                let env = Env {
                    auth: ctx.auth,
                    root,
                    new_root,
                    path: &path[..depth],
                    wildcards: &wildcards,
                    now_ms: ctx.now_ms as f64,
                    query,
                };
                if run(rule, &env, kind, steps) {
                    return true;
                }
            }
            let Some(seg) = path.get(depth) else { break };
            match node.child(seg) {
                Some((child, bound)) => {
                    if let Some(name) = bound {
                        wildcards.push((name.to_owned(), seg.clone()));
                    }
                    node = child;
                }
                None => break,
            }
        }
        false
    }

    /// Every `.validate` on root → `path` and below it where the new data has keys
    /// (spec §3.3); nodes whose new data is null are skipped.
    fn validate(
        &self,
        root: &Value,
        new_root: &Value,
        path: &[String],
        ctx: &Context,
        steps: &mut Vec<Step>,
    ) -> bool {
        let query = Query::default();
        let mut v = Validation {
            root,
            new_root,
            ctx,
            query: &query,
            at: Vec::new(),
            wildcards: Vec::new(),
            steps,
        };
        let mut node = &self.root;
        for depth in 0..=path.len() {
            if !v.check(node) {
                return false;
            }
            let Some(seg) = path.get(depth) else { break };
            match node.child(seg) {
                Some((child, bound)) => {
                    v.enter(seg, bound);
                    node = child;
                }
                None => return true,
            }
        }
        match tree::get(new_root, &v.at) {
            Some(new_value) => v.below(node, new_value),
            None => true,
        }
    }
}

/// The walk of one write's `.validate` rules.
struct Validation<'a, 's> {
    root: &'a Value,
    new_root: &'a Value,
    ctx: &'a Context<'a>,
    query: &'a Query,
    at: Vec<String>,
    wildcards: Vec<(String, String)>,
    steps: &'s mut Vec<Step>,
}

impl Validation<'_, '_> {
    fn enter(&mut self, key: &str, bound: Option<&str>) {
        self.at.push(key.to_owned());
        if let Some(name) = bound {
            self.wildcards.push((name.to_owned(), key.to_owned()));
        }
    }

    fn leave(&mut self, bound: Option<&str>) {
        self.at.pop();
        if bound.is_some() {
            self.wildcards.pop();
        }
    }

    /// The node's `.validate`, unless it has none or its new data is null.
    fn check(&mut self, node: &RuleNode) -> bool {
        let Some(rule) = node.rule(Kind::Validate) else {
            return true;
        };
        if tree::get(self.new_root, &self.at).is_none() {
            return true;
        }
        let env = Env {
            auth: self.ctx.auth,
            root: self.root,
            new_root: Some(self.new_root),
            path: &self.at,
            wildcards: &self.wildcards,
            now_ms: self.ctx.now_ms as f64,
            query: self.query,
        };
        run(rule, &env, Kind::Validate, self.steps)
    }

    /// The rule nodes that match keys of the new data below the current path.
    fn below(&mut self, node: &RuleNode, new_value: &Value) -> bool {
        for (key, child_value) in tree::children(new_value) {
            let Some((child, bound)) = node.child(key) else {
                continue;
            };
            self.enter(key, bound);
            let ok = self.check(child) && self.below(child, child_value);
            self.leave(bound);
            if !ok {
                return false;
            }
        }
        true
    }
}

fn run(rule: &Rule, env: &Env, kind: Kind, steps: &mut Vec<Step>) -> bool {
    let outcome = match rule {
        Rule::Const(true) => Outcome::True,
        Rule::Const(false) => Outcome::False,
        Rule::Expr(node) => match eval::rule(node, env) {
            Ok(true) => Outcome::True,
            Ok(false) => Outcome::False,
            Err(e) => Outcome::Error(e),
        },
    };
    let granted = outcome == Outcome::True;
    steps.push(Step {
        path: display(env.path),
        rule: kind.key(),
        outcome,
    });
    granted
}

/// Builds one rules node, checking every expression with the wildcards above it.
fn build(spanned: &Spanned, wildcards: &mut Vec<String>) -> Result<RuleNode, LoadError> {
    let Json::Obj(members) = &spanned.value else {
        return Err(LoadError::at(spanned.at, "a rules node must be an object"));
    };
    let mut node = RuleNode::default();
    for (key, key_at, value) in members {
        let kind = match key.as_str() {
            ".read" => Some(Kind::Read),
            ".write" => Some(Kind::Write),
            ".validate" => Some(Kind::Validate),
            _ => None,
        };
        if let Some(kind) = kind {
            let rule = expression(value, kind, wildcards)?;
            match kind {
                Kind::Read => node.read = Some(rule),
                Kind::Write => node.write = Some(rule),
                Kind::Validate => node.validate = Some(rule),
            }
        } else if key == ".indexOn" {
            node.index_on = index_on(value)?;
        } else if key.starts_with('.') {
            return Err(LoadError::at(*key_at, &format!("unknown rule '{key}'")));
        } else if let Some(name) = key.strip_prefix('$') {
            if node.wildcard.is_some() {
                return Err(LoadError::at(
                    *key_at,
                    "only one wildcard ($name) child is allowed per node",
                ));
            }
            if name.is_empty() || wildcards.iter().any(|w| w == name) {
                return Err(LoadError::at(
                    *key_at,
                    &format!("the wildcard '{key}' is empty or already used above"),
                ));
            }
            wildcards.push(name.to_owned());
            let child = build(value, wildcards);
            wildcards.pop();
            node.wildcard = Some((name.to_owned(), Box::new(child?)));
        } else {
            if let Err(m) = crate_key_check(key) {
                return Err(LoadError::at(*key_at, &m));
            }
            node.children.insert(key.clone(), build(value, wildcards)?);
        }
    }
    Ok(node)
}

fn crate_key_check(key: &str) -> Result<(), String> {
    if key.is_empty()
        || key
            .chars()
            .any(|c| matches!(c, '.' | '#' | '[' | ']' | '/') || c.is_control())
    {
        return Err(format!("invalid key '{key}' in the rules"));
    }
    Ok(())
}

fn expression(value: &Spanned, kind: Kind, wildcards: &[String]) -> Result<Rule, LoadError> {
    let (text, positions) = match &value.value {
        Json::Bool(b) => return Ok(Rule::Const(*b)),
        Json::Str(text, positions) => (text, positions),
        _ => {
            return Err(LoadError::at(
                value.at,
                &format!("{} must be a string or a boolean", kind.key()),
            ))
        }
    };
    let position = |offset: usize| -> Pos {
        positions
            .get(offset)
            .or(positions.last())
            .copied()
            .unwrap_or(value.at)
    };
    let node = expr::parse(text).map_err(|e| LoadError::at(position(e.at), &e.message))?;
    check::rule(&node, &Scope { kind, wildcards })
        .map_err(|(at, m)| LoadError::at(position(at), &m))?;
    Ok(Rule::Expr(Box::new(node)))
}

fn index_on(value: &Spanned) -> Result<Vec<String>, LoadError> {
    let bad = || LoadError::at(value.at, ".indexOn must be a string or an array of strings");
    match &value.value {
        Json::Str(s, _) => Ok(vec![s.clone()]),
        Json::Arr(items) => items
            .iter()
            .map(|i| match &i.value {
                Json::Str(s, _) => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}
