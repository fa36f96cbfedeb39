//! The rules engine against the recorded verdicts in `shared/conformance/rtdb-rules`
//! (skipped, with a note, where that folder is absent), and case by case: operators,
//! methods, load-time errors and the cascade.

use firekeeper_rules::{tree, Context, Outcome, Query, Ruleset};
use serde_json::{json, Value};

fn segs(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn query_of(q: &Value) -> Query {
    let mut out = Query::default();
    if q.is_null() {
        return out;
    }
    out.order_by_child = q["orderByChild"].as_str().map(str::to_owned);
    out.order_by_value = q["orderByValue"].as_bool().unwrap_or(false);
    out.order_by_priority = q["orderByPriority"].as_bool().unwrap_or(false);
    let opt = |k: &str| q.get(k).filter(|v| !v.is_null()).cloned();
    out.start_at = opt("startAt");
    out.end_at = opt("endAt");
    out.equal_to = opt("equalTo");
    out.limit_to_first = q["limitToFirst"].as_f64();
    out.limit_to_last = q["limitToLast"].as_f64();
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn conformance_cases_get_their_recorded_verdicts() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/rtdb-rules/cases.json");
    let Ok(text) = std::fs::read_to_string(&file) else {
        eprintln!(
            "{} is absent: skipping the conformance cases",
            file.display()
        );
        return;
    };
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 282, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let loaded = Ruleset::parse(&case["rules"].to_string());
        let expect = case["expect"].as_str();
        let rules = match (loaded, expect) {
            (Err(_), Some("compile_error")) => continue,
            (Ok(_), Some("compile_error")) => {
                failures.push(format!("{id}: loaded, but production refuses it"));
                continue;
            }
            (Err(e), _) => {
                failures.push(format!("{id}: refused at load: {e}"));
                continue;
            }
            (Ok(r), _) => r,
        };
        let auth = case["auth"].clone();
        let ctx = Context {
            auth: &auth,
            now_ms: now(),
        };
        let path = segs(case["path"].as_str().unwrap());
        let mut root = Value::Null;
        if case["kind"] == "expr" {
            root = tree::normalize(case["data"].clone());
        } else if let Some(seed) = case["seed"].as_object() {
            for (p, v) in seed {
                tree::set(&mut root, &segs(p), tree::normalize(v.clone()));
            }
        }
        let decision = if case["op"] == "read" {
            rules.read(&root, &path, &query_of(&case["query"]), &ctx)
        } else {
            let mut new_root = root.clone();
            tree::set(&mut new_root, &path, tree::normalize(case["value"].clone()));
            rules.write(&root, &new_root, std::slice::from_ref(&path), &ctx)
        };
        if decision.allowed != case["allow"].as_bool().unwrap() {
            failures.push(format!(
                "{id}: allowed {} ({:?})",
                decision.allowed, decision.steps
            ));
            continue;
        }
        // Expression cases also record whether the rule errored or was plainly false.
        if let Some(expect) = expect {
            let last = decision.steps.last().map(|s| &s.outcome);
            let ok = matches!(
                (expect, last),
                ("true", Some(Outcome::True))
                    | ("false", Some(Outcome::False))
                    | ("runtime_error", Some(Outcome::Error(_)))
            );
            if !ok {
                failures.push(format!(
                    "{id}: expected {expect}, got {last:?} for {}",
                    case["rule"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One `.read` rule at the root, evaluated against `data` as `auth`.
fn outcome(rule: &str, data: Value, auth: Value) -> Outcome {
    let rules = Ruleset::parse(&json!({"rules": {".read": rule}}).to_string())
        .unwrap_or_else(|e| panic!("{rule}: {e}"));
    let root = tree::normalize(data);
    let d = rules.read(
        &root,
        &[],
        &Query::default(),
        &Context {
            auth: &auth,
            now_ms: 1000,
        },
    );
    d.steps.last().unwrap().outcome.clone()
}

fn is_true(rule: &str) -> bool {
    outcome(
        rule,
        json!({"a": 1, "s": "str", "o": {"x": true}}),
        json!({"uid": "u1", "token": {"n": 2}}),
    ) == Outcome::True
}

fn errors(rule: &str) -> bool {
    matches!(
        outcome(
            rule,
            json!({"a": 1, "s": "str"}),
            json!({"uid": "u1", "flag": true})
        ),
        Outcome::Error(_)
    )
}

#[test]
fn operators() {
    for rule in [
        "1 + 2 == 3",
        "'a' + 1 == 'a1'",
        "1 + 'a' == '1a'",
        "5 - 2 == 3",
        "2 * 3 == 6",
        "7 / 2 == 3.5",
        "7 % 4 == 3",
        "-(1) == -1",
        "!(1 == 2)",
        "1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3",
        "'a' < 'b'",
        "1 != '1'",
        "null == null",
        "true ? true : false",
        "false || true",
        "!(false && true)",
        "(1/0) != (1/0)",
        "now == 1000",
        "true || (1 < auth.uid)",
        "!(false && (1 < auth.uid))",
    ] {
        assert!(is_true(rule), "{rule}");
    }
    for rule in [
        "1 < auth.uid",
        "auth.missing < 1",
        "1 + auth.flag == 2",
        "auth.uid - 1 == 0",
        "-auth.uid == 1",
        "(1 < auth.uid) || true",
        "auth.missing.length > 0",
        "!auth.missing",
    ] {
        assert!(errors(rule), "{rule}");
    }
}

#[test]
fn methods() {
    for rule in [
        "root.child('a').val() == 1",
        "root.child('o/x').val() == true",
        "root.child('o').child('x').exists()",
        "!root.child('zz').exists()",
        "root.child('o/x').parent().hasChild('x')",
        "root.hasChildren()",
        "root.hasChildren(['a', 's'])",
        "!root.hasChildren(['a', 'nope'])",
        "root.child('a').isNumber() && root.child('s').isString() && root.child('o/x').isBoolean()",
        "root.child('a').getPriority() == null",
        "root.child('s').val().length == 3",
        "'hello'.contains('ell') && 'hello'.beginsWith('he') && 'hello'.endsWith('lo')",
        "'a-b-c'.replace('-', '+') == 'a+b+c'",
        "'AbC'.toLowerCase() == 'abc' && 'AbC'.toUpperCase() == 'ABC'",
        "'foo123'.matches(/^[a-z]+\\d{3}$/)",
        "'FOO'.matches(/foo/i)",
        "auth.uid == 'u1' && auth.token.n == 2 && auth['token']['n'] == 2",
        "auth.nothing.deeper == null",
        "query.orderByKey && query.limitToFirst == null",
    ] {
        assert!(is_true(rule), "{rule}");
    }
    for rule in [
        "root.parent().exists()",
        "root.child(auth.missing).exists()",
        "'a'.contains(auth.missing)",
        "auth.missing.contains('a')",
        "root.hasChildren([auth.missing])",
    ] {
        assert!(errors(rule), "{rule}");
    }
}

#[test]
fn load_errors_point_at_line_and_column() {
    let text = "{\n  // comment\n  \"rules\": {\n    \".read\": \"auth != null &&\n       nope == 1\"\n  }\n}";
    let e = Ruleset::parse(text).unwrap_err();
    assert_eq!((e.line, e.column), (5, 8), "{e}");
    assert!(e.message.contains("nope"), "{e}");
    for (rules, what) in [
        (json!({"rules": {".read": "1 +"}}), "end"),
        (
            json!({"rules": {".write": "newData.val() = 1"}}),
            "assignment",
        ),
        (json!({"rules": {".read": "newData.exists()"}}), "newData"),
        (json!({"rules": {".bogus": true}}), "unknown rule"),
        (json!({"rules": {"$a": {}, "$b": {}}}), "wildcard"),
        (json!({"rules": {"$a": {"$a": {}}}}), "wildcard"),
        (json!({"rules": {".indexOn": 5}}), "indexOn"),
        (json!({"rules": {".read": "'x'"}}), "boolean"),
        (json!({"rulez": {}}), "rules"),
        (
            json!({"rules": {".read": "root.val().matches(/a/g)"}}),
            "flags",
        ),
    ] {
        let e = Ruleset::parse(&rules.to_string()).unwrap_err();
        assert!(e.message.contains(what), "{rules}: {e}");
    }
    assert!(Ruleset::parse("{\"rules\": {} /* unterminated").is_err());
    // Bounded: a very long expression, or a very large file, is refused rather than
    // risking the stack or the CPU.
    let long = vec!["auth.uid == 'x'"; 400].join(" || ");
    let e = Ruleset::parse(&json!({"rules": {".read": long}}).to_string()).unwrap_err();
    assert!(e.message.contains("too long"), "{e}");
    let big = format!(
        "{{\"rules\": {{}}, \"pad\": \"{}\"}}",
        "x".repeat(300 * 1024)
    );
    assert!(Ruleset::parse(&big).unwrap_err().message.contains("larger"));
    assert!(Ruleset::parse("{\"rules\": {}, }").is_ok());
}

fn ctx(auth: &Value) -> Context<'_> {
    Context { auth, now_ms: 5 }
}

fn write_allowed(rules: &Ruleset, old: &Value, path: &str, value: Value, auth: &Value) -> bool {
    let mut new = old.clone();
    tree::set(&mut new, &segs(path), tree::normalize(value));
    rules.write(old, &new, &[segs(path)], &ctx(auth)).allowed
}

#[test]
fn grants_cascade_and_rules_are_not_filters() {
    let rules = Ruleset::parse(
        &json!({"rules": {
            "public": {".read": true, "secret": {".read": false}},
            "users": {"$uid": {".read": "auth.uid == $uid", "name": {".read": true}}},
        }})
        .to_string(),
    )
    .unwrap();
    let read = |path: &str, auth: &Value| {
        rules
            .read(&Value::Null, &segs(path), &Query::default(), &ctx(auth))
            .allowed
    };
    let alice = json!({"uid": "alice"});
    // A grant above cannot be taken back below.
    assert!(read("/public/secret", &Value::Null));
    assert!(read("/users/alice", &alice));
    assert!(!read("/users/bob", &alice));
    assert!(read("/users/bob/name", &alice));
    // Rules below the path are never consulted: reading the parent is refused.
    assert!(!read("/users", &alice));
    assert!(!read("/", &alice));
}

#[test]
fn validate_applies_to_ancestors_and_new_children_but_not_deletes() {
    let rules = Ruleset::parse(
        &json!({"rules": {
            ".write": true,
            "items": {
                ".validate": "newData.hasChildren()",
                "$id": {
                    ".validate": "newData.hasChildren(['name'])",
                    "name": {".validate": "newData.isString() && newData.val().length < 5"},
                    "count": {".validate": "newData.isNumber() && (!data.exists() || newData.val() > data.val())"},
                },
            },
        }})
        .to_string(),
    )
    .unwrap();
    let none = Value::Null;
    let mut root = Value::Null;
    assert!(write_allowed(
        &rules,
        &root,
        "/items/a",
        json!({"name": "ok"}),
        &none
    ));
    assert!(!write_allowed(
        &rules,
        &root,
        "/items/a",
        json!({"name": "too long"}),
        &none
    ));
    assert!(!write_allowed(
        &rules,
        &root,
        "/items/a",
        json!({"count": 1}),
        &none
    ));
    tree::set(
        &mut root,
        &segs("/items/a"),
        json!({"name": "ok", "count": 1}),
    );
    // data and newData: the counter only grows.
    assert!(write_allowed(
        &rules,
        &root,
        "/items/a/count",
        json!(2),
        &none
    ));
    assert!(!write_allowed(
        &rules,
        &root,
        "/items/a/count",
        json!(1),
        &none
    ));
    // The ancestor's .validate sees the merged value: removing the name breaks /items/a.
    assert!(!write_allowed(
        &rules,
        &root,
        "/items/a/name",
        Value::Null,
        &none
    ));
    // Deleting the whole item skips its own .validate.
    assert!(write_allowed(&rules, &root, "/items/a", Value::Null, &none));
    // A multi-path update is judged on the merged tree, all or nothing.
    let mut new = root.clone();
    tree::set(&mut new, &segs("/items/b/name"), json!("b"));
    tree::set(&mut new, &segs("/items/a/count"), json!(0));
    let d = rules.write(
        &root,
        &new,
        &[segs("/items/b/name"), segs("/items/a/count")],
        &ctx(&none),
    );
    assert!(!d.allowed);
}

#[test]
fn write_rules_are_checked_on_the_way_down_only() {
    let rules = Ruleset::parse(
        &json!({"rules": {"a": {".write": "auth != null", "b": {".write": false}}, "c": {"d": {".write": true}}}})
            .to_string(),
    )
    .unwrap();
    let user = json!({"uid": "u"});
    assert!(write_allowed(&rules, &Value::Null, "/a/b", json!(1), &user));
    assert!(!write_allowed(
        &rules,
        &Value::Null,
        "/a/b",
        json!(1),
        &Value::Null
    ));
    // .write below the written path does not grant the write above it.
    assert!(!write_allowed(
        &rules,
        &Value::Null,
        "/c",
        json!({"d": 1}),
        &user
    ));
    assert!(write_allowed(&rules, &Value::Null, "/c/d", json!(1), &user));
}

#[test]
fn revocation_rule_of_the_seed() {
    let rules = Ruleset::parse(
        &json!({"rules": {"users": {"$user_id": {
            ".read": "auth != null && $user_id === auth.uid && (!root.child('metadata').child(auth.uid).child('revokeTime').exists() || auth.token.auth_time > root.child('metadata').child(auth.uid).child('revokeTime').val())",
        }}}})
        .to_string(),
    )
    .unwrap();
    let auth = json!({"uid": "u1", "token": {"auth_time": 100}});
    let read = |root: &Value| {
        rules
            .read(root, &segs("/users/u1"), &Query::default(), &ctx(&auth))
            .allowed
    };
    assert!(read(&Value::Null));
    assert!(read(&json!({"metadata": {"u1": {"revokeTime": 99}}})));
    assert!(!read(&json!({"metadata": {"u1": {"revokeTime": 100}}})));
    // A string revokeTime is a runtime error: denied.
    assert!(!read(&json!({"metadata": {"u1": {"revokeTime": "99"}}})));
}

/// The example file ships the seed's two rule sets as the seed writes them.
#[test]
fn the_example_rules_load_and_enforce_revocation() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/database.rules.json");
    let rules = Ruleset::parse(&std::fs::read_to_string(file).unwrap()).unwrap();
    let auth = json!({"uid": "u1", "token": {"auth_time": 100}});
    let c = Context {
        auth: &auth,
        now_ms: 0,
    };
    let revoked = json!({"metadata": {"u1": {"revokeTime": 150}}});
    let q = Query::default();
    assert!(rules.read(&Value::Null, &segs("/users/u1"), &q, &c).allowed);
    assert!(!rules.read(&revoked, &segs("/users/u1"), &q, &c).allowed);
    assert!(rules.read(&revoked, &segs("/metadata/u1"), &q, &c).allowed);
    assert!(!rules.read(&revoked, &segs("/metadata/u2"), &q, &c).allowed);
    let mut new = revoked.clone();
    tree::set(&mut new, &segs("/metadata/u1/revokeTime"), json!(0));
    assert!(
        !rules
            .write(&revoked, &new, &[segs("/metadata/u1/revokeTime")], &c)
            .allowed
    );
}

#[test]
fn tree_writes_prune_empty_parents() {
    let mut root = json!({"a": {"b": 1}, "c": 2});
    tree::set(&mut root, &segs("/a/b"), Value::Null);
    assert_eq!(root, json!({"c": 2}));
    tree::set(&mut root, &segs("/x/y/z"), json!(true));
    assert_eq!(tree::get(&root, &segs("/x/y/z")), Some(&json!(true)));
    assert_eq!(
        tree::normalize(json!({"a": null, "b": {}, "c": [1, null, 3]})),
        json!({"c": {"0": 1, "2": 3}})
    );
    assert_eq!(
        tree::normalize(json!({".value": 5, ".priority": 1})),
        json!({".value": 5, ".priority": 1})
    );
    assert_eq!(tree::normalize(json!({".value": 5})), json!(5));
}
