//! Running a checked expression. Any mismatch found only now (a number compared with a
//! string, a method called on null, …) is an `Err`, which makes the rule false (spec §2.4).

use std::borrow::Cow;

use serde_json::Value;

use crate::expr::{BinOp, Expr, Lit, Node, UnOp};
use crate::tree;
use crate::Query;

/// What a rule sees (spec §2.3).
pub struct Env<'a> {
    pub auth: &'a Value,
    pub root: &'a Value,
    /// The tree after the write; `None` for reads.
    pub new_root: Option<&'a Value>,
    /// Where the rule sits: `data` and `newData` are read here.
    pub path: &'a [String],
    pub wildcards: &'a [(String, String)],
    pub now_ms: f64,
    pub query: &'a Query,
}

#[derive(Clone)]
struct Snap<'a> {
    root: &'a Value,
    path: Vec<String>,
}

impl<'a> Snap<'a> {
    fn node(&self) -> Option<&'a Value> {
        tree::get(self.root, &self.path)
    }
}

#[derive(Clone)]
enum V<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An object or array: reached from `auth`, or the `val()` of a node with children.
    Json(&'a Value),
    Snap(Snap<'a>),
    Query,
    Regex(&'a regex::Regex),
    Array(Vec<V<'a>>),
}

type R<T> = Result<T, String>;

fn from_json(v: &Value) -> V<'_> {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => V::Str(Cow::Borrowed(s)),
        other => V::Json(other),
    }
}

fn kind(v: &V) -> &'static str {
    match v {
        V::Null => "null",
        V::Bool(_) => "boolean",
        V::Num(_) => "number",
        V::Str(_) => "string",
        V::Json(_) => "object",
        V::Snap(_) => "RuleDataSnapshot",
        V::Query => "query",
        V::Regex(_) => "regular expression",
        V::Array(_) => "array",
    }
}

/// The rule's verdict: `Ok(true)` grants, `Ok(false)` does not, `Err` is a runtime error.
pub fn rule(node: &Node, env: &Env) -> R<bool> {
    match eval(node, env)? {
        V::Bool(b) => Ok(b),
        other => Err(format!("the rule gave a {}, not a boolean", kind(&other))),
    }
}

fn boolean(node: &Node, env: &Env) -> R<bool> {
    match eval(node, env)? {
        V::Bool(b) => Ok(b),
        other => Err(format!("expected a boolean, found a {}", kind(&other))),
    }
}

/// JavaScript's number to string.
fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == n.trunc() && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

fn eval<'a>(node: &'a Node, env: &Env<'a>) -> R<V<'a>> {
    match &node.expr {
        Expr::Lit(Lit::Null) => Ok(V::Null),
        Expr::Lit(Lit::Bool(b)) => Ok(V::Bool(*b)),
        Expr::Lit(Lit::Num(n)) => Ok(V::Num(*n)),
        Expr::Lit(Lit::Str(s)) => Ok(V::Str(Cow::Borrowed(s))),
        Expr::Lit(Lit::Regex(re)) => Ok(V::Regex(re)),
        Expr::Array(items) => Ok(V::Array(
            items.iter().map(|i| eval(i, env)).collect::<R<_>>()?,
        )),
        Expr::Ident(name) => Ok(match name.as_str() {
            "auth" => from_json(env.auth),
            "root" => V::Snap(Snap {
                root: env.root,
                path: Vec::new(),
            }),
            "data" => V::Snap(Snap {
                root: env.root,
                path: env.path.to_vec(),
            }),
            "newData" => V::Snap(Snap {
                root: env.new_root.unwrap_or(env.root),
                path: env.path.to_vec(),
            }),
            "now" => V::Num(env.now_ms),
            "query" => V::Query,
            other => return Err(format!("unknown variable '{other}'")),
        }),
        Expr::Var(name) => env
            .wildcards
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| V::Str(Cow::Owned(v.clone())))
            .ok_or_else(|| format!("unknown variable '${name}'")),
        Expr::Member(obj, name) => {
            let o = eval(obj, env)?;
            member(o, name, env)
        }
        Expr::Index(obj, index) => {
            let o = eval(obj, env)?;
            let key = match eval(index, env)? {
                V::Str(s) => s.into_owned(),
                V::Num(n) => js_number(n),
                other => return Err(format!("a {} cannot be a key", kind(&other))),
            };
            member(o, &key, env)
        }
        Expr::Call(callee, args) => {
            let (obj, name) = match &callee.expr {
                Expr::Member(obj, name) => (obj, name.as_str()),
                Expr::Index(obj, index) => match &index.expr {
                    Expr::Lit(Lit::Str(name)) => (obj, name.as_str()),
                    _ => return Err("a computed method name".into()),
                },
                _ => return Err("only methods can be called".into()),
            };
            let recv = eval(obj, env)?;
            let args = args.iter().map(|a| eval(a, env)).collect::<R<Vec<_>>>()?;
            method(recv, name, args)
        }
        Expr::Unary(UnOp::Not, inner) => Ok(V::Bool(!boolean(inner, env)?)),
        Expr::Unary(UnOp::Neg, inner) => match eval(inner, env)? {
            V::Num(n) => Ok(V::Num(-n)),
            other => Err(format!("cannot negate a {}", kind(&other))),
        },
        Expr::Binary(BinOp::And, l, r) => Ok(V::Bool(boolean(l, env)? && boolean(r, env)?)),
        Expr::Binary(BinOp::Or, l, r) => Ok(V::Bool(boolean(l, env)? || boolean(r, env)?)),
        Expr::Binary(op, l, r) => {
            let (a, b) = (eval(l, env)?, eval(r, env)?);
            binary(*op, a, b)
        }
        Expr::Cond(c, x, y) => {
            if boolean(c, env)? {
                eval(x, env)
            } else {
                eval(y, env)
            }
        }
    }
}

fn member<'a>(o: V<'a>, name: &str, env: &Env<'a>) -> R<V<'a>> {
    match o {
        // Reading a property of null, or a missing one, gives null (spec §2.4).
        V::Null => Ok(V::Null),
        V::Json(Value::Object(map)) => Ok(map.get(name).map_or(V::Null, from_json)),
        V::Json(Value::Array(items)) => Ok(name
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .map_or(V::Null, from_json)),
        V::Str(s) if name == "length" => Ok(V::Num(s.encode_utf16().count() as f64)),
        V::Query => Ok(query_field(env.query, name)),
        V::Str(_) | V::Bool(_) | V::Num(_) => Ok(V::Null),
        other => Err(format!("no property '{name}' on a {}", kind(&other))),
    }
}

/// Query fields as the rules see them.
fn query_field<'a>(q: &'a Query, name: &str) -> V<'a> {
    let opt = |v: &'a Option<Value>| v.as_ref().map_or(V::Null, from_json);
    let num = |v: Option<f64>| v.map_or(V::Null, V::Num);
    match name {
        "orderByKey" => V::Bool(q.order_by_key()),
        "orderByPriority" => V::Bool(q.order_by_priority),
        "orderByValue" => V::Bool(q.order_by_value),
        "orderByChild" => q
            .order_by_child
            .as_deref()
            .map_or(V::Null, |c| V::Str(Cow::Borrowed(c))),
        "startAt" => opt(&q.start_at),
        "endAt" => opt(&q.end_at),
        "equalTo" => opt(&q.equal_to),
        "limitToFirst" => num(q.limit_to_first),
        "limitToLast" => num(q.limit_to_last),
        _ => V::Null,
    }
}

fn string_arg<'b>(name: &str, v: &'b V) -> R<&'b str> {
    match v {
        V::Str(s) => Ok(s),
        other => Err(format!("{name}() needs a string, not a {}", kind(other))),
    }
}

fn method<'a>(recv: V<'a>, name: &str, args: Vec<V<'a>>) -> R<V<'a>> {
    match recv {
        V::Snap(s) => snapshot_method(s, name, args),
        V::Str(s) => string_method(&s, name, &args),
        other => Err(format!("cannot call {name}() on a {}", kind(&other))),
    }
}

fn snapshot_method<'a>(s: Snap<'a>, name: &str, args: Vec<V<'a>>) -> R<V<'a>> {
    let node = s.node();
    let value = node.map(tree::value_of);
    Ok(match name {
        "val" => value.map_or(V::Null, from_json),
        "exists" => V::Bool(node.is_some()),
        "getPriority" => node.and_then(tree::priority_of).map_or(V::Null, from_json),
        "isNumber" => V::Bool(value.is_some_and(Value::is_number)),
        "isString" => V::Bool(value.is_some_and(Value::is_string)),
        "isBoolean" => V::Bool(value.is_some_and(Value::is_boolean)),
        "parent" => {
            let mut path = s.path;
            if path.pop().is_none() {
                return Err("the root has no parent".into());
            }
            V::Snap(Snap { root: s.root, path })
        }
        "child" | "hasChild" => {
            let p = string_arg(name, args.first().unwrap_or(&V::Null))?;
            let mut path = s.path;
            path.extend(
                p.split('/')
                    .filter(|seg| !seg.is_empty())
                    .map(str::to_owned),
            );
            let child = Snap { root: s.root, path };
            if name == "child" {
                V::Snap(child)
            } else {
                V::Bool(child.node().is_some())
            }
        }
        "hasChildren" => match args.first() {
            None => V::Bool(node.is_some_and(|n| tree::children(n).next().is_some())),
            Some(V::Array(names)) => {
                let mut all = true;
                for n in names {
                    let p = string_arg(name, n)?;
                    let segs: Vec<&str> = p.split('/').filter(|seg| !seg.is_empty()).collect();
                    all &= node.is_some_and(|n| tree::get(n, &segs).is_some());
                }
                V::Bool(all)
            }
            Some(other) => {
                return Err(format!(
                    "hasChildren() takes an array, not a {}",
                    kind(other)
                ))
            }
        },
        _ => return Err(format!("no such method '{name}'")),
    })
}

fn string_method<'a>(s: &str, name: &str, args: &[V<'a>]) -> R<V<'a>> {
    let arg = |i: usize| string_arg(name, args.get(i).unwrap_or(&V::Null));
    Ok(match name {
        "contains" => V::Bool(s.contains(arg(0)?)),
        "beginsWith" => V::Bool(s.starts_with(arg(0)?)),
        "endsWith" => V::Bool(s.ends_with(arg(0)?)),
        "replace" => {
            let (from, to) = (arg(0)?, arg(1)?);
            // Every occurrence, unlike JavaScript's String.replace (spec §2.5).
            V::Str(Cow::Owned(if from.is_empty() {
                s.to_owned()
            } else {
                s.replace(from, to)
            }))
        }
        "toLowerCase" => V::Str(Cow::Owned(s.to_lowercase())),
        "toUpperCase" => V::Str(Cow::Owned(s.to_uppercase())),
        "matches" => match args.first() {
            Some(V::Regex(re)) => V::Bool(re.is_match(s)),
            _ => return Err("matches() needs a regular expression".into()),
        },
        _ => return Err(format!("no such method '{name}' on a string")),
    })
}

fn binary<'a>(op: BinOp, a: V<'a>, b: V<'a>) -> R<V<'a>> {
    use V::{Num, Str};
    Ok(match op {
        BinOp::Eq => V::Bool(equal(&a, &b)),
        BinOp::Ne => V::Bool(!equal(&a, &b)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&a, &b) {
                (Num(x), Num(y)) => x.partial_cmp(y),
                (Str(x), Str(y)) => Some(x.cmp(y)),
                _ => {
                    return Err(format!(
                        "cannot order a {} against a {}",
                        kind(&a),
                        kind(&b)
                    ))
                }
            };
            use std::cmp::Ordering::*;
            V::Bool(match (op, ord) {
                (_, None) => false,
                (BinOp::Lt, Some(o)) => o == Less,
                (BinOp::Le, Some(o)) => o != Greater,
                (BinOp::Gt, Some(o)) => o == Greater,
                (_, Some(o)) => o != Less,
            })
        }
        BinOp::Add => match (&a, &b) {
            (Num(x), Num(y)) => Num(x + y),
            (Str(x), Str(y)) => Str(Cow::Owned(format!("{x}{y}"))),
            (Str(x), Num(y)) => Str(Cow::Owned(format!("{x}{}", js_number(*y)))),
            (Num(x), Str(y)) => Str(Cow::Owned(format!("{}{y}", js_number(*x)))),
            _ => return Err(format!("cannot add a {} and a {}", kind(&a), kind(&b))),
        },
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            let (Num(x), Num(y)) = (&a, &b) else {
                return Err(format!("arithmetic on a {} and a {}", kind(&a), kind(&b)));
            };
            let (x, y) = (*x, *y);
            Num(match op {
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                // Division by zero is NaN in rules, not Infinity (spec §2.4).
                BinOp::Div if y == 0.0 => f64::NAN,
                BinOp::Div => x / y,
                _ => x % y,
            })
        }
        BinOp::And | BinOp::Or => return Err("short-circuit operators are evaluated apart".into()),
    })
}

/// Strict equality: values of different types are unequal; objects equal nothing.
fn equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        _ => false,
    }
}
