//! The database service: per-namespace trees kept in memory and written through to the
//! store, rules checked on every read and write, writes of one namespace one at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use firekeeper_core::store::{RtdbWrite, Store, StoreError};
use firekeeper_core::Clock;
use firekeeper_rules::{tree, Context, Ruleset};
use serde_json::{Map, Value};

use crate::error::{DbError, DbResult};
use crate::push_id::PushIds;
use crate::query::ReadQuery;
use crate::{etag, path, value};

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// Admin credentials: no rules apply.
    Admin,
    /// Rules apply with this `auth` (null when signed out).
    User(Value),
}

/// A namespace as it is now.
pub struct State {
    root: Value,
    rules: Arc<Ruleset>,
    rules_source: String,
    /// The store's version of the namespace this state was read at or written as.
    version: i64,
}

impl State {
    /// Whether `caller` may read `at` (with `query`) at `now_ms`; admins always may.
    fn readable(
        &self,
        at: &[String],
        query: Option<&ReadQuery>,
        caller: &Caller,
        now_ms: i64,
    ) -> bool {
        match caller {
            Caller::Admin => true,
            Caller::User(auth) => {
                let query = query.map(ReadQuery::for_rules).unwrap_or_default();
                let ctx = Context { auth, now_ms };
                self.rules.read(&self.root, at, &query, &ctx).allowed
            }
        }
    }

    /// A query by a child or by value needs its `.indexOn` in the rules, as Firebase does.
    fn check_index(&self, at: &[String], query: Option<&ReadQuery>) -> DbResult<()> {
        match query.and_then(ReadQuery::needed_index) {
            Some(index) if !self.rules.index_on(at).contains(&index) => {
                Err(DbError::bad_request(format!(
                    "Index not defined, add \".indexOn\": \"{index}\", for path \"{}\", to the rules",
                    path::display(at)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A committed change, as listeners hear of it: the namespace after it, and the paths it
/// wrote (none for a change of rules).
pub struct Commit {
    state: Arc<State>,
    paths: Vec<Vec<String>>,
}

/// How often a write is tried again when other instances keep writing the namespace first
/// (each retry waits a little longer, with jitter, so the contenders spread out).
const MAX_ATTEMPTS: u32 = 50;

/// How many commits a listener may fall behind before it is sent the whole value again;
/// a slow listener never holds up a writer.
const LISTENER_BACKLOG: usize = 256;

struct Namespace {
    name: String,
    state: RwLock<Arc<State>>,
    /// Writes of one namespace are applied one at a time.
    writing: tokio::sync::Mutex<()>,
    commits: tokio::sync::broadcast::Sender<Arc<Commit>>,
}

impl Namespace {
    fn current(&self) -> Arc<State> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `next` current and tells the listeners.
    fn replace(&self, next: State, paths: Vec<Vec<String>>) {
        let next = Arc::new(next);
        {
            let mut g = match self.state.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            *g = next.clone();
        }
        // No listener is not an error.
        let _ = self.commits.send(Arc::new(Commit { state: next, paths }));
    }
}

/// A failed `if-match`: the current value and its ETag, which the client retries with.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub current: Value,
    pub etag: String,
}

/// A write's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// The value as stored (server values resolved), plain form.
    Done(Value),
    Mismatch(Mismatch),
}

pub struct Database {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The rules of a namespace that has none stored.
    default_rules: String,
    namespaces: Mutex<HashMap<String, Arc<Namespace>>>,
    push_ids: Mutex<PushIds>,
}

/// Rules until a namespace is given its own: nobody but an admin reads or writes.
pub const LOCKED_RULES: &str = "{\"rules\": {\".read\": false, \".write\": false}}";

impl Database {
    /// `default_rules` must load (check it with [`Ruleset::parse`] first).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, default_rules: String) -> Self {
        Self {
            store,
            clock,
            default_rules,
            namespaces: Mutex::new(HashMap::new()),
            push_ids: Mutex::new(PushIds::default()),
        }
    }

    async fn namespace(&self, ns: &str) -> DbResult<Arc<Namespace>> {
        if let Some(n) = self.cached(ns) {
            return Ok(n);
        }
        let state = self.load(ns).await?;
        let loaded = Arc::new(Namespace {
            name: ns.to_owned(),
            state: RwLock::new(Arc::new(state)),
            writing: tokio::sync::Mutex::new(()),
            commits: tokio::sync::broadcast::channel(LISTENER_BACKLOG).0,
        });
        let mut map = match self.namespaces.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another request may have loaded it meanwhile: keep the first.
        Ok(map.entry(ns.to_owned()).or_insert(loaded).clone())
    }

    /// A namespace's tree and rules as stored.
    async fn load(&self, ns: &str) -> DbResult<State> {
        // The version first: rows newer than it only make the next write retry.
        let version = self.store.rtdb_version(ns).await.map_err(store_error)?;
        let rows = self.store.rtdb_nodes(ns).await.map_err(store_error)?;
        let mut root = Value::Null;
        for (p, text) in rows {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| DbError::internal(format!("stored node {p}: {e}")))?;
            insert(&mut root, p.split('/').filter(|k| !k.is_empty()), v);
        }
        let source = self
            .store
            .rtdb_rules(ns)
            .await
            .map_err(store_error)?
            .unwrap_or_else(|| self.default_rules.clone());
        let rules = Ruleset::parse(&source)
            .map_err(|e| DbError::internal(format!("stored rules of {ns}: {e}")))?;
        Ok(State {
            root,
            rules: Arc::new(rules),
            rules_source: source,
            version,
        })
    }

    /// Reads a namespace again from the store, after another instance changed it, and
    /// tells its listeners (all of it may have changed).
    pub async fn reload(&self, ns: &str) {
        let Some(n) = self.cached(ns) else { return };
        let _one_writer = n.writing.lock().await;
        // Our own commits come back through the feed too: nothing to read then.
        if let Ok(v) = self.store.rtdb_version(ns).await {
            if v == n.current().version {
                return;
            }
        }
        match self.load(ns).await {
            Ok(state) => n.replace(state, vec![Vec::new()]),
            Err(e) => {
                tracing::warn!(error = %e, %ns, "reloading a database namespace failed");
                self.forget(ns);
            }
        }
    }

    /// The namespaces held in memory.
    pub fn loaded(&self) -> Vec<String> {
        let map = match self.namespaces.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.keys().cloned().collect()
    }

    fn cached(&self, ns: &str) -> Option<Arc<Namespace>> {
        let map = match self.namespaces.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(ns).cloned()
    }

    /// Forgets a namespace, so the next request reads it again (another instance wrote).
    pub fn forget(&self, ns: &str) {
        let mut map = match self.namespaces.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.remove(ns);
    }

    /// Reads `at` (stored form, with priorities), after the rules allow it.
    pub async fn get(
        &self,
        ns: &str,
        at: &[String],
        query: Option<&ReadQuery>,
        caller: &Caller,
    ) -> DbResult<Value> {
        let n = self.namespace(ns).await?;
        let state = n.current();
        if !state.readable(at, query, caller, self.clock.now_ms()) {
            return Err(DbError::permission_denied());
        }
        state.check_index(at, query)?;
        let node = tree::get(&state.root, at);
        Ok(match query {
            Some(q) => q.apply(node),
            None => node.cloned().unwrap_or(Value::Null),
        })
    }

    /// Sets `at` to `value` (null deletes). With `if_match`, only when the node's ETag is
    /// still that.
    pub async fn set(
        &self,
        ns: &str,
        at: &[String],
        value: Value,
        caller: &Caller,
        if_match: Option<&str>,
    ) -> DbResult<Written> {
        let guard = if_match.map(|tag| (at, tag));
        let applied = self
            .write(ns, caller, guard, |state, now| {
                let prepared = value::prepare(at, value.clone(), now, &|p: &[String]| {
                    tree::get(&state.root, p).cloned()
                })?;
                Ok(vec![(at.to_vec(), prepared)])
            })
            .await?;
        Ok(match applied {
            Ok(mut writes) => Written::Done(writes.pop().map_or(Value::Null, |(_, v)| v)),
            Err(m) => Written::Mismatch(m),
        })
    }

    /// A multi-path update relative to `at` (spec §3.4). Returns the resolved values.
    pub async fn update(
        &self,
        ns: &str,
        at: &[String],
        changes: Map<String, Value>,
        caller: &Caller,
    ) -> DbResult<Value> {
        let mut targets: Vec<(Vec<String>, Value)> = Vec::new();
        for (rel, v) in changes {
            let mut full = at.to_vec();
            let keys = path::parse(&rel)?;
            if keys.is_empty() {
                return Err(DbError::bad_request(
                    "Invalid update: a key may not be empty",
                ));
            }
            full.extend(keys);
            path::check_depth(&full, 0)?;
            targets.push((full, v));
        }
        for (i, (a, _)) in targets.iter().enumerate() {
            for (b, _) in &targets[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    return Err(DbError::bad_request(format!(
                        "Invalid update: {} is an ancestor of another path in the same update",
                        path::display(if a.len() < b.len() { a } else { b })
                    )));
                }
            }
        }
        let applied = self
            .write(ns, caller, None, |state, now| {
                targets
                    .iter()
                    .map(|(full, v)| {
                        let p = value::prepare(full, v.clone(), now, &|p: &[String]| {
                            tree::get(&state.root, p).cloned()
                        })?;
                        Ok((full.clone(), p))
                    })
                    .collect()
            })
            .await?;
        let echo = applied
            .unwrap_or_default()
            .into_iter()
            .map(|(full, v)| (full[at.len()..].join("/"), plain(&v)))
            .collect();
        Ok(Value::Object(echo))
    }

    /// Adds `value` under a new push id below `at`; returns the id.
    pub async fn push(
        &self,
        ns: &str,
        at: &[String],
        value: Value,
        caller: &Caller,
    ) -> DbResult<String> {
        let id = {
            let mut ids = match self.push_ids.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            ids.next(self.clock.now_ms(), random_symbols)
        };
        let mut full = at.to_vec();
        full.push(id.clone());
        path::check_depth(&full, 0)?;
        self.set(ns, &full, value, caller, None).await?;
        Ok(id)
    }

    /// One write, retried when another instance wrote the namespace first: `plan` turns
    /// the current state into the writes (server values resolved against it), the rules
    /// check them, an `if-match` guard compares the ETag, and the store takes them only if
    /// the namespace is still at the version they were computed from. Returns the writes
    /// applied, or the mismatch.
    async fn write(
        &self,
        ns: &str,
        caller: &Caller,
        guard: Option<(&[String], &str)>,
        plan: impl Fn(&State, i64) -> DbResult<Vec<(Vec<String>, Value)>>,
    ) -> DbResult<Result<Vec<(Vec<String>, Value)>, Mismatch>> {
        let n = self.namespace(ns).await?;
        let _one_writer = n.writing.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                let jitter = u64::from(random_symbols()[0] % 4);
                let wait = (u64::from(attempt) + jitter).min(20);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            let state = n.current();
            let now = self.clock.now_ms();
            let writes = plan(&state, now)?;
            let root = self.checked(&state, &writes, caller, now)?;
            if let Some((at, expected)) = guard {
                let node = tree::get(&state.root, at);
                let tag = etag::of(node);
                if tag != expected {
                    // The current value goes back only to a caller who may read it.
                    if !state.readable(at, None, caller, now) {
                        return Err(DbError::permission_denied());
                    }
                    return Ok(Err(Mismatch {
                        current: node.cloned().unwrap_or(Value::Null),
                        etag: tag,
                    }));
                }
            }
            if writes.is_empty() {
                return Ok(Ok(writes));
            }
            match self.commit(n.clone(), &state, writes.clone(), root).await? {
                true => return Ok(Ok(writes)),
                // Another instance wrote first: read the namespace again and start over.
                false => n.replace(self.load(ns).await?, vec![Vec::new()]),
            }
        }
        Err(DbError {
            status: 503,
            message: "The database is busy with concurrent writes; try again".into(),
        })
    }

    /// The tree after `writes`, if the rules let `caller` make them.
    fn checked(
        &self,
        state: &State,
        writes: &[(Vec<String>, Value)],
        caller: &Caller,
        now: i64,
    ) -> DbResult<Value> {
        let mut root = state.root.clone();
        for (p, v) in writes {
            tree::set(&mut root, p, v.clone());
        }
        if let Caller::User(auth) = caller {
            let paths: Vec<Vec<String>> = writes.iter().map(|(p, _)| p.clone()).collect();
            let ctx = Context { auth, now_ms: now };
            if !state.rules.write(&state.root, &root, &paths, &ctx).allowed {
                return Err(DbError::permission_denied());
            }
        }
        Ok(root)
    }

    /// Stores the writes if the namespace is still at `state`'s version, then makes the
    /// new tree visible; `false` when another instance wrote first. Runs to the end even
    /// when the request is dropped, so the store and the tree in memory never disagree.
    async fn commit(
        &self,
        n: Arc<Namespace>,
        state: &State,
        writes: Vec<(Vec<String>, Value)>,
        root: Value,
    ) -> DbResult<bool> {
        let rows: Vec<RtdbWrite> = writes.iter().map(|(p, _)| store_rows(&root, p)).collect();
        let paths: Vec<Vec<String>> = writes.into_iter().map(|(p, _)| p).collect();
        let (rules, rules_source, version) = (
            state.rules.clone(),
            state.rules_source.clone(),
            state.version,
        );
        let store = self.store.clone();
        tokio::spawn(async move {
            let version = match store.rtdb_write(&n.name, version, &rows).await {
                Ok(v) => v,
                Err(StoreError::Stale) => return Ok(false),
                Err(e) => return Err(store_error(e)),
            };
            let next = State {
                root,
                rules,
                rules_source,
                version,
            };
            n.replace(next, paths);
            Ok(true)
        })
        .await
        .map_err(|e| DbError::internal(format!("write task: {e}")))?
    }

    /// The namespace's rules source.
    pub async fn rules(&self, ns: &str) -> DbResult<String> {
        Ok(self.namespace(ns).await?.current().rules_source.clone())
    }

    /// Replaces the namespace's rules; refused, with line and column, unless they load.
    pub async fn set_rules(&self, ns: &str, source: &str) -> DbResult<()> {
        Ruleset::parse(source)
            .map_err(|e| DbError::bad_request(format!("Error saving rules - {e}")))?;
        let n = self.namespace(ns).await?;
        let _one_writer = n.writing.lock().await;
        self.store
            .put_rtdb_rules(ns, source)
            .await
            .map_err(store_error)?;
        // The rules change moved the stored version on: read it back with everything.
        n.replace(self.load(ns).await?, Vec::new());
        Ok(())
    }
}

/// What a listener is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Replace the value at `path` (relative to the listened path; `/` is all of it).
    Put { path: String, data: Value },
    /// The rules no longer allow the read: the stream ends.
    Cancel(String),
}

/// An open listen on one path (and query) of a namespace.
pub struct Listener {
    at: Vec<String>,
    query: Option<ReadQuery>,
    caller: Caller,
    clock: Arc<dyn Clock>,
    namespace: Arc<Namespace>,
    commits: tokio::sync::broadcast::Receiver<Arc<Commit>>,
}

impl Database {
    /// Starts listening at `at`: the listener and the first event (the whole value), or
    /// a denial when the rules do not allow the read.
    pub async fn listen(
        &self,
        ns: &str,
        at: &[String],
        query: Option<ReadQuery>,
        caller: Caller,
    ) -> DbResult<(Listener, Event)> {
        let namespace = self.namespace(ns).await?;
        // Subscribed before reading, so no commit falls between the two.
        let commits = namespace.commits.subscribe();
        let state = namespace.current();
        let listener = Listener {
            at: at.to_vec(),
            query,
            caller,
            clock: self.clock.clone(),
            namespace,
            commits,
        };
        if !listener.allowed(&state) {
            return Err(DbError::permission_denied());
        }
        state.check_index(at, listener.query.as_ref())?;
        let first = listener.whole(&state);
        Ok((listener, first))
    }
}

impl Listener {
    fn allowed(&self, state: &State) -> bool {
        state.readable(
            &self.at,
            self.query.as_ref(),
            &self.caller,
            self.clock.now_ms(),
        )
    }

    fn whole(&self, state: &State) -> Event {
        let node = tree::get(&state.root, &self.at);
        let data = match &self.query {
            Some(q) => plain(&q.apply(node)),
            None => node.map_or(Value::Null, plain),
        };
        Event::Put {
            path: "/".into(),
            data,
        }
    }

    /// Waits for the next commit and returns what it means for this listener (possibly
    /// nothing). After a [`Event::Cancel`] the listener is done.
    pub async fn next(&mut self) -> Vec<Event> {
        use tokio::sync::broadcast::error::RecvError;
        let commit = match self.commits.recv().await {
            Ok(c) => c,
            // Fell behind: start again from the whole value.
            Err(RecvError::Lagged(_)) => {
                let state = self.namespace.current();
                if !self.allowed(&state) {
                    return vec![Event::Cancel("Permission denied".into())];
                }
                return vec![self.whole(&state)];
            }
            Err(RecvError::Closed) => {
                return vec![Event::Cancel(
                    "The database was reloaded; listen again".into(),
                )]
            }
        };
        // Rules may read anything in the tree: every commit re-checks the read.
        if !self.allowed(&commit.state) {
            return vec![Event::Cancel("Permission denied".into())];
        }
        let mut whole = false;
        let mut events = Vec::new();
        for p in &commit.paths {
            if p.starts_with(&self.at) {
                if self.query.is_some() {
                    whole = true;
                } else {
                    let node = tree::get(&commit.state.root, p);
                    events.push(Event::Put {
                        path: path::display(&p[self.at.len()..]),
                        data: node.map_or(Value::Null, plain),
                    });
                }
            } else if self.at.starts_with(p) {
                whole = true;
            }
        }
        if whole {
            return vec![self.whole(&commit.state)];
        }
        events
    }
}

fn store_error(e: firekeeper_core::store::StoreError) -> DbError {
    tracing::error!(error = ?e, "database storage failed");
    DbError::internal("storage failed; nothing was written")
}

/// The rows that replace the stored subtree a write at `path` touched: taken from the
/// tree after the write, at the highest ancestor the write emptied (so an emptied
/// object's priority row goes too).
fn store_rows(root: &Value, path: &[String]) -> RtdbWrite {
    let mut top = path.len();
    while top > 0 && tree::get(root, &path[..top - 1]).is_none() {
        top -= 1;
    }
    let at = &path[..top];
    let mut rows = Vec::new();
    if let Some(v) = tree::get(root, at) {
        flatten(v, &mut at.to_vec(), &mut rows);
    }
    RtdbWrite {
        path: at.join("/"),
        rows,
    }
}

fn random_symbols() -> [u8; 12] {
    let mut bytes = [0u8; 12];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is not worth refusing a write over: the time part and
        // the per-millisecond counter still keep ids unique within this process.
        bytes = [0; 12];
    }
    bytes.map(|b| b % 64)
}

/// Puts a stored row back into a tree being loaded (no pruning: an object's priority row
/// may come before its children).
fn insert<'a>(root: &mut Value, mut keys: impl Iterator<Item = &'a str>, v: Value) {
    match keys.next() {
        None => *root = v,
        Some(k) => {
            if !root.is_object() {
                *root = Value::Object(Map::new());
            }
            if let Value::Object(map) = root {
                let child = map.entry(k.to_owned()).or_insert(Value::Null);
                insert(child, keys, v);
            }
        }
    }
}

/// A stored-form value as rows: leaves (with their priority) and objects' priorities.
fn flatten(v: &Value, at: &mut Vec<String>, rows: &mut Vec<(String, String)>) {
    match v {
        Value::Null => {}
        Value::Object(map) if !map.contains_key(".value") => {
            for (k, child) in map {
                at.push(k.clone());
                flatten(child, at, rows);
                at.pop();
            }
        }
        leaf => rows.push((at.join("/"), leaf.to_string())),
    }
}

/// The plain JSON of a stored value: priorities dropped, `{".value": v}` as `v`, objects
/// keyed 0..n that fill at least half of their range as arrays (as the SDKs return them).
pub fn plain(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(inner) = map.get(".value") {
                return inner.clone();
            }
            let children: Vec<(&String, &Value)> =
                map.iter().filter(|(k, _)| !k.starts_with('.')).collect();
            let indices: Option<Vec<usize>> = children
                .iter()
                .map(|(k, _)| {
                    (k.as_str() == "0"
                        || (!k.starts_with('0') && k.bytes().all(|b| b.is_ascii_digit())))
                    .then(|| k.parse::<usize>().ok())
                    .flatten()
                })
                .collect();
            if let Some(idx) = indices {
                let max = idx.iter().copied().max().unwrap_or(0);
                if !idx.is_empty() && max < 2 * idx.len() {
                    let mut items = vec![Value::Null; max + 1];
                    for ((_, child), i) in children.iter().zip(idx) {
                        items[i] = plain(child);
                    }
                    return Value::Array(items);
                }
            }
            Value::Object(
                children
                    .into_iter()
                    .map(|(k, child)| (k.clone(), plain(child)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}
