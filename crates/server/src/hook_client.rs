//! The blocking-function client: one POST with a hard deadline (reqwest over rustls).

use std::time::Duration;

use async_trait::async_trait;
use firekeeper_core::blocking::{HookClient, HookReply};
use reqwest::header::ACCEPT;
use serde_json::Value;

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

    async fn get_json(&self, uri: &str, deadline: Duration) -> Result<Value, String> {
        json_answer(
            self.http.get(uri).header(ACCEPT, "application/json"),
            deadline,
        )
        .await
    }

    async fn post_form(
        &self,
        uri: &str,
        form: &[(&str, &str)],
        deadline: Duration,
    ) -> Result<Value, String> {
        let req = self
            .http
            .post(uri)
            .header(ACCEPT, "application/json")
            .form(form);
        json_answer(req, deadline).await
    }

    async fn call_json(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        deadline: Duration,
    ) -> Result<Value, String> {
        let mut req = match body {
            Some(b) => self.http.post(uri).json(b),
            None => self.http.get(uri),
        }
        .header(ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        json_answer(req, deadline).await
    }
}

/// A JSON document from a 2xx answer, read up to [`MAX_REPLY_BYTES`].
async fn json_answer(req: reqwest::RequestBuilder, deadline: Duration) -> Result<Value, String> {
    let call = async {
        // Without the URL: a provider's query may carry a token, and these reasons are logged.
        let mut res = req.send().await.map_err(|e| e.without_url().to_string())?;
        let status = res.status();
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.without_url().to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_REPLY_BYTES {
                return Err("answer too large".to_owned());
            }
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("HTTP {status}: {text}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    };
    tokio::time::timeout(deadline, call)
        .await
        .map_err(|_| "timed out".to_owned())?
}
