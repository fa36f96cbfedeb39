//! Rule expressions: tokens and the syntax tree. The grammar is the JavaScript subset of
//! the rules language (spec §2.2); anything outside it is refused here, at load time.

use std::sync::Arc;

/// A syntax error at a character offset in the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        at,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Var(String),
    Regex(String, String),
    Punct(&'static str),
}

const PUNCTS: [&str; 24] = [
    "===", "!==", "**", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", ".", ",", "?", ":",
    "!", "-", "+", "*", "%", "<", ">",
];

fn lex(src: &[char]) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let mut out: Vec<(Tok, usize)> = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        // A '/' after something that ends a value divides; anywhere else it opens a regex.
        let after_value = matches!(
            out.last(),
            Some((
                Tok::Num(_) | Tok::Str(_) | Tok::Ident(_) | Tok::Var(_) | Tok::Regex(..),
                _
            )) | Some((Tok::Punct(")" | "]"), _))
        );
        if c == '/' && !after_value {
            i += 1;
            let mut body = String::new();
            let mut in_class = false;
            loop {
                match src.get(i) {
                    None | Some('\n') => return err(start, "unterminated regular expression"),
                    Some('\\') => {
                        body.push('\\');
                        if let Some(n) = src.get(i + 1) {
                            body.push(*n);
                        }
                        i += 2;
                    }
                    Some('/') if !in_class => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        if ch == '[' {
                            in_class = true;
                        } else if ch == ']' {
                            in_class = false;
                        }
                        body.push(ch);
                        i += 1;
                    }
                }
            }
            let mut flags = String::new();
            while let Some(f) = src.get(i).filter(|f| f.is_ascii_alphanumeric()) {
                flags.push(*f);
                i += 1;
            }
            out.push((Tok::Regex(body, flags), start));
            continue;
        }
        if c == '/' {
            out.push((Tok::Punct("/"), start));
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && src.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let mut text = String::new();
            while let Some(&d) = src.get(i) {
                let exp_sign =
                    matches!(d, '+' | '-') && matches!(text.chars().last(), Some('e' | 'E'));
                if d.is_ascii_alphanumeric() || d == '.' || exp_sign {
                    text.push(d);
                    i += 1;
                } else {
                    break;
                }
            }
            let n = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16).map(|n| n as f64).ok()
            } else {
                text.parse::<f64>().ok()
            };
            match n {
                Some(n) => out.push((Tok::Num(n), start)),
                None => return err(start, format!("invalid number '{text}'")),
            }
            continue;
        }
        if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match src.get(i) {
                    None => return err(start, "unterminated string"),
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = src.get(i + 1).copied();
                        i += 2;
                        match e {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some('v') => s.push('\u{b}'),
                            Some('0') => s.push('\0'),
                            Some('x') | Some('u') => {
                                let len = if e == Some('x') { 2 } else { 4 };
                                let hex: String = src.iter().skip(i).take(len).collect();
                                let code = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == len)
                                    .and_then(char::from_u32);
                                match code {
                                    Some(ch) => s.push(ch),
                                    None => return err(i - 2, "invalid escape"),
                                }
                                i += len;
                            }
                            Some(other) => s.push(other),
                            None => return err(start, "unterminated string"),
                        }
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        if c == '$' || c == '_' || c.is_alphabetic() {
            let mut name = String::new();
            name.push(c);
            i += 1;
            while let Some(&d) = src
                .get(i)
                .filter(|d| d.is_alphanumeric() || **d == '_' || **d == '$')
            {
                name.push(d);
                i += 1;
            }
            let tok = match name.strip_prefix('$') {
                Some(var) if !var.is_empty() => Tok::Var(var.to_owned()),
                _ => Tok::Ident(name),
            };
            out.push((tok, start));
            continue;
        }
        let rest: String = src[i..].iter().take(3).collect();
        match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                if *p == "**" {
                    return err(start, "'**' is not an operator in rules");
                }
                out.push((Tok::Punct(p), start));
                i += p.chars().count();
            }
            None => {
                let what = match c {
                    ';' => "statements are not allowed in rules".to_owned(),
                    '=' => "assignment is not allowed in rules".to_owned(),
                    '&' | '|' | '^' | '~' => {
                        "bitwise operators are not allowed in rules".to_owned()
                    }
                    '{' | '}' => "object literals are not allowed in rules".to_owned(),
                    _ => format!("unexpected character '{c}'"),
                };
                return err(start, what);
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Regex(Arc<regex::Regex>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Lit(Lit),
    Ident(String),
    Var(String),
    Array(Vec<Node>),
    Member(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Call(Box<Node>, Vec<Node>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// An expression and where it starts (a character offset in the rule string).
#[derive(Debug, Clone)]
pub struct Node {
    pub expr: Expr,
    pub at: usize,
}

pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let chars: Vec<char> = source.chars().collect();
    let toks = lex(&chars)?;
    let mut p = Parser {
        toks,
        i: 0,
        end: chars.len(),
        depth: 0,
        nodes: 0,
    };
    let node = p.cond()?;
    if let Some((tok, at)) = p.toks.get(p.i) {
        return err(*at, format!("unexpected {}", describe(tok)));
    }
    Ok(node)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Var(s) => format!("'${s}'"),
        Tok::Regex(..) => "regular expression".into(),
        Tok::Punct(p) => format!("'{p}'"),
    }
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;
/// Longer expressions are refused: a left-leaning chain (`a || b || …`) is as deep as it
/// is long for the checker and the evaluator, which recurse.
const MAX_NODES: usize = 1000;

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    end: usize,
    depth: usize,
    nodes: usize,
}

impl Parser {
    /// Counts a node about to be built.
    fn node(&mut self, expr: Expr, at: usize) -> Result<Node, SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return err(
                at,
                format!("the expression is too long (more than {MAX_NODES} parts)"),
            );
        }
        Ok(Node { expr, at })
    }

    fn at(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |t| t.1)
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.toks.get(self.i), Some((Tok::Punct(q), _)) if *q == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), SyntaxError> {
        if self.eat(p) {
            return Ok(());
        }
        match self.toks.get(self.i) {
            Some((t, at)) => err(*at, format!("expected '{p}', found {}", describe(t))),
            None => err(self.end, format!("expected '{p}' before the end")),
        }
    }

    fn cond(&mut self) -> Result<Node, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.at(), "the expression nests too deeply");
        }
        let c = self.binary(0)?;
        let out = if self.eat("?") {
            let a = self.cond()?;
            self.expect(":")?;
            let b = self.cond()?;
            let at = c.at;
            self.node(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)), at)?
        } else {
            c
        };
        self.depth -= 1;
        Ok(out)
    }

    /// Binary operators by precedence level, lowest first.
    fn binary(&mut self, level: usize) -> Result<Node, SyntaxError> {
        const LEVELS: [&[(&str, BinOp)]; 6] = [
            &[("||", BinOp::Or)],
            &[("&&", BinOp::And)],
            &[
                ("===", BinOp::Eq),
                ("==", BinOp::Eq),
                ("!==", BinOp::Ne),
                ("!=", BinOp::Ne),
            ],
            &[
                ("<=", BinOp::Le),
                ("<", BinOp::Lt),
                (">=", BinOp::Ge),
                (">", BinOp::Gt),
            ],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        'more: loop {
            for (p, op) in LEVELS[level] {
                if self.eat(p) {
                    let right = self.binary(level + 1)?;
                    let at = left.at;
                    left = self.node(Expr::Binary(*op, Box::new(left), Box::new(right)), at)?;
                    continue 'more;
                }
            }
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Node, SyntaxError> {
        let at = self.at();
        let op = if self.eat("!") {
            UnOp::Not
        } else if self.eat("-") {
            UnOp::Neg
        } else if self.eat("+") {
            return err(at, "unary '+' is not allowed in rules");
        } else {
            return self.postfix();
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(at, "the expression nests too deeply");
        }
        let inner = self.unary()?;
        self.depth -= 1;
        self.node(Expr::Unary(op, Box::new(inner)), at)
    }

    fn postfix(&mut self) -> Result<Node, SyntaxError> {
        let mut node = self.primary()?;
        loop {
            let at = self.at();
            if self.eat(".") {
                match self.toks.get(self.i).cloned() {
                    Some((Tok::Ident(name), _)) => {
                        self.i += 1;
                        node = self.node(Expr::Member(Box::new(node), name), at)?;
                    }
                    _ => return err(self.at(), "expected a name after '.'"),
                }
            } else if self.eat("[") {
                let index = self.cond()?;
                self.expect("]")?;
                node = self.node(Expr::Index(Box::new(node), Box::new(index)), at)?;
            } else if self.eat("(") {
                let args = self.list(")")?;
                node = self.node(Expr::Call(Box::new(node), args), at)?;
            } else {
                return Ok(node);
            }
        }
    }

    fn list(&mut self, close: &str) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.cond()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let Some((tok, at)) = self.toks.get(self.i).cloned() else {
            return err(self.end, "unexpected end of the expression");
        };
        self.i += 1;
        let expr = match tok {
            Tok::Num(n) => Expr::Lit(Lit::Num(n)),
            Tok::Str(s) => Expr::Lit(Lit::Str(s)),
            Tok::Var(v) => Expr::Var(v),
            Tok::Regex(body, flags) => {
                let re = crate::regex::compile(&body, &flags)
                    .map_err(|m| SyntaxError { at, message: m })?;
                Expr::Lit(Lit::Regex(Arc::new(re)))
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Lit(Lit::Bool(true)),
                "false" => Expr::Lit(Lit::Bool(false)),
                "null" => Expr::Lit(Lit::Null),
                "var" | "let" | "const" | "function" | "new" | "typeof" | "in" | "this"
                | "instanceof" | "delete" | "void" | "return" => {
                    return err(at, format!("'{name}' is not allowed in rules"))
                }
                _ => Expr::Ident(name),
            },
            Tok::Punct("(") => {
                let inner = self.cond()?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Punct("[") => Expr::Array(self.list("]")?),
            other => return err(at, format!("unexpected {}", describe(&other))),
        };
        self.node(expr, at)
    }
}
