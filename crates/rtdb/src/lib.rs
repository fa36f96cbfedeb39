//! The JSON database Firekeeper serves next to authentication (spec `rtdb.md`): trees per
//! namespace, written through to the store, every read and write checked by the rules.

pub mod db;
pub mod error;
pub mod etag;
pub mod http;
pub mod path;
pub mod push_id;
pub mod query;
pub mod revocation;
pub mod value;

pub use db::{Caller, Database, Event, Listener, Mismatch, Written, LOCKED_RULES};
pub use error::{DbError, DbResult};
pub use query::ReadQuery;
