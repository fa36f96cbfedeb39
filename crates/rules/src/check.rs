//! Load-time checks of an expression (spec §2.1–2.5): names in scope, members that exist,
//! argument kinds, and a boolean result. What can only be known when the rule runs (values
//! read from `auth` or the data) is left to the evaluator, where a mismatch is an error that
//! makes the rule false.

use crate::expr::{BinOp, Expr, Lit, Node, UnOp};

/// Which rule an expression is, for the variables in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Validate,
}

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::Read => ".read",
            Kind::Write => ".write",
            Kind::Validate => ".validate",
        }
    }
}

/// Static types. `Auth` (a value reached from `auth`), `Val` (a `val()` or `getPriority()`
/// result) and `Any` are known only at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Num,
    Str,
    Null,
    Snap,
    Query,
    Regex,
    Array,
    Auth,
    Val,
    Any,
    /// A conditional whose branches differ (`x ? 7 : true`): not a boolean.
    Mixed,
}

impl Ty {
    fn dynamic(self) -> bool {
        matches!(self, Ty::Auth | Ty::Val | Ty::Any)
    }
    fn maybe_bool(self) -> bool {
        self == Ty::Bool || self.dynamic()
    }
    fn maybe_num(self) -> bool {
        self == Ty::Num || self.dynamic()
    }
    fn maybe_str(self) -> bool {
        self == Ty::Str || self.dynamic()
    }
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::Num => "number",
            Ty::Str => "string",
            Ty::Null => "null",
            Ty::Snap => "RuleDataSnapshot",
            Ty::Query => "query",
            Ty::Regex => "regular expression",
            Ty::Array => "array",
            Ty::Auth | Ty::Val | Ty::Any => "value",
            Ty::Mixed => "mixed value",
        }
    }
}

pub struct Scope<'a> {
    pub kind: Kind,
    /// Wildcards declared at or above the rule, without `$`.
    pub wildcards: &'a [String],
}

type Check<T> = Result<T, (usize, String)>;

fn fail<T>(at: usize, message: impl Into<String>) -> Check<T> {
    Err((at, message.into()))
}

/// Checks a whole rule: it must be a boolean.
pub fn rule(node: &Node, scope: &Scope) -> Check<()> {
    let t = ty(node, scope)?;
    if !t.maybe_bool() {
        return fail(
            node.at,
            format!("the rule must be a boolean, not a {}", t.name()),
        );
    }
    Ok(())
}

const SNAPSHOT_METHODS: [&str; 10] = [
    "val",
    "child",
    "parent",
    "hasChild",
    "hasChildren",
    "exists",
    "getPriority",
    "isNumber",
    "isString",
    "isBoolean",
];
pub const QUERY_FIELDS: [&str; 9] = [
    "orderByKey",
    "orderByPriority",
    "orderByValue",
    "orderByChild",
    "startAt",
    "endAt",
    "equalTo",
    "limitToFirst",
    "limitToLast",
];

fn ty(node: &Node, scope: &Scope) -> Check<Ty> {
    let at = node.at;
    match &node.expr {
        Expr::Lit(Lit::Null) => Ok(Ty::Null),
        Expr::Lit(Lit::Bool(_)) => Ok(Ty::Bool),
        Expr::Lit(Lit::Num(_)) => Ok(Ty::Num),
        Expr::Lit(Lit::Str(_)) => Ok(Ty::Str),
        Expr::Lit(Lit::Regex(_)) => fail(
            at,
            "a regular expression may only be the argument of matches()",
        ),
        Expr::Array(_) => fail(at, "an array may only be the argument of hasChildren()"),
        Expr::Ident(name) => match name.as_str() {
            "auth" => Ok(Ty::Auth),
            "root" | "data" => Ok(Ty::Snap),
            "newData" if scope.kind != Kind::Read => Ok(Ty::Snap),
            "newData" => fail(at, "newData is not available in .read rules"),
            "now" => Ok(Ty::Num),
            "query" if scope.kind == Kind::Read => Ok(Ty::Query),
            "query" => fail(at, "query is only available in .read rules"),
            _ => fail(at, format!("unknown variable '{name}'")),
        },
        Expr::Var(v) => {
            if scope.wildcards.iter().any(|w| w == v) {
                Ok(Ty::Str)
            } else {
                fail(
                    at,
                    format!("unknown variable '${v}': no such wildcard at or above this rule"),
                )
            }
        }
        Expr::Member(obj, name) => {
            let t = ty(obj, scope)?;
            property(t, name, at)
        }
        Expr::Index(obj, index) => {
            let t = ty(obj, scope)?;
            let i = ty(index, scope)?;
            match (t, &index.expr) {
                // auth and what is reached from it take any key, computed or not.
                (Ty::Auth, _) => {
                    if !(i.maybe_str() || i.maybe_num()) {
                        return fail(index.at, format!("a {} cannot be a key", i.name()));
                    }
                    Ok(Ty::Auth)
                }
                (_, Expr::Lit(Lit::Str(name))) if t != Ty::Val => property(t, name, at),
                _ => fail(
                    at,
                    format!("a {} cannot be indexed with a computed name", t.name()),
                ),
            }
        }
        Expr::Call(callee, args) => call(callee, args, scope),
        Expr::Unary(UnOp::Not, inner) => {
            let t = ty(inner, scope)?;
            if !t.maybe_bool() {
                return fail(inner.at, format!("'!' needs a boolean, not a {}", t.name()));
            }
            Ok(Ty::Bool)
        }
        Expr::Unary(UnOp::Neg, inner) => {
            let t = ty(inner, scope)?;
            if !t.maybe_num() {
                return fail(inner.at, format!("'-' needs a number, not a {}", t.name()));
            }
            Ok(Ty::Num)
        }
        Expr::Binary(op, l, r) => {
            let (a, b) = (ty(l, scope)?, ty(r, scope)?);
            binary(*op, (a, l.at), (b, r.at))
        }
        Expr::Cond(c, x, y) => {
            let t = ty(c, scope)?;
            if !t.maybe_bool() {
                return fail(
                    c.at,
                    format!("a condition must be a boolean, not a {}", t.name()),
                );
            }
            let (a, b) = (ty(x, scope)?, ty(y, scope)?);
            Ok(if a == b {
                a
            } else if a.dynamic() || b.dynamic() {
                Ty::Any
            } else {
                Ty::Mixed
            })
        }
    }
}

fn property(t: Ty, name: &str, at: usize) -> Check<Ty> {
    match t {
        Ty::Auth => Ok(Ty::Auth),
        Ty::Str | Ty::Val | Ty::Any if name == "length" => Ok(Ty::Num),
        Ty::Query if QUERY_FIELDS.contains(&name) => Ok(match name {
            "orderByKey" | "orderByPriority" | "orderByValue" => Ty::Bool,
            _ => Ty::Any,
        }),
        Ty::Snap if SNAPSHOT_METHODS.contains(&name) => {
            fail(at, format!("'{name}' is a method: call it"))
        }
        _ => fail(at, format!("no such property '{name}' on a {}", t.name())),
    }
}

/// The method a call names and the type it is called on.
fn call(callee: &Node, args: &[Node], scope: &Scope) -> Check<Ty> {
    let (obj, name) = match &callee.expr {
        Expr::Member(obj, name) => (obj, name.clone()),
        Expr::Index(obj, index) => match &index.expr {
            Expr::Lit(Lit::Str(name)) => (obj, name.clone()),
            _ => return fail(index.at, "a method name must be written out, not computed"),
        },
        _ => return fail(callee.at, "only methods can be called"),
    };
    let at = callee.at;
    let recv = ty(obj, scope)?;
    let arg_tys = args
        .iter()
        .map(|a| match (&a.expr, name.as_str()) {
            // The two literal kinds that are only valid as arguments.
            (Expr::Lit(Lit::Regex(_)), "matches") => Ok(Ty::Regex),
            (Expr::Array(items), "hasChildren") => {
                if items.is_empty() {
                    return fail(a.at, "hasChildren() needs a non-empty array of names");
                }
                for item in items {
                    let t = ty(item, scope)?;
                    if !t.maybe_str() {
                        return fail(
                            item.at,
                            format!("child names are strings, not a {}", t.name()),
                        );
                    }
                }
                Ok(Ty::Array)
            }
            _ => ty(a, scope),
        })
        .collect::<Check<Vec<Ty>>>()?;
    let arity = |n: usize| -> Check<()> {
        if args.len() != n {
            return fail(
                at,
                format!("{name}() takes {n} argument(s), not {}", args.len()),
            );
        }
        Ok(())
    };
    let strings = |n: usize| -> Check<()> {
        arity(n)?;
        for (t, a) in arg_tys.iter().zip(args) {
            if !t.maybe_str() {
                return fail(a.at, format!("{name}() needs a string, not a {}", t.name()));
            }
        }
        Ok(())
    };
    match recv {
        Ty::Snap => match name.as_str() {
            "val" | "getPriority" => arity(0).map(|_| Ty::Val),
            "parent" => arity(0).map(|_| Ty::Snap),
            "exists" | "isNumber" | "isString" | "isBoolean" => arity(0).map(|_| Ty::Bool),
            "child" => strings(1).map(|_| Ty::Snap),
            "hasChild" => strings(1).map(|_| Ty::Bool),
            "hasChildren" => match arg_tys.as_slice() {
                [] | [Ty::Array] => Ok(Ty::Bool),
                _ => fail(
                    at,
                    "hasChildren() takes nothing or one array literal of names",
                ),
            },
            _ => fail(at, format!("no such method '{name}' on a RuleDataSnapshot")),
        },
        Ty::Str | Ty::Auth | Ty::Val | Ty::Any => match name.as_str() {
            "contains" | "beginsWith" | "endsWith" => strings(1).map(|_| Ty::Bool),
            "replace" => strings(2).map(|_| Ty::Str),
            "toLowerCase" | "toUpperCase" => arity(0).map(|_| Ty::Str),
            "matches" => {
                arity(1)?;
                if arg_tys[0] != Ty::Regex {
                    return fail(args[0].at, "matches() needs a regular expression literal");
                }
                Ok(Ty::Bool)
            }
            _ => fail(at, format!("no such method '{name}' on a string")),
        },
        other => fail(at, format!("a {} has no methods", other.name())),
    }
}

fn binary(op: BinOp, (a, a_at): (Ty, usize), (b, b_at): (Ty, usize)) -> Check<Ty> {
    let mixed = |t: Ty, at: usize| -> Check<()> {
        if t == Ty::Mixed {
            return fail(at, "the operand may be of different types");
        }
        Ok(())
    };
    mixed(a, a_at)?;
    mixed(b, b_at)?;
    match op {
        BinOp::Or | BinOp::And => {
            for (t, at) in [(a, a_at), (b, b_at)] {
                if !t.maybe_bool() {
                    return fail(
                        at,
                        format!("'&&' and '||' need booleans, not a {}", t.name()),
                    );
                }
            }
            Ok(Ty::Bool)
        }
        BinOp::Eq | BinOp::Ne => {
            for (t, at) in [(a, a_at), (b, b_at)] {
                if matches!(t, Ty::Snap | Ty::Query | Ty::Regex | Ty::Array) {
                    return fail(at, format!("a {} cannot be compared", t.name()));
                }
            }
            Ok(Ty::Bool)
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            for (t, at) in [(a, a_at), (b, b_at)] {
                if !(t.maybe_num() || t.maybe_str()) {
                    return fail(
                        at,
                        format!(
                            "only numbers and strings can be ordered, not a {}",
                            t.name()
                        ),
                    );
                }
            }
            if !a.dynamic() && !b.dynamic() && a != b {
                return fail(
                    b_at,
                    format!("a {} cannot be ordered against a {}", a.name(), b.name()),
                );
            }
            Ok(Ty::Bool)
        }
        BinOp::Add => {
            for (t, at) in [(a, a_at), (b, b_at)] {
                if !(t.maybe_num() || t.maybe_str()) {
                    return fail(
                        at,
                        format!("'+' needs numbers or strings, not a {}", t.name()),
                    );
                }
            }
            Ok(if a == Ty::Num && b == Ty::Num {
                Ty::Num
            } else if a == Ty::Str || b == Ty::Str {
                Ty::Str
            } else {
                Ty::Any
            })
        }
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            for (t, at) in [(a, a_at), (b, b_at)] {
                if !t.maybe_num() {
                    return fail(at, format!("arithmetic needs numbers, not a {}", t.name()));
                }
            }
            Ok(Ty::Num)
        }
    }
}
