//! An HTTP client for the tests: replies with their status and JSON body.

use serde_json::Value;
use std::time::Duration;

/// An HTTP response: status and JSON body (`Value::Null` if the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub json: Value,
    /// Response headers by lower-case name.
    pub headers: std::collections::BTreeMap<String, String>,
}

fn headers(
    response: &ureq::http::Response<ureq::Body>,
) -> std::collections::BTreeMap<String, String> {
    response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn get(url: &str) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = headers(&response);
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        text,
        json,
        headers,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = headers(&response);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        text,
        json,
        headers,
    }
}

/// A request with an optional bearer token: `body` is sent as is (it may be broken JSON).
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<&[u8]>) -> Reply {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(auth) = &auth {
                r = r.header("Authorization", auth);
            }
            r.call()
        }
        ("POST", body) => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            if let Some(auth) = &auth {
                r = r.header("Authorization", auth);
            }
            r.send(body.unwrap_or_default())
        }
        _ => panic!("unsupported method {method}"),
    };
    reply(result.unwrap_or_else(|e| panic!("{method} {url}: {e}")))
}

/// POSTs a JSON value.
pub fn post(url: &str, token: Option<&str>, body: &Value) -> Reply {
    request("POST", url, token, Some(body.to_string().as_bytes()))
}

/// POSTs a JSON value; `None` if no answer came (the server went away).
pub fn try_post(url: &str, token: Option<&str>, body: &Value) -> Option<Reply> {
    let mut request = agent().post(url).header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request.send(body.to_string().as_bytes()).ok().map(reply)
}
