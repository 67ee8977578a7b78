//! The token server of distribution's `auth.token` scheme: `GET /token?service=S&scope=repository:
//! NAME:pull,push` answers `{"token", "access_token", "expires_in"}` with a JWT signed
//! ES256 by a key whose certificate (signed by the test CA, which is in the registry's
//! rootcertbundle) is the JWT header's `x5c`. Anonymous requests get pull on public repositories;
//! repositories under the private prefix need the configured Basic credentials, which grant pull and
//! push everywhere; wrong credentials are answered 401. Every request is logged.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use super::https::{Request, Response};

pub const SERVICE: &str = "unshare-run-test-registry";
pub const ISSUER: &str = "unshare-run-test-token-server";

/// One request to the token server, as it was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `scope` parameters as sent (e.g. "repository:debian:pull").
    pub scopes: Vec<String>,
    /// The user of the request's Basic credentials, if it had any.
    pub account: Option<String>,
    /// 200, or 401 for wrong credentials, 400 for a wrong service, 404/405 for other requests.
    pub status: u16,
    /// What the token grants, as "repository:NAME:ACTION,ACTION" (empty: a token without access).
    pub granted: Vec<String>,
}

pub(crate) struct TokenServer {
    key: EcdsaKeyPair,
    /// base64 (standard, padded: RFC 7515) of the signing certificate's DER, then the CA's.
    x5c: Vec<String>,
    username: String,
    password: String,
    private_prefix: String,
    expires_in: u64,
    serial: AtomicU64,
    pub log: Mutex<Vec<TokenRequest>>,
}

impl TokenServer {
    pub fn new(
        signing_key_pkcs8: &[u8],
        chain_der: &[Vec<u8>],
        username: &str,
        password: &str,
        private_prefix: &str,
        expires_in: u64,
    ) -> TokenServer {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            signing_key_pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        TokenServer {
            key,
            x5c: chain_der.iter().map(|der| STANDARD.encode(der)).collect(),
            username: username.into(),
            password: password.into(),
            private_prefix: private_prefix.into(),
            expires_in,
            serial: AtomicU64::new(0),
            log: Mutex::default(),
        }
    }

    pub fn handle(&self, request: &Request) -> Response {
        let scopes: Vec<String> = request
            .query_all("scope")
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let credentials = request.header("authorization").and_then(basic_credentials);
        let account = credentials.as_ref().map(|(user, _)| user.clone());
        let (response, granted) = self.answer(request, &scopes, credentials);
        self.log.lock().unwrap().push(TokenRequest {
            scopes,
            account,
            status: response.status,
            granted,
        });
        response
    }

    fn answer(
        &self,
        request: &Request,
        scopes: &[String],
        credentials: Option<(String, String)>,
    ) -> (Response, Vec<String>) {
        if request.path != "/token" {
            return (Response::text(404, "not found\n"), Vec::new());
        }
        if request.method != "GET" {
            return (
                Response::text(405, "only GET /token\n").header("Allow", "GET"),
                Vec::new(),
            );
        }
        if request.query_all("service").next() != Some(SERVICE) {
            return (
                Response::json(
                    400,
                    &json!({"details": format!("service must be {SERVICE}")}),
                ),
                Vec::new(),
            );
        }
        let authenticated = match &credentials {
            None => false,
            Some((user, password)) if *user == self.username && *password == self.password => true,
            Some(_) => {
                return (
                    Response::json(401, &json!({"details": "incorrect username or password"}))
                        .header(
                            "WWW-Authenticate",
                            "Basic realm=\"unshare-run-test-token-server\"",
                        ),
                    Vec::new(),
                );
            }
        };
        let mut access: Vec<(String, Vec<String>)> = Vec::new();
        for scope in scopes {
            let Some((name, actions)) = scope
                .strip_prefix("repository:")
                .and_then(|rest| rest.rsplit_once(':'))
            else {
                continue;
            };
            let allowed: &[&str] = if authenticated {
                &["pull", "push", "delete"]
            } else if name.starts_with(&self.private_prefix) {
                &[]
            } else {
                &["pull"]
            };
            let granted: Vec<String> = allowed
                .iter()
                .filter(|a| actions.split(',').any(|r| r == **a || r == "*"))
                .map(|a| a.to_string())
                .collect();
            match access.iter_mut().find(|(n, _)| n == name) {
                Some((_, actions)) => {
                    for a in granted {
                        if !actions.contains(&a) {
                            actions.push(a);
                        }
                    }
                }
                None => access.push((name.to_string(), granted)),
            }
        }
        access.retain(|(_, actions)| !actions.is_empty());
        let token = self.jwt(credentials.map(|(user, _)| user), &access);
        let granted = access
            .iter()
            .map(|(name, actions)| format!("repository:{name}:{}", actions.join(",")))
            .collect();
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
        });
        (Response::json(200, &body), granted)
    }

    fn jwt(&self, subject: Option<String>, access: &[(String, Vec<String>)]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": self.x5c});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject.unwrap_or_default(),
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now.saturating_sub(5),
            "iat": now,
            "jti": format!("urt-{}-{serial}", std::process::id()),
            "access": access
                .iter()
                .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
                .collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// (user, password) of a `Basic` Authorization header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.into(), password.into()))
}
