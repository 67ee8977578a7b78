//! TLS for one registry: the system's CA bundle plus the registry's certs.d directory (CAs as
//! `*.crt`, a client certificate as a `*.cert` and `*.key` pair), as containers-certs.d(5) says; or
//! no verification at all for an insecure registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::environment::Environment;
use crate::runner::error::RunError;

/// Where distributions keep the CA bundle (Debian, Fedora/RHEL, openSUSE, Alpine).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certs.d directories for `host` (`host[:port]` as the registry is reached), in podman's
/// order; only the first that exists is used, as podman does.
pub(super) fn certs_dirs(env: &Environment, host: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env
        .user_config(&format!("containers/certs.d/{host}"))
        .into_iter()
        .collect();
    dirs.push(env.system_path(&format!("etc/containers/certs.d/{host}")));
    dirs.push(env.system_path(&format!("etc/docker/certs.d/{host}")));
    dirs
}

/// The TLS configuration for `host`. `insecure` accepts any certificate (registries.conf's
/// `insecure`, --tls-verify=false).
pub(super) fn config_for(
    env: &Environment,
    host: &str,
    insecure: bool,
) -> Result<TlsConfig, RunError> {
    // ureq's `rustls` feature makes ring its provider; this one checks client certificates.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = TlsConfig::builder();
    if insecure {
        return Ok(builder.disable_verification(true).build());
    }
    let mut roots = system_roots();
    let mut client = None;
    if let Some(dir) = certs_dirs(env, host).into_iter().find(|d| d.is_dir()) {
        let (cas, pair) = read_certs_dir(&dir, &provider)?;
        roots.extend(cas);
        client = pair;
    }
    let roots = match roots.is_empty() {
        // A machine without a CA bundle (a minimal container): the Mozilla roots ureq carries.
        true => RootCerts::WebPki,
        false => RootCerts::new_with_certs(&roots),
    };
    Ok(builder.root_certs(roots).client_cert(client).build())
}

/// The first CA bundle there is ($SSL_CERT_FILE first, as OpenSSL-based tools do).
fn system_roots() -> Vec<Certificate<'static>> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|path| {
            let pem = std::fs::read(&path).ok()?;
            let certs = certificates(&pem);
            (!certs.is_empty()).then_some(certs)
        })
        .unwrap_or_default()
}

fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

/// A certs.d directory's CAs and client certificate. A `.cert` without its `.key` (or the other
/// way round) is an error, as for podman.
fn read_certs_dir(
    dir: &Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>), RunError> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| RunError::sys(path.display(), e));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| RunError::sys(dir.display(), e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut cas = Vec::new();
    let mut client = None;
    let hint = "each client certificate NAME.cert needs its key NAME.key beside it (containers-certs.d(5))";
    for path in &entries {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => cas.extend(certificates(&read(path)?)),
            Some("cert") => {
                let key_path = path.with_extension("key");
                if !key_path.exists() {
                    return Err(RunError::new(format!(
                        "{} has no key {}",
                        path.display(),
                        key_path.display()
                    ))
                    .with_hint(hint));
                }
                if client.is_none() {
                    client = Some(client_cert(
                        path,
                        &read(path)?,
                        &key_path,
                        &read(&key_path)?,
                        provider,
                    )?);
                }
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(RunError::new(format!(
                    "{} is a key without its certificate {}",
                    path.display(),
                    path.with_extension("cert").display()
                ))
                .with_hint(hint));
            }
            _ => {}
        }
    }
    Ok((cas, client))
}

/// A client certificate and key, checked the way rustls will use them (ureq panics on a pair
/// rustls refuses, so it must never be given one).
fn client_cert(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<ClientCert, RunError> {
    let chain = certificates(cert_pem);
    if chain.is_empty() {
        return Err(RunError::new(format!(
            "{} holds no PEM certificate",
            cert_path.display()
        )));
    }
    let key = PrivateKey::from_pem(key_pem).map_err(|e| {
        RunError::new(format!(
            "{} holds no usable private key: {e}",
            key_path.display()
        ))
    })?;
    let der_chain: Vec<rustls::pki_types::CertificateDer<'static>> = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.der().to_vec())
        .map_err(|e| RunError::new(format!("{}: {e}", key_path.display())))?;
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .and_then(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_client_auth_cert(der_chain, der_key)
        })
        .map_err(|e| {
            RunError::new(format!(
                "{} and {} are no usable client certificate and key: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

#[cfg(test)]
mod tests {
    use super::super::fake::{TestCa, tempdir};
    use super::*;

    #[test]
    fn certs_d_is_searched_in_podmans_order() {
        let env = Environment {
            config_home: Some("/home/u/.config".into()),
            system: "/".into(),
            ..Environment::default()
        };
        assert_eq!(
            certs_dirs(&env, "r.io:5000"),
            [
                PathBuf::from("/home/u/.config/containers/certs.d/r.io:5000"),
                PathBuf::from("/etc/containers/certs.d/r.io:5000"),
                PathBuf::from("/etc/docker/certs.d/r.io:5000"),
            ]
        );
    }

    #[test]
    fn a_certs_d_directory_gives_cas_and_a_client_pair() {
        let dir = tempdir();
        let ca = TestCa::new();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        std::fs::write(dir.join("ca.crt"), ca.ca_pem()).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let (cas, client) = read_certs_dir(&dir, &provider).unwrap();
        assert_eq!(cas.len(), 1);
        assert!(client.is_none());

        let (leaf, key) = ca.leaf("client");
        std::fs::write(dir.join("client.cert"), &leaf).unwrap();
        let err = read_certs_dir(&dir, &provider).unwrap_err();
        assert!(err.message.contains("has no key"), "{}", err.message);
        std::fs::write(dir.join("client.key"), "not a key").unwrap();
        let err = read_certs_dir(&dir, &provider).unwrap_err();
        assert!(
            err.message.contains("no usable private key"),
            "{}",
            err.message
        );
        std::fs::write(dir.join("client.key"), &key).unwrap();
        let (_, client) = read_certs_dir(&dir, &provider).unwrap();
        assert_eq!(client.unwrap().certs().len(), 1);
        std::fs::remove_file(dir.join("client.cert")).unwrap();
        let err = read_certs_dir(&dir, &provider).unwrap_err();
        assert!(
            err.message.contains("key without its certificate"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
