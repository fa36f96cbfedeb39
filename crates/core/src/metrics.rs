//! Counters the server exposes at `/metrics` (Prometheus text format). Written by hand: a
//! few labelled counters do not need a metrics library.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default, Clone, Copy)]
struct CallStats {
    count: u64,
    seconds: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (event, outcome) -> calls and their total latency.
    hook_calls: Mutex<BTreeMap<(String, &'static str), CallStats>>,
    /// event -> refusals by a built-in policy.
    policy_refusals: Mutex<BTreeMap<String, u64>>,
    /// request type -> emails handed to the mailer.
    emails_sent: Mutex<BTreeMap<String, u64>>,
    /// sms type -> text messages handed to the sender.
    sms_sent: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn hook_call(&self, event: &str, outcome: &'static str, latency: Duration) {
        if let Ok(mut m) = self.hook_calls.lock() {
            let s = m.entry((event.to_owned(), outcome)).or_default();
            s.count += 1;
            s.seconds += latency.as_secs_f64();
        }
    }

    pub fn policy_refusal(&self, event: &str) {
        if let Ok(mut m) = self.policy_refusals.lock() {
            *m.entry(event.to_owned()).or_default() += 1;
        }
    }

    pub fn email_sent(&self, request_type: &str) {
        if let Ok(mut m) = self.emails_sent.lock() {
            *m.entry(request_type.to_owned()).or_default() += 1;
        }
    }

    pub fn sms_sent(&self, sms_type: &str) {
        if let Ok(mut m) = self.sms_sent.lock() {
            *m.entry(sms_type.to_owned()).or_default() += 1;
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let calls = self
            .hook_calls
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP firekeeper_blocking_calls_total Blocking-function calls by event and outcome.\n\
             # TYPE firekeeper_blocking_calls_total counter"
        );
        for ((event, outcome), s) in &calls {
            let _ = writeln!(
                out,
                "firekeeper_blocking_calls_total{{event=\"{event}\",outcome=\"{outcome}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP firekeeper_blocking_call_seconds_total Time spent waiting for blocking functions.\n\
             # TYPE firekeeper_blocking_call_seconds_total counter"
        );
        for ((event, outcome), s) in &calls {
            let _ = writeln!(
                out,
                "firekeeper_blocking_call_seconds_total{{event=\"{event}\",outcome=\"{outcome}\"}} {:.6}",
                s.seconds
            );
        }
        let refusals = self
            .policy_refusals
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP firekeeper_blocking_policy_refusals_total Sign-ups and sign-ins refused by a built-in policy.\n\
             # TYPE firekeeper_blocking_policy_refusals_total counter"
        );
        for (event, n) in &refusals {
            let _ = writeln!(
                out,
                "firekeeper_blocking_policy_refusals_total{{event=\"{event}\"}} {n}"
            );
        }
        let sent = self
            .emails_sent
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP firekeeper_emails_sent_total Action emails handed to the mail server.\n\
             # TYPE firekeeper_emails_sent_total counter"
        );
        for (kind, n) in &sent {
            let _ = writeln!(
                out,
                "firekeeper_emails_sent_total{{request_type=\"{kind}\"}} {n}"
            );
        }
        let texts = self.sms_sent.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP firekeeper_sms_sent_total Text messages handed to the SMS sender.\n\
             # TYPE firekeeper_sms_sent_total counter"
        );
        for (kind, n) in &texts {
            let _ = writeln!(out, "firekeeper_sms_sent_total{{sms_type=\"{kind}\"}} {n}");
        }
        out
    }
}
