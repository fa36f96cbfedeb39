//! The blocking-function client: one POST with a hard deadline (reqwest over rustls).

use std::time::Duration;

use async_trait::async_trait;
use firekeeper_core::blocking::{HookClient, HookReply};

/// Answers bigger than this are cut off: a function's reply is a small JSON document.
const MAX_REPLY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct HttpHookClient {
    http: reqwest::Client,
}

impl HttpHookClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        // No redirects: a function answers itself; following one would send the signed
        // JWT somewhere the project never registered.
        // No proxy from the environment either: the registered URI is the only peer.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("firekeeper/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }
}

#[async_trait]
impl HookClient for HttpHookClient {
    async fn post(&self, uri: &str, body: Vec<u8>, deadline: Duration) -> HookReply {
        let call = async {
            let mut res = self
                .http
                .post(uri)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await?;
            let status = res.status().as_u16();
            let mut reply = Vec::new();
            while let Some(chunk) = res.chunk().await? {
                reply.extend_from_slice(&chunk);
                if reply.len() > MAX_REPLY_BYTES {
                    reply.truncate(MAX_REPLY_BYTES);
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, reply))
        };
        match tokio::time::timeout(deadline, call).await {
            Err(_) => HookReply::DeadlineExceeded,
            Ok(Err(e)) => HookReply::Unreachable(e.to_string()),
            Ok(Ok((status, body))) => HookReply::Answered { status, body },
        }
    }
}
